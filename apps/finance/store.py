"""DuckDB store of scored items, their company mentions and the runs that wrote them.

Tables: ``items`` (id primary key; ts naive UTC; label, score, fused and model probabilities, evidence
JSON; topic and topic_prob from a model with a topic head, else NULL), ``mentions`` (item_id + entity primary key; ticker, company, industry, sector, match, span) and
``runs``. Writes are upserts keyed on the item id, so monitoring the same file twice counts each item
once; an item's mentions are replaced together with it.

Stores written before a column existed (text_key, topic, topic_prob) gain it when opened for writing
(ALTER TABLE ... ADD COLUMN IF NOT EXISTS; old rows keep their values, the new column is NULL); opened
read-only, the reads fill the missing columns with NULL.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from kgfusion.core.duckdb_files import connect, duckdb_module
from kgfusion.core.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id VARCHAR PRIMARY KEY, ts TIMESTAMP, source VARCHAR, text VARCHAR, ticker_hint VARCHAR,
    label VARCHAR, score DOUBLE, confidence DOUBLE, p_negative DOUBLE, p_neutral DOUBLE, p_positive DOUBLE,
    model_probs VARCHAR, rule_score DOUBLE, evidence VARCHAR, run_id VARCHAR, text_key VARCHAR,
    topic VARCHAR, topic_prob DOUBLE
);
CREATE TABLE IF NOT EXISTS mentions (
    item_id VARCHAR, entity VARCHAR, ticker VARCHAR, company VARCHAR, industry_uri VARCHAR, industry VARCHAR,
    sector_uri VARCHAR, sector VARCHAR, match VARCHAR, surface VARCHAR, start_char INTEGER, end_char INTEGER,
    score DOUBLE, detail VARCHAR, PRIMARY KEY (item_id, entity)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, started TIMESTAMP, finished TIMESTAMP, input VARCHAR, rows_read BIGINT,
    items BIGINT, new_items BIGINT, rejected BIGINT, mentions BIGINT, model VARCHAR, backend VARCHAR,
    config VARCHAR, summary VARCHAR
);
"""
ITEM_COLUMNS = ["id", "ts", "source", "text", "ticker_hint", "label", "score", "confidence", "p_negative",
                "p_neutral", "p_positive", "model_probs", "rule_score", "evidence", "run_id", "text_key", "topic",
                "topic_prob"]
# Item columns added after the first release: (name, SQL type); old stores gain them on open.
ADDED_ITEM_COLUMNS = (("text_key", "VARCHAR"), ("topic", "VARCHAR"), ("topic_prob", "DOUBLE"))
MENTION_COLUMNS = ["item_id", "entity", "ticker", "company", "industry_uri", "industry", "sector_uri", "sector",
                   "match", "surface", "start_char", "end_char", "score", "detail"]




