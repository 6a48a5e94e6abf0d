"""Analysts' corrections: an append-only DuckDB table beside the data it corrects (issue 16).

A correction row names the domain (finance | medical), the item (a feed item id, a note id), the field
it corrects (``sentiment``, ``topic``; ``mention`` = a predicted mention is wrong, ``missed_mention``,
``attribute:<negated|possible|historical|family|hypothetical>``, ``concept``), for span fields the span
``START:END`` into ``text``, the model's value (``old_value``) and the right one (``new_value``; JSON text
for structured values such as a span), the item's text (so an export needs nothing else), who gave it,
when (naive UTC), and the model (bundle name) and model version that made the prediction.

Nothing is overwritten: the prediction stays where it is (the finance items table, the medical
``correction_predictions`` snapshot) and correcting the same item + field + span again appends a row;
the newest (``created``, then ``correction_id``) wins on export. There is no update or delete.

CSV import (``import_csv``) reads a header row and one correction per row; a domain glue turns each row
into Corrections. A bad row goes to ``FILE.rejects.csv`` (source,row,reason,raw) with its reason; a
file with no usable row is a DataError naming the file, the first bad row and its reason.
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kgfusion.core.data import Reject, write_rejects
from kgfusion.core.duckdb_files import connect, duckdb_module
from kgfusion.core.errors import DataError, KgfusionError
from kgfusion.core.textfile import brief, check_text, decoding_name, show_names

DOMAINS = ("finance", "medical")
ATTRIBUTES = ("negated", "possible", "historical", "family", "hypothetical")
SPAN_FIELDS = ("mention", "missed_mention", "concept", *(f"attribute:{a}" for a in ATTRIBUTES))
FIELDS: dict[str, tuple[str, ...]] = {"finance": ("sentiment", "topic"), "medical": SPAN_FIELDS}
MAX_WHO = 200

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS correction_seq START 1;
CREATE TABLE IF NOT EXISTS corrections (
    correction_id BIGINT PRIMARY KEY DEFAULT nextval('correction_seq'), domain VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL, field VARCHAR NOT NULL, span VARCHAR, old_value VARCHAR, new_value VARCHAR,
    text VARCHAR NOT NULL, who VARCHAR NOT NULL, created TIMESTAMP NOT NULL, model VARCHAR,
    model_version VARCHAR, source VARCHAR
);
CREATE TABLE IF NOT EXISTS correction_predictions (
    domain VARCHAR NOT NULL, item_id VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, text VARCHAR NOT NULL,
    value VARCHAR NOT NULL, model VARCHAR, model_version VARCHAR, created TIMESTAMP NOT NULL,
    PRIMARY KEY (domain, item_id, text_hash)
);
"""
COLUMNS = ("correction_id", "domain", "item_id", "field", "span", "old_value", "new_value", "text", "who",
           "created", "model", "model_version", "source")


class CorrectionError(DataError):
    """A correction that cannot be stored: the message names the value and the fix."""


class RowRejected(CorrectionError):
    """One CSV row that cannot become a correction; its message is the reject reason."""


def utc_now() -> datetime:
    """Naive UTC, like the finance store's timestamps."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def check_who(who: str | None) -> str:
    """The corrector's name, stripped; required so every correction can be traced to a person."""
    name = (who or "").strip()
    if not name:
        raise CorrectionError("a correction needs the corrector's name: pass --who NAME (any non-empty name)")
    if len(name) > MAX_WHO or any(ord(ch) < 32 for ch in name):
        raise CorrectionError(f"--who {brief(name)}: use a plain name of at most {MAX_WHO} characters")
    return name


def parse_span(span: str, text: str | None = None) -> tuple[int, int]:
    """``START:END`` (0-based, end exclusive) -> (start, end); checked against ``text`` when given."""
    start_s, sep, end_s = str(span).strip().partition(":")
    try:
        start, end = int(start_s), int(end_s)
    except ValueError:
        raise CorrectionError(f"span {brief(span)} is not START:END (character offsets, e.g. 12:20)") from None
    if not sep or start < 0 or end <= start:
        raise CorrectionError(f"span {brief(span)}: need 0 <= START < END (character offsets, e.g. 12:20)")
    if text is not None and end > len(text):
        raise CorrectionError(f"span {start}:{end} ends past the text ({len(text)} characters)")
    if text is not None and not text[start:end].strip():
        raise CorrectionError(f"span {start}:{end} covers only whitespace ({text[start:end]!r}); check the offsets")
    return start, end


