"""Models page section: the fast and accurate variants of each task side by side (benchmarks/fast_models.py).

Quality, items per second and size of fp32 / accurate (ONNX int8) / fast (distilled 3- or 4-layer student, ONNX int8) from
one benchmark run on this machine, so a user can pick the variant (`--model-variant fast|accurate`) that
fits their volume, and see what the speed costs in accuracy.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

TASKS = {"pareto_sentiment": ("Financial sentiment (finsent-topics)", "accuracy",
                              "pooled PhraseBank 50-agree + Twitter held-out accuracy; items/s on StockNet tweets"),
         "pareto_ner": ("Clinical NER (medical-ner-bc5cdr)", "f1",
                        "strict entity F1 on the BC5CDR devel split; items/s = notes/s of the whole extractor")}


def pareto_frame(rows: list[dict[str, Any]], quality: str) -> pd.DataFrame:
    """One row per variant with its speed-up over fp32 and its quality change in points."""
    base = next((r for r in rows if r.get("variant") == "fp32"), None)
    out = []
    for r in rows:
        row = {"variant": r.get("variant"), "backend": r.get("backend"), quality: r.get(quality),
               "items/s": r.get("items_per_s"), "size (MB)": r.get("size_mb")}
        if base and base.get("items_per_s") and r.get("items_per_s") is not None:
            row["speed-up vs fp32"] = f"{r['items_per_s'] / base['items_per_s']:.2f}x"
        if base and base.get(quality) is not None and r.get(quality) is not None:
            row["change (points)"] = round(100 * (r[quality] - base[quality]), 2)
        out.append(row)
    return pd.DataFrame(out)


def render(results: dict[str, dict[str, Any]]) -> None:
    st.header("Fast and accurate variants")
    scale = results.get("scale") or {}
    shown = False
    for key, (title, quality, note) in TASKS.items():
        rows = scale.get(key)
        if not isinstance(rows, list) or not rows:
            continue
        shown = True
        st.subheader(title)
        st.dataframe(pareto_frame(rows, quality), hide_index=True, width="stretch")
        st.caption(note + ". Choose with `--model-variant fast|accurate`.")
    if not shown:
        st.info("No variant comparison yet: run `python benchmarks/fast_models.py` (benchmarks/results/scale.json).")
