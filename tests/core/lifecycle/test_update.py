"""Continual updates on a tiny random BERT: every method trains from the old weights, replay and anchors work,
the gate refuses a forgetting model."""
from __future__ import annotations

import random

import pytest
import torch

from kgfusion.core.data import TextExample
from kgfusion.core.errors import BundleError, ConfigError, DataError
from kgfusion.core.lifecycle.update import (
    UpdateConfig,
    WeightAnchor,
    accuracy_of,
    fisher_diagonal,
    forgetting_gate,
    load_trainable,
    replay_sample,
    update_model,
)
from tests.conftest import make_sentiment_examples

NEW = {"positive": ["stock soared", "rally strong"], "negative": ["stock plunged", "selloff deep"],
       "neutral": ["analyst call", "ticker today"]}


def new_domain(n_per_class: int = 20, seed: int = 1) -> list[TextExample]:
    rng = random.Random(seed)
    rows = [TextExample(f"{rng.choice(words)} {rng.choice(['now', 'lol', 'again'])}", label, 500 + i)
            for i, (label, words) in enumerate((lab, w) for lab, w in NEW.items() for _ in range(n_per_class))]
    rng.shuffle(rows)
    return rows


@pytest.fixture(scope="module")
def old_model(tiny_model_dir, tmp_path_factory):
    """A tiny model trained on the 'old' task (keyword sentiment), saved as a full bundle."""
    from kgfusion.core.bundle import save_bundle
    from kgfusion.core.finetune import TrainConfig, train

    rows = make_sentiment_examples(20)
    cfg = TrainConfig(base=tiny_model_dir, method="full", epochs=8, batch_size=8, max_length=16, lr=3e-3,
                      labels=("negative", "neutral", "positive"), patience=8)
    res = train(cfg, rows[:45], rows[45:], progress=False)
    out = tmp_path_factory.mktemp("old") / "old-v1"
    save_bundle(out, res.model, res.tokenizer, task="sequence", method="full", base=tiny_model_dir,
                labels=res.labels, max_length=16)
    return out, rows[:45], rows[45:]


def _cfg(method: str, **kw) -> UpdateConfig:
    return UpdateConfig(**({"method": method, "epochs": 6, "lr": 3e-3 if method != "adapter" else 1e-2,
                            "batch_size": 8, "max_length": 16, "replay": 20, "patience": 6} | kw))


@pytest.mark.parametrize("method", ["naive", "rehearsal", "l2sp", "ewc", "adapter"])
def test_every_method_continues_from_the_old_weights_and_learns_the_new_data(old_model, method):
    bundle, old_train, old_dev = old_model
    new = new_domain()
    init = load_trainable(bundle)
    model, tok, labels, task, _ = init
    before = accuracy_of(model, tok, labels, task, new[40:])["accuracy"]
    res = update_model((model, tok, labels, task), new[:40], new[40:], old_train, old_dev, _cfg(method))
    after = accuracy_of(res.model, res.tokenizer, labels, task, new[40:])["accuracy"]
    assert after > before and after >= 0.6
    assert res.replayed == (0 if method == "naive" else 20) and res.train_rows == 40 + res.replayed
    assert type(res.model).__name__ == "BertForSequenceClassification"  # an adapter is merged back


def test_rehearsal_keeps_more_of_the_old_task_than_naive(old_model):
    bundle, old_train, old_dev = old_model
    new = new_domain()
    scores = {}
    for method in ("naive", "rehearsal"):
        m, tok, labels, task, _ = load_trainable(bundle)
        res = update_model((m, tok, labels, task), new[:40], new[40:], old_train, old_dev,
                           _cfg(method, replay=45))
        scores[method] = accuracy_of(res.model, tok, labels, task, old_dev)["accuracy"]
    assert scores["rehearsal"] >= scores["naive"]


def test_anchor_is_zero_at_the_old_weights_and_grows_when_they_move(old_model):
    model, *_ = load_trainable(old_model[0])
    anchor = WeightAnchor(model, weight=0.5)
    assert anchor(model).item() == 0.0
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).add_(0.1)
    moved = anchor(model).item()
    assert moved > 0


def test_fisher_is_normalised_and_weights_the_anchor(old_model):
    bundle, old_train, _ = old_model
    model, tok, labels, task, _ = load_trainable(bundle)
    fisher = fisher_diagonal(model, tok, task, labels, old_train[:16], max_length=16)
    flat = torch.cat([f.flatten() for f in fisher.values()])
    assert flat.mean().item() == pytest.approx(1.0, rel=1e-4) and (flat >= 0).all()
    anchor = WeightAnchor(model, 1.0, {n: torch.zeros_like(f) for n, f in fisher.items()})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    assert anchor(model).item() == 0.0  # zero Fisher: nothing is protected


def test_replay_sample_is_seeded_and_capped():
    rows = list(range(100))
    assert replay_sample(rows, 10, 3) == replay_sample(rows, 10, 3) and len(replay_sample(rows, 10, 3)) == 10
    assert replay_sample(rows, 500, 3) == rows


def test_gate_refuses_a_forgetting_model_unless_forced():
    ok = forgetting_gate(0.90, 0.895, 1.0)
    assert ok.promote and ok.drop_points == 0.5
    bad = forgetting_gate(0.90, 0.85, 1.0)
    assert not bad.promote and "fell 5.00 points" in bad.message and "--force" in bad.message
    assert forgetting_gate(0.90, 0.85, 1.0, forced=True).promote


def test_bad_updates_fail_with_clear_errors(old_model, tmp_path):
    bundle, old_train, old_dev = old_model
    init = load_trainable(bundle)[:4]
    with pytest.raises(DataError, match="labels the model does not know"):
        update_model(init, [TextExample("x y", "bullish", 1)], old_dev, config=_cfg("naive"))
    with pytest.raises(DataError, match="no new training rows"):
        update_model(init, [], old_dev, config=_cfg("naive"))
    with pytest.raises(ConfigError, match="allowed"):
        UpdateConfig(method="magic")
    import shutil

    from kgfusion.core.bundle import ONNX_INT8, add_file_to_bundle, strip_torch_weights

    onnx_only = tmp_path / "onnx-only"
    shutil.copytree(bundle, onnx_only)
    placeholder = tmp_path / "model.onnx"
    placeholder.write_bytes(b"stands in for an exported model")
    add_file_to_bundle(onnx_only, placeholder, ONNX_INT8)
    strip_torch_weights(onnx_only)
    with pytest.raises(BundleError, match="ships only ONNX int8 weights"):
        load_trainable(onnx_only)
