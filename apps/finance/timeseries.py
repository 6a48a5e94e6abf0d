"""Per-entity and per-topic sentiment series: volume, mean score and negative share per day or hour.

Input: a mention frame (one row per item and company: item_id, ts, label, score, and the company's
entity/ticker/company, industry_uri/industry, sector_uri/sector; optionally topic) and, for the topic
levels, an item frame (one row per item, linked or not: item_id, ts, label, score, topic). Each company
row also counts for its industry and sector; an item mentioning two companies of one sector counts once
for that sector.

Levels: company, industry, sector (ENTITY_LEVELS) and the topic levels (TOPIC_LEVELS): ``topic`` (every
item with a topic), ``topic-group`` (the topic's group in the TopicCatalog: macro, company-specific,
markets, general), ``company-topic`` and ``sector-topic`` (a company's / sector's items of one topic).
Output columns: level, entity (URI; ``<company or sector URI>|<topic URI>`` for the compound levels),
name ("AAPL · Earnings" for compound levels), period (start of the day/hour), volume, mean_score (in
[-1, 1]), negative_share and positive_share (in [0, 1]), topic (the topic, or the group at the
topic-group level; None at the entity levels) and subject (the company / industry / sector URI the row
is about; None at the topic and topic-group levels). Periods without items are absent (not zero rows).
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

SERIES_COLUMNS = ["level", "entity", "name", "period", "volume", "mean_score", "negative_share", "positive_share",
                  "topic", "subject"]
ENTITY_LEVELS = ("company", "industry", "sector")
TOPIC_LEVELS = ("topic", "topic-group", "company-topic", "sector-topic")
LEVELS = ENTITY_LEVELS + TOPIC_LEVELS
_LEVEL_COLUMNS = {"company": ("entity", "ticker"), "industry": ("industry_uri", "industry"),
                  "sector": ("sector_uri", "sector")}
ROW_COLUMNS = ["item_id", "ts", "label", "score", "level", "entity", "name", "topic", "subject"]
SEP = " · "  # between the company/sector and the topic in a compound level's name


def check_levels(levels: Sequence[str]) -> None:
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise ValueError(f"levels={list(levels)}; allowed: {', '.join(LEVELS)}")


def entity_rows(mentions: pd.DataFrame, levels: Sequence[str] = ENTITY_LEVELS,
                max_companies: int | None = None, items: pd.DataFrame | None = None,
                topics=None) -> pd.DataFrame:
    """Long frame (ROW_COLUMNS [+ text_key]): one row per item and entity (or topic) per level.

    ``max_companies``: items linked to more companies than this are dropped (cashtag lists, spam) from the
    company levels. ``items``: the item frame for the topic / topic-group levels (default: the linked items of
    ``mentions``); ``topics``: a TopicCatalog for topic URIs and groups (default: the packaged topics).
    """
    check_levels(levels)
    if max_companies is not None and not mentions.empty:
        per_item = mentions.groupby("item_id")["entity"].transform("nunique")
        mentions = mentions[per_item <= max_companies]
    if "topic" not in mentions.columns:
        mentions = mentions.assign(topic=None)
    extra = ["text_key"] if "text_key" in mentions.columns else []
    parts = []
    for level in levels:
        if level in ENTITY_LEVELS:
            uri_col, name_col = _LEVEL_COLUMNS[level]
            part = mentions[["item_id", "ts", "label", "score", uri_col, name_col, *extra]].rename(
                columns={uri_col: "entity", name_col: "name"})
            part = part.dropna(subset=["entity"]).drop_duplicates(["item_id", "entity"])
            part = part.assign(level=level, topic=None, subject=part["entity"])
        else:
            part = _topic_part(level, mentions, items, topics, extra)
        parts.append(part[[*ROW_COLUMNS, *extra]])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ROW_COLUMNS)


def _topic_part(level: str, mentions: pd.DataFrame, items: pd.DataFrame | None, topics,
                extra: list[str]) -> pd.DataFrame:
    if topics is None:
        from kgfusion.apps.finance.topics import TopicCatalog

        topics = TopicCatalog.default()
    if level in ("topic", "topic-group"):
        src = items if items is not None else mentions.drop_duplicates("item_id")
        if "topic" not in src.columns:
            src = src.assign(topic=None)
        cols = ["item_id", "ts", "label", "score", "topic", *[c for c in extra if c in src.columns]]
        part = src[cols].dropna(subset=["topic"])
        if extra and "text_key" not in part.columns:
            part = part.assign(text_key=part["item_id"])
        if level == "topic":
            return part.assign(level=level, entity=part["topic"].map(topics.uri_of), name=part["topic"], subject=None)
        group = part["topic"].map(topics.group_of)
        part = part.assign(topic=group).dropna(subset=["topic"])
        return part.assign(level=level, entity=part["topic"].map(topics.group_uri_of), name=part["topic"],
                           subject=None)
    uri_col, name_col = ("entity", "ticker") if level == "company-topic" else ("sector_uri", "sector")
    part = mentions[["item_id", "ts", "label", "score", uri_col, name_col, "topic", *extra]].dropna(
        subset=[uri_col, "topic"]).drop_duplicates(["item_id", uri_col])
    topic_uri = part["topic"].map(topics.uri_of)
    return part.assign(level=level, entity=part[uri_col].astype(str) + "|" + topic_uri,
                       name=part[name_col].astype(str) + SEP + part["topic"].astype(str), subject=part[uri_col])


def series_from_rows(rows: pd.DataFrame, resolution: str = "day") -> pd.DataFrame:
    """Aggregate an entity_rows frame into per-entity, per-period series (see the module docstring)."""
    if resolution not in ("day", "hour"):
        raise ValueError(f"resolution={resolution!r}; allowed: day, hour")
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
                negative_share=("neg", "mean"), positive_share=("pos", "mean"), topic=("topic", "first"),
                subject=("subject", "first"))
           .reset_index())
    return out[SERIES_COLUMNS]


def build_series(mentions: pd.DataFrame, resolution: str = "day",
                 levels: Sequence[str] = ENTITY_LEVELS,
                 max_companies: int | None = None, items: pd.DataFrame | None = None,
                 topics=None) -> pd.DataFrame:
    """Aggregate a mention frame (and, for the topic levels, an item frame) into per-entity series."""
    if resolution not in ("day", "hour"):
        raise ValueError(f"resolution={resolution!r}; allowed: day, hour")
    return series_from_rows(entity_rows(mentions, levels, max_companies, items, topics), resolution)
