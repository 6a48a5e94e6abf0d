"""Medical corrections: a clinician marks a predicted mention wrong, adds a missed one, fixes a ConText
attribute or the linked concept of a note.

Medical results have no database of their own, so corrections go to a DuckDB file given by the user
(core.lifecycle.corrections). The first correction of a note also stores the extractor's prediction for
that note text (its mentions with label, attributes and concept) as a snapshot, which is never replaced;
the NER export starts from it. Old values are the model's: the predicted span (``mention``), attribute
or concept. A note id keeps one text: corrections of a changed note need a new id (offsets would shift).

Spans are ``START:END`` character offsets into the note text (``NoteResult.text``), end exclusive.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kgfusion.apps.medical.config import LABEL_TYPES
from kgfusion.core.errors import DataError, KgfusionError
from kgfusion.core.lifecycle.correction_export import apply_corrections
from kgfusion.core.lifecycle.corrections import (
    ATTRIBUTES,
    Correction,
    CorrectionError,
    CorrectionStore,
    bundle_identity,
    check_who,
    parse_span,
    span_key,
    span_value,
)
from kgfusion.core.textfile import brief

SPAN_FIELDS = ("mention", "missed_mention")
TRUE = ("true", "yes", "1", "y")
FALSE = ("false", "no", "0", "n")


@dataclass
class PredictedNote:
    """A note as the extractor saw it: id, exact text, predicted mentions ({start, end, label, text,
    attributes, concept}) and the model (bundle name, version) that predicted them."""

    note_id: str
    text: str
    mentions: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    model_version: str = ""

    @classmethod
    def from_result(cls, result, model: str = "", model_version: str = "") -> PredictedNote:
        """From an extract.NoteResult (the page's, or a fresh extraction)."""
        return cls(result.note_id, result.text, [_mention(m.to_dict()) for m in result.mentions], model,
                   model_version)

    def snapshot(self) -> dict[str, Any]:
        return {"mentions": self.mentions}


def _mention(d: dict[str, Any]) -> dict[str, Any]:
    concept = d.get("concept")
    curie = concept.get("curie") if isinstance(concept, dict) else concept
    return {"start": int(d["start"]), "end": int(d["end"]), "label": str(d["label"]), "text": d.get("text", ""),
            "attributes": {a: bool((d.get("attributes") or {}).get(a)) for a in ATTRIBUTES}, "concept": curie}


def read_note(path: str | Path, note_id: str | None = None) -> tuple[str, str]:
    """(note id, text) of a plain-text note, decoded as `medical extract` decodes it; DataError when unusable."""
    from kgfusion.apps.medical.readers import read_notes

    read = read_notes(path)
    if len(read.notes) != 1:
        why = read.rejects[0].reason if read.rejects else "expected one plain-text note"
        raise DataError(f"{path}: not a usable note ({why}); pass a .txt note file")
    note = read.notes[0]
    return (note_id or note.note_id), note.text


def predictions_from_jsonl(path: str | Path, note_id: str, text: str) -> list[dict[str, Any]]:
    """The mentions of ``note_id`` in a `medical extract --out` JSONL (its text must be the note's)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    from kgfusion.core.textfile import read_text

    for lineno, line in enumerate(read_text(path, hint="pass the JSONL of `medical extract --out`").split("\n"),
                                  start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {lineno}: invalid JSON ({exc.msg}); pass the JSONL of `medical extract --out`") \
                from exc
        if not isinstance(obj, dict) or obj.get("note_id") != note_id:
            continue
        if ("text" in obj and obj["text"] != text) or obj.get("chars", len(text)) != len(text):
            raise DataError(f"{path} line {lineno}: note {note_id!r} there has a different text than the note file; "
                            "extract the note again")
        try:
            return [_mention(m) for m in obj.get("mentions", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path} line {lineno}: malformed mention ({exc})") from exc
    raise DataError(f"{path}: no note {note_id!r}; its ids are the note file names (pass --note-id)")


def bundle_labels(bundle: str | Path | None) -> tuple[tuple[str, ...], str, str]:
    """(entity labels, model name, model version) of a bundle: its IOB2 tags' types; the app's labels
    (Disease, Chemical) when the bundle cannot be read."""
    from kgfusion.apps.common import repo_data_dir
    from kgfusion.apps.medical.config import DEFAULT_BUNDLE
    from kgfusion.apps.medical.extract import resolve_bundle
    from kgfusion.core.bundle import read_manifest

    try:
        path = resolve_bundle(str(bundle or DEFAULT_BUNDLE), repo_data_dir())
        tags = read_manifest(path).labels
    except KgfusionError:
        return tuple(LABEL_TYPES), str(bundle or DEFAULT_BUNDLE), ""
    labels = tuple(dict.fromkeys(t[2:] for t in tags if t[:2] in ("B-", "I-"))) or tuple(LABEL_TYPES)
    return (labels, *bundle_identity(path))


@dataclass
class Edits:
    """What to correct, as the command line gives it."""

    wrong: Sequence[str] = ()  # START:END
    add: Sequence[str] = ()  # START:END:LABEL
    attribute: Sequence[str] = ()  # START:END:NAME=true|false
    concept: Sequence[str] = ()  # START:END:ID

    def __bool__(self) -> bool:
        return bool(self.wrong or self.add or self.attribute or self.concept)


def _split(value: str, option: str, form: str) -> tuple[str, str]:
    """'START:END:REST' -> ('START:END', REST)."""
    parts = str(value).split(":", 2)
    if len(parts) != 3 or not parts[2].strip():
        raise CorrectionError(f"{option} {brief(value)}: expected {form}")
    return f"{parts[0]}:{parts[1]}", parts[2].strip()


class NoteCorrector:
    """Turns edits into Corrections of one note, checked against its current mentions (prediction +
    stored corrections + the edits before)."""

    def __init__(self, note: PredictedNote, stored: Sequence[Correction], labels: Sequence[str], who: str) -> None:
        self.note = note
        self.labels = tuple(labels)
        self.who = check_who(who)
        spans = [c for c in stored if c.field in SPAN_FIELDS]
        kept, _ = apply_corrections(note.note_id, note.text, note.mentions, spans)
        self.current: dict[tuple[int, int], str] = {(s.start, s.end): s.label for s in kept}
        self.predicted = {(m["start"], m["end"]): m for m in note.mentions}

    def _base(self, field_name: str, span: tuple[int, int], old: str | None, new: str | None) -> Correction:
        n = self.note
        return Correction("medical", n.note_id, field_name, new, n.text, self.who, old_value=old,
                          span=span_key(*span), model=n.model, model_version=n.model_version)

    def _span(self, value: str, option: str, *, existing: bool = True) -> tuple[int, int]:
        span = parse_span(value, self.note.text)
        if existing and span not in self.current:
            here = f"{option} {span[0]}:{span[1]} ({self.note.text[span[0]:span[1]]!r})"
            if span in self.predicted:
                raise CorrectionError(f"{here} is marked wrong (not a mention any more); add it back with --add first")
            nearest = sorted(sorted(self.current, key=lambda se: abs(se[0] - span[0]))[:6])
            near = ", ".join(f"{s}:{e} {self.note.text[s:e]!r}" for s, e in nearest) or "none"
            raise CorrectionError(f"{here} is not a mention of note {self.note.note_id!r}; the nearest: {near}")
        return span

    def wrong(self, value: str) -> Correction:
        span = self._span(value, "--wrong")
        label = self.current.pop(span)
        return self._base("mention", span, span_value(*span, label, self.note.text), None)

    def add(self, value: str) -> Correction:
        where, label_in = _split(value, "--add", "START:END:LABEL, e.g. 12:20:Disease")
        span = self._span(where, "--add", existing=False)
        label = next((lab for lab in self.labels if lab.lower() == label_in.lower()), None)
        if label is None:
            raise CorrectionError(f"--add {brief(value)}: label {brief(label_in)} is not one of {', '.join(self.labels)}")
        clash = next(((s, e) for s, e in self.current if span[0] < e and s < span[1]), None)
        if clash:
            raise CorrectionError(f"--add {span[0]}:{span[1]} overlaps the mention {clash[0]}:{clash[1]} "
                                  f"{self.note.text[clash[0]:clash[1]]!r} ({self.current[clash]}); mark it wrong "
                                  f"first: --wrong {clash[0]}:{clash[1]}")
        self.current[span] = label
        return self._base("missed_mention", span, None, span_value(*span, label, self.note.text))

    def attribute(self, value: str) -> Correction:
        where, setting = _split(value, "--attribute", "START:END:NAME=true|false, e.g. 12:20:negated=true")
        name, eq, flag = setting.partition("=")
        name, flag = name.strip().lower(), flag.strip().lower()
        if name not in ATTRIBUTES:
            raise CorrectionError(f"--attribute {brief(value)}: {brief(name)} is not one of {', '.join(ATTRIBUTES)}")
        if not eq or flag not in TRUE + FALSE:
            raise CorrectionError(f"--attribute {brief(value)}: give the value as {name}=true or {name}=false")
        span = self._span(where, "--attribute")
        old = self.predicted.get(span, {}).get("attributes", {}).get(name)
        return self._base(f"attribute:{name}", span, None if old is None else str(bool(old)).lower(),
                          str(flag in TRUE).lower())

    def concept(self, value: str) -> Correction:
        where, cid = _split(value, "--concept", "START:END:ID, e.g. 12:20:DOID:784")
        prefix, sep, local = cid.partition(":")
        if not sep or not prefix or not local or any(ch.isspace() for ch in cid):
            raise CorrectionError(f"--concept {brief(value)}: {brief(cid)} is not a concept id like DOID:784 or "
                                  "DRUGBANK:DB00331")
        span = self._span(where, "--concept")
        return self._base("concept", span, self.predicted.get(span, {}).get("concept"), cid)

    def corrections(self, edits: Edits) -> list[Correction]:
        """All edits in order: wrong, then add (so --wrong S:E --add S:E:LABEL relabels), attribute, concept."""
        if not edits:
            raise CorrectionError("nothing to correct: give --wrong, --add, --attribute or --concept")
        return ([self.wrong(v) for v in edits.wrong] + [self.add(v) for v in edits.add]
                + [self.attribute(v) for v in edits.attribute] + [self.concept(v) for v in edits.concept])


def correct_note(db: str | Path, note: PredictedNote, edits: Edits, *, who: str,
                 labels: Sequence[str] = tuple(LABEL_TYPES), source: str = "cli") -> list[Correction]:
    """Check ``edits`` against the note and store them (and, the first time, the note's prediction) in ``db``."""
    who = check_who(who)
    with CorrectionStore(db) as store:
        stored = store.select("medical", note.note_id)
        other = next((c for c in stored if c.text != note.text), None)
        if other is not None:
            raise CorrectionError(f"note {note.note_id!r} already has corrections in {db} for a different text "
                                  f"({len(other.text)} characters, this one {len(note.text)}); give this version "
                                  "its own id (--note-id)")
        made = [replace(c, source=source).checked() for c in NoteCorrector(note, stored, labels, who).corrections(edits)]
        # all checked before anything is written; the snapshot is kept once per note text, never replaced
        store.record_prediction("medical", note.note_id, note.text, note.snapshot(), note.model, note.model_version)
        return store.add_many(made)


def describe(c: Correction) -> str:
    """One line per stored correction, for the command and the page."""
    def span_text(value: str | None) -> str:
        try:
            d = json.loads(value or "")
        except json.JSONDecodeError:
            return str(value)
        return f"{d.get('text')!r} {d.get('label')}" if isinstance(d, dict) else str(value)

    head = f"correction {c.correction_id}: note {c.item_id} [{c.span}] "
    if c.field == "mention":
        return head + f"mention {span_text(c.old_value)} marked wrong"
    if c.field == "missed_mention":
        return head + f"missed mention {span_text(c.new_value)} added"
    return head + f"{c.field} {c.old_value if c.old_value is not None else '-'} -> {c.new_value}"
