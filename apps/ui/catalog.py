"""What the Home and Models pages show: shipped bundles, their metrics and the benchmark results.

Pure readers over files (no Streamlit): ``list_bundles`` reads data/models/<name>/ (bundle.json,
metrics.json, MODEL_CARD.md), ``load_results`` reads benchmarks/results/*.json, ``headlines`` picks
the few numbers worth a first look, ``quantization_rows`` turns core_speed.json into one row per
variant (fp32, dynamic int8, ONNX int8, ...) and ``int8_pairs`` finds "X" vs "onnx_int8_X" metrics.
A broken file never stops a page: it is reported in a ``problems`` list instead.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Dev-set metric shown first for a bundle, in order of preference.
PRIMARY_KEYS = ("dev_macro_f1", "dev_f1", "dev_accuracy", "test_macro_f1", "devel_f1")
# A variant's columns in core_speed.json: "<variant>_<metric>".
SPEED_METRICS = ("accuracy", "macro_f1", "size_mb", "items_per_s", "speedup_vs_pipeline")
# Without curated keys for a result file, its quality metrics are shown before anything else.
_PREFERRED = re.compile(r"ndcg_at_10|macro_f1|(?:^|_)f1$|accuracy|recall_at_10")
_SPEED_KEY = re.compile(rf"^(?P<variant>.+)_(?P<metric>{'|'.join(SPEED_METRICS)})$")


@dataclass(frozen=True)
class Headline:
    """One number for the home page: which result file, a readable label, the value as text."""

    source: str
    label: str
    value: str


# result file stem -> (key, label, format); the first keys present are shown.
HEADLINE_KEYS: dict[str, list[tuple[str, str, str]]] = {
    "finance": [
        ("fused_phrasebank50_accuracy", "PhraseBank accuracy (model + rules)", "{:.1%}"),
        ("fused_twitter_accuracy", "Twitter financial news accuracy", "{:.1%}"),
        ("link_precision", "Company link precision", "{:.1%}"),
        ("monitor_items_per_s", "Monitor items/s (CPU)", "{:.0f}"),
    ],
    "medical": [
        ("fused_ncbi_devel_f1", "NCBI disease F1 (model + gazetteer)", "{:.3f}"),
        ("bc5cdr_devel_f1", "BC5CDR chemical+disease F1", "{:.3f}"),
        ("context_accuracy", "ConText assertion accuracy", "{:.1%}"),
        ("ncbi_devel_linking_accuracy", "Concept linking accuracy", "{:.1%}"),
    ],
    "core_speed": [
        ("predictor_onnx_int8_speedup_vs_pipeline", "ONNX int8 speed-up vs HF pipeline", "{:.1f}x"),
        ("predictor_onnx_int8_size_mb", "ONNX int8 model size (MB)", "{:.1f}"),
        ("predictor_onnx_int8_macro_f1", "ONNX int8 macro-F1", "{:.3f}"),
    ],
    "entity_linking": [
        ("recall_at_1", "Entity linking recall@1", "{:.1%}"),
        ("recall_at_10", "Entity linking recall@10", "{:.1%}"),
    ],
    "recommend_baselines": [
        ("itemknn_ndcg_at_10", "Item-kNN NDCG@10", "{:.3f}"),
        ("popularity_ndcg_at_10", "Popularity NDCG@10", "{:.3f}"),
    ],
}


@dataclass
class BundleInfo:
    """A shipped bundle as the Models page shows it (manifest fields, size, metrics, model card)."""

    name: str
    path: Path
    task: str
    method: str
    base: str
    labels: list[str]
    max_length: int
    size_mb: float
    onnx_int8: bool
    created: str
    metrics: dict[str, Any] = field(default_factory=dict)
    model_card: str = ""

    def flat_metrics(self) -> dict[str, float]:
        return flat_numbers(self.metrics)

    def primary(self) -> tuple[str, float] | None:
        """(key, value) of the preferred dev metric, or None when metrics.json has none of them."""
        flat = self.flat_metrics()
        for key in PRIMARY_KEYS:
            if key in flat:
                return key, flat[key]
        return None

    def row(self) -> dict[str, Any]:
        primary = self.primary()
        return {"bundle": self.name, "task": self.task, "method": self.method, "base": self.base,
                "labels": len(self.labels), "max_length": self.max_length, "size_mb": round(self.size_mb, 1),
                "onnx_int8": self.onnx_int8, "metric": primary[0] if primary else "",
                "value": round(primary[1], 4) if primary else None, "created": self.created}


def flat_numbers(obj: dict[str, Any]) -> dict[str, float]:
    """The top-level numeric entries of a metrics/result dict (booleans and nested values left out)."""
    return {k: float(v) for k, v in sorted(obj.items())
            if isinstance(v, int | float) and not isinstance(v, bool)}


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("top level is not a JSON object")
    return data


def list_bundles(models_dir: str | Path) -> tuple[list[BundleInfo], list[str]]:
    """Bundles under ``models_dir`` (sorted by name) and one message per folder that could not be read."""
    from kgfusion.core.bundle import MANIFEST, ONNX_INT8, read_manifest
    from kgfusion.core.errors import KgfusionError

    root = Path(models_dir)
    bundles: list[BundleInfo] = []
    problems: list[str] = []
    if not root.is_dir():
        return bundles, [f"No models folder at {root}."]
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (path / MANIFEST).is_file():
            continue
        try:
            manifest = read_manifest(path)
        except KgfusionError as exc:
            problems.append(str(exc))
            continue
        metrics: dict[str, Any] = {}
        metrics_path = path / "metrics.json"
        if metrics_path.is_file():
            try:
                metrics = _read_json(metrics_path)
            except (ValueError, UnicodeDecodeError) as exc:
                problems.append(f"{metrics_path}: unreadable metrics ({exc}); rebuild the bundle.")
        card = path / "MODEL_CARD.md"
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        bundles.append(BundleInfo(
            name=path.name, path=path, task=manifest.task, method=manifest.method, base=manifest.base,
            labels=list(manifest.labels), max_length=int(manifest.max_length), size_mb=size / 1e6,
            onnx_int8=(path / ONNX_INT8).is_file(), created=manifest.created, metrics=metrics,
            model_card=card.read_text(encoding="utf-8", errors="replace") if card.is_file() else "",
        ))
    return bundles, problems


def load_results(directory: str | Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``{file stem: JSON object}`` for every results/*.json, plus messages for unreadable files."""
    results: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    root = Path(directory)
    for path in sorted(root.glob("*.json")) if root.is_dir() else []:
        try:
            results[path.stem] = _read_json(path)
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            problems.append(f"{path}: unreadable result file ({exc}); rerun its benchmark.")
    return results, problems


