"""Knowledge distillation for multi-task models: every head of the teacher taught on every text.

``distill_heads(teacher, student, tokenizer, texts, gold)`` trains a smaller ``MultiTaskModel`` (e.g.
``make_student(teacher, 3)``) on the teacher's softened logits for *all* heads of each text, plus the
cross-entropy of the one gold label each row carries (``gold[i] = (head, label_id)`` or None). A
sentiment row thus also teaches the student the teacher's topic distribution and vice versa, which is
more signal than each row's own head alone.

Loss per batch: ``alpha * T^2 * mean_h KL(teacher_h || student_h) + (1 - alpha) * CE(gold)``, where the
CE averages over rows labelled for each head. Teacher logits are computed once; AdamW with linear
warmup and decay; length-bucketed batches. ``dev`` (texts + gold) is scored after every epoch and the
student is left at the epoch with the best mean dev accuracy over the heads (early stopping without a
second copy on disk: the best state is kept in memory, a 3-layer MiniLM is ~70 MB).
"""
from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Sequence
from typing import Any

from kgfusion.core.batching import bucketed_batches, length_sorted_batches, pad_batch
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.optim import linear_schedule

__all__ = ["distill_heads"]

Gold = tuple[str, int] | None


def _encode(tokenizer, texts: Sequence[str], gold: Sequence[Gold], heads: list[str], max_length: int,
            what: str) -> list[dict[str, Any]]:
    if len(texts) != len(gold):
        raise DataError(f"{what}: {len(texts)} texts but {len(gold)} gold labels")
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    out = []
    for i in range(len(texts)):
        ex: dict[str, Any] = {k: list(enc[k][i]) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        g = gold[i]
        if g is not None and g[0] not in heads:
            raise DataError(f"{what}: row {i} is labelled for head {g[0]!r}; the model has {heads}")
        ex["_gold"] = g
        out.append(ex)
    return out


def _inputs(examples: list[dict[str, Any]], idx: list[int], pad_id: int):
    return pad_batch([{k: v for k, v in examples[i].items() if k != "_gold"} for i in idx], pad_id)


def _head_logits(model, batch) -> dict[str, Any]:
    return model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}).head_logits


def _teacher_logits(teacher, examples, pad_id: int, heads: list[str], batch_size: int) -> dict[str, Any]:
    import torch

    out = {h: [None] * len(examples) for h in heads}
    teacher.eval()
    with torch.inference_mode():
        for idx in length_sorted_batches([len(ex["input_ids"]) for ex in examples], batch_size):
            logits = _head_logits(teacher, _inputs(examples, idx, pad_id))
            for h in heads:
                for row, i in enumerate(idx):
                    out[h][i] = logits[h][row].float().clone()
    return {h: torch.stack(v) for h, v in out.items()}


def _accuracy(model, examples, pad_id: int, heads: list[str], batch_size: int) -> dict[str, float]:
    """Accuracy per head over the rows labelled for it (rows without gold are skipped)."""
    import torch

    was_training = model.training
    model.eval()
    right = dict.fromkeys(heads, 0)
    seen = dict.fromkeys(heads, 0)
    with torch.inference_mode():
        for idx in length_sorted_batches([len(ex["input_ids"]) for ex in examples], batch_size):
            logits = _head_logits(model, _inputs(examples, idx, pad_id))
            for row, i in enumerate(idx):
                g = examples[i]["_gold"]
                if g is None:
                    continue
                seen[g[0]] += 1
                right[g[0]] += int(int(logits[g[0]][row].argmax()) == g[1])
    model.train(was_training)
    return {h: right[h] / seen[h] for h in heads if seen[h]}


