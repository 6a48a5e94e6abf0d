"""Rule <-> dict: one strict constructor from file data (``rule_from_dict``) and its inverse."""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from typing import Any, get_type_hints

from kgfusion.knowledge.rules.base import Rule
from kgfusion.knowledge.rules.errors import RuleError
from kgfusion.knowledge.rules.registry import kind_class

_META_KEYS = {"kind", "replace"}


def rule_from_dict(raw: Any, kind: str | None = None) -> Rule:
    """Build one rule from a mapping (``kind`` from the mapping or the argument). Raises RuleError."""
    if not isinstance(raw, Mapping):
        raise RuleError(f"a rule must be a mapping, got {type(raw).__name__} {raw!r}",
                        fix="write each rule as '- id: ...' followed by its fields")
    rule_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    kind = raw.get("kind", kind)
    cls = kind_class(kind, rule_id=rule_id)
    hints, init_fields = _class_schema(cls)
    unknown = sorted(set(map(str, raw)) - set(init_fields) - _META_KEYS)
    if unknown:
        raise RuleError(f"unknown key(s) {unknown} for kind '{kind}'",
                        fix=f"remove them or use the allowed keys: {', '.join(init_fields)}", rule_id=rule_id)
    missing = [n for n, f in init_fields.items() if n not in raw and _is_required(f)]
    if missing:
        raise RuleError(f"missing field(s) {missing} for kind '{kind}'", fix=f"add {', '.join(missing)}",
                        rule_id=rule_id)
    kwargs = {name: cls.parse_field(name, raw[name], hints[name], rule_id) for name in init_fields if name in raw}
    try:
        return cls(**kwargs)
    except RuleError:
        raise
    except (TypeError, ValueError) as exc:  # defensive: should not happen after the checks above
        raise RuleError(f"invalid rule: {exc}", fix="check the field values", rule_id=rule_id) from exc


@functools.cache
def _class_schema(cls: type[Rule]) -> tuple[dict[str, Any], dict[str, Field[Any]]]:
    """(type hints, init fields by name) of a rule class; cached because hints resolve slowly."""
    return get_type_hints(cls), {f.name: f for f in fields(cls) if f.init}


def _is_required(f: Field[Any]) -> bool:
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
        out[f.name] = rule.dump_field(f.name, value)
    return out
