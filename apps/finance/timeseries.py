"""Per-entity sentiment series: volume, mean score and negative share per day or hour.

Input: a mention frame (one row per item and company: item_id, ts, label, score, and the company's
entity/ticker/company, industry_uri/industry, sector_uri/sector). Each company row also counts for its
industry and sector; an item mentioning two companies of one sector counts once for that sector.
Output columns: level (company|industry|sector), entity (URI), name, period (start of the day/hour),
volume, mean_score (in [-1, 1]), negative_share and positive_share (in [0, 1]). Periods without items
are absent (not zero rows).
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

SERIES_COLUMNS = ["level", "entity", "name", "period", "volume", "mean_score", "negative_share", "positive_share"]
_LEVEL_COLUMNS = {"company": ("entity", "ticker"), "industry": ("industry_uri", "industry"),
                  "sector": ("sector_uri", "sector")}


def entity_rows(mentions: pd.DataFrame, levels: Sequence[str] = ("company", "industry", "sector"),
                max_companies: int | None = None) -> pd.DataFrame:
    """Long frame (item_id, ts, label, score, level, entity, name): one row per item and entity per level.

    ``max_companies``: items linked to more companies than this are dropped (cashtag lists, spam).
    """
    if max_companies is not None and not mentions.empty:
        per_item = mentions.groupby("item_id")["entity"].transform("nunique")
        mentions = mentions[per_item <= max_companies]
    parts = []
    for level in levels:
        uri_col, name_col = _LEVEL_COLUMNS[level]
        extra = ["text_key"] if "text_key" in mentions.columns else []
        part = mentions[["item_id", "ts", "label", "score", uri_col, name_col, *extra]].rename(
            columns={uri_col: "entity", name_col: "name"})
        part = part.dropna(subset=["entity"]).drop_duplicates(["item_id", "entity"])
        part.insert(4, "level", level)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["item_id", "ts", "label", "score", "level", "entity", "name"])
    return pd.concat(parts, ignore_index=True)


def build_series(mentions: pd.DataFrame, resolution: str = "day",
                 levels: Sequence[str] = ("company", "industry", "sector"),
                 max_companies: int | None = None) -> pd.DataFrame:
    """Aggregate a mention frame into per-entity, per-period series (see the module docstring)."""
    if resolution not in ("day", "hour"):
        raise ValueError(f"resolution={resolution!r}; allowed: day, hour")
    rows = entity_rows(mentions, levels, max_companies)
    if rows.empty:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    rows = rows.assign(period=pd.to_datetime(rows["ts"]).dt.floor("D" if resolution == "day" else "h"),
                       neg=(rows["label"] == "negative").astype(float),
                       pos=(rows["label"] == "positive").astype(float))
    if "text_key" in rows.columns:
        # a retweet or copy of the same text counts once per entity and period
        rows = rows.drop_duplicates(["level", "entity", "period", "text_key"])
    out = (rows.groupby(["level", "entity", "period"], sort=True)
           .agg(name=("name", "first"), volume=("item_id", "size"), mean_score=("score", "mean"),
                negative_share=("neg", "mean"), positive_share=("pos", "mean"))
           .reset_index())
    return out[SERIES_COLUMNS]
