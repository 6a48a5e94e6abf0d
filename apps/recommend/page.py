"""Streamlit page: movie recommendations for one user, and why.

Pick a known user (or a new one: cold start), read what they rated, the top-K movies with their
explanation and evidence, the knowledge-graph neighbourhood of a recommended movie (its genres and tags,
and how many of the user's rated movies share each), and the quality table against the baselines.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from kgfusion.apps.common import repo_data_dir, results_dir
from kgfusion.apps.recommend.batch import DEFAULT_LOADER, load_scorer
from kgfusion.apps.ui.render import escape_markdown, show_text

MODEL = Path(os.environ.get("KGFUSION_RECOMMEND_MODEL", repo_data_dir() / "models" / "recommender-movielens"))
KG_PATH = Path(os.environ.get("KGFUSION_RECOMMEND_KG", repo_data_dir() / "kg" / "movies.ttl"))
RESULTS = Path(os.environ.get("KGFUSION_RECOMMEND_RESULTS", results_dir() / "recommend.json"))
LOADER = os.environ.get("KGFUSION_RECOMMEND_LOADER", DEFAULT_LOADER)
NEW_USER = "New user (cold start)"
METRICS = ("ndcg_at_10", "recall_at_10", "map_at_10", "precision_at_10", "hit_rate_at_10", "coverage",
           "diversity", "novelty", "users_per_s")
_METRIC_KEY = re.compile(rf"^(?P<model>.+)_(?P<metric>{'|'.join(METRICS)})$")
# Results files key models in lower case; these read better under their published names.
MODEL_LABELS = {"ease": "EASE", "rp3beta": "RP3beta"}


@st.cache_resource(show_spinner="Loading the recommender ...")
def load_model(model_dir: str, loader: str, stamp: float):
    return load_scorer(model_dir, loader)


@st.cache_resource(show_spinner="Loading the movie graph ...")
def load_graph(path: str):
    from kgfusion.knowledge.graph import KnowledgeGraph

    return KnowledgeGraph.load(path)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_rows(results: dict, default_model: str) -> dict[str, dict[str, float]]:
    """model -> metric -> value, from ``{"models": {name: {metric: value}}}`` when present, else from flat
    keys: "ndcg_at_10" (this model) or "itemknn_ndcg_at_10"."""
    models = results.get("models")
    if isinstance(models, dict) and models:
        return {str(name): {m: float(v) for m, v in metrics.items() if m in METRICS and _number(v)}
                for name, metrics in models.items() if isinstance(metrics, dict)}
    rows: dict[str, dict[str, float]] = {}
    for key, value in results.items():
        if not _number(value):
            continue
        if key in METRICS:
            rows.setdefault(default_model, {})[key] = float(value)
        elif m := _METRIC_KEY.match(key):
            rows.setdefault(m["model"], {})[m["metric"]] = float(value)
    return rows


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def movie_neighbourhood(graph, item_id: int, history_ids: list[int]) -> tuple[pd.DataFrame, dict[str, str]]:
    """URI neighbours of a movie (genre, tag, ...) with how many rated movies share each, plus its literals."""
    from rdflib.namespace import RDF

    from kgfusion.knowledge.builders.movies import movie_uri

    node = movie_uri(item_id)
    rated = [movie_uri(i) for i in history_ids]
    rows, literals = [], {}
    for nb in graph.neighbors(node):
        predicate = graph.predicate_label(nb.predicate)
        if not str(nb.node).startswith("http") or nb.predicate == RDF.type:  # every movie shares its type
            literals.setdefault(predicate, graph.label(nb.node) if nb.predicate == RDF.type else str(nb.node))
            continue
        pair = (nb.predicate, nb.node)
        shared = sum(1 for r in rated if ((r, *pair) if nb.direction == "out" else (nb.node, nb.predicate, r))
                     in graph.graph)
        rows.append({"relation": predicate, "neighbour": graph.label(nb.node), "shared_with_history": shared,
                     "uri": graph.curie(nb.node)})
    return pd.DataFrame(rows, columns=["relation", "neighbour", "shared_with_history", "uri"]), literals


def star_chart(frame: pd.DataFrame, centre: str) -> alt.LayerChart:
    """The movie in the middle, its neighbours on a circle; bigger dots are shared with the user's history."""
    n = max(1, len(frame))
    angle = [2 * math.pi * i / n for i in range(len(frame))]
    nodes = frame.assign(x=[math.cos(a) for a in angle], y=[math.sin(a) for a in angle], x0=0.0, y0=0.0)
    axis = {"axis": None, "scale": alt.Scale(domain=[-1.6, 1.6])}
    edges = alt.Chart(nodes).mark_rule(color="#b0b8c4").encode(
        x=alt.X("x0:Q", **axis), y=alt.Y("y0:Q", **axis), x2="x:Q", y2="y:Q")
    dots = alt.Chart(nodes).mark_circle(opacity=0.85).encode(
        x="x:Q", y="y:Q", color=alt.Color("relation:N", title="relation"),
        size=alt.Size("shared_with_history:Q", title="shared with history", scale=alt.Scale(range=[60, 600])),
        tooltip=["relation", "neighbour", "shared_with_history", "uri"])
    labels = alt.Chart(nodes).mark_text(dy=-12, fontSize=11).encode(x="x:Q", y="y:Q", text="neighbour:N")
    middle = alt.Chart(pd.DataFrame({"x": [0.0], "y": [0.0], "t": [centre[:40]]}))
    centre_layer = middle.mark_circle(size=900, color="#f39c12").encode(x="x:Q", y="y:Q") + \
        middle.mark_text(dy=-24, fontWeight="bold").encode(x="x:Q", y="y:Q", text="t:N")
    return (edges + dots + labels + centre_layer).properties(height=420)


