"""Core speed/quality benchmark on Financial PhraseBank 50-agree (the shipped bundle's held-out test split).

Variants, all in one run on this machine: the plain transformers ``pipeline`` (fp32, default settings)
as the baseline, our Predictor fp32 / int8 / onnx-int8, and a distilled 3-layer student in int8.
Prints a table and writes benchmarks/results/core_speed.json (flat metric -> number).

    python benchmarks/core_speed.py [--bundle data/models/finsent-phrasebank-lora] [--student-epochs 3]
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.bundle import load_bundle  # noqa: E402
from core.compress import distill, make_student  # noqa: E402
from core.evaluate import classification_metrics  # noqa: E402
from core.fileio import atomic_write_json  # noqa: E402
from core.jobs import bundle_split  # noqa: E402
from core.measure import format_rows, measure_predictor  # noqa: E402
from core.predict import Predictor  # noqa: E402
from core.quantize import export_onnx, model_size_mb, quantize_onnx_int8  # noqa: E402


def pipeline_row(model, tokenizer, examples) -> dict:
    """The baseline a user gets from transformers without kgfusion: pipeline(), default batch size."""
    from transformers import pipeline

    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    texts = [e.text for e in examples]
    pipe(texts[:8], truncation=True)
    start = time.perf_counter()
    out = pipe(texts, truncation=True)
    seconds = time.perf_counter() - start
    labels = list(model.config.id2label.values())
    m = classification_metrics([e.label for e in examples], [o["label"] for o in out], labels)
    return {"variant": "pipeline fp32 (baseline)", "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "items_per_s": len(texts) / seconds, "size_mb": round(model_size_mb(model), 2), "n": len(texts)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default=str(ROOT / "data/models/finsent-phrasebank-lora"))
    ap.add_argument("--student-layers", type=int, default=3)
    ap.add_argument("--student-epochs", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/core_speed.json"))
    args = ap.parse_args()

    loaded = load_bundle(args.bundle)
    test = bundle_split(args.bundle, "test", "sequence")
    train_set = bundle_split(args.bundle, "train", "sequence")
    tok, labels, model = loaded.tokenizer, loaded.labels, loaded.model
    print(f"{len(test)} held-out test sentences, torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}")

    rows = [pipeline_row(model, tok, test)]
    rows.append(measure_predictor("Predictor fp32", Predictor(model, tok, labels, "sequence"), test,
                                  model_size_mb(model), repeats=2))
    int8 = Predictor(model, tok, labels, "sequence", backend="int8")
    rows.append(measure_predictor("Predictor int8", int8, test, model_size_mb(int8.model), repeats=2))
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = quantize_onnx_int8(export_onnx(model, tok, Path(tmp) / "m.onnx"), Path(tmp) / "m.int8.onnx",
                                       quantize_embeddings=True)
        onnx = Predictor(None, tok, labels, "sequence", backend="onnx-int8", onnx_path=onnx_path)
        rows.append(measure_predictor("Predictor onnx-int8", onnx, test, model_size_mb(onnx_path), repeats=2))

    started = time.perf_counter()
    student = make_student(model, args.student_layers)
    label_ids = {lab: i for i, lab in enumerate(labels)}
    distill(model, student, tok, [e.text for e in train_set], [label_ids[e.label] for e in train_set],
            epochs=args.student_epochs, lr=1e-4, max_length=loaded.manifest.max_length, progress=True)
    distill_s = time.perf_counter() - started
    s_int8 = Predictor(student, tok, labels, "sequence", backend="int8")
    rows.append(measure_predictor(f"student {args.student_layers}L int8", s_int8, test, model_size_mb(s_int8.model),
                                  repeats=2))

    print(format_rows(rows, baseline="pipeline fp32 (baseline)"))
    base, fp32 = rows[0], rows[1]
    fast = rows[2:]
    within = [r for r in fast if 100 * (fp32["accuracy"] - r["accuracy"]) <= 1.0]
    best = max(within or fast, key=lambda r: r["items_per_s"])
    result = {
        "n_test": len(test),
        "baseline_pipeline_items_per_s": base["items_per_s"],
        "baseline_pipeline_accuracy": base["accuracy"],
        "speedup_vs_pipeline": best["items_per_s"] / base["items_per_s"],
        "accuracy_drop_points": 100 * (fp32["accuracy"] - best["accuracy"]),
        "distill_seconds": distill_s,
    }
    for r in rows:
        key = r["variant"].split(" (")[0].lower().replace(" ", "_").replace("-", "_")
        for metric in ("accuracy", "macro_f1", "items_per_s", "size_mb"):
            result[f"{key}_{metric}"] = r[metric]
        result[f"{key}_speedup_vs_pipeline"] = r["items_per_s"] / base["items_per_s"]
    print(f"best variant within 1 point of fp32: {best['variant']}: {result['speedup_vs_pipeline']:.2f}x the "
          f"pipeline, accuracy drop {result['accuracy_drop_points']:.2f} points")
    atomic_write_json(args.out, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
