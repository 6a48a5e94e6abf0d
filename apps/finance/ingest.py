"""Read a feed (CSV/TSV, JSONL, optionally .gz) into Items; every row is an Item or a Reject.

Validation up front: the file must be text in its encoding (UTF-8 unless ``encoding=`` / --encoding says
otherwise; a binary file, or one whose header or most lines do not decode, is a DataError that says so)
and the text column must exist (DataError naming the file, the columns found and the flag). Per row:
undecodable bytes, invalid JSON, wrong field counts, empty text, texts over MAX_ITEM_CHARS, unparseable
timestamps and duplicates (same id, or same normalised text + timestamp) become Rejects with file, row
and reason. Item ids are the
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
from kgfusion.core.textfile import brief, check_text, decoding_name, open_bytes, show_names

_FLAGS = {"text": "--text-col", "time": "--time-col", "id": "--id-col", "source": "--source-col",
          "ticker": "--ticker-col"}
_TWITTER_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # "Wed Jan 01 03:59:03 +0000 2014"
MAX_ITEM_CHARS = 100_000  # a news item or post; longer texts are rejected rather than scored for minutes


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
    n_items: int | None = None  # the item count when ``items`` was streamed, not kept

    def summary(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for r in self.rejects:
            key = r.reason.split(" (")[0]
            reasons[key] = reasons.get(key, 0) + 1
        items = self.n_items if self.n_items is not None else len(self.items)
        return {"rows_read": self.rows_read, "items": items, "rejected": len(self.rejects),
                "reject_reasons": reasons, "columns": self.columns, "truncated": self.truncated}


def no_items_error(path: str | Path, feed: IngestResult, rejects_path: str | Path | None) -> DataError:
    """The one-line error of a feed with nothing to score: counts, where the rejects went, the first reason."""
    if not feed.rejects:
        return DataError(f"{path}: 0 items scored, 0 rejected; the feed has no data rows")
    first = feed.rejects[0]
    return DataError(f"0 items scored, {len(feed.rejects)} rejected -> {rejects_path} "
                     f"(first: {path} row {first.row}: {first.reason})")


def _format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    raise DataError(f"{path}: unknown feed type; use .csv, .tsv, .jsonl or .ndjson (optionally .gz)")


def _raw_rows(path: Path, fmt: str, encoding: str = "utf-8"
              ) -> Iterator[tuple[int, dict[str, Any] | None, str, list[str]]]:
    """(row number, record or None, reject reason, header) per data row; header is [] for JSONL.

    The row number is the file line the row starts on (a quoted CSV field may span lines)."""
    try:
        yield from _parse_rows(path, fmt, encoding)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc}); re-compress it or pass the plain file") from exc
    except UnicodeDecodeError as exc:  # bytes surrogateescape cannot carry (e.g. a broken UTF-16 pair)
        raise DataError(f"{path} is not {encoding} text ({exc.reason}); convert it or pass --encoding") from exc


def _bad_bytes(encoding: str) -> str:
    name = decoding_name(encoding).removesuffix("-sig")
    return f"not valid {'UTF-8' if name == 'utf-8' else name} (convert the file or pass --encoding)"


def _parse_rows(path: Path, fmt: str, encoding: str) -> Iterator[tuple[int, dict[str, Any] | None, str, list[str]]]:
    # surrogateescape keeps bad bytes visible per field, so one bad row does not sink the file
    # utf-8-sig: a BOM before a quoted header ("id",...) or a JSON object would otherwise stay in the text
    codec = decoding_name(encoding)
    if fmt == "jsonl":
        with open_bytes(path) as fh:
            text = io.TextIOWrapper(fh, encoding=codec, errors="surrogateescape", newline="\n")
            for lineno, line in enumerate(text, start=1):
                if not line.strip():
                    continue  # blank lines are not rows
                if _has_surrogates(line):
                    yield lineno, None, _bad_bytes(encoding), []
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
    delimiter = _delimiter(path)
    with open_bytes(path) as fh:
        text = io.TextIOWrapper(fh, encoding=codec, errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        try:
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
                    yield rowno, None, _bad_bytes(encoding), header
                    continue
                if len(values) != len(header):
                    yield rowno, None, f"wrong number of fields (expected {len(header)}, found {len(values)})", header
                    continue
                yield rowno, dict(zip(header, values)), "", header
        except csv.Error as exc:
            raise DataError(f"{path}: CSV parse error at line {reader.line_num} ({exc}); fix the quoting or "
                            "split the huge field") from exc


def _delimiter(path: Path) -> str:
    return "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","


_SURROGATE = re.compile("[\udc80-\udcff]")


def _has_surrogates(s: str) -> bool:
    return _SURROGATE.search(s) is not None


def _peek_columns(path: Path, fmt: str, encoding: str = "utf-8") -> tuple[list[str], bool]:
    """(columns, has content): the CSV header, or the union of keys of the first 50 JSON objects.

    A JSONL file whose lines hold no JSON object has content but no columns.
    """
    if fmt == "csv":
        with open_bytes(path) as fh:
            text = io.TextIOWrapper(fh, encoding=decoding_name(encoding), errors="surrogateescape", newline="")
            reader = csv.reader(text, delimiter=_delimiter(path))
            try:
                header = next(reader, None)
            except csv.Error as exc:
                raise DataError(f"{path}: CSV parse error in the header line ({exc}); fix the quoting or "
                                "split the huge field") from exc
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                raise DataError(f"{path}: corrupt or truncated gzip file ({exc}); re-compress it or pass the "
                                "plain file") from exc
        header = [h.strip().lstrip("\ufeff") for h in header or []]
        return header, bool(header)
    keys: dict[str, None] = {}
    objects = 0
    content = False
    for _, rec, _, _ in _raw_rows(path, fmt, encoding):
        content = True
        if rec is not None:
            keys.update(dict.fromkeys(rec))
            objects += 1
            if objects >= 50:
                break
    return list(keys), content


def resolve_columns(path: Path, found: list[str], config: FinanceConfig) -> dict[str, str | None]:
    """Role -> column: the configured name (must exist) or the first AUTO_COLUMNS match."""
    if config.text_col not in found:
        raise DataError(f"{path}: no text column {config.text_col!r}; columns found: {show_names(found)}. "
                        f"Pass {_FLAGS['text']} NAME to name the column holding the text.")
    out: dict[str, str | None] = {"text": config.text_col}
    for role in ("time", "id", "source", "ticker"):
        wanted = getattr(config, f"{role}_col")
        if wanted:
            if wanted not in found:
                raise DataError(f"{path}: no {role} column {wanted!r}; columns found: {show_names(found)}. "
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


def check_feed(path: str | Path, config: FinanceConfig | None = None, encoding: str = "utf-8"
               ) -> dict[str, str | None]:
    """Validate a feed up front (type, encoding, columns) without reading it all: role -> column.

    Cheap (the header, or the first 50 JSON lines): commands call it before loading a model.
    """
    config = config or FinanceConfig()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: feed file not found")
    fmt = _format(path)
    check_text(path, encoding, rows=True)
    columns, content = _peek_columns(path, fmt, encoding)
    if not content:
        raise DataError(f"{path}: the file is empty (no header, no rows); 0 items scored")
    if fmt == "jsonl" and not columns:  # no line is a JSON object: every row becomes a reject
        return {"text": config.text_col, "time": None, "id": None, "source": None, "ticker": None}
    return resolve_columns(path, columns, config)


def read_feed(path: str | Path, config: FinanceConfig | None = None, limit: int | None = None,
              encoding: str = "utf-8") -> IngestResult:
    """Read a feed; ``limit`` stops after that many accepted items (the rest is not read).

    ``encoding``: the file's text encoding (UTF-8 by default; a BOM is allowed).
    """
    stream = FeedStream(path, config, limit=limit, encoding=encoding)
    items = list(stream)
    return stream.result(items)


STREAM_BLOCK = 1024  # rows parsed (timestamps, duplicates) per step of a FeedStream


class FeedStream:
    """The items of a feed, read lazily (memory stays bounded on millions of rows); after iterating,
    ``rejects`` (sorted by row), ``rows_read``, ``truncated`` and ``items`` (a count) describe the feed
    exactly as :func:`read_feed` does. Validation (type, encoding, columns) runs when it is created.

    Duplicate detection keeps a 12-byte digest per item, not its text.
    """

    def __init__(self, path: str | Path, config: FinanceConfig | None = None, limit: int | None = None,
                 encoding: str = "utf-8") -> None:
        self.config = config or FinanceConfig()
        self.path = Path(path)
        if limit is not None and limit < 1:
            raise DataError(f"limit={limit} must be >= 1")
        self.limit, self.encoding = limit, encoding
        self.columns = check_feed(self.path, self.config, encoding)
        self.rejects: list[Reject] = []
        self.rows_read = 0
        self.items = 0
        self.truncated = False
        self._started = False

    def result(self, items: list[Item] | None = None) -> IngestResult:
        """An IngestResult of the consumed stream (``items``: the items, when the caller kept them)."""
        return IngestResult(items if items is not None else [], self.rejects, self.columns, self.rows_read,
                            self.truncated, None if items is not None else self.items)

    def summary(self) -> dict[str, Any]:
        return self.result().summary()

    def __iter__(self) -> Iterator[Item]:
        if self._started:
            raise DataError(f"{self.path}: a feed stream is read once")
        self._started = True
        path, cols, limit = self.path, self.columns, self.limit
        source_default = self.config.default_source or path.name.split(".")[0]
        seen_ids: dict[str, int] = {}
        seen_keys: dict[bytes, int] = {}
        staged: list[tuple[int, str, str | None, str, str | None, str | None]] = []  # row, text, ts, source, id, hint
        n_staged = 0
        for rowno, rec, reason, _ in _raw_rows(path, _format(path), self.encoding):
            if limit is not None and n_staged >= limit:
                self.truncated = True
                break
            self.rows_read += 1
            if rec is None:
                self.rejects.append(Reject(str(path), rowno, reason))
                continue
            text = rec.get(cols["text"])
            text = html.unescape(str(text)).strip() if text is not None else ""
            if not text:
                self.rejects.append(Reject(str(path), rowno, "empty text"))
                continue
            if len(text) > MAX_ITEM_CHARS:
                self.rejects.append(Reject(str(path), rowno, f"text too long ({len(text):,} characters; at most "
                                           f"{MAX_ITEM_CHARS:,}): split it into several items", text[:200]))
                continue
            raw_ts = _cell(rec, cols["time"])
            if cols["time"] and not raw_ts:
                self.rejects.append(Reject(str(path), rowno, f"empty timestamp (column {cols['time']!r})",
                                           text[:200]))
                continue
            staged.append((rowno, text, raw_ts, _cell(rec, cols["source"]) or source_default,
                           _cell(rec, cols["id"]), (_cell(rec, cols["ticker"]) or "").upper() or None))
            n_staged += 1
            if len(staged) >= STREAM_BLOCK:
                yield from self._accept(staged, seen_ids, seen_keys)
                staged = []
        yield from self._accept(staged, seen_ids, seen_keys)
        self.rejects.sort(key=lambda r: r.row)

    def _accept(self, staged, seen_ids: dict[str, int], seen_keys: dict[bytes, int]) -> Iterator[Item]:
        """Timestamps, ids and duplicate checks of one block of staged rows."""
        path, cols = self.path, self.columns
        stamps = parse_timestamps([s[2] for s in staged]) if cols["time"] and staged else None
        for k, (rowno, text, raw_ts, source, given_id, hint) in enumerate(staged):
            ts = None
            if stamps is not None:
                value = stamps.iloc[k]
                if pd.isna(value):
                    self.rejects.append(Reject(str(path), rowno, f"unparseable timestamp ({brief(raw_ts)} in column "
                                               f"{cols['time']!r}; use ISO 8601, e.g. 2014-01-31T15:04:00Z)",
                                               text[:200]))
                    continue
                ts = pd.Timestamp(value)
            iid = given_id or item_id(source, text, ts)
            if iid in seen_ids:
                self.rejects.append(Reject(str(path), rowno, f"duplicate id ({iid}; first at row {seen_ids[iid]})",
                                           text[:200]))
                continue
            key = hashlib.blake2b(f"{normalise_text(text)}\x1f{ts.isoformat() if ts is not None else ''}"
                                  .encode("utf-8", "surrogatepass"), digest_size=12).digest()
            if key in seen_keys:
                self.rejects.append(Reject(str(path), rowno, "duplicate text and timestamp (first at row "
                                           f"{seen_keys[key]})", text[:200]))
                continue
            seen_ids[iid] = rowno
            seen_keys[key] = rowno
            self.items += 1
            yield Item(iid, text, ts, source, hint, rowno)


def _cell(rec: dict[str, Any], col: str | None) -> str | None:
    if not col:
        return None
    value = rec.get(col)
    if value is None:
        return None
    value = str(value).strip()
    return value or None
