"""``kgfusion kg``: build the domain graphs, print stats, run read-only SPARQL, show neighbours and paths.

Graphs are named (finance, medical, movies -> <data>/kg/<name>.ttl, where <data> is $KGFUSION_DATA or
the repository's data/ folder) or given as a Turtle path; ``--kg-store oxigraph:DIR`` reads them through
a persistent on-disk Oxigraph store instead of parsing the Turtle each run. Entities are full URIs, prefixed names
(company:AAPL, kgfid:company/AAPL, obo:DOID_1612) or unambiguous labels ("Apple Inc.").
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rdflib import URIRef

from kgfusion.apps.common import emit, json_option, kg_store_option, load_kg, repo_data_dir
from kgfusion.core.errors import KgfusionError
from kgfusion.core.textfile import read_text
from kgfusion.knowledge.builders import DOMAINS, build_with_report, output_path
from kgfusion.knowledge.graph import KnowledgeGraph
from kgfusion.knowledge.sparql import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S, SparqlError
from kgfusion.knowledge.vocab import ALL_PREFIXES

# Which graph a prefixed name belongs to, so `neighbors company:AAPL` needs no --graph.
_DOMAIN_OF_PREFIX = {
    "company": "finance", "sector": "finance", "industry": "finance", "topic": "finance", "topic-group": "finance",
    "obo": "medical", "drug": "medical",
    "movie": "movies", "genre": "movies", "tag": "movies",
}


def _kg_dir() -> Path:
    return repo_data_dir() / "kg"


class GraphParam(click.ParamType):
    """A graph name (finance|medical|movies) or the path of a Turtle file (.ttl / .ttl.gz)."""

    name = "NAME_OR_PATH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        if isinstance(value, Path):
            return value
        if value in DOMAINS:
            path = output_path(value, _kg_dir())
            if not path.is_file():
                self.fail(f"{path} not found; build it with `kgfusion kg build {value}`.", param, ctx)
            return path
        path = Path(value).expanduser()
        if not path.is_file():
            self.fail(f"{value!r} is neither one of {', '.join(DOMAINS)} nor an existing Turtle file.", param, ctx)
        return path


GRAPH = GraphParam()


def _errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Library errors become one clear line (click.ClickException, exit code 1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KgfusionError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def _load(path: Path) -> KnowledgeGraph:
    """The graph in the command's --kg-store; says on stderr when an on-disk store was (re)built."""
    kg = load_kg(path)
    info = getattr(kg, "store_info", None)
    if info is not None and not info.reused:
        click.echo(f"Built the Oxigraph store {info.store_path} from {path} ({info.triples} triples, "
                   f"{info.build_seconds:.1f} s); later runs reuse it until the file changes.", err=True)
    return kg


def _graph_for(graph: Path | None, *names: str) -> Path:
    """--graph if given, else the domain implied by the first prefixed name."""
    if graph is not None:
        return graph
    for name in names:
        prefix = name.split(":", 1)[0] if ":" in name else ""
        if name.startswith(("http://", "https://")):
            known = [(len(str(ns)), p) for p, ns in ALL_PREFIXES.items()
                     if p in _DOMAIN_OF_PREFIX and name.startswith(str(ns))]
            prefix = max(known)[1] if known else ""
        elif prefix == "kgfid":
            prefix = name.split(":", 1)[1].split("/", 1)[0]
        if prefix in _DOMAIN_OF_PREFIX:
            return GRAPH.convert(_DOMAIN_OF_PREFIX[prefix], None, None)
    raise click.BadParameter(f"cannot tell which graph {names[0]!r} belongs to; pass --graph.", param_hint="--graph")


def resolve_entity(kg: KnowledgeGraph, text: str, param_hint: str) -> URIRef:
    """A URI/prefixed name present in the graph, or the one entity whose label or alias is ``text``."""
    try:
        uri = kg.expand(text)
        if (uri, None, None) in kg.graph or (None, None, uri) in kg.graph:
            return uri
    except KgfusionError:
        pass
    hits = kg.lookup(text)
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise click.BadParameter(f"no entity with URI, prefixed name or label {text!r} in this graph.",
                                 param_hint=param_hint)
    shown = ", ".join(f"{kg.curie(h)} ({kg.label(h)})" for h in hits[:5])
    raise click.BadParameter(f"{text!r} names {len(hits)} entities: {shown}; use a URI.", param_hint=param_hint)


