"""Fusion of model outputs with rules and the knowledge graph into explainable Decisions.

Every Decision carries its Evidence (model scores, rule ids that fired, KG facts, note sections), so
an answer can say why: ``Decision.explain()`` -> "negative (0.91) because: model finbert p=0.84; ...".

Policies: ``fuse_log_linear`` (model class probabilities x rule score, log-linear), ``apply_overrides``
(hard rules force a value), ``check_type`` (KG type consistency via TypeConstraint), ``fuse_spans``
(model vs gazetteer NER spans: union / prefer_model / prefer_gazetteer) and ``score_lexicon`` (lexicon
terms with negation/intensifier/hedge cues in a window). Recommendation business rules are applied by
the recommend app (``kgfusion.apps.recommend.business_rules``).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, get_args

from kgfusion.core.errors import ConfigError, DataError
from kgfusion.knowledge.rules import (
    LexiconTerm,
    PatternRule,
    PhraseMatcher,
    RuleBase,
    TypeConstraint,
    select_longest,
    tokenize,
)
from kgfusion.knowledge.rules.matching import WordStartFilter, word_starts

EvidenceKind = Literal["model", "rule", "kg", "section", "note"]
_SENTENCE_PUNCT = {".", ";", "!", "?"}


@dataclass(frozen=True)
class Evidence:
    """One reason behind a Decision.

    kind: model | rule | kg | section | note; source: model name, rule id, triple or path; detail: short
    human text; weight: the number this evidence contributed (probability, rule weight, penalty) or None;
    span: (start, end) character offsets in the input text, or None.
    """

    kind: EvidenceKind
    source: str
    detail: str = ""
    weight: float | None = None
    span: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(EvidenceKind):
            raise ConfigError(f"Evidence kind {self.kind!r} is not one of {', '.join(get_args(EvidenceKind))}")
        if self.weight is not None:
            if isinstance(self.weight, bool) or not math.isfinite(float(self.weight)):
                raise ConfigError(f"Evidence weight must be a finite number or None, got {self.weight!r}")
            object.__setattr__(self, "weight", float(self.weight))
        if self.span is not None:
            s, e = self.span
            if int(s) != s or int(e) != e or not 0 <= s <= e:
                raise ConfigError(f"Evidence span must be (start, end) with 0 <= start <= end, got {self.span!r}")
            object.__setattr__(self, "span", (int(s), int(e)))

    def describe(self) -> str:
        """One clause of an explanation, e.g. "rule fin.lex.profit_warning 'profit warning' -0.80"."""
        if self.kind == "model":
            return f"model {self.source} {self.detail}".rstrip()
        if self.kind == "rule":
            weight = f" {self.weight:+.2f}" if self.weight is not None else ""
            return f"rule {self.source} {self.detail}{weight}".rstrip()
        if self.kind == "kg":
            return f"KG: {self.detail or self.source}"
        if self.kind == "section":
            return f"section {self.detail or self.source}"
        return self.detail or self.source

    def to_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies recursively and was a tenth of the monitor's own time
        return {"kind": self.kind, "source": self.source, "detail": self.detail, "weight": self.weight,
                "span": list(self.span) if self.span is not None else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise DataError(f"Evidence: unknown key(s) {sorted(unknown)}; allowed: kind, source, detail, weight, span")
        span = data.get("span")
        return cls(kind=data["kind"], source=data["source"], detail=data.get("detail", ""),
                   weight=data.get("weight"), span=tuple(span) if span is not None else None)


@dataclass(frozen=True)
class Decision:
    """A value with a confidence in [0, 1], its Evidence, an optional subject (entity, ticker, item id)
    and optionally the fused class distribution ``scores``."""

    value: Any
    confidence: float
    evidence: tuple[Evidence, ...] = ()
    subject: str | None = None
    scores: dict[str, float] | None = field(default=None, hash=False, compare=True)

    def __post_init__(self) -> None:
        if isinstance(self.confidence, bool) or not (0.0 <= float(self.confidence) <= 1.0):
            raise ConfigError(f"Decision confidence must be in [0, 1], got {self.confidence!r}")
        object.__setattr__(self, "confidence", float(self.confidence))
        object.__setattr__(self, "evidence", tuple(self.evidence))
        if not all(isinstance(e, Evidence) for e in self.evidence):
            raise ConfigError("Decision evidence must be Evidence objects")
        if self.scores is not None:
            object.__setattr__(self, "scores", {str(k): float(v) for k, v in self.scores.items()})

    def with_evidence(self, *evidence: Evidence, first: bool = False) -> Decision:
        """A copy with more evidence appended (or put first)."""
        ev = (*evidence, *self.evidence) if first else (*self.evidence, *evidence)
        return replace(self, evidence=ev)

    def explain_lines(self) -> list[str]:
        """First line: value and confidence; then one line per evidence item."""
        head = f"{self.subject}: " if self.subject else ""
        return [f"{head}{self.value} ({self.confidence:.2f})", *(f"- {e.describe()}" for e in self.evidence)]

    def explain(self) -> str:
        """One plain-text line: "negative (0.91) because: model m p=0.84; rule fin.lex.x 'x' -0.80; KG: ..."."""
        head = f"{self.subject}: " if self.subject else ""
        reasons = "; ".join(e.describe() for e in self.evidence)
        return f"{head}{self.value} ({self.confidence:.2f})" + (f" because: {reasons}" if reasons else "")

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "confidence": self.confidence, "subject": self.subject,
                "scores": dict(self.scores) if self.scores is not None else None,
                "evidence": [e.to_dict() for e in self.evidence]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        allowed = {"value", "confidence", "subject", "scores", "evidence"}
        unknown = set(data) - allowed
        if unknown:
            raise DataError(f"Decision: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(value=data["value"], confidence=data["confidence"], subject=data.get("subject"),
                   scores=data.get("scores"), evidence=tuple(Evidence.from_dict(e) for e in data.get("evidence", ())))

    @classmethod
    def from_json(cls, text: str) -> Decision:
        return cls.from_dict(json.loads(text))


# ------------------------------------------------------------------------------- log-linear fusion


@dataclass(frozen=True)
class FusionConfig:
    """Log-linear fusion: logit_c = (model_weight * log p_c + rule_weight * score * direction_c) / temperature.

    model_weight, rule_weight >= 0; temperature > 0; class_directions: class -> push of a positive rule
    score in [-1, 1] (negative classes -1, neutral 0); floor in (0, 0.1) keeps log p finite.
    """

    model_weight: float = 1.0
    rule_weight: float = 1.0
    temperature: float = 1.0
    class_directions: Mapping[str, float] = field(
        default_factory=lambda: {"positive": 1.0, "negative": -1.0, "neutral": 0.0}
    )
    floor: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("model_weight", "rule_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"FusionConfig.{name} must be >= 0, got {value!r}")
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ConfigError(f"FusionConfig.temperature must be > 0, got {self.temperature!r}")
        if not 0 < self.floor < 0.1:
            raise ConfigError(f"FusionConfig.floor must be in (0, 0.1), got {self.floor!r}")
        bad = {k: v for k, v in self.class_directions.items() if not -1.0 <= float(v) <= 1.0}
        if bad:
            raise ConfigError(f"FusionConfig.class_directions values must be in [-1, 1], got {bad}")
        object.__setattr__(self, "class_directions", {str(k): float(v) for k, v in self.class_directions.items()})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "class_directions": dict(self.class_directions)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FusionConfig:
        allowed = {f.name for f in fields(cls)}
        unknown = set(data) - allowed
        if unknown:
            raise ConfigError(f"FusionConfig: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(**data)


def _normalize_probs(probs: Mapping[str, float]) -> dict[str, float]:
    if not probs:
        raise DataError("model probabilities are empty; pass {class: probability}")
    values = {str(k): float(v) for k, v in probs.items()}
    if any(not math.isfinite(v) or v < 0 for v in values.values()) or sum(values.values()) <= 0:
        raise DataError(f"model probabilities must be finite, >= 0 and not all zero, got {values}")
    total = sum(values.values())
    return {k: v / total for k, v in values.items()}


def fuse_log_linear(
    probs: Mapping[str, float],
    rule_score: float = 0.0,
    *,
    config: FusionConfig | None = None,
    model_name: str = "model",
    rule_evidence: Sequence[Evidence] = (),
    extra_evidence: Sequence[Evidence] = (),
    overrides: Sequence[Override] = (),
    subject: str | None = None,
) -> Decision:
    """Combine class probabilities with a rule score in [-1, 1] (see FusionConfig); ties go to the
    first class. ``rule_weight=0`` (and model_weight=1, temperature=1) returns the model distribution."""
    config = config or FusionConfig()
    if not math.isfinite(rule_score) or not -1.0 <= rule_score <= 1.0:
        raise DataError(f"rule_score must be in [-1, 1], got {rule_score!r}")
    p = _normalize_probs(probs)
    logits = {
        c: (config.model_weight * math.log(max(pc, config.floor))
            + config.rule_weight * rule_score * config.class_directions.get(c, 0.0)) / config.temperature
        for c, pc in p.items()
    }
    top = max(logits.values())
    exp = {c: math.exp(v - top) for c, v in logits.items()}
    z = sum(exp.values())
    fused = {c: v / z for c, v in exp.items()}
    value = max(fused, key=lambda c: (fused[c], -list(fused).index(c)))
    evidence = [Evidence("model", model_name, f"p({value})={p[value]:.2f}", weight=p[value])]
    if rule_evidence or rule_score:
        evidence.extend(rule_evidence)
    evidence.extend(extra_evidence)
    decision = Decision(value, min(1.0, fused[value]), tuple(evidence), subject=subject, scores=fused)
    return apply_overrides(decision, overrides)


# -------------------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class Override:
    """A hard rule hit that forces ``value`` with ``confidence``."""

    value: Any
    source: str
    detail: str = ""
    confidence: float = 1.0
    span: tuple[int, int] | None = None


def apply_overrides(decision: Decision, overrides: Sequence[Override]) -> Decision:
    """Force the first override (by text position, then rule id); the others are kept as evidence."""
    if not overrides:
        return decision
    ordered = sorted(overrides, key=lambda o: ((o.span or (0, 0))[0], o.source))
    chosen = ordered[0]
    ev = [Evidence("rule", chosen.source, f"override -> {chosen.value}: '{chosen.detail}'", span=chosen.span)]
    for other in ordered[1:]:
        note = "agrees" if other.value == chosen.value else f"conflicting override -> {other.value} ignored"
        ev.append(Evidence("rule", other.source, f"{note}: '{other.detail}'", span=other.span))
    return replace(decision, value=chosen.value, confidence=chosen.confidence,
                   evidence=(*ev, *decision.evidence))


def find_overrides(text: str, rulebase: RuleBase, *, tokens: Sequence[tuple[int, int, str]] | None = None) -> list[Override]:
    """PatternRules with ``override: true`` that match ``text`` and are not negated by a negate cue."""
    tokens = tokens if tokens is not None else tokenize(text)
    negators = [r for r in rulebase.by_kind(PatternRule) if r.effect == "negate"]
    cues = [(m.start(), m.end(), r) for r in negators for m in r.compiled.finditer(text)]
    out = []
    for rule in rulebase.by_kind(PatternRule):
        if not rule.override:
            continue
        for m in rule.compiled.finditer(text):
            if any(_in_window(tokens, (cs, ce), (m.start(), m.end()), cue) for cs, ce, cue in cues):
                continue
            out.append(Override(rule.label, rule.id, m.group(), rule.confidence, (m.start(), m.end())))
    return out


# --------------------------------------------------------------------------- KG type consistency


def _expand(type_ref: str) -> str:
    """CURIE ("schema:Corporation") -> full URI with the project prefixes; URIs pass through."""
    if "://" in type_ref or ":" not in type_ref:
        return type_ref
    from kgfusion.knowledge.vocab import PREFIXES  # lazy: rdflib is only needed when constraints are checked

    prefix, _, local = type_ref.partition(":")
    ns = PREFIXES.get(prefix)
    return f"{ns}{local}" if ns is not None else type_ref


def check_type(
    decision: Decision,
    label: str,
    kg_types: Iterable[str],
    constraints: RuleBase | Sequence[TypeConstraint],
    *,
    entity: str = "",
) -> Decision:
    """Check a linked mention: its KG types against the TypeConstraints for ``label``.

    Allowed -> kg evidence added; not allowed -> confidence *= penalty ("penalize") or value None and
    confidence 0 ("reject"), with kg evidence naming the constraint. No KG types or no constraint for
    the label -> unchanged.
    """
    rules = constraints.by_kind(TypeConstraint) if isinstance(constraints, RuleBase) else tuple(constraints)
    observed = sorted({_expand(t) for t in kg_types})
    if not observed:
        return decision
    name = entity or decision.subject or "mention"
    for rule in (r for r in rules if r.label == label.upper()):
        allowed = {_expand(t) for t in rule.allowed_types}
        hit = next((t for t in observed if t in allowed), None)
        if hit is not None:
            decision = decision.with_evidence(
                Evidence("kg", rule.id, f"{name} has type {_short(hit)}, allowed for {label.upper()}"))
            continue
        detail = (f"{name} has type {', '.join(map(_short, observed))}, not allowed for {label.upper()} "
                  f"(allowed: {', '.join(sorted(map(_short, allowed)))})")
        if rule.action == "reject":
            return replace(decision, value=None, confidence=0.0).with_evidence(
                Evidence("kg", rule.id, f"rejected: {detail}", weight=0.0))
        decision = replace(decision, confidence=decision.confidence * rule.penalty).with_evidence(
            Evidence("kg", rule.id, f"penalized: {detail}", weight=rule.penalty))
    return decision


def _short(uri: str) -> str:
    return re.split(r"[#/]", uri)[-1] or uri


# ----------------------------------------------------------------------------------- span fusion

SpanPolicy = Literal["union", "prefer_model", "prefer_gazetteer"]


@dataclass(frozen=True)
class FusedSpan:
    """A fused NER span: [start, end) with label, confidence in [0, 1], the sources that proposed it
    and the evidence of every candidate (kept or overlapped)."""

    start: int
    end: int
    label: str
    confidence: float
    sources: tuple[str, ...]
    evidence: tuple[Evidence, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "label": self.label, "confidence": self.confidence,
                "sources": list(self.sources), "evidence": [e.to_dict() for e in self.evidence]}


def _as_candidate(span: Any, source: str, rank: int, kind: EvidenceKind) -> tuple:
    if isinstance(span, Mapping):
        s, e, label, score, ref = span["start"], span["end"], span["label"], span.get("score", 1.0), span.get("ref", "")
    elif hasattr(span, "start") and hasattr(span, "label"):
        s, e, label = span.start, span.end, span.label
        score, ref = getattr(span, "score", 1.0), getattr(span, "ref", "")
    else:
        s, e, label, *rest = span
        score = rest[0] if rest else 1.0
        ref = rest[1] if len(rest) > 1 else ""
    if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e):
        raise DataError(f"{source} span {span!r} needs integer offsets with 0 <= start < end")
    score = float(score)
    if not 0.0 <= score <= 1.0:
        raise DataError(f"{source} span {span!r} has score {score} outside [0, 1]")
    detail = f"{label} [{s},{e}) p={score:.2f}" + (f" {ref}" if ref else "")
    return (s, e, str(label), score, source, rank, Evidence(kind, source, detail, weight=score, span=(s, e)))


def fuse_spans(
    model_spans: Iterable[Any],
    gazetteer_spans: Iterable[Any],
    policy: SpanPolicy = "union",
    *,
    model_name: str = "model",
    gazetteer_name: str = "gazetteer",
) -> list[FusedSpan]:
    """Merge model and gazetteer spans into non-overlapping spans, deterministically.

    Spans are (start, end, label[, score[, ref]]) tuples, mappings or objects with those attributes.
    Overlaps: ``union`` keeps the longer span (then higher score, then the model's); ``prefer_model`` /
    ``prefer_gazetteer`` keep that source's span. Spans without overlap are always kept. The kept span
    carries the evidence of every candidate it overlaps; when both sources agree on span and label the
    confidence is 1 - (1 - p_model)(1 - p_gazetteer).
    """
    if policy not in get_args(SpanPolicy):
        raise ConfigError(f"span policy {policy!r} is not one of {', '.join(get_args(SpanPolicy))}")
    cands = [_as_candidate(s, model_name, 0, "model") for s in model_spans]
    cands += [_as_candidate(s, gazetteer_name, 1, "kg") for s in gazetteer_spans]

    def key(c: tuple) -> tuple:
        s, e, label, score, _, rank, _ = c
        if policy == "union":
            return (-(e - s), -score, rank, s, label)
        preferred = 0 if (rank == 0) == (policy == "prefer_model") else 1
        return (preferred, -(e - s), -score, s, label)

    kept: list[list[Any]] = []  # [start, end, label, confidence, sources, evidence]
    for c in sorted(cands, key=key):
        s, e, label, score, source, _, ev = c
        overlapping = [k for k in kept if s < k[1] and e > k[0]]
        if not overlapping:
            kept.append([s, e, label, score, [source], [ev]])
            continue
        for k in overlapping:
            k[5].append(ev)
            if (k[0], k[1], k[2]) == (s, e, label) and source not in k[4]:
                k[4].append(source)
                k[3] = 1.0 - (1.0 - k[3]) * (1.0 - score)
    order = [model_name, gazetteer_name]  # canonical order: model first, whatever won the overlap
    return [
        FusedSpan(s, e, label, conf, tuple(sorted(srcs, key=order.index)),
                  tuple(sorted(ev, key=lambda x: (x.kind != "model", x.span, x.detail))))
        for s, e, label, conf, srcs, ev in sorted(kept, key=lambda k: (k[0], k[1], k[2]))
    ]


# ------------------------------------------------------------------------------- lexicon scoring


def _token_index(tokens: Sequence[tuple[int, int, str]], char: int, *, end: bool = False) -> int:
    """Index of the token that starts at/after ``char`` (or, with end=True, the last ending at/before it)."""
    if end:
        idx = -1
        for i, (_, e, _) in enumerate(tokens):
            if e <= char:
                idx = i
        return idx
    for i, (s, _, _) in enumerate(tokens):
        if s >= char:
            return i
    return len(tokens)


def _in_window(tokens: Sequence[tuple[int, int, str]], cue: tuple[int, int], hit: tuple[int, int],
               rule: PatternRule) -> bool:
    """True when ``hit`` lies within ``rule.window`` tokens of the cue (in its scope), same sentence."""
    if cue[1] <= hit[0] and rule.scope in ("forward", "both"):
        a, b = _token_index(tokens, cue[1]), _token_index(tokens, hit[0])
    elif hit[1] <= cue[0] and rule.scope in ("backward", "both"):
        a, b = _token_index(tokens, hit[1]), _token_index(tokens, cue[0])
    else:
        return False
    between = tokens[a:b]
    return len(between) < rule.window and not any(t in _SENTENCE_PUNCT for _, _, t in between)


class LexiconScorer:
    """Scores text with a RuleBase's LexiconTerms, ``score`` PatternRules and negate/intensify/hedge cues.

    Term and score-pattern hits are non-overlapping (longest wins); each hit's weight is multiplied by
    every cue whose window covers it (a cue inside a hit is ignored); the text score is the sum clipped
    to [-1, 1]. A term ending in ``*`` matches any word starting with its last word ("downgrade*").
    """

    def __init__(self, rulebase: RuleBase) -> None:
        terms = rulebase.by_kind(LexiconTerm)
        self._matcher = PhraseMatcher((t.term, t) for t in terms if not t.term.endswith("*"))
        # Wildcard terms: all tokens but the last match exactly, the last by prefix. Indexed by the first
        # token (multi-token terms) or the first 3 letters of the prefix (one-token terms) for speed.
        self._wild_multi: dict[str, list[tuple[tuple[str, ...], LexiconTerm]]] = {}
        self._wild_single: dict[str, list[tuple[tuple[str, ...], LexiconTerm]]] = {}
        for t in terms:
            if t.term.endswith("*"):
                words = tuple(w for _, _, w in tokenize(t.term[:-1]))
                if len(words) == 1:
                    self._wild_single.setdefault(words[0][:3], []).append((words, t))
                else:
                    self._wild_multi.setdefault(words[0], []).append((words, t))
        patterns = rulebase.by_kind(PatternRule)
        self._scorers = [p for p in patterns if p.effect == "score"]
        self._cues = [p for p in patterns if p.effect in ("negate", "intensify", "hedge")]
        # a word-start check rules most patterns out per text (0.1% of tweets match a score pattern,
        # and scanning each cost more than the rest of the scoring); cues matter only next to a hit
        self._scorer_filter = WordStartFilter([p.compiled for p in self._scorers])
        self._cue_filter = WordStartFilter([p.compiled for p in self._cues])

    def _wild_hits(self, tokens: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, tuple[str, float]]]:
        out = []
        multi, single = self._wild_multi, self._wild_single
        for i, (start, end, tok) in enumerate(tokens):
            for words, term in multi.get(tok, ()):
                n = len(words)
                window = [w for _, _, w in tokens[i:i + n]]
                if len(window) == n and window[:-1] == list(words[:-1]) and window[-1].startswith(words[-1]):
                    out.append((start, tokens[i + n - 1][1], (term.id, term.weight)))
            for (prefix,), term in single.get(tok[:3], ()):
                if tok.startswith(prefix):
                    out.append((start, end, (term.id, term.weight)))
        return out

    def score(self, text: str) -> tuple[float, list[Evidence]]:
        tokens = tokenize(text)
        hits: list[tuple[int, int, tuple[str, float]]] = [
            (s, e, (t.id, t.weight)) for s, e, t in self._matcher.find_all(tokens)
        ]
        hits += self._wild_hits(tokens)
        words = word_starts(text)
        hits += [(m.start(), m.end(), (p.id, p.weight))
                 for p, keep in zip(self._scorers, self._scorer_filter.keep(words)) if keep
                 for m in p.compiled.finditer(text) if m.end() > m.start()]
        chosen = select_longest(hits)
        if not chosen:
            return 0.0, []
        cues = [(m.start(), m.end(), p) for p, keep in zip(self._cues, self._cue_filter.keep(words)) if keep
                for m in p.compiled.finditer(text) if m.end() > m.start()]
        cues = [c for c in cues if not any(c[0] < e and c[1] > s for s, e, _ in chosen)]
        total, evidence = 0.0, []
        for s, e, (rule_id, weight) in chosen:
            factor, why = 1.0, []
            for cs, ce, cue in cues:
                if _in_window(tokens, (cs, ce), (s, e), cue):
                    factor *= cue.weight
                    why.append(f"{cue.effect} by {cue.id} '{text[cs:ce]}'")
            effective = max(-1.0, min(1.0, weight * factor))
            total += effective
            detail = f"'{text[s:e]}'" + (f" ({'; '.join(why)})" if why else "")
            evidence.append(Evidence("rule", rule_id, detail, weight=effective, span=(s, e)))
        return max(-1.0, min(1.0, total)), evidence


def score_lexicon(text: str, rulebase: RuleBase | LexiconScorer) -> tuple[float, list[Evidence]]:
    """(score in [-1, 1], evidence per term hit). Pass a LexiconScorer to reuse it across texts."""
    scorer = rulebase if isinstance(rulebase, LexiconScorer) else LexiconScorer(rulebase)
    return scorer.score(text)
