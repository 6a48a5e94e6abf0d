"""Training-recipe ablations (issue 12): every configuration tried, per task, in one results file.

Each configuration is a recipe file under data/recipes/ablations/<task>/<name>.json (the same format as
the shipped bundles' recipes). A configuration trains once into runs/training/<task>/<name>/ (teachers,
checkpoints, the bundle) and is then only re-read, so this script resumes where it stopped and a rerun
prints the table without training; ``--retrain NAME`` forces one. Configurations run one at a time.

    python benchmarks/training.py                    # every task and configuration (many hours on 2 cores)
    python benchmarks/training.py --task ncbi --only full-crf-kg
    python benchmarks/training.py --table            # just the table from what has finished

Metrics are on our own held-out data: NCBI-disease and BC5CDR *devel* files (never used for training or
early stopping); PhraseBank 50-agree / all-agree and Twitter test splits of the seeded split. Writes
benchmarks/results/training.json: per task, per configuration, the metrics, training seconds (all
seeds and the student), the size of what would ship, and the recipe.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

from kgfusion.core.fileio import atomic_write_json
from kgfusion.core.recipe import load_recipe, run_recipe

ROOT = Path(__file__).resolve().parents[1]
ABLATIONS = ROOT / "data" / "recipes" / "ablations"
WORK = ROOT / "runs" / "training"
RESULTS = ROOT / "benchmarks" / "results" / "training.json"
TASKS = ("ncbi", "bc5cdr", "finance")
# the numbers each task is judged by (first = primary)
KEYS = {
    "ncbi": ("devel_f1", "devel_precision", "devel_recall", "devel_argmax_f1", "devel_viterbi_f1", "devel_onnx_int8_f1",
             "ensemble_devel_f1"),
    "bc5cdr": ("devel_f1", "devel_chemical_f1", "devel_disease_f1", "devel_argmax_f1", "devel_viterbi_f1",
               "devel_onnx_int8_f1",
               "devel_onnx_int8_chemical_f1", "devel_onnx_int8_disease_f1", "ensemble_devel_f1"),
    "finance": ("phrasebank50_accuracy", "phrasebank_allagree_accuracy", "twitter_accuracy",
                "phrasebank50_onnx_int8_accuracy", "phrasebank_allagree_onnx_int8_accuracy",
                "twitter_onnx_int8_accuracy", "ensemble_phrasebank50_accuracy", "ensemble_twitter_accuracy"),
}


def shipped_mb(bundle: Path) -> float:
    """Size of what would ship: ONNX int8 + small files for a full fine-tune, everything for LoRA."""
    from kgfusion.core.bundle import TORCH_WEIGHTS, read_manifest

    method = read_manifest(bundle).method
    skip = set(TORCH_WEIGHTS) - {"adapter_model.safetensors"} if method == "full" and \
        (bundle / "model.int8.onnx").is_file() else set()
    return round(sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and p.name not in skip) / 1e6, 2)


def collect(task: str, name: str) -> dict | None:
    bundle = WORK / task / name / "bundle"
    if not (bundle / "metrics.json").is_file():
        return None
    m = json.loads((bundle / "metrics.json").read_text())
    recipe = json.loads((bundle / "recipe.json").read_text()) if (bundle / "recipe.json").is_file() else {}
    row = {k: m[k] for k in KEYS[task] if k in m}
    row |= {"train_seconds": m.get("recipe_seconds", m.get("train_seconds")), "train_steps": m.get("train_steps"),
            "shipped_mb": shipped_mb(bundle), "method": recipe.get("train", {}).get("method"),
            "description": recipe.get("description", "")}
    base = recipe.get("base", {}).get("pretrained")
    log = ROOT / base / "pretrain_log.json" if base else None
    if log is not None and log.is_file():  # the continued pretraining is paid once per base, reported beside
        last = json.loads(log.read_text())["log"][-1]
        row |= {"pretrain_seconds": last.get("seconds"), "pretrain_heldout_mlm_loss": last.get("eval_loss")}
    ens = m.get("details", {}).get("ensemble", {})
    if ens.get("teachers"):
        row["teachers"] = ens["teachers"]
    return row


def configurations(task: str) -> list[Path]:
    return sorted((ABLATIONS / task).glob("*.json"))


def run_one(task: str, path: Path, retrain: bool) -> None:
    name = path.stem
    out = WORK / task / name
    if retrain and (out / "bundle").is_dir():
        import shutil

        shutil.rmtree(out / "bundle")
    if (out / "bundle" / "metrics.json").is_file():
        return
    recipe = load_recipe(path)
    base = recipe.base.get("pretrained")
    if base and not (ROOT / base).is_dir():  # a continued-pretraining base is built once, by its own command
        print(f"== {task}/{name}: skipped, its pretrained base {base} is missing; build it with: "
              f"{recipe.base.get('command', 'kgfusion model pretrain ...')}", flush=True)
        return
    onnx = bool(recipe.data.get("onnx", False))
    print(f"== {task}/{name}: {recipe.description}", flush=True)
    t0 = time.perf_counter()
    run_recipe(path, out / "bundle", work_dir=out / "work", progress=False, onnx=onnx, ship=False)
    print(f"   done in {time.perf_counter() - t0:.0f} s", flush=True)


def ensemble_row(task: str, names: list[str]) -> tuple[str, dict]:
    """Devel F1 of the average of finished configurations' fp32 models (NER tasks; no new training)."""
    from kgfusion.apps.medical.train import MedicalData, evaluate_devel, headline, load_medical_splits
    from kgfusion.core.ensemble import EnsemblePredictor
    from kgfusion.core.predict import Predictor

    if task not in ("ncbi", "bc5cdr"):
        raise SystemExit(f"--ensemble: only the NER tasks (ncbi, bc5cdr), not {task}")
    seeds = []
    for name in names:
        found = sorted((WORK / task / name / "work").glob("seed-*/model.safetensors"))
        if not found:
            raise SystemExit(f"--ensemble: {task}/{name} has no trained fp32 model under {WORK / task / name / 'work'}; "
                             f"train it first: python benchmarks/training.py --task {task} --only {name}")
        seeds.append(found[0].parent)
    _, _, devel, _ = load_medical_splits(MedicalData.default(task, ROOT / "data", 0.1, 13))
    t0 = time.perf_counter()
    ens = EnsemblePredictor([Predictor.from_bundle(s) for s in seeds], decoder="viterbi")
    m = headline("devel", evaluate_devel(ens, devel))
    row = {k: m[k] for k in KEYS[task] if k in m} | {
        "method": "ensemble", "teachers": names, "train_seconds": None, "eval_seconds": round(time.perf_counter() - t0, 1),
        "shipped_mb": round(sum((collect(task, n) or {}).get("shipped_mb", 0.0) for n in names), 2),
        "description": "average of the members' tag probabilities, constrained Viterbi: " + " + ".join(names)}
    return "ensemble-" + "+".join(names), row


