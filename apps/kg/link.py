"""``kgfusion kg link``: link mentions to KG entities through a cached EntityIndex.

The index for a graph lives beside it (data/kg/index/<graph>/ for data/kg/<graph>.ttl); the cache
policy (rebuilt when graph, encoder or kind change) is knowledge.index_cache's.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from kgfusion.apps.common import emit, json_option, repo_data_dir
from kgfusion.core.errors import KgfusionError
from kgfusion.knowledge.index import KINDS, encoder_name
from kgfusion.knowledge.index_cache import default_encoder, index_dir_for, load_or_build_index
from kgfusion.knowledge.linker import Linker, LinkResult

log = logging.getLogger(__name__)

GRAPH_NAMES = ("finance", "medical", "movies")


def make_encoder() -> Any:
    """The retrieval encoder: packaged MiniLM (tests monkeypatch this with a mock)."""
    return default_encoder()


def resolve_graph(value: str) -> tuple[Path, Path]:
    """(graph file, index cache dir) for a graph name (finance|medical|movies) or a Turtle path."""
    if value in GRAPH_NAMES:
        kg_dir = repo_data_dir() / "kg"
        path, cache = kg_dir / f"{value}.ttl", kg_dir / "index" / value
        if not path.is_file():
            raise click.BadParameter(f"{path} not found; build it first with `kgfusion kg build {value}`.",
                                     param_hint="--graph")
        return path, cache
    path = Path(value).expanduser()
    if not path.is_file():
        raise click.BadParameter(
            f"{value!r} is neither one of {', '.join(GRAPH_NAMES)} nor an existing Turtle file.", param_hint="--graph"
        )
    return path, index_dir_for(path)


def resolve_type(value: str) -> str:
    """A type given as a short name (disease, drug, company, ...), a CURIE (schema:Drug) or a full URI."""
    from kgfusion.knowledge import vocab

    short = {name.lower(): str(getattr(vocab, name)) for name in
             ("COMPANY", "SECTOR", "INDUSTRY", "DISEASE", "SYMPTOM", "DRUG", "MOVIE", "GENRE", "TAG")}
    if value.lower() in short:
        return short[value.lower()]
    if "://" in value:
        return value
    prefix, sep, local = value.partition(":")
    if sep and prefix in vocab.PREFIXES:
        return str(vocab.PREFIXES[prefix][local])
    raise click.BadParameter(
        f"Unknown type {value!r}: use one of {', '.join(sorted(short))}, a CURIE like schema:Drug, or a full URI.",
        param_hint="--type",
    )


def _format(result: LinkResult, k: int) -> str:
    head = (f"{result.mention!r} -> {result.label} <{result.uri}>  [{result.match}, score {result.score:.3f}"
            f"{', ambiguous' if result.ambiguous else ''}]" if result.uri else
            f"{result.mention!r} -> no entity above the threshold (best score {result.score:.3f})")
    lines = [head]
    for rank, c in enumerate(result.candidates[:k], 1):
        lines.append(f"  {rank:>2}. {c.score:6.3f}  cos {c.cosine:6.3f}  ngram {c.ngram:5.3f}  {c.label}  <{c.uri}>"
                     + (f"  via {c.name!r}" if c.name != c.label else ""))
    return "\n".join(lines)


@click.command("link")
@click.argument("mentions", nargs=-1, required=True)
@click.option("--graph", "graph", default="medical", show_default=True,
              help="finance, medical, movies (data/kg/<name>.ttl) or a path to a Turtle file.")
@click.option("--type", "types", multiple=True, help="Restrict to an entity type (disease, drug, company, "
              "schema:Drug, a full URI); repeatable.")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000), help="Candidates per mention.")
@click.option("--threshold", default=0.5, show_default=True, type=click.FloatRange(-1.0, 1.0),
              help="Minimum retrieval score for a link; below it the match is 'none'.")
@click.option("--index-kind", "kind", default="auto", show_default=True, type=click.Choice(KINDS),
              help="FAISS structure: exact flat, HNSW, IVF, or auto (flat for small graphs).")
@click.option("--rebuild", is_flag=True, help="Rebuild the cached index even if it is up to date.")
@json_option
def link_command(mentions: tuple[str, ...], graph: str, types: tuple[str, ...], k: int, threshold: float,
                 kind: str, rebuild: bool, as_json: bool) -> None:
    """Link MENTIONS to knowledge-graph entities (exact, normalised, n-gram, then embedding match)."""
    graph_path, cache_dir = resolve_graph(graph)
    type_uris = [resolve_type(t) for t in types] or None
    try:
        encoder = make_encoder()
        index = load_or_build_index(graph_path, cache_dir, encoder, kind=kind, rebuild=rebuild)
        results = Linker(index, threshold=threshold).link_many(list(mentions), types=type_uris, k=k)
    except KgfusionError as exc:
        raise click.ClickException(str(exc)) from exc
    payload = {"graph": str(graph_path), "index": {"kind": index.kind, "encoder": encoder_name(encoder),
                                                  "entities": len(index), "names": index.name_count},
               "results": [r.to_dict() for r in results]}
    emit(payload, as_json, "\n\n".join(_format(r, k) for r in results))


