"""FinanceMonitor: the library API (ingest -> score -> link -> store -> series -> alerts).

    monitor = FinanceMonitor.from_paths("data/models/finsent-topics", backend="auto")
    summary = monitor.monitor("feed.jsonl.gz", "runs/finance.duckdb")
    alerts = monitor.alerts("runs/finance.duckdb", top=10)
    legal = monitor.alerts("runs/finance.duckdb", by="company-topic", topic="legal | regulation")

Topics: with a bundle that has a topic head (finsent-topics) every item is stored with its topic and
topic_prob; ``by`` picks the series alerts come from (BY_CHOICES: the entity levels, one topic level or
all) and ``topic`` keeps the alerts about one topic (or ``group:<name>`` for a topic group). A
sentiment-only bundle stores NULL topics; the topic levels are then empty and ``attrs["note"]`` says why.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from kgfusion.apps.finance.alerts import detect_alerts
from kgfusion.apps.finance.config import FinanceConfig
from kgfusion.apps.finance.ingest import FeedStream, Item, content_key, item_id, no_items_error
from kgfusion.apps.finance.linking import CompanyCatalog, CompanyLinker, Mention
from kgfusion.apps.finance.scoring import ScoredItem, SentimentScorer
from kgfusion.apps.finance.series_sql import store_evidence
from kgfusion.apps.finance.series_sql import store_series as sql_series
from kgfusion.apps.finance.store import MENTION_COLUMNS, FinanceStore
from kgfusion.apps.finance.timeseries import TOPIC_LEVELS
from kgfusion.apps.finance.topics import TopicCatalog
from kgfusion.core.data import write_rejects
from kgfusion.core.errors import ConfigError

if TYPE_CHECKING:
    from kgfusion.knowledge.graph import KgStore

CHUNK = 2048  # items scored, linked and written per step (a crash loses at most one chunk)
CHUNK_ENV = "KGFUSION_FINANCE_CHUNK"  # overrides CHUNK, e.g. small chunks for the kill-and-resume test
# The columns of a scored frame (FinanceMonitor.score_items), also when no item was scored.
ITEM_COLUMNS = ("id", "ts", "source", "text", "ticker_hint", "label", "score", "confidence", "p_negative",
                "p_neutral", "p_positive", "model_probs", "rule_score", "evidence", "run_id", "text_key", "topic",
                "topic_prob")
# What alerts are computed over: "entity" = the config's company/industry/sector levels (today's alerts),
# one topic level, or "all" of them.
BY_CHOICES = ("entity", *TOPIC_LEVELS, "all")
NO_TOPICS_NOTE = ("this database has no topics: its items were scored by a model without a topic head; score "
                  "them with a bundle that has one (e.g. finsent-topics) and --rescore")


def chunk_size() -> int:
    """Items per committed chunk: $KGFUSION_FINANCE_CHUNK if set (1..1_000_000), else CHUNK."""
    raw = os.environ.get(CHUNK_ENV, "").strip()
    if not raw:
        return CHUNK
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        raise ConfigError(f"{CHUNK_ENV}={raw!r}: use a whole number of items in 1..1000000, or unset it")
    return int(raw)


@dataclass
class RunSummary:
    run_id: str
    input: str
    db: str
    rows_read: int
    items: int
    new_items: int
    skipped_existing: int
    rejected: int
    reject_reasons: dict[str, int]
    rejects_path: str | None
    mentions: int
    linked_items: int
    alerts: int
    seconds: float
    items_per_s: float
    truncated: bool
    stage_seconds: dict[str, float] = field(default_factory=dict)
    top_alerts: list[dict[str, Any]] = field(default_factory=list)
    topic_head: bool = False  # the model answers topics
    topics: dict[str, int] = field(default_factory=dict)  # items of this run per topic, most frequent first
    note: str = ""  # e.g. why the topic levels are empty

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FinanceMonitor:
    """Scores, links and stores feed items; builds series and alerts from a store (see module docstring)."""

    def __init__(self, config: FinanceConfig, predictor, graph, rules, linker=None, *,
                 model_name: str = "finsent", backend: str = "", progress: bool = True) -> None:
        self.config = config
        self.graph = graph
        self.rules = rules
        self.catalog = CompanyCatalog.from_graph(graph, config)
        self.linker = CompanyLinker(self.catalog, rules, config, linker)
        self.scorer = SentimentScorer(predictor, rules, config, model_name)
        self.topics = TopicCatalog.from_graph(graph).with_labels(self.scorer.topic_labels or [])
        self.model_name = model_name
        self.backend = backend
        self.progress = progress
        self.source = None  # a batch.ModelSource when built from paths: lets Ray workers load the same model

    @classmethod
    def from_paths(cls, bundle: str | Path, *, backend: str = "auto", config: FinanceConfig | None = None,
                   kg_path: str | Path | None = None, rule_paths: Sequence[str | Path] = (),
                   fuzzy_linker: bool = False, progress: bool = True,
                   kg_store: KgStore | str | None = None) -> FinanceMonitor:
        """Load the bundle (its promoted registry version when there is one), the finance KG and rule base
        (packaged defaults + ``rule_paths``). ``kg_store``: memory | oxigraph:DIR (None: the command's --kg-store)."""
        from kgfusion.apps.common import chosen_kg_store, load_kg, promoted_bundle, repo_data_dir
        from kgfusion.core.predict import Predictor
        from kgfusion.knowledge.rules import load_domain_rules

        config = config or FinanceConfig()
        requested = str(bundle)  # what Ray workers load again (they resolve the registry the same way)
        graph = load_kg(kg_path or repo_data_dir() / "kg" / "finance.ttl", kg_store)
        rules = load_domain_rules("finance", list(rule_paths))
        from kgfusion.core.bundle import resolve_backend

        resolved = promoted_bundle(bundle)  # the registry's promoted version wins; model_name says which
        bundle = resolved.path
        backend = resolve_backend(bundle, backend)  # "auto" -> what the bundle ships; stored with each run
        predictor = Predictor.from_bundle(bundle, backend=backend, batch_size=config.batch_size)  # type: ignore[arg-type]
        linker = build_fuzzy_linker(graph) if fuzzy_linker or config.fuzzy_names else None
        if linker is not None and not config.fuzzy_names:
            config = FinanceConfig.from_dict(config.to_dict() | {"fuzzy_names": True})
        mon = cls(config, predictor, graph, rules, linker, model_name=resolved.label, backend=backend,
                  progress=progress)
        from kgfusion.apps.finance.batch import ModelSource
        from kgfusion.knowledge.graph import KgStore

        store = chosen_kg_store() if kg_store is None else KgStore.parse(kg_store)
        mon.source = ModelSource(requested, backend, config.to_dict(), str(kg_path) if kg_path else None,
                                 tuple(str(r) for r in rule_paths), str(store))
        return mon

    # -- per item --------------------------------------------------------------------------------
    def score(self, items: Sequence[Item | str]) -> pd.DataFrame:
        """Score and link items (or plain texts): one row per item with label, score, probs, mentions, evidence."""
        items = [it if isinstance(it, Item) else Item(item_id("text", it, None), it, None, "text", None, i + 1)
                 for i, it in enumerate(items)]
        frame, mentions = self.score_items(items)
        if frame.empty:  # no items: the same columns, no rows
            return pd.DataFrame(columns=[*ITEM_COLUMNS, "tickers"])
        by_item = mentions.groupby("item_id")["ticker"].apply(list).to_dict() if not mentions.empty else {}
        return frame.assign(tickers=[by_item.get(i, []) for i in frame["id"]])

    def score_items(self, items: Sequence[Item], *, run_id: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
        """One scoring + linking pass over feed items: ``(rows, mentions)``.

        ``rows``: one row per item, in input order, with the ITEM_COLUMNS (label, score, probs, topic,
        topic_prob, evidence JSON, ``run_id``); ``mentions``: one row per linked company mention with the
        store's MENTION_COLUMNS (``item_id`` joins ``rows.id``). Both keep their columns when empty. This is
        the pass ``monitor`` stores, ``score`` returns and the HTTP service answers from.
        """
        # copies of one text (retweets under several tickers, reposts) are scored once
        unique = list(dict.fromkeys(it.text for it in items))
        by_text = dict(zip(unique, self.scorer.score(unique)))
        rows, mention_rows = [], []
        for it in items:
            s = by_text[it.text]
            links = self.linker.link(it.text, it.ticker_hint)
            rows.append(self._item_row(it, s, links, run_id))
            mention_rows += [{"item_id": it.id, **_mention_row(m)} for m in links]
        # fixed columns, so callers can index an empty pass (no items, or no company linked)
        return pd.DataFrame(rows, columns=list(ITEM_COLUMNS)), pd.DataFrame(mention_rows, columns=MENTION_COLUMNS)

    @staticmethod
    def _item_row(it: Item, s: ScoredItem, links: list[Mention], run_id: str) -> dict[str, Any]:
        # KG evidence as plain dicts (the Evidence.to_dict shape): built per mention, so kept cheap
        kg = [{"kind": "kg", "source": m.company.uri, "weight": None,
               "detail": f"{m.detail} -> {m.company.label}; " + "; ".join(m.kg_facts()[1:]),
               "span": [m.start, m.end] if m.end > m.start else None} for m in links]
        evidence = [e.to_dict() for e in s.decision.evidence] + kg
        return {"id": it.id, "ts": it.ts, "source": it.source, "text": it.text, "ticker_hint": it.ticker_hint,
                "label": s.label, "score": s.score, "confidence": s.confidence,
                "p_negative": s.probs.get("negative"), "p_neutral": s.probs.get("neutral"),
                "p_positive": s.probs.get("positive"), "model_probs": json.dumps(s.model_probs),
                "rule_score": s.rule_score, "evidence": json.dumps(evidence, ensure_ascii=False), "run_id": run_id,
                "text_key": content_key(it.text), "topic": s.topic, "topic_prob": s.topic_prob}

    # -- files -----------------------------------------------------------------------------------
    def monitor(self, path: str | Path, db: str | Path, *, rejects_path: str | Path | None = None,
                limit: int | None = None, rescore: bool = False, top: int = 5, encoding: str = "utf-8",
                by: str = "entity", topic: str | None = None, engine: str = "local",
                shard_size: int | None = None) -> RunSummary:
        """Ingest a feed into ``db`` (items already there are skipped unless ``rescore``), then alert
        (``by`` / ``topic`` as in ``alerts``).

        The feed streams through the core batch engine in shards of ``shard_size`` items (default
        ``chunk_size()``), scored in-process or on Ray (``engine``); this process stores each finished
        shard (one DuckDB writer), so a killed run loses at most the shards in flight.
        A feed with no usable item raises DataError (its rejects written first); ``db`` is not touched.
        """
        from kgfusion.core import batch_engine as be

        check_by(by)
        be.check_engine(engine)
        if topic:
            self.topics.resolve(topic)  # an unknown topic fails before any work
        if engine == "ray" and self.source is None:
            raise ConfigError("engine='ray' needs a monitor built by FinanceMonitor.from_paths (Ray workers load "
                              "the bundle themselves); use engine='local'")
        step = shard_size or chunk_size()
        be.check_shard_size(step)
        started = datetime.now(timezone.utc).replace(tzinfo=None)
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        feed = FeedStream(path, self.config, limit=limit, encoding=encoding)
        items = iter(feed)
        head = list(islice(items, step))  # a feed without any item fails here, before the store opens
        stages["ingest"] = time.perf_counter() - t0

        def write_rejects_file() -> Path | None:
            if not feed.rejects:
                return None
            out = Path(rejects_path) if rejects_path else Path(f"{db}.rejects.csv")
            write_rejects(feed.rejects, out)
            return out

        if not head:
            raise no_items_error(path, feed.result(), write_rejects_file())
        run_id = started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        n_mentions = linked = new = 0
        counts = {"todo": 0}
        run_topics: dict[str, int] = {}
        with FinanceStore(db) as store:

            def todo_items():
                for chunk in be.chunked(chain(head, items), step):
                    if not rescore:
                        known = store.existing_ids([it.id for it in chunk])
                        chunk = [it for it in chunk if it.id not in known]
                    counts["todo"] += len(chunk)
                    yield from chunk

            def commit(_i: int, _items: list[Item], result: tuple[pd.DataFrame, pd.DataFrame]) -> None:
                nonlocal new, n_mentions, linked
                frame, mentions = result
                new += store.upsert(frame, mentions)
                for name, n in frame["topic"].dropna().value_counts().items():
                    run_topics[str(name)] = run_topics.get(str(name), 0) + int(n)
                n_mentions += len(mentions)
                linked += mentions["item_id"].nunique() if not mentions.empty else 0

            t1 = time.perf_counter()
            worker = be.WorkerSpec("kgfusion.apps.finance.batch:monitor_worker",
                                   {"source": self.source.to_kwargs() if self.source else {}, "run_id": run_id})
            be.run_shards(be.chunked(todo_items(), step), worker, engine=engine, on_result=commit,  # type: ignore[arg-type]
                          local_fn=lambda chunk: self.score_items(chunk, run_id=run_id),
                          describe=lambda i, chunk: f"shard {i + 1} (rows {chunk[0].row}..{chunk[-1].row})",
                          resume_hint=f"finished shards are stored in {db}; rerun to resume",
                          progress=self.progress, desc="score+link", unit="item")
            rejects_out = write_rejects_file()
            todo = counts["todo"]
            stages["score_link_store"] = time.perf_counter() - t1
            t2 = time.perf_counter()
            alerts = self._alerts(store, top=top, by=by, topic=topic)
            stages["series_alerts"] = time.perf_counter() - t2
            seconds = time.perf_counter() - t0
            summary = RunSummary(
                run_id=run_id, input=str(path), db=str(db), rows_read=feed.rows_read, items=feed.items,
                new_items=new, skipped_existing=feed.items - todo, rejected=len(feed.rejects),
                reject_reasons=feed.summary()["reject_reasons"], rejects_path=str(rejects_out) if rejects_out else None,
                mentions=n_mentions, linked_items=int(linked), alerts=int(alerts.attrs.get("total", len(alerts))),
                seconds=round(seconds, 2), items_per_s=round(todo / max(stages["score_link_store"], 1e-9), 1),
                truncated=feed.truncated, stage_seconds={k: round(v, 2) for k, v in stages.items()},
                top_alerts=_jsonable(alerts.head(top)), topic_head=self.scorer.has_topics,
                topics=dict(sorted(run_topics.items(), key=lambda kv: (-kv[1], kv[0]))),
                note=str(alerts.attrs.get("note", "")),
            )
            store.record_run({"run_id": run_id, "started": started,
                              "finished": datetime.now(timezone.utc).replace(tzinfo=None), "input": str(path),
                              "rows_read": feed.rows_read, "items": feed.items, "new_items": new,
                              "rejected": len(feed.rejects), "mentions": n_mentions, "model": self.model_name,
                              "backend": self.backend, "config": self.config.to_dict(),
                              "summary": {k: v for k, v in summary.to_dict().items() if k != "top_alerts"}})
        return summary

    # -- series and alerts -----------------------------------------------------------------------
    def series(self, db: str | Path, levels: Sequence[str] | None = None) -> pd.DataFrame:
        """Series at ``levels`` (default: the config's entity levels; any of timeseries.LEVELS)."""
        with FinanceStore(db, read_only=True) as store:
            return store_series(store, self.config, levels or self.config.levels, self.topics)

    def alerts(self, db: str | Path, *, top: int | None = None, level: str | None = None,
               entity: str | None = None, by: str = "entity", topic: str | None = None) -> pd.DataFrame:
        """Alerts over the whole store, strongest first, with an ``evidence`` column (top items)."""
        with FinanceStore(db, read_only=True) as store:
            return self._alerts(store, top=top, level=level, entity=entity, by=by, topic=topic)

    def _alerts(self, store: FinanceStore, *, top: int | None = None, level: str | None = None,
                entity: str | None = None, by: str = "entity", topic: str | None = None) -> pd.DataFrame:
        return alerts_from_store(store, self.config, top=top, level=level, entity=entity, by=by, topic=topic,
                                 topics=self.topics)


def check_by(by: str) -> None:
    if by not in BY_CHOICES:
        raise ConfigError(f"by={by!r}; allowed: {', '.join(BY_CHOICES)}")


def levels_for(by: str, config: FinanceConfig, topic_kind: str | None = None) -> tuple[str, ...]:
    """The series levels of a ``by`` choice; with a topic filter, "entity" means the topic levels (an
    entity-level series has no topic), a group filter adds the topic-group level."""
    check_by(by)
    if by == "entity":
        if topic_kind is None:
            return tuple(config.levels)
        return ("topic", "company-topic", "sector-topic") + (("topic-group",) if topic_kind == "group" else ())
    if by == "all":
        return (*config.levels, *TOPIC_LEVELS)
    return (by,)


def store_catalog(store: FinanceStore, topics: TopicCatalog | None = None) -> TopicCatalog:
    """The topic catalog (default: the packaged topics) plus any other topic the store holds."""
    return (topics or TopicCatalog.default()).with_labels(store.topic_counts())


def store_series(store: FinanceStore, config: FinanceConfig, levels: Sequence[str],
                 topics: TopicCatalog | None = None) -> pd.DataFrame:
    """Series of a store at ``levels`` (entity and/or topic levels), aggregated inside DuckDB (series_sql)."""
    return sql_series(store, levels, config.resolution, config.max_companies, store_catalog(store, topics))


def alerts_from_store(store: FinanceStore, config: FinanceConfig, *, top: int | None = None,
                      level: str | None = None, entity: str | None = None, by: str = "entity",
                      topic: str | None = None, topics: TopicCatalog | None = None) -> pd.DataFrame:
    """Series -> alerts -> top evidence items; needs no model (used by the page and `finance alerts`).

    ``by``: BY_CHOICES; ``topic``: a topic name or ``group:<name>`` (any case; ConfigError naming the allowed
    ones otherwise) keeps the alerts about it; ``topics``: the TopicCatalog (default: the packaged topics)."""
    catalog = store_catalog(store, topics)
    kind, wanted = catalog.resolve(topic) if topic else (None, [])
    levels = levels_for(by, config, kind)
    # per-period counts come from a SQL GROUP BY: pandas holds periods x keys rows, not every item
    alerts = detect_alerts(sql_series(store, levels, config.resolution, config.max_companies, catalog), config)
    if topic:
        names = set(wanted) | ({catalog.group_of(wanted[0])} if kind == "group" and wanted else set())
        alerts = alerts[alerts["topic"].isin(names)]
    if level:
        alerts = alerts[alerts["level"] == level]
    if entity:
        wanted_e = entity.upper()
        subject = alerts["subject"].fillna("").astype(str)
        alerts = alerts[(alerts["entity"] == entity) | (subject == entity)
                        | (alerts["name"].astype(str).str.upper() == wanted_e)
                        | (alerts["name"].astype(str).str.upper().str.split(" · ").str[0] == wanted_e)
                        | alerts["entity"].str.upper().str.endswith("/" + wanted_e)
                        | subject.str.upper().str.endswith("/" + wanted_e)]
    total = len(alerts)
    if top is not None:
        alerts = alerts.head(top)
    alerts = alerts.reset_index(drop=True)
    # evidence: only the top items of the alerts kept, fetched by one query
    alerts["evidence"] = store_evidence(store, alerts, levels, config.top_evidence, config.resolution,
                                        config.max_companies, catalog)
    alerts.attrs["total"] = total
    if any(lv in TOPIC_LEVELS for lv in levels) and not store.topic_counts():
        alerts.attrs["note"] = NO_TOPICS_NOTE
    return alerts


def _mention_row(m: Mention) -> dict[str, Any]:
    r = m.to_row()
    return {"entity": r["entity"], "ticker": r["ticker"], "company": r["company"], "industry_uri": r["industry_uri"],
            "industry": r["industry"], "sector_uri": r["sector_uri"], "sector": r["sector"], "match": r["match"],
            "surface": r["surface"], "start_char": r["start"], "end_char": r["end"], "score": r["score"],
            "detail": r["detail"]}


def _jsonable(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso", default_handler=str))


def build_fuzzy_linker(graph):
    """kgfusion.knowledge.linker.Linker over the KG's companies (EntityIndex with the packaged MiniLM encoder)."""
    from kgfusion.core.embed import Embedder
    from kgfusion.knowledge.index import EntityIndex
    from kgfusion.knowledge.linker import Linker

    records = graph.entity_records(["schema:Corporation"])
    return Linker(EntityIndex(records, Embedder()), records, threshold=0.85)
