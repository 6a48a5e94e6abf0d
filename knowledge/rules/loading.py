"""RuleBase (an immutable set of rules with unique ids) and the one strict loader of rule files.

A file's kinds must be registered before it loads: the generic kinds always are; an application's kinds
are registered by importing its rule_kinds module (e.g. the finance app's ambiguous_ticker).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kgfusion.core.textfile import first_bad_byte, sniff_binary
from kgfusion.knowledge.rules.base import Rule
from kgfusion.knowledge.rules.codec import rule_from_dict
from kgfusion.knowledge.rules.errors import RuleError
from kgfusion.knowledge.rules.registry import is_registered, kinds_hint

R = TypeVar("R", bound=Rule)


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


_TOP_KEYS = {"version", "kind", "description", "rules", "disable"}
RULE_SUFFIXES = (".yaml", ".yml", ".json")


def _read_document(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RuleError(f"cannot read the file ({exc.strerror})", fix="check the path and permissions",
                        path=path) from None
    # binary data or a byte that is not UTF-8: named with its offset, the bytes never echoed (core.textfile)
    what = sniff_binary(data[:8192])
    if what:
        raise RuleError(f"not a text file ({what})", fix="pass a UTF-8 YAML or JSON rule file", path=path)
    bad = first_bad_byte(data)
    if bad is not None:
        raise RuleError(f"not UTF-8 text (invalid byte at offset {bad})", fix="save the file as UTF-8", path=path)
    text = data.decode("utf-8-sig")
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
        if kind is not None and not is_registered(kind):
            raise RuleError(f"unknown kind {kind!r}", fix=f"use one of {kinds_hint()}", path=path)
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
    path = Path(__file__).resolve().parents[2] / "data" / "rules" / domain  # <repo>/knowledge/rules/loading.py
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
