"""Helpers shared by the Click commands: output as JSON or text, data locations."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kgfusion.core.errors import KgfusionError

if TYPE_CHECKING:
    from kgfusion.core.lifecycle.registry import Resolved


def repo_data_dir() -> Path:
    """The data/ folder: $KGFUSION_DATA if set, else the one beside the installed packages."""
    env = os.environ.get("KGFUSION_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data"


def registry_root() -> Path:
    """The model version registry (core/lifecycle/registry.py): $KGFUSION_REGISTRY if set, else data/registry."""
    env = os.environ.get("KGFUSION_REGISTRY")
    return Path(env) if env else repo_data_dir() / "registry"


def promoted_bundle(bundle: str | Path) -> Resolved:
    """The bundle an app loads for ``bundle``: the registry's promoted version of its directory name, if
    any (a core.lifecycle.registry.Resolved: ``.path`` to load, ``.label`` = name or name@vN to show)."""
    from kgfusion.core.lifecycle.registry import resolve_promoted

    return resolve_promoted(bundle, registry_root(), repo_data_dir() / "models")


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


def pretrain_corpus_command(domain: str, build: Any) -> click.Command:
    """``kgfusion <domain> pretrain-corpus --out FILE``: the domain's unlabelled text for ``model pretrain``.

    ``build(data_dir)`` returns a core.pretrain.CorpusBuild (it imports the domain's data readers lazily).
    """
    @click.command("pretrain-corpus")
    @click.option("--out", "out_file", type=click.Path(dir_okay=False), required=True,
                  help="Corpus file to write (one document per line; .gz compresses); counts go to OUT.stats.json.")
    @click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
                  help="Folder holding datasets/ (default: the repository's data/).")
    @json_option
    def pretrain_corpus(out_file: str, data_dir: str | None, as_json: bool) -> None:
        from kgfusion.core.pretrain import stats_path, write_corpus

        built = build(Path(data_dir) if data_dir else repo_data_dir())
        stats = write_corpus(out_file, built.lines, built.stats)
        excluded = "; ".join(f"{k}: {v}" for k, v in stats["excluded"].items())
        sources = "; ".join(f"{k}: {v.get('kept')} kept" for k, v in stats["sources"].items())
        emit(stats, as_json, f"{domain} corpus written: {out_file} ({stats['lines']} lines, {stats['words']} words)\n"
             f"sources: {sources}\nexcluded: {excluded}\ncounts: {stats_path(out_file)}")

    pretrain_corpus.help = (f"Write unlabelled {domain} text from the shipped data sets for `kgfusion model pretrain` "
                            "(never their dev/test texts).")
    return pretrain_corpus


def one_line_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    """A command's domain errors (KgfusionError) as one line with exit code 1, never a traceback, also when
    its group runs on its own (tests)."""
    @wraps(f)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except KgfusionError as exc:
            raise click.ClickException(str(exc)) from exc
    return run
