"""The topic n-gram head in the finance app: fused into the topic the scorer stores, named in the evidence."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kgfusion.apps.finance.scoring import SentimentScorer
from kgfusion.core.bundle import add_file_to_bundle, verify_bundle
from kgfusion.core.lexical import fit_lexical_head, lexical_file
from kgfusion.core.predict import Predictor
from tests.apps.finance.conftest import TOPICS

ROOT = Path(__file__).resolve().parents[3]


def test_a_bundle_lexical_head_moves_the_stored_topic_and_says_so(tiny_topic_bundle, finance_rules, tmp_path):
    bundle = tmp_path / "with-ngrams"
    shutil.copytree(tiny_topic_bundle, bundle)
    texts = [f"{w} news {i}" for i in range(20) for w in ("fed rates", "oil output")]
    labels = ["Fed | Central Banks" if t.startswith("fed") else "Energy | Oil" for t in texts]
    head = fit_lexical_head(texts, labels, TOPICS, min_df=1)
    head.alpha = 0.95  # trust the n-grams over the tiny model's constant "Earnings"
    add_file_to_bundle(bundle, head.save(tmp_path / "h.npz"), lexical_file(bundle, "topic").name)
    verify_bundle(bundle)
    plain = SentimentScorer(Predictor.from_bundle(bundle, lexical=False), finance_rules).score(["fed rates up"])
    fused = SentimentScorer(Predictor.from_bundle(bundle), finance_rules).score(["fed rates up", "oil output cut"])
    assert plain[0].topic == "Earnings"
    assert [i.topic for i in fused] == ["Fed | Central Banks", "Energy | Oil"]
    details = [e.detail for e in fused[0].decision.evidence if "topic head" in e.detail]
    assert details and "fused with the n-gram head, weight 0.95" in details[0]


@pytest.mark.slow
def test_the_shipped_topic_bundle_rebuilds_its_ngram_head_and_fusion_helps(tmp_path):
    from click.testing import CliRunner

    from kgfusion.apps.finance.cli import group

    bundle = tmp_path / "finsent-topics"
    shutil.copytree(ROOT / "data" / "models" / "finsent-topics", bundle)
    result = CliRunner().invoke(group, ["lexical-head", "--bundle", str(bundle), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["fused"]["accuracy"] > report["model_only"]["accuracy"]
    assert report["fused"]["macro_f1"] > report["model_only"]["macro_f1"]
    assert json.loads((bundle / "metrics.json").read_text())["topic_fused_accuracy"] == report["fused"]["accuracy"]
    verify_bundle(bundle)


@pytest.fixture
def topic_data_dir(tmp_path):
    """The data sets build_topic_lexical_head reads: PhraseBank, Twitter sentiment and 120 two-topic tweets."""
    from tests.conftest import make_sentiment_examples

    root = tmp_path / "data" / "datasets"
    (root / "financial_phrasebank").mkdir(parents=True)
    pb = make_sentiment_examples(20, seed=1)
    lines = [f"{e.text} {i}@{e.label}\n" for i, e in enumerate(pb)]
    for name, keep in (("50", lines), ("66", lines[::2]), ("75", lines[::3]), ("All", lines[::6])):
        (root / "financial_phrasebank" / f"Sentences_{name}Agree.txt").write_bytes("".join(keep).encode("latin-1"))
    (root / "twitter_financial_news").mkdir()
    codes = {"negative": "0", "positive": "1", "neutral": "2"}
    tw = make_sentiment_examples(20, seed=2)
    (root / "twitter_financial_news" / "sent_train.csv").write_text(
        "text,label\n" + "".join(f"tweet {e.text} {i},{codes[e.label]}\n" for i, e in enumerate(tw)))
    tdir = root / "twitter_financial_news_topic"
    tdir.mkdir()
    (tdir / "labels.csv").write_text("id,name\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(TOPICS)))
    fed, oil = TOPICS.index("Fed | Central Banks"), TOPICS.index("Energy | Oil")
    (tdir / "train.csv").write_text("text,label\n" + "".join(
        f"fed rates decision {i},{fed}\n" if i % 6 == 0 else f"oil output cut {i},{oil}\n" for i in range(120)))
    return tmp_path / "data"


def test_lexical_head_picks_its_regularisation_on_the_dev_split_and_reports_the_search(tiny_topic_bundle,
                                                                                      topic_data_dir, tmp_path):
    from kgfusion.apps.finance.lexical_head import build_topic_lexical_head

    bundle = tmp_path / "b"
    shutil.copytree(tiny_topic_bundle, bundle)
    # unweighted classes, 5 oil tweets per fed one: a near-zero C leaves only the intercept, which says "oil"
    report = build_topic_lexical_head(bundle, topic_data_dir, settings={"C": [0.001, 50.0], "class_weight": None})
    search = report["c_search"]
    assert [row["C"] for row in search] == [0.001, 50.0]
    assert search[1]["dev_accuracy_plus_macro_f1"] > search[0]["dev_accuracy_plus_macro_f1"]
    assert report["fusion"]["C"] == 50.0
    assert report["fused"]["accuracy"] == 1.0  # the tiny model says "Earnings"; the n-grams fix every tweet
    card = (bundle / "MODEL_CARD.md").read_text()
    assert "C = 50 (of 0.001, 50) chosen on the topic dev split" in card
    verify_bundle(bundle)


def test_lexical_head_rejects_a_bad_regularisation_in_one_line(tiny_topic_bundle, topic_data_dir, tmp_path):
    from click.testing import CliRunner

    from kgfusion.apps.finance.cli import group

    bundle = tmp_path / "b"
    shutil.copytree(tiny_topic_bundle, bundle)
    result = CliRunner().invoke(group, ["lexical-head", "--bundle", str(bundle), "--data-dir", str(topic_data_dir),
                                        "--c", "-1"])
    assert result.exit_code != 0
    assert "lexical_topic.C must be a positive number" in result.output and "Traceback" not in result.output
