"""Negative-sentiment spikes: a rolling robust z-score of the negative share per entity.

For each entity (series sorted by period) the baseline is the median of the negative share over the
previous ``window`` periods that had items (the current period excluded; at least ``min_history`` of
them), and the spread is 1.4826 * MAD over the same periods, floored by the binomial standard error
sqrt(p(1-p)/n) of a period of the current volume n at the baseline share p (p clipped to [0.02, 0.98]),
so a quiet series with MAD 0 or a small count cannot produce an infinite z. An alert needs
z >= z_threshold, volume >= min_volume and negative_share >= min_negative_share.

The same thresholds hold at every level, the topic ones included (timeseries.TOPIC_LEVELS: topic,
topic-group, company-topic, sector-topic): an alert row's ``topic`` names the topic (or topic group) that
spiked, ``subject`` the company / sector it is about, and its evidence items carry their topic.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from kgfusion.apps.finance.config import FinanceConfig

ALERT_COLUMNS = ["level", "entity", "name", "period", "z", "volume", "negative_share", "baseline_share",
                 "spread", "mean_score", "history", "topic", "subject"]


def trailing_median_mad(x: np.ndarray, window: int, min_history: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, MAD, n) of x[i-window:i] for each i (NaN where fewer than ``min_history`` values)."""
    n = len(x)
    med = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    count = np.zeros(n, dtype=int)
    for i in range(n):
        past = x[max(0, i - window):i]
        past = past[~np.isnan(past)]
        count[i] = len(past)
        if len(past) >= min_history:
            m = float(np.median(past))
            med[i] = m
            mad[i] = float(np.median(np.abs(past - m)))
    return med, mad, count


def robust_z(series: pd.DataFrame, window: int = 20, min_history: int = 5) -> pd.DataFrame:
    """Add baseline_share, spread, z and history columns to a per-entity series frame."""
    if series.empty:
        return series.assign(baseline_share=np.nan, spread=np.nan, z=np.nan, history=0)
    out = series.sort_values(["level", "entity", "period"]).reset_index(drop=True)
    x = out["negative_share"].to_numpy(dtype=float)
    vol = out["volume"].to_numpy(dtype=float)
    med, mad, hist = np.full(len(out), np.nan), np.full(len(out), np.nan), np.zeros(len(out), dtype=int)
    keys = (out["level"] + "\x1f" + out["entity"].astype(str)).to_numpy()
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(out)]):
        med[a:b], mad[a:b], hist[a:b] = trailing_median_mad(x[a:b], window, min_history)
    p = np.clip(med, 0.02, 0.98)
    spread = np.fmax(1.4826 * mad, np.sqrt(p * (1 - p) / np.maximum(vol, 1.0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - med) / spread
    return out.assign(baseline_share=med, spread=spread, z=z, history=hist)


def detect_alerts(series: pd.DataFrame, config: FinanceConfig | None = None) -> pd.DataFrame:
    """Alert rows (ALERT_COLUMNS), strongest z first."""
    config = config or FinanceConfig()
    if series.empty:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    scored = robust_z(series, config.window, config.min_history)
    hit = scored[(scored["z"] >= config.z_threshold) & (scored["volume"] >= config.min_volume)
                 & (scored["negative_share"] >= config.min_negative_share)]
    # series frames made before the topic columns existed lack topic / subject: None
    hit = hit.reindex(columns=[*dict.fromkeys([*hit.columns, *ALERT_COLUMNS])])
    for col in ("topic", "subject"):
        hit[col] = hit[col].astype(object).where(hit[col].notna(), None)
    return hit.sort_values(["z", "volume"], ascending=False)[ALERT_COLUMNS].reset_index(drop=True)


def top_evidence(alerts: pd.DataFrame, rows: pd.DataFrame, items: pd.DataFrame, k: int = 3,
                 resolution: str = "day") -> list[list[dict[str, Any]]]:
    """For each alert, the ``k`` most negative items of that entity and period (then most confident).

    rows: the long entity frame of timeseries.entity_rows; items: id, text, label, score, confidence,
    evidence (JSON string), optionally topic and topic_prob. Each evidence item: id, ts, text, label, score,
    confidence, topic, topic_prob (None without a topic) and the evidence list.
    """
    if alerts.empty or k == 0:
        return [[] for _ in range(len(alerts))]
    freq = "D" if resolution == "day" else "h"
    periods = pd.to_datetime(rows["ts"]).dt.floor(freq)
    wanted = set(zip(alerts["entity"], pd.to_datetime(alerts["period"])))
    groups: dict[tuple[str, pd.Timestamp], list[str]] = {}
    for ent, per, iid in zip(rows["entity"], periods, rows["item_id"]):
        if (ent, per) in wanted:
            groups.setdefault((ent, per), []).append(iid)
    by_id = items.drop_duplicates("id").set_index("id")
    out = []
    for ent, per in zip(alerts["entity"], pd.to_datetime(alerts["period"])):
        ids = [i for i in dict.fromkeys(groups.get((ent, per), [])) if i in by_id.index]
        cand = by_id.loc[ids].reset_index().sort_values(["score", "confidence"], ascending=[True, False])
        if "text_key" in cand.columns:  # cite a retweeted text once
            cand = cand.assign(_key=cand["text_key"].fillna(cand["id"])).drop_duplicates("_key")
        out.append(evidence_records(cand.head(k)))
    return out


def evidence_records(cand: pd.DataFrame) -> list[dict[str, Any]]:
    """Evidence item dicts of the chosen item rows, in their order (shared by top_evidence and the SQL path
    of series_sql.store_evidence, so both give the same JSON)."""
    return [{
        "id": r["id"], "ts": str(r["ts"]), "text": r["text"], "label": r["label"],
        "score": round(float(r["score"]), 4), "confidence": round(float(r["confidence"]), 4),
        "topic": _opt_str(r.get("topic")), "topic_prob": _opt_round(r.get("topic_prob")),
        "evidence": json.loads(r["evidence"]) if isinstance(r["evidence"], str) else r["evidence"],
    } for _, r in cand.iterrows()]


def _opt_str(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v)


def _opt_round(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(f) else round(f, 4)
