"""Candidate generation with per-source features for the learned ranker.

Sources, each fitted on one history frame (userId, movieId, timestamp):

* ``knn``  item-item cosine kNN (baselines.ItemKNN) as a sparse item x item matrix; score = sum of
  neighbour similarities over the user's history items.
* ``mf``   implicit ALS (mf.MatrixFactorization); score = user . item factors (items absent from the
  history get the user's lowest score).
* ``emb``  FAISS inner-product index over item-text embeddings (item_text.py); the user's profile is
  the normalised mean of the history item vectors (``emb``) and of the last ``recent`` ones
  (``emb_recent``). FAISS retrieves the candidates; the same inner products are the features.
* ``kg``   personalized PageRank on the movie knowledge graph (movies - genres - tags, undirected,
  the same walk as KnowledgeGraph.personalized_pagerank) restarting at the user's history items.
* ``pop``  history popularity (all time and in the ``window_days`` before the user's last event).
* ``ease`` EASE (baselines.EASE, one λ) and ``rp3`` RP3beta (baselines.RP3beta, one α, β): the strong
  item-item baselines as sources and features; their dense item x item weights are cut to the
  ``item_neighbors`` largest per history item (sparse, so the saved model stays small).

``CandidateGenerator.candidates(users)`` returns one row per (user, candidate item) with every
source's score and rank for that item (not just the source that proposed it), so the ranker can
combine them. Seen items are never candidates. Everything is deterministic for a given history.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from kgfusion.apps.recommend.baselines import EASE, ItemKNN, RP3beta
from kgfusion.apps.recommend.mf import MatrixFactorization
from kgfusion.core.errors import ConfigError, DataError

SOURCES = ("knn", "mf", "emb", "kg", "pop", "ease", "rp3")
SCORED = ("knn", "mf", "kg", "ease", "rp3")  # dense score sources whose rank is a feature too
FEATURES = (
    "knn", "knn_rank", "knn_rel", "mf", "mf_rank", "emb", "emb_rank", "emb_recent", "kg", "kg_rank",
    "ease", "ease_rank", "rp3", "rp3_rank",
    "pop_log", "pop_recent_log", "genre_aff", "item_age_years", "first_seen_days", "hist_len_log",
    "n_sources",
)
# Feature groups for the ablation and the explanations (which kind of evidence moved the score).
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "knn": ("knn", "knn_rank", "knn_rel"), "mf": ("mf", "mf_rank"), "emb": ("emb", "emb_rank", "emb_recent"),
    "kg": ("kg", "kg_rank", "genre_aff"), "ease": ("ease", "ease_rank"), "rp3": ("rp3", "rp3_rank"),
    "pop": ("pop_log", "pop_recent_log", "first_seen_days", "item_age_years"),
    "user": ("hist_len_log", "n_sources"),
}
_DAY = 86400.0


@dataclass(frozen=True)
class CandidateConfig:
    """Per-source candidate counts (>= 1) and model sizes; ``sources`` picks which ones propose items."""

    per_source: int = 50
    knn_neighbors: int = 100
    mf_factors: int = 32
    mf_regularization: float = 0.1
    mf_iterations: int = 20
    ppr_alpha: float = 0.85
    ppr_iterations: int = 25
    recent: int = 10
    window_days: float = 180.0
    ease_lambda: float = 100.0
    rp3_alpha: float = 0.5
    rp3_beta: float = 0.6
    item_neighbors: int = 64
    sources: tuple[str, ...] = SOURCES
    seed: int = 13
    threads: int = 1
    extra: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [s for s in self.sources if s not in SOURCES]
        if bad or not self.sources:
            raise ConfigError(f"sources {list(self.sources)}: unknown {bad}; choose from {list(SOURCES)}")
        if self.per_source < 1 or self.recent < 1 or self.item_neighbors < 1:
            raise ConfigError(f"per_source={self.per_source}, recent={self.recent} and item_neighbors="
                              f"{self.item_neighbors} must be >= 1")
        if self.ease_lambda <= 0 or self.rp3_alpha <= 0 or self.rp3_beta < 0:
            raise ConfigError(f"ease_lambda={self.ease_lambda} and rp3_alpha={self.rp3_alpha} must be > 0, "
                              f"rp3_beta={self.rp3_beta} >= 0")
        if not 0.0 < self.ppr_alpha < 1.0:
            raise ConfigError(f"ppr_alpha={self.ppr_alpha} must be in (0, 1)")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["sources"] = list(self.sources)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> CandidateConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown candidate config key(s) {sorted(unknown)}")
        data = dict(data)
        data["sources"] = tuple(data.get("sources", SOURCES))
        return cls(**data)


# ----------------------------------------------------------------------------- knowledge graph view
class ItemGraph:
    """The undirected movie graph as arrays: CSR adjacency over nodes, node -> catalogue item index.

    ``node_item[n]`` is the catalogue row of movie node n (-1 for genre/tag nodes); ``labels`` and
    ``predicates`` (for attribute nodes: the label of the edge to movies, e.g. "has genre") feed the
    explanations. Built from a KnowledgeGraph once, then saved as plain arrays (no rdflib at load).
    """

    def __init__(self, adjacency: sparse.csr_matrix, node_item: np.ndarray, labels: Sequence[str],
                 predicates: Sequence[str], uris: Sequence[str]) -> None:
        self.adjacency = adjacency.tocsr().astype(np.float32)
        self.node_item = np.asarray(node_item, dtype=np.int64)
        self.labels = list(labels)
        self.predicates = list(predicates)
        self.uris = list(uris)
        n_items = int(self.node_item.max()) + 1 if len(self.node_item) and self.node_item.max() >= 0 else 0
        self.item_node = np.full(n_items, -1, dtype=np.int64)
        movies = np.flatnonzero(self.node_item >= 0)
        self.item_node[self.node_item[movies]] = movies
        self.degree = np.asarray(self.adjacency.sum(axis=1)).ravel()

    @classmethod
    def from_kg(cls, kg, item_ids: Sequence[int]) -> ItemGraph:
        """Movie nodes are ``kgfid:movie/<id>``; ids absent from ``item_ids`` stay attribute-free nodes."""
        from kgfusion.knowledge.builders.movies import movie_uri

        net = kg._undirected()
        nodes = sorted(net.nodes)
        index = {n: i for i, n in enumerate(nodes)}
        row_of = {str(movie_uri(int(i))): r for r, i in enumerate(item_ids)}
        node_item = np.array([row_of.get(n, -1) for n in nodes], dtype=np.int64)
        rows, cols = [], []
        for u, v in net.edges():
            rows += [index[u], index[v]]
            cols += [index[v], index[u]]
        adjacency = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                      shape=(len(nodes), len(nodes)))
        adjacency.data[:] = 1.0  # parallel RDF edges count once, as in the networkx Graph view
        directed = kg.to_networkx()
        predicates = []
        for n in nodes:
            if node_item[index[n]] >= 0:
                predicates.append("")
                continue
            preds = sorted({d["predicate"] for _, _, d in directed.in_edges(n, data=True)})
            predicates.append(kg.predicate_label(preds[0]) if preds else "linked to")
        labels = [directed.nodes[n].get("label", n) for n in nodes]
        return cls(adjacency, node_item, labels, predicates, nodes)

    def ppr(self, seeds: sparse.csr_matrix, alpha: float = 0.85, iterations: int = 25) -> np.ndarray:
        """Personalized PageRank for a batch: ``seeds`` (batch x items, weights >= 0) -> (batch x items).

        Dangling mass returns to the seeds (networkx's convention); rows with no linked seed are 0.
        """
        n_nodes = self.adjacency.shape[0]
        linked = np.flatnonzero(self.item_node >= 0)
        remap = sparse.csr_matrix((np.ones(len(linked), dtype=np.float32), (linked, self.item_node[linked])),
                                  shape=(seeds.shape[1], n_nodes))  # item column -> its movie node
        seed_nodes = sparse.csr_matrix(seeds) @ remap
        p = np.asarray(seed_nodes.todense(), dtype=np.float32).T  # nodes x batch
        total = p.sum(axis=0)
        ok = total > 0
        p[:, ok] /= total[ok]
        dangling = self.degree == 0
        walk = self._walk()
        restart = (1 - alpha) * p
        r = p.copy()
        for _ in range(iterations):
            lost = r[dangling].sum(axis=0) if dangling.any() else None  # mass on dead ends, back to the seeds
            r = walk @ r
            if lost is not None:
                r += lost * p
            r *= alpha
            r += restart
        out = np.zeros((seeds.shape[0], seeds.shape[1]), dtype=np.float32)
        out[:, linked] = r[self.item_node[linked]].T
        return out

    def _walk(self) -> sparse.csr_matrix:
        """The random walk's transition matrix, walk[i, j] = A[j, i] / deg(j) (cached: one sparse product per step)."""
        if getattr(self, "_walk_matrix", None) is None:
            inv = np.where(self.degree > 0, 1.0 / np.maximum(self.degree, 1e-12), 0.0).astype(np.float32)
            self._walk_matrix = (self.adjacency.T @ sparse.diags(inv)).tocsr().astype(np.float32)
        return self._walk_matrix

    def attributes(self, item: int) -> list[int]:
        """Attribute node ids linked to catalogue item ``item`` (empty if it is not in the graph)."""
        node = self.item_node[item] if item < len(self.item_node) else -1
        if node < 0:
            return []
        a = self.adjacency
        return [int(n) for n in a.indices[a.indptr[node]:a.indptr[node + 1]] if self.node_item[n] < 0]

    def state(self) -> dict[str, np.ndarray]:
        a = self.adjacency
        return {"kg_indptr": a.indptr.astype(np.int64), "kg_indices": a.indices.astype(np.int32),
                "kg_node_item": self.node_item}

    def meta(self) -> dict[str, list[str]]:
        return {"labels": self.labels, "predicates": self.predicates, "uris": self.uris}

    @classmethod
    def from_state(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, list[str]]) -> ItemGraph:
        n = len(arrays["kg_node_item"])
        indices = arrays["kg_indices"]
        adjacency = sparse.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, arrays["kg_indptr"]),
                                      shape=(n, n))
        return cls(adjacency, arrays["kg_node_item"], meta["labels"], meta["predicates"], meta["uris"])


