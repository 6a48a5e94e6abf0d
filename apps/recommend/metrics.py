"""Ranking and beyond-accuracy metrics: pure functions over ``recs`` (user -> ranked item list).

Accuracy metrics average over the users of ``relevant`` (user -> set of target items) that have at
least one relevant item; a user missing from ``recs`` scores 0. All cut-offs use the first k items.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import combinations

Recs = Mapping[Hashable, Sequence[Hashable]]
Relevant = Mapping[Hashable, Iterable[Hashable]]


def _users(relevant: Relevant) -> list[tuple[Hashable, set]]:
    return [(u, set(items)) for u, items in relevant.items() if items]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def ndcg_at_k(recs: Recs, relevant: Relevant, k: int = 10) -> float:
    """Mean binary NDCG@k in [0, 1]: DCG = sum over hits at rank r of 1/log2(r + 1), divided by the
    DCG of an ideal list holding min(|relevant|, k) hits."""
    scores = []
    for user, rel in _users(relevant):
        ranked = list(recs.get(user, ()))[:k]
        dcg = sum(1.0 / math.log2(r + 2) for r, item in enumerate(ranked) if item in rel)
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), k)))
        scores.append(dcg / idcg)
    return _mean(scores)


def recall_at_k(recs: Recs, relevant: Relevant, k: int = 10) -> float:
    """Mean recall@k in [0, 1]: hits in the top k / min(|relevant|, k) (capped so a perfect list scores 1)."""
    scores = []
    for user, rel in _users(relevant):
        hits = len(set(list(recs.get(user, ()))[:k]) & rel)
        scores.append(hits / min(len(rel), k))
    return _mean(scores)


def map_at_k(recs: Recs, relevant: Relevant, k: int = 10) -> float:
    """Mean average precision@k in [0, 1]: sum of precision@r at each hit rank r / min(|relevant|, k)."""
    scores = []
    for user, rel in _users(relevant):
        hits, total = 0, 0.0
        for r, item in enumerate(list(recs.get(user, ()))[:k], start=1):
            if item in rel:
                hits += 1
                total += hits / r
        scores.append(total / min(len(rel), k))
    return _mean(scores)


def catalogue_coverage(recs: Recs, catalogue_size: int) -> float:
    """Share of the catalogue recommended to at least one user, in [0, 1]."""
    if catalogue_size <= 0:
        raise ValueError(f"catalogue_size={catalogue_size} must be positive")
    distinct = {item for items in recs.values() for item in items}
    return min(1.0, len(distinct) / catalogue_size)


def intra_list_diversity(recs: Recs, item_genres: Mapping[Hashable, Iterable[str]]) -> float:
    """Mean over lists (of >= 2 items) of the mean pairwise Jaccard distance of genre sets, in [0, 1].

    0 = every pair shares exactly the same genres; 1 = no pair shares any genre. Items without genres
    have an empty set; two empty sets are at distance 0.
    """
    per_list = []
    for items in recs.values():
        sets = [set(item_genres.get(i, ())) for i in items]
        if len(sets) < 2:
            continue
        dists = [1.0 - (len(a & b) / len(a | b) if a | b else 1.0) for a, b in combinations(sets, 2)]
        per_list.append(_mean(dists))
    return _mean(per_list)


def novelty(recs: Recs, item_popularity: Mapping[Hashable, int], n_users: int) -> float:
    """Mean -log2(popularity / n_users) over all recommended items, in [0, log2(n_users)].

    Popularity is the number of history users who interacted with the item; unseen items count as 1
    (so the value stays finite). Higher = less popular items recommended.
    """
    if n_users <= 0:
        raise ValueError(f"n_users={n_users} must be positive")
    values = [
        -math.log2(min(n_users, max(1, item_popularity.get(item, 0))) / n_users)
        for items in recs.values() for item in items
    ]
    return _mean(values)


def evaluate(
    recs: Recs,
    target: Relevant,
    k: int = 10,
    catalogue_size: int | None = None,
    item_genres: Mapping[Hashable, Iterable[str]] | None = None,
    item_popularity: Mapping[Hashable, int] | None = None,
    n_users: int | None = None,
) -> dict[str, float]:
    """All metrics as a flat dict; ``primary`` is ``ndcg_at_{k}``. Beyond-accuracy metrics are added
    only when their inputs are given. Recommendation lists are cut to k first."""
    cut = {u: list(items)[:k] for u, items in recs.items()}
    out = {
        f"ndcg_at_{k}": ndcg_at_k(cut, target, k),
        f"recall_at_{k}": recall_at_k(cut, target, k),
        f"map_at_{k}": map_at_k(cut, target, k),
        "users_evaluated": float(len(_users(target))),
    }
    if catalogue_size is not None:
        out["coverage"] = catalogue_coverage(cut, catalogue_size)
    if item_genres is not None:
        out["diversity"] = intra_list_diversity(cut, item_genres)
    if item_popularity is not None and n_users is not None:
        out["novelty"] = novelty(cut, item_popularity, n_users)
    out["primary"] = out[f"ndcg_at_{k}"]
    return out


def slice_metrics(recs: Recs, relevant: Mapping[Hashable, Iterable[Hashable]],
                  history_counts: Mapping[Hashable, int], item_counts: Mapping[Hashable, int], k: int = 10,
                  short_history: int = 10, long_tail: int = 5, medium_history: int = 20) -> dict[str, float]:
    """The slices a user of a recommender asks about, over the same recs and target:

    - ``short_history_*``: NDCG@k / recall@k over users with <= ``short_history`` history items
      (``history_counts``: user -> history length); ``history_le_20_*`` the same for <= ``medium_history``
      (MovieLens users rated >= 20 films, so its history-side slice of <= 10 can be empty);
    - ``long_tail_*``: target interactions on items with 1..``long_tail`` history ratings
      (``item_counts``: item -> history users): how many there are, how many the top k hit, the hit rate;
    - ``cold_item_*``: target interactions on items absent from the history (only text and the KG can
      reach them): count, hits (if 0, the model never reaches them at all) and hit rate.
    """
    short = {u: rel for u, rel in relevant.items() if history_counts.get(u, 0) <= short_history}
    out = {"short_history_users": float(len(_users(short))),
           "short_history_ndcg_at_10": ndcg_at_k(recs, short, k), "short_history_recall_at_10": recall_at_k(recs, short, k)}
    medium = {u: rel for u, rel in relevant.items() if history_counts.get(u, 0) <= medium_history}
    out.update({"history_le_20_users": float(len(_users(medium))), "history_le_20_ndcg_at_10": ndcg_at_k(recs, medium, k),
                "history_le_20_recall_at_10": recall_at_k(recs, medium, k)})
    for name, keep in (("long_tail", lambda c: 1 <= c <= long_tail), ("cold_item", lambda c: c == 0)):
        total = hits = 0
        for user, rel in _users(relevant):
            top = set(list(recs.get(user, ()))[:k])
            for item in rel:
                if keep(item_counts.get(item, 0)):
                    total += 1
                    hits += item in top
        out.update({f"{name}_targets": float(total), f"{name}_hits": float(hits),
                    f"{name}_hit_rate": hits / total if total else 0.0})
    return out
