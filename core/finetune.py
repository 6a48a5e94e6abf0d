"""Fine-tuning for sequence and token classification, full or LoRA (peft).

One loop for both tasks: length-bucketed batches, AdamW with warm-up and linear or cosine decay,
layer-wise learning-rate decay, optional class weights, FGM/PGD adversarial training, soft targets
(agreement-weighted labels, distillation from an ensemble), gazetteer feature embeddings and a CRF
for token models (core/tokenmodel.py), evaluation on the dev set each epoch with early stopping on
the primary metric (macro-F1 for sequences, entity F1 for tokens, decoded as configured). The best
weights are restored at the end. With ``checkpoint_dir`` every epoch is checkpointed and a rerun
resumes after the last finished epoch.

Multi-task sequence classification (``heads``, core/multitask.py): one shared encoder with a head per
task; every example is labelled for one head (``TextExample.head``), batches mix heads, each head's
loss (times ``head_weights``) uses only its own rows, and early stopping follows ``select_on`` (the mean
of the heads' dev macro-F1, or one head's).
"""
from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
    # the recipe (issue 12): schedule, layer-wise LR decay, decoding, knowledge features, adversaries
    schedule: Literal["linear", "cosine"] = "linear"
    layer_lr_decay: float = 1.0  # lr of layer l (of L) = lr * decay^(L - l); embeddings lowest
    head_lr_scale: float = 1.0  # classifier, CRF and feature embedding learn at lr * scale
    decoder: Literal["argmax", "viterbi", "crf"] = "argmax"  # token tasks; crf adds a trained CRF layer
    kg_features: bool = False  # token tasks: gazetteer match features embedded into the input
    feature_dropout: float = 0.0  # drop a sentence's gazetteer features in training (don't over-trust)
    adversarial: Literal["none", "fgm", "pgd"] = "none"
    adv_epsilon: float = 1.0
    pgd_steps: int = 3
    label_smoothing: float = 0.0
    soft_weight: float = 0.5  # with soft targets: loss = (1 - w) * hard CE + w * soft CE
    # multi-task (core/multitask.py): head name -> labels (empty list: the head's sorted training labels)
    heads: dict[str, tuple[str, ...]] = field(default_factory=dict)
    primary_head: str = ""  # the head predict_proba answers with; default the first of ``heads``
    head_weights: dict[str, float] = field(default_factory=dict)  # loss weight per head (default 1.0)
    select_on: str = "mean"  # dev metric for early stopping: "mean" of the heads' macro-F1, or a head name

    def validate(self) -> None:
        check_range(self, "epochs", 1, 100)
        check_range(self, "batch_size", 1, 4096)
        check_range(self, "max_length", 8, 4096)
        check_range(self, "warmup_ratio", 0, 1)
        check_range(self, "patience", 0, 100)
        check_range(self, "fgm_epsilon", 0, 10)
        check_range(self, "lora_r", 1, 512)
        check_range(self, "max_steps", 0, None)
        check_range(self, "layer_lr_decay", 0, 1, lo_open=True)
        check_range(self, "head_lr_scale", 0, 1000, lo_open=True)
        check_range(self, "feature_dropout", 0, 1)
        check_range(self, "adv_epsilon", 0, 100)
        check_range(self, "pgd_steps", 1, 20)
        check_range(self, "label_smoothing", 0, 0.5)
        check_range(self, "soft_weight", 0, 1)
        if self.task == "sequence" and (self.decoder != "argmax" or self.kg_features):
            raise ConfigError("decoder and kg_features apply to token tasks only (task='token')")
        if self.lr is not None:
            check_range(self, "lr", 0, 1, lo_open=True)
        self._validate_heads()

    def _validate_heads(self) -> None:
        """Multi-task fields: names and labels of the heads, the primary head, weights, the dev metric."""
        if not self.heads:
            for name, default in (("primary_head", ""), ("head_weights", {}), ("select_on", "mean")):
                if getattr(self, name) != default:
                    raise ConfigError(f"TrainConfig.{name}={getattr(self, name)!r} needs heads (multi-task); "
                                      "set heads={name: [labels]} for two or more heads")
            return
        from kgfusion.core.multitask import check_heads

        check_heads(self.heads, "TrainConfig.heads", allow_empty_labels=True)
        if self.task != "sequence":
            raise ConfigError(f"TrainConfig.heads needs task='sequence' (multi-task classification), got {self.task!r}")
        # stored as tuples, with the primary head written out: the config round-trips through sorted JSON
        self.heads = {str(k): tuple(v) for k, v in self.heads.items()}
        names = list(self.heads)
        self.primary_head = self.primary_head or names[0]
        if self.primary_head not in self.heads:
            raise ConfigError(f"TrainConfig.primary_head={self.primary_head!r}; allowed: {names}")
        if self.labels and self.heads[self.primary_head] and tuple(self.labels) != self.heads[self.primary_head]:
            raise ConfigError(f"TrainConfig.labels={list(self.labels)} differ from the primary head "
                              f"{self.primary_head!r} labels {list(self.heads[self.primary_head])}; leave labels empty")
        if not isinstance(self.head_weights, dict):
            raise ConfigError(f"TrainConfig.head_weights must map head names to weights, got {self.head_weights!r}")
        for name, w in self.head_weights.items():
            if name not in self.heads:
                raise ConfigError(f"TrainConfig.head_weights names {name!r}; allowed: {names}")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 100:
                raise ConfigError(f"TrainConfig.head_weights[{name!r}]={w!r}; allowed range (0, 100]")
        if self.select_on != "mean" and self.select_on not in self.heads:
            raise ConfigError(f"TrainConfig.select_on={self.select_on!r}; allowed: {['mean', *names]}")

    def head_weight(self, name: str) -> float:
        return float(self.head_weights.get(name, 1.0))

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]

    @property
    def primary_metric(self) -> str:
        return "macro_f1" if self.task == "sequence" else "f1"

    @property
    def adversary(self) -> str:
        """The adversarial method in use (``fgm_epsilon`` > 0 is the older spelling of FGM)."""
        return "fgm" if self.adversarial == "none" and self.fgm_epsilon > 0 else self.adversarial

    @property
    def epsilon(self) -> float:
        return self.fgm_epsilon if self.adversarial == "none" and self.fgm_epsilon > 0 else self.adv_epsilon

    @property
    def fused(self) -> bool:
        """Token model with a CRF or gazetteer features (wrapped in FusedTokenModel)."""
        return self.task == "token" and (self.decoder == "crf" or self.kg_features)


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
    heads: dict[str, list[str]] = field(default_factory=dict)  # multi-task: head -> labels, primary first


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


