"""Matrix factorisation baselines on implicit feedback: the ``implicit`` library's ALS and BPR (CPU).

``MatrixFactorization(kind="als"|"bpr").fit(history)`` learns user and item factors from the binary
user x item matrix; ``recommend(users, k)`` ranks unseen items by the dot product (ties by movieId) and
pads with popular items; users unknown to ``fit`` get popular items. ``explain`` names the history item
whose factor vector is closest (cosine) to the recommended one ("similar to X"). Threads are capped
(``threads``, default 1) because the box is shared; ``random_state`` makes runs repeatable.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

from kgfusion.apps.recommend.baselines import NotFittedError, Popularity
from kgfusion.core.errors import ConfigError

Kind = Literal["als", "bpr"]


class MatrixFactorization(Popularity):
    """implicit ALS (alpha-weighted confidence) or BPR; factors in [8, 512], iterations >= 1."""

    def __init__(self, kind: Kind = "als", factors: int = 32, regularization: float = 0.1,
                 iterations: int = 20, alpha: float = 1.0, learning_rate: float = 0.05,
                 threads: int = 1, seed: int = 13) -> None:
        super().__init__()
        if kind not in ("als", "bpr"):
            raise ConfigError(f"kind={kind!r} is not one of als, bpr")
        if not 8 <= factors <= 512:
            raise ConfigError(f"factors={factors} must be in 8..512")
        if iterations < 1:
            raise ConfigError(f"iterations={iterations} must be >= 1")
        self.kind, self.factors, self.regularization = kind, factors, regularization
        self.iterations, self.alpha, self.learning_rate = iterations, alpha, learning_rate
        self.threads, self.seed = threads, seed
        self.items: np.ndarray | None = None  # column -> movieId (sorted)
        self.users: np.ndarray | None = None  # row -> userId (sorted)
        self.item_factors: np.ndarray | None = None
        self.user_factors: np.ndarray | None = None
        self._item_col: dict[int, int] = {}
        self._user_row: dict[int, int] = {}
        self._titles: Mapping[int, str] = {}

    def fit(self, history: pd.DataFrame, titles: Mapping[int, str] | None = None) -> MatrixFactorization:
        super().fit(history)
        from threadpoolctl import threadpool_limits

        self._titles = dict(titles or {})
        pairs = history[["userId", "movieId"]].drop_duplicates()
        self.users, rows = np.unique(pairs["userId"].to_numpy(), return_inverse=True)
        self.items, cols = np.unique(pairs["movieId"].to_numpy(), return_inverse=True)
        self._user_row = {int(u): r for r, u in enumerate(self.users)}
        self._item_col = {int(i): c for c, i in enumerate(self.items)}
        matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                   shape=(len(self.users), len(self.items)))
        # implicit warns (and slows down) when BLAS also spawns threads.
        with threadpool_limits(1, user_api="blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*threadpool.*", category=RuntimeWarning)
            if self.kind == "als":
                from implicit.cpu.als import AlternatingLeastSquares

                model = AlternatingLeastSquares(
                    factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                    iterations=self.iterations, num_threads=self.threads, random_state=self.seed)
            else:
                from implicit.cpu.bpr import BayesianPersonalizedRanking

                model = BayesianPersonalizedRanking(
                    factors=self.factors, learning_rate=self.learning_rate, regularization=self.regularization,
                    iterations=self.iterations, num_threads=self.threads, random_state=self.seed)
            model.fit(matrix, show_progress=False)
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        return self

    def user_scores(self, user: int) -> np.ndarray | None:
        """Scores over ``self.items`` for a fitted user (None if the user was not in the history)."""
        if self.item_factors is None or self.user_factors is None:
            raise NotFittedError("call fit(history) before recommend")
        row = self._user_row.get(int(user))
        return None if row is None else self.item_factors @ self.user_factors[row]

    def recommend(self, users: Iterable[int], k: int = 10) -> dict[int, list[int]]:
        """Top-k unseen items by factor dot product, padded with popular unseen items."""
        out: dict[int, list[int]] = {}
        for user in map(int, users):
            scores = self.user_scores(user)
            if scores is None:
                out[user] = self._top(set(), k)
                continue
            seen = [self._item_col[i] for i in self.seen(user) if i in self._item_col]
            scores = scores.copy()
            scores[seen] = -np.inf
            assert self.items is not None
            top = np.lexsort((np.arange(len(scores)), -scores))[:k]
            items = [int(self.items[c]) for c in top if np.isfinite(scores[c])]
            if len(items) < k:
                items += self._top(self.seen(user), k - len(items), also=items)
            out[user] = items
        return out

    def because(self, user: int, item: int) -> int | None:
        """The history item whose factors are most cosine-similar to ``item``'s (None if unknown)."""
        if self.item_factors is None or self.items is None:
            raise NotFittedError("call fit(history) before explain")
        col = self._item_col.get(int(item))
        cols = sorted(self._item_col[i] for i in self.seen(user) if i in self._item_col)
        if col is None or not cols:
            return None
        f = self.item_factors
        norms = np.linalg.norm(f[cols], axis=1) * max(float(np.linalg.norm(f[col])), 1e-9)
        sims = (f[cols] @ f[col]) / np.maximum(norms, 1e-9)
        return int(self.items[cols[int(np.argmax(sims))]])

    def explain(self, user: int, item: int) -> str:
        source = self.because(user, item)
        if source is None:
            return super().explain(user, item)
        return f"{self.kind.upper()}: similar to {self._titles.get(source, f'movie {source}')}"