def _table(kg: KnowledgeGraph, rows: list[dict[str, str]]) -> str:
    """Tab-separated rows with a header; URIs shortened to prefixed names."""
    if not rows:
        return "(no results)"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["\t".join(columns)]
    lines += ["\t".join(kg.curie(URIRef(row[c])) if row.get(c, "").startswith("http") else row.get(c, "")
                        for c in columns) for row in rows]
    return "\n".join(lines)


group = click.Group("kg", help="Build and query the knowledge graphs; link mentions to entities.")


@group.command("build")
@click.argument("domain", type=click.Choice([*DOMAINS, "all"]))
@click.option("--datasets", "datasets", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Folder holding sp500/, disease_ontology/, ... [default: <data>/datasets]")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder for <domain>.ttl [default: <data>/kg]")
@json_option
@_errors
def build_command(domain: str, datasets: Path | None, out: Path | None, as_json: bool) -> None:
    """Build DOMAIN's graph (or all) from the open data sets and write it atomically."""
    datasets = datasets or repo_data_dir() / "datasets"
    out = out or _kg_dir()
    results = [build_with_report(d, datasets, out) for d in (DOMAINS if domain == "all" else (domain,))]
    payload = [
        {"domain": r.domain, "path": str(r.path), "bytes": r.bytes, "seconds": round(r.seconds, 2),
         "report": r.report, "stats": r.stats}
        for r in results
    ]
    lines = []
    for r in results:
        types = ", ".join(f"{t} {n}" for t, n in r.stats["types"].items())
        lines.append(f"{r.domain}: {r.stats['triples']} triples, {r.stats['entities']} entities ({types}) "
                     f"-> {r.path} ({r.bytes / 1e6:.1f} MB, {r.seconds:.1f} s)")
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in r.report.items()))
    emit(payload, as_json, "\n".join(lines))


@group.command("stats")
@click.option("--graph", "graph", type=GRAPH, default=None, help="Graph name or Turtle path [default: all built]")
@kg_store_option
@json_option
@_errors
def stats_command(graph: Path | None, as_json: bool) -> None:
    """Triples, entities per type and triples per predicate."""
    if graph is not None:
        paths = {graph.name.removesuffix(".gz").removesuffix(".ttl"): graph}
    else:
        paths = {d: output_path(d, _kg_dir()) for d in DOMAINS if output_path(d, _kg_dir()).is_file()}
        if not paths:
            raise click.ClickException(f"No graphs in {_kg_dir()}; build them with `kgfusion kg build all`.")
    payload = {name: _load(path).stats() for name, path in paths.items()}
    lines = []
    for name, stats in payload.items():
        lines.append(f"{name} ({paths[name]}): {stats['triples']} triples, {stats['entities']} entities")
        lines += [f"  type       {t}: {n}" for t, n in stats["types"].items()]
        lines += [f"  predicate  {p}: {n}" for p, n in stats["predicates"].items()]
    emit(payload, as_json, "\n".join(lines))


@group.command("query")
@click.argument("sparql")
@click.option("--graph", "graph", type=GRAPH, required=True, help="Graph name or Turtle path.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=0),
              help="Maximum rows printed (0 = all).")
@click.option("--timeout", "timeout", default=DEFAULT_TIMEOUT_S, show_default=True, type=click.FloatRange(min=0),
              help="Stop the query after this many seconds (0 = no limit).")
@click.option("--max-rows", "max_rows", default=DEFAULT_MAX_ROWS, show_default=True, type=click.IntRange(min=0),
              help="Stop reading results after this many rows and say so (0 = no cap).")
