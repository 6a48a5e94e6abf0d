"""Recipes as data: one JSON file per shipped bundle (data/recipes/<bundle>.json) that rebuilds it.

A recipe names its trainer (a ``kgfusion.apps.<app>...:<function>`` — the app that knows the data) and
holds the TrainConfig fields plus the trainer's data, knowledge, augmentation and ensemble settings::

    {"name": "medical-ner-ncbi", "trainer": "kgfusion.apps.medical.train:train_recipe",
     "description": "...", "train": {"task": "token", "method": "full", "epochs": 20, ...},
     "data": {...}, "knowledge": {...}, "augment": {...}, "ensemble": {...}}

``kgfusion model train --recipe FILE`` loads it, checks it and calls the trainer, which writes the bundle
with ``recipe.json`` inside so the bundle always says how it was made. Only trainers inside the
``kgfusion.apps`` namespace are accepted: a recipe file never chooses arbitrary code to run.
"""
from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgfusion.core.config import ConfigBase
from kgfusion.core.errors import ConfigError
from kgfusion.core.finetune import TrainConfig

TRAINER_PREFIX = "kgfusion.apps."
RECIPE_FILE = "recipe.json"


@dataclass
class Recipe(ConfigBase):
    name: str
    trainer: str
    train: dict[str, Any]
    description: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    knowledge: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] = field(default_factory=dict)
    ensemble: dict[str, Any] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)  # e.g. {"pretrained": DIR, "command": "kgfusion model pretrain ..."}

    def validate(self) -> None:
        if not self.name or "/" in self.name:
            raise ConfigError(f"recipe name {self.name!r} must be a bundle name (no '/')")
        module, _, func = self.trainer.partition(":")
        if not module.startswith(TRAINER_PREFIX) or not func:
            raise ConfigError(f"recipe trainer {self.trainer!r} must be 'kgfusion.apps.<module>:<function>'")
        self.train_config()  # fail early on unknown or out-of-range training fields

    def train_config(self, **overrides: Any) -> TrainConfig:
        return TrainConfig.from_dict({**self.train, **overrides})

    def trainer_function(self) -> Callable[..., dict[str, Any]]:
        module, _, func = self.trainer.partition(":")
        try:
            fn = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"recipe trainer {self.trainer!r} not found ({exc})") from exc
        return fn


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe file; errors name the file and the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: recipe file not found (recipes live in data/recipes/)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (invalid byte at offset {exc.start}); convert it") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a JSON object with name, trainer and train")
    missing = [k for k in ("name", "trainer", "train") if k not in data]
    if missing:
        raise ConfigError(f"{path}: missing key(s) {missing}")
    try:
        return Recipe.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def run_recipe(path: str | Path, out_dir: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """Train the bundle a recipe describes (default out_dir: the trainer's, usually data/models/<name>)."""
    recipe = load_recipe(path)
    return recipe.trainer_function()(recipe, out_dir=out_dir, recipe_path=str(path), **options)
