"""Item text, co-consumed pairs and contrastive tuning of a tiny random encoder."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgfusion.apps.recommend.item_text import (
    TuneConfig,
    _batches,
    cooccurrence_pairs,
    embed_items,
    item_text,
    item_texts,
    load_encoder,
    merged_embedder,
    save_encoder,
    tune_encoder,
)
from kgfusion.core.errors import ConfigError, DataError, ModelNotFoundError


def test_item_text_lists_title_genres_and_top_tags():
    text = item_text("Heat (1995)", ["Action", "Crime"], ["heist", "la", "pacino"], max_tags=2)
    assert text == "Heat (1995). Genres: Action, Crime. Tags: heist, la."
    assert item_text("Untitled", [], []) == "Untitled."
    items = pd.DataFrame({"item_id": [1, 2], "title": ["A", "B"], "genres": [["Drama"], []]})
    assert item_texts(items, {2: ["cult"]}) == ["A. Genres: Drama.", "B. Tags: cult."]


def test_pairs_stay_within_a_user_and_the_window():
    history = pd.DataFrame({"userId": [1, 1, 1, 2, 2], "movieId": [10, 11, 12, 20, 21],
                            "timestamp": [1, 2, 3, 1, 2]})
    pairs = cooccurrence_pairs(history, window=1)
    assert sorted(pairs) == [(10, 11), (11, 12), (20, 21)]
    assert sorted(cooccurrence_pairs(history, window=2)) == [(10, 11), (10, 12), (11, 12), (20, 21)]
    assert len(cooccurrence_pairs(history, max_pairs=2)) == 2
    with pytest.raises(ConfigError):
        cooccurrence_pairs(history, window=0)


def test_batches_never_repeat_an_item():
    pairs = [(i, i + 1) for i in range(0, 40)]
    for batch in _batches(pairs, batch_size=4, steps=10, seed=0):
        ids = [x for p in batch for x in p]
        assert len(ids) == len(set(ids)) and len(batch) == 4


def test_batches_with_few_items_end_instead_of_spinning():
    pairs = [(1, 2), (2, 3), (3, 4)]
    batches = list(_batches(pairs, batch_size=32, steps=5, seed=0))
    assert batches and all(len(b) >= 2 for b in batches) and len(batches) <= 5
    assert list(_batches([(1, 2)], batch_size=4, steps=3, seed=0)) == []


def test_tune_save_load_roundtrip(tiny_model_dir, tmp_path):
    texts = {i: f"the company film {i} profit" if i % 2 else f"the patient film {i} cancer" for i in range(40)}
    pairs = [(i, i + 2) for i in range(36)]
    config = TuneConfig(base=tiny_model_dir, steps=4, batch_size=4, max_length=16, seed=0)
    model, tok, stats = tune_encoder(texts, pairs, config)
    assert stats["steps"] == 4 and np.isfinite(stats["loss_last25"])
    out = save_encoder(model, tok, tmp_path / "enc", config, stats)
    assert (out / "adapter_model.safetensors").is_file() and (out / "tune.json").is_file()
    sample = [texts[i] for i in range(6)]
    a = embed_items(merged_embedder(model, tok, max_length=16), sample)
    b = embed_items(load_encoder(out, max_length=16), sample)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    # tuning moved the weights: the untuned base embeds differently
    from kgfusion.core.embed import Embedder

    base = embed_items(Embedder(tiny_model_dir, max_length=16), sample)
    assert not np.allclose(base, a, atol=1e-4)


def test_bad_inputs(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError):
        TuneConfig(steps=0)
    with pytest.raises(ConfigError):
        TuneConfig(method="adapter")  # type: ignore[arg-type]
    with pytest.raises(DataError):
        tune_encoder({1: "a", 2: "b"}, [(1, 2)], TuneConfig(base=tiny_model_dir, batch_size=4))
    with pytest.raises(ModelNotFoundError):
        load_encoder(tmp_path)
