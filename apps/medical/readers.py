"""Read clinical notes: a plain-text file, a directory of them, a CSV with a note column, or JSONL.

Every input ends as a ``NoteInput`` or a ``Reject`` (core.data) with its reason — nothing is dropped
silently, and in a folder one bad file is a reject, not the end of the run. Decoding (``encoding="auto"``):
UTF-8 (a BOM is removed), UTF-16/32 when the file starts with their byte-order mark, else cp1252, else
latin-1, with a warning recorded on the note; ``encoding="latin-1"`` (any codec name) decodes with that
codec only, and a file that does not decode is rejected with the offset of the first bad byte. Binary
files (NUL bytes or > 10% control characters in the first 8 KB; named when their format is known) and
empty notes are rejected. Offsets downstream index the decoded text exactly as returned here.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kgfusion.core.data import Reject
from kgfusion.core.errors import DataError
from kgfusion.core.textfile import NotTextError, canonical, decode, show_names, sniff_binary, utf_bom

TEXT_SUFFIXES = (".txt", ".text", ".note", ".md")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")
TEXT_COLUMNS = ("text", "note", "note_text", "body", "report", "TEXT")
ID_COLUMNS = ("note_id", "id", "document_id", "doc_id", "ROW_ID")


@dataclass
class NoteInput:
    """One note to extract from: id, text, where it came from (file, row) and decoding warnings."""

    note_id: str
    text: str
    source: str = ""
    row: int = 0
    encoding: str = "utf-8"
    warnings: list[str] = field(default_factory=list)


@dataclass
class ReadNotes:
    notes: list[NoteInput] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def looks_binary(data: bytes) -> bool:
    """True for NUL bytes or more than 10% control characters (except tab/newlines) in the first 8 KB.

    UTF-16/32 text with its byte-order mark is text (full of NUL bytes, but decodable)."""
    head = data[:8192]
    if utf_bom(head):
        return False
    if b"\x00" in head:
        return True
    if not head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls / len(head) > 0.10


def binary_reason(data: bytes) -> str:
    """Why ``data`` is not a note: its format when known (core.textfile.sniff_binary), never its bytes."""
    what = sniff_binary(data[:8192])
    if what and not what.startswith("NUL"):
        return f"binary file ({what}); not a text note"
    return "binary file (NUL or control bytes); not a text note"


def decode_bytes(data: bytes) -> tuple[str, str, list[str]]:
    """(text, encoding, warnings): UTF-8 (BOM stripped), UTF-16/32 after their BOM, else cp1252, else latin-1.

    Never fails (a broken UTF-16/32 file keeps U+FFFD replacement characters, with a warning)."""
    bom = utf_bom(data)
    if bom:
        try:
            return data.decode(bom), bom, []
        except UnicodeDecodeError as exc:
            return data.decode(bom, errors="replace"), bom, [f"not valid {bom.upper()} (byte {exc.start}); "
                                                            "bad bytes replaced by U+FFFD"]
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start}"
    try:
        return data.decode("cp1252"), "cp1252", [f"not valid UTF-8 ({where}); decoded as cp1252"]
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1", [f"not valid UTF-8 ({where}) nor cp1252; decoded as latin-1"]


def _pick(columns: list[str], wanted: str, candidates: tuple[str, ...], path: Path, what: str) -> str | None:
    if wanted:
        if wanted not in columns:
            raise DataError(f"{path}: no column {wanted!r} for the {what}; columns are {show_names(columns)}")
        return wanted
    return next((c for c in candidates if c in columns), None)


def read_notes(path: str | Path, *, text_col: str = "", id_col: str = "", encoding: str = "auto") -> ReadNotes:
    """Notes from a file or directory (see the module docstring); ``text_col``/``id_col`` for tables
    (default: the first of TEXT_COLUMNS / ID_COLUMNS present); ``encoding`` "auto" or a codec name."""
    path = Path(path)
    if encoding != "auto":
        canonical(encoding)  # an unknown codec name is one error up front, not one reject per file
    out = ReadNotes()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"{path}: the directory holds no files; pass a .txt/.csv/.jsonl file or a folder of notes")
        for p in files:
            if p.suffix.lower() in TEXT_SUFFIXES + TABLE_SUFFIXES:
                try:
                    part = read_notes(p, text_col=text_col, id_col=id_col, encoding=encoding)
                except DataError as exc:  # e.g. a CSV without a note column: that file is a reject, not the run
                    out.rejects.append(Reject(str(p), 0, str(exc).removeprefix(f"{p}: ")))
                    continue
                out.notes += part.notes
                out.rejects += part.rejects
            else:
                out.rejects.append(Reject(str(p), 0, f"unsupported file type {p.suffix or '(none)'}; "
                                          f"use {', '.join(TEXT_SUFFIXES + TABLE_SUFFIXES)}"))
        return out
    if not path.is_file():
        raise DataError(f"{path}: file or directory not found")
    data = path.read_bytes()
    if encoding == "auto":
        if looks_binary(data):
            out.rejects.append(Reject(str(path), 0, binary_reason(data)))
            return out
        text, used, warnings = decode_bytes(data)
    else:
        try:
            text, used, warnings = decode(data, path, encoding), encoding, []
        except NotTextError as exc:  # "PATH is not latin-1 text (invalid byte at offset N, line L); ..."
            out.rejects.append(Reject(str(path), 0, str(exc).removeprefix(f"{path} is ")))
            return out
        if "\x00" in text[:8192]:
            out.rejects.append(Reject(str(path), 0, binary_reason(data)))
            return out
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        _read_table(path, text, used, warnings, "\t" if suffix == ".tsv" else ",", text_col, id_col, out)
    elif suffix in (".jsonl", ".ndjson"):
        _read_jsonl(path, text, used, warnings, text_col, id_col, out)
    else:
        if not text.strip():
            out.rejects.append(Reject(str(path), 0, "empty note"))
        else:
            out.notes.append(NoteInput(path.stem, text, str(path), 0, used, list(warnings)))
    return out


def _take(path: Path, row: int, note_id: str, text, encoding: str, warnings: list[str], out: ReadNotes) -> None:
    if not isinstance(text, str):
        out.rejects.append(Reject(str(path), row, f"note text is {type(text).__name__}, not a string"))
    elif not text.strip():
        out.rejects.append(Reject(str(path), row, "empty note"))
    elif "\x00" in text:
        out.rejects.append(Reject(str(path), row, "binary content (NUL characters) in the note"))
    else:
        out.notes.append(NoteInput(note_id, text, str(path), row, encoding, list(warnings)))


def _read_table(path: Path, text: str, encoding: str, warnings: list[str], delimiter: str, text_col: str,
                id_col: str, out: ReadNotes) -> None:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        columns = next(reader, None) or []
        tcol = _pick(columns, text_col, TEXT_COLUMNS, path, "note text")
        if tcol is None:
            if not columns:
                raise DataError(f"{path}: the file is empty; expected a header row with a note column "
                                f"({', '.join(TEXT_COLUMNS)}) and one note per row")
            raise DataError(f"{path}: no note column among {show_names(columns)}; name it one of "
                            f"{list(TEXT_COLUMNS)} or pass --text-col")
        icol = _pick(columns, id_col, ID_COLUMNS, path, "note id")
        start = reader.line_num + 1
        for values in reader:
            # a row's number is the line it starts on (quoted notes span lines); blank lines are not rows
            i, start = start, reader.line_num + 1
            if not values:
                continue
            row = dict(zip(columns, values))
            note_id = str(row.get(icol) or "").strip() if icol else ""
            _take(path, i, note_id or f"{path.stem}:{i}", row.get(tcol), encoding, warnings, out)
    except csv.Error as exc:
        raise DataError(f"{path}: CSV parse error at line {reader.line_num} ({exc}); fix the quoting or split "
                        "the huge field") from exc


def _read_jsonl(path: Path, text: str, encoding: str, warnings: list[str], text_col: str, id_col: str,
                out: ReadNotes, first_line: int = 1) -> None:
    # split on \n only: str.splitlines() would also break at U+2028, U+0085 etc. inside JSON strings
    # first_line: the file line ``text`` starts on (apps/medical/batch.py streams a file in blocks)
    for i, line in enumerate(text.split("\n"), start=first_line):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            out.rejects.append(Reject(str(path), i, f"invalid JSON ({exc.msg} at column {exc.colno})", line[:200]))
            continue
        if not isinstance(obj, dict):
            out.rejects.append(Reject(str(path), i, "a JSON object with a note text is expected"))
            continue
        tcol = text_col or next((c for c in TEXT_COLUMNS if c in obj), "")
        if not tcol or tcol not in obj:
            out.rejects.append(Reject(str(path), i, f"no note text key (tried {text_col or list(TEXT_COLUMNS)})"))
            continue
        icol = id_col or next((c for c in ID_COLUMNS if c in obj), "")
        note_id = str(obj.get(icol, "")).strip() if icol else ""
        _take(path, i, note_id or f"{path.stem}:{i}", obj[tcol], encoding, warnings, out)


def iter_texts(notes: ReadNotes) -> Iterator[tuple[str, str]]:
    for n in notes.notes:
        yield n.note_id, n.text
