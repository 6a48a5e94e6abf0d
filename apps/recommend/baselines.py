"""Baseline recommenders on implicit feedback: Popularity and item-item cosine kNN (numpy only).

Both follow ``fit(history)`` then ``recommend(users, k) -> {user: [movieId, ...]}``; they never
recommend an item the user has in history, and ``explain(user, item)`` gives a one-line reason.
Users unknown to ``fit`` get the most popular items. Ties are broken by movieId (deterministic).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from kgfusion.core.errors import DataError


class NotFittedError(RuntimeError):
    """``recommend``/``explain`` called before ``fit``."""


def _check_history(history: pd.DataFrame) -> None:
    missing = [c for c in ("userId", "movieId") if c not in history.columns]
    if missing:
        raise DataError(f"history frame: missing column(s) {missing}; found {list(history.columns)}; "
                        "pass the history returned by split_by_time")
    if history.empty:
        raise DataError("history frame is empty: nothing to fit; check the ratings file and the split")


class Popularity:
    """Rank items by the number of history users who interacted with them."""

    def __init__(self) -> None:
        self._ranked: np.ndarray | None = None
        self._counts: dict[int, int] = {}
        self._seen: dict[int, set[int]] = {}

    def fit(self, history: pd.DataFrame) -> Popularity:
        _check_history(history)
        pairs = history[["userId", "movieId"]].drop_duplicates()
        counts = pairs.groupby("movieId").size()
        order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        self._ranked = np.array([int(i) for i, _ in order], dtype=np.int64)
        self._counts = {int(i): int(c) for i, c in order}
        self._seen = {int(u): set(map(int, g)) for u, g in pairs.groupby("userId")["movieId"]}
        return self

    @property
    def item_counts(self) -> dict[int, int]:
        """movieId -> number of history users (the popularity used by the novelty metric)."""
        return dict(self._counts)

    def seen(self, user: int) -> set[int]:
        return self._seen.get(int(user), set())

    def _top(self, exclude: set[int], k: int, also: Iterable[int] = ()) -> list[int]:
        if self._ranked is None:
            raise NotFittedError("call fit(history) before recommend")
        skip = exclude | set(also)
        out = []
        for item in self._ranked:
            if int(item) not in skip:
                out.append(int(item))
                if len(out) == k:
                    break
        return out

    def recommend(self, users: Iterable[int], k: int = 10) -> dict[int, list[int]]:
        """Top-k most popular unseen items per user (fewer only if the catalogue runs out)."""
        return {int(u): self._top(self.seen(u), k) for u in users}

    def explain(self, user: int, item: int) -> str:
        return f"popular: {self._counts.get(int(item), 0)} interactions"

    def recommend_explained(self, users: Iterable[int], k: int = 10) -> dict[int, list[tuple[int, str]]]:
        recs = self.recommend(users, k)
        return {u: [(i, self.explain(u, i)) for i in items] for u, items in recs.items()}


class ItemKNN(Popularity):
    """Item-item cosine kNN on the binary user x item matrix of the history.

    sim(i, j) = |users(i) & users(j)| / sqrt(|users(i)| |users(j)|), in [0, 1]; each item keeps its
    ``n_neighbors`` most similar items. A user's score for item i is the sum of sim(j, i) over history
    items j that have i among their neighbours. Lists are padded with popular items when fewer than k
    items score above 0. Memory: n_items x n_neighbors; fit time ~ n_items^2 x n_users / BLAS speed.
    """

    def __init__(self, n_neighbors: int = 100, chunk: int = 1024) -> None:
        super().__init__()
        if n_neighbors < 1:
            raise ValueError(f"n_neighbors={n_neighbors} must be >= 1")
        self.n_neighbors = n_neighbors
        self.chunk = chunk
        self._items: np.ndarray | None = None  # column index -> movieId (sorted)
        self._index: dict[int, int] = {}
        self._nbr_idx: np.ndarray | None = None
        self._nbr_sim: np.ndarray | None = None
        self._titles: Mapping[int, str] = {}

    def fit(self, history: pd.DataFrame, titles: Mapping[int, str] | None = None) -> ItemKNN:
        """Fit on history; ``titles`` (movieId -> title) makes explanations readable."""
        super().fit(history)
        self._titles = dict(titles or {})
        pairs = history[["userId", "movieId"]].drop_duplicates()
        users, u_idx = np.unique(pairs["userId"].to_numpy(), return_inverse=True)
        self._items, i_idx = np.unique(pairs["movieId"].to_numpy(), return_inverse=True)
        self._index = {int(m): c for c, m in enumerate(self._items)}
        n_items = len(self._items)
        x = np.zeros((len(users), n_items), dtype=np.float32)
        x[u_idx, i_idx] = 1.0
        norms = np.sqrt(x.sum(axis=0))
        k = min(self.n_neighbors, max(1, n_items - 1))
        self._nbr_idx = np.zeros((n_items, k), dtype=np.int32)
        self._nbr_sim = np.zeros((n_items, k), dtype=np.float32)
        for start in range(0, n_items, self.chunk):
            stop = min(n_items, start + self.chunk)
            sim = x[:, start:stop].T @ x  # co-occurrence counts of this chunk of items with all items
            sim /= norms[start:stop, None] * norms[None, :]
            sim[np.arange(stop - start), np.arange(start, stop)] = 0.0  # an item is not its own neighbour
            # k <= n_items - 1 whenever n_items > 1; a single item is its own (zero-similarity) neighbour.
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if n_items > 1 else np.zeros((stop - start, 1), int)
            self._nbr_idx[start:stop] = top
            self._nbr_sim[start:stop] = np.take_along_axis(sim, top, axis=1)
        return self

    def _scores(self, hist_cols: np.ndarray) -> np.ndarray:
        assert self._nbr_idx is not None and self._nbr_sim is not None and self._items is not None
        return np.bincount(self._nbr_idx[hist_cols].ravel(), weights=self._nbr_sim[hist_cols].ravel(),
                           minlength=len(self._items))

    def _hist_cols(self, user: int) -> np.ndarray:
        return np.array(sorted(self._index[i] for i in self.seen(user) if i in self._index), dtype=np.int64)

    def recommend(self, users: Iterable[int], k: int = 10) -> dict[int, list[int]]:
        """Top-k unseen items by summed neighbour similarity, padded with popular unseen items."""
        if self._items is None:
            raise NotFittedError("call fit(history) before recommend")
        out: dict[int, list[int]] = {}
        for user in users:
            user = int(user)
            cols = self._hist_cols(user)
            if len(cols) == 0:
                out[user] = self._top(set(), k)
                continue
            scores = self._scores(cols)
            scores[cols] = 0.0
            cand = np.flatnonzero(scores > 0)
            # Sort by score desc, then movieId asc (items are sorted, so column index order = movieId order).
            cand = cand[np.lexsort((cand, -scores[cand]))][:k]
            items = [int(self._items[c]) for c in cand]
            if len(items) < k:
                items += self._top(self.seen(user), k - len(items), also=items)
            out[user] = items
        return out

    def because(self, user: int, item: int) -> int | None:
        """The history item contributing most to ``item``'s score for ``user`` (None if none does)."""
        if self._items is None:
            raise NotFittedError("call fit(history) before explain")
        col = self._index.get(int(item))
        cols = self._hist_cols(user)
        if col is None or len(cols) == 0:
            return None
        assert self._nbr_idx is not None and self._nbr_sim is not None
        sims = np.where(self._nbr_idx[cols] == col, self._nbr_sim[cols], 0.0).max(axis=1)
        best = int(np.argmax(sims))
        return int(self._items[cols[best]]) if sims[best] > 0 else None

    def explain(self, user: int, item: int) -> str:
        source = self.because(user, item)
        if source is None:
            return super().explain(user, item)
        return f"similar to {self._titles.get(source, f'movie {source}')}"
