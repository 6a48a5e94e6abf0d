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

from kgfusion.apps.recommend.baselines import ItemKNN
from kgfusion.apps.recommend.mf import MatrixFactorization
from kgfusion.core.errors import ConfigError, DataError

SOURCES = ("knn", "mf", "emb", "kg", "pop")
FEATURES = (
    "knn", "knn_rank", "knn_rel", "mf", "mf_rank", "emb", "emb_rank", "emb_recent", "kg", "kg_rank",
    "pop_log", "pop_recent_log", "genre_aff", "item_age_years", "first_seen_days", "hist_len_log",
    "n_sources",
)
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
    sources: tuple[str, ...] = SOURCES
    seed: int = 13
    threads: int = 1
    extra: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [s for s in self.sources if s not in SOURCES]
        if bad or not self.sources:
            raise ConfigError(f"sources {list(self.sources)}: unknown {bad}; choose from {list(SOURCES)}")
        if self.per_source < 1 or self.recent < 1:
            raise ConfigError(f"per_source={self.per_source} and recent={self.recent} must be >= 1")
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
        p = np.asarray(seed_nodes.todense(), dtype=np.float64).T  # nodes x batch
        total = p.sum(axis=0)
        ok = total > 0
        p[:, ok] /= total[ok]
        inv = np.where(self.degree > 0, 1.0 / np.maximum(self.degree, 1e-12), 0.0)
        dangling = self.degree == 0
        walk = self.adjacency.T.tocsr()
        r = p.copy()
        for _ in range(iterations):
            r = alpha * (walk @ (r * inv[:, None]) + r[dangling].sum(axis=0) * p) + (1 - alpha) * p
        out = np.zeros((seeds.shape[0], seeds.shape[1]), dtype=np.float32)
        out[:, linked] = r[self.item_node[linked]].T
        return out

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
def _rank_rows(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every column within its row (descending score, ties by column)."""
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[1] + 1)[None, :].repeat(len(scores), 0), axis=1)
    return ranks


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
        props: dict[str, np.ndarray] = {}
        feats: dict[str, np.ndarray] = {}
        for name in ("knn", "mf", "kg"):
            if name not in mats:
                continue
            s = np.where(seen_mask, -np.inf, mats[name])
            feats[name] = mats[name]
            feats[f"{name}_rank"] = _rank_rows(s)
            if name in cfg.sources:
                props[name] = _top(s, cfg.per_source)
        if "emb" in mats:
            emb_scores = mats["emb"] @ self.embeddings.T
            feats["emb"] = emb_scores
            feats["emb_recent"] = mats["emb_recent"] @ self.embeddings.T
            feats["emb_rank"] = _rank_rows(np.where(seen_mask, -np.inf, emb_scores))
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
        # union of proposals
        rows_l, cols_l, flags = [], [], {s: [] for s in SOURCES}
        for r in range(n):
            proposed: dict[int, set[str]] = {}
            for s, arr in props.items():
                for c in arr[r]:
                    if c >= 0 and not seen_mask[r, c]:
                        proposed.setdefault(int(c), set()).add(s)
            for c in sorted(proposed):
                rows_l.append(r)
                cols_l.append(c)
                for s in SOURCES:
                    flags[s].append(s in proposed[c])
        ri, ci = np.array(rows_l, dtype=np.int64), np.array(cols_l, dtype=np.int64)
        out = pd.DataFrame({"user_id": np.array(users, dtype=np.int64)[ri],
                            "item_id": self.items["item_id"].to_numpy()[ci], "item_row": ci})
        for s in SOURCES:
            out[f"from_{s}"] = np.array(flags[s], dtype=bool)
        nan = np.full(len(ri), np.nan)
        for name in ("knn", "knn_rank", "mf", "mf_rank", "emb", "emb_rank", "emb_recent", "kg", "kg_rank"):
            out[name] = feats[name][ri, ci].astype(np.float64) if name in feats else nan
        maxknn = feats["knn"].max(axis=1) if "knn" in feats else np.ones(n)
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
        out["n_sources"] = sum(out[f"from_{s}"].astype(int) for s in SOURCES)
        return out

    # ------------------------------------------------------------------ explanations support
    def knn_because(self, user: int, row: int) -> tuple[int, float] | None:
        """(history item row, similarity) contributing most kNN score to catalogue row ``row``."""
        seen = self.seen.get(int(user))
        if seen is None or len(seen) == 0:
            return None
        sims = np.asarray(self.knn[seen][:, row].todense()).ravel()
        best = int(np.argmax(sims))
        return (int(seen[best]), float(sims[best])) if sims[best] > 0 else None

    def emb_because(self, user: int, row: int) -> tuple[int, float] | None:
        """(history item row, cosine) of the history item whose text embedding is closest to ``row``."""
        seen = self.seen.get(int(user))
        if self.embeddings is None or seen is None or len(seen) == 0:
            return None
        sims = self.embeddings[seen] @ self.embeddings[row]
        best = int(np.argmax(sims))
        return int(seen[best]), float(sims[best])

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
        self.fitted = True
        return self
