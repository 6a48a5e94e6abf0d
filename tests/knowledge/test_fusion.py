"""Fusion: log-linear math, overrides, KG type checks, span fusion, Decision JSON/explain, lexicon, business."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgfusion.apps.finance import rule_kinds as _finance_kinds  # noqa: F401 - the fixtures use ambiguous_ticker
from kgfusion.apps.recommend.business_rules import apply_business_rules
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.knowledge.fusion import (
    Decision,
    Evidence,
    FusionConfig,
    LexiconScorer,
    Override,
    apply_overrides,
    check_type,
    find_overrides,
    fuse_log_linear,
    fuse_spans,
    score_lexicon,
)
from kgfusion.knowledge.rules import load_domain_rules, load_rules
from kgfusion.knowledge.rules.matching import WordStartFilter, leading_words, word_starts

DATA = Path(__file__).resolve().parents[1] / "data" / "rules"
PROBS = {"negative": 0.2, "neutral": 0.5, "positive": 0.3}


@pytest.fixture(scope="module")
def rules():
    return load_rules(DATA / "valid")


def test_zero_rule_weight_leaves_model_probabilities_unchanged():
    d = fuse_log_linear(PROBS, -1.0, config=FusionConfig(rule_weight=0.0))
    assert d.scores == pytest.approx(PROBS)
    assert d.value == "neutral" and d.confidence == pytest.approx(0.5)


def test_log_linear_math_matches_formula():
    cfg = FusionConfig(rule_weight=2.0, temperature=0.5)
    d = fuse_log_linear(PROBS, 0.4, config=cfg)
    logits = {c: (math.log(p) + 2.0 * 0.4 * cfg.class_directions[c]) / 0.5 for c, p in PROBS.items()}
    z = sum(math.exp(v) for v in logits.values())
    assert d.scores == pytest.approx({c: math.exp(v) / z for c, v in logits.items()})
    assert sum(d.scores.values()) == pytest.approx(1.0)


def test_strong_rule_flips_and_weak_rule_does_not():
    assert fuse_log_linear(PROBS, -1.0, config=FusionConfig(rule_weight=5.0)).value == "negative"
    assert fuse_log_linear(PROBS, -0.05, config=FusionConfig(rule_weight=1.0)).value == "neutral"
    up = fuse_log_linear(PROBS, 0.5).scores["positive"]
    assert up > PROBS["positive"]  # a positive rule score pushes toward the positive class


def test_fusion_config_checks():
    with pytest.raises(ConfigError, match="temperature"):
        FusionConfig(temperature=0)
    with pytest.raises(ConfigError, match="rule_weight"):
        FusionConfig(rule_weight=-1)
    with pytest.raises(ConfigError, match="unknown key"):
        FusionConfig.from_dict({"rule_wieght": 1})
    cfg = FusionConfig(rule_weight=3.0)
    assert FusionConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(DataError):
        fuse_log_linear(PROBS, 2.0)
    with pytest.raises(DataError):
        fuse_log_linear({"a": -0.1, "b": 1.1})


def test_override_forces_value(rules):
    text = "Acme files for bankruptcy after a strong quarter."
    overrides = find_overrides(text, rules)
    assert [o.source for o in overrides] == ["t.pat.bankrupt"]
    d = fuse_log_linear({"negative": 0.05, "neutral": 0.05, "positive": 0.9}, 0.0, overrides=overrides)
    assert d.value == "negative" and d.confidence == pytest.approx(0.9)
    assert d.evidence[0].source == "t.pat.bankrupt" and "override" in d.evidence[0].detail
    assert any(e.kind == "model" for e in d.evidence)
    assert find_overrides("Acme did not file for bankruptcy.", rules) == []  # negated cue blocks it
    two = apply_overrides(d, [Override("positive", "b.rule", span=(9, 10)), Override("negative", "a.rule", span=(1, 2))])
    assert two.value == "negative" and "conflicting" in two.evidence[1].detail


def test_type_constraint_penalizes_or_rejects(rules):
    d = Decision("Apple Inc.", 0.8, subject="Apple")
    ok = check_type(d, "ORG", ["https://schema.org/Corporation"], rules)
    assert ok.confidence == pytest.approx(0.8) and ok.evidence[-1].kind == "kg"
    bad = check_type(d, "ORG", ["schema:Movie"], rules, entity="Apple")
    assert bad.confidence == pytest.approx(0.4) and bad.value == "Apple Inc."
    assert bad.evidence[-1].source == "t.type.org" and "not allowed" in bad.evidence[-1].detail
    rejected = check_type(Decision("DOID:1", 0.9), "Disease", ["schema:Drug"], rules)
    assert rejected.value is None and rejected.confidence == 0.0 and "rejected" in rejected.evidence[-1].detail
    assert check_type(d, "GPE", ["schema:Movie"], rules) == d  # no constraint for the label
    assert check_type(d, "ORG", [], rules) == d  # unlinked mention: nothing to check


def test_span_union_and_preferences():
    model = [(0, 5, "DISEASE", 0.9), (10, 20, "CHEMICAL", 0.6), (30, 35, "DISEASE", 0.7)]
    gaz = [(0, 5, "DISEASE", 1.0, "obo:DOID_1"), (12, 25, "DISEASE", 1.0), (40, 44, "CHEMICAL", 1.0)]
    union = fuse_spans(model, gaz, "union")
    assert [(s.start, s.end, s.label) for s in union] == [(0, 5, "DISEASE"), (12, 25, "DISEASE"), (30, 35, "DISEASE"),
                                                          (40, 44, "CHEMICAL")]
    first = union[0]
    assert first.sources == ("model", "gazetteer") and first.confidence == pytest.approx(1.0)
    assert {e.kind for e in first.evidence} == {"model", "kg"} and "obo:DOID_1" in first.evidence[1].detail
    assert len(union[1].evidence) == 2  # the longer gazetteer span keeps the model's overlapped evidence
    pm = fuse_spans(model, gaz, "prefer_model")
    assert [(s.start, s.end, s.label) for s in pm] == [(0, 5, "DISEASE"), (10, 20, "CHEMICAL"), (30, 35, "DISEASE"),
                                                       (40, 44, "CHEMICAL")]
    assert pm[1].sources == ("model",) and {e.source for e in pm[1].evidence} == {"model", "gazetteer"}
    pg = fuse_spans(model, gaz, "prefer_gazetteer")
    assert (pg[1].start, pg[1].end, pg[1].label) == (12, 25, "DISEASE")
    assert fuse_spans(list(reversed(model)), list(reversed(gaz)), "union") == union  # order independent
    with pytest.raises(ConfigError):
        fuse_spans(model, gaz, "intersection")  # type: ignore[arg-type]
    with pytest.raises(DataError):
        fuse_spans([(5, 5, "X")], [])


def test_decision_json_round_trip_and_explain():
    d = Decision(
        "negative", 0.91,
        [Evidence("model", "finbert-lora", "p(negative)=0.84", 0.84),
         Evidence("rule", "fin.lex.profit_warning", "'profit warning'", -0.8, (10, 24)),
         Evidence("kg", "kgfid:company/AAPL", "Apple Inc. in sector Information Technology")],
        subject="AAPL", scores={"negative": 0.91, "positive": 0.09},
    )
    again = Decision.from_json(d.to_json())
    assert again == d and again.evidence[1].span == (10, 24)
    text = d.explain()
    assert text.startswith("AAPL: negative (0.91) because: model finbert-lora p(negative)=0.84")
    assert "rule fin.lex.profit_warning 'profit warning' -0.80" in text
    assert "KG: Apple Inc. in sector Information Technology" in text
    assert len(d.explain_lines()) == 4
    with pytest.raises(DataError, match="unknown key"):
        Decision.from_dict({**d.to_dict(), "extra": 1})
    with pytest.raises(ConfigError):
        Decision("x", 1.5)
    with pytest.raises(ConfigError):
        Evidence("guess", "x")  # type: ignore[arg-type]


def test_score_lexicon_negation_intensifier_hedge(rules):
    score, ev = score_lexicon("Apple issued a profit warning.", rules)
    assert score == pytest.approx(-0.8) and [e.source for e in ev] == ["t.lex.profit_warning"]
    assert ev[0].span == (15, 29)
    neg, ev = score_lexicon("The firm did not report a loss.", rules)
    assert neg == pytest.approx(0.48) and "t.pat.not" in ev[0].detail
    sharp, _ = score_lexicon("Growth slowed: loss rose sharply.", rules)
    assert sharp == pytest.approx(0.5 - 0.9)
    hedged, _ = score_lexicon("There may be layoffs.", rules)
    assert hedged == pytest.approx(-0.35)
    far, _ = score_lexicon("Not that it matters to anyone here today, growth.", rules)
    assert far == pytest.approx(0.5)  # the cue's window does not reach
    wild, ev = score_lexicon("Analysts downgraded the stock.", rules)
    assert wild == pytest.approx(-0.7) and ev[0].source == "t.lex.downgrade"
    clipped, _ = score_lexicon("loss loss loss", rules)
    assert clipped == -1.0
    scorer = LexiconScorer(rules)
    assert score_lexicon("beat estimates", scorer)[0] == pytest.approx(0.8)


def test_packaged_finance_rules_end_to_end():
    rb = load_domain_rules("finance")
    scorer = LexiconScorer(rb)
    assert scorer.score("Operating profit rose to EUR 13.1 mn.")[0] > 0
    assert scorer.score("The company announced layoffs after a profit warning.")[0] < 0
    assert scorer.score("The company did not announce layoffs.")[0] > 0
    text = "Acme files for Chapter 11 bankruptcy protection."
    d = fuse_log_linear({"negative": 0.1, "neutral": 0.8, "positive": 0.1}, scorer.score(text)[0],
                        overrides=find_overrides(text, rb), model_name="finbert")
    assert d.value == "negative" and "fin.pat.files_bankruptcy" in d.explain()


def test_business_rules(rules):
    items = [
        ({"item_id": 1, "primary_genre": "Drama", "genres": ["Drama"], "year": 2010}, 0.50),
        ({"item_id": 2, "primary_genre": "Drama", "genres": ["Drama"], "year": 2000}, 0.45),
        ({"item_id": 3, "primary_genre": "Drama", "genres": ["Drama"], "year": 2001}, 0.44),
        ({"item_id": 4, "primary_genre": "Comedy", "genres": ["Comedy", "Horror"], "year": 2010}, 0.90),
        ({"item_id": 5, "primary_genre": "Comedy", "genres": ["Comedy"], "year": 1940}, 0.80),
        ({"item_id": 6, "primary_genre": "Comedy", "genres": ["Comedy"], "year": 2010}, 0.60),
        ({"item_id": 7, "primary_genre": "Comedy", "genres": ["Comedy"], "year": 2010}, 0.99),
    ]
    ranked = apply_business_rules(items, rules)
    assert [r.item["item_id"] for r in ranked] == [1, 2, 6]  # 4 horror, 5 old, 7 blocked; cap 2 dramas
    top = ranked[0]
    assert top.score == pytest.approx(0.5 * 1.5 * 1.1)
    assert [e.source for e in top.evidence] == ["t.biz.boost_drama", "t.biz.fresh"]
    assert apply_business_rules(items, rules, k=1)[0].item["item_id"] == 1
    assert apply_business_rules(items, []) and len(apply_business_rules(items, [])) == 7


def test_packaged_recommend_rules_load_and_apply():
    rb = load_domain_rules("recommend")
    items = [({"item_id": i, "primary_genre": "Drama", "genres": ["Drama"], "year": 1990 + i}, 1.0) for i in range(5)]
    ranked = apply_business_rules(items, rb)
    assert len(ranked) == 3 and ranked[0].item["item_id"] == 4  # freshest first after the small boost


@settings(max_examples=60, deadline=None)
@given(p=st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3), score=st.floats(-1, 1),
       w=st.floats(0, 10), t=st.floats(0.1, 5))
def test_fused_distribution_is_valid(p, score, w, t):
    probs = dict(zip(["negative", "neutral", "positive"], p, strict=True))
    d = fuse_log_linear(probs, score, config=FusionConfig(rule_weight=w, temperature=t))
    assert sum(d.scores.values()) == pytest.approx(1.0)
    assert 0.0 <= d.confidence <= 1.0 and d.scores[d.value] == max(d.scores.values())
    base = fuse_log_linear(probs, 0.0, config=FusionConfig(rule_weight=w, temperature=t)).scores
    if score > 0:  # a positive rule score never lowers the positive class relative to the negative one
        assert d.scores["positive"] / d.scores["negative"] >= base["positive"] / base["negative"] * (1 - 1e-9)


def test_lexicon_prefilters_change_no_score_or_evidence():
    """Skipping patterns by their word starts, and cues when nothing hit, gives what scanning every
    pattern gives."""
    from kgfusion.apps.common import repo_data_dir

    rb = load_domain_rules("finance")
    fast, full = LexiconScorer(rb), LexiconScorer(rb)
    always = WordStartFilter([])
    always.keep = lambda words: [True] * 30  # scan every pattern, as before the filters
    full._scorer_filter = full._cue_filter = always
    lines = (repo_data_dir() / "datasets" / "financial_phrasebank" / "Sentences_50Agree.txt").read_text(
        encoding="latin-1").splitlines()
    texts = [line.rsplit("@", 1)[0] for line in lines[:1500]]
    texts += ["Acme swung to a net loss; not expected to recover", "no profit rise", "may fall", "",
              "Profit ROSE sharply", "profit rose considerably", "sales didn't rise", "Profit rose, Kelvin"]
    with_hits = 0
    for text in texts:
        got, want = fast.score(text), full.score(text)
        assert got[0] == want[0] and [e.to_dict() for e in got[1]] == [e.to_dict() for e in want[1]], text
        with_hits += bool(want[1])
    assert with_hits > 300


def test_leading_words_of_regexes():
    def lw(pattern, flags=re.I):
        return leading_words(re.compile(pattern, flags))

    assert lw(r"\b(?:profit|loss(?:es)?)\s+rose") == ("profit", "loss")
    assert lw(r"\bconsiderabl[ey]\b|\bden(?:y|ied)") == ("considerabl", "den")
    assert lw(r"\bRUMOU?RED") == ("rumo",)  # the u is optional
    assert lw(r"\b(?:a[)|]b|cd)x") == ("a", "cd")  # "|" and ")" inside a class do not split
    for other in (r"\b(?:ab)?c", r"\babc|d", r"\b\w+", r"\b(ab|c)", r"\b[a-z]", r"n't\b", r"\b(?:)x"):
        assert lw(other) is None, other
    assert lw(r"\bab", 0) is None  # case-sensitive: lower-cased words would not do
    assert lw(r"\bab", re.I | re.X) is None


def test_word_start_filter_keeps_what_may_match():
    f = WordStartFilter([re.compile(r"\bprofit", re.I), re.compile(r"n't\b", re.I), re.compile(r"\bloss", re.I)])
    assert f.keep(word_starts("Profits fell")) == [True, True, False]
    assert f.keep(word_starts("nothing here")) == [False, True, False]
    assert f.keep(word_starts("caf\u00e9 profit")) == [True, True, True]  # not ASCII: scan them all
