"""Models page section: what the shipped models score next to the tools users compare them with.

Two tables from the benchmark results: the headline figures of the shipped bundles (medical.json,
finance.json) beside the issue-12 targets and the published anchors (FinBERT, BioBERT, PubMedBERT,
scispaCy), and, per task, every training configuration tried (benchmarks/training.py -> training.json),
so a user sees what each recipe step gave and what it cost in training time.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

# (results file, key, what it measures, target, anchor). Anchors are published figures on official test
# splits with 110M-parameter in-domain encoders; ours are on our own dev/held-out splits.
HEADLINES: tuple[tuple[str, str, str, float, str], ...] = (
    ("medical", "ncbi_devel_f1", "NCBI-disease devel entity F1, model", 0.85, "BioBERT 0.891, PubMedBERT 0.878"),
    ("medical", "fused_ncbi_devel_f1", "NCBI-disease devel entity F1, fused with the KG gazetteer", 0.87,
     "BioBERT 0.891, PubMedBERT 0.878"),
    ("medical", "bc5cdr_devel_f1", "BC5CDR devel entity F1, combined", 0.86, "scispaCy en_ner_bc5cdr_md 0.843-0.850"),
    ("medical", "bc5cdr_devel_chemical_f1", "BC5CDR devel Chemical F1", 0.90, "BioBERT 0.929"),
    ("medical", "bc5cdr_devel_disease_f1", "BC5CDR devel Disease F1", 0.80, "BioBERT 0.847"),
    ("finance", "phrasebank50_accuracy", "PhraseBank 50-agree accuracy", 0.87, "FinBERT 0.86"),
    ("finance", "phrasebank_allagree_accuracy", "PhraseBank all-agree accuracy", 0.97, "FinBERT 0.97"),
    ("finance", "twitter_accuracy", "Twitter financial news accuracy", 0.89,
     "FinBERT-tone 0.884, Twitter-RoBERTa 0.888 (fine-tuned)"),
)
TASK_TITLES = {"ncbi": "NCBI-disease (devel entity F1)", "bc5cdr": "BC5CDR (devel entity F1)",
               "finance": "Financial sentiment (held-out accuracy)"}
# metric columns per task, in the order shown; other keys in a row are left out to keep the table readable
TASK_COLUMNS = {
    "ncbi": ("devel_f1", "devel_precision", "devel_recall", "devel_argmax_f1", "devel_viterbi_f1"),
    "bc5cdr": ("devel_f1", "devel_chemical_f1", "devel_disease_f1", "devel_argmax_f1"),
    "finance": ("phrasebank50_accuracy", "phrasebank_allagree_accuracy", "twitter_accuracy"),
}


def headline_frame(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per headline metric the results hold: the shipped figure, the target, met or short, the anchor."""
    rows = []
    for stem, key, what, target, anchor in HEADLINES:
        value = (results.get(stem) or {}).get(key)
        if not isinstance(value, int | float):
            continue
        rows.append({"metric": what, "kgfusion (shipped)": round(float(value), 4), "target": target,
                     "status": "met" if value >= target else f"short by {100 * (target - value):.1f} points",
                     "anchor (published, test split)": anchor, "results file": f"{stem}.json"})
    return pd.DataFrame(rows)


def ablation_frame(task: str, configurations: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per configuration tried for a task: its metrics, training seconds, size and where it came from."""
    columns = [c for c in TASK_COLUMNS.get(task, ()) if any(c in r for r in configurations.values())]
    rows = []
    for name, r in configurations.items():
        row: dict[str, Any] = {"configuration": name}
        row |= {c: r.get(c) for c in columns}
        row |= {"train s": r.get("train_seconds"), "MB (fp32 weights)": r.get("shipped_mb"),
                "what changed": r.get("description", ""), "source": r.get("source", "trained by benchmarks/training.py")}
        rows.append(row)
    return pd.DataFrame(rows)


def render(results: dict[str, dict[str, Any]]) -> None:
    st.header("Training recipes: shipped figures, targets and anchors")
    headlines = headline_frame(results)
    if headlines.empty:
        st.info("No medical.json / finance.json yet: run `python benchmarks/medical.py` and "
                "`python benchmarks/finance.py` (make bench).")
    else:
        st.dataframe(headlines, hide_index=True, width="stretch")
        st.caption("Ours: the shipped bundles with the apps' backend on our own dev/held-out splits (official test "
                   "splits are not in the repository). Anchors: published test-split figures of 110M-parameter "
                   "in-domain encoders, a reference point rather than a like-for-like comparison.")
    tasks = (results.get("training") or {}).get("tasks") or {}
    shown = False
    for task, title in TASK_TITLES.items():
        configurations = tasks.get(task)
        if not isinstance(configurations, dict) or not configurations:
            continue
        shown = True
        st.subheader(f"Configurations tried: {title}")
        st.dataframe(ablation_frame(task, configurations), hide_index=True, width="stretch")
    if shown:
        st.caption("Each configuration is a recipe under data/recipes/ablations/<task>/; "
                   "`python benchmarks/training.py --task TASK --only NAME` trains it, "
                   "`kgfusion model train --recipe FILE` builds a bundle from it.")
    else:
        st.info("No training ablation yet: run `python benchmarks/training.py` (benchmarks/results/training.json).")
