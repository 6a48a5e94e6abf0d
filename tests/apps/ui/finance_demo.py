"""Test helper: the finance database the browser test and its AppTest twin read.

The test feed (tests/data/finance/feed.jsonl), doubled to 12 items a day (enough for the page's default
minimum volume of 10) with the alert day's negative tweets rewritten to TRICKY (cashtags, HTML-like text,
Markdown characters), scored by keyword predictors (no model) with a topic head: so the page shows its
topic filter, heatmap and per-topic lines, and the alert day is also an Earnings topic spike.
"""
from __future__ import annotations

import json
from pathlib import Path

from tests.apps.finance.conftest import DATA, TOPICS, KeywordTopicPredictor

# The finance feed's alert tweets: cashtags (two `$` = math in Markdown), HTML-like text, Markdown characters.
TRICKY = "<b>Sell</b> $KEY $PTEN $EIX $AAPL: shares fell after the downgrade, loss widens *now* _x_ #1 & 5$"
SPIKE_TOPIC = "Earnings"  # the topic of TRICKY (see EarningsLossPredictor)


class EarningsLossPredictor(KeywordTopicPredictor):
    """KeywordTopicPredictor, but a text saying "loss" is Earnings (p=0.9) even when it names a downgrade:
    the alert day's tweets then spike a topic that has a history (the daily "profit rose" tweets), so the
    topic levels raise an alert, not only the company / sector ones."""

    def predict_heads(self, texts):
        out = super().predict_heads(texts)
        topic = out["topic"]
        for i, text in enumerate(texts):
            if "loss" in text.lower():
                topic[i, :] = 0.1 / (len(TOPICS) - 1)
                topic[i, TOPICS.index(SPIKE_TOPIC)] = 0.9
        return out


def finance_graph_path() -> Path:
    """The repo's finance graph (S&P 500: $KEY, $EIX and $AAPL link), else the test suite's mini graph."""
    from kgfusion.apps.common import repo_data_dir

    path = repo_data_dir() / "kg" / "finance.ttl"
    return path if path.is_file() else DATA / "mini_finance.ttl"


def build_finance_demo_db(work: Path) -> Path:
    """Write the doubled feed to ``work`` and monitor it into ``work/finance.duckdb``; returns the db path."""
    from kgfusion.apps.finance.config import FinanceConfig
    from kgfusion.apps.finance.pipeline import FinanceMonitor
    from kgfusion.knowledge.graph import KnowledgeGraph
    from kgfusion.knowledge.rules import load_domain_rules

    rows = []
    for line in (DATA / "feed.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for copy in range(2):
            rows.append(dict(row, id=f"{row['id']}-{copy}", text=f"{TRICKY} ({row['id']}-{copy})"
                             if "downgrade" in row["text"] else row["text"] + (" again" if copy else "")))
    feed, db = work / "feed.jsonl", work / "finance.duckdb"
    feed.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    monitor = FinanceMonitor(FinanceConfig(), EarningsLossPredictor(), KnowledgeGraph.load(finance_graph_path()),
                             load_domain_rules("finance"), progress=False)
    summary = monitor.monitor(feed, db, by="all")
    assert summary.items == len(rows) and summary.topic_head, summary
    assert any(a["topic"] == SPIKE_TOPIC for a in summary.top_alerts), summary.top_alerts  # a topic alert
    return db