class FinanceStore:
    """A DuckDB file (or ":memory:"); use as a context manager or call close()."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        duckdb = duckdb_module()
        self.path = str(path)
        if read_only and self.path != ":memory:" and not Path(self.path).is_file():
            raise DataError(f"{self.path}: database not found; create it with `kgfusion finance monitor FILE --db {path}`")
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.con = connect(self.path, read_only=read_only)
        try:
            if not read_only:
                self.con.execute(SCHEMA)
                # databases written before these columns existed: add them (old rows: text_key falls back to
                # the id, topic and topic_prob stay NULL)
                for name, sql_type in ADDED_ITEM_COLUMNS:
                    self.con.execute(f"ALTER TABLE items ADD COLUMN IF NOT EXISTS {name} {sql_type}")
            else:
                names = {r[0] for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
                if "items" not in names:
                    raise DataError(f"{self.path}: not a finance monitor database (no items table)")
            self.item_columns = {r[0] for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'items'").fetchall()}
        except duckdb.Error as exc:
            self.con.close()
            raise DataError(f"{self.path}: not a finance monitor database or an unreadable one ({exc})") from exc
        self.has_topic_columns = {"topic", "topic_prob"} <= self.item_columns

    def __enter__(self) -> FinanceStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    # -- writes ----------------------------------------------------------------------------------
    def existing_ids(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        frame = pd.DataFrame({"id": ids})
        self.con.register("_ids", frame)
        try:
            return {r[0] for r in self.con.execute("SELECT i.id FROM items i JOIN _ids USING (id)").fetchall()}
        finally:
            self.con.unregister("_ids")

    def upsert(self, items: pd.DataFrame, mentions: pd.DataFrame) -> int:
        """Insert or replace items (and replace their mentions) in one transaction; returns new item count."""
        if items.empty:
            return 0
        items = items.reindex(columns=ITEM_COLUMNS)
        mentions = mentions.reindex(columns=MENTION_COLUMNS)
        stored = self.existing_ids(items["id"].tolist())
        new = len(items) - len(stored)
        self.con.register("_items", items)
        self.con.register("_mentions", mentions)
        try:
            self.con.execute("BEGIN TRANSACTION")
            if stored:  # only items stored before have mentions to replace (skips a scan of the table)
                self.con.execute("DELETE FROM mentions WHERE item_id IN (SELECT id FROM _items)")
            self.con.execute(f"INSERT OR REPLACE INTO items ({', '.join(ITEM_COLUMNS)}) SELECT {', '.join(ITEM_COLUMNS)} FROM _items")
            if not mentions.empty:
                self.con.execute(f"INSERT OR REPLACE INTO mentions ({', '.join(MENTION_COLUMNS)}) SELECT {', '.join(MENTION_COLUMNS)} FROM _mentions")
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister("_items")
            self.con.unregister("_mentions")
        return new

    def record_run(self, run: dict[str, Any]) -> None:
        row = dict(run)
        for key in ("config", "summary"):
            if not isinstance(row.get(key), str):
                row[key] = json.dumps(row.get(key) or {}, sort_keys=True, default=str)
        cols = ["run_id", "started", "finished", "input", "rows_read", "items", "new_items", "rejected", "mentions",
                "model", "backend", "config", "summary"]
        self.con.execute(f"INSERT OR REPLACE INTO runs VALUES ({', '.join('?' * len(cols))})", [row.get(c) for c in cols])

    # -- reads -----------------------------------------------------------------------------------
    def fetch(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a query and return its result as a DataFrame: the one place reads enter pandas (tests spy on
        it to bound what the alert stage loads)."""
        return self.con.execute(sql, params or []).df()

    def counts(self) -> dict[str, int]:
        return {t: int(self.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in ("items", "mentions", "runs")}

    def _topic_sql(self, alias: str = "i") -> str:
        """The topic columns (and text_key), NULL / the id where an old read-only store lacks them."""
        key = f"coalesce({alias}.text_key, {alias}.id)" if "text_key" in self.item_columns else f"{alias}.id"
        topic = (f"{alias}.topic, {alias}.topic_prob" if self.has_topic_columns
                 else "CAST(NULL AS VARCHAR) AS topic, CAST(NULL AS DOUBLE) AS topic_prob")
        return f"{key} AS text_key, {topic}"

    def mention_frame(self) -> pd.DataFrame:
        """One row per (item, company): the item's ts, label, score, confidence, text_key, topic, topic_prob and
        the roll-up."""
        return self.fetch(f"""
            SELECT m.item_id, i.ts, i.label, i.score, i.confidence, m.entity, m.ticker, m.company,
                   m.industry_uri, m.industry, m.sector_uri, m.sector, m.match, {self._topic_sql()}
            FROM mentions m JOIN items i ON i.id = m.item_id WHERE i.ts IS NOT NULL""")

    def item_frame(self) -> pd.DataFrame:
        """One row per timestamped item, linked or not: item_id, ts, label, score, confidence, text_key, topic,
        topic_prob (the input of the topic and topic-group series)."""
        return self.fetch(f"""
            SELECT i.id AS item_id, i.ts, i.label, i.score, i.confidence, {self._topic_sql()}
            FROM items i WHERE i.ts IS NOT NULL""")

    def topic_counts(self) -> dict[str, int]:
        """Items per topic, most frequent first; empty for a store without topics."""
        if not self.has_topic_columns:
            return {}
        rows = self.con.execute("SELECT topic, count(*) AS n FROM items WHERE topic IS NOT NULL "
                                "GROUP BY topic ORDER BY n DESC, topic").fetchall()
        return {str(t): int(n) for t, n in rows}

    def items(self, ids: list[str] | None = None, limit: int | None = None) -> pd.DataFrame:
        if ids is not None:
            frame = pd.DataFrame({"id": list(ids)})
            self.con.register("_ids", frame)
            try:
                return self._full(self.fetch("SELECT i.* FROM items i JOIN _ids USING (id) ORDER BY i.ts"))
            finally:
                self.con.unregister("_ids")
        sql = "SELECT * FROM items ORDER BY ts" + (f" LIMIT {int(limit)}" if limit else "")
        return self._full(self.fetch(sql))

    @staticmethod
    def _full(frame: pd.DataFrame) -> pd.DataFrame:
        """Items with every ITEM_COLUMNS column (NULL for the ones an old, read-only store lacks)."""
        missing = [c for c in ITEM_COLUMNS if c not in frame.columns]
        return frame.assign(**{c: None for c in missing}) if missing else frame

    def mentions_of(self, ids: list[str]) -> pd.DataFrame:
        frame = pd.DataFrame({"item_id": list(ids)})
        self.con.register("_ids", frame)
        try:
            return self.fetch("SELECT m.* FROM mentions m JOIN _ids USING (item_id)")
        finally:
            self.con.unregister("_ids")

    def runs(self) -> pd.DataFrame:
        return self.fetch("SELECT * FROM runs ORDER BY started")

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        lo, hi = self.con.execute("SELECT min(ts), max(ts) FROM items").fetchone()
        return lo, hi


def kpis(store: FinanceStore) -> dict[str, Any]:
    """Headline numbers: items, linked items, companies, negative share, time range, items with a topic and
    the number of distinct topics."""
    row = store.con.execute("""
        SELECT count(*), avg(CASE WHEN label = 'negative' THEN 1.0 ELSE 0.0 END), avg(score), min(ts), max(ts)
        FROM items""").fetchone()
    linked, companies = store.con.execute("SELECT count(DISTINCT item_id), count(DISTINCT entity) FROM mentions").fetchone()
    topics = store.topic_counts()
    return {"items": int(row[0]), "negative_share": float(row[1] or 0.0), "mean_score": float(row[2] or 0.0),
            "first": row[3], "last": row[4], "linked_items": int(linked), "companies": int(companies),
            "topic_items": sum(topics.values()), "topics": len(topics)}
