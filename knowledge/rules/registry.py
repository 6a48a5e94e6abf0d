"""The registry of rule kinds: the ``kind:`` name in a rule file -> the Rule class that builds it.

The generic kinds (lexicon, pattern, context, section, type_constraint) register themselves in
``kinds.py``; an application registers its own kinds from its own package when that module is imported
(like rdflib's parser and store plugins), so this layer never imports an application::

    @register_kind("ambiguous_ticker")
    @dataclass(frozen=True, kw_only=True)
    class AmbiguousTicker(Rule): ...
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import is_dataclass
from types import MappingProxyType
from typing import TypeVar, overload

from kgfusion.knowledge.rules.base import Rule
from kgfusion.knowledge.rules.errors import RuleError

R = TypeVar("R", bound=type[Rule])

_KINDS: dict[str, type[Rule]] = {}
# Read-only live view (kind name -> class), kept for callers of the former module-level dict.
RULE_CLASSES: Mapping[str, type[Rule]] = MappingProxyType(_KINDS)
_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")


@overload
def register_kind(name: str, cls: None = None) -> Callable[[R], R]:
    ...


@overload
def register_kind(name: str, cls: R) -> R:
    ...


def register_kind(name: str, cls: R | None = None) -> R | Callable[[R], R]:
    """Register ``cls`` as the rule kind ``name``; without ``cls``, a class decorator doing the same.

    The class's ``KIND`` is set to ``name`` when it has none and must equal it otherwise (RuleBase counts
    and ``rule_to_dict`` use it). Registering the same class again is a no-op; another class under a
    taken name raises RuleError.
    """
    if cls is None:
        return lambda c: register_kind(name, c)
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise RuleError(f"invalid rule kind name {name!r}", fix="use a snake_case name, e.g. ambiguous_ticker")
    if not (isinstance(cls, type) and issubclass(cls, Rule) and is_dataclass(cls)):
        raise RuleError(f"{cls!r} cannot be registered as kind '{name}'",
                        fix="register a frozen, keyword-only dataclass derived from Rule")
    if not cls.KIND:
        cls.KIND = name
    elif name != cls.KIND:
        raise RuleError(f"class {cls.__qualname__} has KIND '{cls.KIND}' but is registered as '{name}'",
                        fix=f"register it as '{cls.KIND}' or set KIND = '{name}'")
    old = _KINDS.get(name)
    # The same class, or a re-import of its module (importlib.reload), replaces silently.
    if old is not None and _qualified(old) != _qualified(cls):
        raise RuleError(f"rule kind '{name}' is already registered to {_qualified(old)}",
                        fix=f"give {_qualified(cls)} another kind name")
    _KINDS[name] = cls
    return cls


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def registered_kinds() -> tuple[str, ...]:
    """The registered kind names, in registration order (generic kinds first)."""
    return tuple(_KINDS)


def is_registered(name: object) -> bool:
    """True when ``name`` is a registered kind (False for non-strings, without raising)."""
    return isinstance(name, str) and name in _KINDS


def kinds_hint() -> str:
    """The registered kinds as a "fix" text for unknown-kind errors."""
    return (f"{', '.join(_KINDS)} (the registered kinds; an application's own kinds are registered when "
            "its rule_kinds module is imported)")


def kind_class(name: object, *, rule_id: str | None = None) -> type[Rule]:
    """The Rule class registered as ``name``; RuleError naming the kind and the registered ones if none."""
    if is_registered(name):
        return _KINDS[name]  # type: ignore[index]
    raise RuleError(f"unknown or missing kind {name!r}", fix=f"set kind: to one of {kinds_hint()}", rule_id=rule_id)
