"""Finance app fixtures: the hand-made mini KG, the packaged finance rules, keyword predictors (sentiment
only, and sentiment + topic like a multi-head bundle), a topic feed and a tiny multi-head bundle."""
from __future__ import annotations

import json
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


TOPICS = ["Analyst Update", "Fed | Central Banks", "Company | Product News", "Treasuries | Corporate Debt",
          "Dividend", "Earnings", "Energy | Oil", "Financials", "Currencies", "General News | Opinion",
          "Gold | Metals | Materials", "IPO", "Legal | Regulation", "M&A | Investments", "Macro", "Markets",
          "Politics", "Personnel Change", "Stock Commentary", "Stock Movement"]  # labels.csv order
TOPIC_WORDS = (("lawsuit", "Legal | Regulation"), ("downgrade", "Analyst Update"), ("profit", "Earnings"),
               ("loss", "Earnings"), ("sales", "Company | Product News"), ("market", "Markets"))


class KeywordTopicPredictor(KeywordPredictor):
    """A multi-head predictor: keyword sentiment and a keyword topic (first of TOPIC_WORDS found, else
    General News | Opinion, p=0.9), counting its predict_heads calls like one forward pass each."""

    heads = {"sentiment": KeywordPredictor.labels, "topic": TOPICS}
    primary_head = "sentiment"

    def __init__(self) -> None:
        super().__init__()
        self.head_calls = 0

    def predict_proba(self, texts):
        raise AssertionError("a multi-head model is asked once, through predict_heads")

    def predict_heads(self, texts):
        self.head_calls += 1
        sentiment = KeywordPredictor.predict_proba(self, texts)
        topic = np.full((len(texts), len(TOPICS)), 0.1 / (len(TOPICS) - 1), dtype=np.float32)
        for i, t in enumerate(texts):
            low = t.lower()
            name = next((n for w, n in TOPIC_WORDS if w in low), "General News | Opinion")
            topic[i, TOPICS.index(name)] = 0.9
        return {"sentiment": sentiment, "topic": topic}


def write_topic_feed(path: Path, days: int = 24, spike_day: int = 22) -> Path:
    """Per day: 6 AAPL lawsuit tweets (Legal | Regulation; 1 negative, all 6 on ``spike_day``), 6 MSFT profit
    tweets (Earnings, positive) and 3 unlinked market tweets (Markets, neutral)."""
    rows, n = [], 0
    for day in range(days):
        ts = f"2014-01-{day + 1:02d}T"
        for k in range(6):
            neg = k == 0 or day == spike_day
            text = (f"$AAPL lawsuit: shares fell, loss feared ({day}-{k})" if neg
                    else f"$AAPL lawsuit hearing set for court date ({day}-{k})")
            rows.append({"id": f"a{n}", "created_at": f"{ts}1{k}:00:00Z", "text": text})
            n += 1
        for k in range(6):
            rows.append({"id": f"m{n}", "created_at": f"{ts}1{k}:30:00Z",
                         "text": f"Microsoft $MSFT profit rose again ({day}-{k})"})
            n += 1
        for k in range(3):
            rows.append({"id": f"k{n}", "created_at": f"{ts}0{k}:30:00Z", "text": f"the market opened ({day}-{k})"})
            n += 1
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def topic_feed_path(tmp_path):
    return write_topic_feed(tmp_path / "topic_feed.jsonl")


@pytest.fixture(scope="session")
def tiny_topic_bundle(tiny_model_dir, tmp_path_factory):
    """A multi-head bundle (sentiment + the 20 topics) on the tiny random BERT; the topic head's bias makes
    every text "Earnings" (p ~ 0.99), so tests can assert the stored topic."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from kgfusion.core.bundle import save_bundle
    from kgfusion.core.multitask import MultiTaskModel

    model = MultiTaskModel(AutoModel.from_pretrained(tiny_model_dir),
                           {"sentiment": KeywordPredictor.labels, "topic": TOPICS}, "sentiment")
    with torch.no_grad():
        head = model.classifiers["topic"]
        head.weight.zero_()
        head.bias.zero_()
        head.bias[TOPICS.index("Earnings")] = 10.0
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    out = tmp_path_factory.mktemp("finance-topics") / "finsent-topics-tiny"
    return save_bundle(out, model, tok, task="sequence", method="full", base=tiny_model_dir,
                       labels=list(KeywordPredictor.labels), max_length=16)


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
