from __future__ import annotations

import pytest

from kgfusion.core.errors import ConfigError
from kgfusion.core.finetune import TrainConfig
from kgfusion.core.hpo import search


def test_search_returns_best_trial_within_space(tiny_model_dir, sentiment_examples):
    base = TrainConfig(base=tiny_model_dir, method="lora", epochs=1, batch_size=16, max_length=16, seed=0)
    result = search(base, sentiment_examples[:60], sentiment_examples[60:], n_trials=3, seed=1)
    assert len(result.trials) == 3
    assert result.best_value == max(t["value"] for t in result.trials)
    assert 2e-4 <= result.best_params["lr"] <= 3e-3 and result.best_params["lora_r"] in (4, 8, 16)
    assert result.best_config.lr == result.best_params["lr"]
    assert "macro_f1" in result.table().splitlines()[0]


def test_search_needs_a_trial(tiny_model_dir, sentiment_examples):
    with pytest.raises(ConfigError, match="n_trials=0"):
        search(TrainConfig(base=tiny_model_dir), sentiment_examples, sentiment_examples, n_trials=0)
