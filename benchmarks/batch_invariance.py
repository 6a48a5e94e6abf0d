"""Does an item's prediction depend on the other items scored in its batch? (shipped finance bundle)

    python benchmarks/batch_invariance.py [--bundle data/models/finsent-topics] [--backend auto] [--single 300]

ONNX Runtime's dynamic int8 quantization takes one activation scale per tensor, so the rows next to an item
(and the padding they bring) move its probabilities. This scores the Twitter Financial News held-out split
(our own seeded split) three ways with the same Predictor: in the given order, in a shuffled order (seed 1),
and one item per call for the first ``--single`` items; it counts the labels that differ and the largest
probability difference, per head. A batch-invariant backend gives 0 flips and a difference near float error.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=str(ROOT / "data" / "models" / "finsent-topics"))
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--single", type=int, default=300, help="Items also scored one per call.")
    args = ap.parse_args()
    from kgfusion.apps.finance.train import FinanceData, load_finance_splits
    from kgfusion.core.fileio import atomic_write_json
    from kgfusion.core.predict import Predictor

    started = time.perf_counter()
    texts = [e.text for e in load_finance_splits(FinanceData.default(ROOT / "data")).tests["twitter"]]
    predictor = Predictor.from_bundle(args.bundle, backend=args.backend)
    batched = predictor.predict_heads(texts)
    order = list(range(len(texts)))
    random.Random(1).shuffle(order)
    back = np.argsort(order)
    shuffled = {h: p[back] for h, p in predictor.predict_heads([texts[i] for i in order]).items()}
    n = min(args.single, len(texts))
    single = {h: np.concatenate([predictor.predict_heads([t])[h] for t in texts[:n]]) for h in batched}
    res = {"bundle": Path(args.bundle).name, "backend": predictor.backend, "test_set": "twitter (own seeded split)",
           "per_head": {h: {"batched_vs_shuffled": compare(batched[h], shuffled[h]),
                            "batched_vs_one_per_call": compare(batched[h][:n], single[h])} for h in batched},
           "seconds": round(time.perf_counter() - started, 1)}
    atomic_write_json(RESULTS, res)
    print(f"{'head':<10} {'vs shuffled':>12} {'vs one/call':>12} {'max dp':>7}")
    for h, row in res["per_head"].items():
        s, o = row["batched_vs_shuffled"], row["batched_vs_one_per_call"]
        print(f"{h:<10} {s['label_flips']:>5}/{s['items']:<6} {o['label_flips']:>5}/{o['items']:<6} "
              f"{max(s['max_prob_diff'], o['max_prob_diff']):>7.3f}")
    print(f"{res['backend']}; written {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
