"""kgfusion's recommender: candidates (kNN, ALS, FAISS over text embeddings, KG PageRank, popularity)
-> LightGBM LambdaRank -> business rules (data/rules/recommend) -> top k with explanations.

Training without leaking the validation target (``fit_and_evaluate``):

1. ``split_by_time(ratings)`` -> history + validation target (per user, the last 20%).
2. ``split_by_time(history)`` again -> inner history + inner target (the last 20% of the history).
   The candidate sources are fitted on the inner history and the ranker learns to put the inner
   target items first (labels come only from the history, never from the validation target). The
   item encoder is also tuned on co-consumed pairs of the inner history only.
3. The sources are refitted on the full history; the trained ranker scores their candidates and the
   top 10 after business rules are compared with the validation target.
4. For the shipped model the sources are refitted once more on all ratings (the ranker is kept), so
   served users get recommendations that skip everything they have rated.

Users absent from the fit (or without history) get the cold-start fallback: popular items, genre-capped
by the rules, each with a KG hop, and the explanation says it is a cold start.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kgfusion.apps.recommend import rule_kinds as _rule_kinds  # noqa: F401 - registers kind business before rules load
from kgfusion.apps.recommend.business_rules import apply_business_rules
from kgfusion.apps.recommend.candidates import FEATURES, CandidateConfig, CandidateGenerator, ItemGraph
from kgfusion.apps.recommend.data import read_movies, read_ratings, split_by_time, to_sets
from kgfusion.apps.recommend.explain import GROUPS as EVIDENCE_GROUPS
from kgfusion.apps.recommend.explain import (
    Reason,
    cold_start_reasons,
    evidence_json,
    explanation_text,
    known_user_reasons,
)
from kgfusion.apps.recommend.metrics import evaluate
from kgfusion.apps.recommend.ranker import Ranker, label_candidates
from kgfusion.core.errors import BundleError, DataError
from kgfusion.core.fileio import (
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    default_dir_mode,
    sha256_file,
)
from kgfusion.knowledge.rules import RuleBase, default_rules_dir, load_rules, rule_to_dict

if TYPE_CHECKING:
    from kgfusion.knowledge.graph import KgStore

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RATINGS = ROOT / "data" / "datasets" / "movielens_small" / "ratings.csv"
DEFAULT_MOVIES = ROOT / "data" / "datasets" / "movielens_small" / "movies.csv"
DEFAULT_KG = ROOT / "data" / "kg" / "movies.ttl"
FORMAT, VERSION = "kgfusion-recommender", 1
FRAME_COLUMNS = ("user_id", "rank", "item_id", "title", "score", "explanation", "evidence", "cold_start")
POOL = 60  # ranked candidates handed to the business rules (the genre cap needs spares)


def catalogue(movies: pd.DataFrame) -> pd.DataFrame:
    """read_movies frame -> item_id, title, genres (list), year (float, NaN if unknown), sorted by id."""
    out = pd.DataFrame({"item_id": movies["movieId"].astype("int64"), "title": movies["title"].astype(str),
                        "genres": movies["genres"].map(list),
                        "year": pd.to_numeric(movies["year"], errors="coerce").astype("float64")})
    return out.sort_values("item_id", kind="mergesort").reset_index(drop=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Recommender:
    """A fitted CandidateGenerator + Ranker + business rules over one catalogue and history."""

    def __init__(self, generator: CandidateGenerator, ranker: Ranker, rules: RuleBase, history: pd.DataFrame,
                 meta: Mapping | None = None) -> None:
        self.generator = generator
        self.ranker = ranker
        self.rules = rules
        self._history = history[["userId", "movieId", "rating", "timestamp"]].reset_index(drop=True)
        self.meta = dict(meta or {})
        items = generator.items
        self._titles = items["title"].tolist()
        self._rule_items = [
            {"item_id": int(i), "title": t, "genres": list(g) or ["(no genres listed)"],
             "primary_genre": g[0] if len(g) else "(no genres listed)",
             "year": None if not np.isfinite(y) else int(y)}
            for i, t, g, y in zip(items["item_id"], items["title"], items["genres"], items["year"], strict=True)
        ]

    # ------------------------------------------------------------------ catalogue / users
    @property
    def items(self) -> pd.DataFrame:
        """The catalogue: item_id, title, genres (list[str]), year (float, NaN when unknown)."""
        return self.generator.items[["item_id", "title", "genres", "year"]].copy()

    def known_users(self) -> list[int]:
        return sorted(u for u in self.generator.seen if len(self.generator.seen[u]))

    def history(self, user_id: int) -> pd.DataFrame:
        """The user's fitted history in time order: item_id, title, genres, rating, timestamp (empty if unknown)."""
        h = self._history[self._history["userId"] == int(user_id)].sort_values(["timestamp", "movieId"],
                                                                                 kind="mergesort")
        out = h.rename(columns={"movieId": "item_id"}).merge(self.items[["item_id", "title", "genres"]],
                                                             on="item_id", how="left")
        return out[["item_id", "title", "genres", "rating", "timestamp"]].reset_index(drop=True)

    # ------------------------------------------------------------------ ranking
    def _apply_rules(self, rows: Sequence[int], scores: Sequence[float], k: int):
        scored = [({**self._rule_items[r], "_row": int(r)}, float(s)) for r, s in zip(rows, scores, strict=True)]
        return apply_business_rules(scored, self.rules, k=k)

    def _rank(self, user_ids: Sequence[int], k: int, explain: bool) -> dict[int, list[dict]]:
        if k < 1:
            raise DataError(f"k={k} must be >= 1")
        gen = self.generator
        users = list(dict.fromkeys(int(u) for u in user_ids))
        known = [u for u in users if gen.known(u)]
        out: dict[int, list[dict]] = {}
        cands = gen.candidates(known)
        if len(cands):
            cands = cands.assign(_score=self.ranker.score(cands))
            cands = cands.sort_values(["user_id", "_score", "item_id"], ascending=[True, False, True],
                                      kind="mergesort")
            picked: list[int] = []  # candidate-frame positions of the recommended items, to explain
            for user, group in cands.groupby("user_id", sort=False):
                top = group.head(max(POOL, 4 * k))
                ranked = self._apply_rules(top["item_row"].to_numpy(), _sigmoid(top["_score"].to_numpy()), k)
                position = dict(zip(top["item_row"].to_numpy().tolist(), range(len(top)), strict=True))
                rows = []
                for it in ranked:
                    row = int(it.item["_row"])
                    rows.append({"row": row, "score": float(it.score), "cold": False, "rules": it.evidence,
                                 "_at": len(picked)})
                    picked.append(group.index[position[row]])
                out[int(user)] = rows
            if explain and picked:
                reference = cands[self.ranker.features].median(numeric_only=True).to_dict()
                self._explain_known(cands.loc[picked], out, reference)
        for user in users:
            if user in out:
                continue
            pool = gen.popular(gen.seen.get(user, ()), n=max(POOL, 4 * k))
            pop = gen.pop[pool]
            ranked = self._apply_rules(pool, pop / max(float(pop.max()) if len(pop) else 1.0, 1.0), k)
            rows = []
            for it in ranked:
                row = int(it.item["_row"])
                entry = {"row": row, "score": float(it.score), "cold": True, "rules": it.evidence}
                if explain:
                    entry["reasons"] = cold_start_reasons(gen=gen, titles=self._titles, user=user, row=row,
                                                          known_user=user in gen.seen)
                rows.append(entry)
            out[user] = rows
        return out

    def _explain_known(self, chosen: pd.DataFrame, ranked: dict[int, list[dict]], reference: Mapping) -> None:
        """Attach reasons to the ranked entries of known users; the ranker's group effects (score minus the
        score with one evidence group at the batch's median candidate, one call for the batch) say which
        evidence moved each score most."""
        names = list(EVIDENCE_GROUPS)
        contrib = self.ranker.group_effects(chosen, EVIDENCE_GROUPS, reference)
        values = chosen[list(FEATURES)].to_numpy(np.float64)
        scores = chosen["_score"].to_numpy(np.float64)
        users = chosen["user_id"].to_numpy()
        for entries in ranked.values():
            for e in entries:
                at = e.pop("_at", None)
                if at is None:
                    continue
                e["reasons"] = known_user_reasons(
                    gen=self.generator, titles=self._titles, user=int(users[at]), row=e["row"],
                    features=dict(zip(FEATURES, values[at].tolist(), strict=True)), score=float(scores[at]),
                    contrib=dict(zip(names, contrib[at].tolist(), strict=True)))

    def recommend_lists(self, user_ids: Sequence[int], k: int = 10) -> dict[int, list[int]]:
        """user -> ranked item ids (no explanations; for the metrics)."""
        ids = self.generator.items["item_id"].to_numpy()
        return {u: [int(ids[e["row"]]) for e in rows] for u, rows in self._rank(user_ids, k, explain=False).items()}

    def recommend_frame(self, user_ids: Sequence[int], k: int = 10) -> pd.DataFrame:
        """Top-k per user with explanation and evidence (JSON list of {source, detail, weight}).

        Unknown users and users without history get the cold-start fallback (never an error). Rows are
        ordered by the input user order (duplicates once), then rank.
        """
        ids = self.generator.items["item_id"].to_numpy()
        records = []
        ranked = self._rank(user_ids, k, explain=True)
        for user in dict.fromkeys(int(u) for u in user_ids):
            rows = ranked[user]
            for rank, e in enumerate(rows, start=1):
                reasons = list(e["reasons"]) + [
                    Reason(f"rule:{ev.source}", ev.detail, ev.weight) for ev in e["rules"]]
                records.append((user, rank, int(ids[e["row"]]), self._titles[e["row"]], e["score"],
                                explanation_text(reasons, e["cold"]), evidence_json(reasons), e["cold"]))
        frame = pd.DataFrame.from_records(records, columns=list(FRAME_COLUMNS))
        return frame.astype({"user_id": "int64", "rank": "int64", "item_id": "int64", "title": str,
                             "score": "float64", "explanation": str, "evidence": str, "cold_start": bool})

    # ------------------------------------------------------------------ persistence
    def save(self, out_dir: str | Path, metrics: Mapping | None = None, model_card: str = "",
             encoder_dir: str | Path | None = None) -> Path:
        """Write the model directory atomically (temp dir beside it, then swapped in)."""
        out = Path(out_dir)
        with atomic_directory(out) as tmp:
            arrays = tmp / "arrays"
            arrays.mkdir()
            for name, arr in self.generator.state().items():
                np.save(arrays / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            items = self.generator.items[["item_id", "title", "genres", "year"]]
            items.to_parquet(tmp / "items.parquet", index=False)
            self._history.to_parquet(tmp / "history.parquet", index=False)
            if self.generator.graph is not None:
                atomic_write_json(tmp / "graph.json", self.generator.graph.meta())
            self.ranker.save(tmp)
            if len(self.rules):  # the rules in force, as one data file (kgfusion rule format)
                atomic_write_json(tmp / "rules" / "business.json", {
                    "version": 1, "kind": "business", "rules": [rule_to_dict(r) for r in self.rules]})
            if encoder_dir is not None and Path(encoder_dir).is_dir():
                shutil.copytree(encoder_dir, tmp / "encoder")
            atomic_write_json(tmp / "metrics.json", dict(metrics or {}))
            atomic_write_text(tmp / "MODEL_CARD.md", model_card or "# kgfusion recommender\n")
            meta = dict(self.meta)
            files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*"))
                     if p.is_file() and not p.name.startswith(".")}
            atomic_write_json(tmp / "recommender.json", {
                "format": FORMAT, "version": VERSION, "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "candidate_config": self.generator.config.to_dict(), "meta": meta, "files": files})
            for p in tmp.rglob("*"):  # mkstemp/peft write 0600 files; give everything the usual permissions
                p.chmod(default_dir_mode() if p.is_dir() else default_dir_mode() & 0o666)
        return out


def load_recommender(model_dir: str | Path, verify: bool = True) -> Recommender:
    """Load a saved Recommender (numpy arrays with allow_pickle=False, parquet, LightGBM text)."""
    model_dir = Path(model_dir)
    manifest_path = model_dir / "recommender.json"
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path}: missing; {model_dir} is not a recommender model directory "
                          "(train one with `kgfusion recommend train`)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: unreadable ({exc}); retrain the model") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BundleError(f"{manifest_path}: not a {FORMAT} v{VERSION} manifest; retrain the model")
    if verify:
        for rel, digest in manifest["files"].items():
            p = model_dir / rel
            if not p.is_file() or sha256_file(p) != digest:
                raise BundleError(f"{p}: missing or modified (checksum mismatch); retrain or restore the model")
    arrays = {p.stem: np.load(p, allow_pickle=False) for p in sorted((model_dir / "arrays").glob("*.npy"))}
    items = pd.read_parquet(model_dir / "items.parquet")
    items["genres"] = items["genres"].map(list)
    history = pd.read_parquet(model_dir / "history.parquet")
    graph = None
    if "kg_node_item" in arrays:
        graph = ItemGraph.from_state(arrays, json.loads((model_dir / "graph.json").read_text(encoding="utf-8")))
    emb = arrays.get("item_embeddings")
    gen = CandidateGenerator(items, graph, None if emb is None else emb.astype(np.float32),
                             CandidateConfig.from_dict(manifest["candidate_config"]))
    gen.restore(arrays, history)
    rule_files = sorted(p for p in (model_dir / "rules").glob("*") if p.suffix in (".json", ".yaml", ".yml"))
    rules = load_rules(rule_files) if rule_files else RuleBase()
    return Recommender(gen, Ranker.load(model_dir), rules, history, manifest.get("meta", {}))


