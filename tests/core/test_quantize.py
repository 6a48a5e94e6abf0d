"""Torch int8, ONNX export, ONNX Runtime int8 and size accounting on a tiny random BERT."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kgfusion.core.errors import ConfigError, ModelNotFoundError
from kgfusion.core.models import load_base, make_tiny_model_dir
from kgfusion.core.quantize import (
    OnnxModel,
    export_onnx,
    load_int8,
    model_size_mb,
    quantize_dynamic_int8,
    quantize_onnx_int8,
    save_int8,
)

LABELS = ["neg", "neu", "pos"]
TEXTS = [
    "the company profit rose",
    "net sales decreased in the quarter of the year",
    "loss",
    "stock market shares fell and the company reported a net loss of eur million",
    "growth",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    # hidden 64 so int8 error is measured on a model with some width, still ~0.1 s per forward
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny"), hidden=64, layers=2)


def _model(tiny_dir, task: str):
    torch.manual_seed(0)  # the classifier head is freshly initialised by load_base
    model, tok = load_base(tiny_dir, task=task, labels=LABELS)
    with torch.no_grad():  # a random head gives ~0.01 logits; scale it so the classes are separable
        model.classifier.weight.mul_(50)
    return model.eval(), tok


@pytest.fixture(scope="module", params=["sequence", "token"])
def exported(request, tiny_dir, tmp_path_factory):
    """(task, model, tokenizer, fp32 onnx, int8 onnx), exported once per task for the module."""
    task = request.param
    model, tok = _model(tiny_dir, task)
    out = tmp_path_factory.mktemp(f"onnx-{task}")
    fp32 = export_onnx(model, tok, out / f"{task}.onnx", task=task)
    int8 = quantize_onnx_int8(fp32, out / f"{task}.int8.onnx")
    return task, model, tok, fp32, int8


def _random_batch(vocab_size: int, batch: int, seq: int, seed: int) -> dict[str, torch.Tensor]:
    """Random ids with ragged lengths (right padding), independent of the tokenizer's vocabulary."""
    g = torch.Generator().manual_seed(seed)
    low = 5 if vocab_size > 5 else 0  # skip the special tokens when the vocabulary has more
    ids = torch.randint(low, vocab_size, (batch, seq), generator=g)
    lengths = torch.randint(2, seq + 1, (batch,), generator=g)
    lengths[0] = seq
    mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
    ids = ids * mask
    types = torch.zeros_like(ids)
    types[:, seq // 2 :] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types * mask}


def _torch_logits(model, batch) -> np.ndarray:
    with torch.no_grad():
        return model(**batch).logits.numpy()


@pytest.mark.parametrize("task", ["sequence", "token"])
def test_dynamic_int8_close_and_smaller(tiny_dir, task):
    model, tok = _model(tiny_dir, task)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    qmodel = quantize_dynamic_int8(model)
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    ref, got = _torch_logits(model, enc), _torch_logits(qmodel, enc)
    assert got.shape == ref.shape
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() < 0.1 * scale
    assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.8
    assert model_size_mb(qmodel) < model_size_mb(model)
    # the input model is not modified
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert isinstance(model.bert.encoder.layer[0].attention.self.query, torch.nn.Linear)


@pytest.mark.parametrize("per_channel", [True, False])
def test_int8_save_load_roundtrip(tiny_dir, tmp_path, per_channel):
    model, tok = _model(tiny_dir, "token")
    qmodel = quantize_dynamic_int8(model, per_channel=per_channel)
    out = save_int8(qmodel, tmp_path / "int8", tokenizer=tok)
    assert (out / "config.json").is_file() and (out / "model.int8.safetensors").is_file()
    loaded = load_int8(out)
    assert type(loaded) is type(model)
    batch = _random_batch(model.config.vocab_size, 3, 9, seed=1)
    np.testing.assert_array_equal(_torch_logits(loaded, batch), _torch_logits(qmodel, batch))
    # int8 weights on disk are smaller than the fp32 state dict
    assert model_size_mb(out / "model.int8.safetensors") < model_size_mb(model)


def test_int8_errors(tiny_dir, tmp_path):
    model, _ = _model(tiny_dir, "sequence")
    with pytest.raises(ConfigError):
        save_int8(model, tmp_path / "x")  # not quantized
    with pytest.raises(ModelNotFoundError):
        load_int8(tmp_path / "missing")
    with pytest.raises(ConfigError):
        quantize_dynamic_int8(quantize_dynamic_int8(model))  # nothing left to quantize
    with pytest.raises(ConfigError):
        export_onnx(quantize_dynamic_int8(model), None, tmp_path / "m.onnx")


def test_onnx_export_matches_torch_on_varied_shapes(exported):
    task, model, tok, path, _ = exported
    assert path.is_file() and not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    onnx_model = OnnxModel(path, num_threads=1)
    assert onnx_model.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    for seed, (batch, seq) in enumerate([(1, 3), (2, 17), (7, 40), (4, 5)]):
        enc = _random_batch(model.config.vocab_size, batch, seq, seed)
        ref = _torch_logits(model, enc)
        got = onnx_model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() < 1e-4
    # numpy inputs and a missing token_type_ids (zeros) work too
    enc = tok(TEXTS, padding=True, return_tensors="np")
    ref = _torch_logits(model, {k: torch.from_numpy(v) for k, v in enc.items()})
    assert np.abs(onnx_model(enc["input_ids"], enc["attention_mask"]) - ref).max() < 1e-4


def test_onnx_export_checks_task(tiny_dir, tmp_path):
    model, tok = _model(tiny_dir, "token")
    with pytest.raises(ConfigError, match="task='token'"):
        export_onnx(model, tok, tmp_path / "m.onnx", task="sequence")
    with pytest.raises(ConfigError):
        export_onnx(model, tok, tmp_path / "m.onnx", task="embedding")
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_int8_smaller_and_close(exported, tmp_path):
    task, model, tok, fp32, int8 = exported
    assert model_size_mb(int8) < 0.8 * model_size_mb(fp32)
    enc = _random_batch(model.config.vocab_size, 6, 12, seed=3)
    ref = _torch_logits(model, enc)
    got = OnnxModel(int8, num_threads=1)(**{k: v.numpy() for k, v in enc.items()})
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 0.15 * np.abs(ref).max()
    # embeddings as int8 too (and ORT's pre-processing path): smaller still, same outputs shape
    small = quantize_onnx_int8(fp32, tmp_path / "emb.onnx", quantize_embeddings=True, preprocess=True)
    assert model_size_mb(small) < model_size_mb(int8)
    got = OnnxModel(small, num_threads=1)(**{k: v.numpy() for k, v in enc.items()})
    assert np.abs(got - ref).max() < 0.15 * np.abs(ref).max()
    with pytest.raises(ConfigError):
        quantize_onnx_int8(fp32, fp32)
    with pytest.raises(ModelNotFoundError):
        quantize_onnx_int8(tmp_path / "nope.onnx", tmp_path / "out.onnx")


def test_onnx_model_errors(tmp_path):
    with pytest.raises(ModelNotFoundError):
        OnnxModel(tmp_path / "missing.onnx")


def test_model_size_mb(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 1_000_000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"x" * 500_000)
    assert model_size_mb(tmp_path / "a.bin") == pytest.approx(1.0)
    assert model_size_mb(tmp_path) == pytest.approx(1.5)
    linear = torch.nn.Linear(1000, 250)  # 250k float32 params = 1 MB + pickle framing
    assert 1.0 < model_size_mb(linear) < 1.01
    with pytest.raises(ModelNotFoundError):
        model_size_mb(tmp_path / "none")
    with pytest.raises(ConfigError):
        model_size_mb(3)


@pytest.mark.slow
def test_minilm_int8_routes_agree_with_fp32(tmp_path):
    """Real MiniLM, head fitted on frozen features of Financial PhraseBank: int8 keeps the decisions."""
    from pathlib import Path

    from sklearn.linear_model import LogisticRegression

    source = Path(__file__).parents[2] / "data/datasets/financial_phrasebank/Sentences_50Agree.txt"
    rows = [r.rsplit("@", 1) for r in source.read_text(encoding="latin-1").splitlines() if "@" in r]
    rows = rows[::20][:256]  # spread over the file, which is grouped
    texts, gold = [r[0] for r in rows], [["negative", "neutral", "positive"].index(r[1].strip()) for r in rows]
    torch.manual_seed(0)
    model, tok = load_base("minilm", task="sequence", labels=LABELS)
    model.eval()
    enc = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        pooled = model.bert(**enc).pooler_output.numpy()
        head = LogisticRegression(C=10, max_iter=2000).fit(pooled[:128], gold[:128])
        model.classifier.weight.copy_(torch.from_numpy(head.coef_))
        model.classifier.bias.copy_(torch.from_numpy(head.intercept_))
    test = {k: v[128:] for k, v in enc.items()}
    ref = _torch_logits(model, test)
    fp32 = export_onnx(model, tok, tmp_path / "fp32.onnx", task="sequence")
    int8 = quantize_onnx_int8(fp32, tmp_path / "int8.onnx")
    small = quantize_onnx_int8(fp32, tmp_path / "small.onnx", quantize_embeddings=True)
    feeds = {k: v.numpy() for k, v in test.items()}
    assert np.abs(OnnxModel(fp32)(**feeds) - ref).max() < 1e-4
    for got, floor in (
        (_torch_logits(quantize_dynamic_int8(model), test), 0.85),
        (OnnxModel(int8)(**feeds), 0.9),
        (OnnxModel(small)(**feeds), 0.88),
    ):
        assert (got.argmax(-1) == ref.argmax(-1)).mean() >= floor
    assert model_size_mb(int8) < 0.7 * model_size_mb(fp32)
    assert model_size_mb(small) < 0.3 * model_size_mb(fp32)
