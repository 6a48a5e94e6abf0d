"""Baseline recommenders on implicit feedback: Popularity, item-item cosine kNN, EASE and RP3beta.

All follow ``fit(history)`` then ``recommend(users, k) -> {user: [movieId, ...]}``; they never
recommend an item the user has in history, and ``explain(user, item)`` gives a one-line reason.
EASE and RP3beta (numpy/scipy) choose their hyperparameters on an inner time split of the history.
Users unknown to ``fit`` get the most popular items. Ties are broken by movieId (deterministic).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from kgfusion.apps.recommend.data import split_by_time, to_sets
from kgfusion.apps.recommend.metrics import ndcg_at_k
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


# ---------------------------------------------------------------------------- item-item linear models
Params = dict[str, float]


def _spd_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix via Cholesky (LAPACK potrf/potri: half the flops of
    an LU inverse, which matters at ~10k items); potri fills one triangle, so mirror it."""
    from scipy.linalg import get_lapack_funcs

    potrf, potri = get_lapack_funcs(("potrf", "potri"), (a,))
    c, info = potrf(a, lower=False, overwrite_a=True, clean=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky failed (info={info}): the Gram matrix + lambda I is not positive "
                                    "definite; use a larger lambda")
    inv, info = potri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"potri failed (info={info})")
    inv = np.triu(inv)
    inv += np.triu(inv, 1).T
    return inv


