"""Rule bases as data: typed, frozen rule objects loaded from YAML/JSON by one strict loader.

File format (YAML or JSON, one mapping per file)::

    version: 1                 # optional, must be 1
    kind: lexicon              # default kind of the rules below (a rule may set its own ``kind``)
    description: free text     # optional
    disable: [fin.lex.cheap]   # optional: drop rules loaded from earlier files (user overrides)
    rules:
      - id: fin.lex.profit_warning
        term: profit warning
        weight: -0.8

Kinds: ``lexicon`` (LexiconTerm), ``pattern`` (PatternRule), ``context`` (ContextRule), ``section``
(SectionRule), ``type_constraint`` (TypeConstraint), ``business`` (BusinessRule), ``ambiguous_ticker``
(AmbiguousTicker). Ids are unique across a RuleBase; a later file may set ``replace: true`` on a rule
to replace an earlier rule with the same id on purpose. Unknown keys, missing fields, wrong types,
out-of-range values, empty and malformed files raise RuleError naming the file, the rule and the fix.

Packaged defaults live in ``data/rules/<domain>/`` (``load_domain_rules``). The medical ConText rules
are converted from the shipped medspaCy/NegEx/pyConTextNLP lists by
``python -m kgfusion.knowledge.rules convert-context data/datasets/context_rules data/rules/medical/context.yaml``.
"""
from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from kgfusion.core.errors import KgfusionError
from kgfusion.core.fileio import atomic_write_text

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

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
_TICKER_RE = re.compile(r"^[A-Z][A-Z0-9]{0,5}(?:\.[A-Z])?$")


class RuleError(KgfusionError):
    """A rule or rule file is invalid. The message names the file, the rule (index and id) and the fix."""

    def __init__(
        self, problem: str, *, fix: str, path: str | Path | None = None, index: int | None = None,
        rule_id: str | None = None,
    ) -> None:
        self.problem, self.fix, self.path, self.index, self.rule_id = problem, fix, path, index, rule_id
        where = []
        if path is not None:
            where.append(str(path))
        if index is not None or rule_id:
            rule = f"rules[{index}]" if index is not None else "rule"
            where.append(f"{rule} (id '{rule_id}')" if rule_id else rule)
        prefix = ": ".join(where)
        super().__init__(f"{prefix + ': ' if prefix else ''}{problem}. Fix: {fix}")

    def located(self, path: str | Path, index: int | None, rule_id: str | None) -> RuleError:
        """The same error with the file and rule position filled in."""
        return RuleError(
            self.problem, fix=self.fix, path=path, index=index if self.index is None else self.index,
            rule_id=self.rule_id or rule_id,
        )


def _fail(rule_id: str | None, problem: str, fix: str) -> typing.NoReturn:
    raise RuleError(problem, fix=fix, rule_id=rule_id)


