"""Compare model variants on the same examples: quality, throughput and size, in one table."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def time_call(fn: Callable[[], Any], repeats: int = 1) -> tuple[Any, float]:
    """Run ``fn`` ``repeats`` times; return its last result and the best wall time (warm up before calling)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def measure_predictor(name: str, predictor, examples: Sequence, size_mb: float, repeats: int = 1) -> dict[str, Any]:
    """Quality (accuracy/macro-F1 or entity F1) and items/s of one Predictor on ``examples``."""
    from kgfusion.core.jobs import evaluate_predictor

    evaluate_predictor(predictor, examples[:8])  # warm-up: first calls pay for allocation and graph setup
    metrics, seconds = time_call(lambda: evaluate_predictor(predictor, examples), repeats)
    row = {"variant": name, "size_mb": round(size_mb, 2), "items_per_s": len(examples) / seconds, "n": len(examples)}
    for key in ("accuracy", "macro_f1", "f1"):
        if key in metrics:
            row[key] = metrics[key]
    return row


def format_rows(rows: Sequence[dict[str, Any]], baseline: str | None = None) -> str:
    """A table of variant rows; with ``baseline``, speed ratios and accuracy deltas against it."""
    base = next((r for r in rows if r["variant"] == baseline), None)
    quality = "accuracy" if any("accuracy" in r for r in rows) else "f1"
    head = f"{'variant':<26}{quality:>9}{'macro-F1':>9}{'items/s':>9}{'size MB':>9}"
    if base:
        head += f"{'speed×':>8}{'Δ points':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        line = (f"{r['variant']:<26}{r.get(quality, np.nan):>9.4f}{r.get('macro_f1', np.nan):>9.4f}"
                f"{r['items_per_s']:>9.1f}{r['size_mb']:>9.1f}")
        if base:
            line += f"{r['items_per_s'] / base['items_per_s']:>8.2f}{100 * (r.get(quality, 0) - base.get(quality, 0)):>+9.2f}"
        lines.append(line)
    return "\n".join(lines)
