"""Does an item's prediction depend on the other items scored in its batch? (shipped finance bundle)

    python benchmarks/batch_invariance.py [--bundle data/models/finsent-topics] [--single 300]

ONNX Runtime's dynamic int8 quantization takes one activation scale per tensor, so the rows next to an item
(and the padding they bring) move its probabilities. This scores the Twitter Financial News held-out split
(our own seeded split) three ways with the same Predictor: in the given order, in a shuffled order (seed 1),
and one item per call for the first ``--single`` items; it counts the labels that differ and the largest
probability difference, per head. A batch-invariant backend gives 0 flips and a difference near float error.
It does so for the shipped graph (per-tensor) and for the same weights with per-token activation scales
(``Predictor(batch_invariant=True)``, core/per_token_quant.py), with accuracy and items/s in the same run.
-> benchmarks/results/batch_invariance.json
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "batch_invariance.json"


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {"label_flips": int((a.argmax(1) != b.argmax(1)).sum()), "items": len(a),
            "max_prob_diff": round(float(np.abs(a - b).max()), 4)}


def measure(predictor, texts: list[str], gold: list[str], n_single: int) -> dict:
    batched = predictor.predict_heads(texts)
    order = list(range(len(texts)))
    random.Random(1).shuffle(order)
    back = np.argsort(order)
    shuffled = {h: p[back] for h, p in predictor.predict_heads([texts[i] for i in order]).items()}
    single = {h: np.concatenate([predictor.predict_heads([t])[h] for t in texts[:n_single]]) for h in batched}
    labels = list(predictor.heads.get("sentiment", predictor.labels))
    sentiment = batched.get("sentiment", next(iter(batched.values())))
    return {"twitter_sentiment_accuracy": round(float(np.mean([labels[i] == g for i, g in
                                                                zip(sentiment.argmax(1), gold)])), 4),
            "per_head": {h: {"batched_vs_shuffled": compare(batched[h], shuffled[h]),
                             "batched_vs_one_per_call": compare(batched[h][:n_single], single[h])} for h in batched}}


def items_per_s(predictors: dict, texts: list[str], repeats: int = 3) -> dict[str, float]:
    """Best of ``repeats`` over the whole set, the modes alternating so drift hits both alike."""
    best = dict.fromkeys(predictors, 0.0)
    for _ in range(repeats):
        for mode, predictor in predictors.items():
            t = time.perf_counter()
            predictor.predict_heads(texts)
            best[mode] = max(best[mode], len(texts) / (time.perf_counter() - t))
    return {m: round(v, 1) for m, v in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=str(ROOT / "data" / "models" / "finsent-topics"))
    ap.add_argument("--single", type=int, default=300, help="Items also scored one per call.")
    args = ap.parse_args()
    from kgfusion.apps.finance.train import FinanceData, load_finance_splits
    from kgfusion.core.fileio import atomic_write_json
    from kgfusion.core.predict import Predictor

    started = time.perf_counter()
    rows = load_finance_splits(FinanceData.default(ROOT / "data")).tests["twitter"]
    texts, gold = [e.text for e in rows], [e.label for e in rows]
    n = min(args.single, len(texts))
    predictors = {mode: Predictor.from_bundle(args.bundle, backend="onnx-int8", lexical=False,
                                              batch_invariant=mode == "per-token")
                  for mode in ("per-tensor", "per-token")}
    modes = {mode: measure(p, texts, gold, n) for mode, p in predictors.items()}
    speed = items_per_s(predictors, texts)
    for mode in modes:
        modes[mode]["items_per_s"] = speed[mode]
    res = {"bundle": Path(args.bundle).name, "backend": "onnx-int8", "test_set": "twitter (own seeded split)",
           "note": "per-tensor: the shipped graph (one activation scale per batch); per-token: the same weights "
                   "with activations quantized per token (core/per_token_quant.py, --batch-invariant)",
           "per_head": modes["per-tensor"]["per_head"], "modes": modes,
           "per_token_speed_ratio": round(speed["per-token"] / speed["per-tensor"], 3),
           "seconds": round(time.perf_counter() - started, 1)}
    atomic_write_json(RESULTS, res)
    print(f"{'mode':<11} {'head':<10} {'vs shuffled':>12} {'vs one/call':>12} {'max dp':>7} {'TW acc':>7} {'items/s':>8}")
    for mode, m in modes.items():
        for h, row in m["per_head"].items():
            s, o = row["batched_vs_shuffled"], row["batched_vs_one_per_call"]
            print(f"{mode:<11} {h:<10} {s['label_flips']:>5}/{s['items']:<6} {o['label_flips']:>5}/{o['items']:<6} "
                  f"{max(s['max_prob_diff'], o['max_prob_diff']):>7.3f} {m['twitter_sentiment_accuracy']:>7.4f} "
                  f"{m['items_per_s']:>8.1f}")
    print(f"per-token / per-tensor items/s: {res['per_token_speed_ratio']}; written {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
