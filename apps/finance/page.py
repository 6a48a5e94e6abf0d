"""Streamlit page: which companies turn negative, when, and why.

Pick the demo database (or upload a feed to score), read the KPIs, follow a company's or sector's
sentiment over time, scan the alert list, and drill into an alert: its most negative items with the
evidence highlighted, and the company's neighbourhood in the knowledge graph. A database scored by a
bundle with a topic head also gets a topic filter (alerts about one topic or topic group), a topic x day
heatmap of the negative share, per-topic lines for a chosen company and the topic of every evidence item;
without topics an info line says how to get them.
"""
from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from kgfusion.apps.common import repo_data_dir
from kgfusion.apps.finance.config import DEFAULT_BACKEND, DEFAULT_BUNDLE_NAME, FinanceConfig
from kgfusion.apps.finance.linking import neighbourhood
from kgfusion.apps.finance.pipeline import alerts_from_store, store_series
from kgfusion.apps.finance.store import FinanceStore, kpis
from kgfusion.apps.finance.timeseries import TOPIC_LEVELS
from kgfusion.apps.finance.topics import TopicCatalog
from kgfusion.apps.ui.render import Highlight, escape_markdown, show_highlighted
from kgfusion.core.errors import KgfusionError

REPO = Path(__file__).resolve().parents[2]
DEMO_DB = Path(os.environ.get("KGFUSION_FINANCE_DB", REPO / "runs" / "finance.duckdb"))
KG_PATH = Path(os.environ.get("KGFUSION_FINANCE_KG", repo_data_dir() / "kg" / "finance.ttl"))
BUNDLE = Path(os.environ.get("KGFUSION_FINANCE_BUNDLE", repo_data_dir() / "models" / DEFAULT_BUNDLE_NAME))


def evidence_highlights(evidence: list[dict]) -> list[Highlight]:
    """Marks for an item's evidence spans: blue for linked companies, red/green for rule terms by sign."""
    marks = []
    for e in evidence:
        span = e.get("span")
        if not span or len(span) != 2:
            continue
        weight = e.get("weight") or 0.0
        colour = "#cfe2ff" if e.get("kind") == "kg" else "#f8d7da" if weight < 0 else "#d1e7dd" if weight > 0 \
            else "#eeeeee"
        marks.append(Highlight(int(span[0]), int(span[1]), style=f"background:{colour}",
                               title=": ".join(str(v) for v in (e.get("source"), e.get("detail")) if v),
                               css_class=f"kgf-{e.get('kind') or 'rule'}"))
    return marks


@st.cache_resource
def load_graph(path: str):
    from kgfusion.knowledge.graph import KnowledgeGraph

    return KnowledgeGraph.load(path)


@st.cache_resource
def load_monitor(bundle: str, backend: str):
    from kgfusion.apps.finance.pipeline import FinanceMonitor

    return FinanceMonitor.from_paths(bundle, backend=backend, kg_path=KG_PATH, progress=False)


@st.cache_resource
def load_topics(kg_path: str) -> TopicCatalog:
    """The KG's topics and groups (the packaged ones when the graph has none or is missing)."""
    return TopicCatalog.from_graph(load_graph(kg_path)) if Path(kg_path).is_file() else TopicCatalog.default()


@st.cache_data(show_spinner=False)
def load_topic_counts(db: str, stamp: float) -> dict[str, int]:
    with FinanceStore(db, read_only=True) as store:
        return store.topic_counts()


@st.cache_data(show_spinner="Reading the database ...")
def load_dashboard(db: str, config: dict, stamp: float, topic: str | None, _topics: TopicCatalog):
    """KPIs, series (entity levels; the topic levels too when the store has topics) and alerts (all levels,
    only those about ``topic`` when given)."""
    cfg = FinanceConfig.from_dict(config)
    with FinanceStore(db, read_only=True) as store:
        stats = kpis(store)
        has_topics = stats["topics"] > 0
        levels = (*cfg.levels, *TOPIC_LEVELS) if has_topics else cfg.levels
        return stats, store_series(store, cfg, levels, _topics), \
            alerts_from_store(store, cfg, top=200, by="all" if has_topics else "entity",
                              topic=topic if has_topics else None, topics=_topics)


st.title("Financial sentiment monitor")
st.caption("Sentiment score per item = P(positive) - P(negative) after fusing the model with the finance "
           "rules; alerts are spikes in a company's or sector's negative share (robust z-score).")

