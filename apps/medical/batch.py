"""`medical extract` on the core batch engine (core/batch_engine.py): shards of notes, local or on Ray.

Each finished shard is kept in ``<out>.shards/`` (one row per input note: its JSONL line, CSV mention
rows, FHIR resources, or its reject), so a killed run resumes where it stopped and other settings are
refused unless ``restart``; the JSONL / CSV outputs are then streamed shard by shard, written atomically.
Ray workers build the extractor once each from the config (paths and settings only).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import pandas as pd

from kgfusion.apps.medical.readers import NoteInput, ReadNotes, read_notes
from kgfusion.core import batch_engine as be
from kgfusion.core.data import Reject
from kgfusion.core.fileio import atomic_write, atomic_write_text

MANIFEST_VERSION = 1
SHARD_COLUMNS = ("note_id", "kind", "source", "row", "reason", "jsonl", "csv", "fhir")
ATTRIBUTES = ("negated", "possible", "historical", "family", "hypothetical")


# ------------------------------------------------------------------------------------------ input
@dataclass
class NoteStream:
    """The notes of a file or folder, one file at a time (a folder of many notes is never held whole);
    ``rejects`` fills as it is read. A single table file is read whole (its encoding is decided on it)."""

    path: Path
    text_col: str = ""
    id_col: str = ""
    encoding: str = "auto"
    rejects: list[Reject] = field(default_factory=list)

    def __iter__(self) -> Iterator[NoteInput]:
        if not self.path.is_dir():
            if _streamable(self.path, self.encoding):
                yield from _stream_jsonl(self.path, self)
                return
            read = read_notes(self.path, text_col=self.text_col, id_col=self.id_col, encoding=self.encoding)
            self.rejects += read.rejects
            yield from read.notes
            return
        files = sorted(p for p in self.path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            read_notes(self.path)  # the readers' own error for an empty folder
        for p in files:
            part = _read_one(p, self)
            self.rejects += part.rejects
            yield from part.notes


STREAM_LINES = 1000  # JSONL lines parsed per step when a file is streamed


def _streamable(path: Path, encoding: str) -> bool:
    """A JSONL file read_notes would decode as UTF-8 (auto or utf-8, text, valid UTF-8): it can be read
    block by block with the same result. One cheap pass validates the bytes without keeping them."""
    import codecs

    from kgfusion.apps.medical.readers import looks_binary
    from kgfusion.core.textfile import utf_bom

    if not path.is_file() or path.suffix.lower() not in (".jsonl", ".ndjson"):
        return False
    if encoding != "auto" and codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
        return False
    with open(path, "rb") as fh:
        head = fh.read(8192)
        if looks_binary(head) or utf_bom(head):  # binary: read_notes' reject; UTF-16/32: its decoder
            return False
        if encoding != "auto" and head.startswith(b"\xef\xbb\xbf") and codecs.lookup(encoding).name == "utf-8":
            return False  # a BOM under --encoding utf-8 stays in the text there: keep that behaviour
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            decoder.decode(head)
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:  # read_notes falls back to cp1252 / latin-1 for the whole file
            return False
    return True


def _stream_jsonl(path: Path, stream: NoteStream) -> Iterator[NoteInput]:
    """read_notes' JSONL rules, STREAM_LINES lines at a time (file line numbers kept)."""
    from kgfusion.apps.medical.readers import _read_jsonl

    def flush(lines: list[str], first: int) -> ReadNotes:
        part = ReadNotes()
        used = "utf-8" if stream.encoding == "auto" else stream.encoding  # what read_notes records
        _read_jsonl(path, "\n".join(lines), used, [], stream.text_col, stream.id_col, part, first_line=first)
        stream.rejects += part.rejects
        return part

    with open(path, "rb") as fh:
        block: list[str] = []
        first = 1
        for lineno, raw in enumerate(fh, start=1):
            line = raw.decode("utf-8").removesuffix("\n")
            if lineno == 1:
                line = line.removeprefix("\ufeff")
            block.append(line)
            if len(block) >= STREAM_LINES:
                yield from flush(block, first).notes
                block, first = [], lineno + 1
        if block:
            yield from flush(block, first).notes


