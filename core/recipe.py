"""Recipes as data: one JSON file per shipped bundle (data/recipes/<bundle>.json) that rebuilds it.

A recipe names its trainer (a ``kgfusion.apps.<app>...:<function>`` — the app that knows the data) and
holds the TrainConfig fields plus the trainer's data, knowledge, augmentation and ensemble settings::

    {"name": "medical-ner-ncbi", "trainer": "kgfusion.apps.medical.train:train_recipe",
     "description": "...", "train": {"task": "token", "method": "full", "epochs": 20, ...},
     "data": {...}, "knowledge": {...}, "augment": {...}, "ensemble": {...}, "student": {...}}

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
    # a distilled fast variant: {"teacher": DIR, "teacher_recipe": FILE, "layers": 3, "temperature": 2.0, ...}
    student: dict[str, Any] = field(default_factory=dict)

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


def recipe_card_section(recipe: Recipe, ablation: dict[str, dict[str, Any]] | None = None,
                        keys: tuple[str, ...] = (), command: str = "") -> str:
    """Markdown for a model card: the recipe as data, how to rebuild, and the ablation behind it."""
    lines = ["## Recipe", "", recipe.description or recipe.name, "", "```json",
             json.dumps(recipe.to_dict(), indent=2, sort_keys=True), "```", "",
             f"Rebuild: `{command or f'kgfusion model train --recipe data/recipes/{recipe.name}.json'}`"]
    if recipe.base.get("pretrained"):
        lines += ["", f"The recipe starts from a continued-pretraining base: `{recipe.base.get('command', '')}`"]
    if ablation:
        shown = [k for k in keys if any(k in row for row in ablation.values())]
        lines += ["", "## Ablation (benchmarks/results/training.json, same data and evaluation)", "",
                  "| configuration | " + " | ".join(shown) + " | train s | shipped MB |",
                  "|---" * (len(shown) + 3) + "|"]
        for name, row in ablation.items():
            cells = [f"{row[k]:.4f}" if isinstance(row.get(k), float) else "" for k in shown]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {row.get('train_seconds') or ''} | "
                         f"{row.get('shipped_mb', '')} |")
    return "\n".join(lines) + "\n"


def add_recipe_card(bundle_dir: str | Path, recipe: Recipe, task: str, keys: tuple[str, ...],
                    results_file: str | Path) -> None:
    """Append the recipe and the task's ablation rows (``results_file``: the ablation runner's
    training.json; absent = no table) to the model card."""
    from kgfusion.core.bundle import update_bundle_metadata

    bundle_dir = Path(bundle_dir)
    results = Path(results_file)
    ablation = {}
    if results.is_file():
        ablation = json.loads(results.read_text(encoding="utf-8")).get("tasks", {}).get(task, {})
    card_file = bundle_dir / "MODEL_CARD.md"
    card = card_file.read_text(encoding="utf-8") if card_file.is_file() else f"# {bundle_dir.name}\n"
    card = card.split("\n## Recipe\n")[0].rstrip() + "\n\n" + recipe_card_section(recipe, ablation, keys)
    update_bundle_metadata(bundle_dir, model_card=card)
