"""Magnitude pruning, student construction and distillation on a tiny random BERT."""
from __future__ import annotations

import pytest
import torch

from kgfusion.core.compress import distill, magnitude_prune, make_student, student_layer_map
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.models import load_base, make_tiny_model_dir

LABELS = ["O", "B-X", "I-X"]
TEXTS = [
    "the company profit rose",
    "net sales decreased in the quarter",
    "loss",
    "stock market shares fell and the company reported a net loss",
    "good growth",
    "patient denies fever",
    "family history of breast cancer",
    "no pain",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny"), layers=4)


def _model(tiny_dir, task: str = "sequence"):
    torch.manual_seed(0)  # load_base initialises the head randomly
    model, tok = load_base(tiny_dir, task=task, labels=LABELS)
    with torch.no_grad():  # separable classes (a random head gives ~0.01 logits)
        model.classifier.weight.mul_(50)
    return model.eval(), tok


def _layer_weight(model, i: int) -> torch.Tensor:
    return model.bert.encoder.layer[i].attention.self.query.weight


# ------------------------------------------------------------------------------------------ pruning


@pytest.mark.parametrize("amount", [0.3, 0.75])
def test_prune_reaches_sparsity_and_keeps_shapes(tiny_dir, amount):
    model, tok = _model(tiny_dir)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    embeddings = model.bert.embeddings.word_embeddings.weight.clone()
    head = model.classifier.weight.clone()
    original = torch.cat([m.weight.detach().abs().flatten() for m in model.bert.encoder.modules()
                          if isinstance(m, torch.nn.Linear)])
    report = magnitude_prune(model, amount)
    assert report["sparsity"] == pytest.approx(amount, abs=1e-3)
    linears = [m for m in model.bert.encoder.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((m.weight == 0).sum()) for m in linears)
    assert zeros == report["zeros"] and report["modules"] == len(linears)
    assert 0 < report["model_sparsity"] < report["sparsity"]
    # permanent (no weight_orig / masks left), same shapes, out-of-scope weights untouched
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, embeddings)
    assert torch.equal(model.classifier.weight, head)
    # global magnitude: every removed |w| is <= every kept |w|, across layers
    removed = torch.cat([m.weight.detach().flatten() for m in linears]) == 0
    assert original[removed].max() <= original[~removed].min()
    with torch.no_grad():
        model(**tok(TEXTS[:2], padding=True, return_tensors="pt"))


def test_prune_scope_all_includes_head(tiny_dir):
    model, _ = _model(tiny_dir)
    report = magnitude_prune(model, 0.5, scope="all")
    encoder_only = magnitude_prune(_model(tiny_dir)[0], 0.5)
    assert report["modules"] == encoder_only["modules"] + 2  # + pooler dense + classifier
    assert report["sparsity"] == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("amount", [0, 1, 1.5, -0.1, True, "0.5"])
def test_prune_rejects_bad_amount(tiny_dir, amount):
    model, _ = _model(tiny_dir)
    with pytest.raises(ConfigError):
        magnitude_prune(model, amount)


def test_prune_rejects_bad_scope(tiny_dir):
    with pytest.raises(ConfigError):
        magnitude_prune(_model(tiny_dir)[0], 0.5, scope="decoder")


# ------------------------------------------------------------------------------------------ student


def test_layer_map_is_even_and_keeps_top_layer():
    assert student_layer_map(6, 3) == [1, 3, 5]
    assert student_layer_map(12, 4) == [2, 5, 8, 11]
    assert student_layer_map(6, 1) == [5]
    for teacher, n in [(6, 4), (12, 5), (4, 2)]:
        m = student_layer_map(teacher, n)
        assert len(m) == n and m == sorted(set(m)) and m[-1] == teacher - 1


@pytest.mark.parametrize("task", ["sequence", "token"])
def test_make_student_copies_teacher(tiny_dir, task):
    teacher, tok = _model(tiny_dir, task)
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = make_student(teacher, 2)
    assert type(student) is type(teacher)
    assert len(student.bert.encoder.layer) == 2 and student.config.num_hidden_layers == 2
    assert len(teacher.bert.encoder.layer) == 4 and teacher.config.num_hidden_layers == 4
    assert student.config.id2label == teacher.config.id2label
    # initialised from the teacher, not at random: layers 1 and 3, embeddings and head
    assert torch.equal(_layer_weight(student, 0), _layer_weight(teacher, 1))
    assert torch.equal(_layer_weight(student, 1), _layer_weight(teacher, 3))
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    # independent copies: training the student leaves the teacher alone
    with torch.no_grad():
        _layer_weight(student, 0).add_(1.0)
    assert all(torch.equal(teacher_state[k], v) for k, v in teacher.state_dict().items())
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert student(**enc).logits.shape == teacher(**enc).logits.shape


@pytest.mark.parametrize("num_layers", [0, 4, 5, -1, 2.0])
def test_make_student_rejects_bad_layers(tiny_dir, num_layers):
    with pytest.raises(ConfigError):
        make_student(_model(tiny_dir)[0], num_layers)