st.title("Movie recommendations")
st.caption("Top-K movies per user from the candidate generators and the learned ranker, each with the "
           "reasons behind it; unknown users get cold-start recommendations.")

with st.sidebar:
    st.header("Model")
    model_dir = Path(st.text_input("Model directory", str(MODEL)))
    k = st.slider("Recommendations", min_value=1, max_value=30, value=10)

if not model_dir.is_dir():
    st.info(f"No recommender model at {escape_markdown(model_dir)}. Build it with `kgfusion recommend train` "
            "or point the sidebar at a model directory.")
    st.stop()

model = load_model(str(model_dir), LOADER, model_dir.stat().st_mtime)
known = sorted(int(u) for u in model.known_users())
choice = st.selectbox("User", [NEW_USER, *known], index=1 if known else 0)
user_id = max(known, default=0) + 1 if choice == NEW_USER else int(choice)

st.subheader("History")
history = model.history(user_id) if choice != NEW_USER else pd.DataFrame()
if history.empty:
    st.write("No ratings yet: the recommendations below are the cold-start fallback.")
else:
    shown = history.copy()
    if "genres" in shown:
        shown["genres"] = shown["genres"].map(lambda g: ", ".join(g) if isinstance(g, (list, tuple)) else g)
    if "timestamp" in shown and pd.api.types.is_numeric_dtype(shown["timestamp"]):
        shown["timestamp"] = pd.to_datetime(shown["timestamp"], unit="s").dt.date
    st.caption(f"{len(shown)} rated movies")
    st.dataframe(shown, hide_index=True, width="stretch")

st.subheader("Recommendations")
recs = model.recommend_frame([user_id], k=int(k))
if recs.empty:
    st.warning("The model returned no recommendations for this user.")
    st.stop()
if bool(recs["cold_start"].any()):
    st.info("Cold start: this user is unknown to the model, so these are popular movies with graph context.")
