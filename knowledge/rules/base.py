"""The Rule base class and the helpers every rule kind uses: checks, regex compiling, type coercion.

A rule kind is a frozen, keyword-only dataclass derived from ``Rule`` whose type hints describe its
fields; ``rule_from_dict`` checks file values against those hints (``coerce``). Kinds with structured
fields (ContextRule tokens, an app's where-conditions) override ``parse_field`` / ``dump_field``.
"""
from __future__ import annotations

import math
import re
import types
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from kgfusion.knowledge.rules.errors import RuleError, fail

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")


@dataclass(frozen=True, kw_only=True)
class Rule:
    """Base of every rule: a unique ``id`` (letters, digits, ``_ . : -``) and a free ``note``."""

    KIND: ClassVar[str] = ""
    id: str
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID_RE.match(self.id):
            fail(str(self.id), f"invalid id {self.id!r}",
                 "use letters, digits and _ . : - only, starting with a letter or digit (e.g. fin.lex.layoffs)")

    @classmethod
    def parse_field(cls, name: str, raw: Any, hint: Any, rule_id: str | None) -> Any:
        """A field value as read from a file -> the value the constructor takes (default: by type hint)."""
        return coerce(raw, hint, name, rule_id)

    def dump_field(self, name: str, value: Any) -> Any:
        """The inverse of ``parse_field``: a field value -> plain YAML/JSON data (tuples become lists)."""
        return list(value) if isinstance(value, tuple) else value


def check_range(rule_id: str, name: str, value: float | None, lo: float, hi: float, *, low_open: bool = False) -> None:
    """RuleError unless ``value`` is finite and in [lo, hi] (``(lo, hi]`` with ``low_open``)."""
    if value is None or not math.isfinite(value) or value > hi or (value <= lo if low_open else value < lo):
        fail(rule_id, f"{name} {value} is out of range", f"use a {name} in {'(' if low_open else '['}{lo}, {hi}]")


def compile_regex(rule_id: str, pattern: str, what: str) -> re.Pattern[str]:
    """``pattern`` compiled case-insensitively; a RuleError naming the field ``what`` if it is invalid."""
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        fail(rule_id, f"bad regular expression in '{what}': {exc} in {pattern!r}",
             "write a valid Python regex (escape literal . ( ) [ ] ? * + with a backslash)")


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(str, get_args(hint)))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(hint) if a is not type(None))
    if origin is tuple:
        return f"a list of {_type_name(get_args(hint)[0])}"
    return {str: "text", float: "a number", int: "an integer", bool: "true or false"}.get(hint, str(hint))


def coerce(value: Any, hint: Any, name: str, rule_id: str | None) -> Any:
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
        return coerce(value, args[0], name, rule_id)
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
        return tuple(coerce(v, get_args(hint)[0], name, rule_id) for v in value)
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
