"""FinanceMonitor: the library API (ingest -> score -> link -> store -> series -> alerts).

    monitor = FinanceMonitor.from_paths("data/models/finsent-full", backend="auto")
    summary = monitor.monitor("feed.jsonl.gz", "runs/finance.duckdb")
    alerts = monitor.alerts("runs/finance.duckdb", top=10)
"""
from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from kgfusion.apps.finance.alerts import detect_alerts, top_evidence
from kgfusion.apps.finance.config import FinanceConfig
from kgfusion.apps.finance.ingest import Item, content_key, item_id, no_items_error, read_feed
from kgfusion.apps.finance.linking import CompanyCatalog, CompanyLinker, Mention
from kgfusion.apps.finance.scoring import ScoredItem, SentimentScorer
from kgfusion.apps.finance.store import FinanceStore
from kgfusion.apps.finance.timeseries import build_series, entity_rows
from kgfusion.core.data import write_rejects
from kgfusion.core.errors import ConfigError

CHUNK = 2048  # items scored, linked and written per step (a crash loses at most one chunk)
CHUNK_ENV = "KGFUSION_FINANCE_CHUNK"  # overrides CHUNK, e.g. small chunks for the kill-and-resume test
# The columns of a scored frame (FinanceMonitor._item_row), also when no item was scored.
ITEM_COLUMNS = ("id", "ts", "source", "text", "ticker_hint", "label", "score", "confidence", "p_negative",
                "p_neutral", "p_positive", "model_probs", "rule_score", "evidence", "run_id", "text_key")


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
        self.model_name = model_name
        self.backend = backend
        self.progress = progress

    @classmethod
    def from_paths(cls, bundle: str | Path, *, backend: str = "auto", config: FinanceConfig | None = None,
                   kg_path: str | Path | None = None, rule_paths: Sequence[str | Path] = (),
                   fuzzy_linker: bool = False, progress: bool = True) -> FinanceMonitor:
        """Load the bundle, the finance KG and rule base (packaged defaults + ``rule_paths``)."""
        from kgfusion.apps.common import repo_data_dir
        from kgfusion.core.predict import Predictor
        from kgfusion.knowledge.graph import KnowledgeGraph
        from kgfusion.knowledge.rules import load_domain_rules

        config = config or FinanceConfig()
        graph = KnowledgeGraph.load(kg_path or repo_data_dir() / "kg" / "finance.ttl")
        rules = load_domain_rules("finance", list(rule_paths))
        from kgfusion.core.bundle import resolve_backend

        backend = resolve_backend(bundle, backend)  # "auto" -> what the bundle ships; stored with each run
        predictor = Predictor.from_bundle(bundle, backend=backend, batch_size=config.batch_size)  # type: ignore[arg-type]
        linker = build_fuzzy_linker(graph) if fuzzy_linker or config.fuzzy_names else None
        if linker is not None and not config.fuzzy_names:
            config = FinanceConfig.from_dict(config.to_dict() | {"fuzzy_names": True})
        return cls(config, predictor, graph, rules, linker, model_name=Path(bundle).name, backend=backend,
                   progress=progress)

    # -- per item --------------------------------------------------------------------------------
    def score(self, items: Sequence[Item | str]) -> pd.DataFrame:
        """Score and link items (or plain texts): one row per item with label, score, probs, mentions, evidence."""
        items = [it if isinstance(it, Item) else Item(item_id("text", it, None), it, None, "text", None, i + 1)
                 for i, it in enumerate(items)]
        frame, mentions = self._process(items, run_id="")
        if frame.empty:  # no items: the same columns, no rows
            return pd.DataFrame(columns=[*ITEM_COLUMNS, "tickers"])
        by_item = mentions.groupby("item_id")["ticker"].apply(list).to_dict() if not mentions.empty else {}
        return frame.assign(tickers=[by_item.get(i, []) for i in frame["id"]])

    def _process(self, items: Sequence[Item], run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        # copies of one text (retweets under several tickers, reposts) are scored once
        unique = list(dict.fromkeys(it.text for it in items))
        by_text = dict(zip(unique, self.scorer.score(unique)))
        rows, mention_rows = [], []
        for it in items:
            s = by_text[it.text]
            links = self.linker.link(it.text, it.ticker_hint)
            rows.append(self._item_row(it, s, links, run_id))
            mention_rows += [{"item_id": it.id, **_mention_row(m)} for m in links]
        return pd.DataFrame(rows), pd.DataFrame(mention_rows)

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
                "text_key": content_key(it.text)}

    # -- files -----------------------------------------------------------------------------------
    def monitor(self, path: str | Path, db: str | Path, *, rejects_path: str | Path | None = None,
                limit: int | None = None, rescore: bool = False, top: int = 5, encoding: str = "utf-8") -> RunSummary:
        """Ingest a feed into ``db`` (items already there are skipped unless ``rescore``), then alert.

        A feed with no usable item raises DataError (its rejects written first); ``db`` is not touched.
        """
        started = datetime.now(timezone.utc).replace(tzinfo=None)
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        feed = read_feed(path, self.config, limit=limit, encoding=encoding)
        stages["ingest"] = time.perf_counter() - t0
        rejects_out = None
        if feed.rejects:
            rejects_out = Path(rejects_path) if rejects_path else Path(f"{db}.rejects.csv")
            write_rejects(feed.rejects, rejects_out)
        if not feed.items:
            raise no_items_error(path, feed, rejects_out)
        run_id = started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        n_mentions = linked = new = 0
        with FinanceStore(db) as store:
            todo = feed.items
            if not rescore:
                known = store.existing_ids([it.id for it in todo])
                todo = [it for it in todo if it.id not in known]
            t1 = time.perf_counter()
            bar = tqdm(total=len(todo), disable=not self.progress, desc="score+link", unit="item")
            step = chunk_size()
            for start in range(0, len(todo), step):
                chunk = todo[start:start + step]
                frame, mentions = self._process(chunk, run_id)
                new += store.upsert(frame, mentions)
                n_mentions += len(mentions)
                linked += mentions["item_id"].nunique() if not mentions.empty else 0
                bar.update(len(chunk))
            bar.close()
            stages["score_link_store"] = time.perf_counter() - t1
            t2 = time.perf_counter()
            alerts = self._alerts(store, top=top)
            stages["series_alerts"] = time.perf_counter() - t2
            seconds = time.perf_counter() - t0
            summary = RunSummary(
                run_id=run_id, input=str(path), db=str(db), rows_read=feed.rows_read, items=len(feed.items),
                new_items=new, skipped_existing=len(feed.items) - len(todo), rejected=len(feed.rejects),
                reject_reasons=feed.summary()["reject_reasons"], rejects_path=str(rejects_out) if rejects_out else None,
                mentions=n_mentions, linked_items=int(linked), alerts=int(alerts.attrs.get("total", len(alerts))),
                seconds=round(seconds, 2), items_per_s=round(len(todo) / max(stages["score_link_store"], 1e-9), 1),
                truncated=feed.truncated, stage_seconds={k: round(v, 2) for k, v in stages.items()},
                top_alerts=_jsonable(alerts.head(top)),
            )
            store.record_run({"run_id": run_id, "started": started,
                              "finished": datetime.now(timezone.utc).replace(tzinfo=None), "input": str(path),
                              "rows_read": feed.rows_read, "items": len(feed.items), "new_items": new,
                              "rejected": len(feed.rejects), "mentions": n_mentions, "model": self.model_name,
                              "backend": self.backend, "config": self.config.to_dict(),
                              "summary": {k: v for k, v in summary.to_dict().items() if k != "top_alerts"}})
        return summary

    # -- series and alerts -----------------------------------------------------------------------
    def series(self, db: str | Path, levels: Sequence[str] | None = None) -> pd.DataFrame:
        with FinanceStore(db, read_only=True) as store:
            return build_series(store.mention_frame(), self.config.resolution, levels or self.config.levels,
                                self.config.max_companies)

    def alerts(self, db: str | Path, *, top: int | None = None, level: str | None = None,
               entity: str | None = None) -> pd.DataFrame:
        """Alerts over the whole store, strongest first, with an ``evidence`` column (top items)."""
        with FinanceStore(db, read_only=True) as store:
            return self._alerts(store, top=top, level=level, entity=entity)

    def _alerts(self, store: FinanceStore, *, top: int | None = None, level: str | None = None,
                entity: str | None = None) -> pd.DataFrame:
        return alerts_from_store(store, self.config, top=top, level=level, entity=entity)