def build_model(config: TrainConfig, labels: list[str], n_features: int = 0,
                heads: dict[str, list[str]] | None = None):
    """Base encoder with a fresh head; wrapped by peft when ``method='lora'`` (head kept in full), and
    in a FusedTokenModel when the recipe adds a CRF or gazetteer features. ``heads`` (name -> labels,
    the primary head first): a MultiTaskModel with one head per task instead (core/multitask.py)."""
    from kgfusion.core.models import load_base

    if heads:
        from kgfusion.core.multitask import build_multitask_model

        model, tokenizer = build_multitask_model(config.base, heads, config.primary_head)
    else:
        model, tokenizer = load_base(config.base, task=config.task, labels=labels)
    if config.method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        lora = LoraConfig(
            # a MultiTaskModel is no transformers task model: plain PeftModel, every head kept in full
            task_type=None if heads else TaskType.SEQ_CLS if config.task == "sequence" else TaskType.TOKEN_CLS,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_targets),
            modules_to_save=[f"classifiers.{h}" for h in heads] if heads else ["classifier"],
        )
        model = get_peft_model(model, lora)
    if config.fused:
        from kgfusion.core.tokenmodel import FusedTokenModel

        if config.kg_features and n_features < 2:
            raise ConfigError("kg_features=True needs a gazetteer with at least one type (pass gazetteer=...)")
        model = FusedTokenModel(model, labels, n_features=n_features if config.kg_features else 0,
                                crf=config.decoder == "crf")
        _start_fusion_from_base(model, config.base)
    return model, tokenizer


def _start_fusion_from_base(model, base: str) -> None:
    """A base directory holding a fusion.safetensors (a student cut from a fused teacher) starts the KG
    feature embeddings and CRF transitions from it, when they have the same shapes; else they start fresh."""
    from kgfusion.core.errors import BundleError
    from kgfusion.core.tokenmodel import FUSION_FILE

    path = Path(base) / FUSION_FILE
    if not path.is_file():
        return
    try:
        model.load_fusion(path)
    except BundleError as exc:
        log.warning("Not starting from %s (%s); the feature embeddings and CRF start fresh.", path, exc)


