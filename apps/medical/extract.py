"""The clinical extraction pipeline (library API behind ``kgfusion medical extract`` and the page).

Per note: model spans (windowed token classifier) + KG gazetteer spans + abbreviation spans are fused
(knowledge.fusion.fuse_spans, policy union | prefer_model | prefer_gazetteer); every mention then gets
ConText attributes (negated, possible, historical, family, hypothetical) and its note section, its
abbreviation expansion, a KG concept (DOID / DrugBank with codes, score and match kind) and KG facts.
Each mention keeps the evidence of every step. Offsets always index ``NoteResult.text``.

Bad input: non-text, empty or NUL-containing notes raise ``NoteRejected`` (``extract_many`` turns them
into rejects with the reason); notes over ``max_chars`` are processed in chunks cut at paragraph /
line / sentence boundaries (ConText scopes and in-text abbreviation definitions then stay within a
chunk) or rejected when ``oversize="reject"``.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgfusion.apps.medical.abbreviations import AbbreviationResolver, Expansion, find_definitions
from kgfusion.apps.medical.config import TYPE_LABEL, MedicalConfig
from kgfusion.apps.medical.linking import Concept, ConceptLinker, concept_evidence
from kgfusion.apps.medical.readers import NoteInput
from kgfusion.core.data import Reject
from kgfusion.core.errors import DataError
from kgfusion.knowledge.fusion import Evidence, fuse_spans
from kgfusion.knowledge.rules import tokenize

log = logging.getLogger(__name__)
ATTRIBUTES = ("negated", "possible", "historical", "family", "hypothetical")
ABBREVIATION_SCORE = 0.8


class NoteRejected(DataError):
    """A note that cannot be processed; ``reason`` goes to the rejects file."""

    def __init__(self, note_id: str, reason: str) -> None:
        super().__init__(f"note {note_id!r}: {reason}")
        self.note_id = note_id
        self.reason = reason


@dataclass
class Mention:
    """One entity mention: [start, end) into the note text, label (Disease | Chemical), fused confidence
    (0..1), sources (model, gazetteer, abbreviation), ConText attributes + section, the abbreviation's
    long form, the KG concept and the evidence of every step."""

    start: int
    end: int
    text: str
    label: str
    score: float
    sources: list[str]
    attributes: dict[str, bool] = field(default_factory=dict)
    section: str | None = None
    expansion: str | None = None
    concept: Concept | None = None
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def asserted(self) -> bool:
        """Asserted for the patient: not negated, possible, hypothetical or about a family member."""
        return not any(self.attributes.get(a) for a in ("negated", "possible", "hypothetical", "family"))

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "label": self.label,
                "score": round(self.score, 4), "sources": list(self.sources), "attributes": dict(self.attributes),
                "asserted": self.asserted, "section": self.section, "expansion": self.expansion,
                "concept": self.concept.to_dict() if self.concept else None,
                "evidence": [e.to_dict() for e in self.evidence]}


@dataclass
class NoteResult:
    """Mentions of one note; ``text`` is the exact text the offsets index."""

    note_id: str
    text: str
    mentions: list[Mention] = field(default_factory=list)
    abbreviations: list[Expansion] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source: str = ""
    encoding: str = "utf-8"
    chunks: int = 1
    seconds: float = 0.0

    def to_dict(self, include_text: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"note_id": self.note_id, "source": self.source, "encoding": self.encoding,
                               "chars": len(self.text), "chunks": self.chunks, "seconds": round(self.seconds, 4),
                               "warnings": list(self.warnings),
                               "mentions": [m.to_dict() for m in self.mentions],
                               "abbreviations": [a.to_dict() for a in self.abbreviations]}
        if include_text:
            out["text"] = self.text
        return out


def split_chunks(text: str, max_chars: int) -> list[tuple[int, str]]:
    """(offset, piece) with pieces of at most ``max_chars`` characters, cut at the last blank line, line
    break, sentence end or space before the limit (a hard cut only when there is none)."""
    out, pos = [], 0
    while len(text) - pos > max_chars:
        window = text[pos : pos + max_chars]
        cut = -1
        for pattern in (r"\n\s*\n", r"\n", r"[.!?]\s", r"\s"):
            hits = [m.end() for m in re.finditer(pattern, window) if m.end() > max_chars // 2]
            if hits:
                cut = hits[-1]
                break
        cut = cut if cut > 0 else max_chars
        out.append((pos, text[pos : pos + cut]))
        pos += cut
    out.append((pos, text[pos:]))
    return [(o, p) for o, p in out if p]


class ClinicalExtractor:
    """Notes -> NoteResults. Every component is optional: without a predictor only the gazetteer and
    abbreviations find mentions; without a linker mentions have no concept; without a ConText engine
    no attributes. Build everything from a config with ``from_config``."""

    def __init__(self, config: MedicalConfig | None = None, predictor=None, linker: ConceptLinker | None = None,
                 context_engine=None, gazetteer=None, abbreviations: AbbreviationResolver | None = None,
                 *, model_name: str = "model") -> None:
        self.config = config or MedicalConfig()
        self.predictor = predictor
        self.linker = linker if self.config.link else None
        self._names = linker  # abbreviation senses and labels use its name table even when not linking
        self.context = context_engine if self.config.context else None
        self.gazetteer = gazetteer if self.config.gazetteer else None
        self.abbreviations = abbreviations if self.config.abbreviations else None
        self.model_name = model_name
        if predictor is not None and getattr(predictor, "task", "token") != "token":
            raise DataError(f"the extractor needs a token-classification model; {model_name} does {predictor.task}")

    @classmethod
    def from_config(cls, config: MedicalConfig | None = None, data_dir: str | Path | None = None, *,
                    predictor=None, encoder=None, with_model: bool = True) -> ClinicalExtractor:
        """Load the bundle, KB, gazetteer, linker, ConText rules and abbreviation list (``build_extractor``)."""
        return build_extractor(config or MedicalConfig(), data_dir, predictor=predictor, encoder=encoder,
                               with_model=with_model)

    # ------------------------------------------------------------------------------ public API
    def check(self, text: Any, note_id: str) -> None:
        """Raise NoteRejected for input the extractor will not process (reason in the message)."""
        if not isinstance(text, str):
            raise NoteRejected(note_id, f"note text is {type(text).__name__}, not a string")
        if not text.strip():
            raise NoteRejected(note_id, "empty note")
        if "\x00" in text:
            raise NoteRejected(note_id, "binary content (NUL characters) in the note")
        if len(text) > self.config.max_chars and self.config.oversize == "reject":
            raise NoteRejected(note_id, f"{len(text)} characters, over max_chars={self.config.max_chars} "
                               "(raise max_chars or use oversize='chunk')")

    def extract(self, text: str, note_id: str = "note", *, source: str = "", encoding: str = "utf-8",
                warnings: Sequence[str] = ()) -> NoteResult:
        """Mentions of one note (raises NoteRejected for bad input)."""
        return self.extract_notes([NoteInput(note_id, text, source, 0, encoding, list(warnings))])[0]

    def extract_notes(self, notes: Sequence[NoteInput]) -> list[NoteResult]:
        """Several notes with one batched model call (raises NoteRejected on the first bad note)."""
        for n in notes:
            self.check(n.text, n.note_id)
        started = time.perf_counter()
        chunked = [split_chunks(n.text, self.config.max_chars) for n in notes]
        flat = [piece for chunks in chunked for _, piece in chunks]
        spans = self.predictor.predict_spans(flat) if self.predictor is not None and flat else [[] for _ in flat]
        processed = [self._process(piece, chunk_spans) for piece, chunk_spans in zip(flat, spans)]
        if self.linker is not None:  # one batched linking call for every mention of these notes
            self._link(processed)
        results, k = [], 0
        for note, chunks in zip(notes, chunked):
            t0 = time.perf_counter()
            res = NoteResult(note.note_id, note.text, source=note.source, encoding=note.encoding,
                             warnings=list(note.warnings), chunks=len(chunks))
            if len(chunks) > 1:
                res.warnings.append(f"{len(note.text)} characters over max_chars={self.config.max_chars}: "
                                    f"processed in {len(chunks)} chunks")
            for offset, _ in chunks:
                mentions, expansions, _ = processed[k]
                k += 1
                res.mentions += [_shift(m, offset, note.text) for m in mentions]
                res.abbreviations += [_shift_expansion(x, offset) for x in expansions]
            res.seconds = time.perf_counter() - t0 + (t0 - started) / max(1, len(notes))
            results.append(res)
        return results

    def extract_many(self, notes: Iterable[NoteInput]) -> tuple[list[NoteResult], list[Reject]]:
        """All notes, batched by ``config.batch_notes``; bad notes become rejects (nothing is dropped)."""
        results: list[NoteResult] = []
        rejects: list[Reject] = []
        batch: list[NoteInput] = []

        def flush() -> None:
            if batch:
                results.extend(self.extract_notes(batch))
                batch.clear()

        for note in notes:
            try:
                self.check(note.text, note.note_id)
            except NoteRejected as exc:
                rejects.append(Reject(note.source or note.note_id, note.row, exc.reason))
                continue
            batch.append(note)
            if len(batch) >= self.config.batch_notes:
                flush()
        flush()
        return results, rejects

    # ------------------------------------------------------------------------------ one chunk
    def _process(self, text: str, model_spans) -> tuple[list[Mention], list[Expansion], dict]:
        cfg = self.config
        headers = ([(sec.header_start, sec.header_end) for sec in self.context.sections(text)]
                   if self.context is not None else [])
        model_spans = clean_model_spans(text, model_spans, cfg.min_model_score, headers)
        tokens = tokenize(text)
        gaz = self.gazetteer.find(text, tokens) if self.gazetteer is not None else []
        origin: dict[tuple[int, int, str], set[str]] = {}
        for g in gaz:
            origin.setdefault((g.start, g.end, g.label), set()).add("gazetteer")
        expansions: list[Expansion] = []
        abbr_spans = []
        if self.abbreviations is not None:
            expansions = self.abbreviations.expand(text, find_definitions(text))
            for x in expansions:
                if x.long is None:
                    continue
                uri = self._names.resolve_name(x.long) if self._names is not None else None
                label = TYPE_LABEL.get(self._names.kb.by_uri[uri].type) if uri else None
                if label is None and x.definition is not None:
                    # the long form found by the model / gazetteer gives the label, when that span holds the long
                    # form's last word: English noun phrases are head-final, so "breast cancer susceptibility gene 1
                    # (BRCA1)" names a gene even though "breast cancer" is a Disease (NCBI dev: 5 wrong, 1 right)
                    d = x.definition
                    label = next((s.label for s in [*model_spans, *gaz]
                                  if s.start < d.long_end <= s.end), None)
                if label is None:
                    continue  # overlaps with model spans are settled by fuse_spans like any other
                abbr_spans.append({"start": x.start, "end": x.end, "label": label, "score": ABBREVIATION_SCORE,
                                   "ref": uri or ""})
                origin.setdefault((x.start, x.end, label), set()).add("abbreviation")
        fused = fuse_spans(model_spans, [*gaz, *abbr_spans], cfg.policy, model_name=self.model_name,
                           gazetteer_name="gazetteer")
        contexts = (self.context.annotate(text, [(f.start, f.end, f.label) for f in fused])
                    if self.context is not None and fused else [None] * len(fused))
        refs = {(g.start, g.end, g.label): g.ref for g in gaz}
        refs.update({(a["start"], a["end"], a["label"]): a["ref"] for a in abbr_spans if a["ref"]})
        by_span = {(x.start, x.end): x for x in expansions}
        mentions: list[Mention] = []
        for f, ctx in zip(fused, contexts):
            sources = [s for s in f.sources if s != "gazetteer"]
            if "gazetteer" in f.sources:
                sources += sorted(origin.get((f.start, f.end, f.label), {"gazetteer"}))
            m = Mention(f.start, f.end, text[f.start:f.end], f.label, float(f.confidence),
                        ["model" if s == self.model_name else s for s in sources], evidence=list(f.evidence))
            if ctx is not None:
                m.attributes = {a: bool(getattr(ctx, a)) for a in ATTRIBUTES}
                m.section = ctx.section
                m.evidence += list(ctx.evidence)
            else:
                m.attributes = dict.fromkeys(ATTRIBUTES, False)
            inside = [x for x in expansions if x.long and f.start <= x.start and x.end <= f.end]
            exact = by_span.get((f.start, f.end))
            if exact is not None and exact.long:
                m.expansion = exact.long
            for x in inside:
                why = "defined in the note" if x.source == "definition" else f"abbreviation list ({x.rule})"
                m.evidence.append(Evidence("rule", f"abbrev.{x.source}", f"{x.short} = {x.long} ({why})",
                                           span=(x.definition.long_start, x.definition.long_end)
                                           if x.definition else (x.start, x.end)))
            mentions.append(m)
        return mentions, expansions, refs

    def _link(self, processed: list[tuple[list[Mention], list[Expansion], dict]]) -> None:
        """Concepts for the mentions of several chunks: KG-name hits directly, the rest in one link call."""
        todo: list[tuple[Mention, str]] = []
        for mentions, expansions, refs in processed:
            for m in mentions:
                ref = refs.get((m.start, m.end, m.label))
                if ref:
                    via = "abbreviation" if "abbreviation" in m.sources and "gazetteer" not in m.sources else "gazetteer"
                    m.concept = self.linker.concept_for_uri(ref, 1.0, via, m.expansion or m.text)
                else:
                    todo.append((m, _linking_text(m, expansions)))
        if todo:
            for (m, _), c in zip(todo, self.linker.link([(t, m.label) for m, t in todo])):
                m.concept = c
        for mentions, _, _ in processed:
            for m in mentions:
                if m.concept is not None:
                    m.evidence += concept_evidence(m.concept)


UNIT_WORDS = frozenset({"mg", "mcg", "g", "ml", "l", "kg", "units", "unit", "iu", "mmol", "meq", "tab", "tabs",
                        "cap", "caps", "dose", "daily", "prn", "po", "iv", "bid", "tid", "qid"})


# Trailing dose / form of a drug span: numbers ("325", "12.5", "25/100"), units and dose forms
# ("inhaler", "tablets") after the drug name.
_TRAILING_DOSE = re.compile(
    r"(?:\s+(?:\d[\d.,/]*|%|(?:mg|mcg|g|ml|units?|iu|mmol|meq|inhalers?|tablets?|tabs?|capsules?|caps?|patch(?:es)?"
    r"|cream|ointment|injections?|nebuli[sz]ers?|drops|spray|solution|suspension)\b))+$", re.IGNORECASE)


def clean_model_spans(text: str, spans, min_score: float, headers: Sequence[tuple[int, int]] = ()) -> list:
    """Model spans worth fusing: score >= ``min_score``; split at line breaks (a mention never spans two
    lines of a note); no spans inside section headers ("History of Present Illness:"), without two
    letters, or that are dose units ("mg", "mcg"); a Chemical span loses a trailing dose or dose form
    ("Aspirin 325", "metformin 500 mg", "salbutamol inhaler" -> the drug name), which keeps it from linking."""
    from kgfusion.core.predict import Span

    out = []
    for s in spans:
        if s.score < min_score:
            continue
        pieces = [(m.start() + s.start, m.end() + s.start) for m in re.finditer(r"[^\n]+", text[s.start:s.end])]
        for a, b in pieces:
            while a < b and text[a].isspace():
                a += 1
            while b > a and text[b - 1].isspace():
                b -= 1
            if s.label == "Chemical":
                dose = _TRAILING_DOSE.search(text, a, b)
                if dose is not None and dose.start() > a:
                    b = dose.start()
            piece = text[a:b]
            if (sum(c.isalpha() for c in piece) < 2 or piece.lower() in UNIT_WORDS
                    or any(h0 <= a and b <= h1 for h0, h1 in headers)):
                continue
            out.append(s if (a, b) == (s.start, s.end) else Span(a, b, s.label, s.score, piece))
    return out


def _linking_text(m: Mention, expansions: list[Expansion]) -> str:
    """The mention text with abbreviations inside it replaced by their long forms."""
    out, pos = [], m.start
    for x in sorted((x for x in expansions if x.long and m.start <= x.start and x.end <= m.end),
                    key=lambda x: x.start):
        out.append(m.text[pos - m.start : x.start - m.start])
        out.append(x.long or "")
        pos = x.end
    out.append(m.text[pos - m.start :])
    return "".join(out).strip() or m.text


def _shift(m: Mention, offset: int, full_text: str) -> Mention:
    if offset == 0:
        return m
    m.start += offset
    m.end += offset
    m.evidence = [Evidence(e.kind, e.source, e.detail, e.weight,
                           (e.span[0] + offset, e.span[1] + offset) if e.span else None) for e in m.evidence]
    if full_text[m.start : m.end] != m.text:  # cannot happen unless chunking is broken: fail loudly
        raise DataError(f"internal offset error at {m.start}:{m.end}")
    return m


def _shift_expansion(x: Expansion, offset: int) -> Expansion:
    if offset == 0:
        return x
    from dataclasses import replace

    d = x.definition
    if d is not None:
        d = replace(d, short_start=d.short_start + offset, short_end=d.short_end + offset,
                    long_start=d.long_start + offset, long_end=d.long_end + offset)
    return replace(x, start=x.start + offset, end=x.end + offset, definition=d)


# ---------------------------------------------------------------------------------- assembly


def resolve_bundle(bundle: str, data_dir: Path) -> Path:
    """A bundle directory: the path itself when it exists, else data/models/<bundle>."""
    p = Path(bundle).expanduser()
    if p.is_dir():
        return p
    q = data_dir / "models" / bundle
    if q.is_dir():
        return q
    raise DataError(f"model bundle {bundle!r} not found (tried {p} and {q}); "
                    "train it with `kgfusion medical train` or pass --bundle DIR")


def build_extractor(config: MedicalConfig, data_dir: str | Path | None = None, *, predictor=None, encoder=None,
                    with_model: bool = True, graph_path: str | Path | None = None,
                    kg_store: str | None = None) -> ClinicalExtractor:
    """Everything from the repo's data/ folder: bundle (``config.bundle``), data/kg/medical.ttl (KB cached
    in data/kg/index/medical-app/, MiniLM index in data/kg/index/medical/), ConText rules, abbreviation list.
    ``predictor`` / ``encoder`` replace the bundle's model / the retrieval encoder (tests)."""
    from kgfusion.apps.common import repo_data_dir
    from kgfusion.apps.medical.abbreviations import AbbreviationList
    from kgfusion.apps.medical.gazetteer import Gazetteer
    from kgfusion.apps.medical.linking import ConceptLinker, MedicalKB, build_linkers, corpus_aliases
    from kgfusion.knowledge.context import ConTextEngine
    from kgfusion.knowledge.rules import load_domain_rules

    data = Path(data_dir) if data_dir else repo_data_dir()
    graph = Path(graph_path) if graph_path else data / "kg" / "medical.ttl"
    index_root = graph.parent / "index"
    stem = graph.name.removesuffix(".gz").removesuffix(".ttl")
    model_name = "model"
    if predictor is None and with_model:
        from kgfusion.apps.common import promoted_bundle
        from kgfusion.core.predict import Predictor

        resolved = promoted_bundle(resolve_bundle(config.bundle, data))  # a promoted registry version wins
        predictor = Predictor.from_bundle(resolved.path, backend=config.backend)
        model_name = resolved.label  # name@vN for a registry version: the model evidence names it
    kb = MedicalKB.load(graph, index_root / f"{stem}-app", kg_store=kg_store)
    aliases = corpus_aliases(kb, data / "datasets") if config.corpus_aliases else {}
    gazetteer = Gazetteer.from_records(kb.records, min_chars=config.gazetteer_min_chars,
                                       symptoms=config.gazetteer_symptoms,
                                       extra_names=aliases) if config.gazetteer else None
    linker = None
    if config.link or config.abbreviations:
        linkers = build_linkers(kb, config.link_encoder, graph_path=graph, index_dir=index_root / stem,
                                app_cache=index_root / f"{stem}-app", encoder=encoder,
                                threshold=config.link_threshold, int8_queries=config.backend != "fp32")
        linker = ConceptLinker(linkers, kb, facts_limit=config.kg_facts)
        if aliases:
            linker.add_aliases(aliases)
    abbreviations = None
    if config.abbreviations:
        abbr_file = data / "datasets" / "clinical_abbreviations" / "wikipedia_abbreviation_database.csv"
        abbr_list = AbbreviationList.from_csv(abbr_file) if abbr_file.is_file() else None
        abbreviations = AbbreviationResolver(abbr_list, resolve=linker.resolve_name if linker else None)
    context = ConTextEngine(load_domain_rules("medical")) if config.context else None
    return ClinicalExtractor(config, predictor, linker, context, gazetteer, abbreviations, model_name=model_name)
