"""Typed configs: dataclasses with checks that name the bad value and the allowed set."""
from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from kgfusion.core.errors import ConfigError


class ConfigBase:
    """Mixin: ``to_dict``/``from_dict`` (unknown keys rejected), ``Literal`` fields checked."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            hint = hints[f.name]
            if get_origin(hint) is Literal and getattr(self, f.name) not in get_args(hint):
                raise ConfigError(
                    f"{type(self).__name__}.{f.name}={getattr(self, f.name)!r}; allowed: {list(get_args(hint))}"
                )
        self.validate()

    def validate(self) -> None:
        """Range checks for subclasses."""

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown key(s) {unknown}; allowed: {sorted(names)}")
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for k, v in data.items():
            if isinstance(v, list) and get_origin(hints[k]) is tuple:
                v = tuple(v)
            _check_type(cls.__name__, k, v, hints[k])
            kwargs[k] = v
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str | Path):
        """A config from a JSON object file; ConfigError naming the file for anything else."""
        from kgfusion.core.textfile import UTF8_HINT, read_text

        path = Path(path)
        text = read_text(path, "utf-8", hint=UTF8_HINT)
        if not text.strip():
            raise ConfigError(f"{path}: the config file is empty; write a JSON object such as {{\"window\": 20}}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}; a config is a JSON object "
                              "of option names and values") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config is a JSON object of option names and values, not a "
                              f"{type(data).__name__}")
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc


_SCALARS: dict[Any, tuple[type, ...]] = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


def _check_type(owner: str, name: str, value: Any, hint: Any) -> None:
    """ConfigError when a scalar field gets a value of another type (e.g. "window": "many")."""
    allowed = _SCALARS.get(hint)
    if allowed is None or value is None:
        return
    wrong = not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool))
    if wrong:
        raise ConfigError(f"{owner}.{name}={value!r} is a {type(value).__name__}; expected {hint.__name__}")


def check_range(owner: object, name: str, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False) -> None:
    """Raise ConfigError unless lo <= value <= hi (``lo_open``: lo < value)."""
    value = getattr(owner, name)
    too_low = lo is not None and (value <= lo if lo_open else value < lo)
    if too_low or (hi is not None and value > hi):
        low = "(" if lo_open else "["
        raise ConfigError(f"{type(owner).__name__}.{name}={value!r}; allowed range {low}{lo}, {hi}]")