with st.sidebar:
    st.header("Data")
    source = st.radio("Source", ["Demo database", "Upload a feed"])
    resolution = st.selectbox("Resolution", ["day", "hour"])
    min_volume = st.number_input("Minimum items per period", min_value=1, value=10)
    z_threshold = st.number_input("Alert at robust z >=", min_value=0.5, value=3.0, step=0.5)

config = FinanceConfig(resolution=resolution, min_volume=int(min_volume), z_threshold=float(z_threshold))
db = DEMO_DB
if source == "Upload a feed":
    upload = st.file_uploader("Feed (CSV or JSONL with a text column; timestamps for series)",
                              type=["csv", "jsonl", "ndjson"])
    text_col = st.text_input("Text column", "text")
    if upload is not None and st.button("Score feed"):
        work = Path(tempfile.mkdtemp(prefix="kgf-finance-"))
        feed = work / upload.name
        feed.write_bytes(upload.getvalue())
        monitor = copy.copy(load_monitor(str(BUNDLE), DEFAULT_BACKEND))  # the cached monitor stays untouched
        monitor.config = FinanceConfig.from_dict(monitor.config.to_dict() | {"text_col": text_col})
        try:
            with st.spinner("Scoring and linking ..."):
                summary = monitor.monitor(feed, work / "feed.duckdb")
        except KgfusionError as exc:  # e.g. the text column is missing: say which columns exist
            st.error(escape_markdown(exc))
            st.stop()
        st.session_state["uploaded_db"] = str(work / "feed.duckdb")
        st.session_state["uploaded_rejects"] = summary.rejects_path
        st.success(f"{summary.items} items scored, {summary.rejected} rejected, {summary.alerts} alerts")
    rejects_path = st.session_state.get("uploaded_rejects")
    if rejects_path and Path(rejects_path).is_file():
        st.download_button("Download rejected rows (file, row, reason)", Path(rejects_path).read_bytes(),
                           file_name="rejects.csv", mime="text/csv")
    if "uploaded_db" not in st.session_state:
        st.info("Upload a feed and press 'Score feed'.")
        st.stop()
    db = Path(st.session_state["uploaded_db"])

if not db.is_file():
    st.info(f"No database at {escape_markdown(db)}. Create one with `kgfusion finance monitor FEED --db {db}`.")
    st.stop()

stamp = db.stat().st_mtime
topic_counts = load_topic_counts(str(db), stamp)
topic_catalog = load_topics(str(KG_PATH)).with_labels(topic_counts)
topic = None
if topic_counts:
    present = [g for g in topic_catalog.groups if any(topic_catalog.group_of(t) == g for t in topic_counts)]
    options = [None, *topic_counts, *(f"group:{g}" for g in present)]
    with st.sidebar:
        topic = st.selectbox("Topic", options, key="topic_filter",
                             format_func=lambda o: "All topics" if o is None else f"{o[6:]} (topic group)"
                             if o.startswith("group:") else f"{o} ({topic_counts[o]:,} items)")
topic_labels = topic_catalog.resolve(topic)[1] if topic else list(topic_counts)
stats, series, alerts = load_dashboard(str(db), config.to_dict(), stamp, topic, topic_catalog)

cols = st.columns(4)
cols[0].metric("Items", f"{stats['items']:,}")
cols[1].metric("Linked to companies", f"{stats['linked_items']:,}")
cols[2].metric("Negative share", f"{stats['negative_share']:.1%}")
cols[3].metric("Alerts", f"{alerts.attrs.get('total', len(alerts)):,}")
st.caption(f"{stats['companies']} companies, {stats['first']} to {stats['last']}"
           + (f"; {stats['topic_items']:,} items in {stats['topics']} topics" if topic_counts else ""))

st.subheader("Alerts" + (f" about {escape_markdown(topic)}" if topic else ""))
if alerts.empty:
    st.write("No alerts at these settings.")
else:
    hidden = ["evidence", "entity", "subject"] + ([] if topic_counts else ["topic"])
    table = alerts.drop(columns=hidden).assign(period=alerts["period"].astype(str))
    st.dataframe(table.round(3), hide_index=True, width="stretch")

st.subheader("Topics")
if not topic_counts:
    st.info("No topics in this database: its items were scored by a model without a topic head. Score the feed "
            "with a bundle that has one (e.g. finsent-topics, `kgfusion finance monitor FEED --db DB --bundle "
            "data/models/finsent-topics --rescore`) for topic alerts, the heatmap and per-topic lines.")
