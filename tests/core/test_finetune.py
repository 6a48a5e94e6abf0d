from __future__ import annotations

import pytest

from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.finetune import TrainConfig, infer_labels, train


def _cfg(tiny_model_dir, **kw):
    base = dict(base=tiny_model_dir, epochs=3, batch_size=8, max_length=16, seed=0)
    return TrainConfig(**(base | kw))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_sequence_training_learns_keywords(tiny_model_dir, sentiment_examples, method):
    train_set, dev_set = sentiment_examples[:70], sentiment_examples[70:]
    lr = 3e-3 if method == "full" else 1e-2  # tiny random models need high rates
    res = train(_cfg(tiny_model_dir, method=method, lr=lr, epochs=8, patience=8), train_set, dev_set, progress=False)
    assert res.labels == ["negative", "neutral", "positive"]
    # Chance is 1/3; the keyword task is learnable in a few epochs even by a random tiny BERT.
    assert res.dev_metrics["accuracy"] > 0.6
    assert res.history[0]["train_loss"] > res.history[-1]["train_loss"]


def test_best_epoch_weights_are_restored(tiny_model_dir, sentiment_examples):
    res = train(_cfg(tiny_model_dir, method="full", lr=3e-3, epochs=4), sentiment_examples[:70],
                sentiment_examples[70:], progress=False)
    best = max(h["dev_macro_f1"] for h in res.history)
    assert res.dev_metrics["macro_f1"] == pytest.approx(best)


def test_training_is_seeded(tiny_model_dir, sentiment_examples):
    runs = [train(_cfg(tiny_model_dir, epochs=1), sentiment_examples[:70], sentiment_examples[70:], progress=False)
            for _ in range(2)]
    def strip(history):  # wall-clock seconds differ between runs; everything else must not
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert strip(runs[0].history) == strip(runs[1].history)


def test_fgm_and_class_weights_run_and_change_training(tiny_model_dir, sentiment_examples):
    plain = train(_cfg(tiny_model_dir, epochs=1, method="full"), sentiment_examples[:70], sentiment_examples[70:],
                  progress=False)
    adv = train(_cfg(tiny_model_dir, epochs=1, method="full", fgm_epsilon=1.0, class_weights="balanced"),
                sentiment_examples[:70], sentiment_examples[70:], progress=False)
    assert plain.history[0]["train_loss"] != adv.history[0]["train_loss"]


def test_token_training_aligns_subwords(tiny_model_dir, ner_examples):
    res = train(_cfg(tiny_model_dir, task="token", method="full", lr=3e-3, epochs=5), ner_examples[:45],
                ner_examples[45:], progress=False)
    assert res.labels == ["O", "B-Disease", "I-Disease"]
    assert res.dev_metrics["f1"] > 0.5


def test_encode_puts_labels_on_first_subword(tiny_model_dir):
    from kgfusion.core.data import TokenExample
    from kgfusion.core.finetune import encode_examples
    from kgfusion.core.models import load_tokenizer

    tok = load_tokenizer(tiny_model_dir)
    ex = TokenExample(("xyz", "cancer"), ("B-Disease", "O"), 1)
    feat = encode_examples("token", [ex], tok, {"O": 0, "B-Disease": 1, "I-Disease": 2}, 32)[0]
    n_pieces = len(tok.tokenize("xyz"))
    assert n_pieces > 1  # "xyz" is not in the tiny vocabulary: it splits into pieces
    assert feat["labels"] == [-100, 1] + [-100] * (n_pieces - 1) + [0, -100]


def test_config_checks_name_the_value():
    with pytest.raises(ConfigError, match=r"method='qlora'; allowed: \['full', 'lora'\]"):
        TrainConfig(method="qlora")
    with pytest.raises(ConfigError, match="epochs=0"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_dict({"epochs": 2, "epoch": 3})
    cfg = TrainConfig(method="full", lora_targets=("query",))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_empty_dev_set_is_an_error(tiny_model_dir, sentiment_examples):
    with pytest.raises(DataError, match="no dev examples"):
        train(_cfg(tiny_model_dir), sentiment_examples, [], progress=False)


def test_unknown_label_names_row(tiny_model_dir, sentiment_examples):
    from kgfusion.core.data import TextExample

    with pytest.raises(DataError, match="row 99: label 'weird'"):
        train(_cfg(tiny_model_dir, labels=("negative", "neutral", "positive")), sentiment_examples,
              [TextExample("x", "weird", 99)], progress=False)


def test_infer_labels_orders_iob():
    from kgfusion.core.data import TokenExample

    exs = [TokenExample(("a", "b"), ("B-Z", "I-Z"), 1), TokenExample(("c",), ("B-A",), 2)]
    assert infer_labels("token", exs) == ["O", "B-A", "I-A", "B-Z", "I-Z"]


def test_a_base_with_fusion_tensors_starts_the_crf_and_features_from_them(tiny_model_dir, tmp_path, caplog):
    import shutil

    import torch
    from safetensors.torch import save_file

    from kgfusion.core.finetune import _start_fusion_from_base
    from kgfusion.core.models import load_base
    from kgfusion.core.tokenmodel import FUSION_FILE, FusedTokenModel

    labels = ["O", "B-Disease", "I-Disease"]
    base = tmp_path / "student-base"
    shutil.copytree(tiny_model_dir, base)
    teacher_like = FusedTokenModel(load_base(str(base), task="token", labels=labels)[0], labels, n_features=3, crf=True)
    with torch.no_grad():
        teacher_like.feature_embedding.weight.fill_(0.25)
        teacher_like.crf.transitions.fill_(-1.5)
    save_file(teacher_like.fusion_tensors(), str(base / FUSION_FILE))

    student = FusedTokenModel(load_base(str(base), task="token", labels=labels)[0], labels, n_features=3, crf=True)
    assert float(student.feature_embedding.weight.detach().abs().sum()) == 0.0  # fresh: zeros
    _start_fusion_from_base(student, str(base))
    assert torch.equal(student.feature_embedding.weight, teacher_like.feature_embedding.weight)
    assert torch.equal(student.crf.transitions, teacher_like.crf.transitions)

    other = FusedTokenModel(load_base(str(base), task="token", labels=labels)[0], labels, n_features=0, crf=True)
    with caplog.at_level("WARNING"):
        _start_fusion_from_base(other, str(base))  # no feature embedding: a warning, fresh start
    assert "start fresh" in caplog.text and not torch.equal(other.crf.transitions, teacher_like.crf.transitions)