class _ItemItem(Popularity):
    """Shared part of EASE and RP3beta: a dense item x item weight matrix W learnt from the binary
    user x item matrix X of the history (built sparse); a user's scores are X_u · W.

    ``fit`` picks the hyperparameters from ``grid`` by NDCG@``select_k`` on an inner time split of the
    history itself (per user the last ``inner_frac`` of the history is the inner target), then refits on
    the whole history — the caller's held-out target is never seen. A one-point grid skips the search.
    ``validation`` lists (params, inner NDCG) per grid point; ``params`` holds the chosen point.
    ``recommend`` ranks unseen items with a positive score (ties by movieId) and pads with popular items;
    ``explain`` names the history item j with the largest contribution W[j, i] ("because you watched X,
    weight w"). Memory: one float32 n_items x n_items matrix (~200 MB at MovieLens-small's 7k items).
    """

    def __init__(self, grid: Sequence[Params], inner_frac: float = 0.2, select_k: int = 10,
                 batch: int = 256) -> None:
        super().__init__()
        if not grid:
            raise ValueError("empty hyperparameter grid")
        if not 0.0 < inner_frac < 1.0:
            raise ValueError(f"inner_frac={inner_frac} must be strictly between 0 and 1")
        self.grid = [dict(p) for p in grid]
        self.inner_frac, self.select_k, self.batch = inner_frac, select_k, batch
        self.params: Params = {}
        self.validation: list[tuple[Params, float]] = []
        self.items: np.ndarray | None = None  # column -> movieId (sorted)
        self.weights: np.ndarray | None = None  # W[j, i]: how much watching j adds to i's score
        self._x: sparse.csr_matrix | None = None
        self._index: dict[int, int] = {}
        self._user_row: dict[int, int] = {}
        self._titles: Mapping[int, str] = {}

    def _weights(self, x: sparse.csr_matrix, **params: float) -> np.ndarray:
        raise NotImplementedError

    def fit(self, history: pd.DataFrame, titles: Mapping[int, str] | None = None) -> _ItemItem:
        """Select hyperparameters on the history's own inner split, then fit W on all of ``history``;
        ``titles`` (movieId -> title) makes explanations readable."""
        _check_history(history)
        self._titles = dict(titles or {})
        self.validation = []
        best = self.grid[0]
        if len(self.grid) > 1:
            if "timestamp" not in history.columns:
                raise DataError("history frame has no timestamp column: the hyperparameter search splits the "
                                "history by time; pass the history returned by split_by_time or a one-point grid")
            inner_hist, inner_target = split_by_time(history, frac=self.inner_frac)
            relevant = to_sets(inner_target)
            if relevant:  # users with a single rating give no inner target; then keep the first grid point
                for params in self.grid:
                    self._fit_params(inner_hist, params)
                    score = ndcg_at_k(self.recommend(sorted(relevant), self.select_k), relevant, self.select_k)
                    self.validation.append((dict(params), float(score)))
                best = max(self.validation, key=lambda pv: pv[1])[0]  # first of equals: grid order
        self._fit_params(history, best)
        return self

    def _fit_params(self, history: pd.DataFrame, params: Params) -> None:
        super().fit(history)
        pairs = history[["userId", "movieId"]].drop_duplicates()
        users, rows = np.unique(pairs["userId"].to_numpy(), return_inverse=True)
        self.items, cols = np.unique(pairs["movieId"].to_numpy(), return_inverse=True)
        self._index = {int(m): c for c, m in enumerate(self.items)}
        self._user_row = {int(u): r for r, u in enumerate(users)}
        self._x = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                    shape=(len(users), len(self.items)))
        self.weights = None  # free the previous grid point's matrix before building the next
        self.weights = self._weights(self._x, **params)
        self.params = dict(params)

    def _hist_cols(self, user: int) -> np.ndarray:
        assert self._x is not None
        row = self._user_row.get(int(user))
        if row is None:
            return np.zeros(0, dtype=np.int64)
        return np.sort(self._x.indices[self._x.indptr[row]:self._x.indptr[row + 1]]).astype(np.int64)

    def user_scores(self, user: int) -> np.ndarray | None:
        """X_u · W over ``self.items`` for a fitted user (None if the user was not in the history)."""
        if self.weights is None or self._x is None:
            raise NotFittedError("call fit(history) before recommend")
        row = self._user_row.get(int(user))
        return None if row is None else np.asarray(self._x[row] @ self.weights).ravel()

    def recommend(self, users: Iterable[int], k: int = 10) -> dict[int, list[int]]:
        """Top-k unseen items by X_u · W (positive scores only), padded with popular unseen items."""
        if self.weights is None or self._x is None or self.items is None:
            raise NotFittedError("call fit(history) before recommend")
        users = [int(u) for u in users]
        out: dict[int, list[int]] = {u: self._top(set(), k) for u in users if u not in self._user_row}
        known = [u for u in users if u in self._user_row]
        for start in range(0, len(known), self.batch):  # batches keep the dense score block small
            chunk = known[start:start + self.batch]
            scores = np.asarray(self._x[[self._user_row[u] for u in chunk]] @ self.weights)
            for user, s in zip(chunk, scores):
                s[self._hist_cols(user)] = -np.inf
                cand = np.flatnonzero(s > 0)
                # Score desc, then movieId asc (columns are sorted by movieId).
                cand = cand[np.lexsort((cand, -s[cand]))][:k]
                items = [int(self.items[c]) for c in cand]
                if len(items) < k:
                    items += self._top(self.seen(user), k - len(items), also=items)
                out[user] = items
        return {u: out[u] for u in users}

    def because_weighted(self, user: int, item: int) -> tuple[int, float] | None:
        """(history movieId, W[j, item]) of the history item adding most to ``item``'s score, or None."""
        if self.weights is None or self.items is None:
            raise NotFittedError("call fit(history) before explain")
        col = self._index.get(int(item))
        cols = self._hist_cols(user)
        if col is None or len(cols) == 0:
            return None
        contrib = self.weights[cols, col]
        best = int(np.argmax(contrib))
        return (int(self.items[cols[best]]), float(contrib[best])) if contrib[best] > 0 else None

    def because(self, user: int, item: int) -> int | None:
        """The history item contributing most to ``item``'s score for ``user`` (None if none does)."""
        found = self.because_weighted(user, item)
        return None if found is None else found[0]

    def explain(self, user: int, item: int) -> str:
        found = self.because_weighted(user, item)
        if found is None:
            return super().explain(user, item)
        source, weight = found
        return f"because you watched {self._titles.get(source, f'movie {source}')}, weight {weight:.3g}"


