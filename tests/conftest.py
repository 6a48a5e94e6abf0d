"""Shared fixtures: a tiny random BERT written once per session, small labelled data sets."""
from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    import torch

    # Tiny models gain nothing from threads; one thread keeps the suite steady on a busy 2-core box.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from kgfusion.core.models import make_tiny_model_dir

    return str(make_tiny_model_dir(tmp_path_factory.mktemp("tiny-bert")))


POS = ["profit rose", "sales increased", "growth good", "net profit up", "shares rose"]
NEG = ["loss fell", "sales decreased", "decline bad", "net loss down", "shares fell"]
NEU = ["the company", "the quarter", "a year", "the market", "eur million"]


def make_sentiment_examples(n_per_class: int = 30, seed: int = 0):
    """Keyword-determined sentiment sentences: learnable by a tiny model in a few steps."""
    from kgfusion.core.data import TextExample

    rng = random.Random(seed)
    rows = []
    for label, words in (("positive", POS), ("negative", NEG), ("neutral", NEU)):
        for _ in range(n_per_class):
            rows.append((f"{rng.choice(NEU)} {rng.choice(words)} {rng.choice(NEU)}", label))
    rng.shuffle(rows)
    return [TextExample(t, lab, i + 1) for i, (t, lab) in enumerate(rows)]


def make_ner_examples(n: int = 60, seed: int = 0):
    """Sentences where 'cancer'/'syndrome' words are Disease entities."""
    from kgfusion.core.data import TokenExample

    rng = random.Random(seed)
    out = []
    for i in range(n):
        toks, tags = [], []
        for _ in range(rng.randint(3, 8)):
            if rng.random() < 0.25:
                toks += [rng.choice(["breast", "colon"]), "cancer"]
                tags += ["B-Disease", "I-Disease"]
            else:
                toks.append(rng.choice(["the", "patient", "with", "history", "of", "pain", "and"]))
                tags.append("O")
        out.append(TokenExample(tuple(toks), tuple(tags), i + 1))
    return out


@pytest.fixture
def sentiment_examples():
    return make_sentiment_examples()


@pytest.fixture
def ner_examples():
    return make_ner_examples()


@pytest.fixture(scope="session")
def tiny_bundle(tiny_model_dir, tmp_path_factory):
    """A real (random, 2-step) sentiment bundle on the tiny BERT, for CLI and page tests (finance, the sweep)."""
    from kgfusion.core.bundle import save_bundle
    from kgfusion.core.finetune import TrainConfig, train

    examples = make_sentiment_examples(8)
    config = TrainConfig(base=tiny_model_dir, method="full", epochs=1, batch_size=8, max_length=16, max_steps=2,
                         labels=("negative", "neutral", "positive"))
    result = train(config, examples[:16], examples[16:], progress=False)
    out = tmp_path_factory.mktemp("finance-bundle") / "finsent-tiny"
    return save_bundle(out, result.model, result.tokenizer, task="sequence", method="full", base=tiny_model_dir,
                       labels=result.labels, max_length=16, train_config=config.to_dict())


@pytest.fixture(scope="session")
def tiny_ner_bundle(tiny_model_dir, tmp_path_factory):
    """A random token-classification bundle (Chemical/Disease IOB2) on the tiny BERT."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from kgfusion.core.bundle import save_bundle

    labels = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
    model = AutoModelForTokenClassification.from_pretrained(tiny_model_dir, num_labels=len(labels))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    return save_bundle(tmp_path_factory.mktemp("b") / "tiny-ner", model, tok, task="token", method="full",
                       base=tiny_model_dir, labels=labels, max_length=64)
