"""The finance sentiment recipe end to end on a tiny random BERT and tiny files: agreement-weighted soft
labels, KG company-name swaps, a 2-seed ensemble distilled into a student, ONNX int8, recipe.json."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from kgfusion.apps.finance.recipe import agreement_levels, agreement_targets, kg_company_terms
from kgfusion.core.data import TextExample
from kgfusion.core.recipe import run_recipe
from tests.apps.finance.conftest import DATA
from tests.conftest import make_sentiment_examples


@pytest.fixture
def fin_data(tmp_path):
    root = tmp_path / "data"
    pbdir = root / "datasets" / "financial_phrasebank"
    pbdir.mkdir(parents=True)
    pb = make_sentiment_examples(20, seed=1)
    lines = [f"{e.text} Apple {i}@{e.label}" if i % 3 == 0 else f"{e.text} {i}@{e.label}" for i, e in enumerate(pb)]
    for name, keep in (("50", lines), ("66", lines[::2]), ("75", lines[::3]), ("All", lines[::6])):
        (pbdir / f"Sentences_{name}Agree.txt").write_bytes(("\n".join(keep) + "\n").encode("latin-1"))
    twdir = root / "datasets" / "twitter_financial_news"
    twdir.mkdir(parents=True)
    codes = {"negative": "0", "positive": "1", "neutral": "2"}
    tw = make_sentiment_examples(20, seed=2)
    (twdir / "sent_train.csv").write_text("text,label\n" + "\n".join(
        f"tweet {e.text} {i},{codes[e.label]}" for i, e in enumerate(tw)) + "\n")
    (root / "kg").mkdir()
    shutil.copyfile(DATA / "mini_finance.ttl", root / "kg" / "finance.ttl")
    return root


def test_agreement_levels_and_targets(fin_data):
    levels = agreement_levels(fin_data / "datasets" / "financial_phrasebank")
    assert sorted(set(levels.values())) == [0.5, 0.66, 0.75, 1.0]
    rows = [TextExample(t, "positive", i) for i, t in enumerate(levels)]
    soft, weights = agreement_targets(rows, levels, "soft")
    assert weights is None and all(abs(float(s.sum()) - 1) < 1e-6 for s in soft)
    assert {round(float(s[2]), 2) for s in soft} == {0.5, 0.66, 0.75, 1.0}  # gold 'positive' is index 2
    _, w = agreement_targets(rows, levels, "weight")
    assert sorted(set(w)) == [0.5, 0.66, 0.75, 1.0]


def test_kg_company_terms_are_names_not_tickers(fin_data):
    terms = kg_company_terms(fin_data)
    assert "Apple Inc." in terms and not any(t.startswith("$") or t.isupper() and len(t) <= 5 for t in terms)


def test_finance_recipe_end_to_end(fin_data, tiny_model_dir, tmp_path):
    from kgfusion.core.bundle import read_manifest
    from kgfusion.core.predict import Predictor

    recipe = {
        "name": "finsent-tiny", "trainer": "kgfusion.apps.finance.recipe:train_recipe",
        "data": {"agreement": "soft"},
        "train": {"base": tiny_model_dir, "method": "full", "epochs": 2, "batch_size": 16, "max_length": 24,
                  "lr": 3e-3, "schedule": "cosine", "layer_lr_decay": 0.8},
        "augment": {"term_swap": {"rate": 1.0, "copies": 1}},
        "ensemble": {"seeds": [1, 2], "distill": True},
    }
    path = tmp_path / "finsent.json"
    path.write_text(json.dumps(recipe))
    res = run_recipe(path, tmp_path / "bundle", data_dir=fin_data, work_dir=tmp_path / "work", progress=False)
    m = res["metrics"]
    for key in ("phrasebank50_accuracy", "twitter_onnx_int8_accuracy", "ensemble_twitter_accuracy", "onnx_int8_mb"):
        assert key in m, key
    manifest = read_manifest(tmp_path / "bundle")
    assert "model.safetensors" not in manifest.files and "recipe.json" in manifest.files
    probs = Predictor.from_bundle(tmp_path / "bundle", backend="onnx-int8").predict_proba(["profit rose"])
    assert probs.shape == (1, 3) and np.isclose(probs.sum(), 1, atol=1e-4)
    # the swap added copies with other company names: the training rows recorded grew
    data_info = json.loads((tmp_path / "work" / "seed-1" / "data.json").read_text())
    assert data_info["split"]["sizes"]["train"] > 96


def _add_topic_data(root):
    tdir = root / "datasets" / "twitter_financial_news_topic"
    tdir.mkdir(parents=True)
    (tdir / "labels.csv").write_text("id,name\n0,Markets\n1,Health\n2,Pharma\n")
    words = ["stock market", "cancer patient", "aspirin drug"]
    (tdir / "train.csv").write_text("text,label\n" + "".join(f"a {words[i % 3]} {i},{i % 3}\n" for i in range(60)))


def test_finance_recipe_trains_sentiment_and_topic_heads(fin_data, tiny_model_dir, tmp_path):
    from kgfusion.core.bundle import read_manifest
    from kgfusion.core.predict import Predictor

    _add_topic_data(fin_data)
    recipe = {
        "name": "finance-multitask-tiny", "trainer": "kgfusion.apps.finance.recipe:train_recipe",
        "data": {"heads": ["sentiment", "topic"], "head_weights": {"topic": 0.5}, "agreement": "weight"},
        "train": {"base": tiny_model_dir, "method": "full", "epochs": 2, "batch_size": 16, "max_length": 24,
                  "lr": 3e-3},
        "augment": {"term_swap": {"rate": 1.0, "copies": 1}},
    }
    path = tmp_path / "mt.json"
    path.write_text(json.dumps(recipe))
    res = run_recipe(path, tmp_path / "bundle", data_dir=fin_data, work_dir=tmp_path / "work", progress=False)
    m = res["metrics"]
    for key in ("topic_accuracy", "topic_macro_f1", "topic_onnx_int8_accuracy", "phrasebank50_accuracy",
                "twitter_onnx_int8_accuracy"):
        assert 0.0 <= m[key] <= 1.0, key
    manifest = read_manifest(tmp_path / "bundle")
    assert "model.safetensors" not in manifest.files and manifest.extra["heads"]["topic"] == ["Markets", "Health", "Pharma"]
    config = json.loads((tmp_path / "bundle" / "train_config.json").read_text())
    assert config["head_weights"] == {"topic": 0.5} and config["primary_head"] == "sentiment"
    onnx = Predictor.from_bundle(tmp_path / "bundle", backend="onnx-int8")
    probs = onnx.predict_heads(["a stock market 3"])
    assert probs["sentiment"].shape == (1, 3) and probs["topic"].shape == (1, 3)
    assert onnx.predict_proba(["profit rose"]).shape == (1, 3)  # the finance monitor's call: sentiment


@pytest.mark.parametrize(("data", "ensemble", "message"), [
    ({"heads": ["topic"]}, {}, r"data.heads=\['topic'\]"),
    ({"heads": ["sentiment", "sectors"]}, {}, "data.heads="),
    ({"select_on": "topic"}, {}, "data.select_on needs data.heads"),
    ({"heads": ["sentiment", "topic"], "agreement": "soft"}, {}, "agreement='soft' is not supported"),
    ({"heads": ["sentiment", "topic"]}, {"seeds": [1, 2]}, "ensembles are sentiment-only"),
])
def test_finance_recipe_heads_are_checked(data, ensemble, message):
    from kgfusion.apps.finance.recipe import recipe_heads
    from kgfusion.core.errors import ConfigError
    from kgfusion.core.recipe import Recipe

    recipe = Recipe(name="x", trainer="kgfusion.apps.finance.recipe:train_recipe", train={}, data=data,
                    ensemble=ensemble)
    with pytest.raises(ConfigError, match=message):
        recipe_heads(recipe)


def test_the_multitask_recipe_has_the_cosine_llrd_schedule():
    from pathlib import Path

    from kgfusion.apps.finance.recipe import recipe_heads
    from kgfusion.core.recipe import load_recipe

    recipes = Path(__file__).resolve().parents[3] / "data" / "recipes"
    multi = load_recipe(recipes / "finance-multitask.json")
    best = load_recipe(recipes / "ablations/finance/full-cosine-llrd.json")
    # the best sentiment ablation's optimiser and schedule, fewer epochs (the topic data makes each 2.4x longer)
    same = ("lr", "schedule", "layer_lr_decay", "batch_size", "max_length", "method")
    assert {k: multi.train[k] for k in same} == {k: best.train[k] for k in same}
    assert recipe_heads(multi) == ["sentiment", "topic"]


def test_fast_variant_recipe_distils_a_fewer_layer_two_head_student(fin_data, tiny_model_dir, tmp_path):
    from kgfusion.core.bundle import read_manifest
    from kgfusion.core.errors import DataError
    from kgfusion.core.predict import Predictor

    _add_topic_data(fin_data)
    teacher_recipe = {
        "name": "finance-mt-teacher", "trainer": "kgfusion.apps.finance.recipe:train_recipe",
        "data": {"heads": ["sentiment", "topic"]},
        "train": {"base": tiny_model_dir, "method": "full", "epochs": 1, "batch_size": 16, "max_length": 24, "lr": 3e-3},
    }
    path = tmp_path / "teacher.json"
    path.write_text(json.dumps(teacher_recipe))
    run_recipe(path, tmp_path / "teacher-bundle", data_dir=fin_data, work_dir=tmp_path / "tw", progress=False, onnx=False)
    teacher = tmp_path / "tw" / "seed-13"
    fast_recipe = {
        "name": "finance-mt-fast", "trainer": "kgfusion.apps.finance.fast_variant:train_recipe",
        "data": {"heads": ["sentiment", "topic"]}, "student": {"teacher": str(teacher), "layers": 1},
        "train": {"method": "full", "epochs": 2, "batch_size": 16, "max_length": 24, "lr": 3e-3},
    }
    path.write_text(json.dumps(fast_recipe))
    res = run_recipe(path, tmp_path / "fast", data_dir=fin_data, work_dir=tmp_path / "fw", progress=False)
    m = res["metrics"]
    assert m["layers"] == 1 and m["best_epoch"] in (1, 2)
    assert 0 <= m["twitter_onnx_int8_accuracy"] <= 1 and 0 <= m["topic_onnx_int8_accuracy"] <= 1
    assert m["teacher_metrics"]["topic_accuracy"] == json.loads((teacher / "metrics.json").read_text())["topic_accuracy"]
    manifest = read_manifest(tmp_path / "fast")
    assert manifest.name == "fast" and "model.safetensors" not in manifest.files
    assert json.loads((tmp_path / "fw" / "student-1L" / "config.json").read_text())["num_hidden_layers"] == 1
    probs = Predictor.from_bundle(tmp_path / "fast", backend="onnx-int8").predict_heads(["a stock market 3"])
    assert probs["sentiment"].shape == (1, 3) and probs["topic"].shape == (1, 3)

    fast_recipe["student"]["teacher"] = str(tmp_path / "missing")
    path.write_text(json.dumps(fast_recipe))
    with pytest.raises(DataError, match="missing not found; build it with: kgfusion model train --recipe"):
        run_recipe(path, tmp_path / "fast2", data_dir=fin_data, work_dir=tmp_path / "fw2", progress=False)
