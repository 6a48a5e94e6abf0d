"""Recommendation baselines on MovieLens ml-latest-small (the shipped first-80%-per-user copy).

    python benchmarks/recommend_baselines.py      # prints a table, writes benchmarks/results/recommend_baselines.json

Protocol (apps.recommend.data.split_by_time): implicit feedback; per user the chronologically last 20% of
the shipped ratings (>= 1, ties by movieId) is the validation target, the rest history. Models fit on
history and recommend 10 unseen items for every target user. Coverage is over the items present in
history (the items any of these models can recommend); novelty uses history popularity.
users_per_s times ``recommend`` alone (fit time is reported separately), single process.
"""
from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from kgfusion.apps.recommend.baselines import ItemKNN, Popularity  # noqa: E402
from kgfusion.apps.recommend.data import read_movies, read_ratings, split_by_time, split_stats, to_sets  # noqa: E402
from kgfusion.apps.recommend.metrics import evaluate  # noqa: E402
from kgfusion.core.fileio import atomic_write_json  # noqa: E402

DATA = ROOT / "data" / "datasets" / "movielens_small"
RESULTS = ROOT / "benchmarks" / "results" / "recommend_baselines.json"
K = 10
COLUMNS = ("ndcg_at_10", "recall_at_10", "map_at_10", "coverage", "diversity", "novelty", "users_per_s")


def main() -> dict[str, float]:
    ratings, rejects = read_ratings(DATA / "ratings.csv")
    movies = read_movies(DATA / "movies.csv")
    history, target = split_by_time(ratings, frac=0.2)
    stats = split_stats(history, target)
    relevant = to_sets(target)
    users = sorted(relevant)
    genres = dict(zip(movies["movieId"], movies["genres"], strict=True))
    titles = dict(zip(movies["movieId"], movies["title"], strict=True))
    n_history_users = int(history["userId"].nunique())
    catalogue = int(history["movieId"].nunique())

    results: dict[str, float] = {
        "ratings": len(ratings), "rejects": len(rejects), "users": stats.users,
        "target_users": stats.target_users, "single_rating_users": stats.single_rating_users,
        "history_rows": stats.history_rows, "target_rows": stats.target_rows, "catalogue_size": catalogue,
        "k": K,
        # Target interactions on items nobody has in history: no model here can ever hit them.
        "target_cold_item_share": round(float((~target["movieId"].isin(history["movieId"])).mean()), 5),
    }
    models = {"popularity": (Popularity(), {}), "itemknn": (ItemKNN(n_neighbors=100), {"titles": titles})}
    rows = []
    for name, (model, fit_kwargs) in models.items():
        t0 = time.perf_counter()
        model.fit(history, **fit_kwargs)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        recs = model.recommend(users, k=K)
        rec_s = time.perf_counter() - t0
        seen_leak = sum(len(set(items) & model.seen(u)) for u, items in recs.items())
        if seen_leak:
            raise RuntimeError(f"{name} recommended {seen_leak} already-seen items")
        metrics = evaluate(recs, relevant, k=K, catalogue_size=catalogue, item_genres=genres,
                           item_popularity=model.item_counts, n_users=n_history_users)
        metrics["users_per_s"] = len(users) / rec_s
        metrics["fit_s"] = fit_s
        rows.append((name, metrics))
        for key in (*COLUMNS, "fit_s"):
            results[f"{name}_{key}"] = round(float(metrics[key]), 5)
    results["primary"] = results["itemknn_ndcg_at_10"]

    print(f"MovieLens small: {stats.users} users, {stats.history_rows} history / {stats.target_rows} target "
          f"ratings, {catalogue} items in history, {len(rejects)} rejects; "
          f"{results['target_cold_item_share']:.1%} of target ratings are on items absent from history")
    print(f"{'model':<12}" + "".join(f"{c:>14}" for c in (*COLUMNS, "fit_s")))
    for name, metrics in rows:
        print(f"{name:<12}" + "".join(f"{metrics[c]:>14.4f}" for c in (*COLUMNS, "fit_s")))
    atomic_write_json(RESULTS, results)
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return results


if __name__ == "__main__":
    main()
