"""The lexical (TF-IDF n-gram) head: numpy inference equal to scikit-learn's, storage, fusion, Predictor wiring."""
from __future__ import annotations

import random

import numpy as np
import pytest

from kgfusion.core.lexical import (
    LexicalHead,
    char_wb_ngrams,
    fit_lexical_head,
    fuse_log_probs,
    lexical_file,
    macro_f1,
    tune_fusion,
    word_ngrams,
)

TOPICS = {"earnings": ["quarterly profit beat", "EPS miss", "revenue guidance raised"],
          "fed": ["Fed hikes rates", "Powell signals cut", "FOMC minutes hawkish"],
          "oil": ["crude oil rallies", "OPEC output cut", "Brent falls"]}


def corpus(n: int = 40, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        topic = rng.choice(sorted(TOPICS))
        texts.append(f"{rng.choice(['BREAKING:', 'Update', '$SPY'])} {rng.choice(TOPICS[topic])} "
                     f"{rng.choice(['today', 'again!', 'in Q3'])}")
        labels.append(topic)
    return texts, labels


def test_ngrams_match_scikit_learn_analyzers():
    from sklearn.feature_extraction.text import TfidfVectorizer

    text = "Fed's Powell: rates UP 25bp, a b cd  x"
    word = TfidfVectorizer(ngram_range=(1, 2)).build_analyzer()
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()
    assert word_ngrams(text, 2) == word(text)
    assert char_wb_ngrams(text, 2, 5) == char(text)


def test_numpy_inference_equals_scikit_learn_probabilities():
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels = corpus(60)
    order = sorted(TOPICS)
    head = fit_lexical_head(texts, labels, order, word_max=200, char_max=500, min_df=1)
    wv = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=200)
    cv = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, max_features=500)
    x = hstack([wv.fit_transform(texts), cv.fit_transform(texts)]).tocsr()
    ref = LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced").fit(x, [order.index(y) for y in labels])
    probe, _ = corpus(10, seed=5)
    probe.append("nothing in the vocabulary ~~~")  # no known n-gram: intercepts only, still a distribution
    xp = hstack([wv.transform(probe), cv.transform(probe)]).tocsr()
    np.testing.assert_allclose(head.predict_proba(probe), ref.predict_proba(xp), atol=1e-5)


def test_save_load_round_trip_keeps_predictions(tmp_path):
    texts, labels = corpus(60)
    head = fit_lexical_head(texts, labels, sorted(TOPICS), min_df=1)
    head.alpha, head.tau = 0.4, 0.25
    path = head.save(tmp_path / "lexical_topic.npz")
    back = LexicalHead.load(path)
    assert (back.labels, back.alpha, back.tau) == (head.labels, 0.4, 0.25)
    probe, _ = corpus(20, seed=7)
    # int8 coefficients: the same answers, probabilities within a small tolerance
    assert (back.predict_proba(probe).argmax(1) == head.predict_proba(probe).argmax(1)).all()
    np.testing.assert_allclose(back.predict_proba(probe), head.predict_proba(probe), atol=0.02)


def test_unreadable_file_is_a_one_line_bundle_error(tmp_path):
    from kgfusion.core.errors import BundleError

    bad = tmp_path / "lexical_topic.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a readable lexical head"):
        LexicalHead.load(bad)


def test_fusion_weights_are_chosen_on_dev_and_fix_a_wrong_model():
    texts, labels = corpus(80)
    order = sorted(TOPICS)
    head = fit_lexical_head(texts[:60], labels[:60], order, min_df=1)
    dev_texts, dev_gold = texts[60:], labels[60:]
    wrong = np.full((len(dev_texts), 3), 0.1)  # a model that always says "earnings"
    wrong[:, 0] = 0.8
    tuned = tune_fusion(head, wrong, head.predict_proba(dev_texts), dev_gold)
    assert tuned["alpha"] > 0  # the useless model alone is not chosen
    fused = head.fuse(wrong, dev_texts).argmax(1)
    gold = np.array([order.index(y) for y in dev_gold])
    assert (fused == gold).mean() > (wrong.argmax(1) == gold).mean()
    # alpha 0 and tau 0 give the model back unchanged
    same = fuse_log_probs(wrong, head.predict_proba(dev_texts), 0.0, 0.0, head.log_prior)
    np.testing.assert_allclose(same, wrong / wrong.sum(1, keepdims=True), atol=1e-6)


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    assert macro_f1(y, p, 5) == pytest.approx(f1_score(y, p, average="macro"))


def test_predictor_fuses_a_bundle_lexical_head_only_into_its_head(tiny_bundle, tmp_path):
    import shutil

    from kgfusion.core.bundle import add_file_to_bundle
    from kgfusion.core.predict import Predictor

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    plain = Predictor.from_bundle(bundle)
    head_name = plain.primary_head
    labels = plain.heads[head_name]
    rng = random.Random(1)
    texts = [f"word{rng.randint(0, 5)} thing{rng.randint(0, 5)}" for _ in range(40)]
    head = fit_lexical_head(texts, [labels[int(t[4]) % len(labels)] for t in texts], labels, min_df=1)
    head.alpha = 0.9
    add_file_to_bundle(bundle, head.save(tmp_path / "x.npz"), lexical_file(bundle, head_name).name)
    fused = Predictor.from_bundle(bundle)
    assert set(fused.lexical) == {head_name}
    model_only = Predictor.from_bundle(bundle, lexical=False)
    assert not model_only.lexical
    probe = texts[:5]
    expected = LexicalHead.load(lexical_file(bundle, head_name)).fuse(model_only.predict_proba(probe), probe)
    np.testing.assert_allclose(fused.predict_proba(probe), expected, atol=1e-5)
    np.testing.assert_allclose(fused.predict_heads(probe)[head_name], expected, atol=1e-5)


def test_two_class_head_matches_scikit_learn_binary_model():
    texts, labels = corpus(60)
    keep = [i for i, y in enumerate(labels) if y != "oil"]
    texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    head = fit_lexical_head(texts, labels, sorted(TOPICS), min_df=1)  # "oil" never seen
    probs = head.predict_proba(texts)
    assert probs[:, sorted(TOPICS).index("oil")].max() < 1e-6
    assert [sorted(TOPICS)[i] for i in probs.argmax(1)] == labels
