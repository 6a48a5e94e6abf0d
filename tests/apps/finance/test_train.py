from __future__ import annotations

import json

import pytest

from kgfusion.apps.finance.train import FinanceData, evaluate_finsent, load_finance_splits, train_finsent
from kgfusion.core.errors import DataError
from kgfusion.core.finetune import TrainConfig
from tests.conftest import make_sentiment_examples


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("findata")
    pb = make_sentiment_examples(20, seed=1)
    lines = [f"{e.text} {i}@{e.label}" for i, e in enumerate(pb)]
    (d / "pb50.txt").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (d / "pball.txt").write_bytes(("\n".join(lines[::2]) + "\n").encode("latin-1"))  # every other one agreed
    codes = {"negative": "0", "positive": "1", "neutral": "2"}
    tw = make_sentiment_examples(20, seed=2)
    (d / "tw.csv").write_text("text,label\n" + "\n".join(f"tweet {e.text} {i},{codes[e.label]}"
                                                           for i, e in enumerate(tw)) + "\n")
    return FinanceData(str(d / "pb50.txt"), str(d / "pball.txt"), str(d / "tw.csv"))


def test_splits_are_seeded_and_the_allagree_subset_is_inside_the_test_split(data):
    a, b = load_finance_splits(data), load_finance_splits(data)
    assert [e.text for e in a.tests["phrasebank50"]] == [e.text for e in b.tests["phrasebank50"]]
    sizes = a.sizes()
    assert sizes["phrasebank50"] == 6 and sizes["twitter"] == 6 and sizes["train"] == 96 and sizes["dev"] == 12
    allagree = {e.text for e in a.tests["phrasebank_allagree"]}
    assert allagree and allagree <= {e.text for e in a.tests["phrasebank50"]}
    assert {e.label for e in a.tests["twitter"]} == {"negative", "neutral", "positive"}  # 0/1/2 mapped


def test_train_writes_a_bundle_with_all_test_metrics(data, tiny_model_dir, tmp_path):
    cfg = TrainConfig(base=tiny_model_dir, method="full", epochs=1, batch_size=16, max_length=16, max_steps=3)
    res = train_finsent(cfg, data, tmp_path / "finsent", progress=False, onnx=False, command=["kgfusion", "x"])
    m = res["metrics"]
    for key in ("phrasebank50_accuracy", "phrasebank_allagree_accuracy", "twitter_accuracy", "twitter_macro_f1"):
        assert 0.0 <= m[key] <= 1.0
    assert m["finbert_published"] == {"phrasebank50_accuracy": 0.86, "phrasebank_allagree_accuracy": 0.97}
    card = (tmp_path / "finsent" / "MODEL_CARD.md").read_text()
    assert "FinBERT" in card and "kgfusion x" in card and "non-commercial" in card
    split = json.loads((tmp_path / "finsent" / "split.json").read_text())
    assert len(split["phrasebank50"]["test"]) == 6
    ev = evaluate_finsent(tmp_path / "finsent", data, with_rules=True)
    assert ev["model"]["twitter"]["accuracy"] == pytest.approx(m["twitter_accuracy"], abs=1e-4)
    assert set(ev["fused"]) == {"phrasebank50", "phrasebank_allagree", "twitter"}


def test_missing_training_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="training file not found"):
        load_finance_splits(FinanceData(str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c")))
