"""Issue 15, monitoring half: topics next to sentiment in scoring, the store, series, alerts and the CLI."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kgfusion.apps.finance.cli import BY, group
from kgfusion.apps.finance.config import FinanceConfig
from kgfusion.apps.finance.pipeline import BY_CHOICES, alerts_from_store
from kgfusion.apps.finance.scoring import SentimentScorer
from kgfusion.apps.finance.store import FinanceStore
from kgfusion.apps.finance.topics import TOPIC_HEAD, TopicCatalog
from kgfusion.core.errors import ConfigError
from tests.apps.finance.conftest import DATA, TOPICS, KeywordPredictor, KeywordTopicPredictor

KG = str(DATA / "mini_finance.ttl")
LEGAL = "Legal | Regulation"


# -- scoring ------------------------------------------------------------------------------------
def test_a_topic_head_answers_with_sentiment_in_one_call(finance_rules):
    model = KeywordTopicPredictor()
    scorer = SentimentScorer(model, finance_rules)
    bad, other = scorer.score(["$AAPL lawsuit: shares fell", "the meeting is on Monday"])
    assert model.head_calls == 1  # both heads from one predict_heads call, predict_proba never used
    assert (bad.topic, bad.topic_prob) == (LEGAL, pytest.approx(0.9))
    assert other.topic == "General News | Opinion" and bad.label == "negative"
    topic_ev = [e for e in bad.decision.evidence if e.detail.startswith("topic head:")]
    assert len(topic_ev) == 1 and topic_ev[0].kind == "model" and topic_ev[0].detail == f"topic head: {LEGAL} 0.90"
    assert bad.decision.evidence[0].detail.startswith("p(")  # the sentiment model evidence stays first


def test_long_texts_average_topic_probabilities_by_sentence_length(finance_rules):
    model = KeywordTopicPredictor()
    scorer = SentimentScorer(model, finance_rules, FinanceConfig(long_chars=60))
    text = "The court lawsuit about the patents goes on for a long time now. The market opened."
    (item,) = scorer.score([text])
    s1, s2 = "The court lawsuit about the patents goes on for a long time now.", "The market opened."
    w1, w2 = len(s1), len(s2)
    small = 0.1 / (len(TOPICS) - 1)
    assert item.topic == LEGAL
    assert item.topic_prob == pytest.approx((w1 * 0.9 + w2 * small) / (w1 + w2), abs=1e-5)


def test_sentiment_only_models_keep_their_path_and_have_no_topic(finance_rules, predictor):
    scorer = SentimentScorer(predictor, finance_rules)
    (item,) = scorer.score(["$AAPL lawsuit: shares fell"])
    assert not scorer.has_topics and item.topic is None and item.topic_prob is None
    assert not any(e.detail.startswith("topic head:") for e in item.decision.evidence)
    assert predictor.seen == ["$AAPL lawsuit: shares fell"]  # predict_proba, as before


def test_a_tiny_multi_head_bundle_scores_topics(tiny_topic_bundle, finance_rules):
    from kgfusion.core.predict import Predictor

    predictor = Predictor.from_bundle(tiny_topic_bundle)
    assert TOPIC_HEAD in predictor.heads
    calls = []
    predictor.model.encoder.register_forward_hook(lambda *_: calls.append(1))
    items = SentimentScorer(predictor, finance_rules).score(["profit rose", "shares fell", "the market"])
    assert len(calls) == 1  # one forward pass for sentiment and topic
    assert [i.topic for i in items] == ["Earnings"] * 3 and all(i.topic_prob > 0.9 for i in items)
    assert {i.label for i in items} <= {"negative", "neutral", "positive"}


# -- store --------------------------------------------------------------------------------------
OLD_SCHEMA = """
CREATE TABLE items (
    id VARCHAR PRIMARY KEY, ts TIMESTAMP, source VARCHAR, text VARCHAR, ticker_hint VARCHAR,
    label VARCHAR, score DOUBLE, confidence DOUBLE, p_negative DOUBLE, p_neutral DOUBLE, p_positive DOUBLE,
    model_probs VARCHAR, rule_score DOUBLE, evidence VARCHAR, run_id VARCHAR
);
CREATE TABLE mentions (
    item_id VARCHAR, entity VARCHAR, ticker VARCHAR, company VARCHAR, industry_uri VARCHAR, industry VARCHAR,
    sector_uri VARCHAR, sector VARCHAR, match VARCHAR, surface VARCHAR, start_char INTEGER, end_char INTEGER,
    score DOUBLE, detail VARCHAR, PRIMARY KEY (item_id, entity)
);
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY, started TIMESTAMP, finished TIMESTAMP, input VARCHAR, rows_read BIGINT,
    items BIGINT, new_items BIGINT, rejected BIGINT, mentions BIGINT, model VARCHAR, backend VARCHAR,
    config VARCHAR, summary VARCHAR
);
INSERT INTO items VALUES ('old1', '2014-01-01 10:00:00', 'f', 'old text', NULL, 'negative', -0.5, 0.7, 0.6, 0.3,
    0.1, '{}', 0.0, '[]', 'r0');
