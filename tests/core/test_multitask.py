"""Multi-task sequence classification on a tiny random BERT: one encoder, a sentiment and a topic head."""
from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from kgfusion.core.data import TextExample
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.finetune import TrainConfig, train
from tests.conftest import make_sentiment_examples

SENTIMENT = ["negative", "neutral", "positive"]
TOPIC_WORDS = {"health": ["cancer patient", "disease fever", "pain syndrome"],
               "pharma": ["aspirin drug", "drug aspirin", "the drug"],
               "markets": ["stock market", "market shares", "the stock"]}


def make_topic_examples(n_per_topic: int = 25, seed: int = 0) -> list[TextExample]:
    """Keyword-determined topics (words that never decide sentiment)."""
    rng = random.Random(seed)
    rows = []
    for topic, words in TOPIC_WORDS.items():
        for _ in range(n_per_topic):
            rows.append((f"{rng.choice(['a', 'the', 'of'])} {rng.choice(words)} {rng.choice(['in', 'with', 'and'])}",
                         topic))
    rng.shuffle(rows)
    return [TextExample(t, lab, 1000 + i, head="topic") for i, (t, lab) in enumerate(rows)]


def joint_examples() -> tuple[list[TextExample], list[TextExample]]:
    sent = [replace(e, head="sentiment") for e in make_sentiment_examples(25)]
    topic = make_topic_examples(25)
    train_rows = sent[:60] + topic[:60]
    random.Random(3).shuffle(train_rows)  # batches mix the heads
    return train_rows, sent[60:] + topic[60:]


def _cfg(tiny_model_dir, **kw) -> TrainConfig:
    base = dict(base=tiny_model_dir, method="full", epochs=12, batch_size=8, max_length=16, lr=3e-3, patience=12,
                seed=0, heads={"sentiment": SENTIMENT, "topic": []})
    return TrainConfig(**(base | kw))


@pytest.fixture(scope="module")
def trained(tiny_model_dir):
    train_rows, dev_rows = joint_examples()
    return train(_cfg(tiny_model_dir), train_rows, dev_rows, progress=False), dev_rows


@pytest.fixture(scope="module")
def full_bundle(trained, tiny_model_dir, tmp_path_factory):
    from kgfusion.core.bundle import save_bundle

    res, _ = trained
    out = tmp_path_factory.mktemp("mt") / "mt-full"
    return save_bundle(out, res.model, res.tokenizer, task="sequence", method="full", base=tiny_model_dir,
                       labels=res.labels, max_length=16, train_config=res.config.to_dict())


@pytest.fixture(scope="module")
def onnx_bundle(full_bundle, tmp_path_factory):
    """The full bundle with model.int8.onnx added (int8 weights and embeddings, as shipped)."""
    from kgfusion.core.bundle import ONNX_INT8, add_file_to_bundle, load_bundle
    from kgfusion.core.quantize import export_onnx, quantize_onnx_int8

    work = tmp_path_factory.mktemp("onnx")
    loaded = load_bundle(full_bundle)
    fp32 = export_onnx(loaded.model, loaded.tokenizer, work / "model.onnx", task="sequence")
    add_file_to_bundle(full_bundle, quantize_onnx_int8(fp32, work / ONNX_INT8, quantize_embeddings=True), ONNX_INT8)
    return full_bundle


def _texts(rows):
    return [e.text for e in rows]


# -- training ---------------------------------------------------------------------------------


def test_multitask_training_lowers_the_loss_and_learns_both_heads(trained):
    res, dev_rows = trained
    assert res.heads == {"sentiment": SENTIMENT, "topic": ["health", "markets", "pharma"]}  # empty list: from data
    assert res.labels == SENTIMENT  # the primary head
    assert res.history[0]["train_loss"] > 2 * res.history[-1]["train_loss"]
    heads = res.dev_metrics["heads"]
    assert heads["sentiment"]["accuracy"] >= 0.9 and heads["topic"]["accuracy"] >= 0.9  # chance is 1/3
    assert res.dev_metrics["macro_f1"] == pytest.approx((heads["sentiment"]["macro_f1"] + heads["topic"]["macro_f1"]) / 2)
    assert {"dev_sentiment_macro_f1", "dev_topic_macro_f1", "dev_topic_accuracy"} <= set(res.history[-1])
    assert heads["sentiment"]["n"] + heads["topic"]["n"] == len(dev_rows)