def alerts_from_store(store: FinanceStore, config: FinanceConfig, *, top: int | None = None,
                      level: str | None = None, entity: str | None = None) -> pd.DataFrame:
    """Series -> alerts -> top evidence items; needs no model (used by the page and `finance alerts`)."""
    mentions = store.mention_frame()
    rows = entity_rows(mentions, config.levels, config.max_companies)
    series = build_series(mentions, config.resolution, config.levels, config.max_companies)
    alerts = detect_alerts(series, config)
    if level:
        alerts = alerts[alerts["level"] == level]
    if entity:
        wanted = entity.upper()
        alerts = alerts[(alerts["entity"] == entity) | (alerts["name"].astype(str).str.upper() == wanted)
                        | alerts["entity"].str.upper().str.endswith("/" + wanted)]
    total = len(alerts)
    if top is not None:
        alerts = alerts.head(top)
    alerts = alerts.reset_index(drop=True)
    ids = sorted(set(rows.loc[rows["entity"].isin(alerts["entity"]), "item_id"])) if not alerts.empty else []
    items = store.items(ids=ids) if ids else pd.DataFrame(columns=["id", "text", "label", "score", "confidence",
                                                                   "evidence", "ts"])
    alerts["evidence"] = top_evidence(alerts, rows, items, config.top_evidence, config.resolution)
    alerts.attrs["total"] = total
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
