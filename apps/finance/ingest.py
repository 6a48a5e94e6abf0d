"""Read a feed (CSV/TSV, JSONL, optionally .gz) into Items; every row is an Item or a Reject.

Validation up front: the text column must exist (DataError naming the file, the columns found and the
flag). Per row: non-UTF-8 bytes, invalid JSON, empty text, unparseable timestamps and duplicates (same
id, or same normalised text + timestamp) become Rejects with file, row and reason. Item ids are the
feed's id when it has one, else a hash of source + normalised text + timestamp, so re-running a file
yields the same ids (the store upserts on them). Timestamps are stored as naive UTC.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import html
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kgfusion.apps.finance.config import AUTO_COLUMNS, FinanceConfig
from kgfusion.core.data import Reject
from kgfusion.core.errors import DataError

_FLAGS = {"text": "--text-col", "time": "--time-col", "id": "--id-col", "source": "--source-col",
          "ticker": "--ticker-col"}
_TWITTER_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # "Wed Jan 01 03:59:03 +0000 2014"


@dataclass(frozen=True)
class Item:
    """One feed item. ts: naive UTC timestamp or None (feed without a time column); row: 1-based."""

    id: str
    text: str
    ts: pd.Timestamp | None
    source: str
    ticker_hint: str | None
    row: int


@dataclass
class IngestResult:
    items: list[Item]
    rejects: list[Reject] = field(default_factory=list)
    columns: dict[str, str | None] = field(default_factory=dict)  # role -> column used
    rows_read: int = 0
    truncated: bool = False  # stopped early because of ``limit``

    def summary(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for r in self.rejects:
            key = r.reason.split(" (")[0]
            reasons[key] = reasons.get(key, 0) + 1
        return {"rows_read": self.rows_read, "items": len(self.items), "rejected": len(self.rejects),
                "reject_reasons": reasons, "columns": self.columns, "truncated": self.truncated}


def _format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    raise DataError(f"{path}: unknown feed type; use .csv, .tsv, .jsonl or .ndjson (optionally .gz)")


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _raw_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | None, str, list[str]]]:
    """(row number, record or None, reject reason, header) per data row; header is [] for JSONL.

    The row number is the file line the row starts on (a quoted CSV field may span lines)."""
    try:
        yield from _parse_rows(path, fmt)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc}); re-compress it or pass the plain file") from exc
    except csv.Error as exc:
        raise DataError(f"{path}: CSV parse error ({exc}); fix the quoting or split the huge field") from exc


def _parse_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | None, str, list[str]]]:
    if fmt == "jsonl":
        with _open_bytes(path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue  # blank lines are not rows
                try:
                    line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a BOM is not JSON
                except UnicodeDecodeError as exc:
                    yield lineno, None, f"not valid UTF-8 (byte {exc.start} of the line)", []
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield lineno, None, f"invalid JSON ({exc.msg})", []
                    continue
                if not isinstance(obj, dict):
                    yield lineno, None, "expected a JSON object per line", []
                    continue
                yield lineno, obj, "", []
        return
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    with _open_bytes(path) as fh:
        # surrogateescape keeps bad bytes visible per field, so one bad row does not sink the file
        # utf-8-sig: a BOM before a quoted header ("id",...) would otherwise keep the quotes in the name
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip().lstrip("\ufeff") for h in header]
        start = reader.line_num + 1
        for values in reader:
            rowno, start = start, reader.line_num + 1
            if not any(v.strip() for v in values):
                continue
            if any(_has_surrogates(v) for v in values):
                yield rowno, None, "not valid UTF-8", header
                continue
            if len(values) != len(header):
                yield rowno, None, f"wrong number of fields (expected {len(header)}, found {len(values)})", header
                continue
            yield rowno, dict(zip(header, values)), "", header


def _has_surrogates(s: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in s)


def _peek_columns(path: Path, fmt: str) -> list[str]:
    """Header (CSV) or the union of keys of the first 50 JSON objects."""
    keys: dict[str, None] = {}
    for n, (_, rec, _, header) in enumerate(_raw_rows(path, fmt)):
        if header:
            return header
        if rec is not None:
            keys.update(dict.fromkeys(rec))
        if n >= 50:
            break
    return list(keys)


def resolve_columns(path: Path, found: list[str], config: FinanceConfig) -> dict[str, str | None]:
    """Role -> column: the configured name (must exist) or the first AUTO_COLUMNS match."""
    if config.text_col not in found:
        raise DataError(f"{path}: no text column {config.text_col!r}; columns found: {found}. "
                        f"Pass {_FLAGS['text']} NAME to name the column holding the text.")
    out: dict[str, str | None] = {"text": config.text_col}
    for role in ("time", "id", "source", "ticker"):
        wanted = getattr(config, f"{role}_col")
        if wanted:
            if wanted not in found:
                raise DataError(f"{path}: no {role} column {wanted!r}; columns found: {found}. "
                                f"Fix {_FLAGS[role]} or leave it empty to auto-detect.")
            out[role] = wanted
        else:
            out[role] = next((c for c in AUTO_COLUMNS[role] if c in found and c != config.text_col), None)
    return out


def parse_timestamps(values: list[str]) -> pd.Series:
    """Naive-UTC timestamps (NaT when unparseable): ISO 8601, Twitter's created_at, then pandas' mixed."""
    s = pd.Series(values, dtype="object")
    out = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
    for fmt in (_TWITTER_FORMAT, "mixed"):
        todo = out.isna() & s.notna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(s[todo], format=fmt, utc=True, errors="coerce")
    return out.dt.tz_convert(None)


def normalise_text(text: str) -> str:
    """Lower-cased, whitespace-collapsed text used for duplicate detection and ids."""
    return " ".join(text.lower().split())


_RETWEET = re.compile(r"^(?:rt\s+@\w+:?\s*)+")
_URL = re.compile(r"https?://\S+")


def content_key(text: str) -> str:
    """Key shared by an item and its retweets/copies: normalised text without "RT @user:" and URLs.

    Series count one item per key, entity and period, so a tweet retweeted 40 times is one voice.
    """
    core = _URL.sub("", _RETWEET.sub("", normalise_text(text)))
    core = " ".join(core.rstrip("\u2026. ").split())
    return "c" + hashlib.sha1(core.encode("utf-8")).hexdigest()[:16]


def item_id(source: str, text: str, ts: pd.Timestamp | None) -> str:
    key = f"{source}\x1f{normalise_text(text)}\x1f{ts.isoformat() if ts is not None else ''}"
    return "h" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def read_feed(path: str | Path, config: FinanceConfig | None = None, limit: int | None = None) -> IngestResult:
    """Read a feed; ``limit`` stops after that many accepted items (the rest is not read)."""
    config = config or FinanceConfig()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: feed file not found")
    if limit is not None and limit < 1:
        raise DataError(f"limit={limit} must be >= 1")
    fmt = _format(path)
    cols = resolve_columns(path, _peek_columns(path, fmt), config)
    source_default = config.default_source or path.name.split(".")[0]
    rejects: list[Reject] = []
    staged: list[tuple[int, str, str | None, str, str | None, str | None]] = []  # row, text, raw ts, source, id, hint
    rows_read = 0
    truncated = False
    for rowno, rec, reason, _ in _raw_rows(path, fmt):
        if limit is not None and len(staged) >= limit:
            truncated = True
            break
        rows_read += 1
        if rec is None:
            rejects.append(Reject(str(path), rowno, reason))
            continue
        text = rec.get(cols["text"])
        text = html.unescape(str(text)).strip() if text is not None else ""
        if not text:
            rejects.append(Reject(str(path), rowno, "empty text"))
            continue
        raw_ts = _cell(rec, cols["time"])
        if cols["time"] and not raw_ts:
            rejects.append(Reject(str(path), rowno, f"empty timestamp (column {cols['time']!r})", text[:200]))
            continue
        staged.append((rowno, text, raw_ts, _cell(rec, cols["source"]) or source_default,
                       _cell(rec, cols["id"]), (_cell(rec, cols["ticker"]) or "").upper() or None))
    stamps = parse_timestamps([s[2] for s in staged]) if cols["time"] else None
    items: list[Item] = []
    seen_ids: dict[str, int] = {}
    seen_keys: dict[tuple[str, str], int] = {}
    for k, (rowno, text, raw_ts, source, given_id, hint) in enumerate(staged):
        ts = None
        if stamps is not None:
            value = stamps.iloc[k]
            if pd.isna(value):
                rejects.append(Reject(str(path), rowno, f"unparseable timestamp ({raw_ts!r} in column "
                                      f"{cols['time']!r}; use ISO 8601, e.g. 2014-01-31T15:04:00Z)", text[:200]))
                continue
            ts = pd.Timestamp(value)
        iid = given_id or item_id(source, text, ts)
        if iid in seen_ids:
            rejects.append(Reject(str(path), rowno, f"duplicate id ({iid}; first at row {seen_ids[iid]})", text[:200]))
            continue
        key = (normalise_text(text), ts.isoformat() if ts is not None else "")
        if key in seen_keys:
            rejects.append(Reject(str(path), rowno, f"duplicate text and timestamp (first at row {seen_keys[key]})",
                                  text[:200]))
            continue
        seen_ids[iid] = rowno
        seen_keys[key] = rowno
        items.append(Item(iid, text, ts, source, hint, rowno))
    rejects.sort(key=lambda r: r.row)
    return IngestResult(items, rejects, cols, rows_read, truncated)


def _cell(rec: dict[str, Any], col: str | None) -> str | None:
    if not col:
        return None
    value = rec.get(col)
    if value is None:
        return None
    value = str(value).strip()
    return value or None