def encode_examples(task: Task, examples: Sequence, tokenizer, label2id: dict[str, int], max_length: int,
                    gazetteer=None) -> list[dict]:
    """Tokenize; token labels go on each word's first sub-token, -100 on the rest (ignored by the loss).
    With a ``gazetteer`` (core.features.TokenGazetteer) token features get ``feature_ids``."""
    if task == "sequence":
        enc = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)
        feats = []
        for i, e in enumerate(examples):
            if e.label not in label2id:
                raise DataError(f"row {e.row}: label {e.label!r} not in the model's labels {sorted(label2id)}")
            feats.append({k: enc[k][i] for k in enc} | {"labels": label2id[e.label]})
        return feats
    from kgfusion.core.features import subtoken_features

    enc = tokenizer([list(e.tokens) for e in examples], is_split_into_words=True, truncation=True, max_length=max_length)
    feats = []
    for i, e in enumerate(examples):
        prev = None
        labels = []
        word_ids = enc.word_ids(i)
        for wid in word_ids:
            if wid is None or wid == prev:
                labels.append(-100)
            else:
                tag = e.tags[wid]
                if tag not in label2id:
                    raise DataError(f"row {e.row}: tag {tag!r} not in the model's labels {sorted(label2id)}")
                labels.append(label2id[tag])
            prev = wid
        feat = {k: enc[k][i] for k in enc} | {"labels": labels}
        if gazetteer is not None:
            feat["feature_ids"] = subtoken_features(gazetteer.word_features(list(e.tokens)), word_ids)
        feats.append(feat)
    return feats


def resolve_heads(config: TrainConfig, examples: Sequence[TextExample]) -> dict[str, list[str]]:
    """The heads of a multi-task config with their labels (an empty list: the head's sorted training
    labels), primary first; every example must name one of them (``TextExample.head``)."""
    from kgfusion.core.multitask import check_heads, ordered_heads

    seen: dict[str, set[str]] = {name: set() for name in config.heads}
    for e in examples:
        if not isinstance(e, TextExample):
            raise DataError(f"multi-task training takes TextExample rows, got {type(e).__name__} (row {e.row})")
        if e.head not in seen:
            raise DataError(f"row {e.row}: head {e.head!r} is not one of the heads {list(config.heads)}; "
                            "set TextExample.head to the task the row is labelled for")
        seen[e.head].add(e.label)
    empty = [name for name, labels in seen.items() if not labels]
    if empty:
        raise DataError(f"no training rows for head(s) {empty}; every head needs labelled rows")
    heads = {name: list(labels) or sorted(seen[name]) for name, labels in config.heads.items()}
    check_heads(heads, "TrainConfig.heads")
    return ordered_heads(heads, config.primary_head)


def encode_head_examples(examples: Sequence[TextExample], tokenizer, heads: dict[str, list[str]],
                         max_length: int) -> list[dict]:
    """Tokenize multi-task rows: ``labels`` is the id within the row's head, ``head`` the head's index."""
    index = {name: i for i, name in enumerate(heads)}
    label2id = {name: {lab: i for i, lab in enumerate(labels)} for name, labels in heads.items()}
    enc = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)
    feats = []
    for i, e in enumerate(examples):
        if e.head not in index:
            raise DataError(f"row {e.row}: head {e.head!r} is not one of the heads {list(heads)}")
        if e.label not in label2id[e.head]:
            raise DataError(f"row {e.row}: label {e.label!r} not in head {e.head!r} labels {heads[e.head]}")
        feats.append({k: enc[k][i] for k in enc} | {"labels": label2id[e.head][e.label], "head": index[e.head]})
    return feats


def _class_weights(task: Task, feats: list[dict], n_labels: int) -> torch.Tensor:
    counts: Counter[int] = Counter()
    for f in feats:
        lab = f["labels"]
        counts.update([lab] if isinstance(lab, int) else [x for x in lab if x >= 0])
    total = sum(counts.values())
    # "balanced" as in scikit-learn: n / (k * count_c); unseen classes get weight 1.
    return torch.tensor([total / (n_labels * counts[c]) if counts[c] else 1.0 for c in range(n_labels)])