def _compile(rule_id: str, pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        _fail(rule_id, f"bad regular expression in '{what}': {exc} in {pattern!r}",
              "write a valid Python regex (escape literal . ( ) [ ] ? * + with a backslash)")


# ---------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True, kw_only=True)
class Rule:
    """Base of every rule: a unique ``id`` (letters, digits, ``_ . : -``) and a free ``note``."""

    KIND: ClassVar[str] = ""
    id: str
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID_RE.match(self.id):
            _fail(str(self.id), f"invalid id {self.id!r}",
                  "use letters, digits and _ . : - only, starting with a letter or digit (e.g. fin.lex.layoffs)")


@dataclass(frozen=True, kw_only=True)
class LexiconTerm(Rule):
    """A sentiment term: whole-word, case-insensitive phrase with a weight in [-1, 1]."""

    KIND: ClassVar[str] = "lexicon"
    term: str
    weight: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if not tokenize(self.term):
            _fail(self.id, "term is empty", "give the phrase to match, e.g. term: profit warning")
        _check_range(self.id, "weight", self.weight, -1.0, 1.0)


PatternEffect = Literal["score", "negate", "intensify", "hedge", "label"]
_EFFECT_RANGES = {  # allowed weight per effect: (low, high, low inclusive, high inclusive)
    "score": (-1.0, 1.0, True, True),
    "negate": (-1.0, 0.0, True, False),
    "intensify": (1.0, 3.0, False, True),
    "hedge": (0.0, 1.0, False, False),
    "label": (0.0, 1.0, False, True),
}


@dataclass(frozen=True, kw_only=True)
class PatternRule(Rule):
    """A regex rule (case-insensitive, compiled at load).

    effect: ``score`` adds ``weight`` in [-1, 1] to a lexicon score; ``negate`` multiplies the terms in
    its window by ``weight`` in [-1, 0); ``intensify`` by (1, 3]; ``hedge`` by (0, 1); ``label`` tags a
    match with ``label`` (weight = confidence in (0, 1]). ``window``: tokens after (``scope: forward``) or
    before (``backward``) the cue that it affects, 1..20. ``override: true`` (score/label only) makes a
    match force the decision to ``label`` with ``confidence``.
    """

    KIND: ClassVar[str] = "pattern"
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
            _fail(self.id, f"weight {self.weight} is out of range for effect '{self.effect}'",
                  f"use a weight in {'[' if lo_in else '('}{lo}, {hi}{']' if hi_in else ')'}")
        if not 1 <= self.window <= 20:
            _fail(self.id, f"window {self.window} is out of range", "use a window of 1..20 tokens")
        if (self.effect == "label" or self.override) and not self.label:
            _fail(self.id, "this rule needs a 'label'", "add label: <class or entity label> (e.g. negative)")
        if self.override and self.effect not in ("score", "label"):
            _fail(self.id, f"override is not allowed for effect '{self.effect}'", "use effect: score or label")
        _check_range(self.id, "confidence", self.confidence, 0.0, 1.0)
        object.__setattr__(self, "compiled", _compile(self.id, self.regex, "regex"))


TokenSpec = tuple[tuple[str, ...], bool]  # (alternatives, optional)
_MAX_PHRASES = 5000


@dataclass(frozen=True, kw_only=True)
class ContextRule(Rule):
    """A ConText modifier trigger (Chapman et al.; medspaCy ConTextRule).

    Exactly one trigger form: ``literal`` (a phrase, matched token by token, case-insensitive);
    ``tokens`` (a medspaCy token pattern: a list of ``{LOWER: word | {IN: [words]}, OP: "?"}``, expanded
    to phrases at load); or ``pattern`` (a Python regex, case-insensitive, tried at token starts; write
    your own end boundary, e.g. ``(?!\\w)``). ``max_scope``: scope limit in tokens (None: sentence).
    ``allowed_types``: target labels it may modify (None: all). ``source``: provenance.
    """

    KIND: ClassVar[str] = "context"
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
            _fail(self.id, "a context rule needs exactly one of 'literal', 'tokens' or 'pattern'",
                  "keep literal: <phrase>, tokens: [...] or pattern: <regex>, not several")
        if self.literal is not None and not tokenize(self.literal):
            _fail(self.id, "literal is empty", "give the trigger phrase, e.g. literal: no evidence of")
        if self.category == "TERMINATE" and self.direction != "TERMINATE":
            _fail(self.id, "category TERMINATE needs direction TERMINATE", "set direction: TERMINATE")
        if self.category == "PSEUDO" and self.direction != "PSEUDO":
            _fail(self.id, "category PSEUDO needs direction PSEUDO", "set direction: PSEUDO")
        if self.max_scope is not None and self.max_scope < 1:
            _fail(self.id, f"max_scope {self.max_scope} must be >= 1", "use a positive token count or omit it")
        if self.allowed_types is not None:
            object.__setattr__(self, "allowed_types", tuple(t.upper() for t in self.allowed_types))
        compiled = None
        if self.pattern is not None:
            compiled = _compile(self.id, self.pattern, "pattern")
            if compiled.groupindex or re.search(r"\\[1-9]|\(\?P=", self.pattern):
                _fail(self.id, "pattern uses named groups or back-references",
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
            _fail(rule_id, "'tokens' must be a non-empty list of token dicts", fix)
        out = []
        for tok in raw:
            if not isinstance(tok, Mapping) or set(tok) - {"LOWER", "OP"} or "LOWER" not in tok:
                _fail(rule_id, f"unsupported token {tok!r} (only LOWER and OP are supported)", fix)
            lower, op = tok["LOWER"], tok.get("OP")
            if op not in (None, "?"):
                _fail(rule_id, f"unsupported OP {op!r} (only '?' is supported)", fix)
            if isinstance(lower, Mapping) and set(lower) == {"IN"} and isinstance(lower["IN"], list):
                alts = lower["IN"]
            elif isinstance(lower, str):
                alts = [lower]
            else:
                _fail(rule_id, f"unsupported LOWER {lower!r}", fix)
            if not alts or not all(isinstance(a, str) and a.strip() for a in alts):
                _fail(rule_id, f"token {tok!r} needs non-empty words", fix)
            out.append((tuple(a.lower() for a in alts), op == "?"))
        return tuple(out)


def _expand_tokens(rule_id: str, specs: Sequence[TokenSpec]) -> tuple[str, ...]:
    phrases = [""]
    for alts, optional in specs:
        choices = [*alts, ""] if optional else list(alts)
        phrases = [f"{p} {c}".strip() for p in phrases for c in choices]
        if len(phrases) > _MAX_PHRASES:
            _fail(rule_id, f"the token pattern expands to more than {_MAX_PHRASES} phrases",
                  "split the rule or use pattern: <regex>")
    phrases = [p for p in dict.fromkeys(phrases) if p]
    if not phrases:
        _fail(rule_id, "the token pattern matches nothing (all tokens optional)", "make one token required")
    return tuple(phrases)


@dataclass(frozen=True, kw_only=True)
class SectionRule(Rule):
    """A clinical note section: header phrases at a line start -> ``category``; ``attributes`` are the
    ConText attributes every target inside the section receives (e.g. family_history -> family)."""

    KIND: ClassVar[str] = "section"
    category: str
    headers: tuple[str, ...]
    attributes: tuple[Attribute, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.category):
            _fail(self.id, f"category {self.category!r} is not snake_case", "use e.g. family_history")
        if not self.headers or any(not h.strip() for h in self.headers):
            _fail(self.id, "headers is empty", "list the header texts, e.g. headers: [Family History, FH]")


@dataclass(frozen=True, kw_only=True)
class TypeConstraint(Rule):
    """Entity ``label`` (e.g. DISEASE, ORG) may only link to KG nodes of ``allowed_types`` (URIs or CURIEs
    such as ``schema:MedicalCondition``). ``action``: penalize (confidence *= penalty) or reject."""

    KIND: ClassVar[str] = "type_constraint"
    label: str
    allowed_types: tuple[str, ...]
    action: Literal["penalize", "reject"] = "penalize"
    penalty: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.allowed_types:
            _fail(self.id, "allowed_types is empty", "list at least one KG type, e.g. [schema:Corporation]")
        _check_range(self.id, "penalty", self.penalty, 0.0, 1.0)
        object.__setattr__(self, "label", self.label.upper())


ConditionOp = Literal["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "contains"]
_SCALAR = (str, int, float, bool)


@dataclass(frozen=True)
class Condition:
    """One where-condition on an item field. List-valued fields match when any element matches;
    strings compare case-insensitively; a missing field never matches."""

    field: str
    op: ConditionOp
    value: Any

    def __post_init__(self) -> None:
        if self.op in ("in", "not_in"):
            if not isinstance(self.value, (list, tuple)) or not all(isinstance(v, _SCALAR) for v in self.value):
                raise RuleError(f"condition '{self.field} {self.op}' needs a list of values",
                                fix=f"write {self.field}: {{{self.op}: [a, b]}}")
            object.__setattr__(self, "value", tuple(self.value))
        elif self.op in ("lt", "le", "gt", "ge"):
            if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
                raise RuleError(f"condition '{self.field} {self.op}' needs a number, got {self.value!r}",
                                fix=f"write {self.field}: {{{self.op}: 1990}}")
        elif not isinstance(self.value, _SCALAR):
            raise RuleError(f"condition '{self.field} {self.op}' needs a single value, got {self.value!r}",
                            fix=f"write {self.field}: {{{self.op}: value}}")

    def matches(self, item: Mapping[str, Any]) -> bool:
        """True when ``item[field]`` satisfies the condition."""
        if self.field not in item or item[self.field] is None:
            return False
        got = item[self.field]
        values = list(got) if isinstance(got, (list, tuple, set, frozenset)) else [got]
        if self.op == "ne":
            return not any(_eq(v, self.value) for v in values)
        if self.op == "not_in":
            return not any(_eq(v, w) for v in values for w in self.value)
        if self.op == "eq":
            return any(_eq(v, self.value) for v in values)
        if self.op == "in":
            return any(_eq(v, w) for v in values for w in self.value)
        if self.op == "contains":
            if isinstance(got, str):
                return str(self.value).casefold() in got.casefold()
            return any(_eq(v, self.value) for v in values)
        if len(values) != 1 or isinstance(values[0], bool) or not isinstance(values[0], (int, float)):
            return False
        x, y = float(values[0]), float(self.value)
        return {"lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y}[self.op]


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


@dataclass(frozen=True, kw_only=True)
class BusinessRule(Rule):
    """A recommendation business rule.

    exclude: drop items matching ``where`` (required). boost: multiply the score of matching items by
    ``amount`` in (0, 10]. cap: keep at most ``max_per_group`` items per value of ``group_by``.
    freshness: multiply by ``1 + amount * 0.5 ** (age / half_life)`` with age = now - item[time_field]
    (amount in (0, 1], half_life > 0 in the field's unit). ``where`` maps field -> value (equals) or
    ``{op: value}`` with op in eq, ne, in, not_in, lt, le, gt, ge, contains; all must hold.
    """

    KIND: ClassVar[str] = "business"
    action: Literal["exclude", "boost", "cap", "freshness"]
    where: tuple[Condition, ...] = ()
    amount: float | None = None
    max_per_group: int | None = None
    group_by: str | None = None
    time_field: str | None = None
    half_life: float | None = None

    _NEEDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "exclude": (), "boost": ("amount",), "cap": ("max_per_group", "group_by"),
        "freshness": ("amount", "time_field", "half_life"),
    }
    _PARAMS: ClassVar[tuple[str, ...]] = ("amount", "max_per_group", "group_by", "time_field", "half_life")

    def __post_init__(self) -> None:
        super().__post_init__()
        needs = self._NEEDS[self.action]
        for name in self._PARAMS:
            value = getattr(self, name)
            if name in needs and value is None:
                _fail(self.id, f"action '{self.action}' needs '{name}'", f"add {name}: <value>")
            if name not in needs and value is not None:
                _fail(self.id, f"'{name}' is not used by action '{self.action}'", f"remove {name}")
        if self.action == "exclude" and not self.where:
            _fail(self.id, "an exclude rule without 'where' would drop every item",
                  "add where: {item_id: {in: [...]}} (an empty list excludes nothing)")
        if self.action == "boost":
            _check_range(self.id, "amount", self.amount, 0.0, 10.0, low_open=True)
        if self.action == "freshness":
            _check_range(self.id, "amount", self.amount, 0.0, 1.0, low_open=True)
            if not self.half_life or self.half_life <= 0:
                _fail(self.id, f"half_life {self.half_life} must be > 0", "use e.g. half_life: 10")
        if self.action == "cap" and (self.max_per_group or 0) < 1:
            _fail(self.id, f"max_per_group {self.max_per_group} must be >= 1", "use e.g. max_per_group: 3")

    def matches(self, item: Mapping[str, Any]) -> bool:
        """True when every where-condition holds (an empty where matches every item)."""
        return all(c.matches(item) for c in self.where)

    @staticmethod
    def parse_where(raw: Any, rule_id: str | None = None) -> tuple[Condition, ...]:
        """``{field: value | {op: value}}`` -> conditions (sorted by field for a stable order)."""
        if raw is None:
            return ()
        if not isinstance(raw, Mapping):
            _fail(rule_id, f"'where' must be a mapping, got {type(raw).__name__}",
                  "write where: {genre: Horror, year: {lt: 1990}}")
        out = []
        for key in sorted(raw, key=str):
            spec = raw[key]
            try:
                if isinstance(spec, Mapping):
                    if len(spec) != 1:
                        raise RuleError(f"condition on '{key}' must have exactly one operator, got {list(spec)}",
                                        fix="split it into one operator per field, e.g. {lt: 2000}")
                    ((op, value),) = spec.items()
                    if op not in get_args(ConditionOp):
                        raise RuleError(f"unknown operator '{op}' on '{key}'",
                                        fix=f"use one of {', '.join(get_args(ConditionOp))}")
                    out.append(Condition(str(key), op, value))
                else:
                    out.append(Condition(str(key), "in" if isinstance(spec, list) else "eq", spec))
            except RuleError as exc:
                raise RuleError(exc.problem, fix=exc.fix, rule_id=rule_id) from None
        return tuple(out)


@dataclass(frozen=True, kw_only=True)
class AmbiguousTicker(Rule):
    """A ticker that is also a common word ("ALL", "IT"): link it only with a ``requires`` cue
    (``cashtag``: $ALL; ``company_name``: the company named nearby)."""

    KIND: ClassVar[str] = "ambiguous_ticker"
    ticker: str
    company: str
    requires: tuple[Literal["cashtag", "company_name"], ...] = ("cashtag", "company_name")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _TICKER_RE.match(self.ticker):
            _fail(self.id, f"ticker {self.ticker!r} is not an upper-case ticker",
                  "write it in quotes and upper case, e.g. ticker: 'ON'")
        if not self.requires:
            _fail(self.id, "requires is empty", "list at least one of cashtag, company_name")


def _check_range(rule_id: str, name: str, value: float | None, lo: float, hi: float, *, low_open: bool = False) -> None:
    if value is None or not math.isfinite(value) or value > hi or (value <= lo if low_open else value < lo):
        _fail(rule_id, f"{name} {value} is out of range", f"use a {name} in {'(' if low_open else '['}{lo}, {hi}]")


RULE_CLASSES: dict[str, type[Rule]] = {
    cls.KIND: cls
    for cls in (LexiconTerm, PatternRule, ContextRule, SectionRule, TypeConstraint, BusinessRule, AmbiguousTicker)
}
R = TypeVar("R", bound=Rule)


# ----------------------------------------------------------------------------------- dict -> rule


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(str, get_args(hint)))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(hint) if a is not type(None))
    if origin is tuple:
        return f"a list of {_type_name(get_args(hint)[0])}"
    return {str: "text", float: "a number", int: "an integer", bool: "true or false"}.get(hint, str(hint))


def _coerce(value: Any, hint: Any, name: str, rule_id: str | None) -> Any:
    """Check ``value`` against a type hint; lists become tuples, Literal strings are matched without case."""
    origin = get_origin(hint)
    bad = RuleError(
        f"field '{name}' must be {_type_name(hint)}, got {type(value).__name__} {value!r}",
        fix=(f"quote the value ('{value!s}'): YAML reads yes/no/on/off/true/false as booleans"
             if isinstance(value, bool) and hint is not bool and get_origin(hint) is not Literal
             else f"set {name} to {_type_name(hint)}"),
        rule_id=rule_id,
    )
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None and len(args) < len(get_args(hint)):
            return None
        return _coerce(value, args[0], name, rule_id)
    if origin is Literal:
        choices = get_args(hint)
        if isinstance(value, str):
            for choice in choices:
                if value.strip().lower() == str(choice).lower():
                    return choice
        raise RuleError(f"field '{name}' has value {value!r}, not one of {', '.join(map(str, choices))}",
                        fix=f"use one of {', '.join(map(str, choices))}", rule_id=rule_id)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise bad
        return tuple(_coerce(v, get_args(hint)[0], name, rule_id) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise bad  # pragma: no cover - every declared hint is handled above


_META_KEYS = {"kind", "replace"}


def rule_from_dict(raw: Any, kind: str | None = None) -> Rule:
    """Build one rule from a mapping (``kind`` from the mapping or the argument). Raises RuleError."""
    if not isinstance(raw, Mapping):
        raise RuleError(f"a rule must be a mapping, got {type(raw).__name__} {raw!r}",
                        fix="write each rule as '- id: ...' followed by its fields")
    rule_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    kind = raw.get("kind", kind)
    if not isinstance(kind, str) or kind not in RULE_CLASSES:
        raise RuleError(f"unknown or missing kind {kind!r}",
                        fix=f"set kind: to one of {', '.join(RULE_CLASSES)}", rule_id=rule_id)
    cls = RULE_CLASSES[kind]
    hints, init_fields = _class_schema(cls)
    unknown = sorted(set(map(str, raw)) - set(init_fields) - _META_KEYS)
    if unknown:
        raise RuleError(f"unknown key(s) {unknown} for kind '{kind}'",
                        fix=f"remove them or use the allowed keys: {', '.join(init_fields)}", rule_id=rule_id)
    missing = [n for n, f in init_fields.items() if n not in raw and _is_required(f)]
    if missing:
        raise RuleError(f"missing field(s) {missing} for kind '{kind}'", fix=f"add {', '.join(missing)}",
                        rule_id=rule_id)
    kwargs: dict[str, Any] = {}
    for name in init_fields:
        if name not in raw:
            continue
        if cls is BusinessRule and name == "where":
            kwargs[name] = BusinessRule.parse_where(raw[name], rule_id)
        elif cls is ContextRule and name == "tokens":
            kwargs[name] = None if raw[name] is None else ContextRule.parse_tokens(raw[name], rule_id)
        else:
            kwargs[name] = _coerce(raw[name], hints[name], name, rule_id)
    try:
        return cls(**kwargs)
    except RuleError:
        raise
    except (TypeError, ValueError) as exc:  # defensive: should not happen after the checks above
        raise RuleError(f"invalid rule: {exc}", fix="check the field values", rule_id=rule_id) from exc


@functools.cache
def _class_schema(cls: type[Rule]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(type hints, init fields by name) of a rule class; cached because hints resolve slowly."""
    return get_type_hints(cls), {f.name: f for f in fields(cls) if f.init}


def _is_required(f: Any) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """The inverse of ``rule_from_dict`` (defaults left out, ``kind`` included)."""
    out: dict[str, Any] = {"kind": rule.KIND}
    for f in fields(rule):
        if not f.init:
            continue
        value = getattr(rule, f.name)
        if not _is_required(f) and value == f.default:
            continue
        if f.name == "where":
            value = {c.field: {c.op: list(c.value) if isinstance(c.value, tuple) else c.value} for c in value}
        elif f.name == "tokens" and value is not None:
            value = [{"LOWER": alts[0] if len(alts) == 1 else {"IN": list(alts)}, **({"OP": "?"} if opt else {})}
                     for alts, opt in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


# --------------------------------------------------------------------------------------- RuleBase


class RuleBase:
    """An immutable set of rules with unique ids, grouped by kind."""

    def __init__(self, rules: Iterable[Rule] = (), *, origins: Mapping[str, str] | None = None) -> None:
        self._rules: dict[str, Rule] = {}
        self._origins: dict[str, str] = {}
        origins = origins or {}
        for rule in rules:
            if not isinstance(rule, Rule):
                raise RuleError(f"not a rule: {rule!r}", fix="pass Rule objects (use load_rules for files)")
            if rule.id in self._rules:
                raise RuleError(
                    f"duplicate rule id '{rule.id}' (in {self._origins[rule.id]} and {origins.get(rule.id, '<code>')})",
                    fix="give one of them another id, or set replace: true on the later one", rule_id=rule.id,
                )
            self._rules[rule.id] = rule
            self._origins[rule.id] = origins.get(rule.id, "<code>")

    def by_kind(self, cls: type[R]) -> tuple[R, ...]:
        """All rules of one class, in load order."""
        return tuple(r for r in self._rules.values() if isinstance(r, cls))

    def get(self, rule_id: str) -> Rule:
        if rule_id not in self._rules:
            raise RuleError(f"no rule with id '{rule_id}'", fix="check the id (see RuleBase.ids())")
        return self._rules[rule_id]

    def origin(self, rule_id: str) -> str:
        """The file a rule was loaded from (``<code>`` for rules built in Python)."""
        return self._origins[rule_id]

    def ids(self) -> tuple[str, ...]:
        return tuple(self._rules)

    def merge(self, other: RuleBase) -> RuleBase:
        """A new RuleBase with the rules of both; duplicate ids raise RuleError naming both files."""
        origins = {**self._origins, **{k: other.origin(k) for k in other.ids()}}
        merged = RuleBase(list(self), origins=self._origins)
        for rule in other:
            if rule.id in merged._rules:
                raise RuleError(
                    f"duplicate rule id '{rule.id}' (in {self.origin(rule.id)} and {other.origin(rule.id)})",
                    fix="give one of them another id, or set replace: true in the later file", rule_id=rule.id,
                )
        return RuleBase([*self, *other], origins=origins)

    def counts(self) -> dict[str, int]:
        """Number of rules per kind."""
        out: dict[str, int] = {}
        for rule in self:
            out[rule.KIND] = out.get(rule.KIND, 0) + 1
        return out

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def __repr__(self) -> str:
        return f"RuleBase({self.counts()})"


# ----------------------------------------------------------------------------------------- loading

_TOP_KEYS = {"version", "kind", "description", "rules", "disable"}
RULE_SUFFIXES = (".yaml", ".yml", ".json")


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(f"not UTF-8 text ({exc})", fix="save the file as UTF-8", path=path) from None
    except OSError as exc:
        raise RuleError(f"cannot read the file ({exc.strerror})", fix="check the path and permissions",
                        path=path) from None
    if not text.strip():
        raise RuleError("the rule file is empty", fix="add 'kind:' and a non-empty 'rules:' list, or remove the file",
                        path=path)
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise RuleError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                            fix="fix the JSON syntax at that position", path=path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleError(f"malformed YAML{where}: {problem}",
                        fix="fix the YAML syntax there (indentation, quotes, ':' after keys)", path=path) from None


def _expand_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in RULE_SUFFIXES)
            if not found:
                raise RuleError("the rule directory has no .yaml/.yml/.json files", fix="add rule files or drop the path",
                                path=p)
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise RuleError("no such rule file or directory", fix="check the path", path=p)
    return out


def load_rules(paths: str | Path | Iterable[str | Path], *, base: RuleBase | None = None) -> RuleBase:
    """Load rule files (or directories of them, sorted by name) in order into one RuleBase.

    ``base``: rules loaded earlier (e.g. packaged defaults) that these files extend. A later rule with the
    id of an earlier one must say ``replace: true``; ``disable: [ids]`` drops earlier rules.
    """
    rules: dict[str, Rule] = dict((r.id, r) for r in base) if base else {}
    origins: dict[str, str] = {r.id: base.origin(r.id) for r in base} if base else {}
    for path in _expand_paths(paths):
        doc = _read_document(path)
        if not isinstance(doc, Mapping):
            raise RuleError(f"the top level must be a mapping with 'rules:', got {type(doc).__name__}",
                            fix="start the file with 'kind: <kind>' and 'rules:' followed by a list", path=path)
        unknown = sorted(set(map(str, doc)) - _TOP_KEYS)
        if unknown:
            raise RuleError(f"unknown top-level key(s) {unknown}",
                            fix=f"use only {', '.join(sorted(_TOP_KEYS))}", path=path)
        if doc.get("version", 1) != 1:
            raise RuleError(f"unsupported version {doc.get('version')!r}", fix="set version: 1", path=path)
        kind = doc.get("kind")
        if kind is not None and (not isinstance(kind, str) or kind not in RULE_CLASSES):
            raise RuleError(f"unknown kind {kind!r}", fix=f"use one of {', '.join(RULE_CLASSES)}", path=path)
        disable = doc.get("disable") or []
        if not isinstance(disable, list) or not all(isinstance(d, str) for d in disable):
            raise RuleError("'disable' must be a list of rule ids", fix="write disable: [id1, id2]", path=path)
        for rule_id in disable:
            if rule_id not in rules:
                raise RuleError(f"disable names unknown rule id '{rule_id}'",
                                fix="load the file that defines it first, or remove the id", path=path)
            del rules[rule_id]
            del origins[rule_id]
        items = doc.get("rules")
        if items is None and disable:
            continue
        if not isinstance(items, list) or not items:
            raise RuleError("'rules' must be a non-empty list",
                            fix="add 'rules:' followed by '- id: ...' entries", path=path)
        seen_here: dict[str, int] = {}
        for index, raw in enumerate(items):
            raw_id = raw.get("id") if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) else None
            try:
                rule = rule_from_dict(raw, kind)
                replace = raw.get("replace", False)
                if not isinstance(replace, bool):
                    raise RuleError("'replace' must be true or false", fix="write replace: true", rule_id=raw_id)
            except RuleError as exc:
                raise exc.located(path, index, raw_id) from None
            if rule.id in seen_here:
                raise RuleError(f"duplicate rule id '{rule.id}' (also rules[{seen_here[rule.id]}] in the same file)",
                                fix="give each rule its own id", path=path, index=index, rule_id=rule.id)
            if rule.id in rules and not replace:
                raise RuleError(f"duplicate rule id '{rule.id}' (in {origins[rule.id]} and {path})",
                                fix="give one of them another id, or set replace: true on the later one",
                                path=path, index=index, rule_id=rule.id)
            if replace and rule.id not in rules:
                raise RuleError(f"replace: true but no earlier rule has id '{rule.id}'",
                                fix="drop 'replace' or fix the id", path=path, index=index, rule_id=rule.id)
            seen_here[rule.id] = index
            rules[rule.id] = rule
            origins[rule.id] = str(path)
    return RuleBase(rules.values(), origins=origins)


def default_rules_dir(domain: str) -> Path:
    """The packaged rule directory ``data/rules/<domain>`` of this checkout."""
    path = Path(__file__).resolve().parents[1] / "data" / "rules" / domain
    if not path.is_dir():
        raise RuleError(f"no packaged rules for domain '{domain}'",
                        fix="use finance, medical or recommend, or pass your own rule paths", path=path)
    return path


def load_domain_rules(domain: str, user_paths: str | Path | Iterable[str | Path] = ()) -> RuleBase:
    """Packaged defaults for ``domain`` merged with the user's rule files (later files win via replace)."""
    base = load_rules(default_rules_dir(domain))
    if isinstance(user_paths, (str, Path)):
        user_paths = [user_paths]
    user_paths = list(user_paths)
    return load_rules(user_paths, base=base) if user_paths else base


def ambiguous_tickers(rulebase: RuleBase) -> dict[str, AmbiguousTicker]:
    """Ticker -> AmbiguousTicker rule (tickers that need a cashtag or company name to be linked)."""
    return {r.ticker: r for r in rulebase.by_kind(AmbiguousTicker)}


# ------------------------------------------------------------------------------ tokens and phrases

# Words, "n't" split off like spaCy ("didn't" -> "did", "n't"), and single punctuation marks.
_TOKEN_RE = re.compile(r"\w+(?=n['’]t\b)|n['’]t\b|\w+|[^\w\s]", re.IGNORECASE)


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """(start, end, lower-cased token) for words and punctuation; offsets index ``text``."""
    return [(m.start(), m.end(), m.group().lower().replace("’", "'")) for m in _TOKEN_RE.finditer(text)]


class PhraseMatcher:
    """All token-sequence matches of many literal phrases in one pass (dict lookups per token)."""

    def __init__(self, phrases: Iterable[tuple[str, Any]]) -> None:
        self._table: dict[tuple[str, ...], list[Any]] = {}
        self._prefixes: set[tuple[str, ...]] = set()
        for phrase, payload in phrases:
            key = tuple(t for _, _, t in tokenize(phrase))
            if not key:
                continue
            self._table.setdefault(key, []).append(payload)
            self._prefixes.update(key[:i] for i in range(1, len(key) + 1))

    def find_all(self, tokens: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, Any]]:
        """(start_char, end_char, payload) for every phrase occurrence (overlaps included)."""
        out = []
        words = [t for _, _, t in tokens]
        for i in range(len(words)):
            for j in range(i + 1, len(words) + 1):
                key = tuple(words[i:j])
                if key not in self._prefixes:
                    break
                for payload in self._table.get(key, ()):
                    out.append((tokens[i][0], tokens[j - 1][1], payload))
        return out


def select_longest(matches: Iterable[tuple[int, int, Any]]) -> list[tuple[int, int, Any]]:
    """Non-overlapping subset: longest first, then earliest, then input order; returned by start."""
    indexed = sorted(enumerate(matches), key=lambda im: (-(im[1][1] - im[1][0]), im[1][0], im[0]))
    chosen: list[tuple[int, int, Any]] = []
    for _, (s, e, p) in indexed:
        if all(e <= cs or s >= ce for cs, ce, _ in chosen):
            chosen.append((s, e, p))
    return sorted(chosen, key=lambda m: (m[0], m[1]))


# ------------------------------------------------------------------- converting shipped ConText data

_PYCONTEXT_CATEGORY = {
    "DEFINITE_NEGATED_EXISTENCE": "NEGATED_EXISTENCE",
    "PROBABLE_NEGATED_EXISTENCE": "NEGATED_EXISTENCE",
    "AMBIVALENT_EXISTENCE": "POSSIBLE_EXISTENCE",
    "PROBABLE_EXISTENCE": "POSSIBLE_EXISTENCE",
    "HISTORICAL": "HISTORICAL",
    "HYPOTHETICAL": "HYPOTHETICAL",
    "FUTURE": "HYPOTHETICAL",
    "PSEUDONEG": "PSEUDO",
    "CONJ": "TERMINATE",
}
# pyConTextNLP's HISTORICAL list is radiology-oriented ("stable", "increase"); only these mean "in the past".
_PYCONTEXT_HISTORICAL_KEEP = {
    "history of", "clinical history", "known", "documented", "remote", "previous", "prior", "previously described",
    "sequelae of", "on previous exam",
}
# pyConTextNLP triggers too ambiguous in clinical notes ("chest pain associated with dyspnea").
_PYCONTEXT_DROP = {
    "associated with", "exhibit", "signs of", "appear", "clear", "nothing", "indication", "mimicking", "simulating",
    "favor", "seen best", "construed as", "every indication", "convincing", "versus", "which", "involving",
    "no XYZ to suggest",  # its regex spans whole paragraphs
}
_NEGEX_TAGS = {
    "PREN": ("NEGATED_EXISTENCE", "FORWARD"), "POST": ("NEGATED_EXISTENCE", "BACKWARD"),
    "PREP": ("POSSIBLE_EXISTENCE", "FORWARD"), "POSP": ("POSSIBLE_EXISTENCE", "BACKWARD"),
    "PSEU": ("PSEUDO", "PSEUDO"), "CONJ": ("TERMINATE", "TERMINATE"),
}
# Written for kgfusion (Apache-2.0, like the project): gaps the upstream lists leave for clinical notes.
_RELATIVES = ["mother", "father", "sister", "brother", "parent", "parents", "sibling", "siblings", "grandmother",
              "grandfather", "aunt", "uncle", "son", "daughter", "cousin"]
KGFUSION_CONTEXT_RULES: tuple[dict[str, Any], ...] = (
    {"id": "ctx.kgf.status_post", "category": "HISTORICAL", "direction": "FORWARD",
     "tokens": [{"LOWER": {"IN": ["s/p", "status"]}}, {"LOWER": "post", "OP": "?"}]},
    {"id": "ctx.kgf.previously_diagnosed", "category": "HISTORICAL", "direction": "FORWARD",
     "literal": "previously diagnosed with"},
    {"id": "ctx.kgf.past_history_of", "category": "HISTORICAL", "direction": "FORWARD", "literal": "past history of"},
    {"id": "ctx.kgf.years_ago", "category": "HISTORICAL", "direction": "BACKWARD",
     "pattern": r"(?:\d+|a\s+few|several|many|two|three|four|five)\s+(?:years?|months?)\s+ago(?!\w)"},
    {"id": "ctx.kgf.in_the_past", "category": "HISTORICAL", "direction": "BACKWARD", "literal": "in the past"},
    {"id": "ctx.kgf.in_relative", "category": "FAMILY", "direction": "BACKWARD", "max_scope": 8,
     "tokens": [{"LOWER": "in"}, {"LOWER": {"IN": ["his", "her", "their", "a", "the"]}},
                {"LOWER": {"IN": ["maternal", "paternal"]}, "OP": "?"}, {"LOWER": {"IN": _RELATIVES}}]},
    {"id": "ctx.kgf.family_history_of", "category": "FAMILY", "direction": "FORWARD", "literal": "family history of"},
    {"id": "ctx.kgf.fhx", "category": "FAMILY", "direction": "FORWARD", "literal": "fhx"},
    {"id": "ctx.kgf.return_if", "category": "HYPOTHETICAL", "direction": "FORWARD", "literal": "return if"},
    {"id": "ctx.kgf.in_case_of", "category": "HYPOTHETICAL", "direction": "FORWARD", "literal": "in case of"},
    {"id": "ctx.kgf.no_further", "category": "PSEUDO", "direction": "PSEUDO", "literal": "no further"},
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:48] or "x"


def convert_medspacy_context(json_path: str | Path) -> list[dict[str, Any]]:
    """medspaCy ``context_rules.json`` -> rule dicts (kind context); token patterns are kept as ``tokens``."""
    doc = json.loads(Path(json_path).read_text(encoding="utf-8"))
    out = []
    for i, item in enumerate(doc["context_rules"]):
        category, direction = item["category"].upper(), item["direction"].upper()
        rule: dict[str, Any] = {"id": f"ctx.medspacy.{i:03d}.{_slug(item['literal'])}", "category": category,
                                "direction": direction}
        if item.get("pattern"):
            rule["tokens"] = item["pattern"]
            rule["note"] = f"medspaCy literal: {item['literal']}"
        else:
            rule["literal"] = item["literal"].strip()
        if item.get("max_scope"):
            rule["max_scope"] = int(item["max_scope"])
        if item.get("allowed_types"):
            rule["allowed_types"] = sorted(item["allowed_types"])
        rule["source"] = "medspacy"
        out.append(rule)
    return out


def convert_negex_triggers(txt_path: str | Path) -> list[dict[str, Any]]:
    """NegEx ``negex_triggers.txt`` ("phrase<TAB><TAB>[TAG]") -> rule dicts (kind context)."""
    out = []
    for line in Path(txt_path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        phrase, _, tag = line.partition("\t\t")
        tag = tag.strip().strip("[]")
        if tag not in _NEGEX_TAGS:
            raise RuleError(f"unknown NegEx tag {tag!r} in line {line!r}", fix="use PREN POST PREP POSP PSEU CONJ",
                            path=txt_path)
        category, direction = _NEGEX_TAGS[tag]
        out.append({"id": f"ctx.negex.{tag.lower()}.{_slug(phrase)}", "category": category, "direction": direction,
                    "literal": phrase.strip(), "source": "negex"})
    return out


def convert_pycontext_kb(tsv_path: str | Path) -> list[dict[str, Any]]:
    """pyConTextNLP ``lexical_kb_*.tsv`` -> rule dicts for the categories kgfusion uses.

    Kept: negation, possibility, hypothetical/future, pseudo-negation, terminators and the historical
    items in ``_PYCONTEXT_HISTORICAL_KEEP``; dropped: DEFINITE_EXISTENCE, INDICATION, ACUTE (no attribute).
    """
    out = []
    with Path(tsv_path).open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            lex, typ = (row.get("Lex") or "").strip(), (row.get("Type") or "").strip()
            category = _PYCONTEXT_CATEGORY.get(typ)
            if category is None or not lex or lex.startswith("#") or lex in _PYCONTEXT_DROP:
                continue
            if typ == "HISTORICAL" and lex not in _PYCONTEXT_HISTORICAL_KEEP:
                continue
            direction = {"forward": "FORWARD", "backward": "BACKWARD", "backwards": "BACKWARD",
                         "bidirectional": "BIDIRECTIONAL", "terminate": "TERMINATE"}[row["Direction"].strip().lower()]
            if category in ("TERMINATE", "PSEUDO"):
                direction = category
            rule: dict[str, Any] = {"id": f"ctx.pycontext.{_slug(typ)}.{_slug(lex)}", "category": category,
                                    "direction": direction}
            regex = (row.get("Regex") or "").strip()
            if regex:
                rule["pattern"] = f"(?:{regex})(?!\\w)"
                rule["note"] = f"pyConTextNLP lex: {lex}"
            elif re.search(r"[()|\\\[]", lex):
                rule["pattern"] = f"\\b(?:{lex})(?!\\w)"
            else:
                rule["literal"] = lex
            rule["source"] = "pyConTextNLP"
            rule["_probe"] = lex  # the phrase used to spot duplicates in build_context_rules
            out.append(rule)
    return out


def build_context_rules(src_dir: str | Path) -> list[dict[str, Any]]:
    """All medical ConText rules: medspaCy first; NegEx, pyConTextNLP and kgfusion additions only where
    no earlier rule already matches the whole phrase (an earlier rule wins such a tie in ConText anyway)."""
    src = Path(src_dir)
    rules = convert_medspacy_context(src / "medspacy_context_rules_en.json")
    extra = [
        *convert_negex_triggers(src / "negex_triggers.txt"),
        *convert_pycontext_kb(src / "pyConTextNLP_lexical_kb_05042016.tsv"),
        *({**r, "source": "kgfusion"} for r in KGFUSION_CONTEXT_RULES),
    ]
    known: set[tuple[str, ...]] = set()
    regexes: list[re.Pattern[str]] = []

    def add(raw: dict[str, Any]) -> None:
        try:
            rule = rule_from_dict(raw, "context")
        except RuleError as exc:
            raise exc.located(src, None, raw.get("id")) from None
        known.update(_token_key(p) for p in rule.phrases)
        if rule.compiled is not None:
            regexes.append(rule.compiled)

    for rule in rules:
        add(rule)
    ids = {r["id"] for r in rules}
    for rule in extra:
        probe = rule.pop("_probe", None) or rule.get("literal")
        if probe is not None and (_token_key(probe) in known or any(rx.fullmatch(probe) for rx in regexes)):
            continue
        base_id, n = rule["id"], 2
        while rule["id"] in ids:
            rule = {**rule, "id": f"{base_id}_{n}"}
            n += 1
        ids.add(rule["id"])
        add(rule)
        rules.append(rule)
    return rules


def _token_key(phrase: str) -> tuple[str, ...]:
    return tuple(t for _, _, t in tokenize(phrase))


CONTEXT_YAML_HEADER = """\
# ConText modifier rules for clinical notes (kind: context), GENERATED - do not edit by hand.
# Regenerate: python -m kgfusion.knowledge.rules convert-context data/datasets/context_rules data/rules/medical/context.yaml
# Sources (see data/datasets/context_rules/SOURCE.txt):
#   medspaCy resources/en/context_rules.json, MIT License, Copyright (c) 2020 medspacy
#     (token patterns translated to regexes; ids ctx.medspacy.*)
#   NegEx negex_triggers.txt, Apache-2.0, Copyright 2008 Imre Solti (ids ctx.negex.*)
#   (NegEx, pyConTextNLP and kgfusion rules are kept only when no earlier rule already matches the phrase)
#   pyConTextNLP KB/lexical_kb_05042016.tsv, Apache-2.0 as declared in its setup.py (ids ctx.pycontext.*;
#     categories mapped: DEFINITE/PROBABLE_NEGATED -> NEGATED_EXISTENCE, AMBIVALENT/PROBABLE_EXISTENCE ->
#     POSSIBLE_EXISTENCE, FUTURE -> HYPOTHETICAL, PSEUDONEG -> PSEUDO, CONJ -> TERMINATE; a curated subset of
#     HISTORICAL; DEFINITE_EXISTENCE, INDICATION, ACUTE dropped)
#   kgfusion additions (ids ctx.kgf.*), written for this project, Apache-2.0.
"""


def write_rules_yaml(path: str | Path, kind: str, rules: Sequence[Mapping[str, Any]], header: str = "") -> Path:
    """Write rule dicts as a rule file (atomic), after checking every rule loads."""
    for i, raw in enumerate(rules):
        try:
            rule_from_dict(raw, kind)
        except RuleError as exc:
            raise exc.located(path, i, raw.get("id") if isinstance(raw, Mapping) else None) from None
    body = yaml.safe_dump({"version": 1, "kind": kind, "rules": [dict(r) for r in rules]},
                          sort_keys=False, allow_unicode=True, width=120, default_flow_style=None)
    return atomic_write_text(path, header + body)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kgfusion.knowledge.rules convert-context SRC_DIR OUT.yaml`` | ``check PATH...``."""
    parser = argparse.ArgumentParser(prog="python -m kgfusion.knowledge.rules")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert-context", help="convert the shipped ConText lists to a kgfusion rule file")
    conv.add_argument("src_dir")
    conv.add_argument("out")
    check = sub.add_parser("check", help="load rule files/directories and print counts per kind")
    check.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "convert-context":
            rules = build_context_rules(args.src_dir)
            write_rules_yaml(args.out, "context", rules, CONTEXT_YAML_HEADER)
            print(f"wrote {len(rules)} context rules to {args.out}")
        else:
            print(json.dumps(load_rules(args.paths).counts(), sort_keys=True))
    except RuleError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