INSERT INTO mentions VALUES ('old1', 'https://kgfusion.dev/id/company/AAPL', 'AAPL', 'Apple Inc.', NULL, NULL,
    NULL, NULL, 'cashtag', '$AAPL', 0, 5, 1.0, 'cashtag');
"""


def old_store(path):
    con = duckdb.connect(str(path))
    con.execute(OLD_SCHEMA)
    con.close()
    return path


def test_an_old_store_upgrades_in_place_and_keeps_its_rows(tmp_path, monitor_factory, topic_feed_path):
    db = old_store(tmp_path / "old.duckdb")
    with FinanceStore(db, read_only=True) as store:  # read-only: no upgrade, topics read as NULL
        assert not store.has_topic_columns and store.topic_counts() == {}
        assert store.items()["topic"].isna().all() and store.mention_frame()["topic"].isna().all()
        assert alerts_from_store(store, FinanceConfig(), by="topic").attrs["note"].startswith("this database has no")
    with FinanceStore(db) as store:
        cols = {r[0] for r in store.con.execute("DESCRIBE items").fetchall()}
        assert {"text_key", "topic", "topic_prob"} <= cols
        old = store.items(ids=["old1"]).iloc[0]
        assert (old["text"], old["label"], old["score"]) == ("old text", "negative", -0.5)
        assert pd.isna(old["topic"]) and pd.isna(old["topic_prob"])
    summary = monitor_factory(KeywordTopicPredictor()).monitor(topic_feed_path, db)
    assert summary.topic_head and summary.topics[LEGAL] == 144
    with FinanceStore(db, read_only=True) as store:
        assert store.counts()["items"] == 1 + 360
        assert store.items(ids=["old1"]).iloc[0]["text"] == "old text"  # the old row survives the new run
        assert store.topic_counts() == {"Earnings": 144, LEGAL: 144, "Markets": 72}


@pytest.fixture
def topic_db(monitor_factory, topic_feed_path, tmp_path):
    db = tmp_path / "topics.duckdb"
    monitor_factory(KeywordTopicPredictor()).monitor(topic_feed_path, db)
    return db


def test_stored_items_carry_topic_probability_and_evidence(topic_db):
    with FinanceStore(topic_db, read_only=True) as store:
        items = store.items()
    legal = items[items["text"].str.contains("lawsuit")]
    assert set(legal["topic"]) == {LEGAL} and np.allclose(legal["topic_prob"], 0.9)
    ev = json.loads(legal.iloc[0]["evidence"])
    assert any(e["kind"] == "model" and e["detail"] == f"topic head: {LEGAL} 0.90" for e in ev)


# -- series and alerts --------------------------------------------------------------------------
def test_topic_alerts_name_the_topic_and_cite_its_items(topic_db, monitor_factory):
    mon = monitor_factory(KeywordTopicPredictor())
    alerts = mon.alerts(topic_db, by="all")
    spiked = alerts[alerts["level"].isin(["topic", "company-topic", "sector-topic"])]
    assert set(spiked["level"]) == {"topic", "company-topic", "sector-topic"}
    assert set(spiked["topic"]) == {LEGAL} and (spiked["period"] == pd.Timestamp("2014-01-23")).all()
    assert set(spiked["name"]) == {LEGAL, f"AAPL · {LEGAL}", f"Information Technology · {LEGAL}"}
    for ev in spiked["evidence"]:
        assert ev and all(e["topic"] == LEGAL and "lawsuit" in e["text"] and e["label"] == "negative" for e in ev)
    group = alerts[alerts["level"] == "topic-group"]
    assert list(group["topic"]) == ["company-specific"]  # Legal rolls up to its KG group
    assert "Earnings" not in set(alerts["topic"].dropna())  # a steady positive topic does not alert


def test_topic_filter_and_by_narrow_the_alerts(topic_db, monitor_factory):
    mon = monitor_factory(KeywordTopicPredictor())
    every = mon.alerts(topic_db, by="all")
    legal = mon.alerts(topic_db, topic="LEGAL | regulation")  # any case; default by: the topic levels
    assert 0 < len(legal) < len(every) and set(legal["topic"]) == {LEGAL}
    assert mon.alerts(topic_db, topic="Earnings").empty
    grouped = mon.alerts(topic_db, topic="group:company-specific")
    assert "topic-group" in set(grouped["level"])
    company = mon.alerts(topic_db, by="company-topic", entity="AAPL")
    assert list(company["name"]) == [f"AAPL · {LEGAL}"]
    assert company.iloc[0]["subject"].endswith("/company/AAPL")
    with pytest.raises(ConfigError, match="unknown topic 'lawsuits'; allowed: .*Legal \\| Regulation"):
        mon.alerts(topic_db, topic="lawsuits")
    with pytest.raises(ConfigError, match="by='topics'"):
        mon.alerts(topic_db, by="topics")


def test_topic_group_series_roll_up_from_the_kg(topic_db, monitor_factory):
    mon = monitor_factory(KeywordTopicPredictor())
    series = mon.series(topic_db, ["topic", "topic-group"])
    groups = series[series["level"] == "topic-group"]
    assert set(groups["name"]) == {"company-specific", "markets"}
    day = groups[groups["period"] == pd.Timestamp("2014-01-01")].set_index("name")["volume"]
    assert day["company-specific"] == 12 and day["markets"] == 3  # Legal + Earnings; Markets


def test_sentiment_only_store_has_no_topic_alerts_and_says_why(monitor_factory, topic_feed_path, tmp_path):
    db = tmp_path / "plain.duckdb"
    summary = monitor_factory().monitor(topic_feed_path, db, by="topic")
    assert not summary.topic_head and summary.topics == {} and summary.alerts == 0
    assert "without a topic head" in summary.note
    with FinanceStore(db, read_only=True) as store:
        assert store.items()["topic"].isna().all()
    assert len(monitor_factory().alerts(db)) >= 1  # entity alerts as before


def test_topic_catalog_reads_the_built_graph():
    from kgfusion.knowledge.builders import build_graph

    catalog = TopicCatalog.from_graph(build_graph("finance", DATA.parents[1] / "data" / "kg" / "datasets"))
    assert len(catalog) == 20 and catalog.group_of("Fed | Central Banks") == "macro"
    assert set(catalog.labels) == set(TopicCatalog.default().labels) == set(TOPICS)
    assert catalog.resolve("macro") == ("topic", ["Macro"])  # the topic; the group is group:macro
    assert set(catalog.resolve("group:markets")[1]) == {"Markets", "Stock Movement", "Stock Commentary", "Financials"}
    assert set(BY.choices) == set(BY_CHOICES)


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_alerts_by_topic_text_json_and_errors(topic_db):
    common = ["alerts", "--db", str(topic_db), "--min-volume", "3"]
    res = CliRunner().invoke(group, [*common, "--by", "topic", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [a["topic"] for a in out["alerts"]] == [LEGAL] and out["alerts"][0]["evidence"][0]["topic"] == LEGAL
    res = CliRunner().invoke(group, [*common, "--by", "company-topic", "--entity", "aapl"])
    assert res.exit_code == 0 and f"topic='{LEGAL}'" in res.output and "AAPL · Legal" in res.output
    res = CliRunner().invoke(group, [*common, "--topic", "earnings"])
    assert res.exit_code == 0 and res.output.startswith("0 alerts about 'earnings'")
    res = CliRunner().invoke(group, [*common, "--topic", "lawsuits"])
    assert res.exit_code == 2 and "Invalid value for --topic" in res.output and "Legal | Regulation" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(group, [*common, "--by", "topic", "--level", "company"])
    assert res.exit_code == 2 and "'company' is not a level of --by topic" in res.output
    res = CliRunner().invoke(group, [*common, "--level", "sector-topic", "--json"])
    assert res.exit_code == 0 and {a["level"] for a in json.loads(res.output)["alerts"]} == {"sector-topic"}


def test_cli_score_and_monitor_carry_topics(tiny_topic_bundle, tmp_path):
    common = ["--bundle", str(tiny_topic_bundle), "--kg", KG, "--backend", "fp32"]
    res = CliRunner().invoke(group, ["score", str(DATA / "feed.jsonl"), *common, "--limit", "6", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["summary"]["topics"] == {"Earnings": 6}
    assert all(i["topic"] == "Earnings" and i["topic_prob"] > 0.9 for i in out["items"])
    res = CliRunner().invoke(group, ["score", str(DATA / "feed.jsonl"), *common, "--limit", "6"])
    assert res.exit_code == 0 and res.output.count(" Earnings ") == 6
    res = CliRunner().invoke(group, ["score", str(DATA / "feed.jsonl"), *common, "--limit", "6", "--topic",
                                     "markets", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["items"] == []  # the filter narrows the output
    res = CliRunner().invoke(group, ["score", str(DATA / "feed.jsonl"), *common, "--topic", "nope"])
    assert res.exit_code == 2 and "unknown topic 'nope'" in res.output
    db = tmp_path / "m.duckdb"
    res = CliRunner().invoke(group, ["monitor", str(DATA / "feed.jsonl"), "--db", str(db), *common, "--quiet",
                                     "--min-volume", "3", "--by", "all", "--topic", "earnings"])
    assert res.exit_code == 0, res.output
    assert "topics: Earnings 168" in res.output and "alerts about 'earnings'" in res.output
    with FinanceStore(db, read_only=True) as store:
        assert store.topic_counts() == {"Earnings": 168}


def test_cli_topic_with_a_sentiment_only_bundle_is_one_line(tiny_bundle):
    res = CliRunner().invoke(group, ["score", str(DATA / "feed.jsonl"), "--bundle", str(tiny_bundle), "--kg", KG,
                                     "--backend", "fp32", "--limit", "3", "--topic", "Earnings"])
    assert res.exit_code == 2 and "has no topic head" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(group, ["score", str(DATA / "feed.jsonl"), "--bundle", str(tiny_bundle), "--kg", KG,
                                     "--backend", "fp32", "--limit", "3", "--json"])
    assert res.exit_code == 0 and all(i["topic"] is None for i in json.loads(res.output)["items"])


def test_keyword_predictor_is_sentiment_only():
    assert not hasattr(KeywordPredictor(), "heads")
