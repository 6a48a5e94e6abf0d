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
    from kgfusion.knowledge.graph import KgStore, KnowledgeGraph


def repo_data_dir() -> Path:
    """The data/ folder: $KGFUSION_DATA if set, else the one beside the installed packages."""
    env = os.environ.get("KGFUSION_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data"


# Model variants: "accurate" is the bundle itself, "fast" its distilled fewer-layer sibling <name>-fast.
MODEL_VARIANTS = ("accurate", "fast")
FAST_SUFFIX = "-fast"
_VARIANT_KEY = "kgfusion.model_variant"


def _remember_variant(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    ctx.meta[_VARIANT_KEY] = value  # ctx.meta is shared by the whole invocation: no signature changes needed
    return value


model_variant_option = click.option(
    "--model-variant", type=click.Choice(MODEL_VARIANTS), default="accurate", show_default=True, expose_value=False,
    callback=_remember_variant,
    help="fast: the distilled sibling bundle <name>-fast (several times the speed, see its metrics.json).")


def chosen_variant() -> str:
    """The --model-variant of the running command ("accurate" outside a command or when not given)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_VARIANT_KEY, "accurate") if ctx is not None else "accurate"


def bundle_variant(bundle: str | Path, variant: str | None = None) -> str | Path:
    """``bundle`` (a directory or a name under data/models) for the model variant: "fast" names the sibling
    ``<name>-fast``; a KgfusionError saying how to build it when that bundle does not exist."""
    variant = variant or chosen_variant()
    if variant not in MODEL_VARIANTS:
        raise KgfusionError(f"model variant {variant!r} unknown; choose one of {', '.join(MODEL_VARIANTS)}")
    path = Path(bundle)
    if variant == "accurate" or path.name.endswith(FAST_SUFFIX):
        return bundle
    bare = isinstance(bundle, str) and len(path.parts) == 1 and not path.is_dir()  # a name under data/models
    fast = (repo_data_dir() / "models" if bare else path.parent) / (path.name + FAST_SUFFIX)
    if not fast.is_dir():
        raise KgfusionError(f"no fast variant of {path.name}: {fast} not found; build it with `kgfusion model train "
                            f"--recipe data/recipes/{fast.name}.json` or use --model-variant accurate")
    return fast.name if bare else fast


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


# Knowledge-graph store: memory (rdflib, parse the Turtle each run) or oxigraph:DIR (on disk, built once).
_KG_STORE_KEY = "kgfusion.kg_store"


class KgStoreParam(click.ParamType):
    """``memory`` or ``oxigraph:DIR`` -> a knowledge.graph.KgStore."""

    name = "memory|oxigraph:DIR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from kgfusion.knowledge.graph import KgStore

        try:
            return KgStore.parse(value)
        except KgfusionError as exc:
            self.fail(str(exc), param, ctx)


def _remember_kg_store(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
    ctx.meta[_KG_STORE_KEY] = value  # shared by the whole invocation, like --model-variant
    return value


kg_store_option = click.option(
    "--kg-store", type=KgStoreParam(), default="memory", show_default=True, envvar="KGFUSION_KG_STORE",
    metavar="memory|oxigraph:DIR",
    expose_value=False, callback=_remember_kg_store,
    help="Where knowledge graphs are read from: memory (parse the Turtle each run) or oxigraph:DIR (load it once "
         "into an on-disk Oxigraph store in DIR, reused until the Turtle changes; extra `store`). "
         "Env: KGFUSION_KG_STORE.")


def chosen_kg_store() -> KgStore:
    """The running command's --kg-store as a KgStore; outside a command (pages, server threads) or when
    the command has no such option, $KGFUSION_KG_STORE, else memory."""
    from kgfusion.knowledge.graph import KgStore

    ctx = click.get_current_context(silent=True)
    value = ctx.meta.get(_KG_STORE_KEY) if ctx is not None else None
    return KgStore.parse(value if value is not None else os.environ.get("KGFUSION_KG_STORE"))


def load_kg(path: str | Path, store: KgStore | str | None = None) -> KnowledgeGraph:
    """KnowledgeGraph.load(path) in ``store`` (a KgStore or text; None: the running command's --kg-store)."""
    from kgfusion.knowledge.graph import KnowledgeGraph

    return KnowledgeGraph.load(path, store=chosen_kg_store() if store is None else store)


# ------------------------------------------------------------- batch engine options (core/batch_engine.py)
# `finance score | monitor`, `medical extract` (recommend score has its own): --engine, --shard-size, --restart.
ENGINE_HELP = ("In-process, or on Ray (extra: distributed): a local Ray instance, or the cluster at "
               "$RAY_ADDRESS; each worker loads the model once.")


def engine_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                        help=ENGINE_HELP)(f)


def shard_size_option(default: int | None, what: str, extra: str = "",
                      ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--shard-size``: ``what`` per shard (the unit of resume and of work sent to a Ray worker)."""
    return click.option("--shard-size", type=click.IntRange(min=1), default=default, show_default=default is not None,
                        help=f"{what} per shard (the unit of resume and of work sent to a worker).{extra}")


def restart_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--restart", is_flag=True,
                        help="Discard finished shards of an earlier run (<out>.shards/) instead of resuming.")(f)