# ----------------------------------------------------------------------------------------- distill


def _far_student(teacher, seed: int = 1):
    """A 1-layer student whose head is re-drawn, so it starts far from the teacher."""
    student = make_student(teacher, 1)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        student.classifier.weight.copy_(torch.randn(student.classifier.weight.shape, generator=gen))
    return student


def test_distill_sequence_reduces_kd_loss_and_is_deterministic(tiny_dir):
    teacher, tok = _model(tiny_dir)
    kwargs = dict(epochs=4, batch_size=4, lr=1e-3, alpha=1.0, progress=False, seed=3)
    a, b = _far_student(teacher), _far_student(teacher)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    rng_before = torch.get_rng_state()
    hist = distill(teacher, a, tok, TEXTS, **kwargs)
    assert torch.equal(torch.get_rng_state(), rng_before)  # global RNG untouched
    assert hist["after"]["kd_loss"] < 0.5 * hist["before"]["kd_loss"]
    assert hist["after"]["teacher_agreement"] >= hist["before"]["teacher_agreement"]
    assert len(hist["loss"]) == 4 and hist["steps"] == 8 and not hist["ce_loss"]
    assert all(torch.equal(teacher_before[k], v) for k, v in teacher.state_dict().items())
    hist_b = distill(teacher, b, tok, TEXTS, **kwargs)
    assert hist_b["loss"] == hist["loss"]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not a.training  # returned in eval mode


def test_distill_with_labels_and_dev(tiny_dir):
    teacher, tok = _model(tiny_dir)
    labels = [i % 3 for i in range(len(TEXTS))]
    student = _far_student(teacher)
    hist = distill(
        teacher, student, tok, TEXTS, labels, epochs=3, batch_size=3, lr=1e-3, progress=False,
        dev=TEXTS[:4], dev_labels=labels[:4],
    )
    assert len(hist["ce_loss"]) == 3 and len(hist["dev"]) == 3
    assert 0.0 <= hist["dev"][-1]["accuracy"] <= 1.0 and "accuracy" in hist["after"]
    assert hist["after"]["kd_loss"] < hist["before"]["kd_loss"]


def test_distill_token_encodings(tiny_dir):
    teacher, tok = _model(tiny_dir, "token")
    encodings = []
    for i, text in enumerate(TEXTS):
        enc = tok(text)
        n = len(enc["input_ids"])
        labels = [-100] + [(i + j) % 3 for j in range(n - 2)] + [-100]
        encodings.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    student = _far_student(teacher)
    hist = distill(
        teacher, student, tok, encodings=encodings, task="token", epochs=3, batch_size=4, lr=1e-3,
        alpha=0.9, progress=False, dev=encodings[:3],
    )
    assert hist["after"]["kd_loss"] < hist["before"]["kd_loss"]
    assert len(hist["ce_loss"]) == 3 and "accuracy" in hist["dev"][-1]
    # unlabelled token KD from raw texts works as well
    hist = distill(teacher, _far_student(teacher), tok, TEXTS, task="token", epochs=1, progress=False)
    assert hist["steps"] == 1 and not hist["ce_loss"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"lr": 0},
        {"temperature": 0},
        {"alpha": 1.5},
        {"max_length": 1},
        {"task": "embedding"},
        {"warmup_ratio": 1.0},
    ],
)
def test_distill_rejects_bad_config(tiny_dir, kwargs):
    teacher, tok = _model(tiny_dir)
    with pytest.raises(ConfigError):
        distill(teacher, make_student(teacher, 1), tok, TEXTS, progress=False, **kwargs)


def test_distill_rejects_bad_data(tiny_dir):
    teacher, tok = _model(tiny_dir)
    student = make_student(teacher, 1)
    with pytest.raises(DataError):
        distill(teacher, student, tok, TEXTS, [0, 1], progress=False)  # label count
    with pytest.raises(DataError):
        distill(teacher, student, tok, TEXTS, ["pos"] * len(TEXTS), progress=False)
    with pytest.raises(ConfigError):
        distill(teacher, student, tok, TEXTS, encodings=[{"input_ids": [2, 3]}], progress=False)
    with pytest.raises(ConfigError):  # token labels cannot be aligned from raw texts
        token_teacher, _ = _model(tiny_dir, "token")
        distill(token_teacher, make_student(token_teacher, 1), tok, TEXTS, [0] * len(TEXTS), task="token")
    with pytest.raises(DataError):
        bad = [{"input_ids": [2, 5, 3], "attention_mask": [1, 1, 1], "labels": [0, 1]}]
        distill(token_teacher, make_student(token_teacher, 1), tok, encodings=bad, task="token", progress=False)
    with pytest.raises(ConfigError):  # label sets differ
        other, _ = load_base(tiny_dir, task="sequence", labels=["a", "b"])
        distill(teacher, make_student(other, 1), tok, TEXTS, progress=False)