# ---------------------------------------------------------------------- training pipeline
def load_item_graph(kg_path: str | Path | None, items: pd.DataFrame,
                    kg_store: KgStore | str | None = None) -> ItemGraph | None:
    """The item graph of ``kg_path`` read from ``kg_store`` (memory | oxigraph:DIR; None: the command's --kg-store)."""
    if kg_path is None:
        return None
    from kgfusion.apps.common import load_kg

    return ItemGraph.from_kg(load_kg(kg_path, kg_store), items["item_id"].tolist())


def kg_tags(graph: ItemGraph | None, items: pd.DataFrame) -> dict[int, list[str]]:
    """item_id -> tag labels from the graph (attribute nodes whose URI is a tag), rarest first."""
    if graph is None:
        return {}
    out: dict[int, list[str]] = {}
    for row, item in enumerate(items["item_id"]):
        tags = [a for a in graph.attributes(row) if "/tag/" in graph.uris[a]]
        if tags:
            out[int(item)] = [graph.labels[a] for a in sorted(tags, key=lambda a: (graph.degree[a], a))]
    return out


def evaluate_lists(recs: Mapping[int, Sequence[int]], target: pd.DataFrame, history: pd.DataFrame,
                   items: pd.DataFrame, k: int = 10) -> dict[str, float]:
    """The shared metric set (coverage over items present in history, as in the baselines benchmark)."""
    counts = history.drop_duplicates(["userId", "movieId"]).groupby("movieId").size()
    genres = dict(zip(items["item_id"], items["genres"], strict=True))
    return evaluate(recs, to_sets(target), k=k, catalogue_size=int(history["movieId"].nunique()),
                    item_genres=genres, item_popularity={int(i): int(c) for i, c in counts.items()},
                    n_users=int(history["userId"].nunique()))


