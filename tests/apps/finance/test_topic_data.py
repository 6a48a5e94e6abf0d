"""The Twitter Financial News topic reader and split, and sentiment + topic training on a tiny BERT."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from kgfusion.apps.finance.train import (
    FinanceData,
    evaluate_finsent,
    load_finance_splits,
    load_topic_splits,
    read_topic_names,
    read_topic_tweets,
    train_finsent_examples,
)
from kgfusion.core.errors import DataError
from kgfusion.core.finetune import TrainConfig
from tests.conftest import make_sentiment_examples

TOPICS = ["Markets", "Health", "Pharma"]
WORDS = {"Markets": ["stock market", "market shares"], "Health": ["cancer patient", "disease fever"],
         "Pharma": ["aspirin drug", "the drug"]}


def write_sentiment(d):
    pb = make_sentiment_examples(20, seed=1)
    (d / "pb50.txt").write_bytes(("\n".join(f"{e.text} {i}@{e.label}" for i, e in enumerate(pb)) + "\n").encode("latin-1"))
    (d / "pball.txt").write_bytes(("\n".join(f"{e.text} {i}@{e.label}" for i, e in enumerate(pb) if i % 2) + "\n")
                                  .encode("latin-1"))
    codes = {"negative": "0", "positive": "1", "neutral": "2"}
    tw = make_sentiment_examples(20, seed=2)
    (d / "tw.csv").write_text("text,label\n" + "\n".join(f"tweet {e.text} {i},{codes[e.label]}"
                                                           for i, e in enumerate(tw)) + "\n")


def write_topics(d, n_per_topic: int = 30, extra_lines: tuple[str, ...] = ()):
    (d / "labels.csv").write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(TOPICS)))
    rng = random.Random(5)
    lines = []
    for i, name in enumerate(TOPICS):
        for k in range(n_per_topic):
            lines.append(f"a {rng.choice(WORDS[name])} {k} {i},{i}")
    rng.shuffle(lines)
    (d / "topics.csv").write_text("text,label\n" + "\n".join(lines + list(extra_lines)) + "\n")


@pytest.fixture
def data(tmp_path):
    write_sentiment(tmp_path)
    write_topics(tmp_path)
    return FinanceData(str(tmp_path / "pb50.txt"), str(tmp_path / "pball.txt"), str(tmp_path / "tw.csv"),
                       topics=str(tmp_path / "topics.csv"), topic_labels=str(tmp_path / "labels.csv"))


def _norm(text):
    return " ".join(text.lower().split())


def test_topic_names_come_from_labels_csv_in_id_order(tmp_path):
    write_topics(tmp_path)
    assert read_topic_names(tmp_path / "labels.csv") == TOPICS
    for body, message in (("name,id\n0,a\n1,b\n", "expected the header 'id,name'"),
                          ("id,name\n1,a\n0,b\n", r"line 2: expected '0,<topic name>'"),
                          ("id,name\n0,a\n1,a\n", "topic name 'a' appears twice"),
                          ("id,name\n0,a\n", "1 topic"),
                          ("id,name\n0,a\n1,\n", r"line 3: expected '1,<topic name>'")):
        (tmp_path / "bad.csv").write_text(body)
        with pytest.raises(DataError, match=message):
            read_topic_names(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="topic labels file not found"):
        read_topic_names(tmp_path / "missing.csv")


def test_the_shipped_labels_are_the_20_topics():
    from pathlib import Path

    names = read_topic_names(Path(__file__).resolve().parents[3] / "data" / "datasets"
                             / "twitter_financial_news_topic" / "labels.csv")
    assert len(names) == 20 and names[0] == "Analyst Update" and names[-1] == "Stock Movement"
    assert "Legal | Regulation" in names and "Fed | Central Banks" in names


def test_bad_rows_are_rejected_with_their_reason(tmp_path):
    write_topics(tmp_path, n_per_topic=2, extra_lines=(",1", "no label here,", "unknown id,7", "not a number,x"))
    read = read_topic_tweets(tmp_path / "topics.csv", TOPICS)
    assert len(read.examples) == 6 and {e.head for e in read.examples} == {"topic"}
    assert {e.label for e in read.examples} == set(TOPICS)
    reasons = sorted(r.reason for r in read.rejects)
    assert len(reasons) == 4
    assert reasons[0] == "empty or missing label" and reasons[1] == "empty or missing text"
    assert all("not in label map" in r for r in reasons[2:])
    assert {r.row for r in read.rejects} == {8, 9, 10, 11}  # header is line 1


def test_split_is_seeded_stratified_and_no_text_is_in_two_splits(data, tmp_path):
    a, b = load_topic_splits(data), load_topic_splits(data)
    assert [e.text for e in a.test] == [e.text for e in b.test] and [e.text for e in a.dev] == [e.text for e in b.dev]
    assert a.sizes() == {"topic_train": 72, "topic_dev": 9, "topic_test": 9}  # 80/10/10 of 90
    for part in (a.train, a.dev, a.test):
        assert {e.label for e in part} == set(TOPICS)  # stratified: every topic in every split
    texts = [{_norm(e.text) for e in part} for part in (a.train, a.dev, a.test)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert sorted(e.row for e in a.test) == a.rows["test"]
    data.seed = 14
    assert [e.text for e in load_topic_splits(data).test] != [e.text for e in a.test]


def test_duplicates_and_sentiment_texts_are_kept_out(data, tmp_path):
    sentiment = load_finance_splits(data)
    shared = sentiment.tests["twitter"][0].text
    lines = (tmp_path / "topics.csv").read_text().splitlines()
    lines += [f"{lines[1].rsplit(',', 1)[0].upper()},{lines[1].rsplit(',', 1)[1]}",  # a duplicate (case differs)
              f"{shared},0"]
    (tmp_path / "topics.csv").write_text("\n".join(lines) + "\n")
    topics = load_topic_splits(data, sentiment)
    reasons = {r.row: r.reason for r in topics.rejects}
    assert reasons[len(lines) - 1] == "duplicate of row 2"
    assert reasons[len(lines)].startswith("same text as a row of the sentiment data sets")
    assert _norm(shared) not in {_norm(e.text) for e in topics.train + topics.dev + topics.test}
    assert sum(topics.sizes().values()) == 90


def test_missing_topic_files_are_clear_errors(data, tmp_path):
    data.topics = str(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="topic training file not found"):
        load_topic_splits(data)
    data.topics = ""
    with pytest.raises(DataError, match="no topic data"):
        load_topic_splits(data)


def test_sentiment_and_topic_train_into_one_two_head_bundle(data, tiny_model_dir, tmp_path):
    from kgfusion.core.bundle import read_manifest
    from kgfusion.core.predict import Predictor

    splits = load_finance_splits(data)
    topics = load_topic_splits(data, splits)
    cfg = TrainConfig(base=tiny_model_dir, method="full", epochs=2, batch_size=16, max_length=16, lr=3e-3)
    res = train_finsent_examples(cfg, data, splits, tmp_path / "fin-topic", topics=topics, progress=False,
                                 onnx=False, command=["kgfusion", "x"])
    m = res["metrics"]
    for key in ("topic_accuracy", "topic_macro_f1", "dev_topic_macro_f1", "twitter_accuracy", "phrasebank50_accuracy"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["heads"] == ["sentiment", "topic"]
    manifest = read_manifest(tmp_path / "fin-topic")
    assert manifest.labels == ["negative", "neutral", "positive"]
    assert manifest.extra["heads"]["topic"] == TOPICS and manifest.extra["primary_head"] == "sentiment"
    split = json.loads((tmp_path / "fin-topic" / "split.json").read_text())
    assert split["twitter_topic"]["test"] == topics.rows["test"]
    info = json.loads((tmp_path / "fin-topic" / "data.json").read_text())
    assert info["split"]["sizes"]["topic_train"] == 72 and info["split"]["sizes"]["train"] == 96
    assert "topics" in info["files"] and "twitter_topic" not in info["label_counts"]["train"]
    card = (tmp_path / "fin-topic" / "MODEL_CARD.md").read_text()
    assert "Twitter Financial News Topic" in card and "and 3 financial topics from one forward pass" in card
    probs = Predictor.from_bundle(tmp_path / "fin-topic").predict_heads(["a stock market 1"])
    assert probs["sentiment"].shape == (1, 3) and probs["topic"].shape == (1, 3)
    assert np.isclose(probs["topic"].sum(), 1, atol=1e-5)
    ev = evaluate_finsent(tmp_path / "fin-topic", data, with_rules=False)
    assert ev["model"]["topic"]["accuracy"] == pytest.approx(m["topic_accuracy"], abs=1e-4)
    assert ev["model"]["twitter"]["accuracy"] == pytest.approx(m["twitter_accuracy"], abs=1e-4)
