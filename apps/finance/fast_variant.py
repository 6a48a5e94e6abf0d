"""The `fast` variant of the finance bundle: a 3- (or 2-) layer student distilled from the fp32 teacher.

Recipe trainer (data/recipes/finsent-topics-fast.json): the student starts from evenly spaced layers of
the fine-tuned teacher (``core.compress.make_student``), learns every head's softened teacher logits on
every training text plus the gold label of each row (``core.distill_heads``), is exported to ONNX int8
and gets its own topic n-gram head, exactly as the accurate bundle. The teacher is the fp32 model the
accurate recipe leaves in its work directory (``runs/recipes/finsent-topics/seed-13``); if it is missing,
the error says how to rebuild it.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from kgfusion.apps.finance.recipe import finish_bundle
from kgfusion.apps.finance.topics import TOPIC_HEAD
from kgfusion.apps.finance.train import (
    SENTIMENT_HEAD,
    FinanceData,
    as_head,
    evaluate_tests,
    headline,
    load_finance_splits,
    load_topic_splits,
)
from kgfusion.core.errors import DataError
from kgfusion.core.recipe import Recipe

DEFAULT_TEACHER = "runs/recipes/finsent-topics/seed-13"


def _gold(rows, heads: dict[str, list[str]]) -> list[tuple[str, int]]:
    ids = {h: {lab: i for i, lab in enumerate(labels)} for h, labels in heads.items()}
    return [(r.head, ids[r.head][r.label]) for r in rows]


def train_recipe(recipe: Recipe, out_dir: str | Path | None = None, *, recipe_path: str = "",
                 data_dir: str | Path | None = None, work_dir: str | Path | None = None, progress: bool = True,
                 onnx: bool = True, ship: bool | None = None, max_steps: int = 0) -> dict[str, Any]:
    """Distil, evaluate on the held-out sets (same splits as the teacher), write the fast bundle."""
    from kgfusion.apps.common import repo_data_dir
    from kgfusion.core.bundle import load_bundle, update_bundle_metadata
    from kgfusion.core.compress import make_student
    from kgfusion.core.distill_heads import distill_heads
    from kgfusion.core.jobs import evaluate_predictor
    from kgfusion.core.predict import Predictor

    data_root = Path(data_dir) if data_dir else repo_data_dir()
    opts = recipe.student
    teacher_dir = Path(opts.get("teacher", DEFAULT_TEACHER))
    if not (teacher_dir / "model.safetensors").is_file():
        raise DataError(f"recipe {recipe.name}: fp32 teacher {teacher_dir} not found; build it with: kgfusion model "
                        f"train --recipe {opts.get('teacher_recipe', 'data/recipes/finance-multitask.json')}")
    fdata = FinanceData.default(data_root)
    fdata.dev, fdata.test, fdata.seed = recipe.data.get("dev", 0.1), recipe.data.get("test", 0.1), recipe.data.get("seed", 13)
    splits = load_finance_splits(fdata)
    topics = load_topic_splits(fdata, splits)
    loaded = load_bundle(teacher_dir)
    heads = loaded.manifest.extra["heads"]
    train_rows = as_head(splits.train, SENTIMENT_HEAD) + list(topics.train)
    dev_rows = as_head(splits.dev, SENTIMENT_HEAD) + list(topics.dev)
    if max_steps:  # smoke runs: a slice of the data, one epoch
        train_rows = train_rows[: max_steps * int(recipe.train.get("batch_size", 32))]
    layers = int(opts.get("layers", 3))
    started = time.perf_counter()
    student = make_student(loaded.model, layers)
    history = distill_heads(loaded.model, student, loaded.tokenizer, [r.text for r in train_rows],
                            _gold(train_rows, heads), epochs=1 if max_steps else int(recipe.train.get("epochs", 3)),
                            batch_size=int(recipe.train.get("batch_size", 32)), lr=float(recipe.train.get("lr", 1e-4)),
                            temperature=float(opts.get("temperature", 2.0)), alpha=float(opts.get("alpha", 0.5)),
                            max_length=int(recipe.train.get("max_length", loaded.manifest.max_length)),
                            seed=int(recipe.train.get("seed", 13)), progress=progress,
                            dev_texts=[r.text for r in dev_rows], dev_gold=_gold(dev_rows, heads))
    seconds = time.perf_counter() - started
    work = Path(work_dir) if work_dir else Path("runs") / "recipes" / recipe.name
    src = work / f"student-{layers}L"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(teacher_dir, src, ignore=shutil.ignore_patterns("model.safetensors", "config.json"))
    student.save_pretrained(src)
    update_bundle_metadata(src, name=recipe.name)  # re-hash the manifest over the student's weights
    fp32 = Predictor.from_bundle(src)
    tests = evaluate_tests(fp32, splits.tests)
    topic_test = evaluate_predictor(fp32, topics.test, head=TOPIC_HEAD)
    teacher_metrics = json.loads((teacher_dir / "metrics.json").read_text(encoding="utf-8"))
    metrics: dict[str, Any] = {
        **headline(tests), **headline({TOPIC_HEAD: topic_test}),
        "layers": layers, "teacher": str(teacher_dir), "train_seconds": round(seconds, 1),
        "train_steps": history["steps"], "best_epoch": history["best_epoch"],
        "teacher_metrics": {k: v for k, v in teacher_metrics.items() if isinstance(v, (int, float))},
        "details": {"tests": tests, "topic_test": topic_test, "distill": history},
    }
    card = (f"# {recipe.name}\n\nThe fast variant of finsent-topics: a {layers}-layer student distilled from the "
            f"fp32 teacher `{teacher_dir}` (every head's softened logits on every training text + the gold label; "
            f"{history['steps']} steps, {seconds:.0f} s on 2 CPU cores). Rebuild: `kgfusion model train --recipe "
            f"{recipe_path or 'data/recipes/' + recipe.name + '.json'}`.\n")
    update_bundle_metadata(src, metrics=metrics, model_card=card, name=recipe.name)
    target = Path(out_dir) if out_dir else data_root / "models" / recipe.name
    result = finish_bundle(src, target, recipe, splits, {}, seconds, onnx=onnx,
                           ship=ship if ship is not None else bool(recipe.data.get("ship", True)), topics=topics)
    if recipe.data.get("lexical_topic"):
        from kgfusion.apps.finance.lexical_head import build_topic_lexical_head

        result["topic_lexical"] = build_topic_lexical_head(target, data_root)
    return result
