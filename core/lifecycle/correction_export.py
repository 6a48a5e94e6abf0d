"""Corrections as training data in the formats core.data reads back (issue 16).

- ``sentiment`` / ``topic`` (sequence classification): the newest correction per item -> one row
  ``text,label`` (+ provenance columns the readers ignore: item_id, old_label, who, created, model,
  model_version, correction_id) as CSV, TSV or JSONL, read by ``read_text_classification``.
- ``ner`` (token classification): per corrected note, the model's mentions from the stored prediction
  snapshot, minus the ones marked wrong (``mention``), plus the missed ones (``missed_mention``); the
  newest correction of a span wins. The note is tokenized (words and single punctuation marks, cut at
  every span boundary so a span always covers whole tokens), tagged IOB2 and split into sentences (at line
  breaks and after . ! ?, never inside a mention); written as CoNLL ``token<TAB>tag`` lines, read by
  ``read_conll``. Only notes with a span correction are exported (an attribute or concept fix says nothing
  about the spans). Overlapping spans cannot be tagged: a corrected span beats a predicted one, a newer
  correction an older one; what is dropped is reported in ``skipped``.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kgfusion.core.data import TextExample, TokenExample
from kgfusion.core.errors import DataError
from kgfusion.core.fileio import atomic_write_text
from kgfusion.core.lifecycle.corrections import Correction, CorrectionStore, parse_span

ExportField = Literal["sentiment", "topic", "ner"]
EXPORT_FIELDS: dict[str, tuple[str, ...]] = {"finance": ("sentiment", "topic"), "medical": ("ner",)}
NER_FIELDS = ("mention", "missed_mention")
TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")
CONLL_SUFFIXES = (".tsv", ".conll", ".iob", ".iob2", ".txt")
TEXT_COLUMNS = ("text", "label", "item_id", "old_label", "who", "created", "model", "model_version",
                "correction_id")
TOKEN = re.compile(r"\w+|[^\w\s]")
SENTENCE_END = frozenset(".!?")


@dataclass
class ExportResult:
    path: Path
    fmt: str  # csv | tsv | jsonl | conll
    rows: int  # examples written (items; sentences for ner)
    items: int  # corrected items (notes for ner)
    labels: dict[str, int]  # examples per label; entities per type for ner
    skipped: list[str] = field(default_factory=list)  # what could not be written, with the reason
    without_prediction: int = 0  # ner: notes with no stored prediction (only corrected spans tagged)

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "format": self.fmt, "rows": self.rows, "items": self.items,
                "labels": self.labels, "skipped": self.skipped, "without_prediction": self.without_prediction}


def check_export(domain: str, what: str) -> None:
    if domain not in EXPORT_FIELDS:
        raise DataError(f"domain {domain!r}: choose one of {', '.join(EXPORT_FIELDS)}")
    if what not in EXPORT_FIELDS[domain]:
        raise DataError(f"--field {what} is not exported for {domain}; use {' or '.join(EXPORT_FIELDS[domain])}")


# -- sequence classification ---------------------------------------------------------------------
def text_rows(store: CorrectionStore, domain: str, what: str) -> list[dict[str, object]]:
    """The newest ``what`` correction per item as export rows (TEXT_COLUMNS)."""
    rows = []
    for c in store.latest(domain, [what]):
        rows.append({"text": c.text, "label": c.new_value, "item_id": c.item_id, "old_label": c.old_value or "",
                     "who": c.who, "created": c.created.isoformat() if c.created else "", "model": c.model,
                     "model_version": c.model_version, "correction_id": c.correction_id})
    return rows


def text_examples(store: CorrectionStore, domain: str, what: str) -> list[TextExample]:
    """The same rows as TextExamples (what the update command trains on)."""
    return [TextExample(str(r["text"]).strip(), str(r["label"]), i + 1) for i, r in
            enumerate(text_rows(store, domain, what))]


def _text_file(rows: Sequence[dict[str, object]], fmt: str) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(TEXT_COLUMNS), delimiter="\t" if fmt == "tsv" else ",",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# -- token classification ------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str
    rank: tuple[int, float, int]  # overlap priority: corrected before predicted, then newest


def note_spans(store: CorrectionStore, item_id: str, text: str, corrections: Sequence[Correction]
               ) -> tuple[list[Span], list[str], bool]:
    """(spans to tag, skipped reasons, had a prediction) of one note: prediction - wrong + missed."""
    snapshot = store.prediction("medical", item_id, text)
    spans, skipped = apply_corrections(item_id, text, (snapshot or {}).get("mentions", []), corrections)
    return spans, skipped, snapshot is not None


def apply_corrections(item_id: str, text: str, predicted: Sequence[dict], corrections: Sequence[Correction]
                      ) -> tuple[list[Span], list[str]]:
    """The mentions of a note after its span corrections (oldest first): predicted ({start, end, label})
    minus the ones marked wrong plus the missed ones, overlaps resolved; and what was skipped, with why."""
    spans: dict[str, Span] = {}
    skipped: list[str] = []
    for m in predicted:
        try:
            start, end = parse_span(f"{m['start']}:{m['end']}", text)
            spans[f"{start}:{end}"] = Span(start, end, str(m["label"]), (0, 0.0, 0))
        except (KeyError, TypeError, DataError) as exc:
            skipped.append(f"note {item_id}: predicted mention {m!r} skipped ({exc})")
    newest: dict[str, Correction] = {}
    for c in corrections:  # oldest first: a later correction of the same span replaces an earlier one
        newest[c.span or ""] = c
    for key, c in newest.items():
        spans.pop(key, None)
        if c.field == "missed_mention":
            start, end = parse_span(key, text)
            label = str(json.loads(c.new_value or "{}").get("label") or "")
            if not label:  # Correction.checked refuses these; an old or hand-edited row is reported, not tagged
                skipped.append(f"note {item_id}: missed mention {key} has no label")
                continue
            spans[key] = Span(start, end, label, (1, c.created.timestamp() if c.created else 0.0,
                                                  c.correction_id or 0))
    kept: list[Span] = []
    for s in sorted(spans.values(), key=lambda s: s.rank, reverse=True):
        clash = next((k for k in kept if s.start < k.end and k.start < s.end), None)
        if clash:
            skipped.append(f"note {item_id}: mention {s.start}:{s.end} {s.label} overlaps {clash.start}:{clash.end} "
                           f"{clash.label} (kept); mark one of them wrong")
        else:
            kept.append(s)
    return sorted(kept, key=lambda s: s.start), skipped


def bio_sentences(text: str, spans: Sequence[Span], row: int = 0) -> list[TokenExample]:
    """The note as IOB2-tagged sentences (see the module docstring)."""
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    toks = [(m.start(), m.end()) for a, b in zip(cuts, cuts[1:]) for m in TOKEN.finditer(text, a, b)]
    tags: list[str] = []
    j, prev = 0, None
    ordered = sorted(spans, key=lambda s: s.start)
    for start, end in toks:
        while j < len(ordered) and ordered[j].end <= start:
            j += 1
        s = ordered[j] if j < len(ordered) and ordered[j].start <= start and end <= ordered[j].end else None
        tags.append("O" if s is None else ("I-" if s is prev else "B-") + s.label)  # B- opens each span
        prev = s
    out: list[TokenExample] = []
    words: list[str] = []
    labels: list[str] = []
    for i, ((start, end), tag) in enumerate(zip(toks, tags)):
        words.append(text[start:end])
        labels.append(tag)
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is None or (not tags[i + 1].startswith("I-")
                           and ("\n" in text[end:nxt[0]] or (text[start:end] in SENTENCE_END and nxt[0] > end))):
            out.append(TokenExample(tuple(words), tuple(labels), row + len(out)))
            words, labels = [], []
    return out


def token_examples(store: CorrectionStore) -> tuple[list[TokenExample], ExportResult]:
    """Sentences of every medical note with a span correction, and the counts (path unset)."""
    by_note: dict[tuple[str, str], list[Correction]] = defaultdict(list)
    for c in store.select("medical"):
        if c.field in NER_FIELDS:
            by_note[(c.item_id, c.text)].append(c)
    examples: list[TokenExample] = []
    skipped: list[str] = []
    entities: Counter[str] = Counter()
    missing = 0
    for (item_id, text), corrections in sorted(by_note.items()):
        spans, why, had = note_spans(store, item_id, text, corrections)
        skipped += why
        missing += not had
        entities.update(s.label for s in spans)
        examples += bio_sentences(text, spans, row=len(examples) + 1)
    return examples, ExportResult(Path(), "conll", len(examples), len(by_note), dict(sorted(entities.items())),
                                  skipped, missing)


def conll_text(examples: Sequence[TokenExample]) -> str:
    return "".join("".join(f"{t}\t{g}\n" for t, g in zip(ex.tokens, ex.tags)) + "\n" for ex in examples)


# -- the command's entry point --------------------------------------------------------------------
def export(store: CorrectionStore, domain: str, what: str, out: str | Path) -> ExportResult:
    """Write ``what`` corrections of ``domain`` to ``out`` atomically (format by suffix); DataError when
    there is nothing to export or the suffix does not fit."""
    check_export(domain, what)
    out = Path(out)
    suffix = out.suffix.lower()
    if what == "ner":
        if suffix not in CONLL_SUFFIXES:
            raise DataError(f"{out}: NER corrections are written as CoNLL token<TAB>tag; use one of "
                            f"{', '.join(CONLL_SUFFIXES)}")
        examples, result = token_examples(store)
        if not examples:
            raise DataError(f"{store.path}: no medical mention corrections to export; add some with "
                            "`kgfusion medical correct --wrong/--add`")
        atomic_write_text(out, conll_text(examples))
        result.path = out
        return result
    if suffix not in TEXT_SUFFIXES:
        raise DataError(f"{out}: use one of {', '.join(TEXT_SUFFIXES)} for {what} training data")
    rows = text_rows(store, domain, what)
    if not rows:
        raise DataError(f"{store.path}: no {domain} {what} corrections to export; add some with "
                        f"`kgfusion {domain} correct`")
    fmt = "jsonl" if suffix in (".jsonl", ".ndjson") else suffix[1:]
    atomic_write_text(out, _text_file(rows, fmt))
    labels = Counter(str(r["label"]) for r in rows)
    return ExportResult(out, fmt, len(rows), len(rows), dict(sorted(labels.items())))