def _loss(task: Task, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None,
          smoothing: float = 0.0, example_weights: torch.Tensor | None = None) -> torch.Tensor:
    flat = logits.reshape(-1, logits.shape[-1])
    gold = labels.reshape(-1)
    if example_weights is None:
        return torch.nn.functional.cross_entropy(flat, gold, weight=weights, ignore_index=-100,
                                                 label_smoothing=smoothing)
    per = torch.nn.functional.cross_entropy(flat, gold, weight=weights, ignore_index=-100,
                                            label_smoothing=smoothing, reduction="none")
    w = example_weights.unsqueeze(1).expand(labels.shape).reshape(-1) if labels.ndim == 2 else example_weights
    valid = (gold >= 0).float() * w
    return (per * valid).sum() / valid.sum().clamp(min=1e-9)


def _multitask_loss(head_logits: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], config: TrainConfig,
                    weights: list[torch.Tensor] | None) -> torch.Tensor:
    """Sum over the heads present in the batch of head weight x that head's loss on its own rows."""
    gold, which, per_row = batch["labels"], batch["head"], batch.get("weight")
    total: torch.Tensor | None = None
    for i, (name, logits) in enumerate(head_logits.items()):
        rows = which == i
        if not bool(rows.any()):
            continue
        loss = _loss("sequence", logits[rows], gold[rows], weights[i] if weights is not None else None,
                     config.label_smoothing, per_row[rows] if per_row is not None else None)
        total = config.head_weight(name) * loss if total is None else total + config.head_weight(name) * loss
    if total is None:
        raise DataError("a training batch holds no row of any head")
    return total


