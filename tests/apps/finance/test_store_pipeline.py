from __future__ import annotations

import json

import duckdb
import pandas as pd

from kgfusion.apps.finance.store import FinanceStore, kpis


def test_monitor_twice_does_not_double_count(monitor_factory, feed_path, tmp_path):
    db = tmp_path / "m.duckdb"
    model = None
    mon = monitor_factory()
    first = mon.monitor(feed_path, db)
    assert (first.items, first.new_items, first.rejected) == (168, 168, 0)
    model = mon.scorer.predictor
    seen = len(model.seen)
    second = mon.monitor(feed_path, db)
    assert (second.new_items, second.skipped_existing) == (0, 168)
    assert len(model.seen) == seen  # stored items are not scored again
    third = mon.monitor(feed_path, db, rescore=True)
    assert third.new_items == 0
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM items").fetchone()[0] == 168
    assert con.execute("SELECT count(*) FROM mentions").fetchone()[0] == first.mentions
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 3
    con.close()


def test_items_carry_evidence_and_mentions_roll_up(monitor_factory, feed_path, tmp_path):
    db = tmp_path / "m.duckdb"
    monitor_factory().monitor(feed_path, db)
    with FinanceStore(db, read_only=True) as store:
        items = store.items()
        row = items[items["text"].str.contains("downgrade")].iloc[0]
        ev = json.loads(row["evidence"])
        kinds = {e["kind"] for e in ev}
        assert {"model", "rule", "kg"} <= kinds
        assert row["score"] == row["p_positive"] - row["p_negative"] or row["label"] == "negative"
        m = store.mentions_of([row["id"]])
        assert m.iloc[0]["sector"] == "Information Technology" and m.iloc[0]["match"] == "cashtag"
        assert kpis(store)["items"] == 168


def test_rejects_file_written_next_to_db(monitor_factory, bad_feed_path, tmp_path):
    mon = monitor_factory(text_col="body", time_col="when", id_col="post_id", source_col="channel")
    s = mon.monitor(bad_feed_path, tmp_path / "b.duckdb")
    assert s.rejects_path == f"{tmp_path / 'b.duckdb'}.rejects.csv"
    rejects = pd.read_csv(s.rejects_path)
    assert len(rejects) == s.rejected == 5 and s.items + s.rejected == s.rows_read


def test_alerts_find_the_planted_spike_with_evidence(monitor_factory, feed_path, tmp_path):
    db = tmp_path / "m.duckdb"
    mon = monitor_factory()
    summary = mon.monitor(feed_path, db)
    alerts = mon.alerts(db)
    assert summary.alerts == len(alerts) >= 1
    top = alerts.iloc[0]
    assert str(top["period"])[:10] == "2014-01-25" and top["negative_share"] == 1.0
    assert set(alerts["level"]) == {"company", "industry", "sector"}
    assert "downgrade" in top["evidence"][0]["text"] and top["evidence"][0]["label"] == "negative"
    assert len(mon.alerts(db, level="company", entity="AAPL")) == 1


def test_score_texts_without_a_file(monitor_factory):
    frame = monitor_factory().score(["$AAPL profit rose", "Allstate raises ALL guidance", "nothing here"])
    assert frame["tickers"].tolist() == [["AAPL"], ["ALL"], []]
    assert frame["label"].tolist()[0] == "positive"


def test_feed_without_timestamps_is_stored_but_has_no_series(monitor_factory, tmp_path):
    feed = tmp_path / "plain.csv"
    feed.write_text("text\n$AAPL profit rose\nMicrosoft loss fell\n")
    mon = monitor_factory()
    s = mon.monitor(feed, tmp_path / "p.duckdb")
    assert (s.items, s.new_items, s.mentions, s.alerts) == (2, 2, 2, 0)
    assert mon.monitor(feed, tmp_path / "p.duckdb").new_items == 0  # hash ids are stable
    assert mon.series(tmp_path / "p.duckdb").empty


def test_a_database_from_before_text_key_is_upgraded_in_place(monitor_factory, feed_path, tmp_path):
    db = tmp_path / "old.duckdb"
    monitor_factory().monitor(feed_path, db)
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE items DROP COLUMN text_key")  # the layout older runs wrote
    con.close()
    with FinanceStore(db) as store:
        frame = store.mention_frame()
        assert (frame["text_key"] == frame["item_id"]).all()  # old rows fall back to their id
    again = monitor_factory().monitor(feed_path, db, rescore=True)
    assert again.new_items == 0
    with FinanceStore(db, read_only=True) as store:
        assert store.mention_frame()["text_key"].str.startswith("c").all()


def test_copies_of_one_text_are_scored_once(monitor_factory, tmp_path):
    feed = tmp_path / "copies.jsonl"
    # the same text at different times (reposts): five items, one model call for the text
    rows = [{"id": f"t{i}", "created_at": f"Wed Jan 01 14:0{i}:00 +0000 2014", "text": "$AAPL profit rose"}
            for i in range(5)] + [{"id": "t9", "created_at": "Wed Jan 01 15:00:00 +0000 2014", "text": "$MSFT loss"}]
    feed.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    mon = monitor_factory()
    summary = mon.monitor(feed, tmp_path / "c.duckdb")
    assert summary.new_items == 6
    assert sorted(mon.scorer.predictor.seen) == ["$AAPL profit rose", "$MSFT loss"]


def test_score_items_is_one_pass_with_fixed_columns(monitor_factory):
    from kgfusion.apps.finance.ingest import Item
    from kgfusion.apps.finance.pipeline import ITEM_COLUMNS
    from kgfusion.apps.finance.store import MENTION_COLUMNS

    mon = monitor_factory()
    items = [Item("a", "$AAPL profit rose", None, "api", None, 1), Item("b", "nothing here", None, "api", None, 2)]
    rows, mentions = mon.score_items(items, run_id="r1")
    assert rows["id"].tolist() == ["a", "b"] and list(rows.columns) == list(ITEM_COLUMNS)
    assert set(rows["run_id"]) == {"r1"} and rows["label"].iloc[0] == "positive"
    assert list(mentions.columns) == MENTION_COLUMNS and mentions["item_id"].tolist() == ["a"]
    # an empty pass keeps both layouts, so callers index it without special cases
    rows, mentions = mon.score_items([])
    assert rows.empty and list(rows.columns) == list(ITEM_COLUMNS)
    assert mentions.empty and list(mentions.columns) == MENTION_COLUMNS

