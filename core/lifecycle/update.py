"""Continual updates of a deployed model: learn new data without forgetting what the old version knew.

Methods (``UpdateConfig.method``):
- ``naive``: fine-tune the old weights on the new data only (forgets; the benchmark's lower bound).
- ``rehearsal``: the new data plus a replay sample of the old training data (``replay`` rows).
- ``l2sp``: rehearsal + an L2-SP penalty ``weight * sum (w - w_old)^2`` pulling every weight towards the
  old version (Li et al. 2018: the starting point, not zero, is the prior).
- ``ewc``: rehearsal + elastic weight consolidation, the same penalty weighted per parameter by a diagonal
  Fisher estimate from the old data (Kirkpatrick et al. 2017), normalised to mean 1 so ``weight`` means
  the same as for L2-SP.
- ``adapter``: a new LoRA adapter on top of the frozen old weights (the head stays trainable), merged
  into plain weights afterwards so the new version is an ordinary bundle; replay as for rehearsal.

``benchmarks/continual.py`` measures all of them against joint training on everything; the default is
the method it shows best (DEFAULT_METHOD: rehearsal). The promotion gate (``forgetting_gate``) refuses a
version whose old-task accuracy fell by more than ``max_drop_points``.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from kgfusion.core.config import ConfigBase, check_range
from kgfusion.core.errors import BundleError, ConfigError, DataError

Method = Literal["naive", "rehearsal", "l2sp", "ewc", "adapter"]
METHODS: tuple[str, ...] = ("naive", "rehearsal", "l2sp", "ewc", "adapter")
# the best of benchmarks/results/continual.json (4 Twitter increments on a PhraseBank model): rehearsal with
# 3,000 replayed rows kept PhraseBank within -0.82 points and came within 1.16 points of joint training (1,000
# rows: -1.65 / 1.47); L2-SP / EWC / adapter (1,000 rows) did not beat rehearsal (-2.27 / -2.07 / -1.86 points
# backward, 1.58 / 1.58 / 2.62 behind joint); naive -3.72
DEFAULT_METHOD: Method = "rehearsal"


@dataclass
class UpdateConfig(ConfigBase):
    method: Method = DEFAULT_METHOD
    replay: int = 3000  # old training rows mixed into the update (not for naive); 3,000 measured best
    reg_weight: float = 0.05  # L2-SP / EWC strength
    fisher_samples: int = 256  # old rows for the EWC Fisher estimate
    epochs: int = 2
    batch_size: int = 32
    lr: float | None = None  # default: 3e-5 for weight updates, 5e-4 for a new adapter
    max_length: int = 64
    patience: int = 1
    seed: int = 13
    lora_r: int = 8
    max_drop_points: float = 1.0  # the promotion gate: old-task accuracy may fall at most this much
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method {self.method!r} is not one of {', '.join(METHODS)}")
        check_range(self, "replay", 0, None)
        check_range(self, "reg_weight", 0, 1e6)
        check_range(self, "fisher_samples", 1, None)
        check_range(self, "epochs", 1, 100)
        check_range(self, "max_drop_points", 0, 100)
        if self.lr is not None:
            check_range(self, "lr", 0, 1, lo_open=True)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (5e-4 if self.method == "adapter" else 3e-5)


@dataclass
class UpdateResult:
    model: Any
    tokenizer: Any
    labels: list[str]
    task: str
    config: UpdateConfig
    train_rows: int
    replayed: int
    history: list[dict[str, float]]
    seconds: float


def load_trainable(bundle_dir: str | Path):
    """The bundle's torch model (LoRA merged), tokenizer, labels and task; a one-line error for a bundle
    that ships only ONNX weights (nothing to continue training from)."""
    from kgfusion.core.bundle import load_bundle, onnx_only, read_manifest

    manifest = read_manifest(bundle_dir)
    if onnx_only(manifest):
        raise BundleError(f"{bundle_dir} ships only ONNX int8 weights (torch weights stripped to stay under the "
                          "25 MB bundle budget), so there is nothing to continue training from; rebuild it with "
                          "its recipe keeping the torch weights (recipe data.ship: false) and update that")
    loaded = load_bundle(bundle_dir, merge_lora=True)
    return loaded.model, loaded.tokenizer, list(loaded.labels), manifest.task, manifest


def replay_sample(old_rows: Sequence, n: int, seed: int) -> list:
    """``n`` rows of the old training data, drawn without replacement (all of them when fewer)."""
    rows = list(old_rows)
    return rows if n >= len(rows) else random.Random(seed).sample(rows, n)


class WeightAnchor:
    """The penalty ``weight * sum_i F_i (w_i - w_old_i)^2`` over the trainable parameters; F = 1 is L2-SP."""

    def __init__(self, model, weight: float, fisher: dict[str, torch.Tensor] | None = None) -> None:
        self.weight = weight
        self.anchor = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        self.fisher = fisher

    def __call__(self, model) -> torch.Tensor:
        total = torch.zeros(())
        for n, p in model.named_parameters():
            ref = self.anchor.get(n)
            if ref is None:
                continue
            diff = (p - ref) ** 2
            total = total + ((self.fisher[n] * diff).sum() if self.fisher is not None and n in self.fisher
                             else diff.sum())
        return self.weight * total


def fisher_diagonal(model, tokenizer, task: str, labels: list[str], rows: Sequence, *, max_length: int,
                    batch_size: int = 8) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher (squared mini-batch gradients of the gold log-likelihood), normalised so
    its mean over all parameters is 1."""
    from kgfusion.core.finetune import _collate, _loss, _model_inputs, encode_examples

    label2id = {lab: i for i, lab in enumerate(labels)}
    feats = encode_examples(task, list(rows), tokenizer, label2id, max_length)  # type: ignore[arg-type]
    pad_id = tokenizer.pad_token_id or 0
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    model.eval()  # no dropout: the curvature of the deployed function
    for start in range(0, len(feats), batch_size):
        batch = _collate(feats[start:start + batch_size], pad_id)
        model.zero_grad(set_to_none=True)
        loss = _loss(task, model(**_model_inputs(batch)).logits, batch["labels"], None)  # type: ignore[arg-type]
        loss.backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    mean = torch.cat([f.flatten() for f in fisher.values()]).mean().clamp(min=1e-20)
    return {n: f / mean for n, f in fisher.items()}