def test_lora_multitask_trains_and_round_trips(tiny_model_dir, tmp_path):
    from kgfusion.core.bundle import load_bundle, save_bundle
    from kgfusion.core.predict import Predictor

    train_rows, dev_rows = joint_examples()
    cfg = _cfg(tiny_model_dir, method="lora", lr=1e-2, epochs=6)
    res = train(cfg, train_rows, dev_rows, progress=False)
    assert res.history[0]["train_loss"] > res.history[-1]["train_loss"]  # LoRA on a random tiny encoder: slow
    out = save_bundle(tmp_path / "mt-lora", res.model, res.tokenizer, task="sequence", method="lora",
                      base=tiny_model_dir, labels=res.labels, max_length=16, train_config=cfg.to_dict())
    assert "adapter_model.safetensors" in load_bundle(out).manifest.files
    before = Predictor(res.model, res.tokenizer, res.labels, "sequence").predict_heads(_texts(dev_rows))
    after = Predictor.from_bundle(out).predict_heads(_texts(dev_rows))
    for head in ("sentiment", "topic"):
        np.testing.assert_allclose(before[head], after[head], atol=1e-5)


def test_each_head_learns_only_from_its_own_rows(trained):
    from kgfusion.core.batching import pad_batch
    from kgfusion.core.finetune import _multitask_loss

    res, _ = trained
    model = res.model
    model.train()
    enc = res.tokenizer(["a stock market in", "the drug and"], truncation=True, max_length=16)
    feats = [{k: enc[k][i] for k in enc} | {"labels": i, "head": 1} for i in range(2)]  # topic rows only
    batch = pad_batch(feats, 0)
    model.zero_grad()
    out = model(**{k: v for k, v in batch.items() if k not in ("labels", "head")})
    loss = _multitask_loss(out.head_logits, batch, res.config, None)
    loss.backward()
    untouched = model.classifiers["sentiment"].weight.grad
    assert untouched is None or float(untouched.abs().sum()) == 0.0
    assert float(model.classifiers["topic"].weight.grad.abs().sum()) > 0.0
    weighted = TrainConfig.from_dict(res.config.to_dict() | {"head_weights": {"topic": 2.0}})
    doubled = _multitask_loss(out.head_logits, batch, weighted, None).detach()
    assert float(doubled) == pytest.approx(2 * float(loss.detach()), rel=1e-5)
    model.zero_grad()
    model.eval()


def test_early_stopping_can_follow_one_head(tiny_model_dir):
    train_rows, dev_rows = joint_examples()
    res = train(_cfg(tiny_model_dir, epochs=2, select_on="topic"), train_rows, dev_rows, progress=False)
    assert res.dev_metrics["select_on"] == "topic"
    assert res.dev_metrics["macro_f1"] == res.dev_metrics["heads"]["topic"]["macro_f1"]


def test_multitask_checkpoint_resumes(tiny_model_dir, tmp_path):
    train_rows, dev_rows = joint_examples()
    cfg = _cfg(tiny_model_dir, epochs=2)
    first = train(cfg, train_rows, dev_rows, progress=False, checkpoint_dir=tmp_path / "ckpt")
    again = train(cfg, train_rows, dev_rows, progress=False, checkpoint_dir=tmp_path / "ckpt")  # all epochs done
    assert again.steps == first.steps and again.history == first.history
    assert again.dev_metrics["macro_f1"] == pytest.approx(first.dev_metrics["macro_f1"])


# -- bundle, predictor, ONNX ------------------------------------------------------------------


