"""Length bucketing and dynamic padding, shared by training and inference."""
from __future__ import annotations

import random
from collections.abc import Sequence

import torch


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (inference: least padding)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


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