def _with_adapter(model, task: str, r: int):
    from peft import LoraConfig, TaskType, get_peft_model

    for p in model.parameters():
        p.requires_grad_(False)
    lora = LoraConfig(task_type=TaskType.SEQ_CLS if task == "sequence" else TaskType.TOKEN_CLS, r=r,
                      lora_alpha=2 * r, lora_dropout=0.1, target_modules=["query", "key", "value", "dense"],
                      modules_to_save=["classifier"])
    return get_peft_model(model, lora)


def update_model(init: tuple[Any, Any, list[str], str], new_train: Sequence, new_dev: Sequence,
                 old_train: Sequence = (), old_dev: Sequence = (), config: UpdateConfig | None = None,
                 *, progress: bool = False, on_epoch: Callable[[dict[str, float]], None] | None = None) -> UpdateResult:
    """Train the old model ``init = (model, tokenizer, labels, task)`` on ``new_train`` with the chosen
    method; early stopping on ``new_dev`` (+ ``old_dev`` for every method but naive, so the chosen epoch
    does not trade the old task away)."""
    import time

    from kgfusion.core.finetune import TrainConfig, train

    cfg = config or UpdateConfig()
    cfg.validate()
    model, tokenizer, labels, task = init
    if not new_train:
        raise DataError("no new training rows to update with")
    unknown = sorted({e.label for e in new_train if task == "sequence" and e.label not in labels})
    if unknown:
        raise DataError(f"new data has labels the model does not know: {unknown} (model labels: {labels}); "
                        "map or drop those rows")
    started = time.perf_counter()
    replayed = [] if cfg.method == "naive" else replay_sample(old_train, cfg.replay, cfg.seed)
    rows = list(new_train) + replayed
    random.Random(cfg.seed).shuffle(rows)
    dev = list(new_dev) if cfg.method == "naive" else list(new_dev) + list(old_dev)
    if not dev:
        raise DataError("no dev rows for early stopping: pass the new data's dev split")
    regularizer = None
    if cfg.method == "ewc":
        sample = replay_sample(old_train, cfg.fisher_samples, cfg.seed + 1)
        if not sample:
            raise DataError("EWC needs old training rows for its Fisher estimate (pass the old data)")
        fisher = fisher_diagonal(model, tokenizer, task, labels, sample, max_length=cfg.max_length)
        regularizer = WeightAnchor(model, cfg.reg_weight, fisher)
    elif cfg.method == "l2sp":
        regularizer = WeightAnchor(model, cfg.reg_weight)
    if cfg.method == "adapter":
        model = _with_adapter(model, task, cfg.lora_r)
    tc = TrainConfig(task=task, base="(continued)", method="lora" if cfg.method == "adapter" else "full",  # type: ignore[arg-type]
                     epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.learning_rate, max_length=cfg.max_length,
                     patience=cfg.patience, seed=cfg.seed, labels=tuple(labels), warmup_ratio=0.06)
    result = train(tc, rows, dev, progress=progress, on_epoch=on_epoch, init=(model, tokenizer),
                   regularizer=regularizer)
    out_model = result.model
    if cfg.method == "adapter":
        out_model = out_model.merge_and_unload()
    return UpdateResult(out_model.eval(), tokenizer, labels, task, cfg, len(rows), len(replayed), result.history,
                        time.perf_counter() - started)


