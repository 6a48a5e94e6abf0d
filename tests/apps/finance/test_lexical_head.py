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
