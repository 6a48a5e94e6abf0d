"""Series and alert evidence computed inside DuckDB, so the alert stage's memory does not grow with the store.

``store_series`` returns the same frame as ``timeseries.series_from_rows(entity_rows(...))`` over the whole
store (SERIES_COLUMNS, one row per level, entity and period, sorted by them), but the per-period counts are
a SQL GROUP BY (one query per level, so DuckDB's working set is one level's rows; it is DuckDB-managed
memory, capped by its ``memory_limit`` and spilled past it): pandas only sees periods x keys rows. ``store_evidence`` fetches the top evidence items
of the alerts raised (one query for all alert keys, ``k`` rows per alert at most), the same items in the
same order as ``alerts.top_evidence``.

Semantics (those of timeseries / alerts): an item linked to more than ``max_companies`` companies is left
out of the mention-based levels; an item counts once per level, entity and period, and copies of one text
(same text_key) count once: as the earliest copy (ts, then item id) — the pandas path kept whichever row
came first out of an unordered join. Evidence: most negative first, then most confident, then earliest;
a text cited once (its most negative copy).

``reference_rows`` is the former in-pandas path (every mention and item loaded; memory grows with the
store), kept as the reference the SQL is tested against.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from kgfusion.apps.finance.alerts import evidence_records
from kgfusion.apps.finance.store import FinanceStore
from kgfusion.apps.finance.timeseries import ENTITY_LEVELS, SEP, SERIES_COLUMNS, check_levels, entity_rows
from kgfusion.apps.finance.topics import TopicCatalog

_UNITS = {"day": "day", "hour": "hour"}
# level -> (URI column, name column) of the mention-based levels
_MENTION_LEVELS = {"company": ("entity", "ticker"), "industry": ("industry_uri", "industry"),
                   "sector": ("sector_uri", "sector"), "company-topic": ("entity", "ticker"),
                   "sector-topic": ("sector_uri", "sector")}
_TOPICS_VIEW = "_kgf_topics"
_ALERTS_VIEW = "_kgf_alert_keys"


def _unit(resolution: str) -> str:
    if resolution not in _UNITS:
        raise ValueError(f"resolution={resolution!r}; allowed: day, hour")
    return _UNITS[resolution]


def _catalog_frame(catalog: TopicCatalog) -> pd.DataFrame:
    """topic label -> its URI, group and group URI (the Python mapping of timeseries, as a joinable table)."""
    rows = [{"topic": t.label, "topic_uri": t.uri, "grp": t.group,
             "grp_uri": catalog.group_uri_of(t.group) if t.group else None} for t in catalog.topics.values()]
    if not rows:  # a typed empty table, so the joins still bind
        rows = [{"topic": None, "topic_uri": None, "grp": None, "grp_uri": None}]
    return pd.DataFrame(rows, columns=["topic", "topic_uri", "grp", "grp_uri"]).astype(object)


def _rows_sql(store: FinanceStore, levels: Sequence[str], max_companies: int | None, unit: str) -> str:
    """One SELECT (UNION ALL over ``levels``) of timeseries.ROW_COLUMNS + text_key + period, before the
    text_key de-duplication; the topic levels join the registered catalog view."""
    topic_cols = store._topic_sql("i")
    cap = (f" AND m.item_id IN (SELECT item_id FROM mentions GROUP BY item_id "
           f"HAVING count(DISTINCT entity) <= {int(max_companies)})") if max_companies is not None else ""
    ment = (f"SELECT m.item_id, i.ts, i.label, i.score, m.entity, m.ticker, m.industry_uri, m.industry, "
            f"m.sector_uri, m.sector, {topic_cols} FROM mentions m JOIN items i ON i.id = m.item_id "
            f"WHERE i.ts IS NOT NULL{cap}")
    item = f"SELECT i.id AS item_id, i.ts, i.label, i.score, {topic_cols} FROM items i WHERE i.ts IS NOT NULL"
    base = "item_id, ts, label, score, text_key"
    period = f"date_trunc('{unit}', ts) AS period"
    topic_uri = "coalesce(c.topic_uri, 'topic:' || r.topic)"
    parts = []
    for level in levels:
        if level in ENTITY_LEVELS:
            uri, name = _MENTION_LEVELS[level]
            parts.append(f"SELECT '{level}' AS level, {base}, {uri} AS entity, {name} AS name, "
                         f"CAST(NULL AS VARCHAR) AS topic, {uri} AS subject, {period} FROM m WHERE {uri} IS NOT NULL")
        elif level == "topic":
            parts.append(f"SELECT 'topic' AS level, r.item_id, r.ts, r.label, r.score, r.text_key, {topic_uri} AS entity, "
                         f"r.topic AS name, r.topic AS topic, CAST(NULL AS VARCHAR) AS subject, "
                         f"date_trunc('{unit}', r.ts) AS period "
                         f"FROM it r LEFT JOIN {_TOPICS_VIEW} c ON c.topic = r.topic WHERE r.topic IS NOT NULL")
        elif level == "topic-group":
            parts.append(f"SELECT 'topic-group' AS level, r.item_id, r.ts, r.label, r.score, r.text_key, "
                         f"c.grp_uri AS entity, c.grp AS name, c.grp AS topic, CAST(NULL AS VARCHAR) AS subject, "
                         f"date_trunc('{unit}', r.ts) AS period "
                         f"FROM it r JOIN {_TOPICS_VIEW} c ON c.topic = r.topic WHERE c.grp IS NOT NULL")
        else:  # company-topic, sector-topic
            uri, name = _MENTION_LEVELS[level]
            parts.append(f"SELECT '{level}' AS level, r.item_id, r.ts, r.label, r.score, r.text_key, "
                         f"r.{uri} || '|' || {topic_uri} AS entity, "
                         f"r.{name} || '{SEP}' || r.topic AS name, "  # NULL name stays NULL, as in pandas
                         f"r.topic AS topic, r.{uri} AS subject, date_trunc('{unit}', r.ts) AS period "
                         f"FROM m r LEFT JOIN {_TOPICS_VIEW} c ON c.topic = r.topic "
                         f"WHERE r.{uri} IS NOT NULL AND r.topic IS NOT NULL")
    return f"WITH m AS ({ment}), it AS ({item}) " + " UNION ALL ".join(parts)


def _with_catalog(store: FinanceStore, catalog: TopicCatalog, sql: str,
                  extra: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    views = {_TOPICS_VIEW: _catalog_frame(catalog), **(extra or {})}
    for name, frame in views.items():
        store.con.register(name, frame)
    try:
        return store.fetch(sql)
    finally:
        for name in views:
            store.con.unregister(name)


def store_series(store: FinanceStore, levels: Sequence[str], resolution: str = "day",
                 max_companies: int | None = None, catalog: TopicCatalog | None = None) -> pd.DataFrame:
    """Per level, entity and period: volume, mean_score, negative/positive share, topic, subject
    (SERIES_COLUMNS; see the module docstring), aggregated by DuckDB."""
    check_levels(levels)
    unit = _unit(resolution)
    catalog = catalog or TopicCatalog.default()
    # one query per level, in name order: DuckDB's working set is one level's rows, not all levels' at once,
    # and the concatenation is sorted by (level, entity, period) like the pandas groupby
    parts = [_level_series(store, level, unit, max_companies, catalog) for level in sorted(dict.fromkeys(levels))]
    out = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(not p.empty for p in parts) \
        else pd.DataFrame()
    if out.empty:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    vol = out["volume"].astype("int64")
    # integer counts / volume: the same float as pandas' mean of 0/1 flags
    out = out.assign(volume=vol, negative_share=out["n_negative"] / vol, positive_share=out["n_positive"] / vol)
    for col in ("topic", "subject"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out[SERIES_COLUMNS]


def _level_series(store: FinanceStore, level: str, unit: str, max_companies: int | None,
                  catalog: TopicCatalog) -> pd.DataFrame:
    sql = f"""
        WITH r AS ({_rows_sql(store, [level], max_companies, unit)}),
        d AS (SELECT * FROM r
              QUALIFY row_number() OVER (PARTITION BY level, entity, period, text_key ORDER BY ts, item_id) = 1)
        SELECT level, entity, min(name) AS name, period, count(*) AS volume,
               fsum(score) / count(score) AS mean_score,
               count(*) FILTER (WHERE label = 'negative') AS n_negative,
               count(*) FILTER (WHERE label = 'positive') AS n_positive,
               min(topic) AS topic, min(subject) AS subject
        FROM d GROUP BY level, entity, period ORDER BY level, entity, period"""
    return _with_catalog(store, catalog, sql)


def store_evidence(store: FinanceStore, alerts: pd.DataFrame, levels: Sequence[str], k: int = 3,
                   resolution: str = "day", max_companies: int | None = None,
                   catalog: TopicCatalog | None = None) -> list[list[dict[str, Any]]]:
    """For each alert row (entity, period), its ``k`` most negative items as alerts.top_evidence returns them;
    one query fetching at most ``k`` items per alert."""
    if alerts.empty or k == 0:
        return [[] for _ in range(len(alerts))]
    check_levels(levels)
    unit = _unit(resolution)
    keys = pd.DataFrame({"alert_no": range(len(alerts)), "entity": alerts["entity"].astype(str).to_list(),
                         "period": pd.to_datetime(alerts["period"]).to_list()})
    order = "i.score ASC NULLS LAST, i.confidence DESC NULLS LAST, i.ts ASC NULLS LAST, i.id"
    sql = f"""
        WITH r AS ({_rows_sql(store, levels, max_companies, unit)}),
        cand AS (SELECT DISTINCT a.alert_no, r.item_id FROM r
                 JOIN {_ALERTS_VIEW} a ON r.entity = a.entity AND r.period = CAST(a.period AS TIMESTAMP)),
        j AS (SELECT c.alert_no, i.*, coalesce(i.text_key, i.id) AS _key FROM cand c JOIN items i ON i.id = c.item_id
              QUALIFY row_number() OVER (PARTITION BY c.alert_no, coalesce(i.text_key, i.id) ORDER BY {order}) = 1)
        SELECT * FROM j i
        QUALIFY row_number() OVER (PARTITION BY i.alert_no ORDER BY {order}) <= {int(k)}
        ORDER BY i.alert_no, {order}"""
    if "text_key" not in store.item_columns:  # an old read-only store: the id is the key
        sql = sql.replace("coalesce(i.text_key, i.id)", "i.id")
    found = _with_catalog(store, catalog or TopicCatalog.default(), sql, {_ALERTS_VIEW: keys})
    by_alert = {int(n): g for n, g in found.groupby("alert_no", sort=False)} if not found.empty else {}
    return [evidence_records(by_alert[n]) if n in by_alert else [] for n in range(len(alerts))]


def reference_rows(store: FinanceStore, levels: Sequence[str], max_companies: int | None = None,
                   catalog: TopicCatalog | None = None) -> pd.DataFrame:
    """The former in-pandas path's entity_rows frame over the whole store (for tests; memory grows with
    the store), rows in (ts, item id) order so its "first copy" matches the SQL's."""
    items = store.item_frame() if any(lv in ("topic", "topic-group") for lv in levels) else None
    if items is not None:
        items = items.sort_values(["ts", "item_id"], kind="stable").reset_index(drop=True)
    mentions = store.mention_frame().sort_values(["ts", "item_id"], kind="stable").reset_index(drop=True)
    return entity_rows(mentions, levels, max_companies, items, catalog or TopicCatalog.default())