def test_save_load_round_trip_gives_identical_predictions(trained, full_bundle):
    from kgfusion.core.bundle import load_bundle
    from kgfusion.core.predict import Predictor

    res, dev_rows = trained
    loaded = load_bundle(full_bundle)
    assert loaded.manifest.labels == SENTIMENT
    assert loaded.manifest.extra["heads"] == {"sentiment": SENTIMENT, "topic": ["health", "markets", "pharma"]}
    assert loaded.manifest.extra["primary_head"] == "sentiment"
    assert loaded.heads == res.heads
    before = Predictor(res.model, res.tokenizer, res.labels, "sequence").predict_heads(_texts(dev_rows))
    predictor = Predictor.from_bundle(full_bundle)
    after = predictor.predict_heads(_texts(dev_rows))
    assert set(after) == {"sentiment", "topic"}
    for head in after:
        np.testing.assert_array_equal(before[head], after[head])
    # predict_proba / predict keep answering with the primary (sentiment) head
    np.testing.assert_array_equal(predictor.predict_proba(_texts(dev_rows)), after["sentiment"])
    multi = predictor.predict_multi(["the stock market and"])[0]
    assert multi["topic"].label == "markets" and set(multi["sentiment"].probs) == set(SENTIMENT)
    assert predictor.predict(["profit rose"])[0].label in SENTIMENT


def test_onnx_int8_export_has_one_output_per_head_and_matches_fp32(trained, onnx_bundle):
    from kgfusion.core.bundle import ONNX_INT8, load_bundle
    from kgfusion.core.predict import Predictor
    from kgfusion.core.quantize import OnnxModel

    res, dev_rows = trained
    assert OnnxModel(onnx_bundle / ONNX_INT8).output_names == ["logits_sentiment", "logits_topic"]
    texts = _texts(dev_rows)
    ref = Predictor.from_bundle(onnx_bundle).predict_heads(texts)
    onnx = Predictor.from_bundle(onnx_bundle, backend="onnx-int8")
    assert onnx.heads == load_bundle(onnx_bundle).heads and onnx.primary_head == "sentiment"
    got = onnx.predict_heads(texts)
    for head in ("sentiment", "topic"):
        np.testing.assert_array_equal(ref[head].argmax(1), got[head].argmax(1))
    np.testing.assert_allclose(onnx.predict_proba(texts), got["sentiment"])
    torch_int8 = Predictor.from_bundle(onnx_bundle, backend="int8").predict_heads(texts)
    assert (torch_int8["topic"].argmax(1) == ref["topic"].argmax(1)).mean() >= 0.9


def test_both_answers_come_from_one_forward_pass(full_bundle, tmp_path):
    from kgfusion.core.predict import Predictor

    predictor = Predictor.from_bundle(full_bundle, batch_size=32)
    calls = []
    predictor.model.encoder.register_forward_hook(lambda *_: calls.append(1))
    texts = [f"the stock market {i}" for i in range(10)]
    out = predictor.predict_heads(texts)
    assert len(calls) == 1 and out["sentiment"].shape == (10, 3) and out["topic"].shape == (10, 3)
    predictor.predict_multi(texts)
    assert len(calls) == 2


def test_onnx_backend_answers_every_head_in_one_run(onnx_bundle):
    from kgfusion.core.predict import Predictor

    predictor = Predictor.from_bundle(onnx_bundle, backend="onnx-int8", batch_size=32)
    session = predictor._onnx.session
    runs = []

    class Counting:
        def run(self, names, feed):
            runs.append(list(names))
            return session.run(names, feed)

    predictor._onnx.session = Counting()
    out = predictor.predict_heads([f"the drug {i}" for i in range(5)])
    assert runs == [["logits_sentiment", "logits_topic"]] and set(out) == {"sentiment", "topic"}


def test_single_head_predictor_names_its_one_head(tiny_bundle):
    from kgfusion.core.predict import SINGLE_HEAD, Predictor

    predictor = Predictor.from_bundle(tiny_bundle)
    assert predictor.heads == {SINGLE_HEAD: predictor.labels} and predictor.primary_head == SINGLE_HEAD
    np.testing.assert_array_equal(predictor.predict_heads(["profit rose"])[SINGLE_HEAD],
                                  predictor.predict_proba(["profit rose"]))