st.dataframe(recs[["rank", "title", "score", "explanation"]].round({"score": 3}), hide_index=True, width="stretch")
for row in recs.itertuples(index=False):
    with st.expander(escape_markdown(f"{row.rank}. {row.title}  ·  score {row.score:.3f}")):
        show_text(row.explanation)
        try:
            evidence = json.loads(row.evidence) if isinstance(row.evidence, str) else list(row.evidence)
        except ValueError:
            evidence = [{"source": "text", "detail": str(row.evidence), "weight": None}]
        st.dataframe(pd.DataFrame(evidence), hide_index=True, width="stretch")

st.subheader("Knowledge-graph neighbourhood")
if not KG_PATH.is_file():
    st.info(f"No movie graph at {escape_markdown(KG_PATH)}. Build it with `kgfusion kg build movies`.")
else:
    titles = dict(zip(recs["item_id"], recs["title"], strict=True))
    item = st.selectbox("Recommended movie", list(titles), format_func=lambda i: titles[i])
    graph = load_graph(str(KG_PATH))
    rated = [int(i) for i in history["item_id"]] if not history.empty else []
    nbrs, literals = movie_neighbourhood(graph, int(item), rated)
    if literals:
        st.caption(escape_markdown(" · ".join(f"{key}: {value}" for key, value in sorted(literals.items()))))
    if nbrs.empty:
        st.write("This movie has no linked genres or tags in the graph.")
    else:
        nbrs = nbrs.sort_values(["shared_with_history", "relation", "neighbour"], ascending=[False, True, True])
        st.altair_chart(star_chart(nbrs.head(24), titles[item]), width="stretch")
        st.dataframe(nbrs, hide_index=True, width="stretch")

st.subheader("Quality against the baselines")
results = read_json(RESULTS)
if results is None:
    st.info(f"No evaluation results at {escape_markdown(RESULTS)}. Create them with `kgfusion recommend evaluate` "
            "(or the recommendation benchmark).")
else:
    rows = metric_rows(results, "kgfusion")
    baselines = read_json(RESULTS.with_name("recommend_baselines.json")) or {}
    for name, metrics in metric_rows(baselines, "baseline").items():
        rows.setdefault(name, metrics)  # the same baseline measured in both files: keep recommend.json's
    rows = {MODEL_LABELS.get(name, name): metrics for name, metrics in rows.items()}
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=[m for m in METRICS if any(
        m in r for r in rows.values())])
    table = table.rename_axis("model").reset_index()
    if "ndcg_at_10" in table:
        table = table.sort_values("ndcg_at_10", ascending=False)
    st.dataframe(table.round(4), hide_index=True, width="stretch")
    slices = results.get("slices") or {}
    if slices:  # the users and items a careful reader asks about, kgfusion next to the baselines
        st.markdown("**Slices** (validation): users with at most 10 history items, long-tail target items "
                    "(at most 5 history ratings) and cold target items (none in the history)")
        labels = {"short_history_ndcg_at_10": "short-history users: NDCG@10",
                  "short_history_recall_at_10": "short-history users: recall@10",
                  "history_le_20_users": "users with at most 20 history items",
                  "history_le_20_ndcg_at_10": "users with at most 20 history items: NDCG@10",
                  "long_tail_hit_rate": "long-tail items: hit rate", "long_tail_hits": "long-tail items: hits",
                  "cold_item_hit_rate": "cold items: hit rate", "cold_item_hits": "cold items: hits",
                  "cold_item_targets": "cold items: in the target"}
        slice_table = pd.DataFrame({MODEL_LABELS.get(n, n): {labels[k]: v for k, v in m.items() if k in labels}
                                    for n, m in slices.items()})
        st.dataframe(slice_table.rename_axis("slice").reset_index().round(4), hide_index=True, width="stretch")
    speed = {key: results[key] for key in ("users_per_s_local", "users_per_s_ray") if key in results}
    if speed:
        st.caption("Batch scoring throughput: " + ", ".join(f"{key.removeprefix('users_per_s_')} "
                                                             f"{value:.0f} users/s" for key, value in speed.items()))
