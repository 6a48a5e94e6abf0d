from __future__ import annotations

import json

import numpy as np
import pytest

from kgfusion.core.bundle import load_bundle, save_bundle, verify_bundle
from kgfusion.core.errors import BundleError, ConfigError
from kgfusion.core.finetune import TrainConfig, train
from kgfusion.core.predict import Predictor


@pytest.fixture(scope="module")
def lora_result(tiny_model_dir):
    from tests.conftest import make_sentiment_examples

    exs = make_sentiment_examples()
    cfg = TrainConfig(base=tiny_model_dir, method="lora", epochs=2, batch_size=8, max_length=16, lr=1e-2, seed=0)
    return train(cfg, exs[:70], exs[70:], progress=False)


@pytest.fixture
def lora_bundle(lora_result, tmp_path):
    r = lora_result
    return save_bundle(tmp_path / "b", r.model, r.tokenizer, task="sequence", method="lora",
                       base=r.config.base, labels=r.labels, max_length=16, metrics={"dev_accuracy": 0.5},
                       model_card="# card\n")


TEXTS = ["the company profit rose", "net loss down the market", "a year", "shares fell " * 40]


def test_lora_round_trip_gives_identical_predictions(lora_result, lora_bundle):
    r = lora_result
    before = Predictor(r.model, r.tokenizer, r.labels, "sequence").predict_proba(TEXTS)
    loaded = load_bundle(lora_bundle)
    after = Predictor(loaded.model, loaded.tokenizer, loaded.labels, "sequence").predict_proba(TEXTS)
    np.testing.assert_allclose(before, after, atol=1e-5)
    assert loaded.manifest.method == "lora" and loaded.labels == r.labels
    # Only the adapter and head are stored, not the base weights.
    assert "adapter_model.safetensors" in loaded.manifest.files and "model.safetensors" not in loaded.manifest.files


def test_full_round_trip(tiny_model_dir, sentiment_examples, tmp_path):
    cfg = TrainConfig(base=tiny_model_dir, method="full", epochs=1, batch_size=8, max_length=16)
    r = train(cfg, sentiment_examples[:70], sentiment_examples[70:], progress=False)
    path = save_bundle(tmp_path / "full", r.model, r.tokenizer, task="sequence", method="full",
                       base=tiny_model_dir, labels=r.labels, max_length=16)
    p1 = Predictor(r.model, r.tokenizer, r.labels, "sequence").predict_proba(TEXTS)
    p2 = Predictor.from_bundle(path).predict_proba(TEXTS)
    np.testing.assert_allclose(p1, p2, atol=1e-6)


def test_corrupt_weights_fail_cleanly(lora_bundle):
    weights = lora_bundle / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(BundleError, match=r"adapter_model\.safetensors: checksum mismatch"):
        load_bundle(lora_bundle)


def test_missing_file_and_manifest_fail_cleanly(lora_bundle):
    (lora_bundle / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"tokenizer\.json: missing from bundle"):
        verify_bundle(lora_bundle)
    (lora_bundle / "bundle.json").unlink()
    with pytest.raises(BundleError, match="not a kgfusion bundle"):
        verify_bundle(lora_bundle)


def test_wrong_version_fails(lora_bundle):
    manifest = json.loads((lora_bundle / "bundle.json").read_text())
    manifest["version"] = 99
    (lora_bundle / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="version 99 is not supported"):
        load_bundle(lora_bundle)


def test_overwrite_is_atomic_and_leaves_no_temp_dirs(lora_result, lora_bundle):
    r = lora_result
    save_bundle(lora_bundle, r.model, r.tokenizer, task="sequence", method="lora", base=r.config.base,
                labels=r.labels, max_length=16)
    assert [p.name for p in lora_bundle.parent.iterdir()] == ["b"]
    verify_bundle(lora_bundle)


def test_long_text_is_chunked_and_aggregated(lora_result):
    r = lora_result
    pred = Predictor(r.model, r.tokenizer, r.labels, "sequence", max_length=16, stride=4)
    enc = pred._encode(TEXTS)
    assert max(enc["overflow_to_sample_mapping"]) == len(TEXTS) - 1
    assert len(enc["input_ids"]) > len(TEXTS)  # the long text became several windows
    probs = pred.predict_proba(TEXTS)
    assert probs.shape == (4, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    # Batching and length sorting never change a text's result.
    single = np.vstack([pred.predict_proba([t]) for t in TEXTS])
    np.testing.assert_allclose(probs, single, atol=1e-5)


def test_predictor_checks(lora_result):
    r = lora_result
    with pytest.raises(ConfigError, match="backend='gpu'"):
        Predictor(r.model, r.tokenizer, r.labels, "sequence", backend="gpu")
    with pytest.raises(ConfigError, match="not token"):
        Predictor(r.model, r.tokenizer, r.labels, "sequence").predict_spans(["x"])
    assert Predictor(r.model, r.tokenizer, r.labels, "sequence").predict([]) == []


@pytest.fixture(scope="module")
def ner_result(tiny_model_dir):
    from tests.conftest import make_ner_examples

    exs = make_ner_examples(80)
    cfg = TrainConfig(task="token", base=tiny_model_dir, method="full", epochs=6, batch_size=8,
                      max_length=32, lr=3e-3, seed=0)
    return train(cfg, exs[:60], exs[60:], progress=False)


def test_spans_have_valid_character_offsets(ner_result):
    r = ner_result
    pred = Predictor(r.model, r.tokenizer, r.labels, "token", max_length=32)
    texts = ["The patient with breast cancer and pain.", "  colon cancer,history of pain  ", ""]
    spans = pred.predict_spans(texts)
    assert len(spans) == 3 and spans[2] == []
    for text, ss in zip(texts, spans):
        for s in ss:
            assert 0 <= s.start < s.end <= len(text) and text[s.start:s.end] == s.text
    assert any(s.text == "breast cancer" and s.label == "Disease" for s in spans[0])


def test_sliding_window_matches_single_window(ner_result):
    r = ner_result
    text = " ".join(["the patient with colon cancer and pain ."] * 12)
    wide = Predictor(r.model, r.tokenizer, r.labels, "token", max_length=128).predict_spans([text])[0]
    narrow = Predictor(r.model, r.tokenizer, r.labels, "token", max_length=24, stride=8).predict_spans([text])[0]
    assert [(s.start, s.end) for s in wide] == [(s.start, s.end) for s in narrow]
    assert len(wide) >= 10


def test_available_backends_follow_what_the_bundle_ships(tiny_bundle, tmp_path):
    import shutil

    from kgfusion.core.bundle import (
        add_file_to_bundle,
        available_backends,
        resolve_backend,
        strip_torch_weights,
    )

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    assert available_backends(bundle) == ["fp32", "int8"]
    assert resolve_backend(bundle, "auto") == "fp32" and resolve_backend(bundle, "int8") == "int8"
    with pytest.raises(BundleError, match=r"backend 'onnx-int8' is not in this bundle \(it ships \['fp32', 'int8'\]\)"):
        resolve_backend(bundle, "onnx-int8")
    fake = tmp_path / "model.int8.onnx"
    fake.write_bytes(b"onnx")  # only its presence matters here
    add_file_to_bundle(bundle, fake, "model.int8.onnx")
    assert available_backends(bundle) == ["onnx-int8", "fp32", "int8"]
    strip_torch_weights(bundle)
    assert available_backends(bundle) == ["onnx-int8"]
    assert resolve_backend(bundle, "auto") == "onnx-int8"  # what the finance app's default picks
    with pytest.raises(BundleError, match="use --backend onnx-int8 or auto"):
        resolve_backend(bundle, "fp32")
