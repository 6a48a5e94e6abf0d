"""Per-token activation quantization: an int8 ONNX model whose answer for a text ignores its batch."""
from __future__ import annotations

import numpy as np
import pytest

from kgfusion.core.errors import ConfigError

MIXED = ["profit rose", "the company reported a large loss after a very long and difficult quarter of sales",
         "shares fell", "guidance unchanged for the year", "ok"]


@pytest.fixture(scope="module")
def onnx_sentiment_bundle(tiny_bundle, tmp_path_factory):
    import shutil

    from kgfusion.core.bundle import ONNX_INT8, add_file_to_bundle, load_bundle
    from kgfusion.core.quantize import export_onnx, quantize_onnx_int8

    bundle = tmp_path_factory.mktemp("ptq") / "b"
    shutil.copytree(tiny_bundle, bundle)
    work = tmp_path_factory.mktemp("ptq-work")
    loaded = load_bundle(bundle)
    fp32 = export_onnx(loaded.model, loaded.tokenizer, work / "model.onnx", task="sequence")
    add_file_to_bundle(bundle, quantize_onnx_int8(fp32, work / ONNX_INT8), ONNX_INT8)
    return bundle


def _one_at_a_time(predictor, texts):
    return np.concatenate([predictor.predict_proba([t]) for t in texts])


def test_per_token_predictions_do_not_depend_on_the_batch(onnx_sentiment_bundle):
    from kgfusion.core.predict import Predictor

    per_tensor = Predictor.from_bundle(onnx_sentiment_bundle, backend="onnx-int8", batch_invariant=False)
    # the problem being solved: one scale per batch moves a text's probabilities with its neighbours
    assert np.abs(per_tensor.predict_proba(MIXED) - _one_at_a_time(per_tensor, MIXED)).max() > 1e-6
    invariant = Predictor.from_bundle(onnx_sentiment_bundle, backend="onnx-int8", batch_invariant=True)
    batched = invariant.predict_proba(MIXED)
    np.testing.assert_allclose(batched, _one_at_a_time(invariant, MIXED), atol=1e-6)
    np.testing.assert_allclose(invariant.predict_proba(MIXED[::-1])[::-1], batched, atol=1e-6)


def test_per_token_graph_stays_as_close_to_fp32_as_the_per_tensor_one(onnx_sentiment_bundle):
    from kgfusion.core.predict import Predictor

    fp32 = Predictor.from_bundle(onnx_sentiment_bundle, backend="fp32").predict_proba(MIXED)
    invariant = Predictor.from_bundle(onnx_sentiment_bundle, backend="onnx-int8", batch_invariant=True)
    per_tensor = Predictor.from_bundle(onnx_sentiment_bundle, backend="onnx-int8", batch_invariant=False)
    gap_per_token = np.abs(invariant.predict_proba(MIXED) - fp32).max()
    assert gap_per_token < 0.05  # the rewrite computes int8 arithmetic, not something else
    assert gap_per_token <= 2 * np.abs(per_tensor.predict_proba(MIXED) - fp32).max() + 1e-4
    assert not per_tensor.batch_invariant and invariant.batch_invariant


def test_the_environment_switch_and_its_limits(onnx_sentiment_bundle, monkeypatch):
    from kgfusion.core.predict import BATCH_INVARIANT_ENV, Predictor

    monkeypatch.setenv(BATCH_INVARIANT_ENV, "1")
    assert Predictor.from_bundle(onnx_sentiment_bundle, backend="onnx-int8").batch_invariant
    assert not Predictor.from_bundle(onnx_sentiment_bundle, backend="fp32").batch_invariant  # already is
    with pytest.raises(ConfigError, match="batch_invariant needs backend onnx-int8 or fp32"):
        Predictor.from_bundle(onnx_sentiment_bundle, backend="int8")
    monkeypatch.setenv(BATCH_INVARIANT_ENV, "0")
    assert not Predictor.from_bundle(onnx_sentiment_bundle, backend="onnx-int8").batch_invariant


def test_an_fp32_onnx_graph_is_refused_with_a_reason(onnx_sentiment_bundle, tmp_path):
    from kgfusion.core.bundle import load_bundle
    from kgfusion.core.quantize import OnnxModel, export_onnx

    loaded = load_bundle(onnx_sentiment_bundle)
    fp32 = export_onnx(loaded.model, loaded.tokenizer, tmp_path / "model.onnx", task="sequence")
    with pytest.raises(ConfigError, match="no dynamically quantized MatMul"):
        OnnxModel(fp32, num_threads=1, per_token=True)
