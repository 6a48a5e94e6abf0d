"""Multi-task distillation: a fewer-layer student of a two-head model learns both heads from the teacher."""
from __future__ import annotations

import pytest
import torch

from kgfusion.core.compress import make_student
from kgfusion.core.distill_heads import distill_heads
from kgfusion.core.errors import ConfigError, DataError

WORDS = {"up": ("positive", "Earnings"), "down": ("negative", "Macro")}


@pytest.fixture
def teacher_and_tok(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from kgfusion.core.models import make_tiny_model_dir
    from kgfusion.core.multitask import MultiTaskModel

    model_dir = make_tiny_model_dir(tmp_path / "tiny", layers=4)
    torch.manual_seed(0)
    teacher = MultiTaskModel(AutoModel.from_pretrained(model_dir),
                             {"sentiment": ["negative", "positive"], "topic": ["Earnings", "Macro"]}, "sentiment")
    return teacher.eval(), AutoTokenizer.from_pretrained(model_dir)


def _rows(n: int):
    texts, gold = [], []
    for i in range(n):
        word = "up" if i % 2 else "down"
        sentiment, topic = WORDS[word]
        texts.append(f"shares {word} today {word}")
        gold.append(("sentiment", ["negative", "positive"].index(sentiment)) if i % 4 < 2
                    else ("topic", ["Earnings", "Macro"].index(topic)))
    return texts, gold


def test_student_learns_both_heads_and_keeps_the_best_epoch(teacher_and_tok):
    teacher, tok = teacher_and_tok
    student = make_student(teacher, 2)
    assert len(student.encoder.encoder.layer) == 2 and student.head_names == ["sentiment", "topic"]
    texts, gold = _rows(64)
    history = distill_heads(teacher, student, tok, texts, gold, epochs=6, lr=5e-3, alpha=0.2, batch_size=16,
                            progress=False, dev_texts=texts[:16], dev_gold=gold[:16])
    assert len(history["loss"]) == 6 and history["loss"][-1] < history["loss"][0]
    best = max(sum(d.values()) / len(d) for d in history["dev"])
    assert history["dev"][history["best_epoch"] - 1] == max(history["dev"], key=lambda d: sum(d.values()))
    assert best == 1.0  # the keyword decides both heads: the student must get it right
    with torch.inference_mode():
        enc = tok(["shares up today up"], return_tensors="pt")
        out = student.eval()(**enc).head_logits
    assert out["sentiment"].argmax(-1).item() == 1 and out["topic"].argmax(-1).item() == 0


def test_teacher_is_untouched_and_runs_are_reproducible(teacher_and_tok):
    teacher, tok = teacher_and_tok
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    texts, gold = _rows(16)
    a, b = make_student(teacher, 2), make_student(teacher, 2)
    distill_heads(teacher, a, tok, texts, gold, epochs=1, progress=False, seed=3)
    distill_heads(teacher, b, tok, texts, gold, epochs=1, progress=False, seed=3)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_bad_inputs_are_named(teacher_and_tok):
    teacher, tok = teacher_and_tok
    student = make_student(teacher, 2)
    with pytest.raises(DataError, match="head 'tone'"):
        distill_heads(teacher, student, tok, ["a"], [("tone", 0)], progress=False)
    with pytest.raises(DataError, match="2 texts but 1 gold"):
        distill_heads(teacher, student, tok, ["a", "b"], [None], progress=False)
    with pytest.raises(ConfigError, match="same heads"):
        distill_heads(teacher, torch.nn.Linear(2, 2), tok, ["a"], [None], progress=False)