def fit_and_evaluate(ratings: pd.DataFrame, items: pd.DataFrame, graph: ItemGraph | None,
                     embeddings: np.ndarray | None, rules: RuleBase, *, config: CandidateConfig | None = None,
                     rounds: int = 300, seed: int = 13, k: int = 10, progress: bool = False,
                     apply_rules: bool = True, features: Sequence[str] = FEATURES,
                     recs_out: dict[int, list[int]] | None = None) -> tuple[Recommender, dict[str, float]]:
    """Steps 1-3 of the module docstring; returns the recommender fitted on the history + its metrics.

    ``features``: the ranker's feature columns (a subset of FEATURES, for ablations); ``recs_out``, if
    given, receives the validation lists (user -> top-k item ids) for slice metrics."""
    config = config or CandidateConfig(seed=seed)
    history, target = split_by_time(ratings, frac=0.2)
    inner_hist, inner_target = split_by_time(history, frac=0.2)
    t0 = time.perf_counter()
    gen = CandidateGenerator(items, graph, embeddings, config).fit(inner_hist)
    train_users = sorted(set(inner_target["userId"]))
    cands = gen.candidates(train_users)
    labels = label_candidates(cands, to_sets(inner_target))
    ranker = Ranker(list(features), rounds=rounds, seed=seed).fit(cands, labels)
    fit_s = time.perf_counter() - t0
    if progress:
        print(f"  ranker: {ranker.info['train_users']} users, {ranker.info['train_rows']} rows, candidate recall "
              f"{labels.sum() / max(1, len(inner_target)):.3f} ({fit_s:.0f}s)", flush=True)
    gen_val = CandidateGenerator(items, graph, embeddings, config).fit(history)
    active_rules = rules if apply_rules else RuleBase()
    rec = Recommender(gen_val, ranker, active_rules, history)
    t1 = time.perf_counter()
    users = sorted(set(target["userId"]))
    recs = rec.recommend_lists(users, k=k)
    rec_s = time.perf_counter() - t1
    metrics = evaluate_lists(recs, target, history, items, k)
    if recs_out is not None:
        recs_out.update(recs)
    val_cands = gen_val.candidates(users)
    val_labels = label_candidates(val_cands, to_sets(target))
    hits = val_labels.sum()
    # Cold target items (no history rating) that reach the candidate list at all, so a cold-item hit
    # count of 0 can be told apart: never proposed, or proposed but ranked below the top k.
    cold = ~val_cands["item_id"].isin(set(history["movieId"])).to_numpy()
    metrics.update({"candidate_recall": float(hits / max(1, len(target))),
                    "cold_item_candidate_hits": float(val_labels[cold].sum()),
                    "candidates_per_user": float(len(val_cands) / max(1, len(users))),
                    "fit_s": fit_s + (t1 - t0 - fit_s), "users_per_s": len(users) / max(rec_s, 1e-9),
                    "seen_leak": float(sum(len(set(v) & set(map(int, items["item_id"].to_numpy()[gen_val.seen.get(u, [])])))
                                           for u, v in recs.items()))})
    return rec, metrics


