"""Models page section: drift of the finance feed against its training reference (apps/finance/drift.py).

Shows what the ``drift`` table of a finance monitor DuckDB holds -- per-day figures, a PSI-per-day line
and the drift alerts; it computes nothing (no model loads on the page): the figures come from
``kgfusion finance alerts --db DB --drift``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from kgfusion.apps.ui.render import escape_markdown
from kgfusion.core.errors import KgfusionError
from kgfusion.core.lifecycle.drift import drift_alerts, read_drift_table, verdict

REPO = Path(__file__).resolve().parents[2]


def default_finance_db() -> Path:
    """The finance page's database: $KGFUSION_FINANCE_DB, else runs/finance.duckdb."""
    return Path(os.environ.get("KGFUSION_FINANCE_DB", REPO / "runs" / "finance.duckdb"))


@st.cache_data(show_spinner=False)
def _load(db: str, stamp: float) -> pd.DataFrame:  # stamp: the file's mtime, so a new run reloads
    return read_drift_table(db)


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The per-day table as shown: day, items, the figures, verdict and reasons as one line."""
    return pd.DataFrame({
        "day": [str(d)[:10] for d in table["day"]],
        "items": table["items"].astype(int),
        "label PSI": table["label_psi"].astype(float),
        "confidence PSI": table["confidence_psi"].astype(float),
        "confidence KS D": table["confidence_ks"].astype(float),
        "KS p": table["confidence_ks_p"].astype(float),
        "centroid x spread": table["centroid_ratio"].astype(float),
        "verdict": [verdict(v) for v in table["drifted"]],
        "reasons": ["; ".join(json.loads(r)) if isinstance(r, str) else "" for r in table["reasons"]],
    })


def psi_chart(shown: pd.DataFrame):
    """Label and confidence PSI per day, with the 0.2 rule of thumb as a dashed line."""
    import altair as alt

    long = shown.melt(id_vars=["day"], value_vars=["label PSI", "confidence PSI"], var_name="statistic",
                      value_name="PSI").dropna()
    lines = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("day:T", title="day"), y=alt.Y("PSI:Q", title="PSI vs the training reference"),
        color=alt.Color("statistic:N"), tooltip=["day", "statistic", alt.Tooltip("PSI:Q", format=".3f")])
    rule = alt.Chart(pd.DataFrame({"PSI": [0.2]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="PSI:Q")
    return lines + rule


def render(db: str | Path | None = None) -> None:
    """The drift section for a finance DB chosen on the page (default: the finance page's database)."""
    st.header("Drift (finance feed)")
    st.caption("Per day: the distribution of predicted labels (PSI), of confidence (PSI and a KS test) and the "
               "embedding centroid of the stored items against the bundle's training reference. A day drifts "
               "when a statistic passes its threshold (PSI > 0.2 and above its noise level; KS p < 0.01 with "
               "D >= 0.1; centroid distance > 1.5x the reference's own spread) with at least 50 items.")
    path = Path(st.text_input("Finance monitor database (DuckDB)", value=str(db or default_finance_db()),
                              key="drift_db"))
    if not path.is_file():
        st.info(f"No database at {escape_markdown(path)}: create one with `kgfusion finance monitor FEED --db DB`.")
        return
    try:
        table = _load(str(path), path.stat().st_mtime)
    except KgfusionError as exc:
        st.warning(escape_markdown(str(exc)))
        return
    if table.empty:
        st.info(f"No drift figures in {escape_markdown(path)} yet: compute them with "
                f"`kgfusion finance alerts --db {escape_markdown(path)} --drift`.")
        return
    shown = display_frame(table)
    alerts = drift_alerts(table)
    cols = st.columns(3)
    cols[0].metric("days", len(shown))
    cols[1].metric("drift alerts", len(alerts))
    cols[2].metric("latest day", f"{shown['day'].iloc[-1]}: {shown['verdict'].iloc[-1]}")
    if alerts.empty:
        st.success(f"No drift alerts in {len(shown)} days.")
    for row in alerts.itertuples(index=False):
        reasons = "; ".join(json.loads(row.reasons)) if isinstance(row.reasons, str) else ""
        st.warning(escape_markdown(f"{str(row.day)[:10]} drift: {reasons}"))
    st.altair_chart(psi_chart(shown), width="stretch")
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        "label PSI": st.column_config.NumberColumn(format="%.3f"),
        "confidence PSI": st.column_config.NumberColumn(format="%.3f"),
        "confidence KS D": st.column_config.NumberColumn(format="%.3f"),
        "KS p": st.column_config.NumberColumn(format="%.2g"),
        "centroid x spread": st.column_config.NumberColumn(format="%.2f"),
    })
    reference = str(table["reference"].iloc[-1])
    st.caption(f"Reference: {escape_markdown(reference)}; refresh with `kgfusion finance alerts --db DB --drift`.")
