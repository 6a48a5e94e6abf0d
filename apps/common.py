"""Helpers shared by the Click commands: output as JSON or text, data locations."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from kgfusion.core.errors import KgfusionError


def repo_data_dir() -> Path:
    """The data/ folder: $KGFUSION_DATA if set, else the one beside the installed packages."""
    env = os.environ.get("KGFUSION_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data"


def results_dir() -> Path:
    """benchmarks/results: $KGFUSION_RESULTS if set, else the repository's folder."""
    env = os.environ.get("KGFUSION_RESULTS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    """Print machine-readable JSON with --json, else the human text."""
    if as_json:
        click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))
    else:
        click.echo(text if text is not None else json.dumps(obj, indent=2, default=str))


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


class DomainGroup(click.Group):
    """A Click group whose domain errors print as one line with exit code 1, also when run on its own."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KgfusionError as exc:
            raise click.ClickException(str(exc)) from exc