else:
    by_topic = series[(series["level"] == "topic") & series["topic"].isin(topic_labels)]
    if by_topic.empty:
        st.write("No topic series at these settings.")
    else:
        st.markdown("**Negative share by topic and " + config.resolution + "**")
        # a time unit makes each cell one period wide (a bare period:T draws every rect from the axis origin)
        unit = "yearmonthdatehours" if config.resolution == "hour" else "yearmonthdate"
        heat = alt.Chart(by_topic).mark_rect().encode(
            x=alt.X("period:T", timeUnit=unit, title=None), y=alt.Y("topic:N", title=None),
            color=alt.Color("negative_share:Q", title="negative share", scale=alt.Scale(scheme="reds")),
            tooltip=["topic:N", "period:T", "volume:Q", "negative_share:Q", "mean_score:Q"])
        st.altair_chart(heat, width="stretch")
    per_company = series[(series["level"] == "company-topic") & series["topic"].isin(topic_labels)]
    if per_company.empty:
        st.write("No company has items of this topic.")
    else:
        names = per_company.assign(company=per_company["name"].str.split(" · ").str[0])
        ranked_c = names.groupby("company")["volume"].sum().sort_values(ascending=False)
        company = st.selectbox("Company (topic lines)", list(ranked_c.index), key="topic_company")
        lines = names[names["company"] == company]
        st.altair_chart(alt.Chart(lines).mark_line(point=True).encode(
            x=alt.X("period:T", title=None), y=alt.Y("negative_share:Q", title="negative share"),
            color=alt.Color("topic:N", title="topic"),
            tooltip=["topic:N", "period:T", "volume:Q", "negative_share:Q", "mean_score:Q"]), width="stretch")

st.subheader("Sentiment over time")
level = st.selectbox("Level", ["company", "sector", "industry"] + (["topic", "topic-group"] if topic_counts else []))
at_level = series[series["level"] == level]
if at_level.empty:
    st.write("No series at this level.")
else:
    ranked = at_level.groupby("name")["volume"].sum().sort_values(ascending=False)
    name = st.selectbox("Entity (by volume)", list(ranked.index))
    one = at_level[at_level["name"] == name]
    base = alt.Chart(one).encode(x=alt.X("period:T", title=None))
    chart = alt.vconcat(
        base.mark_line(color="#c0392b").encode(y=alt.Y("negative_share:Q", title="negative share"),
                                              tooltip=["period:T", "volume:Q", "negative_share:Q", "mean_score:Q"]),
        base.mark_line().encode(y=alt.Y("mean_score:Q", title="mean score")),
        base.mark_bar(opacity=0.5).encode(y=alt.Y("volume:Q", title="items")),
    )
    st.altair_chart(chart, width="stretch")

st.subheader("Why: drill into an alert")
if not alerts.empty:
    labels = [f"{a.period:%Y-%m-%d %H:%M} · {a.level} · {a.name} · z={a.z:.1f}" for a in alerts.itertuples()]
    pick = st.selectbox("Alert", range(len(labels)), format_func=lambda i: labels[i])
    alert = alerts.iloc[pick]
    for item in alert["evidence"]:
        item_topic = (f" · topic: {escape_markdown(item['topic'])}"
                      + (f" ({item['topic_prob']:.2f})" if item.get("topic_prob") is not None else "")
                      if item.get("topic") else "")
        st.markdown(f"**{escape_markdown(item['label'])}** {item['score']:+.2f} "
                    f"(confidence {item['confidence']:.2f}) · {escape_markdown(item['ts'])}{item_topic}")
        show_highlighted(item["text"], evidence_highlights(item["evidence"]))
        with st.expander("Evidence"):
            st.dataframe(pd.DataFrame(item["evidence"]), hide_index=True, width="stretch")
    st.markdown("**Knowledge-graph neighbourhood**")
    if KG_PATH.is_file():
        node = alert.get("subject") or alert["entity"]  # a company-topic alert: its company's neighbourhood
        st.dataframe(pd.DataFrame(neighbourhood(load_graph(str(KG_PATH)), node)), hide_index=True, width="stretch")
    from kgfusion.apps.finance.corrections_page import correction_form  # analysts' corrections (issue 16)

    correction_form(db, alert["evidence"], list(topic_counts))