def span_key(start: int, end: int) -> str:
    return f"{start}:{end}"


def span_value(start: int, end: int, label: str, text: str) -> str:
    """A mention as JSON text: start, end, label and its surface text (sorted keys, one canonical form)."""
    return json.dumps({"start": start, "end": end, "label": label, "text": text[start:end]}, sort_keys=True,
                      ensure_ascii=False)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Correction:
    """One correction (see the module docstring); ``correction_id`` and ``created`` are set when stored."""

    domain: str
    item_id: str
    field: str
    new_value: str | None
    text: str
    who: str
    old_value: str | None = None
    span: str | None = None
    model: str = ""
    model_version: str = ""
    source: str = ""
    created: datetime | None = None
    correction_id: int | None = None

    def checked(self) -> Correction:
        """This correction with ``who`` stripped, or a CorrectionError naming the bad value."""
        if self.domain not in DOMAINS:
            raise CorrectionError(f"domain {brief(self.domain)} is not one of {', '.join(DOMAINS)}")
        if self.field not in FIELDS[self.domain]:
            raise CorrectionError(f"field {brief(self.field)} is not a {self.domain} field; "
                                  f"use one of {show_names(FIELDS[self.domain])}")
        if not str(self.item_id or "").strip():
            raise CorrectionError("a correction needs the item id")
        if not isinstance(self.text, str) or not self.text.strip():
            raise CorrectionError(f"item {brief(self.item_id)}: the text it corrects is empty")
        if self.field in SPAN_FIELDS:
            if not self.span:
                raise CorrectionError(f"field {self.field} needs a span START:END")
            start, end = parse_span(self.span, self.text)
            span: str | None = span_key(start, end)
        elif self.span:
            raise CorrectionError(f"field {self.field} corrects the whole item; drop the span {brief(self.span)}")
        else:
            span = None
        if self.field != "mention" and (self.new_value is None or not str(self.new_value).strip()):
            raise CorrectionError(f"item {brief(self.item_id)} field {self.field}: the new value is empty")
        if self.field == "missed_mention":
            _check_mention(self.new_value, span or "")
        return replace(self, who=check_who(self.who), span=span, item_id=str(self.item_id).strip())

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a newer correction replaces on export: domain, item, field, span."""
        return self.domain, self.item_id, self.field, self.span or ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["created"] = self.created.isoformat() if self.created else None
        return out


def _check_mention(value: str | None, span: str) -> None:
    """A missed mention's new value: span_value JSON with a label and the correction's own span."""
    try:
        obj = json.loads(value or "")
    except json.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict) or not str(obj.get("label") or "").strip():
        raise CorrectionError(f"missed mention {span}: the new value must be a JSON span with a label "
                              "(span_value(start, end, label, text))")
    if f"{obj.get('start')}:{obj.get('end')}" != span:
        raise CorrectionError(f"missed mention {span}: its JSON says {obj.get('start')}:{obj.get('end')}")


class CorrectionStore:
    """The corrections tables in a DuckDB file (or an open connection, e.g. the finance store's).

    Use as a context manager; a connection passed in is left open (its owner closes it). Read-only on a
    file without the tables reads as empty.
    """

    def __init__(self, path: str | Path | None = None, *, con: Any = None, read_only: bool = False) -> None:
        duckdb = duckdb_module()
        self.path = str(path) if path is not None else "(connection)"
        self._own = con is None
        if con is None:
            if path is None:
                raise KgfusionError("CorrectionStore needs a path or a connection")
            if read_only and self.path != ":memory:" and not Path(self.path).is_file():
                raise DataError(f"{self.path}: corrections database not found; record corrections first "
                                "(`kgfusion finance correct` / `kgfusion medical correct`)")
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            con = connect(self.path, read_only=read_only, what="corrections database")
        self.con = con
        self.read_only = read_only
        try:
            if not read_only:
                self.con.execute(SCHEMA)
            names = {r[0] for r in self.con.execute(
                "SELECT table_name FROM information_schema.tables").fetchall()}
        except duckdb.Error as exc:
            self.close()
            raise DataError(f"{self.path}: not a readable DuckDB database ({exc})") from exc
        self.has_table = "corrections" in names
        self.has_predictions = "correction_predictions" in names

    def __enter__(self) -> CorrectionStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self.con.close()

    # -- writes ------------------------------------------------------------------------------------
    def add(self, correction: Correction) -> Correction:
        return self.add_many([correction])[0]

    def add_many(self, corrections: Sequence[Correction]) -> list[Correction]:
        """Check and append corrections in one transaction (all or none); returns them with id and created."""
        checked = [c.checked() for c in corrections]
        if not checked:
            return []
        if self.read_only:
            raise KgfusionError(f"{self.path}: opened read-only; cannot add corrections")
        stamp = utc_now()
        out: list[Correction] = []
        self.con.execute("BEGIN TRANSACTION")
        try:
            for c in checked:
                created = c.created or stamp
                row = self.con.execute(
                    "INSERT INTO corrections (domain, item_id, field, span, old_value, new_value, text, who, "
                    "created, model, model_version, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "RETURNING correction_id",
                    [c.domain, c.item_id, c.field, c.span, c.old_value, c.new_value, c.text, c.who, created,
                     c.model, c.model_version, c.source]).fetchone()
                out.append(replace(c, created=created, correction_id=int(row[0])))
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        return out

    def record_prediction(self, domain: str, item_id: str, text: str, value: Any, model: str = "",
                          model_version: str = "") -> bool:
        """Keep the model's prediction for an item's text (e.g. a note's mentions) the first time it is
        corrected; an existing snapshot for the same text is never replaced. True when one was written."""
        key = [domain, item_id, text_hash(text)]
        if self.con.execute("SELECT 1 FROM correction_predictions WHERE domain = ? AND item_id = ? AND "
                            "text_hash = ?", key).fetchone():
            return False
        self.con.execute("INSERT INTO correction_predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [*key, text, json.dumps(value, sort_keys=True, ensure_ascii=False), model, model_version,
                          utc_now()])
        return True

    # -- reads -------------------------------------------------------------------------------------
    def prediction(self, domain: str, item_id: str, text: str) -> Any | None:
        """The stored prediction snapshot of this item's text (decoded JSON), or None."""
        if not self.has_predictions:
            return None
        row = self.con.execute("SELECT value FROM correction_predictions WHERE domain = ? AND item_id = ? AND "
                               "text_hash = ?", [domain, item_id, text_hash(text)]).fetchone()
        return json.loads(row[0]) if row else None

    def select(self, domain: str | None = None, item_id: str | None = None, field: str | None = None,
             who: str | None = None) -> list[Correction]:
        """Corrections, oldest first, filtered on any of domain, item id, field and who (exact match)."""
        if not self.has_table:
            return []
        where, args = [], []
        for col, val in (("domain", domain), ("item_id", item_id), ("field", field), ("who", who)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = (f"SELECT {', '.join(COLUMNS)} FROM corrections" + (f" WHERE {' AND '.join(where)}" if where else "")
               + " ORDER BY created, correction_id")
        return [_row(r) for r in self.con.execute(sql, args).fetchall()]

    def latest(self, domain: str, fields: Iterable[str] | None = None) -> list[Correction]:
        """The newest correction per (item, field, span) of ``domain``, in item order."""
        wanted = set(fields) if fields is not None else None
        newest: dict[tuple[str, str, str, str], Correction] = {}
        for c in self.select(domain):
            if wanted is None or c.field in wanted:
                newest[c.key] = c  # list() is oldest first: the last one seen wins
        return sorted(newest.values(), key=lambda c: (c.item_id, c.field, c.span or "", c.correction_id or 0))

    def latest_for(self, domain: str, item_id: str, field: str, span: str | None = None) -> Correction | None:
        found = [c for c in self.select(domain, item_id, field) if (c.span or "") == (span or "")]
        return found[-1] if found else None

    def counts(self) -> dict[str, int]:
        if not self.has_table:
            return {}
        rows = self.con.execute("SELECT domain || ':' || field, count(*) FROM corrections GROUP BY 1 ORDER BY 1")
        return {str(k): int(n) for k, n in rows.fetchall()}


def _row(r: Sequence[Any]) -> Correction:
    d = dict(zip(COLUMNS, r))
    return Correction(domain=d["domain"], item_id=d["item_id"], field=d["field"], new_value=d["new_value"],
                      text=d["text"], who=d["who"], old_value=d["old_value"], span=d["span"],
                      model=d["model"] or "", model_version=d["model_version"] or "", source=d["source"] or "",
                      created=d["created"], correction_id=int(d["correction_id"]))


# -- CSV import ------------------------------------------------------------------------------------
RowMapper = Callable[[dict[str, str], int], list[Correction]]


@dataclass
class ImportResult:
    added: list[Correction]
    rejects: list[Reject]
    rows: int  # data rows read (added rows + rejected rows)
    rejects_path: Path | None = None

    def summary(self) -> str:
        items = len({c.item_id for c in self.added})
        return (f"{len(self.added)} corrections of {items} items imported, {len(self.rejects)} rows rejected"
                + (f" -> {self.rejects_path}" if self.rejects_path else ""))


def rejects_path_for(path: str | Path) -> Path:
    return Path(f"{path}.rejects.csv")


def import_csv(store: CorrectionStore, path: str | Path, to_corrections: RowMapper, *,
               required: Sequence[str | tuple[str, ...]], encoding: str = "utf-8") -> ImportResult:
    """Import a corrections CSV: header row, then one row per item; ``to_corrections(row, line)`` maps a
    row (column -> stripped value) to Corrections or raises RowRejected / DataError (the reason).

    ``required`` columns must be in the header (a tuple: at least one of those). Rejected rows are written to
    FILE.rejects.csv; accepted rows are stored in one transaction. No accepted row: DataError.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    check_text(path, encoding)
    rejects: list[Reject] = []
    pending: list[Correction] = []
    rows = 0
    try:
        with open(path, encoding=decoding_name(encoding), newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, None) or []]
            _check_header(path, header, required)
            start = reader.line_num + 1
            for values in reader:
                line, start = start, reader.line_num + 1
                if not any(v.strip() for v in values):
                    continue  # a blank line is not a row
                rows += 1
                raw = ",".join(values)[:200]
                if len(values) != len(header):
                    rejects.append(Reject(str(path), line, f"{len(values)} fields, the header has {len(header)}; "
                                          "quote values that contain commas", raw))
                    continue
                row = {h: v.strip() for h, v in zip(header, values)}
                try:
                    made = [c.checked() for c in to_corrections(row, line)]
                except DataError as exc:
                    rejects.append(Reject(str(path), line, str(exc), raw))
                    continue
                pending += [replace(c, source=c.source or f"csv:{path.name}:{line}") for c in made]
    except csv.Error as exc:
        raise DataError(f"{path}: CSV parse error ({exc}); fix the quoting") from exc
    rej_path = write_rejects(rejects, rejects_path_for(path)) if rejects else None
    if not pending:
        first = f"first: row {rejects[0].row}: {rejects[0].reason}" if rejects else "the file has no data rows"
        raise DataError(f"{path}: 0 corrections imported, {len(rejects)} rows rejected"
                        + (f" -> {rej_path}" if rej_path else "") + f" ({first})")
    added = store.add_many(pending)
    return ImportResult(added, rejects, rows, rej_path)


def _check_header(path: Path, header: list[str], required: Sequence[str | tuple[str, ...]]) -> None:
    names = [c if isinstance(c, str) else " or ".join(c) for c in required]
    if not header:
        raise DataError(f"{path}: the file is empty; expected a header row with {', '.join(names)}")
    missing = [n for c, n in zip(required, names) if not any(h in header for h in ((c,) if isinstance(c, str) else c))]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {show_names(header)}. "
                        f"The header needs {', '.join(names)}")


def bundle_identity(bundle_dir: str | Path) -> tuple[str, str]:
    """(model name, model version) of a bundle for the corrections it made: the manifest's name and its
    registry version (``extra.version``) when set, else its creation stamp; ("", "") when unreadable."""
    from kgfusion.core.bundle import read_manifest

    try:
        m = read_manifest(bundle_dir)
    except KgfusionError:
        return Path(bundle_dir).name, ""
    version = m.extra.get("version") if isinstance(m.extra, dict) else None
    return m.name or Path(bundle_dir).name, str(version or m.created or "")


def export_training_data(db: str | Path, *, domain: str, field: str, out: str | Path):
    """Write the ``field`` corrections (sentiment | topic | ner) of ``domain`` in ``db`` to ``out`` as training
    data core.data reads (see correction_export); returns its ExportResult. DataError when there are none."""
    from kgfusion.core.lifecycle.correction_export import export

    with CorrectionStore(db, read_only=True) as store:
        return export(store, domain, field, out)
