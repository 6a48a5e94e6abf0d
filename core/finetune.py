"""Fine-tuning for sequence and token classification, full or LoRA (peft).

One loop for both tasks: length-bucketed batches, AdamW with linear warm-up, optional class weights
and FGM adversarial training, evaluation on the dev set each epoch with early stopping on the
primary metric (macro-F1 for sequences, entity F1 for tokens). The best weights are restored at the end.
"""
from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from kgfusion.core.batching import bucketed_batches, length_sorted_batches, pad_batch
from kgfusion.core.config import ConfigBase, check_range
from kgfusion.core.data import TextExample, TokenExample
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.evaluate import classification_metrics, entity_metrics
from kgfusion.core.optim import linear_schedule

log = logging.getLogger(__name__)

Task = Literal["sequence", "token"]
DEFAULT_LR = {"full": 5e-5, "lora": 1e-3}


@dataclass
class TrainConfig(ConfigBase):
    """Training settings; ``lr=None`` takes the method's default (full 5e-5, LoRA 1e-3)."""

    task: Literal["sequence", "token"] = "sequence"
    base: str = "minilm"
    method: Literal["full", "lora"] = "lora"
    epochs: int = 3
    batch_size: int = 32
    lr: float | None = None
    max_length: int = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 13
    patience: int = 2
    class_weights: Literal["none", "balanced"] = "none"
    fgm_epsilon: float = 0.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    grad_clip: float = 1.0
    max_steps: int = 0
    labels: tuple[str, ...] = ()

    def validate(self) -> None:
        check_range(self, "epochs", 1, 100)
        check_range(self, "batch_size", 1, 4096)
        check_range(self, "max_length", 8, 4096)
        check_range(self, "warmup_ratio", 0, 1)
        check_range(self, "patience", 0, 100)
        check_range(self, "fgm_epsilon", 0, 10)
        check_range(self, "lora_r", 1, 512)
        check_range(self, "max_steps", 0, None)
        if self.lr is not None:
            check_range(self, "lr", 0, 1, lo_open=True)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]

    @property
    def primary_metric(self) -> str:
        return "macro_f1" if self.task == "sequence" else "f1"


@dataclass
class TrainResult:
    model: Any
    tokenizer: Any
    labels: list[str]
    config: TrainConfig
    history: list[dict[str, float]] = field(default_factory=list)
    dev_metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def infer_labels(task: Task, examples: Sequence) -> list[str]:
    """Label list in a stable order: sorted class names, or O first then B-/I- by type for IOB2."""
    if task == "sequence":
        return sorted({e.label for e in examples})
    types = sorted({t[2:] for e in examples for t in e.tags if t != "O"})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def build_model(config: TrainConfig, labels: list[str]):
    """Base encoder with a fresh head; wrapped by peft when ``method='lora'`` (head kept in full)."""
    from kgfusion.core.models import load_base

    model, tokenizer = load_base(config.base, task=config.task, labels=labels)
    if config.method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        lora = LoraConfig(
            task_type=TaskType.SEQ_CLS if config.task == "sequence" else TaskType.TOKEN_CLS,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_targets),
            modules_to_save=["classifier"],
        )
        model = get_peft_model(model, lora)
    return model, tokenizer


def encode_examples(task: Task, examples: Sequence, tokenizer, label2id: dict[str, int], max_length: int) -> list[dict]:
    """Tokenize; token labels go on each word's first sub-token, -100 on the rest (ignored by the loss)."""
    if task == "sequence":
        enc = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)
        feats = []
        for i, e in enumerate(examples):
            if e.label not in label2id:
                raise DataError(f"row {e.row}: label {e.label!r} not in the model's labels {sorted(label2id)}")
            feats.append({k: enc[k][i] for k in enc} | {"labels": label2id[e.label]})
        return feats
    enc = tokenizer([list(e.tokens) for e in examples], is_split_into_words=True, truncation=True, max_length=max_length)
    feats = []
    for i, e in enumerate(examples):
        prev = None
        labels = []
        for wid in enc.word_ids(i):
            if wid is None or wid == prev:
                labels.append(-100)
            else:
                tag = e.tags[wid]
                if tag not in label2id:
                    raise DataError(f"row {e.row}: tag {tag!r} not in the model's labels {sorted(label2id)}")
                labels.append(label2id[tag])
            prev = wid
        feats.append({k: enc[k][i] for k in enc} | {"labels": labels})
    return feats


def _class_weights(task: Task, feats: list[dict], n_labels: int) -> torch.Tensor:
    counts: Counter[int] = Counter()
    for f in feats:
        lab = f["labels"]
        counts.update([lab] if isinstance(lab, int) else [x for x in lab if x >= 0])
    total = sum(counts.values())
    # "balanced" as in scikit-learn: n / (k * count_c); unseen classes get weight 1.
    return torch.tensor([total / (n_labels * counts[c]) if counts[c] else 1.0 for c in range(n_labels)])


def _loss(task: Task, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), weight=weights, ignore_index=-100
    )


class _FGM:
    """Fast Gradient Method on the word-embedding output (works for full and LoRA training)."""

    def __init__(self, model, epsilon: float) -> None:
        self.epsilon = epsilon
        self.output: torch.Tensor | None = None
        self.delta: torch.Tensor | None = None
        emb = model.get_input_embeddings()
        self.handle = emb.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        if self.delta is not None:
            return output + self.delta
        if not output.requires_grad:
            output.requires_grad_(True)
        output.retain_grad()
        self.output = output
        return output

    def attack(self) -> bool:
        """Prepare the perturbation from the last backward pass; False if there was no gradient."""
        if self.output is None or self.output.grad is None:
            return False
        grad = self.output.grad.detach()
        norm = grad.norm()
        if not torch.isfinite(norm) or norm == 0:
            return False
        self.delta = self.epsilon * grad / norm
        return True

    def restore(self) -> None:
        self.delta = None
        self.output = None

    def close(self) -> None:
        self.handle.remove()


