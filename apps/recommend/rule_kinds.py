"""The recommend app's own rule kind, ``business`` (BusinessRule and its where-Conditions), registered
with the rule registry at import.

Import this module before loading recommendation rule files (data/rules/recommend/business.yaml); the
knowledge layer does not know the kind otherwise. ``business_rules.apply_business_rules`` applies them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from kgfusion.knowledge.rules import Rule, RuleError, check_range, fail, register_kind

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


@register_kind("business")
@dataclass(frozen=True, kw_only=True)
class BusinessRule(Rule):
    """A recommendation business rule.

    exclude: drop items matching ``where`` (required). boost: multiply the score of matching items by
    ``amount`` in (0, 10]. cap: keep at most ``max_per_group`` items per value of ``group_by``.
    freshness: multiply by ``1 + amount * 0.5 ** (age / half_life)`` with age = now - item[time_field]
    (amount in (0, 1], half_life > 0 in the field's unit). ``where`` maps field -> value (equals) or
    ``{op: value}`` with op in eq, ne, in, not_in, lt, le, gt, ge, contains; all must hold.
    """

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
                fail(self.id, f"action '{self.action}' needs '{name}'", f"add {name}: <value>")
            if name not in needs and value is not None:
                fail(self.id, f"'{name}' is not used by action '{self.action}'", f"remove {name}")
        if self.action == "exclude" and not self.where:
            fail(self.id, "an exclude rule without 'where' would drop every item",
                 "add where: {item_id: {in: [...]}} (an empty list excludes nothing)")
        if self.action == "boost":
            check_range(self.id, "amount", self.amount, 0.0, 10.0, low_open=True)
        if self.action == "freshness":
            check_range(self.id, "amount", self.amount, 0.0, 1.0, low_open=True)
            if not self.half_life or self.half_life <= 0:
                fail(self.id, f"half_life {self.half_life} must be > 0", "use e.g. half_life: 10")
        if self.action == "cap" and (self.max_per_group or 0) < 1:
            fail(self.id, f"max_per_group {self.max_per_group} must be >= 1", "use e.g. max_per_group: 3")

    def matches(self, item: Mapping[str, Any]) -> bool:
        """True when every where-condition holds (an empty where matches every item)."""
        return all(c.matches(item) for c in self.where)

    @staticmethod
    def parse_where(raw: Any, rule_id: str | None = None) -> tuple[Condition, ...]:
        """``{field: value | {op: value}}`` -> conditions (sorted by field for a stable order)."""
        if raw is None:
            return ()
        if not isinstance(raw, Mapping):
            fail(rule_id, f"'where' must be a mapping, got {type(raw).__name__}",
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

    @classmethod
    def parse_field(cls, name: str, raw: Any, hint: Any, rule_id: str | None) -> Any:
        if name == "where":
            return cls.parse_where(raw, rule_id)
        return super().parse_field(name, raw, hint, rule_id)

    def dump_field(self, name: str, value: Any) -> Any:
        if name == "where":  # back to {field: {op: value}}
            return {c.field: {c.op: list(c.value) if isinstance(c.value, tuple) else c.value} for c in value}
        return super().dump_field(name, value)