def accuracy_of(model, tokenizer, labels: list[str], task: str, rows: Sequence, max_length: int = 128) -> dict[str, Any]:
    """Accuracy / macro-F1 (sequences) or entity F1 (tokens) of a torch model on ``rows``."""
    from kgfusion.core.jobs import evaluate_predictor
    from kgfusion.core.predict import Predictor

    return evaluate_predictor(Predictor(model, tokenizer, labels, task, max_length=max_length), list(rows))  # type: ignore[arg-type]


def headline(metrics: dict[str, Any]) -> float:
    """The metric the gate compares: accuracy for sequences, entity F1 for tokens."""
    return float(metrics["accuracy"] if "accuracy" in metrics else metrics["f1"])


@dataclass(frozen=True)
class GateVerdict:
    promote: bool
    drop_points: float
    message: str


def forgetting_gate(old_before: float, old_after: float, max_drop_points: float, *, forced: bool = False) -> GateVerdict:
    """Refuse a version whose old-task score fell by more than ``max_drop_points`` (unless forced)."""
    drop = round(100 * (old_before - old_after), 2)
    if drop <= max_drop_points:
        return GateVerdict(True, drop, f"old-task score {old_after:.4f} vs {old_before:.4f} before "
                                       f"({-drop:+.2f} points, limit -{max_drop_points:g}): promoted")
    if forced:
        return GateVerdict(True, drop, f"old-task score fell {drop:.2f} points (limit {max_drop_points:g}); "
                                       "promoted anyway (--force)")
    return GateVerdict(False, drop, f"not promoted: old-task score fell {drop:.2f} points ({old_before:.4f} -> "
                                    f"{old_after:.4f}), more than the {max_drop_points:g}-point limit; more replay "
                                    "(--replay), a stronger anchor (--reg-weight) or --force")


def with_method(config: UpdateConfig, method: str) -> UpdateConfig:
    return replace(config, method=method)  # type: ignore[arg-type]
