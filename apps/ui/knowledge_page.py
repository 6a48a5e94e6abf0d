"""Knowledge page: pick a graph; read its stats, search entities, run read-only SPARQL, draw a neighbourhood."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from kgfusion.apps.ui.kgview import (
    ENCODERS,
    EXAMPLES,
    GRAPHS,
    candidate_rows,
    graph_file,
    hashing_linker,
    minilm_linker,
    neighbour_rows,
    neighbourhood_dot,
    resolve_entity,
)
from kgfusion.core.errors import KgfusionError
from kgfusion.knowledge.sparql import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S, QueryTimeout


@st.cache_resource(show_spinner="Loading the knowledge graph (medical and movies take ~15 s the first time) ...")
def load_graph(path: str, stamp: float):
    from kgfusion.apps.common import load_kg

    return load_kg(path)  # $KGFUSION_KG_STORE=oxigraph:DIR reads it from a persistent store


@st.cache_resource(show_spinner="Building the entity index ...")
def load_linker(path: str, stamp: float, encoder: str):
    if encoder == "minilm":
        return minilm_linker(path)
    return hashing_linker(load_graph(path, stamp))


@st.cache_resource(show_spinner=False)
def graph_stats(path: str, stamp: float) -> dict:
    return load_graph(path, stamp).stats()


st.title("Knowledge graphs")
st.caption("RDF graphs built from open data (S&P 500 companies, Disease Ontology + DrugBank indications, "
           "MovieLens). The apps link mentions to these entities and cite the triples they use as evidence.")

with st.sidebar:
    st.header("Graph")
    name = st.selectbox("Graph", GRAPHS, key="kg_graph")
    encoder = st.radio("Search encoder", ENCODERS, key="kg_encoder",
                       format_func={"hashing": "hashing (instant, no model)",
                                    "minilm": "MiniLM (cached index; slow to build)"}.get)

path = graph_file(name)
if not path.is_file():
    st.info(f"No graph at {path}. Build it with `kgfusion kg build {name}`.")
    st.stop()
stamp = path.stat().st_mtime
example = EXAMPLES[name]
try:
    kg = load_graph(str(path), stamp)
except KgfusionError as exc:
    st.error(str(exc))
    st.stop()

st.header("Statistics")
stats = graph_stats(str(path), stamp)
cols = st.columns(3)
cols[0].metric("Triples", f"{stats['triples']:,}")
cols[1].metric("Entities", f"{stats['entities']:,}")
cols[2].metric("Predicates", f"{len(stats['predicates']):,}")
left, right = st.columns(2)
left.dataframe(pd.DataFrame(list(stats["types"].items()), columns=["type", "entities"]), hide_index=True,
               width="stretch")
right.dataframe(pd.DataFrame(list(stats["predicates"].items()), columns=["predicate", "triples"]), hide_index=True,
                width="stretch")

st.header("Entity search")
st.caption("The project's linker: exact and normalised name matches first, then nearest names in the FAISS "
           "entity index re-scored with character n-grams. The hashing encoder (character 3-gram hashing) "
           "needs no model and indexes a graph in about a second, so it is the default here; MiniLM "
           "matches meaning better but embeds every name the first time (minutes for medical/movies).")
query = st.text_input("Mention", example.search, key=f"kg_search_{name}")
k = st.slider("Candidates", 1, 25, 10)
if query.strip():
    try:
        linker = load_linker(str(path), stamp, encoder)
        result = linker.link(query.strip(), k=k)
    except KgfusionError as exc:
        st.error(str(exc))
    else:
        if result.uri:
            st.success(f"**{result.label}** `{kg.curie(result.uri)}` — {result.match} match, "
                       f"score {result.score:.3f}" + (" (ambiguous)" if result.ambiguous else ""))
        else:
            st.warning(f"No entity above the linking threshold (best score {result.score:.3f}).")
        rows = candidate_rows(result)
        if rows:
            for row in rows:
                row["uri"] = kg.curie(row["uri"])
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

st.header("SPARQL (read-only)")
st.caption("SELECT, ASK, CONSTRUCT or DESCRIBE only: updates, SERVICE and FROM are refused. Prefixes kgf:, "
           "kgfid:, rdfs:, skos:, schema:, obo:, company:, sector:, drug:, movie:, genre:, tag: are pre-bound.")
with st.form(f"sparql_{name}"):
    sparql = st.text_area("Query", example.sparql, height=200)
    left, right = st.columns(2)
    max_rows = left.number_input("Max rows (--max-rows)", min_value=1, max_value=DEFAULT_MAX_ROWS, value=200,
                                 help="Results are read up to this many rows; a note says when the cap cut them.")
    timeout = right.number_input("Time limit in seconds (--timeout)", min_value=0.1, max_value=60.0,
                                 value=DEFAULT_TIMEOUT_S, step=1.0,
                                 help="The query runs in a separate process that is stopped at this limit.")
    run = st.form_submit_button("Run query", type="primary")
if run:
    try:
        with st.spinner(f"Running the query (stopped after {timeout:g} s) ..."):
            answer = kg.query(sparql, timeout_s=float(timeout), max_rows=int(max_rows))
    except QueryTimeout as exc:
        st.warning(str(exc))
    except KgfusionError as exc:  # SparqlError: malformed or not read-only
        st.error(f"Query refused: {exc}")
    else:
        if not answer:
            st.info("No results.")
        else:
            frame = pd.DataFrame(answer).map(lambda v: kg.curie(v) if isinstance(v, str) and
                                             v.startswith(("http://", "https://")) else v)
            st.dataframe(frame, hide_index=True, width="stretch")
            st.caption(f"{len(answer)} row(s)")
            if answer.truncated:
                st.warning(answer.note)

st.header("Neighbourhood")
entity_text = st.text_input("Entity (prefixed name, URI or exact label)", example.entity, key=f"kg_entity_{name}")
max_edges = st.slider("Edges drawn at most", 5, 60, 25)
try:
    node = resolve_entity(kg, entity_text)
except KgfusionError as exc:
    st.error(str(exc))
else:
    dot, drawn = neighbourhood_dot(kg, node, max_edges=max_edges)
    st.graphviz_chart(dot, width="stretch")
    rows = neighbour_rows(kg, node)
    st.caption(f"{kg.label(node)} ({kg.curie(node)}): {len(rows)} triples, {drawn} links to entities drawn.")
    with st.expander("All triples"):
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