@torch.inference_mode()
def predict_logits(model, feats: list[dict], pad_id: int, batch_size: int = 64) -> list[np.ndarray]:
    """Logits per example (unpadded for tokens), in input order."""
    model.eval()
    out: list[np.ndarray | None] = [None] * len(feats)
    for batch in length_sorted_batches([len(f["input_ids"]) for f in feats], batch_size):
        inputs = pad_batch([{k: v for k, v in feats[i].items() if k != "labels"} for i in batch], pad_id)
        logits = model(**inputs).logits.float().cpu().numpy()
        for row, i in enumerate(batch):
            out[i] = logits[row] if logits.ndim == 2 else logits[row, : len(feats[i]["input_ids"])]
    return out  # type: ignore[return-value]


def evaluate_features(task: Task, model, feats: list[dict], labels: list[str], pad_id: int) -> dict[str, Any]:
    """Dev/test metrics from encoded features (labels included)."""
    logits = predict_logits(model, feats, pad_id)
    if task == "sequence":
        y_true = [labels[f["labels"]] for f in feats]
        y_pred = [labels[int(np.argmax(lg))] for lg in logits]
        return classification_metrics(y_true, y_pred, labels)
    true_seqs, pred_seqs = [], []
    for f, lg in zip(feats, logits):
        keep = [j for j, lab in enumerate(f["labels"]) if lab >= 0]
        true_seqs.append([labels[f["labels"][j]] for j in keep])
        pred_seqs.append([labels[int(np.argmax(lg[j]))] for j in keep])
    return entity_metrics(true_seqs, pred_seqs)


def train(
    config: TrainConfig,
    train_examples: Sequence[TextExample] | Sequence[TokenExample],
    dev_examples: Sequence[TextExample] | Sequence[TokenExample],
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Fine-tune and return the model with the best dev weights restored."""
    if not train_examples:
        raise DataError("no training examples")
    if not dev_examples:
        raise DataError("no dev examples: early stopping and the model card need a dev split")
    set_seed(config.seed)
    labels = list(config.labels) or infer_labels(config.task, train_examples)
    if config.task == "token" and "O" not in labels:
        raise ConfigError(f"token labels must include 'O'; got {labels}")
    label2id = {lab: i for i, lab in enumerate(labels)}
    model, tokenizer = build_model(config, labels)
    train_feats = encode_examples(config.task, train_examples, tokenizer, label2id, config.max_length)
    dev_feats = encode_examples(config.task, dev_examples, tokenizer, label2id, config.max_length)
    pad_id = tokenizer.pad_token_id or 0
    weights = _class_weights(config.task, train_feats, len(labels)) if config.class_weights == "balanced" else None

    rng = random.Random(config.seed)
    steps_per_epoch = math.ceil(len(train_feats) / config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    optim = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    warmup = int(total * config.warmup_ratio)
    sched = linear_schedule(optim, warmup, total)
    fgm = _FGM(model, config.fgm_epsilon) if config.fgm_epsilon > 0 else None
    metric = config.primary_metric
    best_score, best_state, bad_epochs = -1.0, None, 0
    history: list[dict[str, float]] = []
    step = 0
    started = time.perf_counter()
    bar = tqdm(total=total, disable=not progress, desc=f"train {config.method}", unit="step")
    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            losses = []
            for batch_idx in bucketed_batches([len(f["input_ids"]) for f in train_feats], config.batch_size, rng):
                batch = pad_batch([train_feats[i] for i in batch_idx], pad_id)
                gold = batch.pop("labels")
                loss = _loss(config.task, model(**batch).logits, gold, weights)
                loss.backward()
                if fgm is not None and fgm.attack():
                    _loss(config.task, model(**batch).logits, gold, weights).backward()
                    fgm.restore()
                torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
                optim.step()
                sched.step()
                optim.zero_grad(set_to_none=True)
                losses.append(loss.detach().item())
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", epoch=epoch)
                if config.max_steps and step >= config.max_steps:
                    break
            dev = evaluate_features(config.task, model, dev_feats, labels, pad_id)
            record = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)), f"dev_{metric}": dev[metric]}
            if "accuracy" in dev:
                record["dev_accuracy"] = dev["accuracy"]
            history.append(record)
            log.info("epoch %d: %s", epoch, record)
            if on_epoch:
                on_epoch(record)
            if dev[metric] > best_score:
                best_score, bad_epochs = dev[metric], 0
                best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            else:
                bad_epochs += 1
                if bad_epochs > config.patience:
                    log.info("early stop after epoch %d (no %s gain for %d epochs)", epoch, metric, bad_epochs)
                    break
            if config.max_steps and step >= config.max_steps:
                break
    finally:
        bar.close()
        if fgm is not None:
            fgm.close()
    if best_state is not None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n, value in best_state.items():
                params[n].copy_(value)
    model.eval()
    dev_metrics = evaluate_features(config.task, model, dev_feats, labels, pad_id)
    return TrainResult(
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        config=config,
        history=history,
        dev_metrics=dev_metrics,
        seconds=time.perf_counter() - started,
        steps=step,
    )
