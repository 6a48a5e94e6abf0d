"""Core speed/quality benchmark on Financial PhraseBank 50-agree (the shipped bundle's held-out test split).

Variants, all in one run on this machine (timed in interleaved rounds, best of each, so background
load affects all alike): the plain transformers ``pipeline`` (fp32, default settings)
as the baseline, our Predictor fp32 / int8 / onnx-int8, and a distilled 3-layer student in int8.
Prints a table and writes benchmarks/results/core_speed.json (flat metric -> number).

    python benchmarks/core_speed.py [--bundle data/models/finsent-phrasebank-lora] [--student-epochs 3]
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

from kgfusion.core.bundle import load_bundle  # noqa: E402
from kgfusion.core.compress import distill, make_student  # noqa: E402
from kgfusion.core.evaluate import classification_metrics  # noqa: E402
from kgfusion.core.fileio import atomic_write_json  # noqa: E402
from kgfusion.core.jobs import bundle_split  # noqa: E402
from kgfusion.core.measure import format_rows  # noqa: E402
from kgfusion.core.predict import Predictor  # noqa: E402
from kgfusion.core.quantize import export_onnx, model_size_mb, quantize_onnx_int8  # noqa: E402


class PipelineBaseline:
    """The baseline a user gets from transformers without kgfusion: pipeline(), default batch size."""

    task = "sequence"

    def __init__(self, model, tokenizer) -> None:
        from transformers import pipeline

        self.pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
        self.labels = list(model.config.id2label.values())

    def predict_labels(self, texts: list[str]) -> list[str]:
        return [o["label"] for o in self.pipe(texts, truncation=True)]


def quality(variant, examples) -> dict:
    texts, gold = [e.text for e in examples], [e.label for e in examples]
    if isinstance(variant, PipelineBaseline):
        pred = variant.predict_labels(texts)
    else:
        pred = [p.label for p in variant.predict(texts)]
    return classification_metrics(gold, pred, variant.labels)


def run_once(variant, texts: list[str]) -> float:
    start = time.perf_counter()
    if isinstance(variant, PipelineBaseline):
        variant.predict_labels(texts)
    else:
        variant.predict_proba(texts)
    return time.perf_counter() - start


def interleaved_speed(variants: dict, texts: list[str], rounds: int) -> dict[str, float]:
    """Items/s per variant: best of ``rounds``, variants interleaved so background load hits all alike."""
    best = {name: float("inf") for name in variants}
    for _ in range(rounds):
        for name, variant in variants.items():
            best[name] = min(best[name], run_once(variant, texts))
    return {name: len(texts) / seconds for name, seconds in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default=str(ROOT / "data/models/finsent-phrasebank-lora"))
    ap.add_argument("--student-layers", type=int, default=3)
    ap.add_argument("--student-epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="Timed passes per variant (best counts).")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/core_speed.json"))
    args = ap.parse_args()

    loaded = load_bundle(args.bundle)
    test = bundle_split(args.bundle, "test", "sequence")
    train_set = bundle_split(args.bundle, "train", "sequence")
    tok, labels, model = loaded.tokenizer, loaded.labels, loaded.model
    print(f"{len(test)} held-out test sentences, torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}")

    int8 = Predictor(model, tok, labels, "sequence", backend="int8")
    tmp = tempfile.TemporaryDirectory()
    onnx_path = quantize_onnx_int8(export_onnx(model, tok, Path(tmp.name) / "m.onnx"), Path(tmp.name) / "m.int8.onnx",
                                   quantize_embeddings=True)
    started = time.perf_counter()
    student = make_student(model, args.student_layers)
    label_ids = {lab: i for i, lab in enumerate(labels)}
    distill(model, student, tok, [e.text for e in train_set], [label_ids[e.label] for e in train_set],
            epochs=args.student_epochs, lr=1e-4, max_length=loaded.manifest.max_length, progress=True)
    distill_s = time.perf_counter() - started
    s_int8 = Predictor(student, tok, labels, "sequence", backend="int8")
    variants = {
        "pipeline fp32 (baseline)": (PipelineBaseline(model, tok), model_size_mb(model)),
        "Predictor fp32": (Predictor(model, tok, labels, "sequence"), model_size_mb(model)),
        "Predictor int8": (int8, model_size_mb(int8.model)),
        "Predictor onnx-int8": (Predictor(None, tok, labels, "sequence", backend="onnx-int8", onnx_path=onnx_path),
                                model_size_mb(onnx_path)),
        f"student {args.student_layers}L int8": (s_int8, model_size_mb(s_int8.model)),
    }
    texts = [e.text for e in test]
    rows = []
    for name, (variant, size) in variants.items():
        m = quality(variant, test)  # also the warm-up run
        rows.append({"variant": name, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "size_mb": round(size, 2),
                     "n": len(test)})
    speeds = interleaved_speed({name: v for name, (v, _) in variants.items()}, texts, args.rounds)
    for row in rows:
        row["items_per_s"] = speeds[row["variant"]]
    tmp.cleanup()

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
