"""What the Knowledge page shows, without Streamlit: graph files, entity search, neighbourhood tables and DOT.

Entity search runs the project's Linker over an EntityIndex. Two encoders:
- "hashing": character 3-gram feature hashing (knowledge.hashing.HashingEncoder), no model; the
  index over 13k entities builds in about a second, so the page stays interactive;
- "minilm": the packaged MiniLM through ``kgfusion.knowledge.index_cache.load_or_build_index`` (cached beside the graph
  in data/kg/index/<graph>/; building it the first time embeds every name: minutes for medical/movies).
The neighbourhood picture is a Graphviz DOT string (st.graphviz_chart renders it in the browser; no
graphviz binary is needed).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdflib import URIRef

from kgfusion.apps.common import repo_data_dir
from kgfusion.knowledge.graph import GraphError, KnowledgeGraph
from kgfusion.knowledge.linker import Linker, LinkResult

GRAPHS = ("finance", "medical", "movies")
ENCODERS = ("hashing", "minilm")


@dataclass(frozen=True)
class GraphExample:
    """Defaults the page pre-fills for a graph: a search text, an entity to draw, a SPARQL query."""

    search: str
    entity: str
    sparql: str


EXAMPLES: dict[str, GraphExample] = {
    "finance": GraphExample("Apple", "company:AAPL", """\
SELECT ?company ?name ?ticker WHERE {
  ?company kgf:inSector sector:information-technology ;
           rdfs:label ?name ;
           kgf:ticker ?ticker .
}
ORDER BY ?name
LIMIT 20"""),
    "medical": GraphExample("breast cancer", "obo:DOID_1612", """\
SELECT ?drug ?name WHERE {
  ?drug kgf:treats obo:DOID_1612 ;
        rdfs:label ?name .
}
ORDER BY ?name"""),
    "movies": GraphExample("Toy Story", "movie:1", """\
SELECT ?movie ?title ?year WHERE {
  ?movie kgf:hasGenre genre:Animation ;
         rdfs:label ?title ;
         kgf:year ?year .
  FILTER(?year >= 2010)
}
ORDER BY DESC(?year) ?title
LIMIT 20"""),
}


def graph_file(name: str, data_dir: str | Path | None = None) -> Path:
    """data/kg/<name>.ttl (``data_dir`` defaults to $KGFUSION_DATA or the repository's data/)."""
    return Path(data_dir or repo_data_dir()) / "kg" / f"{name}.ttl"


def hashing_linker(kg: KnowledgeGraph, threshold: float = 0.5) -> Linker:
    """A Linker over every typed entity of ``kg`` with the model-free hashing encoder (exact FAISS index)."""
    from kgfusion.knowledge.hashing import HashingEncoder
    from kgfusion.knowledge.index import EntityIndex

    records = kg.entity_records()
    if not records:
        raise GraphError("This graph has no typed entities with labels to search.")
    return Linker(EntityIndex(records, HashingEncoder(), kind="flat"), threshold=threshold)


def minilm_linker(path: str | Path, threshold: float = 0.5) -> Linker:
    """A Linker over the MiniLM EntityIndex cached in <kg dir>/index/<graph>/ (built and saved if stale)."""
    from kgfusion.knowledge.index_cache import default_encoder, index_dir_for, load_or_build_index

    path = Path(path)
    index = load_or_build_index(path, index_dir_for(path), default_encoder())
    return Linker(index, threshold=threshold)


def candidate_rows(result: LinkResult) -> list[dict[str, Any]]:
    """The ranked candidates of a link result as table rows (scores rounded to 3 places)."""
    return [{"rank": i, "label": c.label, "uri": c.uri, "type": c.type.rsplit("/", 1)[-1].rsplit("#", 1)[-1],
             "matched name": c.name, "score": round(c.score, 3), "cosine": round(c.cosine, 3),
             "ngram": round(c.ngram, 3)} for i, c in enumerate(result.candidates, 1)]


def resolve_entity(kg: KnowledgeGraph, text: str) -> URIRef:
    """A URI or prefixed name present in ``kg``, or the single entity with that label/alias."""
    text = text.strip()
    if not text:
        raise GraphError("Type an entity: a prefixed name (company:AAPL), a full URI or a label.")
    try:
        uri = kg.expand(text)
        if (uri, None, None) in kg.graph or (None, None, uri) in kg.graph:
            return uri
    except GraphError:
        pass
    hits = kg.lookup(text)
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise GraphError(f"No entity with URI, prefixed name or label {text!r} in this graph; search for it above.")
    shown = ", ".join(f"{kg.curie(h)} ({kg.label(h)})" for h in hits[:5])
    raise GraphError(f"{text!r} names {len(hits)} entities: {shown}; type one of the prefixed names.")


def neighbour_rows(kg: KnowledgeGraph, uri: URIRef, limit: int | None = None) -> list[dict[str, str]]:
    """Triples around ``uri``: direction (-> out, <- in), predicate, node (CURIE or literal), its label."""
    rows = []
    for n in kg.neighbors(uri):
        is_uri = isinstance(n.node, URIRef)
        rows.append({"direction": "->" if n.direction == "out" else "<-", "predicate": kg.curie(n.predicate),
                     "node": kg.curie(n.node) if is_uri else str(n.node),
                     "label": kg.label(n.node) if is_uri else ""})
    return rows if limit is None else rows[:limit]


def _dot_text(text: str, width: int = 28) -> str:
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("\\", "\\\\").replace('"', '\\"')


def neighbourhood_dot(kg: KnowledgeGraph, uri: URIRef, max_edges: int = 30) -> tuple[str, int]:
    """DOT for ``uri`` and up to ``max_edges`` URI neighbours (literals left out); returns (dot, edges drawn).

    Labels are the entities' preferred labels; edges carry the predicate's readable name. Neighbours
    are taken in the graph's sorted order (outgoing first), so the picture is the same on every run.
    """
    edges = [n for n in kg.neighbors(uri) if isinstance(n.node, URIRef)]
    edges = edges[:max_edges]
    ids: dict[str, str] = {str(uri): "n0"}
    lines = ["digraph neighbourhood {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", '
             'fillcolor="#eef3fb", fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9, color="#7a8699"];',
             f'  n0 [label="{_dot_text(kg.label(uri))}\\n{_dot_text(kg.curie(uri))}", fillcolor="#ffd8a8"];']
    for n in edges:
        key = str(n.node)
        if key not in ids:
            ids[key] = f"n{len(ids)}"
            lines.append(f'  {ids[key]} [label="{_dot_text(kg.label(n.node))}"];')
        a, b = ("n0", ids[key]) if n.direction == "out" else (ids[key], "n0")
        lines.append(f'  {a} -> {b} [label="{_dot_text(kg.predicate_label(n.predicate), 20)}"];')
    lines.append("}")
    return "\n".join(lines), len(edges)