def item_embeddings(items: pd.DataFrame, graph: ItemGraph | None, encoder, batch_size: int = 64) -> np.ndarray:
    from kgfusion.apps.recommend.item_text import embed_items, item_texts

    return embed_items(encoder, item_texts(items, kg_tags(graph, items)), batch_size=batch_size)


def tuned_encoder(items: pd.DataFrame, graph: ItemGraph | None, ratings: pd.DataFrame, base: str, *,
                  steps: int, seed: int, out_dir: Path | None, progress: bool):
    """Tune ``base`` contrastively on co-consumed pairs of the inner history (see the module docstring)."""
    from kgfusion.apps.recommend.item_text import (
        TuneConfig,
        cooccurrence_pairs,
        item_texts,
        merged_embedder,
        save_encoder,
        tune_encoder,
    )

    history, _ = split_by_time(ratings, frac=0.2)
    inner_hist, _ = split_by_time(history, frac=0.2)
    texts = dict(zip(items["item_id"].astype(int), item_texts(items, kg_tags(graph, items)), strict=True))
    config = TuneConfig(base=base, steps=steps, seed=seed)
    pairs = cooccurrence_pairs(inner_hist, max_pairs=config.steps * config.batch_size * 2, seed=seed)
    model, tok, stats = tune_encoder(texts, pairs, config, progress=progress)
    if out_dir is not None:
        save_encoder(model, tok, out_dir, config, stats)
    return merged_embedder(model, tok, max_length=config.max_length), stats