# ----------------------------------------------------------------------------- generator
def _rank_of(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """1-based rank of cells (rows[i], cols[i]) within their row: 1 + how many scores in the row are larger
    (ties share a rank). Sorting each row once and searching beats a full argsort of every row."""
    order = np.sort(scores, axis=1)  # ascending
    out = np.empty(len(rows), dtype=np.float64)
    width = scores.shape[1]
    for r in np.unique(rows):
        sel = np.flatnonzero(rows == r)
        out[sel] = width - np.searchsorted(order[r], scores[r, cols[sel]], side="right") + 1
    return out


def _sparse_top(weights: np.ndarray, rows: np.ndarray, n_items: int, k: int) -> sparse.csr_matrix:
    """The k entries of largest magnitude in each row of a dense item x item matrix (history items ``rows`` in
    catalogue coordinates; EASE weights can be negative), as an n_items x n_items CSR with float16-rounded
    values (the saved precision)."""
    k = min(k, weights.shape[1])
    top = np.argpartition(-np.abs(weights), k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(weights, top, axis=1)
    keep = vals != 0
    r = np.repeat(rows, k).reshape(top.shape)[keep]
    c = rows[top][keep]
    data = vals[keep].astype(np.float16).astype(np.float32)
    return sparse.csr_matrix((data, (r, c)), shape=(n_items, n_items))


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Column indices of the n best finite scores per row (ties by column), as a list per row."""
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    return part


class CandidateGenerator:
    """All sources over one catalogue (``items``: item_id, title, genres, year; row = item index)."""

    def __init__(self, items: pd.DataFrame, graph: ItemGraph | None, embeddings: np.ndarray | None,
                 config: CandidateConfig | None = None) -> None:
        self.items = items.reset_index(drop=True)
        self.config = config or CandidateConfig()
        self.graph = graph
        if embeddings is not None and len(embeddings) != len(self.items):
            raise DataError(f"embeddings have {len(embeddings)} rows but the catalogue has {len(self.items)} "
                            "items; embed the same movies file")
        # Rounded to float16 (the saved precision) so a reloaded model scores exactly like the fitted one.
        self.embeddings = None if embeddings is None else np.ascontiguousarray(
            np.asarray(embeddings).astype(np.float16), dtype=np.float32)
        self.item_row = {int(i): r for r, i in enumerate(self.items["item_id"])}
        genres = sorted({g for gs in self.items["genres"] for g in gs})
        self.genre_names = genres
        gi = {g: j for j, g in enumerate(genres)}
        rows = [r for r, gs in enumerate(self.items["genres"]) for _ in gs]
        cols = [gi[g] for gs in self.items["genres"] for g in gs]
        self.genre_matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                              shape=(len(self.items), max(1, len(genres))))
        years = pd.to_numeric(self.items["year"], errors="coerce").to_numpy(dtype=np.float64)
        self.item_year = years
        self._index = None
        self.item_models: dict[str, sparse.csr_matrix] = {}
        self.fitted = False

    # ------------------------------------------------------------------ fit
    def _index_history(self, hist: pd.DataFrame) -> pd.DataFrame:
        """Seen items, last timestamps, popularity and first-seen times from catalogue-only ratings.

        Shared by fit() and restore(); returns the history sorted by user, time, movie.
        """
        hist = hist.sort_values(["userId", "timestamp", "movieId"], kind="mergesort")
        n_items = len(self.items)
        col = hist["movieId"].map(self.item_row).to_numpy()
        self.seen = {int(u): col[idx] for u, idx in hist.groupby("userId", sort=True).indices.items()}
        self.last_ts = hist.groupby("userId")["timestamp"].max().to_dict()
        # popularity and per-item timestamps for the windowed popularity
        users_per_item = hist.drop_duplicates(["userId", "movieId"]).groupby("movieId").size()
        self.pop = np.zeros(n_items, dtype=np.float64)
        self.pop[[self.item_row[int(i)] for i in users_per_item.index]] = users_per_item.to_numpy()
        self._ts_key = np.sort(col.astype(np.int64) * (1 << 32) + hist["timestamp"].to_numpy(dtype=np.int64))
        first = hist.groupby("movieId")["timestamp"].min()
        self.first_ts = np.full(n_items, np.nan)
        self.first_ts[[self.item_row[int(i)] for i in first.index]] = first.to_numpy(dtype=np.float64)
        self.pop_order = np.lexsort((self.items["item_id"].to_numpy(), -self.pop))
        # item row x user (binary): co-watch counts for the explanations ("co-watched by 40 users")
        users = np.unique(hist["userId"].to_numpy(), return_inverse=True)[1]
        self.item_users = sparse.csr_matrix((np.ones(len(col), dtype=np.float32), (col, users)),
                                            shape=(n_items, int(users.max()) + 1 if len(users) else 0))
        self.item_users.data[:] = 1.0  # a re-rated movie counts once
        return hist

    def fit(self, history: pd.DataFrame) -> CandidateGenerator:
        """Fit every source on ``history`` (rows on movies outside the catalogue are ignored)."""
        cfg = self.config
        hist = history[history["movieId"].isin(self.item_row)]
        if hist.empty:
            raise DataError("history has no ratings on catalogue movies; check the ratings and movies files")
        hist = self._index_history(hist)
        n_items = len(self.items)
        # kNN in catalogue coordinates
        knn = ItemKNN(n_neighbors=cfg.knn_neighbors).fit(hist)
        assert knn._items is not None and knn._nbr_idx is not None and knn._nbr_sim is not None
        glob = np.array([self.item_row[int(i)] for i in knn._items])
        k = knn._nbr_idx.shape[1]
        rows = np.repeat(glob, k)
        cols = glob[knn._nbr_idx.ravel()]
        sims = knn._nbr_sim.ravel()
        keep = sims > 0
        self.knn = sparse.csr_matrix((sims[keep], (rows[keep], cols[keep])), shape=(n_items, n_items))
        # ALS factors in catalogue coordinates (zero rows for items absent from the history)
        mf = MatrixFactorization("als", factors=cfg.mf_factors, regularization=cfg.mf_regularization,
                                 iterations=cfg.mf_iterations, threads=cfg.threads, seed=cfg.seed).fit(hist)
        assert mf.items is not None and mf.users is not None and mf.item_factors is not None
        self.mf_items = np.zeros((n_items, mf.item_factors.shape[1]), dtype=np.float32)
        self.mf_items[[self.item_row[int(i)] for i in mf.items]] = mf.item_factors
        self.mf_known = np.zeros(n_items, dtype=bool)
        self.mf_known[[self.item_row[int(i)] for i in mf.items]] = True
        self.mf_users = {int(u): mf.user_factors[r] for r, u in enumerate(mf.users)}
        # the strong item-item baselines, one hyperparameter point each, cut to their largest weights
        self.item_models = {}
        for name, model in (("ease", EASE(lambdas=(cfg.ease_lambda,))),
                            ("rp3", RP3beta(alphas=(cfg.rp3_alpha,), betas=(cfg.rp3_beta,)))):
            if name not in cfg.sources:
                continue
            model.fit(hist)
            assert model.items is not None and model.weights is not None
            rows_of = np.array([self.item_row[int(i)] for i in model.items])
            self.item_models[name] = _sparse_top(model.weights, rows_of, n_items, cfg.item_neighbors)
            model.weights = None  # free the dense matrix before the next one
        self.fitted = True
        return self

    # ------------------------------------------------------------------ scoring
    def known(self, user: int) -> bool:
        return int(user) in self.seen and len(self.seen[int(user)]) > 0

    def _faiss(self):
        if self._index is None and self.embeddings is not None:
            import faiss

            self._index = faiss.IndexFlatIP(self.embeddings.shape[1])
            self._index.add(self.embeddings)
        return self._index

    def _history_matrix(self, users: Sequence[int], last: int | None = None) -> sparse.csr_matrix:
        rows, cols = [], []
        for r, u in enumerate(users):
            seen = self.seen[u] if last is None else self.seen[u][-last:]
            rows += [r] * len(seen)
            cols += list(seen)
        return sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                 shape=(len(users), len(self.items)))

    def score_matrices(self, users: Sequence[int]) -> dict[str, np.ndarray]:
        """Dense (len(users) x items) score per source for known users (seen items not masked)."""
        if not self.fitted:
            raise DataError("CandidateGenerator.fit(history) must run before scoring")
        cfg = self.config
        x = self._history_matrix(users)
        out: dict[str, np.ndarray] = {"knn": np.asarray((x @ self.knn).todense(), dtype=np.float32)}
        uf = np.stack([self.mf_users.get(u, np.zeros(self.mf_items.shape[1], np.float32)) for u in users])
        mf = uf @ self.mf_items.T
        mf[:, ~self.mf_known] = mf.min(axis=1, keepdims=True) if mf.size else 0.0
        out["mf"] = mf
        if self.embeddings is not None:
            for name, mat in (("emb", x), ("emb_recent", self._history_matrix(users, last=cfg.recent))):
                prof = np.asarray(mat @ self.embeddings, dtype=np.float32)
                prof /= np.maximum(np.linalg.norm(prof, axis=1, keepdims=True), 1e-12)
                out[name] = prof
        for name, weights in self.item_models.items():
            out[name] = np.asarray((x @ weights).todense(), dtype=np.float32)
        if self.graph is not None:
            out["kg"] = self.graph.ppr(x, self.config.ppr_alpha, self.config.ppr_iterations) * len(self.items)
        gp = np.asarray((x @ self.genre_matrix).todense(), dtype=np.float32)
        gp /= np.maximum(gp.sum(axis=1, keepdims=True), 1e-12)
        out["genre_profile"] = gp
        return out

    def candidates(self, users: Iterable[int], batch: int = 128) -> pd.DataFrame:
        """(user_id, item_id, item_row, source flags, FEATURES...) for known users; unknown users skipped."""
        users = [int(u) for u in users if self.known(u)]
        frames = [self._batch(users[s:s + batch]) for s in range(0, len(users), batch)]
        if not frames:
            return pd.DataFrame(columns=["user_id", "item_id", "item_row", *FEATURES])
        return pd.concat(frames, ignore_index=True)

    def _batch(self, users: list[int]) -> pd.DataFrame:
        cfg = self.config
        mats = self.score_matrices(users)
        n, n_items = len(users), len(self.items)
        seen_mask = np.zeros((n, n_items), dtype=bool)
        for r, u in enumerate(users):
            seen_mask[r, self.seen[u]] = True
        masked: dict[str, np.ndarray] = {}  # seen items at -inf: proposals and ranks only among unseen items
        props: dict[str, np.ndarray] = {}
        for name in SCORED:
            if name in mats:
                masked[name] = np.where(seen_mask, -np.inf, mats[name])
                if name in cfg.sources:
                    props[name] = _top(masked[name], cfg.per_source)
        emb_scores = None
        if "emb" in mats:
            emb_scores = mats["emb"] @ self.embeddings.T
            masked["emb"] = np.where(seen_mask, -np.inf, emb_scores)
            if "emb" in cfg.sources:
                index = self._faiss()
                want = cfg.per_source + max(len(self.seen[u]) for u in users)
                _, found = index.search(np.ascontiguousarray(mats["emb"]), min(want, n_items))
                props["emb"] = np.stack([
                    np.pad(f[~seen_mask[r, f]][: cfg.per_source], (0, max(0, cfg.per_source - int((~seen_mask[r, f]).sum()))),
                           constant_values=-1)[: cfg.per_source]
                    for r, f in enumerate(found)])
        if "pop" in cfg.sources:
            props["pop"] = np.stack([
                self.pop_order[~seen_mask[r, self.pop_order]][: cfg.per_source] for r in range(n)])
        # union of proposals: one row per (user, item), sorted by user then catalogue row
        keys, which = [], []
        for j, s in enumerate(SOURCES):
            if s not in props:
                continue
            arr = props[s]
            r = np.repeat(np.arange(n), arr.shape[1])
            c = arr.ravel().astype(np.int64)
            ok = c >= 0
            r, c = r[ok], c[ok]
            ok = ~seen_mask[r, c]
            keys.append(r[ok] * n_items + c[ok])
            which.append(np.full(int(ok.sum()), j))
        all_keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        uniq, inverse = np.unique(all_keys, return_inverse=True)
        flags = np.zeros((len(uniq), len(SOURCES)), dtype=bool)
        flags[inverse, np.concatenate(which) if which else np.zeros(0, dtype=np.int64)] = True
        ri, ci = uniq // n_items, uniq % n_items
        out = pd.DataFrame({"user_id": np.array(users, dtype=np.int64)[ri],
                            "item_id": self.items["item_id"].to_numpy()[ci], "item_row": ci})
        for j, s in enumerate(SOURCES):
            out[f"from_{s}"] = flags[:, j]
        nan = np.full(len(ri), np.nan)
        for name in (*SCORED, "emb"):
            score = emb_scores if name == "emb" else mats.get(name)
            if score is None:
                out[name], out[f"{name}_rank"] = nan, nan
                continue
            out[name] = score[ri, ci].astype(np.float64)
            out[f"{name}_rank"] = _rank_of(masked[name], ri, ci)
        out["emb_recent"] = (np.einsum("ij,ij->i", mats["emb_recent"][ri], self.embeddings[ci]).astype(np.float64)
                             if "emb_recent" in mats else nan)
        maxknn = mats["knn"].max(axis=1) if "knn" in mats else np.ones(n)
        out["knn_rel"] = out["knn"] / np.maximum(maxknn[ri], 1e-9)
        out["pop_log"] = np.log1p(self.pop[ci])
        last = np.array([self.last_ts[u] for u in users], dtype=np.int64)[ri]
        hi = np.searchsorted(self._ts_key, ci * (1 << 32) + last, side="right")
        lo = np.searchsorted(self._ts_key, ci * (1 << 32) + last - int(cfg.window_days * _DAY), side="left")
        out["pop_recent_log"] = np.log1p(hi - lo)
        gprof = mats["genre_profile"]
        gm = self.genre_matrix[ci]
        n_g = np.asarray(gm.sum(axis=1)).ravel()
        out["genre_aff"] = np.asarray(gm.multiply(gprof[ri]).sum(axis=1)).ravel() / np.maximum(n_g, 1)
        last_year = 1970 + last / (365.25 * _DAY)
        out["item_age_years"] = last_year - self.item_year[ci]
        out["first_seen_days"] = (last - self.first_ts[ci]) / _DAY
        out["hist_len_log"] = np.log1p(np.array([len(self.seen[u]) for u in users])[ri])
        out["n_sources"] = flags.sum(axis=1)
        return out

    # ------------------------------------------------------------------ explanations support
    def co_watchers(self, row: int, others: Sequence[int]) -> np.ndarray:
        """How many history users watched both catalogue row ``row`` and each row in ``others``."""
        others = np.asarray(others, dtype=np.int64)
        if len(others) == 0:
            return np.zeros(0, dtype=np.int64)
        ptr, idx = self.item_users.indptr, self.item_users.indices
        watched = np.zeros(self.item_users.shape[1], dtype=bool)
        watched[idx[ptr[row]:ptr[row + 1]]] = True
        # one pass over the others' user lists (faster than a sparse product per call)
        lengths = ptr[others + 1] - ptr[others]
        users = np.concatenate([idx[a:b] for a, b in zip(ptr[others], ptr[others + 1], strict=True)])
        hits = np.concatenate([[0], np.cumsum(watched[users], dtype=np.int64)])
        ends = np.cumsum(lengths)
        return hits[ends] - hits[ends - lengths]

    def popular(self, exclude: Iterable[int] = (), n: int = 100) -> list[int]:
        """The n most popular catalogue rows not in ``exclude`` (ties by item id)."""
        skip = set(int(e) for e in exclude)
        return [int(r) for r in self.pop_order if int(r) not in skip][:n]

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        """Fitted arrays (numeric only: saved as .npy, loaded with allow_pickle=False)."""
        k = self.knn.tocsr()
        users = np.array(sorted(self.mf_users), dtype=np.int64)
        out = {
            "knn_indptr": k.indptr.astype(np.int64), "knn_indices": k.indices.astype(np.int32),
            "knn_data": k.data.astype(np.float32), "mf_items": self.mf_items, "mf_known": self.mf_known,
            "mf_user_ids": users,
            "mf_users": np.stack([self.mf_users[int(u)] for u in users]) if len(users) else np.zeros((0, 1)),
        }
        if self.embeddings is not None:
            out["item_embeddings"] = self.embeddings.astype(np.float16)
        index_type = np.uint16 if len(self.items) <= np.iinfo(np.uint16).max else np.int32
        for name, weights in self.item_models.items():  # compact: the values are float16-rounded at fit
            w = weights.tocsr()
            out.update({f"{name}_indptr": w.indptr.astype(np.int64), f"{name}_indices": w.indices.astype(index_type),
                        f"{name}_data": w.data.astype(np.float16)})
        if self.graph is not None:
            out.update(self.graph.state())
        return out

    def restore(self, arrays: Mapping[str, np.ndarray], history: pd.DataFrame) -> CandidateGenerator:
        """Rebuild a fitted generator from ``state()`` arrays and the history it was fitted on."""
        n_items = len(self.items)
        self._index_history(history[history["movieId"].isin(self.item_row)])
        self.knn = sparse.csr_matrix((arrays["knn_data"], arrays["knn_indices"], arrays["knn_indptr"]),
                                     shape=(n_items, n_items))
        self.mf_items = np.asarray(arrays["mf_items"], dtype=np.float32)
        self.mf_known = np.asarray(arrays["mf_known"], dtype=bool)
        self.mf_users = {int(u): np.asarray(f, dtype=np.float32)
                         for u, f in zip(arrays["mf_user_ids"], arrays["mf_users"], strict=True)}
        self.item_models = {  # absent in models saved before the EASE/RP3beta sources
            name: sparse.csr_matrix((arrays[f"{name}_data"].astype(np.float32), arrays[f"{name}_indices"].astype(np.int32),
                                     arrays[f"{name}_indptr"]), shape=(n_items, n_items))
            for name in ("ease", "rp3") if f"{name}_data" in arrays}
        self.fitted = True
        return self
