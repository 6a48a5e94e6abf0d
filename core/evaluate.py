"""Evaluation as pure functions returning dicts with a primary metric.

Sequence classification: accuracy, macro-F1 (primary), per-class P/R/F1, confusion matrix.
Token classification: entity-level P/R/F1 with seqeval in strict IOB2 mode (primary: f1).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy and macro-F1 in [0, 1]; ``per_class`` and ``confusion`` (rows = gold, cols = predicted)."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold labels but {len(y_pred)} predictions")
    labels = list(labels)
    if not y_true:
        return {"primary": "macro_f1", "accuracy": 0.0, "macro_f1": 0.0, "n": 0, "labels": labels,
                "per_class": {}, "confusion": []}
    index = {lab: i for i, lab in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        if t in index and p in index:
            confusion[index[t], index[p]] += 1
    tp = np.diag(confusion).astype(float)
    s = confusion.sum(1)
    predicted = confusion.sum(0)
    p = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    r = np.divide(tp, s, out=np.zeros_like(tp), where=s > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros_like(tp), where=(p + r) > 0)
    present = [i for i, lab in enumerate(labels) if lab in set(y_true) or lab in set(y_pred)]
    return {
        "primary": "macro_f1",
        "accuracy": float(np.mean([a == b for a, b in zip(y_true, y_pred)])),
        "macro_f1": float(np.mean([f[i] for i in present])) if present else 0.0,
        "n": len(y_true),
        "labels": labels,
        "per_class": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
        "confusion": confusion.tolist(),
    }


def entity_metrics(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Entity-level precision/recall/F1 (strict IOB2: boundaries and type must match)."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    true_tags = [list(t) for t in true_tags]
    pred_tags = [list(t) for t in pred_tags]
    kw = dict(mode="strict", scheme=IOB2, zero_division=0)
    if not any(t != "O" for seq in true_tags for t in seq) and not any(t != "O" for seq in pred_tags for t in seq):
        return {"primary": "f1", "precision": 1.0, "recall": 1.0, "f1": 1.0, "per_type": {}, "n": len(true_tags)}
    report = classification_report(true_tags, pred_tags, output_dict=True, **kw)
    per_type = {
        k: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
            "support": int(v["support"])}
        for k, v in report.items()
        if not k.endswith("avg")
    }
    return {
        "primary": "f1",
        "precision": float(precision_score(true_tags, pred_tags, **kw)),
        "recall": float(recall_score(true_tags, pred_tags, **kw)),
        "f1": float(f1_score(true_tags, pred_tags, **kw)),
        "per_type": per_type,
        "n": len(true_tags),
    }


def format_report(metrics: dict[str, Any], title: str = "") -> str:
    """A readable table of a metrics dict from either function above."""
    lines = [title] if title else []
    if "per_class" in metrics:
        lines.append(f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   n={metrics['n']}")
        lines.append(f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
        for lab, m in metrics["per_class"].items():
            lines.append(f"{lab:<14}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}{m['support']:>9}")
        if metrics.get("confusion"):
            labels = metrics["labels"]
            lines.append("confusion (rows gold, columns predicted):")
            lines.append(" " * 14 + "".join(f"{lab[:9]:>10}" for lab in labels))
            for lab, row in zip(labels, metrics["confusion"]):
                lines.append(f"{lab:<14}" + "".join(f"{v:>10}" for v in row))
    else:
        lines.append(f"entity P {metrics['precision']:.4f}   R {metrics['recall']:.4f}   F1 {metrics['f1']:.4f}   sentences={metrics['n']}")
        lines.append(f"{'type':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
        for lab, m in metrics.get("per_type", {}).items():
            lines.append(f"{lab:<14}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}{m['support']:>9}")
    return "\n".join(lines)