def distill_heads(teacher, student, tokenizer, texts: Sequence[str], gold: Sequence[Gold], *, epochs: int = 3,
                  batch_size: int = 32, lr: float = 1e-4, temperature: float = 2.0, alpha: float = 0.5,
                  max_length: int = 64, seed: int = 0, warmup_ratio: float = 0.1, progress: bool = True,
                  dev_texts: Sequence[str] | None = None, dev_gold: Sequence[Gold] | None = None) -> dict[str, Any]:
    """Train ``student`` in place (see the module docstring); returns the history (loss and dev per epoch)."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    heads = list(getattr(teacher, "head_names", []) or [])
    if not heads or list(getattr(student, "head_names", [])) != heads:
        raise ConfigError("distill_heads needs multi-task teacher and student with the same heads "
                          f"(teacher {heads}, student {getattr(student, 'head_names', None)})")
    if not (isinstance(epochs, int) and epochs >= 1 and 0 < lr < 1 and temperature > 0 and 0 <= alpha <= 1
            and 0 <= warmup_ratio < 1):
        raise ConfigError(f"distill_heads: bad settings epochs={epochs!r} lr={lr!r} temperature={temperature!r} "
                          f"alpha={alpha!r} warmup_ratio={warmup_ratio!r}")
    examples = _encode(tokenizer, texts, gold, heads, max_length, "distill_heads")
    if not examples:
        raise DataError("distill_heads: no training examples")
    dev = (_encode(tokenizer, dev_texts, dev_gold or [None] * len(dev_texts), heads, max_length, "distill_heads dev")
           if dev_texts else None)
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    started = time.perf_counter()
    eval_bs = max(64, batch_size)
    targets = _teacher_logits(teacher, examples, pad_id, heads, eval_bs)
    lengths = [len(ex["input_ids"]) for ex in examples]
    total_steps = math.ceil(len(examples) / batch_size) * epochs
    history: dict[str, Any] = {"loss": [], "dev": [], "steps": total_steps, "heads": heads,
                               "teacher_seconds": round(time.perf_counter() - started, 1)}
    if dev:
        history["teacher_dev"] = _accuracy(teacher, dev, pad_id, heads, eval_bs)
    best_score, best_state, best_epoch = -1.0, None, 0
    t = temperature
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rng = random.Random(seed)
        optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.01)
        scheduler = linear_schedule(optimizer, int(warmup_ratio * total_steps), total_steps)
        student.train()
        bar = tqdm(total=total_steps, desc="distill", disable=not progress, leave=False)
        try:
            for epoch in range(epochs):
                loss_sum, batches = 0.0, 0
                for idx in bucketed_batches(lengths, batch_size, rng):
                    logits = _head_logits(student, _inputs(examples, idx, pad_id))
                    kd = 0.0
                    for h in heads:
                        log_s = F.log_softmax(logits[h] / t, dim=-1)
                        log_t = F.log_softmax(targets[h][idx] / t, dim=-1)
                        kd = kd + (log_t.exp() * (log_t - log_s)).sum(-1).mean()
                    loss = alpha * kd * (t * t) / len(heads)
                    if alpha < 1:
                        ce = 0.0
                        for h in heads:
                            rows = [r for r, i in enumerate(idx) if (g := examples[i]["_gold"]) and g[0] == h]
                            if rows:
                                labels = torch.tensor([examples[idx[r]]["_gold"][1] for r in rows])
                                ce = ce + F.cross_entropy(logits[h][rows], labels)
                        loss = loss + (1 - alpha) * ce
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
                    optimizer.step()
                    scheduler.step()
                    loss_sum += float(loss.detach())
                    batches += 1
                    bar.update(1)
                history["loss"].append(loss_sum / max(batches, 1))
                if dev:
                    scores = _accuracy(student, dev, pad_id, heads, eval_bs)
                    history["dev"].append(scores)
                    score = sum(scores.values()) / len(scores)
                    if score > best_score:
                        best_score, best_epoch = score, epoch + 1
                        best_state = copy.deepcopy(student.state_dict())
        finally:
            bar.close()
    if best_state is not None:
        student.load_state_dict(best_state)
    history["best_epoch"] = best_epoch or epochs
    history["seconds"] = round(time.perf_counter() - started, 1)
    return history