def _read_one(path: Path, stream: NoteStream) -> ReadNotes:
    """One file of a folder, with read_notes' rules (a bad file is a reject, not the end of the run)."""
    from kgfusion.apps.medical.readers import TABLE_SUFFIXES, TEXT_SUFFIXES
    from kgfusion.core.errors import DataError

    if path.suffix.lower() not in TEXT_SUFFIXES + TABLE_SUFFIXES:
        return ReadNotes([], [Reject(str(path), 0, f"unsupported file type {path.suffix or '(none)'}; "
                                     f"use {', '.join(TEXT_SUFFIXES + TABLE_SUFFIXES)}")])
    try:
        return read_notes(path, text_col=stream.text_col, id_col=stream.id_col, encoding=stream.encoding)
    except DataError as exc:  # e.g. a CSV without a note column
        return ReadNotes([], [Reject(str(path), 0, str(exc).removeprefix(f"{path}: "))])


# ----------------------------------------------------------------------------------------- worker
def note_worker(config: dict[str, Any], include_text: bool = True, build_kwargs: dict[str, Any] | None = None,
                ) -> Callable[[list[NoteInput]], pd.DataFrame]:
    """Engine worker: builds the extractor once, then turns a shard of notes into shard rows."""
    from kgfusion.apps.medical.config import MedicalConfig
    from kgfusion.apps.medical.extract import build_extractor

    extractor = build_extractor(MedicalConfig.from_dict(config), **(build_kwargs or {}))
    return lambda notes: shard_rows(extractor, notes, include_text)


def shard_rows(extractor, notes: Sequence[NoteInput], include_text: bool = True) -> pd.DataFrame:
    """One row per note: a result (its JSONL line, CSV rows, FHIR resources) or a reject with its reason."""
    from kgfusion.apps.medical.export import CSV_COLUMNS, mention_row, note_resources

    results, rejects = extractor.extract_many(notes)
    rows: list[dict[str, Any]] = []
    for r in results:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        for m in r.mentions:
            writer.writerow(mention_row(r.note_id, m))
        resources, skipped = note_resources(r)
        rows.append({"note_id": r.note_id, "kind": "note", "source": r.source, "row": 0, "reason": "",
                     "jsonl": json.dumps(r.to_dict(include_text), ensure_ascii=False, sort_keys=True) + "\n",
                     "csv": buf.getvalue(), "fhir": json.dumps([resources, skipped], ensure_ascii=False)})
    ids = {(n.source or n.note_id, n.row): n.note_id for n in notes}
    for rej in rejects:
        rows.append({"note_id": ids.get((rej.source, rej.row), ""), "kind": "reject", "source": rej.source,
                     "row": int(rej.row), "reason": rej.reason, "jsonl": "", "csv": "", "fhir": ""})
    return pd.DataFrame(rows, columns=list(SHARD_COLUMNS))


# ---------------------------------------------------------------------------------------- summary
class Summary:
    """The counts of ``medical extract``'s report, accumulated note by note (from the JSONL dicts)."""

    def __init__(self) -> None:
        self.notes = self.mentions = self.asserted = self.linked = self.warnings = 0
        self.by_label: Counter = Counter()
        self.by_source: Counter = Counter()
        self.attributes = dict.fromkeys(ATTRIBUTES, 0)
        self.concepts: Counter = Counter()

    def add(self, note: dict[str, Any]) -> None:
        self.notes += 1
        self.warnings += len(note.get("warnings") or [])
        for m in note.get("mentions") or []:
            self.mentions += 1
            self.by_label[m["label"]] += 1
            self.asserted += bool(m["asserted"])
            for a in ATTRIBUTES:
                self.attributes[a] += bool((m.get("attributes") or {}).get(a))
            concept = m.get("concept")
            self.linked += concept is not None
            self.by_source["+".join(m["sources"])] += 1
            if concept and m["asserted"]:
                self.concepts[(concept["curie"], concept["label"])] += 1

    def to_dict(self, rejected: int, seconds: float) -> dict[str, Any]:
        return {
            "notes": self.notes, "rejected": rejected, "mentions": self.mentions, "by_label": dict(self.by_label),
            "asserted": self.asserted, "attributes": dict(self.attributes), "linked": self.linked,
            "by_source": dict(self.by_source),
            "top_asserted_concepts": [{"curie": c, "label": lab, "mentions": n}
                                      for (c, lab), n in self.concepts.most_common(10)],
            "warnings": self.warnings, "seconds": round(seconds, 2),
            "notes_per_s": round(self.notes / seconds, 2) if seconds > 0 else None,
        }


def summarize_notes(notes: Iterable[dict[str, Any]], rejected: int, seconds: float) -> dict[str, Any]:
    counter = Summary()
    for note in notes:
        counter.add(note)
    return counter.to_dict(rejected, seconds)