def headlines(results: dict[str, dict[str, Any]], per_file: int = 4) -> list[Headline]:
    """A few labelled numbers per result file: the curated keys, else its quality metrics (NDCG@10, F1,
    accuracy, recall@10) and then other numbers, alphabetically."""
    out: list[Headline] = []
    for stem, data in results.items():
        flat = flat_numbers(data)
        picked = [(label, fmt.format(flat[key])) for key, label, fmt in HEADLINE_KEYS.get(stem, []) if key in flat]
        if not picked:
            keys = sorted(flat, key=lambda k: (not _PREFERRED.search(k), k))
            picked = [(key.replace("_", " "), f"{flat[key]:.4g}") for key in keys[:per_file]]
        out += [Headline(stem, label, value) for label, value in picked[:per_file]]
    return out


def quantization_rows(core_speed: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant of core_speed.json that has a size (fp32, int8, ONNX int8, student, ...)."""
    variants: dict[str, dict[str, Any]] = {}
    for key, value in flat_numbers(core_speed).items():
        match = _SPEED_KEY.match(key)
        if match:
            variants.setdefault(match["variant"], {})[match["metric"]] = value
    rows = []
    for name, values in variants.items():
        if "size_mb" not in values:  # e.g. "baseline_pipeline": a duplicate of pipeline_fp32 without size
            continue
        rows.append({"variant": name, **{m: values.get(m) for m in SPEED_METRICS}})
    return sorted(rows, key=lambda r: -(r["size_mb"] or 0.0))


def int8_pairs(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Metrics measured both in fp32 ("X") and as ONNX int8 ("…onnx_int8_…X"): value, int8 value, delta."""
    flat = flat_numbers(metrics)
    rows = []
    for key, int8 in flat.items():
        if "onnx_int8_" not in key:
            continue
        base = key.replace("onnx_int8_", "")
        if base in flat and base != key:
            rows.append({"metric": base, "fp32": flat[base], "onnx_int8": int8, "delta": int8 - flat[base]})
    return rows