def model_card(metrics: Mapping, command: str) -> str:
    keys = ("ndcg_at_10", "recall_at_10", "map_at_10", "coverage", "diversity", "novelty")
    rows = "\n".join(f"| {k} | {metrics.get(k, float('nan')):.4f} |" for k in keys)
    return f"""# kgfusion recommender (MovieLens ml-latest-small)

Candidates from item-kNN, implicit ALS, FAISS over MiniLM item-text embeddings (title, genres, KG tags;
{'contrastively tuned on co-consumed pairs' if metrics.get('encoder_tuned') else 'untuned'}), personalized
PageRank on data/kg/movies.ttl and popularity; LightGBM LambdaRank over their features; business rules
from data/rules/recommend. Every recommendation carries evidence (KG path, similar watched items, rules).

Data: MovieLens ml-latest-small (research use only, no commercial use; see data/datasets/movielens_small).
Validation: per user the chronologically last 20% of ratings; the ranker learns from an inner split of
the history only. The shipped sources are refitted on all ratings.

| metric (validation, k=10) | value |
|---|---|
{rows}

Rebuild: `{command}`
"""


def save_served(ratings: pd.DataFrame, items: pd.DataFrame, graph: ItemGraph | None, embeddings: np.ndarray | None,
                config: CandidateConfig, ranker: Ranker, rule_files: Sequence[Path], out_dir: str | Path, *,
                metrics: Mapping, encoder_dir: Path | None, command: str, meta: Mapping) -> Path:
    """Step 4: refit the sources on all ratings, keep the ranker, save with metrics and a model card."""
    full = CandidateGenerator(items, graph, embeddings, config).fit(ratings)
    served = Recommender(full, ranker, load_rules(rule_files), ratings,
                         {**meta, "rule_files": [str(p) for p in rule_files]})
    return served.save(out_dir, metrics={**metrics, "ranker": ranker.info}, encoder_dir=encoder_dir,
                       model_card=model_card(metrics, command))