def _soft_loss(logits: torch.Tensor, soft: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets (B, C) or (B, L, C); token rows without a label are skipped."""
    logp = torch.log_softmax(logits, dim=-1)
    per = -(soft * logp).sum(-1)
    if per.ndim == 1:
        return per.mean()
    valid = (labels >= 0).float()
    return (per * valid).sum() / valid.sum().clamp(min=1)


class _EmbeddingAdversary:
    """FGM (one step) or PGD (``steps`` projected steps, Madry et al.) on the word-embedding output.

    Works for full and LoRA training: the perturbation is added by a forward hook on the input
    embeddings, its gradient read from the retained output gradient.
    """

    def __init__(self, model, epsilon: float, steps: int = 1) -> None:
        self.epsilon = epsilon
        self.steps = steps
        self.alpha = epsilon / steps if steps > 1 else epsilon
        self.output: torch.Tensor | None = None
        self.delta: torch.Tensor | None = None
        emb = model.get_input_embeddings()
        self.handle = emb.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        if not torch.is_grad_enabled():  # evaluation inside training: nothing to perturb
            return output
        if self.delta is not None and self.delta.shape == output.shape:
            output = output + self.delta
        if not output.requires_grad:  # frozen embeddings (LoRA): still need the gradient w.r.t. them
            output.requires_grad_(True)
        output.retain_grad()
        self.output = output
        return output

    def _step(self) -> bool:
        if self.output is None or self.output.grad is None:
            return False
        grad = self.output.grad.detach()
        norm = grad.norm()
        if not torch.isfinite(norm) or norm == 0:
            return False
        delta = (self.delta if self.delta is not None else torch.zeros_like(grad)) + self.alpha * grad / norm
        if self.steps > 1:  # project back onto the epsilon ball
            dn = delta.norm()
            if dn > self.epsilon:
                delta = delta * (self.epsilon / dn)
        self.delta = delta
        return True

    def run(self, params: list[torch.nn.Parameter], adv_loss: Callable[[], torch.Tensor]) -> None:
        """After the clean backward pass: add the adversarial gradient of the last step to the clean one."""
        if self.steps == 1:
            if self._step():
                adv_loss().backward()
            self.restore()
            return
        clean = [None if p.grad is None else p.grad.detach().clone() for p in params]
        for t in range(self.steps):
            if not self._step():
                break
            for p in params:
                p.grad = None
            loss = adv_loss()
            loss.backward()
            if t == self.steps - 1:
                break
        for p, g in zip(params, clean):
            if g is not None:
                p.grad = g if p.grad is None else p.grad + g
        self.restore()

    def restore(self) -> None:
        self.delta = None
        self.output = None

    def close(self) -> None:
        self.handle.remove()


NOT_INPUTS = ("labels", "soft", "weight", "head")  # feature keys that are targets, not model inputs


def _model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k not in NOT_INPUTS}


@torch.inference_mode()
def predict_logits(model, feats: list[dict], pad_id: int, batch_size: int = 64,
                   head: str | None = None) -> list[np.ndarray]:
    """Logits per example (unpadded for tokens), in input order; ``head``: that head of a MultiTaskModel."""
    model.eval()
    out: list[np.ndarray | None] = [None] * len(feats)
    for batch in length_sorted_batches([len(f["input_ids"]) for f in feats], batch_size):
        inputs = pad_batch([{k: v for k, v in feats[i].items() if k not in NOT_INPUTS} for i in batch], pad_id)
        result = model(**inputs)
        logits = (result.head_logits[head] if head else result.logits).float().cpu().numpy()
        for row, i in enumerate(batch):
            out[i] = logits[row] if logits.ndim == 2 else logits[row, : len(feats[i]["input_ids"])]
    return out  # type: ignore[return-value]


def token_decoder(model, labels: list[str], mode: str):
    """The IOB2Decoder for a model: its CRF's learned scores when it has one."""
    from kgfusion.core.decoding import IOB2Decoder

    scores = model.decoder_scores() if hasattr(model, "decoder_scores") else None
    if mode == "crf" and scores is None:
        mode = "viterbi"
    return IOB2Decoder(labels, mode, **(scores or {})) if mode == "crf" else IOB2Decoder(labels, mode)


def evaluate_features(task: Task, model, feats: list[dict], labels: list[str], pad_id: int,
                      decoder: str = "argmax") -> dict[str, Any]:
    """Dev/test metrics from encoded features (labels included); token tags decoded by ``decoder``."""
    logits = predict_logits(model, feats, pad_id)
    if task == "sequence":
        y_true = [labels[f["labels"]] for f in feats]
        y_pred = [labels[int(np.argmax(lg))] for lg in logits]
        return classification_metrics(y_true, y_pred, labels)
    dec = token_decoder(model, labels, decoder)
    true_seqs, pred_seqs = [], []
    for f, lg in zip(feats, logits):
        keep = [j for j, lab in enumerate(f["labels"]) if lab >= 0]
        true_seqs.append([labels[f["labels"][j]] for j in keep])
        pred_seqs.append([labels[k] for k in dec.decode(lg[keep])] if keep else [])
    return entity_metrics(true_seqs, pred_seqs)


def evaluate_heads(model, feats: list[dict], heads: dict[str, list[str]], pad_id: int,
                   select_on: str = "mean") -> dict[str, Any]:
    """Per-head metrics, each on its own rows, under ``heads``; ``macro_f1``/``accuracy`` at the top are
    the mean over the heads (``select_on='mean'``) or the selected head's: what early stopping follows."""
    per: dict[str, dict[str, Any]] = {}
    for i, (name, labels) in enumerate(heads.items()):
        rows = [f for f in feats if f["head"] == i]
        if not rows:
            raise DataError(f"no dev rows for head {name!r}: early stopping needs every head's dev split")
        logits = predict_logits(model, rows, pad_id, head=name)
        per[name] = classification_metrics([labels[f["labels"]] for f in rows],
                                           [labels[int(np.argmax(lg))] for lg in logits], labels)

    def pick(key: str) -> float:
        return float(np.mean([m[key] for m in per.values()])) if select_on == "mean" else float(per[select_on][key])

    return {"primary": "macro_f1", "macro_f1": pick("macro_f1"), "accuracy": pick("accuracy"), "n": len(feats),
            "select_on": select_on, "heads": per}


def _param_groups(model, config: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: no decay for biases/norms; layer-wise LR decay; the head at lr * head_lr_scale."""
    import re

    base_cfg = getattr(model, "config", None)
    n_layers = int(getattr(base_cfg, "num_hidden_layers", 0) or 0)
    lr = config.learning_rate
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        m = re.search(r"\.layer\.(\d+)\.", name)
        if m and n_layers:
            scale = config.layer_lr_decay ** (n_layers - int(m.group(1)))
        elif "embeddings." in name and "feature_embedding" not in name:
            scale = config.layer_lr_decay ** (n_layers + 1) if n_layers else 1.0
        elif "classifier" in name or name.startswith(("crf.", "feature_embedding.")) or "pooler" in name:
            scale = config.head_lr_scale
        else:
            scale = 1.0
        decay = config.weight_decay if p.ndim > 1 and not name.startswith("crf.") else 0.0
        groups.setdefault((lr * scale, decay), []).append(p)
    return [{"params": ps, "lr": g_lr, "weight_decay": wd} for (g_lr, wd), ps in groups.items()]


def _schedule(optim, config: TrainConfig, warmup: int, total: int):
    if config.schedule == "cosine":
        from kgfusion.core.optim import cosine_schedule

        return cosine_schedule(optim, warmup, total)
    return linear_schedule(optim, warmup, total)


CHECKPOINT = "last.pt"


def _save_checkpoint(path: Path, model, optim, sched, rng: random.Random, state: dict[str, Any]) -> None:
    """Everything to resume after an epoch, in a file ``torch.load(weights_only=True)`` reads back."""
    from kgfusion.core.fileio import atomic_write

    payload = {
        "model": {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad},
        "optim": optim.state_dict(),
        "sched": sched.state_dict(),
        "rng_python": list(rng.getstate()[1]),
        "rng_python_version": rng.getstate()[0],
        "rng_torch": torch.get_rng_state(),
        **state,
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _load_checkpoint(path: Path, config: TrainConfig) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("config") != config.to_json():
        raise ConfigError(f"{path}: checkpoint of another training config; remove it or use another checkpoint_dir")
    return payload


def train(
    config: TrainConfig,
    train_examples: Sequence[TextExample] | Sequence[TokenExample],
    dev_examples: Sequence[TextExample] | Sequence[TokenExample],
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    *,
    gazetteer=None,
    soft_targets: Sequence[np.ndarray] | None = None,
    example_weights: Sequence[float] | None = None,
    checkpoint_dir: str | Path | None = None,
    train_word_features: Sequence[Sequence[int]] | None = None,
    init: tuple[Any, Any] | None = None,
    regularizer: Callable[[Any], torch.Tensor] | None = None,
) -> TrainResult:
    """Fine-tune and return the model with the best dev weights restored.

    ``gazetteer``: a core.features.TokenGazetteer (needed when ``config.kg_features``).
    ``soft_targets``: per training example a class distribution (C,) for sequences or (n_words, C)
    for tokens (e.g. an ensemble's probabilities); mixed with the hard labels by ``soft_weight``.
    ``example_weights``: per-example loss weights (e.g. annotator agreement).
    ``checkpoint_dir``: checkpoint after every epoch; a rerun with the same config resumes there.
    ``train_word_features``: gazetteer feature ids per word of each training example, computed by the
    caller (e.g. cross-fold, so a dictionary built from training mentions does not look perfect on
    the sentences it came from); dev examples and inference use ``gazetteer``.
    ``init``: (model, tokenizer) to continue from instead of a fresh model (core/lifecycle/update.py: a
    deployed version learning new data; the caller wraps it, e.g. with a LoRA adapter, beforehand).
    ``regularizer``: model -> penalty added to every step's loss (e.g. L2-SP or EWC towards the old weights).
    """
    if not train_examples:
        raise DataError("no training examples")
    if not dev_examples:
        raise DataError("no dev examples: early stopping and the model card need a dev split")
    if config.kg_features and gazetteer is None:
        raise ConfigError("kg_features=True needs gazetteer= (a core.features.TokenGazetteer)")
    if config.heads and soft_targets is not None:
        raise ConfigError("soft_targets are not supported with multi-task heads yet; use example_weights")
    for name, seq in (("soft_targets", soft_targets), ("example_weights", example_weights),
                      ("train_word_features", train_word_features)):
        if seq is not None and len(seq) != len(train_examples):
            raise DataError(f"{name} has {len(seq)} rows for {len(train_examples)} training examples")
    set_seed(config.seed)
    heads = resolve_heads(config, train_examples) if config.heads else None
    labels = heads[config.primary_head] if heads else list(config.labels) or infer_labels(config.task, train_examples)
    if config.task == "token" and "O" not in labels:
        raise ConfigError(f"token labels must include 'O'; got {labels}")
    label2id = {lab: i for i, lab in enumerate(labels)}
    gaz = gazetteer if config.kg_features else None
    if init is not None:
        model, tokenizer = init
    else:
        model, tokenizer = build_model(config, labels, n_features=gaz.n_features if gaz is not None else 0,
                                       heads=heads)
    if gaz is not None:
        model.gazetteer = gaz  # saved inside the bundle: inference computes the same features
    if heads:
        train_feats = encode_head_examples(train_examples, tokenizer, heads, config.max_length)  # type: ignore[arg-type]
        dev_feats = encode_head_examples(dev_examples, tokenizer, heads, config.max_length)  # type: ignore[arg-type]
    else:
        train_feats = encode_examples(config.task, train_examples, tokenizer, label2id, config.max_length,
                                      gaz if train_word_features is None else _FixedFeatures(train_word_features))
        dev_feats = encode_examples(config.task, dev_examples, tokenizer, label2id, config.max_length, gaz)
    if soft_targets is not None:
        _attach_soft(config.task, train_feats, soft_targets, len(labels))
    if example_weights is not None:
        for f, w in zip(train_feats, example_weights):
            f["weight"] = float(w)
    pad_id = tokenizer.pad_token_id or 0
    weights: Any = None
    if config.class_weights == "balanced":
        weights = ([_class_weights("sequence", [f for f in train_feats if f["head"] == i], len(labs))
                    for i, labs in enumerate(heads.values())] if heads
                   else _class_weights(config.task, train_feats, len(labels)))

    rng = random.Random(config.seed)
    steps_per_epoch = math.ceil(len(train_feats) / config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(_param_groups(model, config), lr=config.learning_rate)
    warmup = int(total * config.warmup_ratio)
    sched = _schedule(optim, config, warmup, total)
    adversary = config.adversary
    adv = (_EmbeddingAdversary(model, config.epsilon, 1 if adversary == "fgm" else config.pgd_steps)
           if adversary != "none" else None)
    metric = config.primary_metric
    best_score, best_state, bad_epochs = -1.0, None, 0
    history: list[dict[str, float]] = []
    step, start_epoch, spent = 0, 1, 0.0
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir else None
    resumed = _load_checkpoint(ckpt_path, config) if ckpt_path else None
    stopped = False
    if resumed is not None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n, value in resumed["model"].items():
                params[n].copy_(value)
        optim.load_state_dict(resumed["optim"])
        sched.load_state_dict(resumed["sched"])
        rng.setstate((resumed["rng_python_version"], tuple(resumed["rng_python"]), None))
        torch.set_rng_state(resumed["rng_torch"])
        step, start_epoch, spent = resumed["step"], resumed["epoch"] + 1, resumed["seconds"]
        best_score, bad_epochs, history = resumed["best_score"], resumed["bad_epochs"], resumed["history"]
        best_state = resumed.get("best") or None
        stopped = resumed["stopped"]
        log.info("resumed from %s after epoch %d (step %d)", ckpt_path, resumed["epoch"], step)
    started = time.perf_counter() - spent
    bar = tqdm(total=total, initial=step, disable=not progress, desc=f"train {config.method}", unit="step")
    feat_rng = random.Random(config.seed + 1)

    def evaluate_dev() -> dict[str, Any]:
        if heads:
            return evaluate_heads(model, dev_feats, heads, pad_id, config.select_on)
        return evaluate_features(config.task, model, dev_feats, labels, pad_id, config.decoder)

    def forward_loss(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        gold = batch["labels"]
        inputs = _model_inputs(batch)
        if gaz is not None and config.feature_dropout and "feature_ids" in inputs:
            drop = torch.tensor([feat_rng.random() < config.feature_dropout for _ in range(gold.shape[0])])
            inputs["feature_ids"] = inputs["feature_ids"].masked_fill(drop.unsqueeze(1), 0)
        out = model(**inputs)
        if heads:
            return _multitask_loss(out.head_logits, batch, config, weights)
        logits = out.logits
        crf = getattr(model, "crf", None)
        if crf is not None:
            from kgfusion.core.decoding import gather_words, word_positions

            index, mask = word_positions(gold)
            loss = crf.nll(gather_words(logits, index), gather_words(gold, index), mask)
        else:
            loss = _loss(config.task, logits, gold, weights, config.label_smoothing, batch.get("weight"))
        if "soft" in batch:
            loss = (1 - config.soft_weight) * loss + config.soft_weight * _soft_loss(logits, batch["soft"], gold)
        return loss

    try:
        for epoch in range(start_epoch, config.epochs + 1):
            if stopped or (config.max_steps and step >= config.max_steps):
                break
            model.train()
            losses = []
            for batch_idx in bucketed_batches([len(f["input_ids"]) for f in train_feats], config.batch_size, rng):
                batch = _collate([train_feats[i] for i in batch_idx], pad_id)
                loss = forward_loss(batch)
                if regularizer is not None:
                    loss = loss + regularizer(model)
                loss.backward()
                if adv is not None:
                    adv.run(trainable, lambda b=batch: forward_loss(b))
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
            dev = evaluate_dev()
            record = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)), f"dev_{metric}": dev[metric],
                      "seconds": round(time.perf_counter() - started, 1)}
            if "accuracy" in dev:
                record["dev_accuracy"] = dev["accuracy"]
            for name, m in dev.get("heads", {}).items():
                record[f"dev_{name}_macro_f1"] = m["macro_f1"]
                record[f"dev_{name}_accuracy"] = m["accuracy"]
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
                    stopped = True
            if ckpt_path is not None:
                _save_checkpoint(ckpt_path, model, optim, sched, rng, {
                    "config": config.to_json(), "epoch": epoch, "step": step, "best_score": best_score,
                    "bad_epochs": bad_epochs, "history": history, "best": best_state or {}, "stopped": stopped,
                    "seconds": time.perf_counter() - started})
    finally:
        bar.close()
        if adv is not None:
            adv.close()
    if best_state is not None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n, value in best_state.items():
                params[n].copy_(value)
    model.eval()
    dev_metrics = evaluate_dev()
    return TrainResult(
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        config=config,
        history=history,
        dev_metrics=dev_metrics,
        seconds=time.perf_counter() - started,
        steps=step,
        heads=heads or {},
    )


class _FixedFeatures:
    """Stands in for a gazetteer in encode_examples: precomputed word features, one row per example."""

    def __init__(self, rows: Sequence[Sequence[int]]) -> None:
        self.rows, self.i = list(rows), 0

    def word_features(self, words: Sequence[str]) -> list[int]:
        row = list(self.rows[self.i])
        self.i += 1
        if len(row) != len(words):
            raise DataError(f"train_word_features row {self.i} has {len(row)} ids for {len(words)} words")
        return row


def _attach_soft(task: Task, feats: list[dict], soft_targets: Sequence[np.ndarray], n_labels: int) -> None:
    """Put each example's soft targets on its labelled positions (tokens: word i -> i-th first sub-token)."""
    for i, (f, soft) in enumerate(zip(feats, soft_targets)):
        soft = np.asarray(soft, dtype=np.float32)
        if task == "sequence":
            if soft.shape != (n_labels,):
                raise DataError(f"soft target {i} has shape {soft.shape}, expected ({n_labels},)")
            f["soft"] = soft
            continue
        positions = [j for j, lab in enumerate(f["labels"]) if lab >= 0]
        if soft.ndim != 2 or soft.shape[1] != n_labels or soft.shape[0] < len(positions):
            raise DataError(f"soft target {i} has shape {soft.shape}, expected (>= {len(positions)}, {n_labels})")
        full = np.zeros((len(f["labels"]), n_labels), dtype=np.float32)
        full[positions] = soft[: len(positions)]
        f["soft"] = full


def _collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """pad_batch for ids/labels; soft targets and example weights stacked alongside."""
    plain = [{k: v for k, v in f.items() if k not in ("soft", "weight")} for f in features]
    batch = pad_batch(plain, pad_id)
    if "soft" in features[0]:
        width = batch["input_ids"].shape[1]
        rows = []
        for f in features:
            s = f["soft"]
            if s.ndim == 2:
                s = np.pad(s, ((0, width - s.shape[0]), (0, 0)))
            rows.append(s)
        batch["soft"] = torch.tensor(np.stack(rows))
    if "weight" in features[0]:
        batch["weight"] = torch.tensor([f["weight"] for f in features], dtype=torch.float32)
    return batch
