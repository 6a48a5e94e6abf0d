"""Compression: magnitude pruning, smaller students, and knowledge distillation.

* ``magnitude_prune(model, amount)`` zeroes the smallest |w| of the encoder's Linear weights (global
  L1, unstructured), in place, and reports the sparsity reached.
* ``make_student(teacher, n)`` builds the same architecture with ``n`` encoder layers, initialised
  from the teacher (embeddings, pooler, head and evenly spaced layers ending at the top layer).
* ``distill(teacher, student, tokenizer, texts, labels)`` trains the student on the teacher's
  softened logits (plus the gold labels when given) for sequence or token classification.
"""
from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from kgfusion.core.batching import bucketed_batches, length_sorted_batches, pad_batch
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.optim import linear_schedule

__all__ = ["distill", "magnitude_prune", "make_student", "student_layer_map"]

Scope = Literal["encoder", "all"]
Task = Literal["sequence", "token"]


# ------------------------------------------------------------------------------------------ pruning


def _encoder_of(model):
    """The ``encoder`` module (with ``.layer``) of a BERT-like model, or a peft wrapper around one."""
    base = getattr(model, "base_model", model)
    for candidate in (base, getattr(base, "model", None)):  # peft: PeftModel.base_model.model
        if candidate is None:
            continue
        inner = getattr(candidate, "base_model", candidate)
        encoder = getattr(inner, "encoder", None)
        if encoder is not None and hasattr(encoder, "layer"):
            return encoder
        # MultiTaskModel: .encoder is the whole BertModel, whose own .encoder holds the layers
        nested = getattr(encoder, "encoder", None)
        if nested is not None and hasattr(nested, "layer"):
            return nested
    raise ConfigError(
        f"{type(model).__name__} has no BERT-style encoder (model.base_model.encoder.layer); "
        "pruning/students support BERT-family encoders only."
    )


def _sparsity(weights) -> tuple[int, int]:
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    return zeros, total


def magnitude_prune(model, amount: float, scope: Scope = "encoder") -> dict[str, Any]:
    """Zero the ``amount`` fraction (0 < amount < 1) of Linear weights with the smallest |w|, in place.

    Global unstructured L1 pruning over all selected weights at once (layers that matter less lose
    more), made permanent with ``prune.remove`` so the model saves and quantizes as usual.
    scope "encoder": the encoder's Linear layers; "all": every Linear (adds pooler and head).
    Returns {"amount", "scope", "modules", "pruned_params", "zeros", "sparsity", "model_sparsity"}.
    Note: unstructured zeros shrink a model only once compressed (e.g. zip); they do not speed up
    dense CPU kernels.
    """
    import torch
    from torch.nn.utils import prune

    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 < float(amount) < 1.0:
        raise ConfigError(f"amount must be a fraction in (0, 1), got {amount!r}")
    if scope not in ("encoder", "all"):
        raise ConfigError(f"scope must be 'encoder' or 'all', got {scope!r}")
    root = _encoder_of(model) if scope == "encoder" else model
    targets = [(m, "weight") for m in root.modules() if isinstance(m, torch.nn.Linear)]
    if not targets:
        raise ConfigError(
            f"{type(model).__name__} has no torch.nn.Linear weights in scope {scope!r} "
            "(prune before quantizing)."
        )
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=float(amount))
    for module, name in targets:
        prune.remove(module, name)
    zeros, total = _sparsity([m.weight.detach() for m, _ in targets])
    all_zeros, all_total = _sparsity([p.detach() for p in model.parameters()])
    return {
        "amount": float(amount),
        "scope": scope,
        "modules": len(targets),
        "pruned_params": total,
        "zeros": zeros,
        "sparsity": zeros / total,
        "model_sparsity": all_zeros / all_total,
    }


# ------------------------------------------------------------------------------------------ student


