"""Finance app fixtures: the hand-made mini KG, the packaged finance rules, a keyword predictor."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2] / "data" / "finance"
NEG_WORDS = ("fell", "loss", "downgrade", "cuts", "falls")
POS_WORDS = ("rose", "increased", "raises", "rises")


class KeywordPredictor:
    """Stands in for core.predict.Predictor: probabilities from keywords (counts the texts it saw)."""

    labels = ["negative", "neutral", "positive"]

    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict_proba(self, texts):
        self.seen += list(texts)
        out = []
        for t in texts:
            low = t.lower()
            neg = sum(w in low for w in NEG_WORDS)
            pos = sum(w in low for w in POS_WORDS)
            out.append([0.8, 0.15, 0.05] if neg > pos else [0.05, 0.15, 0.8] if pos > neg else [0.1, 0.8, 0.1])
        return np.array(out, dtype=np.float32)


@pytest.fixture(scope="session")
def finance_graph():
    from kgfusion.knowledge.graph import KnowledgeGraph

    return KnowledgeGraph.load(DATA / "mini_finance.ttl")


@pytest.fixture(scope="session")
def finance_rules():
    from kgfusion.apps.finance import rule_kinds  # noqa: F401 - registers ambiguous_ticker
    from kgfusion.knowledge.rules import load_domain_rules

    return load_domain_rules("finance")


@pytest.fixture
def predictor():
    return KeywordPredictor()


@pytest.fixture
def monitor_factory(finance_graph, finance_rules):
    from kgfusion.apps.finance.config import FinanceConfig
    from kgfusion.apps.finance.pipeline import FinanceMonitor

    def make(predictor=None, **overrides):
        cfg = FinanceConfig(**({"min_volume": 3, "min_history": 5} | overrides))
        return FinanceMonitor(cfg, predictor or KeywordPredictor(), finance_graph, finance_rules, progress=False)

    return make


@pytest.fixture
def feed_path():
    return DATA / "feed.jsonl"


@pytest.fixture
def bad_feed_path():
    return DATA / "feed_bad.csv"
