from __future__ import annotations

import gzip
import json

import pytest

from kgfusion.apps.finance.config import FinanceConfig
from kgfusion.apps.finance.ingest import item_id, parse_timestamps, read_feed
from kgfusion.core.errors import DataError

BAD_CFG = FinanceConfig(text_col="body", time_col="when", id_col="post_id", source_col="channel")


def test_every_row_is_an_item_or_a_reject_with_its_reason(bad_feed_path):
    res = read_feed(bad_feed_path, BAD_CFG)
    assert res.rows_read == 9
    assert len(res.items) + len(res.rejects) == res.rows_read
    reasons = {r.row: r.reason for r in res.rejects}
    assert reasons[4].startswith("unparseable timestamp") and "'yesterday-ish'" in reasons[4]
    assert reasons[5] == "empty text"
    assert reasons[6].startswith("duplicate id (p1")
    assert reasons[7].startswith("duplicate text and timestamp (first at row 2)")
    assert reasons[9] == "not valid UTF-8"
    assert all(r.source == str(bad_feed_path) for r in res.rejects)
    assert [it.id for it in res.items] == ["p1", "p2", "p6", "p8"]
    p6 = next(it for it in res.items if it.id == "p6")
    assert str(p6.ts) == "2014-01-03 08:30:00" and p6.source == "blog"  # +01:00 -> naive UTC


def test_missing_text_column_names_file_columns_and_flag(bad_feed_path):
    with pytest.raises(DataError) as err:
        read_feed(bad_feed_path)
    msg = str(err.value)
    assert str(bad_feed_path) in msg and "'body'" in msg and "--text-col" in msg


def test_auto_detected_columns_and_stable_ids(feed_path):
    a = read_feed(feed_path)
    assert a.columns == {"text": "text", "time": "created_at", "id": "id", "source": None, "ticker": "ticker"}
    assert a.items[0].ts is not None and a.items[0].ticker_hint == "AAPL"
    b = read_feed(feed_path)
    assert [i.id for i in a.items] == [i.id for i in b.items]


def test_hash_ids_without_an_id_column_are_stable_and_distinct(tmp_path):
    rows = [{"text": "Apple up", "timestamp": "2014-01-01"}, {"text": "Apple up", "timestamp": "2014-01-02"}]
    path = tmp_path / "f.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    res = read_feed(path)
    assert len(res.items) == 2 and res.rejects[0].reason.startswith("invalid JSON")
    assert res.items[0].id != res.items[1].id
    assert res.items[0].id == item_id(res.items[0].source, "apple  UP", res.items[0].ts)


def test_limit_stops_after_n_items(feed_path):
    res = read_feed(feed_path, limit=10)
    assert len(res.items) == 10 and res.truncated and res.rows_read == 10


def test_parse_timestamps_formats():
    got = parse_timestamps(["2014-01-02T10:00:00Z", "Wed Jan 01 03:59:03 +0000 2014", "2014-01-05", "garbage"])
    assert [str(x) for x in got[:3]] == ["2014-01-02 10:00:00", "2014-01-01 03:59:03", "2014-01-05 00:00:00"]
    assert got.isna().tolist() == [False, False, False, True]


def test_content_key_ignores_retweet_prefix_urls_and_case():
    from kgfusion.apps.finance.ingest import content_key

    base = content_key("$AAPL falls hard after earnings")
    assert content_key("RT @trader_1: $AAPL falls hard after earnings https://t.co/abc") == base
    assert content_key("rt @a: RT @b: $aapl  FALLS hard after earnings\u2026") == base
    assert content_key("$AAPL rises after earnings") != base
