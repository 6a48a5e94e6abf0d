"""padding_aware_batches: every index once, sorted, capped, and the cheapest cut of the sorted order."""
from __future__ import annotations

import itertools
import random

import pytest

from kgfusion.core.batching import length_sorted_batches, padding_aware_batches


def cost(lengths: list[int], batches: list[list[int]], overhead: int) -> int:
    return sum(overhead + len(b) * max(lengths[i] for i in b) for b in batches)


def brute_force_best(lengths: list[int], batch_size: int, overhead: int) -> int:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best = None
    for mask in itertools.product([0, 1], repeat=len(order) - 1):  # 1 = cut after position k
        batches, start = [], 0
        for k, c in enumerate(mask, start=1):
            if c:
                batches.append(order[start:k])
                start = k
        batches.append(order[start:])
        if max(len(b) for b in batches) <= batch_size:
            c = cost(lengths, batches, overhead)
            best = c if best is None else min(best, c)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_every_index_once_sorted_and_capped(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.randint(5, 140) for _ in range(rng.randint(1, 300))]
    batches = padding_aware_batches(lengths, 16, call_overhead_tokens=64)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(b) <= 16 for b in batches)
    seq = [lengths[i] for i in flat]
    assert seq == sorted(seq)


@pytest.mark.parametrize("seed", range(8))
def test_cut_is_the_cheapest(seed: int) -> None:
    rng = random.Random(100 + seed)
    lengths = [rng.choice([rng.randint(8, 20), rng.randint(60, 130)]) for _ in range(rng.randint(2, 11))]
    batch_size, overhead = rng.randint(2, 6), rng.choice([0, 16, 64, 500])
    got = padding_aware_batches(lengths, batch_size, call_overhead_tokens=overhead)
    assert cost(lengths, got, overhead) == brute_force_best(lengths, batch_size, overhead)


def test_mixed_lengths_split_where_fixed_cuts_pad() -> None:
    lengths = [10] * 30 + [120] * 2  # a server batch: short tweets and two long posts
    fixed = length_sorted_batches(lengths, 64)
    aware = padding_aware_batches(lengths, 64, call_overhead_tokens=64)
    assert len(fixed) == 1 and len(aware) == 2
    assert cost(lengths, aware, 64) < cost(lengths, fixed, 64)
    # alike lengths keep full batches: a cut would only add a call
    assert [len(b) for b in padding_aware_batches([40] * 128, 64)] == [64, 64]


def test_empty_and_bad_batch_size() -> None:
    assert padding_aware_batches([], 8) == []
    with pytest.raises(ValueError, match="batch_size"):
        padding_aware_batches([3, 4], 0)
