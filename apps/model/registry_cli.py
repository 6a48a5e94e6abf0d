"""`kgfusion model versions | promote | rollback | register`: the model version registry (core/lifecycle/registry.py).

The registry lives at $KGFUSION_REGISTRY, else data/registry; a name's shipped bundle data/models/<name>
is its v0. The apps load a name's promoted version in place of the bundle they are given.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kgfusion.apps.common import emit, json_option, one_line_errors, registry_root, repo_data_dir

if TYPE_CHECKING:  # keep `--help` free of the registry import
    from kgfusion.core.lifecycle.registry import Registry

BY = click.option("--by", "by", required=True, help="Who is acting (recorded with the event).")
REASON = click.option("--reason", default="", help="Why (recorded with the event).")


def _registry() -> Registry:
    from kgfusion.core.lifecycle.registry import Registry

    return Registry(registry_root(), repo_data_dir() / "models")


def _table(rows: list[dict[str, Any]]) -> str:
    cols = ("", "version", "parent", "status", "created", "by", "metrics")
    cells = [["*" if r["promoted"] else "", f"v{r['version']}", r["parent"] or "-", r["status"],
              r["created"].replace("T", " ").removesuffix("Z")[:16] or "-", r["by"] or "-", r["metrics"] or "-"]
             for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _in_effect(reg: Registry, name: str) -> str:
    v = reg.promoted_version(name)
    if v is not None:
        return f"v{v} ({reg.root / name / f'v{v}'})"
    shipped = reg.shipped_path(name)
    return f"v0, the shipped bundle ({shipped})" if shipped else "the bundle they are given (nothing promoted)"


@click.command("versions")
@click.argument("name")
@json_option
@one_line_errors
def versions(name: str, as_json: bool) -> None:
    """Versions of the bundle NAME: parent, status, created, by whom, headline metrics; * = promoted."""
    reg = _registry()
    rows = reg.rows(name)
    full = {v.version: v.to_dict() for v in reg.versions(name)}
    obj = {"name": name, "registry": str(reg.root), "promoted": reg.promoted_version(name),
           "versions": [r | {"headline": r["metrics"]} | full.get(r["version"], {}) for r in rows]}
    emit(obj, as_json, f"{name} in {reg.root}\n{_table(rows)}\nthe apps load: {_in_effect(reg, name)}")


@click.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@BY
@REASON
@json_option
@one_line_errors
def promote(name: str, version: int, by: str, reason: str, as_json: bool) -> None:
    """Make VERSION of NAME the one the apps load."""
    reg = _registry()
    record = reg.promote(name, version, by, reason)
    emit(record.to_dict(), as_json, f"{name} v{version} promoted by {by.strip()}; the apps now load "
                                    f"{_in_effect(reg, name)}")


@click.command("rollback")
@click.argument("name")
@BY
@click.option("--to", "to", type=int, default=None,
              help="Version to go back to (default: the previously promoted one; 0 = the shipped bundle).")
@REASON
@json_option
@one_line_errors
def rollback(name: str, by: str, to: int | None, reason: str, as_json: bool) -> None:
    """Un-promote NAME's current version and go back to the previous one (or --to VERSION)."""
    reg = _registry()
    before = reg.promoted_version(name)
    now = reg.rollback(name, by, to=to, reason=reason)
    emit({"name": name, "rolled_back": before, "promoted": now or None}, as_json,
         f"{name} v{before} rolled back by {by.strip()}; the apps now load {_in_effect(reg, name)}")


@click.command("register")
@click.argument("name")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@BY
@click.option("--parent", type=int, default=None,
              help="Version it was trained from (0 = the shipped bundle; default: the promoted one, else shipped).")
@click.option("--data", "data_files", multiple=True, type=click.Path(dir_okay=False),
              help="Training data file (its sha256 is recorded); repeat for several.")
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False), default=None,
              help="Recipe JSON to record (default: the bundle's recipe.json).")
@click.option("--promote", "and_promote", is_flag=True, help="Also promote the new version.")
@REASON
@json_option
@one_line_errors
def register(name: str, bundle_dir: str, by: str, parent: int | None, data_files: tuple[str, ...],
             recipe_path: str | None, and_promote: bool, reason: str, as_json: bool) -> None:
    """Copy the bundle BUNDLE_DIR into the registry as the next version of NAME (checksums verified)."""
    from kgfusion.core.lifecycle.registry import RegistryError

    recipe = None
    if recipe_path:
        try:
            recipe = json.loads(Path(recipe_path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RegistryError(f"--recipe {recipe_path}: not a readable JSON file ({exc})") from exc
        if not isinstance(recipe, dict):
            raise RegistryError(f"--recipe {recipe_path}: the top level must be a JSON object")
    reg = _registry()
    record = reg.version(name, reg.register(name, bundle_dir, parent=parent, data_files=data_files, recipe=recipe,
                                            created_by=by))
    text = f"{name} v{record.version} registered from {bundle_dir} ({record.headline() or 'no metrics'})"
    if and_promote:
        record = reg.promote(name, record.version, by, reason)
        text += f"; promoted: the apps now load {_in_effect(reg, name)}"
    else:
        text += f"; promote it with `kgfusion model promote {name} {record.version} --by NAME`"
    emit(record.to_dict(), as_json, text)


COMMANDS = (versions, promote, rollback, register)
