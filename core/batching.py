"""Length bucketing and dynamic padding, shared by training and inference."""
from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

# What one more forward call costs, in padded tokens' worth of compute; it sets how much padding a merge may
# buy. Int8 MiniLM on 2 cores, StockNet tweets: 32-128 all within noise of each other, 64 the best of them.
CALL_OVERHEAD_TOKENS = 64


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (inference: least padding)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def padding_aware_batches(lengths: Sequence[int], batch_size: int,
                          call_overhead_tokens: int = CALL_OVERHEAD_TOKENS) -> list[list[int]]:
    """Length-sorted batches of at most ``batch_size``, cut where the padding saved beats a call's cost.

    Minimises ``sum(call_overhead_tokens + len(batch) * longest(batch))`` over contiguous cuts of the
    sorted order (exact, by dynamic programming). Fixed-size cuts of a small, mixed set (a server's batch of
    64 tweets of 10 to 130 tokens) pad every row to near the longest; this splits such a set where the
    lengths jump, and keeps full batches where lengths are alike (large offline sets).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    if n == 0:
        return []
    sorted_len = np.asarray([lengths[i] for i in order], dtype=np.float64)
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    cut = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        starts = np.arange(max(0, j - batch_size), j)
        # a batch order[i:j] pads to sorted_len[j - 1], its longest row
        costs = best[starts] + call_overhead_tokens + (j - starts) * sorted_len[j - 1]
        k = int(np.argmin(costs))
        best[j], cut[j] = costs[k], starts[k]
    batches: list[list[int]] = []
    j = n
    while j > 0:
        i = int(cut[j])
        batches.append(order[i:j])
        j = i
    return batches[::-1]


def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: random.Random, pool: int = 50) -> list[list[int]]:
    """Training batches: shuffle, sort within pools of ``pool`` batches, then shuffle batch order.

    Keeps most of the randomness of plain shuffling while padding far less.
    """
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    batches: list[list[int]] = []
    span = batch_size * pool
    for start in range(0, len(idx), span):
        chunk = sorted(idx[start : start + span], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def pad_batch(features: Sequence[dict[str, list[int]]], pad_id: int, label_pad: int = -100) -> dict[str, torch.Tensor]:
    """Pad lists of ids to the longest in the batch: ids with ``pad_id``, labels with -100, masks with 0."""
    width = max(len(f["input_ids"]) for f in features)
    out: dict[str, torch.Tensor] = {}
    for key in features[0]:
        fill = pad_id if key == "input_ids" else label_pad if key == "labels" else 0
        rows = []
        for f in features:
            v = f[key]
            if isinstance(v, int):  # sequence-level label
                rows.append(v)
            else:
                rows.append(list(v) + [fill] * (width - len(v)))
        out[key] = torch.tensor(rows, dtype=torch.long)
    return out