@kg_store_option
@json_option
@_errors
def query_command(sparql: str, graph: Path, limit: int, timeout: float, max_rows: int, as_json: bool) -> None:
    """Run a read-only SPARQL query (SELECT/ASK/CONSTRUCT/DESCRIBE; @FILE reads it from a file).

    Project prefixes (kgf:, kgfid:, obo:, schema:, rdfs:, skos:, company:, movie:, ...) are pre-bound.
    A query running past --timeout is stopped with an error (exit code 1); a result cut at --max-rows
    is printed with a note on stderr.
    """
    path_of_query = None
    if sparql.startswith("@"):
        path = path_of_query = Path(sparql[1:])
        if not path.is_file():
            raise click.BadParameter(f"query file {path} not found.", param_hint="SPARQL")
        sparql = read_text(path, "utf-8", hint="save the query file as UTF-8")
    kg = _load(graph)
    try:
        rows = kg.query(sparql, limit=limit or None, timeout_s=timeout or None, max_rows=max_rows or None)
    except SparqlError as exc:  # a query from a file: say which file
        if path_of_query is not None:
            raise SparqlError(f"{path_of_query}: {exc}") from exc
        raise
    emit(rows, as_json, _table(kg, rows))
    if rows.truncated:
        click.echo(f"Note: {rows.note}", err=True)


@group.command("neighbors")
@click.argument("uri")
@click.option("--predicate", default=None, help="Only this predicate (URI or prefixed name, e.g. kgf:inSector).")
@click.option("--direction", type=click.Choice(["out", "in", "both"]), default="both", show_default=True)
@click.option("--graph", "graph", type=GRAPH, default=None, help="Graph name or path [default: from the URI]")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=0), help="0 = all.")
@kg_store_option
@json_option
@_errors
def neighbors_command(uri: str, predicate: str | None, direction: str, graph: Path | None, limit: int,
                      as_json: bool) -> None:
    """Triples around URI: outgoing (->) and incoming (<-), with labels."""
    kg = _load(_graph_for(graph, uri))
    node = resolve_entity(kg, uri, "URI")
    pairs = kg.neighbors(node, predicate=predicate, direction=direction)  # type: ignore[arg-type]
    pairs = pairs[:limit] if limit else pairs
    payload = [
        {"direction": n.direction, "predicate": str(n.predicate), "node": str(n.node),
         "label": kg.label(n.node) if isinstance(n.node, URIRef) else None}
        for n in pairs
    ]
    lines = [f"{kg.curie(node)}  {kg.label(node)}"]
    for n in pairs:
        arrow = "->" if n.direction == "out" else "<-"
        target = f"{kg.curie(n.node)}  ({kg.label(n.node)})" if isinstance(n.node, URIRef) else json.dumps(str(n.node))
        lines.append(f"  {arrow} {kg.curie(n.predicate)}  {target}")
    emit(payload, as_json, "\n".join(lines))


@group.command("path")
@click.argument("a")
@click.argument("b")
@click.option("--graph", "graph", type=GRAPH, default=None, help="Graph name or path [default: from A or B]")
@click.option("--directed", is_flag=True, help="Follow edges only in their direction.")
@kg_store_option
@json_option
@_errors
def path_command(a: str, b: str, graph: Path | None, directed: bool, as_json: bool) -> None:
    """Shortest path between entities A and B, explained with labels."""
    kg = _load(_graph_for(graph, a, b))
    src, dst = resolve_entity(kg, a, "A"), resolve_entity(kg, b, "B")
    hops = kg.shortest_path(src, dst, undirected=not directed)
    explanation = kg.explain_path(hops, start=src) if hops else ""
    payload = {"source": str(src), "target": str(dst), "hops": [list(h) for h in hops], "explanation": explanation}
    text = explanation or f"No path from {kg.curie(src)} to {kg.curie(dst)}."
    if hops:
        text += "\n" + "\n".join(f"  {kg.curie(s)} {kg.curie(p)} {kg.curie(o)}" for s, p, o in hops)
    emit(payload, as_json, text)


from kgfusion.apps.kg.link import link_command  # noqa: E402  (kept in its own module: FAISS-backed)

group.add_command(link_command)