def student_layer_map(teacher_layers: int, num_layers: int) -> list[int]:
    """Teacher layer index for each student layer: evenly spaced, always ending at the top layer.

    6 -> 3 gives [1, 3, 5]; 12 -> 4 gives [2, 5, 8, 11]; 6 -> 4 gives [1, 2, 4, 5]. Keeping the top
    layer keeps the representation the pooler and classifier head were trained on, so the student
    starts close to the teacher (DistilBERT's [0, 2, 4] drops it; for a head trained on layer 6 that
    start is further away).
    """
    if not 1 <= num_layers < teacher_layers:
        raise ConfigError(
            f"num_layers must be in 1..{teacher_layers - 1} (the teacher has {teacher_layers}), got {num_layers}"
        )
    # ceil((i + 1) * L / n) - 1 in integer arithmetic
    return [((i + 1) * teacher_layers + num_layers - 1) // num_layers - 1 for i in range(num_layers)]


def make_student(teacher, num_layers: int):
    """A copy of ``teacher`` with ``num_layers`` encoder layers taken from ``student_layer_map``.

    Works for any BERT-family ``...ForSequenceClassification`` / ``...ForTokenClassification`` (or a
    merged peft model): embeddings, pooler, classifier head and config (labels) are copied. The
    teacher is not modified; the student is returned in eval mode.
    """
    import torch

    if isinstance(num_layers, bool) or not isinstance(num_layers, int):
        raise ConfigError(f"num_layers must be an int, got {num_layers!r}")
    if not isinstance(teacher, torch.nn.Module) or not hasattr(teacher, "config"):
        raise ConfigError(f"make_student needs a Hugging Face model, got {type(teacher).__name__}")
    encoder = _encoder_of(teacher)
    layers = encoder.layer
    mapping = student_layer_map(len(layers), num_layers)
    if not any(isinstance(m, torch.nn.Linear) for m in layers[0].modules()):
        raise ConfigError("make_student needs the fp32 teacher (its Linear layers are quantized)")

    student = copy.deepcopy(teacher)  # same class, config, head, embeddings; no re-init surprises
    student_encoder = _encoder_of(student)
    student_encoder.layer = torch.nn.ModuleList(copy.deepcopy(layers[i]) for i in mapping)
    # Layers carry their index for caches/attention bookkeeping in recent transformers versions.
    for new_index, layer in enumerate(student_encoder.layer):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config = student.config
    config.num_hidden_layers = num_layers
    if hasattr(config, "layer_types") and isinstance(config.layer_types, list):
        config.layer_types = [config.layer_types[i] for i in mapping]
    # A merged LoRA teacher comes with frozen base weights; the student trains all of its own.
    student.requires_grad_(True)
    return student.eval()


# ----------------------------------------------------------------------------------------- distill


def _validate(task, epochs, batch_size, lr, temperature, alpha, max_length) -> None:
    if task not in ("sequence", "token"):
        raise ConfigError(f"task must be 'sequence' or 'token', got {task!r}")
    checks = [
        ("epochs", epochs, isinstance(epochs, int) and epochs >= 1, "an int >= 1"),
        ("batch_size", batch_size, isinstance(batch_size, int) and batch_size >= 1, "an int >= 1"),
        ("lr", lr, isinstance(lr, (int, float)) and 0 < lr < 1, "in (0, 1)"),
        ("temperature", temperature, isinstance(temperature, (int, float)) and temperature > 0, "> 0"),
        ("alpha", alpha, isinstance(alpha, (int, float)) and 0 <= alpha <= 1, "in [0, 1]"),
        ("max_length", max_length, isinstance(max_length, int) and max_length >= 2, "an int >= 2"),
    ]
    for name, value, ok, allowed in checks:
        if not ok or isinstance(value, bool):
            raise ConfigError(f"{name} must be {allowed}, got {value!r}")


def _examples(
    tokenizer, texts, labels, encodings, task: Task, max_length: int, what: str
) -> list[dict[str, list[int]]]:
    """Normalise the input to a list of unpadded dicts {input_ids, attention_mask, [token_type_ids], [labels]}."""
    if (texts is None) == (encodings is None):
        raise ConfigError(f"{what}: pass exactly one of texts or encodings")
    if encodings is not None:
        if labels is not None:
            raise ConfigError(f"{what}: with encodings, put labels inside each dict under 'labels'")
        out = []
        for i, enc in enumerate(encodings):
            if not isinstance(enc, Mapping) or "input_ids" not in enc:
                raise DataError(f"{what}: encodings[{i}] must be a dict with 'input_ids' (and attention_mask)")
            ids = [int(x) for x in _as_list(enc["input_ids"])]
            if not ids:
                raise DataError(f"{what}: encodings[{i}] has empty input_ids")
            ex = {"input_ids": ids[:max_length]}
            mask = _as_list(enc.get("attention_mask", [1] * len(ids)))
            ex["attention_mask"] = [int(x) for x in mask][:max_length]
            if "token_type_ids" in enc:
                ex["token_type_ids"] = [int(x) for x in _as_list(enc["token_type_ids"])][:max_length]
            if "labels" in enc and enc["labels"] is not None:
                lab = enc["labels"]
                if task == "token":
                    lab = [int(x) for x in _as_list(lab)]
                    if len(lab) != len(ids):
                        raise DataError(
                            f"{what}: encodings[{i}] has {len(ids)} input_ids but {len(lab)} labels; "
                            "token labels must be aligned per token (-100 for ignored positions)"
                        )
                    ex["labels"] = lab[:max_length]
                else:
                    ex["labels"] = int(_as_list(lab)[0]) if isinstance(lab, (list, tuple)) else int(lab)
            if len(ex["attention_mask"]) != len(ex["input_ids"]):
                raise DataError(f"{what}: encodings[{i}] input_ids and attention_mask differ in length")
            out.append(ex)
        with_labels = sum("labels" in ex for ex in out)
        if 0 < with_labels < len(out):
            raise DataError(f"{what}: {with_labels} of {len(out)} encodings have labels; give all or none")
        return out

    texts = list(texts)
    if any(not isinstance(t, str) for t in texts):
        raise DataError(f"{what}: texts must be strings (use encodings= for pre-tokenized input)")
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(texts):
            raise DataError(f"{what}: {len(texts)} texts but {len(labels)} labels")
        if task == "token":
            raise ConfigError(
                f"{what}: token labels must be aligned to sub-word tokens; pass encodings=[{{input_ids, "
                "attention_mask, labels}}, ...] instead of texts + labels"
            )
    if tokenizer is None:
        raise ConfigError(f"{what}: a tokenizer is needed to tokenize texts")
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    out = []
    for i in range(len(texts)):
        ex = {k: list(enc[k][i]) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        if labels is not None:
            try:
                ex["labels"] = int(labels[i])
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"{what}: labels[{i}] = {labels[i]!r} is not an int id; map names with model.config.label2id"
                ) from exc
        out.append(ex)
    return out


def _as_list(x) -> list:
    if hasattr(x, "tolist"):
        x = x.tolist()
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _model_inputs(batch: Mapping[str, Any], model) -> dict[str, Any]:
    import inspect

    accepted = set(inspect.signature(model.forward).parameters)
    return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids") and k in accepted}


def _teacher_logits(teacher, examples, pad_id: int, task: Task, batch_size: int) -> list:
    """Teacher logits once, no grad, length-sorted batches; unpadded per example (token: [len, C])."""
    import torch

    out: list = [None] * len(examples)
    teacher.eval()
    with torch.inference_mode():
        for idx in length_sorted_batches([len(ex["input_ids"]) for ex in examples], batch_size):
            batch = pad_batch([examples[i] for i in idx], pad_id)
            logits = teacher(**_model_inputs(batch, teacher)).logits.float()
            for row, i in enumerate(idx):
                out[i] = logits[row, : len(examples[i]["input_ids"])].clone() if task == "token" else logits[row].clone()
    return out


def _stack_teacher(logits_list, width: int, task: Task):
    import torch

    if task == "sequence":
        return torch.stack(logits_list)
    num_labels = logits_list[0].shape[-1]
    out = torch.zeros(len(logits_list), width, num_labels)
    for row, t in enumerate(logits_list):
        out[row, : t.shape[0]] = t
    return out


def _losses(student_logits, teacher_logits, batch, task: Task, temperature: float, alpha: float):
    """(total, kd, ce or None) for one batch; token KD averages over attended tokens only."""
    import torch.nn.functional as F

    t = temperature
    log_p_student = F.log_softmax(student_logits / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits / t, dim=-1)
    # KL(teacher || student) per position, summed over classes
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)
    if task == "token":
        mask = batch["attention_mask"].to(kl.dtype)
        kd = (kl * mask).sum() / mask.sum().clamp_min(1.0)
    else:
        kd = kl.mean()
    kd = kd * (t * t)  # keeps gradient scale independent of T (Hinton et al. 2015)
    if "labels" not in batch:
        return kd, kd, None
    ce = F.cross_entropy(student_logits.reshape(-1, student_logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=-100)
    return alpha * kd + (1 - alpha) * ce, kd, ce


def _evaluate(student, examples, teacher_logits, pad_id, task, batch_size, temperature) -> dict[str, float]:
    """Mean KD loss vs the teacher, argmax agreement with the teacher, and accuracy when labelled."""
    import torch

    was_training = student.training
    student.eval()
    kd_sum = agree = count = correct = gold = 0.0
    with torch.inference_mode():
        for idx in length_sorted_batches([len(ex["input_ids"]) for ex in examples], batch_size):
            batch = pad_batch([examples[i] for i in idx], pad_id)
            s = student(**_model_inputs(batch, student)).logits.float()
            t = _stack_teacher([teacher_logits[i] for i in idx], s.shape[1] if task == "token" else 0, task)
            _, kd, _ = _losses(s, t, {k: v for k, v in batch.items() if k != "labels"}, task, temperature, 1.0)
            if task == "token":
                mask = batch["attention_mask"].bool()
                n = float(mask.sum())
                agree += float((s.argmax(-1) == t.argmax(-1))[mask].sum())
            else:
                n = float(len(idx))
                agree += float((s.argmax(-1) == t.argmax(-1)).sum())
            kd_sum += float(kd) * n
            count += n
            if "labels" in batch:
                valid = batch["labels"] != -100
                correct += float((s.argmax(-1) == batch["labels"])[valid].sum())
                gold += float(valid.sum())
    student.train(was_training)
    result = {"kd_loss": kd_sum / count, "teacher_agreement": agree / count}
    if gold:
        result["accuracy"] = correct / gold
    return result


def distill(
    teacher,
    student,
    tokenizer,
    texts: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    *,
    encodings: Sequence[Mapping[str, Any]] | None = None,
    task: Task = "sequence",
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 5e-5,
    temperature: float = 2.0,
    alpha: float = 0.5,
    max_length: int = 64,
    seed: int = 0,
    progress: bool = True,
    dev: Sequence[str] | Sequence[Mapping[str, Any]] | None = None,
    dev_labels: Sequence[int] | None = None,
    warmup_ratio: float = 0.1,
) -> dict[str, Any]:
    """Train ``student`` (in place) to match ``teacher``; return a history dict.

    Input: ``texts`` (+ optional int ``labels`` for sequence tasks), or ``encodings``: pre-tokenized
    dicts {input_ids, attention_mask, [token_type_ids], [labels]} — the form for token classification,
    where labels are per-token ids aligned to input_ids with -100 for ignored positions.
    Loss: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels); without labels it is
    the KD term alone. Token KD averages over attended tokens. Teacher logits are computed once;
    AdamW with linear warmup (``warmup_ratio`` of the steps) and decay; length-bucketed batches with
    dynamic padding. Same seed + same inputs -> same student (dropout RNG is forked, global RNG untouched).
    ``dev``: texts (with ``dev_labels``) or encodings, evaluated after every epoch.
    History: loss/kd_loss/ce_loss per epoch (train means), before/after {kd_loss, teacher_agreement,
    [accuracy]} on the training set, dev per epoch, steps, seconds.
    """
    import torch
    from tqdm.auto import tqdm

    _validate(task, epochs, batch_size, lr, temperature, alpha, max_length)
    if not 0 <= warmup_ratio < 1:
        raise ConfigError(f"warmup_ratio must be in [0, 1), got {warmup_ratio!r}")
    t_labels = getattr(teacher.config, "num_labels", None)
    s_labels = getattr(student.config, "num_labels", None)
    if t_labels != s_labels:
        raise ConfigError(f"teacher has {t_labels} labels but student has {s_labels}; they must match")
    examples = _examples(tokenizer, texts, labels, encodings, task, max_length, "distill")
    if not examples:
        raise DataError("distill: no training examples")
    dev_examples = None
    if dev is not None:
        dev = list(dev)
        if dev and isinstance(dev[0], Mapping):
            dev_examples = _examples(tokenizer, None, None, dev, task, max_length, "distill dev")
        else:
            dev_examples = _examples(tokenizer, dev, dev_labels, None, task, max_length, "distill dev")
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = getattr(student.config, "pad_token_id", None) or 0

    started = time.perf_counter()
    eval_bs = max(batch_size, 64)
    teacher_logits = _teacher_logits(teacher, examples, pad_id, task, eval_bs)
    dev_teacher = _teacher_logits(teacher, dev_examples, pad_id, task, eval_bs) if dev_examples else None
    expected_ndim = 2 if task == "token" else 1
    if teacher_logits[0].ndim != expected_ndim:
        raise ConfigError(f"task={task!r} does not match the teacher's output ({type(teacher).__name__})")

    lengths = [len(ex["input_ids"]) for ex in examples]
    steps_per_epoch = math.ceil(len(examples) / batch_size)
    total_steps = steps_per_epoch * epochs
    history: dict[str, Any] = {"loss": [], "kd_loss": [], "ce_loss": [], "dev": [], "steps": total_steps}

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rng = random.Random(seed)
        history["before"] = _evaluate(student, examples, teacher_logits, pad_id, task, eval_bs, temperature)
        optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.01)
        scheduler = linear_schedule(optimizer, int(warmup_ratio * total_steps), total_steps)
        student.train()
        bar = tqdm(total=total_steps, desc="distill", disable=not progress, leave=False)
        try:
            for _ in range(epochs):
                sums = {"loss": 0.0, "kd_loss": 0.0, "ce_loss": 0.0}
                seen = 0
                for idx in bucketed_batches(lengths, batch_size, rng):
                    batch = pad_batch([examples[i] for i in idx], pad_id)
                    logits = student(**_model_inputs(batch, student)).logits
                    width = logits.shape[1] if task == "token" else 0
                    target = _stack_teacher([teacher_logits[i] for i in idx], width, task)
                    loss, kd, ce = _losses(logits, target, batch, task, temperature, alpha)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
                    optimizer.step()
                    scheduler.step()
                    n = len(idx)
                    seen += n
                    sums["loss"] += loss.item() * n
                    sums["kd_loss"] += kd.item() * n
                    if ce is not None:
                        sums["ce_loss"] += ce.item() * n
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.4f}")
                history["loss"].append(sums["loss"] / seen)
                history["kd_loss"].append(sums["kd_loss"] / seen)
                if "labels" in examples[0]:
                    history["ce_loss"].append(sums["ce_loss"] / seen)
                if dev_examples:
                    history["dev"].append(
                        _evaluate(student, dev_examples, dev_teacher, pad_id, task, eval_bs, temperature)
                    )
        finally:
            bar.close()
            student.eval()
        history["after"] = _evaluate(student, examples, teacher_logits, pad_id, task, eval_bs, temperature)
    history["seconds"] = time.perf_counter() - started
    return history