def train_recommender(ratings_path: str | Path = DEFAULT_RATINGS, movies_path: str | Path = DEFAULT_MOVIES,
                      kg_path: str | Path | None = DEFAULT_KG, out_dir: str | Path = "recommender-model", *,
                      encoder: str = "minilm", tune_encoder: bool = True, quick: bool = False, seed: int = 13,
                      progress: bool = True, rules_paths: Sequence[str | Path] = ()) -> dict:
    """Fit, evaluate on the validation target, refit the sources on all ratings, save; returns metrics.

    ``encoder``: "minilm", a local model directory, or "none" (no embedding source). ``quick`` uses
    fewer tuning steps, boosting rounds and candidates (a smoke run, not the reported numbers).
    """
    t0 = time.perf_counter()
    ratings, rejects = read_ratings(ratings_path)
    items = catalogue(read_movies(movies_path))
    graph = load_item_graph(kg_path, items)
    rule_files = sorted(default_rules_dir("recommend").glob("*.yaml")) + [Path(p) for p in rules_paths]
    rules = load_rules(rule_files)
    steps, rounds = (30, 100) if quick else (200, 300)
    config = CandidateConfig(seed=seed, per_source=30 if quick else 50)
    embeddings, tune_stats, enc_dir = None, {}, None
    work = Path(tempfile.mkdtemp(prefix="kgf-rec-"))
    try:
        if encoder != "none":
            if tune_encoder:
                enc_dir = work / "encoder"
                embedder, tune_stats = tuned_encoder(items, graph, ratings, encoder, steps=steps, seed=seed,
                                                     out_dir=enc_dir, progress=progress)
            else:
                from kgfusion.core.embed import Embedder

                embedder = Embedder(encoder, max_length=64)
            embeddings = item_embeddings(items, graph, embedder)
        rec, metrics = fit_and_evaluate(ratings, items, graph, embeddings, rules, config=config, rounds=rounds,
                                        seed=seed, progress=progress)
        metrics = {k: float(v) for k, v in metrics.items()}
        metrics.update({"encoder_tuned": float(bool(tune_encoder and encoder != "none")),
                        "train_s": time.perf_counter() - t0, **{f"tune_{k}": float(v) for k, v in tune_stats.items()}})
        command = (f"kgfusion recommend train --ratings {ratings_path} --movies {movies_path} --kg {kg_path} "
                   f"--out {out_dir}" + (" --quick" if quick else "") + ("" if tune_encoder else " --no-tune"))
        out = save_served(ratings, items, graph, embeddings, config, rec.ranker, rule_files, out_dir,
                          metrics=metrics, encoder_dir=enc_dir, command=command,
                          meta={"encoder": encoder, "encoder_tuned": bool(tune_encoder), "seed": seed,
                                "quick": quick, "ratings_rejects": len(rejects)})
        if progress:
            print(f"saved {out} (ndcg@10 {metrics['ndcg_at_10']:.4f}, coverage {metrics['coverage']:.4f})")
        return metrics
    finally:
        shutil.rmtree(work, ignore_errors=True)


def evaluate_recommender(model_dir: str | Path, ratings_path: str | Path = DEFAULT_RATINGS,
                         movies_path: str | Path = DEFAULT_MOVIES, *, k: int = 10) -> dict:
    """Re-run the validation protocol with a saved model's ranker and configuration.

    The saved sources were fitted on all ratings (they have seen the target), so they are refitted on the
    history part of ``ratings_path`` before scoring; the saved ranker, embeddings, graph and rules are reused.
    """
    saved = load_recommender(model_dir)
    ratings, _ = read_ratings(ratings_path)
    items = catalogue(read_movies(movies_path))
    if not items["item_id"].equals(saved.generator.items["item_id"]):
        raise DataError(f"{movies_path}: catalogue differs from the one {model_dir} was trained on; retrain")
    history, target = split_by_time(ratings, frac=0.2)
    gen = CandidateGenerator(saved.generator.items, saved.generator.graph, saved.generator.embeddings,
                             saved.generator.config).fit(history)
    rec = Recommender(gen, saved.ranker, saved.rules, history)
    t0 = time.perf_counter()
    recs = rec.recommend_lists(sorted(set(target["userId"])), k=k)
    metrics = evaluate_lists(recs, target, history, items, k)
    metrics["users_per_s"] = len(recs) / max(time.perf_counter() - t0, 1e-9)
    return {key: (float(v) if isinstance(v, (int, float)) and math.isfinite(v) else v) for key, v in metrics.items()}
