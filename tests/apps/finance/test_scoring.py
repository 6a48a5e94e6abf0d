from __future__ import annotations

import numpy as np
import pytest

from kgfusion.apps.finance.config import FinanceConfig
from kgfusion.apps.finance.scoring import SentimentScorer, highlight_html, split_sentences
from kgfusion.core.errors import ConfigError


class Neutral:
    labels = ["negative", "neutral", "positive"]

    def __init__(self):
        self.calls = []

    def predict_proba(self, texts):
        self.calls.append(list(texts))
        return np.tile([0.2, 0.6, 0.2], (len(texts), 1))


def test_score_is_p_pos_minus_p_neg_and_rules_move_it(finance_rules):
    scorer = SentimentScorer(Neutral(), finance_rules)
    plain, bad, good = scorer.score(["The meeting is on Monday", "Profit fell after the downgrade", "Sales rose"])
    assert plain.score == pytest.approx(plain.probs["positive"] - plain.probs["negative"], abs=1e-6)
    assert plain.score == pytest.approx(0.0, abs=1e-6) and plain.rule_score == 0
    assert bad.score < 0 < good.score
    assert bad.model_probs == pytest.approx({"negative": 0.2, "neutral": 0.6, "positive": 0.2})
    rule_ids = [e.source for e in bad.decision.evidence if e.kind == "rule"]
    assert "fin.lex.downgrade" in rule_ids
    assert bad.decision.evidence[0].kind == "model"


def test_negation_flips_a_lexicon_term(finance_rules):
    scorer = SentimentScorer(Neutral(), finance_rules)
    plain, negated = scorer.score(["Layoffs planned", "No layoffs planned"])
    assert plain.rule_score < 0 < negated.rule_score


def test_override_forces_negative(finance_rules):
    (item,) = SentimentScorer(Neutral(), finance_rules).score(["The retailer files for bankruptcy protection"])
    assert item.label == "negative" and item.score == pytest.approx(-item.confidence)
    assert item.decision.evidence[0].source == "fin.pat.files_bankruptcy"


def test_rule_weight_zero_returns_the_model(finance_rules):
    (item,) = SentimentScorer(Neutral(), finance_rules, FinanceConfig(rule_weight=0)).score(["Profit fell"])
    assert item.label == "neutral" and item.probs == pytest.approx(item.model_probs)


def test_long_items_are_split_into_sentences_and_averaged(finance_rules):
    model = Neutral()
    scorer = SentimentScorer(model, finance_rules, FinanceConfig(long_chars=60))
    text = "Sales rose strongly this quarter. " * 3 + "Profit fell."
    scorer.score([text, "short"])
    assert len(model.calls[0]) == 5  # 4 sentences + the short item
    assert split_sentences("A b. C d! E") == ["A b.", "C d!", "E"]


def test_model_without_sentiment_labels_is_refused(finance_rules):
    class Wrong:
        labels = ["a", "b"]

    with pytest.raises(ConfigError, match="finance train"):
        SentimentScorer(Wrong(), finance_rules)


def test_highlight_marks_spans_and_escapes():
    html = highlight_html("<b>Profit fell</b> at $AAPL", [
        {"kind": "rule", "source": "fin.lex.fell", "weight": -0.6, "span": [10, 14]},
        {"kind": "kg", "source": "company", "span": [22, 27]}])
    assert "&lt;b&gt;Profit " in html and ">fell</mark>" in html and "#f8d7da" in html and ">$AAPL</mark>" in html
