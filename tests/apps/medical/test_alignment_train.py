"""Sub-word label alignment round trip, windowed span offsets on long notes, the training job."""
from __future__ import annotations

import json
import random

import pytest

from kgfusion.core.data import TokenExample
from kgfusion.core.errors import DataError
from kgfusion.core.finetune import TrainConfig, encode_examples

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


def test_subword_alignment_round_trip(tiny_model_dir):
    """Labels sit on each word's first sub-token; reading them back by word id gives the gold tags."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ex = TokenExample(("Metformin", "-", "induced", "lactic", "acidosis", "in", "CKD3b", "patients"),
                      ("B-Chemical", "O", "O", "B-Disease", "I-Disease", "O", "B-Disease", "O"), 1)
    label2id = {lab: i for i, lab in enumerate(LABELS)}
    (feat,) = encode_examples("token", [ex], tok, label2id, max_length=128)
    enc = tok([list(ex.tokens)], is_split_into_words=True, truncation=True, max_length=128)
    word_ids = enc.word_ids(0)
    assert len(word_ids) > len(ex.tokens) + 2  # words really are split into sub-tokens
    back: dict[int, str] = {}
    for wid, lab in zip(word_ids, feat["labels"]):
        if lab >= 0:
            assert wid not in back  # one label per word
            back[wid] = LABELS[lab]
        elif wid is not None:
            assert wid in back  # continuation sub-tokens come after the labelled first one
    assert [back[i] for i in range(len(ex.tokens))] == list(ex.tags)


def test_windowed_spans_keep_offsets_on_a_20k_note(tiny_model_dir):
    """A random tiny model tags plenty of words: every span must index the 20k-character text exactly."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from kgfusion.core.predict import Predictor

    model = AutoModelForTokenClassification.from_pretrained(tiny_model_dir, num_labels=len(LABELS))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rng = random.Random(0)
    words = ["patient", "denies", "chest", "pain", "history", "of", "breast", "cancer", "aspirin", "fever", "\n\n",
             "mother", "with", "colon", "cancer.", "résumé", "(CKD)", "naïve"]
    text = " ".join(rng.choice(words) for _ in range(3500))
    assert len(text) > 20_000
    predictor = Predictor(model, tok, LABELS, "token", max_length=64, stride=16)
    (spans,) = predictor.predict_spans([text])
    assert len(spans) > 100
    last_end = 0
    for s in spans:
        assert text[s.start:s.end] == s.text and s.start >= last_end and s.text.strip() == s.text
        last_end = s.end
    assert spans[-1].end > 19_000  # windows reach the end of the note


def write_iob(path, n, seed):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        for _ in range(rng.randint(3, 7)):
            r = rng.random()
            if r < 0.2:
                lines += ["aspirin\tB-Chemical"]
            elif r < 0.4:
                lines += ["breast\tB-Disease", "cancer\tI-Disease"]
            else:
                lines.append(f"{rng.choice(['the', 'patient', 'with', 'history', 'of'])}\tO")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def test_train_medical_writes_bundle_with_devel_metrics(tiny_model_dir, tmp_path):
    from kgfusion.apps.medical.train import MedicalData, evaluate_medical, train_medical

    train_file, devel_file = tmp_path / "train.tsv", tmp_path / "devel.tsv"
    write_iob(train_file, 60, 0)
    write_iob(devel_file, 20, 1)
    data = MedicalData("bc5cdr", str(train_file), str(devel_file), dev_fraction=0.2, seed=3)
    config = TrainConfig(task="token", method="full", base=tiny_model_dir, epochs=1, batch_size=16, max_length=32,
                         lr=1e-3)
    res = train_medical(config, data, tmp_path / "bundle", progress=False, command=["kgfusion", "medical", "train"],
                        onnx=False)
    m = res["metrics"]
    assert 0.0 <= m["devel_f1"] <= 1.0 and m["dataset"] == "bc5cdr" and m["method"] == "full"
    assert m["published_test_f1"]["Chemical"]["BioBERT"] == pytest.approx(0.929)
    info = json.loads((tmp_path / "bundle" / "data.json").read_text())
    assert info["split"]["sizes"] == {"train": 48, "dev": 12, "devel": 20}
    card = (tmp_path / "bundle" / "MODEL_CARD.md").read_text()
    assert "devel" in card and "PubMedBERT" in card and "kgfusion medical train" in card
    again = evaluate_medical(tmp_path / "bundle", devel_file)
    assert again["devel_f1"] == pytest.approx(m["devel_f1"], abs=1e-4)
    with pytest.raises(DataError, match="not found"):
        train_medical(config, MedicalData("ncbi", str(tmp_path / "x.tsv"), str(devel_file)), tmp_path / "b2",
                      progress=False, onnx=False)