# ------------------------------------------------------------------------------------------ driver
@dataclass
class ExtractRun:
    summary: Summary
    rejects: list[Reject]
    fhir: dict[str, int] | None
    stats: be.RunStats


def notes_digest(path: Path) -> str:
    """SHA-256 of the input file, or of a folder's file names and contents."""
    if path.is_dir():
        return be.dir_fingerprint(path)
    from kgfusion.core.fileio import sha256_file

    return sha256_file(path)


def extract_to_files(notes: Iterable[NoteInput], stream_rejects: Callable[[], list[Reject]], *, out: str | Path,
                     csv_path: str | Path | None, fhir_path: str | Path | None, worker: be.WorkerSpec,
                     local_fn: Callable[[list[NoteInput]], pd.DataFrame] | None, manifest: dict[str, Any],
                     engine: be.Engine = "local", shard_size: int = 64, restart: bool = False,
                     progress: bool = False) -> ExtractRun:
    """Run the shards, then stream them into ``out`` (JSONL), ``csv_path`` and ``fhir_path``.

    Rejects: the reader's (``stream_rejects()`` once the input is read) then the extractor's, in order.
    """
    store = be.ShardStore(Path(out), manifest | {"version": MANIFEST_VERSION, "shard_size": shard_size},
                          phrases={"input_sha256": "the input notes changed"})
    store.open(restart)
    try:
        stats = be.run_shards(
            be.chunked(notes, shard_size), worker, engine=engine, store=store,
            done=lambda i, shard: store.is_done(i, "note_id", [n.note_id for n in shard], exact=False),
            local_fn=local_fn, describe=lambda i, shard: f"shard {i + 1} (notes {shard[0].note_id}..{shard[-1].note_id})",
            progress=progress, desc="extract", unit="note")
        n = stats.shards
        summary, extract_rejects = Summary(), []

        def note_frames() -> Iterator[pd.DataFrame]:
            for frame in store.frames(n):
                done = frame[frame["kind"] == "note"]
                for line in done["jsonl"]:
                    summary.add(json.loads(line))
                extract_rejects.extend(Reject(s, int(r), why) for s, r, why in
                                       frame.loc[frame["kind"] == "reject", ["source", "row", "reason"]].itertuples(
                                           index=False))
                yield done

        atomic_write(out, lambda p: _write_lines(p, (f["jsonl"] for f in note_frames())))
        if csv_path:
            from kgfusion.apps.medical.export import CSV_COLUMNS

            header = [",".join(CSV_COLUMNS) + "\n"]  # what csv.DictWriter.writeheader writes for these names
            atomic_write(csv_path, lambda p: _write_lines(p, chain([header], (f.loc[f["kind"] == "note", "csv"]
                                                                             for f in store.frames(n)))))
        fhir = _write_fhir(store, n, fhir_path) if fhir_path else None
    finally:
        store.close()
    store.remove()
    return ExtractRun(summary, stream_rejects() + extract_rejects, fhir, stats)


def _write_lines(path: Path, parts: Iterable[Iterable[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for part in parts:
            for text in part:
                fh.write(text)


def _write_fhir(store: be.ShardStore, n: int, path: str | Path) -> dict[str, int]:
    """The FHIR Bundle of every note (export.to_fhir from the shards' per-note resources).

    A Bundle is one JSON document, so its entries are held in memory (only with --fhir)."""
    from kgfusion.apps.medical.export import fhir_bundle

    bundle, summary = fhir_bundle(json.loads(text) for frame in store.frames(n)
                                  for text in frame.loc[frame["kind"] == "note", "fhir"])
    atomic_write_text(path, json.dumps(bundle, indent=2, ensure_ascii=False) + "\n")
    return summary


def config_digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def model_identity(config: dict[str, Any], build_kwargs: dict[str, Any]) -> tuple[str, str]:
    """(model name as build_extractor reports it, fingerprint of the bundle) without loading the model."""
    from kgfusion.apps.common import promoted_bundle, repo_data_dir
    from kgfusion.apps.medical.extract import resolve_bundle

    if build_kwargs.get("predictor") is not None or build_kwargs.get("with_model") is False:
        return "model", "injected"
    data = Path(build_kwargs["data_dir"]) if build_kwargs.get("data_dir") else repo_data_dir()
    resolved = promoted_bundle(resolve_bundle(config["bundle"], data))
    return resolved.label, be.dir_fingerprint(resolved.path)
