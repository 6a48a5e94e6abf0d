"""ServeSettings: where the server listens, its request limits, micro-batching and rate limits.

Limits (all per request): ``max_items`` list entries (items, notes, users, mentions), ``max_chars``
characters per text (an item, a note, a mention, a SPARQL query), ``max_body_bytes`` of request body
(413 above it), ``max_k`` recommendations per user. Micro-batching: concurrent requests to one model are
gathered into batches of at most ``max_batch_size`` items, waiting at most ``max_wait_ms`` for more
(``max_batch_size=1`` turns batching off). A request waits at most ``request_timeout_s`` for its batch
(504 after). Keys: ``api_keys`` is a keys file (auth.py); each key may send ``rate_limit`` requests per
second with bursts of ``rate_burst`` (0 = no limit). SPARQL runs for at most ``sparql_timeout_s``
seconds, returns at most ``sparql_max_rows`` rows, ``sparql_concurrency`` queries at a time. On SIGTERM
in-flight requests get ``graceful_timeout_s`` seconds to finish.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kgfusion.core.config import ConfigBase, check_range
from kgfusion.core.errors import ConfigError

APPS = ("finance", "medical", "recommend")


@dataclass
class ServeSettings(ConfigBase):
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: str = ""  # path of the keys file; "" = no keys (loopback only)
    apps: tuple[str, ...] = APPS
    max_items: int = 256
    max_chars: int = 50_000
    max_body_bytes: int = 2 * 1024 * 1024
    max_k: int = 100
    max_batch_size: int = 128
    max_wait_ms: float = 5.0
    request_timeout_s: float = 30.0
    rate_limit: float = 20.0
    rate_burst: int = 40
    sparql_timeout_s: float = 5.0
    sparql_max_rows: int = 10_000
    sparql_concurrency: int = 2
    graceful_timeout_s: float = 30.0
    model_variant: str = "accurate"  # "fast": the finance/medical <name>-fast bundles (apps.common.bundle_variant)

    def validate(self) -> None:
        bad = [a for a in self.apps if a not in APPS]
        if bad:
            raise ConfigError(f"ServeSettings.apps={list(self.apps)}: unknown {bad}; allowed: {list(APPS)}")
        if len(set(self.apps)) != len(self.apps):
            raise ConfigError(f"ServeSettings.apps={list(self.apps)} names an app twice")
        if self.model_variant not in ("accurate", "fast"):
            raise ConfigError(f"ServeSettings.model_variant={self.model_variant!r}; allowed: 'accurate', 'fast'")
        check_range(self, "port", 0, 65535)
        check_range(self, "max_items", 1, 100_000)
        check_range(self, "max_chars", 1, 50_000_000)
        check_range(self, "max_body_bytes", 1024, 1 << 31)
        check_range(self, "max_k", 1, 10_000)
        check_range(self, "max_batch_size", 1, 100_000)
        check_range(self, "max_wait_ms", 0, 10_000)
        check_range(self, "request_timeout_s", 0, 3600, lo_open=True)
        check_range(self, "rate_limit", 0, None)
        check_range(self, "rate_burst", 1, None)
        check_range(self, "sparql_timeout_s", 0, 600, lo_open=True)
        check_range(self, "sparql_max_rows", 1, 10_000_000)
        check_range(self, "sparql_concurrency", 1, 64)
        check_range(self, "graceful_timeout_s", 0, 3600)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1); any other name counts as public."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_keys: str) -> None:
    """ConfigError unless ``host`` is a loopback address or a keys file is configured."""
    if not api_keys and not is_loopback(host):
        raise ConfigError(f"refusing to listen on {host} without API keys: pass --api-keys FILE "
                          "(create entries with `kgfusion serve hash-key`) or bind 127.0.0.1")
