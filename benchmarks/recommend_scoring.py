"""Batch scoring throughput of `kgfusion recommend score`: users/s in-process vs Ray Data, on this machine.

    flock /work/runs/cpu.lock /work/venv/bin/python benchmarks/recommend_scoring.py
    python benchmarks/recommend_scoring.py --model DIR --loader module:function --no-write   # any scorer

Scores every known user of the shipped model (data/models/recommender-movielens), k=10, once with
``engine="local"`` and once with ``engine="ray"`` (a fresh local Ray: num_cpus=2, 2 actors), each from
scratch into a temp dir, and checks both outputs are identical. ``users_per_s_*`` is end to end (model
load, and for Ray the cluster start and one model load per actor, included); ``*_scoring`` counts only
the time from the first shard to the last. Merges its keys into benchmarks/results/recommend.json
(atomically, other keys kept).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import pandas as pd  # noqa: E402

from kgfusion.apps.recommend.batch import DEFAULT_LOADER, DEFAULT_SHARD_SIZE, score_users  # noqa: E402
from kgfusion.core.fileio import atomic_write_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "recommend.json"
MODEL = ROOT / "data" / "models" / "recommender-movielens"


def run(model: Path, loader: str, k: int, shard_size: int) -> dict[str, float]:
    results: dict[str, float] = {}
    outputs = {}
    with tempfile.TemporaryDirectory(prefix="kgf-rec-bench-") as tmp:
        for engine in ("local", "ray"):
            out = Path(tmp) / f"recs-{engine}.parquet"
            s = score_users(model, "all", k=k, out=out, engine=engine, shard_size=shard_size, loader=loader,
                            progress=False, restart=True)
            outputs[engine] = pd.read_parquet(out)
            results[f"users_per_s_{engine}"] = s["users_per_s"]
            results[f"users_per_s_{engine}_scoring"] = s["users_per_s_scoring"]
            results[f"scoring_seconds_{engine}"] = s["seconds"]
            results["scoring_users"] = s["users"]
    check_same(outputs["local"], outputs["ray"])
    results["ray_vs_local"] = round(results["users_per_s_ray"] / results["users_per_s_local"], 3)
    results["ray_vs_local_scoring"] = round(results["users_per_s_ray_scoring"] / results["users_per_s_local_scoring"], 3)
    results.update({"scoring_k": k, "scoring_shard_size": shard_size, "scoring_ray_actors": 2})
    return results


def check_same(local: pd.DataFrame, ray: pd.DataFrame) -> None:
    """Same scorer, same shards: the same ranked items; scores may differ in the last float digits
    (BLAS threading in another process), so they are compared with a tolerance."""
    keys = ["user_id", "rank", "item_id", "cold_start"]
    if not local[keys].equals(ray[keys]):
        diff = (local[keys] != ray[keys]).any(axis=1)
        raise SystemExit(f"local and Ray outputs differ in {int(diff.sum())} ranked rows")
    pd.testing.assert_series_equal(local["score"], ray["score"], rtol=1e-5)


def merge_results(path: Path, new: dict[str, float]) -> dict:
    """Read the current file just before writing, so keys other benchmarks wrote meanwhile are kept."""
    try:
        current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError as exc:
        raise SystemExit(f"{path}: not valid JSON ({exc}); fix or delete it, then rerun") from exc
    merged = current | new
    atomic_write_json(path, merged)
    return merged


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--loader", default=DEFAULT_LOADER)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE)
    parser.add_argument("--results", type=Path, default=RESULTS, help="results file to merge the figures into")
    parser.add_argument("--no-write", action="store_true", help=f"Print only; do not update {RESULTS.name}.")
    args = parser.parse_args(argv)
    results = run(args.model, args.loader, args.k, args.shard_size)
    print(f"{'engine':<8}{'users/s (end to end)':>22}{'users/s (scoring)':>20}{'seconds':>10}")
    for engine in ("local", "ray"):
        print(f"{engine:<8}{results[f'users_per_s_{engine}']:>22.1f}{results[f'users_per_s_{engine}_scoring']:>20.1f}"
              f"{results[f'scoring_seconds_{engine}']:>10.1f}")
    print(f"ray / local: {results['ray_vs_local']:.2f} end to end, {results['ray_vs_local_scoring']:.2f} scoring "
          f"({results['scoring_users']} users, k={args.k}, shard size {args.shard_size})")
    if not args.no_write:
        merge_results(args.results, results)
        print(f"merged into {args.results}")
    return results


if __name__ == "__main__":
    main()
