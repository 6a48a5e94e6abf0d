"""Recommendation benchmark: baselines and kgfusion on the validation protocol (MovieLens small).

    flock /work/runs/cpu.lock /work/venv/bin/python benchmarks/recommend.py \
        [--save-model data/models/recommender-movielens] [--quick]

Protocol (apps.recommend.data.split_by_time): per user the chronologically last 20% of the shipped
ratings is the target, the rest history; every model recommends 10 unseen items per target user.
Coverage is over the items present in history (as in recommend_baselines.py). kgfusion's ranker learns
on an inner time split of the history only (apps/recommend/recommender.py explains it); EASE's lambda and
RP3beta's alpha/beta are chosen the same way (NDCG@10 on the history's own last 20% per user), and the best
baseline (by NDCG@10) is taken over all baselines, EASE and RP3beta included. Variants:
untuned vs contrastively tuned MiniLM item encoder, plus the ablation: each candidate source with its
feature group removed in turn (no text embeddings = no item vectors at all), the user features, the rules.
Slices (apps.recommend.metrics.slice_metrics) for kgfusion and the best baseline: users with <= 10
history items, long-tail target items (<= 5 history ratings), cold target items (none in history).
Writes benchmarks/results/recommend.json atomically, keeping the keys written by the throughput benchmark
(recommend_scoring.py: users_per_s_*, scoring_*, ray_vs_local*).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from kgfusion.apps.recommend.baselines import EASE, ItemKNN, Popularity, RP3beta  # noqa: E402
from kgfusion.apps.recommend.candidates import FEATURE_GROUPS, FEATURES, SOURCES, CandidateConfig  # noqa: E402
from kgfusion.apps.recommend.data import read_movies, read_ratings, split_by_time  # noqa: E402
from kgfusion.apps.recommend.metrics import slice_metrics  # noqa: E402
from kgfusion.apps.recommend.mf import MatrixFactorization  # noqa: E402
from kgfusion.apps.recommend.recommender import (  # noqa: E402
    DEFAULT_KG,
    DEFAULT_MOVIES,
    DEFAULT_RATINGS,
    catalogue,
    evaluate_lists,
    fit_and_evaluate,
    item_embeddings,
    load_item_graph,
    save_served,
    tuned_encoder,
)
from kgfusion.core.fileio import atomic_write_json  # noqa: E402
from kgfusion.knowledge.rules import default_rules_dir, load_rules  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "recommend.json"
K = 10
COLUMNS = ("ndcg_at_10", "recall_at_10", "map_at_10", "coverage", "diversity", "novelty", "fit_s", "users_per_s")
KEEP = ("users_per_s_local", "users_per_s_ray", "users_per_s_local_scoring", "users_per_s_ray_scoring",
        "scoring_seconds_local", "scoring_seconds_ray", "scoring_users", "ray_vs_local", "ray_vs_local_scoring",
        "scoring_k", "scoring_shard_size", "scoring_ray_actors")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few tuning steps / boosting rounds (smoke run)")
    ap.add_argument("--save-model", type=Path, default=None, help="also save the tuned kgfusion model here")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    ratings, _ = read_ratings(DEFAULT_RATINGS)
    items = catalogue(read_movies(DEFAULT_MOVIES))
    history, target = split_by_time(ratings, frac=0.2)
    users = sorted(set(target["userId"]))
    titles = dict(zip(items["item_id"], items["title"], strict=True))
    rows: list[tuple[str, dict]] = []
    lists: dict[str, dict[int, list[int]]] = {}  # model name -> validation lists, for the slices

    def run_baseline(name: str, model, **fit_kwargs):
        t0 = time.perf_counter()
        model.fit(history, **fit_kwargs)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        recs = model.recommend(users, k=K)
        m = evaluate_lists(recs, target, history, items, K)
        m.update(fit_s=fit_s, users_per_s=len(users) / (time.perf_counter() - t0))
        rows.append((name, m))
        lists[name] = recs
        print(f"{name:<26}" + "".join(f"{m[c]:>13.4f}" for c in COLUMNS), flush=True)
        return model

    print(f"{'model':<26}" + "".join(f"{c:>13}" for c in COLUMNS), flush=True)
    run_baseline("popularity", Popularity())
    run_baseline("itemknn", ItemKNN(n_neighbors=100), titles=titles)
    run_baseline("als", MatrixFactorization("als", seed=args.seed), titles=titles)
    run_baseline("bpr", MatrixFactorization("bpr", factors=64, iterations=100, learning_rate=0.05,
                                            regularization=0.01, seed=args.seed), titles=titles)
    ease = run_baseline("ease", EASE(), titles=titles)
    rp3 = run_baseline("rp3beta", RP3beta(), titles=titles)
    print(f"  chosen on the history's inner split: EASE lambda {ease.lam:g}; RP3beta alpha {rp3.alpha:g}, "
          f"beta {rp3.beta:g}", flush=True)
    baselines = {n: m for n, m in rows}

    graph = load_item_graph(DEFAULT_KG, items)
    rule_files = sorted(default_rules_dir("recommend").glob("*.yaml"))
    rules = load_rules(rule_files)
    steps, rounds = (30, 100) if args.quick else (200, 300)
    config = CandidateConfig(seed=args.seed)
    timings: dict[str, float] = {}

    def run_kgf(name: str, embeddings, apply_rules: bool = True, drop: str | None = None):
        """One kgfusion fit; ``drop`` removes a candidate source (and its feature group) or a feature group."""
        t0 = time.perf_counter()
        cfg, feats = config, FEATURES
        if drop is not None:
            feats = tuple(f for f in FEATURES if f not in FEATURE_GROUPS[drop])
            if drop in SOURCES and drop != "emb":
                cfg = CandidateConfig(**{**config.to_dict(), "sources": tuple(s for s in SOURCES if s != drop)})
        recs: dict[int, list[int]] = {}
        rec, m = fit_and_evaluate(ratings, items, graph, embeddings, rules, config=cfg, rounds=rounds,
                                  seed=args.seed, apply_rules=apply_rules, features=feats, recs_out=recs)
        m["fit_s"] = time.perf_counter() - t0
        rows.append((name, m))
        lists[name] = recs
        print(f"{name:<26}" + "".join(f"{m[c]:>13.4f}" for c in COLUMNS), flush=True)
        return rec, m

    run_kgf("kgfusion-no-text", None, drop="emb")
    from kgfusion.core.embed import Embedder

    t0 = time.perf_counter()
    untuned = item_embeddings(items, graph, Embedder("minilm", max_length=64))
    timings["embed_untuned_s"] = time.perf_counter() - t0
    run_kgf("kgfusion-untuned-encoder", untuned)
    with tempfile.TemporaryDirectory(prefix="kgf-enc-") as work:
        enc_dir = Path(work) / "encoder"
        t0 = time.perf_counter()
        embedder, tune_stats = tuned_encoder(items, graph, ratings, "minilm", steps=steps, seed=args.seed,
                                             out_dir=enc_dir, progress=True)
        timings["tune_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tuned = item_embeddings(items, graph, embedder)
        timings["embed_tuned_s"] = time.perf_counter() - t0
        main_name = "kgfusion (tuned encoder)"
        rec, main_m = run_kgf(main_name, tuned)
        run_kgf("kgfusion-tuned-no-rules", tuned, apply_rules=False)
        for drop in (*[s for s in SOURCES if s != "emb"], "user"):
            if not args.quick:
                run_kgf(f"kgfusion-no-{drop}", tuned, drop=drop)
        if args.save_model is not None:
            t0 = time.perf_counter()
            metrics = {k: float(v) for k, v in main_m.items()}
            metrics.update(encoder_tuned=1.0, **{f"tune_{k}": float(v) for k, v in tune_stats.items()})
            save_served(ratings, items, graph, tuned, config, rec.ranker, rule_files, args.save_model,
                        metrics=metrics, encoder_dir=enc_dir,
                        command="flock /work/runs/cpu.lock /work/venv/bin/python benchmarks/recommend.py "
                                f"--save-model {args.save_model}",
                        meta={"encoder": "minilm", "encoder_tuned": True, "seed": args.seed, "quick": args.quick})
            timings["save_s"] = time.perf_counter() - t0
            print(f"saved {args.save_model}", flush=True)

    best_name = max(baselines, key=lambda n: baselines[n]["ndcg_at_10"])
    best = baselines[best_name]["ndcg_at_10"]
    hist_len = history.drop_duplicates(["userId", "movieId"]).groupby("userId").size().to_dict()
    item_n = history.drop_duplicates(["userId", "movieId"]).groupby("movieId").size().to_dict()
    relevant = {int(u): set(g) for u, g in target.groupby("userId")["movieId"]}
    slices = {n: slice_metrics(lists[n], relevant, hist_len, item_n, K)
              for n in (main_name, best_name, "ease", "rp3beta", "kgfusion-no-text")}
    by_name = dict(rows)
    ablation = {n[len("kgfusion-"):]: {"ndcg_at_10": round(by_name[n]["ndcg_at_10"], 5),
                                        "delta_vs_full": round(by_name[n]["ndcg_at_10"] - main_m["ndcg_at_10"], 5),
                                        "coverage": round(by_name[n]["coverage"], 5)}
                for n in by_name if n.startswith("kgfusion-")}
    results: dict = {}
    if args.results.is_file():
        old = json.loads(args.results.read_text(encoding="utf-8"))
        results.update({k: old[k] for k in KEEP if k in old})
    results.update({
        "k": K, "users": len(users), "quick": args.quick,
        "ndcg_at_10": round(main_m["ndcg_at_10"], 5), "coverage": round(main_m["coverage"], 5),
        "best_baseline": best_name, "best_baseline_ndcg_at_10": round(best, 5),
        "best_baseline_coverage": round(baselines[best_name]["coverage"], 5),
        "itemknn_coverage": round(baselines["itemknn"]["coverage"], 5),
        **{f"{n}_{c}": round(float(baselines[n][c]), 5) for n in ("ease", "rp3beta")
           for c in ("ndcg_at_10", "coverage", "recall_at_10")},
        "ease_lambda": ease.lam, "rp3beta_alpha": rp3.alpha, "rp3beta_beta": rp3.beta,
        # Inner-split NDCG@10 of every grid point (history only), to show how flat or sharp the choice was.
        "baseline_selection": {n: [{**p, "inner_ndcg_at_10": round(v, 5)} for p, v in m.validation]
                               for n, m in (("ease", ease), ("rp3beta", rp3))},
        "ndcg_gain_over_best_baseline": round(main_m["ndcg_at_10"] / best - 1.0, 5),
        "cold_item_candidate_hits": main_m["cold_item_candidate_hits"],
        "recall_at_10": round(main_m["recall_at_10"], 5),
        "best_baseline_recall_at_10": round(baselines[best_name]["recall_at_10"], 5),
        "target_met": bool(main_m["ndcg_at_10"] >= 1.08 * best
                           and main_m["coverage"] >= baselines[best_name]["coverage"]),
        **{f"{key}": round(v, 5) for key, v in slices[main_name].items()},
        **{f"best_baseline_{key}": round(v, 5) for key, v in slices[best_name].items()},
        "slices": {n: {key: round(v, 5) for key, v in sl.items()} for n, sl in slices.items()},
        "ablation": ablation,
        "tune": {k: round(float(v), 5) for k, v in tune_stats.items()},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "ranker_importance_gain": rec.ranker.info.get("importance_gain", {}),
        "models": {n: {c: round(float(m[c]), 5) for c in (*COLUMNS, "candidate_recall") if c in m} for n, m in rows},
        "primary": round(main_m["ndcg_at_10"], 5),
        "total_s": round(time.perf_counter() - t_start, 1),
    })
    atomic_write_json(args.results, results)
    print(f"kgfusion NDCG@10 {results['ndcg_at_10']:.4f} vs best baseline {best_name} {best:.4f} "
          f"({results['ndcg_gain_over_best_baseline']:+.1%}); coverage {results['coverage']:.4f} vs item-kNN "
          f"{results['itemknn_coverage']:.4f}, vs {best_name} {results['best_baseline_coverage']:.4f}; "
          f"target met: {results['target_met']}")
    print(f"\n{'slice (validation)':<34}{'kgfusion':>10}{best_name:>10}")
    for key in ("short_history_users", "short_history_ndcg_at_10", "history_le_20_users", "history_le_20_ndcg_at_10",
                "history_le_20_recall_at_10", "long_tail_hit_rate", "long_tail_hits",
                "cold_item_hit_rate", "cold_item_hits", "cold_item_targets"):
        print(f"{key:<34}{slices[main_name][key]:>10.4f}{slices[best_name][key]:>10.4f}")
    print(f"\n{'ablation (removed)':<24}{'ndcg@10':>10}{'delta':>10}")
    for name, a in ablation.items():
        print(f"{name:<24}{a['ndcg_at_10']:>10.4f}{a['delta_vs_full']:>+10.4f}")
    print(f"wrote {args.results} in {results['total_s']:.0f}s")
    return results


if __name__ == "__main__":
    main()