# -- configuration and data checks ------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"heads": {"sentiment": SENTIMENT}}, r"needs at least two"),
    ({"heads": {"Topic!": ["a", "b"], "sentiment": SENTIMENT}}, r"head name 'Topic!' must be a lower-case"),
    ({"heads": {"a": ["x", "x"], "b": ["y", "z"]}}, r"duplicate label\(s\) \['x'\]"),
    ({"heads": {"a": ["x"], "b": ["y", "z"]}}, r"heads\['a'\] has 1 label"),
    ({"heads": {"a": "xy", "b": ["y", "z"]}}, r"must be a list of label names"),
    ({"heads": {"a": ["x", "y"], "b": ["y", "z"]}, "primary_head": "c"}, r"primary_head='c'; allowed: \['a', 'b'\]"),
    ({"heads": {"a": ["x", "y"], "b": ["y", "z"]}, "head_weights": {"c": 1.0}}, r"head_weights names 'c'"),
    ({"heads": {"a": ["x", "y"], "b": ["y", "z"]}, "head_weights": {"a": 0}}, r"head_weights\['a'\]=0"),
    ({"heads": {"a": ["x", "y"], "b": ["y", "z"]}, "select_on": "c"}, r"select_on='c'; allowed: \['mean', 'a', 'b'\]"),
    ({"heads": {"a": ["x", "y"], "b": ["y", "z"]}, "task": "token"}, r"needs task='sequence'"),
    ({"heads": {"a": ["x", "y"], "b": ["y", "z"]}, "labels": ("p", "q")}, r"differ from the primary head 'a'"),
    ({"head_weights": {"a": 1.0}}, r"head_weights=.* needs heads"),
    ({"select_on": "topic"}, r"select_on='topic' needs heads"),
])
def test_config_checks_name_the_bad_value(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_config_round_trips_through_sorted_json():
    import json

    cfg = TrainConfig(heads={"topic": ["b", "a"], "sentiment": SENTIMENT}, primary_head="sentiment",
                      head_weights={"topic": 0.5})
    again = TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg and again.primary_head == "sentiment" and again.heads["topic"] == ("b", "a")
    assert TrainConfig(heads={"b": ["x", "y"], "a": ["u", "v"]}).primary_head == "b"  # the first, written out


def test_rows_must_name_a_known_head_and_every_head_needs_rows(tiny_model_dir):
    train_rows, dev_rows = joint_examples()
    with pytest.raises(DataError, match=r"row \d+: head '' is not one of the heads"):
        train(_cfg(tiny_model_dir, epochs=1), train_rows + [TextExample("x", "positive", 7)], dev_rows, progress=False)
    with pytest.raises(DataError, match=r"no training rows for head\(s\) \['topic'\]"):
        train(_cfg(tiny_model_dir, epochs=1), [e for e in train_rows if e.head == "sentiment"], dev_rows,
              progress=False)
    with pytest.raises(DataError, match="no dev rows for head 'topic'"):
        train(_cfg(tiny_model_dir, epochs=1, max_steps=1), train_rows, [e for e in dev_rows if e.head == "sentiment"],
              progress=False)
    with pytest.raises(DataError, match=r"label 'bogus' not in head 'topic'"):
        train(_cfg(tiny_model_dir, epochs=1, heads={"sentiment": SENTIMENT, "topic": ["health", "markets", "pharma"]}),
              train_rows + [TextExample("x", "bogus", 9, "topic")], dev_rows, progress=False)
    with pytest.raises(ConfigError, match="soft_targets are not supported"):
        train(_cfg(tiny_model_dir, epochs=1), train_rows, dev_rows, progress=False,
              soft_targets=[np.ones(3) / 3] * len(train_rows))


def test_predictor_checks_labels_against_the_primary_head(trained):
    from kgfusion.core.predict import Predictor

    res, _ = trained
    with pytest.raises(ConfigError, match="differ from the primary head 'sentiment'"):
        Predictor(res.model, res.tokenizer, ["a", "b", "c"], "sequence")