class EASE(_ItemItem):
    """EASE (Steck 2019): closed-form item-item ridge regression with a zero diagonal.

    P = (XᵀX + λI)⁻¹, B = I − P·diagMat(1/diag(P)) (so diag(B) = 0), scores = X·B; λ from ``lambdas``
    (selected on the history's inner split, see ``_ItemItem``). Fit time ~ n_items³ (one Cholesky
    inverse per grid point); weights can be negative (an item that predicts against another).
    """

    def __init__(self, lambdas: Sequence[float] = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0), **kwargs) -> None:
        if any(lam <= 0 for lam in lambdas):
            raise ValueError(f"lambdas={list(lambdas)} must all be > 0")
        super().__init__([{"lam": float(lam)} for lam in lambdas], **kwargs)

    @property
    def lam(self) -> float:
        """The chosen λ (after ``fit``)."""
        return self.params["lam"]

    def _weights(self, x: sparse.csr_matrix, lam: float) -> np.ndarray:
        g = (x.T @ x).toarray()  # Gram matrix from the sparse X: co-occurrence counts
        g[np.diag_indices_from(g)] += lam
        b = _spd_inverse(g)
        b /= -np.diag(b)[None, :]  # −P_ij / P_jj ...
        np.fill_diagonal(b, 0.0)  # ... and I − P_jj / P_jj = 0 on the diagonal
        return b.astype(np.float32, copy=False)


class RP3beta(_ItemItem):
    """RP3beta (Paudel et al. 2016): item -> user -> item random walk, sharpened and de-popularised.

    P_ui = X row-normalised (user -> item), P_iu = Xᵀ row-normalised (item -> user), every transition
    probability raised to α (as in the authors' and RecBole's code); W = P_iu^α·P_ui^α with column j
    divided by popularity_j^β (history users of j), diagonal
    zeroed, and optionally only the ``n_neighbors`` largest entries kept per row (item); scores = X·W.
    α, β from ``alphas`` x ``betas`` (selected on the history's inner split, see ``_ItemItem``).
    """

    def __init__(self, alphas: Sequence[float] = (0.5, 0.75, 1.0), betas: Sequence[float] = (0.0, 0.2, 0.4, 0.6),
                 n_neighbors: int | None = None, **kwargs) -> None:
        if any(a <= 0 for a in alphas) or any(b < 0 for b in betas):
            raise ValueError(f"alphas={list(alphas)} must be > 0 and betas={list(betas)} >= 0")
        if n_neighbors is not None and n_neighbors < 1:
            raise ValueError(f"n_neighbors={n_neighbors} must be >= 1 (or None: keep all)")
        self.n_neighbors = n_neighbors
        super().__init__([{"alpha": float(a), "beta": float(b)} for a in alphas for b in betas], **kwargs)

    @property
    def alpha(self) -> float:
        return self.params["alpha"]

    @property
    def beta(self) -> float:
        return self.params["beta"]

    def _weights(self, x: sparse.csr_matrix, alpha: float, beta: float) -> np.ndarray:
        pop = np.asarray(x.sum(axis=0), dtype=np.float32).ravel()  # history users per item (>= 1)
        p_ui = sparse.diags(1.0 / np.asarray(x.sum(axis=1), dtype=np.float32).ravel()) @ x
        p_iu = sparse.diags(1.0 / pop) @ x.T.tocsr()
        if alpha != 1.0:  # sharpen each one-step transition before walking (α = 1: the plain 2-step walk)
            p_ui, p_iu = p_ui.power(alpha), p_iu.power(alpha)
        w = (p_iu @ p_ui).toarray().astype(np.float32, copy=False)  # W[i, j] ~ P(i -> some user -> j)
        if beta != 0.0:
            w /= np.power(pop, beta)[None, :]
        np.fill_diagonal(w, 0.0)
        n = w.shape[1]
        if self.n_neighbors is not None and self.n_neighbors < n:
            drop = np.argpartition(-w, self.n_neighbors, axis=1)[:, self.n_neighbors:]
            np.put_along_axis(w, drop, 0.0, axis=1)
        return w
