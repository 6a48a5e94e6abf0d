"""The alert stage in SQL (apps/finance/series_sql.py): the same series, alerts, evidence and JSON as the
former in-pandas path, while pandas only sees aggregated series and the evidence of the alerts raised."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kgfusion.apps.finance.alerts import detect_alerts, top_evidence
from kgfusion.apps.finance.config import FinanceConfig
from kgfusion.apps.finance.pipeline import _jsonable, alerts_from_store, store_catalog, store_series
from kgfusion.apps.finance.series_sql import reference_rows
from kgfusion.apps.finance.store import FinanceStore
from kgfusion.apps.finance.timeseries import LEVELS, series_from_rows
from kgfusion.apps.finance.topics import TopicCatalog

COMPANIES = [  # entity, ticker, industry_uri, industry, sector_uri, sector
    ("ex:A", "A", "ex:I1", "Ind 1", "ex:S1", "Sector 1"), ("ex:B", "B", "ex:I1", "Ind 1", "ex:S1", "Sector 1"),
    ("ex:C", "C", "ex:I2", "Ind 2", "ex:S1", "Sector 1"), ("ex:D", "D", "ex:I3", "Ind 3", "ex:S2", "Sector 2"),
    ("ex:E", "E", "ex:I3", "Ind 3", "ex:S2", "Sector 2"), ("ex:F", None, None, None, "ex:S2", "Sector 2"),
    ("ex:G", "G", "ex:I4", "Ind 4", None, None)]
TOPICS = ["Legal | Regulation", "Earnings", "Markets", "Macro", "Dividend", "Model Own Topic"]


def synthetic_frames(n: int, seed: int = 0, days: int = 40, spike: int = 34) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items and mentions: random labels/scores over ``days`` days, copies of one text (same text_key, other
    score), items without a timestamp or a topic, unlinked items, items naming 6 companies (over
    max_companies), ties in score and confidence, a topic unknown to the catalog, and a negative spike on
    day ``spike`` for company A and Legal | Regulation."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2014-01-01")
    ts = t0 + pd.to_timedelta(rng.integers(0, days * 24 * 60, n), unit="min")
    label = rng.choice(["negative", "neutral", "positive"], n, p=[0.15, 0.6, 0.25])
    score = np.round(np.where(label == "negative", -1, np.where(label == "positive", 1, 0)) * rng.uniform(0.2, 0.9, n), 2)
    conf = np.round(rng.uniform(0.5, 1.0, n), 1)  # rounded: many ties
    topic = rng.choice([*TOPICS, None], n, p=[0.25, 0.25, 0.2, 0.1, 0.1, 0.05, 0.05])
    key = np.array([f"k{i}" for i in range(n)], dtype=object)
    copies = rng.random(n) < 0.2  # a fifth are copies of an earlier text: same key, other score
    key[copies] = [f"k{j}" for j in rng.integers(0, n, copies.sum())]
    ids = [f"it{i:06d}" for i in range(n)]
    items = pd.DataFrame({"id": ids, "ts": ts, "source": "s", "text": [f"text {i}" for i in range(n)],
                          "ticker_hint": None, "label": label, "score": score, "confidence": conf,
                          "p_negative": 0.1, "p_neutral": 0.1, "p_positive": 0.1, "model_probs": "{}",
                          "rule_score": 0.0, "evidence": json.dumps([{"kind": "model", "detail": "x"}]),
                          "run_id": "r", "text_key": key, "topic": topic,
                          "topic_prob": np.round(rng.uniform(0.3, 1, n), 3)})
    items.loc[rng.random(n) < 0.02, "ts"] = pd.NaT
    items.loc[rng.random(n) < 0.05, "text_key"] = None  # an old row: the id is its key
    day = ((items["ts"] - t0).dt.days).to_numpy()
    rows = []
    for i in range(n):
        r = rng.random()
        k = 0 if r < 0.15 else 6 if r < 0.18 else 1 if r < 0.85 else 2
        picks = rng.choice(len(COMPANIES), size=k, replace=False) if k else []
        if day[i] == spike and i % 2 == 0:
            picks = [0]  # the spike: company A, negative, Legal
            items.loc[i, ["label", "score", "topic"]] = ["negative", -0.95, "Legal | Regulation"]
        for c in picks:
            e, t, iu, ind, su, sec = COMPANIES[c]
            rows.append({"item_id": ids[i], "entity": e, "ticker": t, "company": t, "industry_uri": iu,
                         "industry": ind, "sector_uri": su, "sector": sec, "match": "cashtag", "surface": t,
                         "start_char": 0, "end_char": 1, "score": 1.0, "detail": ""})
    return items, pd.DataFrame(rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    items, mentions = synthetic_frames(3000)
    path = tmp_path_factory.mktemp("sql") / "fin.duckdb"
    with FinanceStore(path) as s:
        # in shuffled shards, so insertion order is not time order
        order = np.random.default_rng(1).permutation(len(items))
        for part in np.array_split(order, 5):
            chunk = items.iloc[part]
            s.upsert(chunk, mentions[mentions["item_id"].isin(chunk["id"])])
    with FinanceStore(path, read_only=True) as s:
        yield s


CFG = FinanceConfig(min_volume=3, min_history=5, z_threshold=2.0, min_negative_share=0.1, top_evidence=4)


def reference_series(store: FinanceStore, cfg: FinanceConfig, levels) -> pd.DataFrame:
    rows = reference_rows(store, levels, cfg.max_companies, store_catalog(store))
    return series_from_rows(rows, cfg.resolution)


def assert_same_series(sql: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert list(sql.columns) == list(ref.columns) and len(sql) == len(ref)
    for col in sql.columns:
        a, b = sql[col].to_numpy(), ref[col].to_numpy()
        if col == "mean_score":  # float sums in another order: equal to the last bits
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-12, atol=1e-15)
        elif col in ("negative_share", "positive_share", "volume", "period"):
            assert (a == b).all(), col
        else:
            assert [None if pd.isna(x) else x for x in a] == [None if pd.isna(x) else x for x in b], col


@pytest.mark.parametrize("resolution", ["day", "hour"])
def test_sql_series_equal_the_pandas_path(store, resolution):
    cfg = FinanceConfig.from_dict(CFG.to_dict() | {"resolution": resolution})
    sql = store_series(store, cfg, LEVELS)
    ref = reference_series(store, cfg, LEVELS)
    assert set(sql["level"]) == set(LEVELS)
    assert "Model Own Topic" in set(sql.loc[sql["level"] == "topic", "name"])  # not in the catalog
    assert_same_series(sql, ref)


def test_sql_series_follow_the_documented_rules(store):
    """Hand-checked on one company-day: max_companies, one voice per text_key, NULL-ts items left out."""
    items = store.items()
    mentions = store.mentions_of(items["id"].tolist())
    n_comp = mentions.groupby("item_id")["entity"].nunique()
    ok = set(n_comp[n_comp <= CFG.max_companies].index)
    day = pd.Timestamp("2014-01-10")
    a_ids = set(mentions.loc[mentions["entity"] == "ex:A", "item_id"]) & ok
    sel = items[items["id"].isin(a_ids) & (items["ts"].dt.floor("D") == day)].copy()
    sel["key"] = sel["text_key"].fillna(sel["id"])
    sel = sel.sort_values(["ts", "id"]).drop_duplicates("key")
    row = store_series(store, CFG, ["company"]).set_index(["entity", "period"]).loc[("ex:A", day)]
    assert row["volume"] == len(sel) > 0
    assert row["negative_share"] == (sel["label"] == "negative").sum() / len(sel)
    assert row["mean_score"] == pytest.approx(sel["score"].mean(), abs=1e-12)


@pytest.mark.parametrize("by", ["entity", "all"])
def test_sql_alerts_and_evidence_equal_the_pandas_path(store, by):
    sql = alerts_from_store(store, CFG, by=by)
    levels = LEVELS if by == "all" else CFG.levels
    rows = reference_rows(store, levels, CFG.max_companies, store_catalog(store))
    ref = detect_alerts(series_from_rows(rows, CFG.resolution), CFG)
    assert len(sql) == len(ref) >= 3 and sql.attrs["total"] == len(ref)
    assert ("company", "ex:A", pd.Timestamp("2014-02-04")) in set(zip(sql["level"], sql["entity"], sql["period"]))
    items = store.items(ids=sorted(set(rows.loc[rows["entity"].isin(ref["entity"]), "item_id"])))
    ref["evidence"] = top_evidence(ref, rows, items, CFG.top_evidence, CFG.resolution)
    # one cited item per text, at most top_evidence, at least one
    assert all(1 <= len(ev) == len({e["id"] for e in ev}) <= CFG.top_evidence for ev in sql["evidence"])
    assert sum(len(ev) == CFG.top_evidence for ev in sql["evidence"]) >= 3
    for col in ("level", "entity", "period", "volume", "negative_share", "z", "topic", "subject"):
        assert sql[col].tolist() == ref[col].tolist(), col
    assert sql["evidence"].tolist() == ref["evidence"].tolist()
    a, b = _jsonable(sql), _jsonable(ref)
    for x, y in zip(a, b):  # the same JSON (mean_score to the last bits)
        assert x.pop("mean_score") == pytest.approx(y.pop("mean_score"), rel=1e-12, abs=1e-15)
    assert a == b


def test_sql_alert_filters_match(store):
    ref = alerts_from_store(store, CFG, by="all")
    legal = alerts_from_store(store, CFG, by="all", topic="legal | regulation", top=2)
    want = ref[ref["topic"] == "Legal | Regulation"].head(2).reset_index(drop=True)
    assert legal["entity"].tolist() == want["entity"].tolist() and legal["evidence"].tolist() == want["evidence"].tolist()
    assert legal.attrs["total"] == (ref["topic"] == "Legal | Regulation").sum()


def test_the_alert_stage_loads_aggregates_and_evidence_only(store, monkeypatch):
    fetched: list[int] = []
    real = FinanceStore.fetch

    def spy(self, sql, params=None):
        out = real(self, sql, params)
        fetched.append(len(out))
        return out

    def forbidden(self):
        raise AssertionError("the alert stage must not load every mention / item into pandas")

    monkeypatch.setattr(FinanceStore, "fetch", spy)
    monkeypatch.setattr(FinanceStore, "mention_frame", forbidden)
    monkeypatch.setattr(FinanceStore, "item_frame", forbidden)
    monkeypatch.setattr(FinanceStore, "items", forbidden)
    alerts = alerts_from_store(store, CFG, by="all", top=5)
    stage = list(fetched)  # rows the alert stage took into pandas, per query
    n_series = len(store_series(store, CFG, LEVELS))  # periods x keys
    n_evidence = sum(len(ev) for ev in alerts["evidence"])
    # the series (one query per level), then one evidence query
    assert len(alerts) == 5 and len(stage) == len(LEVELS) + 1
    assert sum(stage[:-1]) == n_series and stage[-1] == n_evidence
    assert sum(stage) <= n_series + 5 * CFG.top_evidence
    counts = store.counts()
    assert n_series < (counts["items"] + counts["mentions"]) / 2


def test_an_empty_store_and_no_alerts(tmp_path):
    with FinanceStore(tmp_path / "e.duckdb") as s:
        assert store_series(s, CFG, LEVELS).empty
        alerts = alerts_from_store(s, CFG, by="all")
        assert alerts.empty and alerts.attrs["total"] == 0 and "evidence" in alerts.columns


def test_an_old_store_without_topic_columns(tmp_path):
    """A read-only store written before text_key / topic existed: entity series as before, topic levels empty."""
    import duckdb

    items, mentions = synthetic_frames(400, seed=3)
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.register("old_items", items.drop(columns=["text_key", "topic", "topic_prob"]))
    con.register("old_mentions", mentions)
    con.execute("CREATE TABLE items AS SELECT * FROM old_items")
    con.execute("CREATE TABLE mentions AS SELECT * FROM old_mentions")
    con.close()
    with FinanceStore(path, read_only=True) as s:
        assert not s.has_topic_columns
        cat = TopicCatalog.default()
        assert_same_series(store_series(s, CFG, LEVELS, cat), series_from_rows(
            reference_rows(s, LEVELS, CFG.max_companies, cat), CFG.resolution))
        sql = alerts_from_store(s, CFG, by="all")
        assert set(sql["level"]) <= set(CFG.levels) and sql.attrs["note"].startswith("this database has no")
