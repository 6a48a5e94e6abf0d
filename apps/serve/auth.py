"""API keys and per-key rate limits.

Keys file: one key per line, ``NAME sha256:HEX [rate=R] [burst=B]``; blank lines and ``#`` comments are
ignored. Only the SHA-256 of a key is stored, never the key. ``kgfusion serve hash-key --name NAME``
makes a new key and prints the line to add. Clients send ``Authorization: Bearer KEY``. Each key has a
token bucket: ``rate`` requests per second refill it, up to ``burst`` (the server's --rate-limit /
--rate-burst unless the line sets its own; rate 0 = unlimited).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kgfusion.core.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")
MAX_KEY_CHARS = 512


@dataclass(frozen=True)
class ApiKey:
    """A key's name, the hex SHA-256 of the key, and its own rate limit (None: the server default)."""

    name: str
    sha256: str
    rate: float | None = None
    burst: int | None = None


def hash_key(key: str) -> str:
    """``sha256:<hex>`` of a key (what the keys file stores)."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits, URL-safe)."""
    return "kgf_" + secrets.token_urlsafe(32)


def entry_line(name: str, key: str, rate: float | None = None, burst: int | None = None) -> str:
    """The keys-file line for ``key`` under ``name``."""
    if not _NAME.match(name):
        raise ConfigError(f"key name {name!r}: use 1-64 letters, digits or . _ @ -")
    line = f"{name} {hash_key(key)}"
    if rate is not None:
        line += f" rate={rate:g}"
    if burst is not None:
        line += f" burst={burst}"
    return line


class KeyStore:
    """The keys of a keys file; ``verify(key)`` returns the matching ApiKey or None."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys = list(keys)
        self._by_hash = {k.sha256: k for k in self.keys}

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def load(cls, path: str | Path) -> KeyStore:
        """Parse a keys file; ConfigError naming the file and line for anything malformed."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: API keys file not found; create one with `kgfusion serve hash-key`") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the API keys file ({exc}); it must be UTF-8 text") from exc
        keys: list[ApiKey] = []
        names: dict[str, int] = {}
        hashes: dict[str, int] = {}
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            where = f"{path} line {lineno}"
            parts = line.split()
            if len(parts) < 2:
                raise ConfigError(f"{where}: expected 'NAME sha256:HEX [rate=R] [burst=B]'")
            name, digest, *opts = parts
            if not _NAME.match(name):
                raise ConfigError(f"{where}: key name {name!r}: use 1-64 letters, digits or . _ @ -")
            m = _HASH.match(digest.lower())
            if not m:
                raise ConfigError(f"{where}: {digest[:12]!r}... is not 'sha256:<64 hex digits>'; the file holds "
                                  "hashes, not keys: make the line with `kgfusion serve hash-key`")
            rate = burst = None
            for opt in opts:
                key, sep, value = opt.partition("=")
                try:
                    if key == "rate" and sep:
                        rate = float(value)
                        if not rate >= 0:
                            raise ValueError
                    elif key == "burst" and sep:
                        burst = int(value)
                        if burst < 1:
                            raise ValueError
                    else:
                        raise ConfigError(f"{where}: unknown option {opt!r}; allowed: rate=R, burst=B")
                except ValueError as exc:
                    raise ConfigError(f"{where}: {opt!r}: rate is a number >= 0, burst a whole number >= 1") from exc
            if name in names:
                raise ConfigError(f"{where}: key name {name!r} already used on line {names[name]}")
            if m.group(1) in hashes:
                raise ConfigError(f"{where}: the same key hash is already on line {hashes[m.group(1)]}")
            names[name] = hashes[m.group(1)] = lineno
            keys.append(ApiKey(name, m.group(1), rate, burst))
        if not keys:
            raise ConfigError(f"{path}: no keys in the file; add one with `kgfusion serve hash-key --name NAME`")
        return cls(keys)

    def verify(self, key: str) -> ApiKey | None:
        if not key or len(key) > MAX_KEY_CHARS:
            return None
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        found = self._by_hash.get(digest)
        # compare_digest keeps the final check constant-time (the dict lookup is on a hash of the key)
        return found if found is not None and hmac.compare_digest(found.sha256, digest) else None


def bearer_token(header: str | None) -> str | None:
    """The KEY of an ``Authorization: Bearer KEY`` header value, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class RateLimiter:
    """Token buckets by name: ``allow(name)`` -> (allowed, seconds until the next token)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = int(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last time)
        self._lock = threading.Lock()

    def allow(self, name: str, rate: float | None = None, burst: int | None = None) -> tuple[bool, float]:
        rate = self.rate if rate is None else float(rate)
        burst = self.burst if burst is None else int(burst)
        if rate <= 0:
            return True, 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(name, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return True, 0.0
            self._buckets[name] = (tokens, now)
            return False, (1.0 - tokens) / rate
