from __future__ import annotations

import math

import pytest

from kgfusion.apps.recommend.metrics import (
    catalogue_coverage,
    evaluate,
    intra_list_diversity,
    map_at_k,
    ndcg_at_k,
    novelty,
    recall_at_k,
    slice_metrics,
)


def test_perfect_ranking_scores_one():
    recs = {1: [1, 2, 3], 2: [9]}
    rel = {1: {1, 2, 3}, 2: {9}}
    assert ndcg_at_k(recs, rel, 10) == pytest.approx(1.0)
    assert recall_at_k(recs, rel, 10) == pytest.approx(1.0)
    assert map_at_k(recs, rel, 10) == pytest.approx(1.0)


def test_no_hits_scores_zero_and_missing_user_counts_zero():
    rel = {1: {5}, 2: {6}}
    assert ndcg_at_k({1: [1, 2]}, rel) == 0.0
    assert recall_at_k({1: [1, 2]}, rel) == 0.0
    assert map_at_k({}, rel) == 0.0


def test_hand_computed_small_cases():
    # One relevant item at rank 2.
    assert ndcg_at_k({1: [7, 8]}, {1: {8}}, 10) == pytest.approx(1 / math.log2(3))
    assert map_at_k({1: [7, 8]}, {1: {8}}, 10) == pytest.approx(0.5)
    # Two relevant, hits at ranks 1 and 3: DCG = 1 + 1/2, IDCG = 1 + 1/log2(3).
    assert ndcg_at_k({1: [1, 0, 2]}, {1: {1, 2}}) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert map_at_k({1: [1, 0, 2]}, {1: {1, 2}}) == pytest.approx((1 + 2 / 3) / 2)
    assert recall_at_k({1: [1, 0, 3]}, {1: {1, 2}}) == pytest.approx(0.5)


def test_cutoff_is_applied():
    assert ndcg_at_k({1: [0, 0, 5]}, {1: {5}}, k=2) == 0.0
    assert recall_at_k({1: [0, 5]}, {1: {5, 6, 7}}, k=1) == 0.0


def test_users_without_relevant_items_are_ignored():
    assert ndcg_at_k({1: [1], 2: [3]}, {1: {1}, 2: set()}) == pytest.approx(1.0)


def test_coverage_limits():
    assert catalogue_coverage({1: [1, 2], 2: [3, 4]}, 4) == 1.0
    assert catalogue_coverage({1: [1], 2: [1]}, 4) == 0.25
    with pytest.raises(ValueError):
        catalogue_coverage({}, 0)


def test_diversity_limits():
    genres = {1: ["A", "B"], 2: ["A", "B"], 3: ["C"], 4: ["A"]}
    assert intra_list_diversity({1: [1, 2]}, genres) == 0.0
    assert intra_list_diversity({1: [1, 3]}, genres) == 1.0
    assert intra_list_diversity({1: [1, 4]}, genres) == pytest.approx(0.5)
    assert intra_list_diversity({1: [1]}, genres) == 0.0  # single-item lists are skipped


def test_novelty():
    pop = {1: 8, 2: 1}
    assert novelty({1: [1]}, pop, 8) == 0.0
    assert novelty({1: [2]}, pop, 8) == pytest.approx(3.0)
    assert novelty({1: [1, 2]}, pop, 8) == pytest.approx(1.5)
    assert novelty({1: [99]}, pop, 8) == pytest.approx(3.0)  # unseen item counts as popularity 1


def test_evaluate_has_primary_and_optional_metrics():
    out = evaluate({1: [1, 2, 3]}, {1: {1}}, k=2, catalogue_size=3, item_genres={1: ["A"], 2: ["A"]},
                   item_popularity={1: 1, 2: 1}, n_users=2)
    assert out["primary"] == out["ndcg_at_2"] == pytest.approx(1.0)
    assert out["coverage"] == pytest.approx(2 / 3)  # lists are cut to k before coverage
    assert out["diversity"] == 0.0
    assert out["novelty"] == pytest.approx(1.0)
    assert "coverage" not in evaluate({1: [1]}, {1: {1}})


def test_slice_metrics_count_short_history_long_tail_and_cold_items():
    recs = {1: [10, 20, 30], 2: [40, 50, 60]}
    relevant = {1: {10, 99}, 2: {50, 77}}
    history_len = {1: 5, 2: 50}  # only user 1 has a short history
    item_counts = {10: 3, 20: 100, 50: 400, 77: 2}  # 99 never in history: cold; 10 and 77: long tail
    out = slice_metrics(recs, relevant, history_len, item_counts, k=3)
    assert out["short_history_users"] == 1
    assert out["short_history_recall_at_10"] == pytest.approx(0.5)  # user 1 hit 10 of {10, 99}
    assert out["long_tail_targets"] == 2 and out["long_tail_hits"] == 1  # 10 hit, 77 missed
    assert out["long_tail_hit_rate"] == pytest.approx(0.5)
    assert out["cold_item_targets"] == 1 and out["cold_item_hits"] == 0
    medium = slice_metrics(recs, relevant, {1: 5, 2: 20}, item_counts, k=3)  # both users have <= 20 items
    assert medium["short_history_users"] == 1 and medium["history_le_20_users"] == 2
    assert medium["history_le_20_recall_at_10"] == pytest.approx(0.5)  # 10 of {10, 99}, 50 of {50, 77}
    assert out["history_le_20_users"] == 1
    cold_hit = slice_metrics({1: [99], 2: []}, relevant, history_len, item_counts, k=3)
    assert cold_hit["cold_item_hits"] == 1 and cold_hit["cold_item_hit_rate"] == 1.0
