"""Hyperparameter search (Optuna, TPE) over a small space, scored on the dev split's primary metric."""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kgfusion.core.errors import ConfigError, missing_extra
from kgfusion.core.finetune import TrainConfig, train

log = logging.getLogger(__name__)

# Small on purpose: each trial is a full fine-tune on a 2-core CPU.
DEFAULT_SPACE: dict[str, Any] = {
    "lr": {"full": (1e-5, 1e-4), "lora": (2e-4, 3e-3)},  # log-uniform bounds per method
    "lora_r": [4, 8, 16],
    "warmup_ratio": [0.0, 0.1],
    "fgm_epsilon": [0.0, 0.5],
}


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_value: float
    metric: str
    trials: list[dict[str, Any]]
    best_config: TrainConfig

    def table(self) -> str:
        keys = sorted({k for t in self.trials for k in t["params"]})
        lines = [f"{'trial':>5} " + " ".join(f"{k:>13}" for k in keys) + f" {self.metric:>10}"]
        for t in self.trials:
            cells = " ".join(f"{_fmt(t['params'].get(k)):>13}" for k in keys)
            lines.append(f"{t['number']:>5} {cells} {t['value']:>10.4f}")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.2e}" if isinstance(v, float) and v and v < 0.01 else str(v)


def search(base: TrainConfig, train_examples: Sequence, dev_examples: Sequence, n_trials: int = 8,
           seed: int = 13, space: dict[str, Any] | None = None, progress: bool = False) -> SearchResult:
    """Run ``n_trials`` trainings from ``base`` with sampled settings; return the best by dev metric."""
    try:
        import optuna
    except ImportError as exc:
        raise missing_extra("optuna", "hpo") from exc
    if n_trials < 1:
        raise ConfigError(f"n_trials={n_trials}; must be at least 1")
    space = space or DEFAULT_SPACE
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def sample(trial) -> TrainConfig:
        lo, hi = space["lr"][base.method]
        params: dict[str, Any] = {"lr": trial.suggest_float("lr", lo, hi, log=True)}
        if base.method == "lora":
            params["lora_r"] = trial.suggest_categorical("lora_r", space["lora_r"])
        params["warmup_ratio"] = trial.suggest_categorical("warmup_ratio", space["warmup_ratio"])
        params["fgm_epsilon"] = trial.suggest_categorical("fgm_epsilon", space["fgm_epsilon"])
        return dataclasses.replace(base, **params)

    def objective(trial) -> float:
        config = sample(trial)
        result = train(config, train_examples, dev_examples, progress=progress)
        return float(result.dev_metrics[config.primary_metric])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    trials = [{"number": t.number, "params": dict(t.params), "value": float(t.value)}
              for t in study.trials if t.value is not None]
    best = study.best_trial
    return SearchResult(best_params=dict(best.params), best_value=float(best.value), metric=base.primary_metric,
                        trials=trials, best_config=dataclasses.replace(base, **best.params))
