"""The generic rule kinds (any domain): lexicon, pattern, context, section and type_constraint.

Each registers itself with the kind registry at import; application kinds live in their application.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kgfusion.knowledge.rules.base import Rule, check_range, compile_regex
from kgfusion.knowledge.rules.errors import fail
from kgfusion.knowledge.rules.matching import tokenize
from kgfusion.knowledge.rules.registry import register_kind

CONTEXT_CATEGORIES = (
    "NEGATED_EXISTENCE", "POSSIBLE_EXISTENCE", "HISTORICAL", "FAMILY", "HYPOTHETICAL", "TERMINATE", "PSEUDO",
)
CONTEXT_DIRECTIONS = ("FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO")
# ConText category -> the boolean attribute it sets on a target.
CATEGORY_ATTRIBUTE = {
    "NEGATED_EXISTENCE": "negated",
    "POSSIBLE_EXISTENCE": "possible",
    "HISTORICAL": "historical",
    "FAMILY": "family",
    "HYPOTHETICAL": "hypothetical",
}
ATTRIBUTES = tuple(CATEGORY_ATTRIBUTE.values())

Category = Literal[
    "NEGATED_EXISTENCE", "POSSIBLE_EXISTENCE", "HISTORICAL", "FAMILY", "HYPOTHETICAL", "TERMINATE", "PSEUDO"
]
Direction = Literal["FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO"]
Attribute = Literal["negated", "possible", "historical", "family", "hypothetical"]


@register_kind("lexicon")
@dataclass(frozen=True, kw_only=True)
class LexiconTerm(Rule):
    """A sentiment term: whole-word, case-insensitive phrase with a weight in [-1, 1]."""

    term: str
    weight: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if not tokenize(self.term):
            fail(self.id, "term is empty", "give the phrase to match, e.g. term: profit warning")
        check_range(self.id, "weight", self.weight, -1.0, 1.0)


PatternEffect = Literal["score", "negate", "intensify", "hedge", "label"]
_EFFECT_RANGES = {  # allowed weight per effect: (low, high, low inclusive, high inclusive)
    "score": (-1.0, 1.0, True, True),
    "negate": (-1.0, 0.0, True, False),
    "intensify": (1.0, 3.0, False, True),
    "hedge": (0.0, 1.0, False, False),
    "label": (0.0, 1.0, False, True),
}


@register_kind("pattern")
@dataclass(frozen=True, kw_only=True)
class PatternRule(Rule):
    """A regex rule (case-insensitive, compiled at load).

    effect: ``score`` adds ``weight`` in [-1, 1] to a lexicon score; ``negate`` multiplies the terms in
    its window by ``weight`` in [-1, 0); ``intensify`` by (1, 3]; ``hedge`` by (0, 1); ``label`` tags a
    match with ``label`` (weight = confidence in (0, 1]). ``window``: tokens after (``scope: forward``) or
    before (``backward``) the cue that it affects, 1..20. ``override: true`` (score/label only) makes a
    match force the decision to ``label`` with ``confidence``.
    """

    regex: str
    effect: PatternEffect
    weight: float
    label: str | None = None
    window: int = 3
    scope: Literal["forward", "backward", "both"] = "forward"
    override: bool = False
    confidence: float = 1.0
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        lo, hi, lo_in, hi_in = _EFFECT_RANGES[self.effect]
        ok = (self.weight >= lo if lo_in else self.weight > lo) and (self.weight <= hi if hi_in else self.weight < hi)
        if not ok:
            fail(self.id, f"weight {self.weight} is out of range for effect '{self.effect}'",
                 f"use a weight in {'[' if lo_in else '('}{lo}, {hi}{']' if hi_in else ')'}")
        if not 1 <= self.window <= 20:
            fail(self.id, f"window {self.window} is out of range", "use a window of 1..20 tokens")
        if (self.effect == "label" or self.override) and not self.label:
            fail(self.id, "this rule needs a 'label'", "add label: <class or entity label> (e.g. negative)")
        if self.override and self.effect not in ("score", "label"):
            fail(self.id, f"override is not allowed for effect '{self.effect}'", "use effect: score or label")
        check_range(self.id, "confidence", self.confidence, 0.0, 1.0)
        object.__setattr__(self, "compiled", compile_regex(self.id, self.regex, "regex"))


TokenSpec = tuple[tuple[str, ...], bool]  # (alternatives, optional)
_MAX_PHRASES = 5000


@register_kind("context")
@dataclass(frozen=True, kw_only=True)
class ContextRule(Rule):
    """A ConText modifier trigger (Chapman et al.; medspaCy ConTextRule).

    Exactly one trigger form: ``literal`` (a phrase, matched token by token, case-insensitive);
    ``tokens`` (a medspaCy token pattern: a list of ``{LOWER: word | {IN: [words]}, OP: "?"}``, expanded
    to phrases at load); or ``pattern`` (a Python regex, case-insensitive, tried at token starts; write
    your own end boundary, e.g. ``(?!\\w)``). ``max_scope``: scope limit in tokens (None: sentence).
    ``allowed_types``: target labels it may modify (None: all). ``source``: provenance.
    """

    category: Category
    direction: Direction
    literal: str | None = None
    tokens: tuple[TokenSpec, ...] | None = None
    pattern: str | None = None
    max_scope: int | None = None
    allowed_types: tuple[str, ...] | None = None
    source: str = ""
    compiled: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    phrases: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if sum(x is not None for x in (self.literal, self.tokens, self.pattern)) != 1:
            fail(self.id, "a context rule needs exactly one of 'literal', 'tokens' or 'pattern'",
                 "keep literal: <phrase>, tokens: [...] or pattern: <regex>, not several")
        if self.literal is not None and not tokenize(self.literal):
            fail(self.id, "literal is empty", "give the trigger phrase, e.g. literal: no evidence of")
        if self.category == "TERMINATE" and self.direction != "TERMINATE":
            fail(self.id, "category TERMINATE needs direction TERMINATE", "set direction: TERMINATE")
        if self.category == "PSEUDO" and self.direction != "PSEUDO":
            fail(self.id, "category PSEUDO needs direction PSEUDO", "set direction: PSEUDO")
        if self.max_scope is not None and self.max_scope < 1:
            fail(self.id, f"max_scope {self.max_scope} must be >= 1", "use a positive token count or omit it")
        if self.allowed_types is not None:
            object.__setattr__(self, "allowed_types", tuple(t.upper() for t in self.allowed_types))
        compiled = None
        if self.pattern is not None:
            compiled = compile_regex(self.id, self.pattern, "pattern")
            if compiled.groupindex or re.search(r"\\[1-9]|\(\?P=", self.pattern):
                fail(self.id, "pattern uses named groups or back-references",
                     "use non-capturing groups (?:...) only; patterns are combined into one regex")
        object.__setattr__(self, "compiled", compiled)
        phrases: tuple[str, ...] = ()
        if self.literal is not None:
            phrases = (self.literal,)
        elif self.tokens is not None:
            phrases = _expand_tokens(self.id, self.tokens)
        object.__setattr__(self, "phrases", phrases)

    @property
    def trigger(self) -> str:
        """The literal phrase, the first token-pattern phrase or the regex source."""
        if self.pattern is not None:
            return self.pattern
        return self.literal if self.literal is not None else self.phrases[0]

    @staticmethod
    def parse_tokens(raw: Any, rule_id: str | None = None) -> tuple[TokenSpec, ...]:
        """medspaCy token dicts -> ((alternatives...), optional) specs."""
        fix = 'write tokens: [{LOWER: no}, {LOWER: {IN: [new, other]}, OP: "?"}] or use pattern: <regex>'
        if not isinstance(raw, list) or not raw:
            fail(rule_id, "'tokens' must be a non-empty list of token dicts", fix)
        out = []
        for tok in raw:
            if not isinstance(tok, Mapping) or set(tok) - {"LOWER", "OP"} or "LOWER" not in tok:
                fail(rule_id, f"unsupported token {tok!r} (only LOWER and OP are supported)", fix)
            lower, op = tok["LOWER"], tok.get("OP")
            if op not in (None, "?"):
                fail(rule_id, f"unsupported OP {op!r} (only '?' is supported)", fix)
            if isinstance(lower, Mapping) and set(lower) == {"IN"} and isinstance(lower["IN"], list):
                alts = lower["IN"]
            elif isinstance(lower, str):
                alts = [lower]
            else:
                fail(rule_id, f"unsupported LOWER {lower!r}", fix)
            if not alts or not all(isinstance(a, str) and a.strip() for a in alts):
                fail(rule_id, f"token {tok!r} needs non-empty words", fix)
            out.append((tuple(a.lower() for a in alts), op == "?"))
        return tuple(out)

    @classmethod
    def parse_field(cls, name: str, raw: Any, hint: Any, rule_id: str | None) -> Any:
        if name == "tokens":
            return None if raw is None else cls.parse_tokens(raw, rule_id)
        return super().parse_field(name, raw, hint, rule_id)

    def dump_field(self, name: str, value: Any) -> Any:
        if name == "tokens" and value is not None:  # back to medspaCy token dicts
            return [{"LOWER": alts[0] if len(alts) == 1 else {"IN": list(alts)}, **({"OP": "?"} if opt else {})}
                    for alts, opt in value]
        return super().dump_field(name, value)


def _expand_tokens(rule_id: str, specs: Sequence[TokenSpec]) -> tuple[str, ...]:
    phrases = [""]
    for alts, optional in specs:
        choices = [*alts, ""] if optional else list(alts)
        phrases = [f"{p} {c}".strip() for p in phrases for c in choices]
        if len(phrases) > _MAX_PHRASES:
            fail(rule_id, f"the token pattern expands to more than {_MAX_PHRASES} phrases",
                 "split the rule or use pattern: <regex>")
    phrases = [p for p in dict.fromkeys(phrases) if p]
    if not phrases:
        fail(rule_id, "the token pattern matches nothing (all tokens optional)", "make one token required")
    return tuple(phrases)


@register_kind("section")
@dataclass(frozen=True, kw_only=True)
class SectionRule(Rule):
    """A clinical note section: header phrases at a line start -> ``category``; ``attributes`` are the
    ConText attributes every target inside the section receives (e.g. family_history -> family)."""

    category: str
    headers: tuple[str, ...]
    attributes: tuple[Attribute, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.category):
            fail(self.id, f"category {self.category!r} is not snake_case", "use e.g. family_history")
        if not self.headers or any(not h.strip() for h in self.headers):
            fail(self.id, "headers is empty", "list the header texts, e.g. headers: [Family History, FH]")


@register_kind("type_constraint")
@dataclass(frozen=True, kw_only=True)
class TypeConstraint(Rule):
    """Entity ``label`` (e.g. DISEASE, ORG) may only link to KG nodes of ``allowed_types`` (URIs or CURIEs
    such as ``schema:MedicalCondition``). ``action``: penalize (confidence *= penalty) or reject."""

    label: str
    allowed_types: tuple[str, ...]
    action: Literal["penalize", "reject"] = "penalize"
    penalty: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.allowed_types:
            fail(self.id, "allowed_types is empty", "list at least one KG type, e.g. [schema:Corporation]")
        check_range(self.id, "penalty", self.penalty, 0.0, 1.0)
        object.__setattr__(self, "label", self.label.upper())