def table(results: dict) -> str:
    lines = []
    for task, rows in results["tasks"].items():
        keys = [k for k in KEYS[task] if any(k in r for r in rows.values())]
        lines.append(f"\n{task}\n| configuration | " + " | ".join(keys) + " | train s | shipped MB |")
        lines.append("|---" * (len(keys) + 3) + "|")
        for name, r in rows.items():
            cells = [f"{r[k]:.4f}" if isinstance(r.get(k), float) else "" for k in keys]
            label = f"{name} (from {r['source'].split('(')[-1].split(';')[0]}" if r.get("source") else name
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {r.get('train_seconds') or ''} | {r['shipped_mb']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", choices=TASKS, action="append", help="default: every task")
    ap.add_argument("--only", default="", help="comma-separated configuration names")
    ap.add_argument("--retrain", default="", help="comma-separated configurations to train again")
    ap.add_argument("--table", action="store_true", help="train nothing; collect and print")
    ap.add_argument("--ensemble", default="", help="TASK:NAME,NAME: score the average of finished configurations "
                    "(NER tasks) and add it as a row; trains nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    tasks = args.task or list(TASKS)
    only = {n for n in args.only.split(",") if n}
    retrain = {n for n in args.retrain.split(",") if n}
    if not args.table and not args.ensemble:
        for task in tasks:
            for path in configurations(task):
                if not only or path.stem in only:
                    run_one(task, path, path.stem in retrain)
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "tasks": previous.get("tasks", {}),
               "evaluation": "NCBI/BC5CDR: official devel files; finance: held-out test splits of the seeded split"}
    for task in TASKS:
        rows = {p.stem: r for p in configurations(task) if (r := collect(task, p.stem)) is not None}
        if rows:  # merge: a configuration whose run folder is gone keeps its recorded row
            results["tasks"].setdefault(task, {}).update(rows)
    if args.ensemble:
        task, _, names = args.ensemble.partition(":")
        name, row = ensemble_row(task, [n for n in names.split(",") if n])
        results["tasks"].setdefault(task, {})[name] = row
    atomic_write_json(RESULTS, results)
    print(table(results))


if __name__ == "__main__":
    main()
