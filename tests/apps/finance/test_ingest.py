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
    assert reasons[9].startswith("not valid UTF-8") and "--encoding" in reasons[9]
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


# -- bad input: say what the file is, account for every row (issue 11) ---------------------------------
def test_binary_and_non_utf8_files_are_named_not_echoed(tmp_path):
    png = tmp_path / "chart.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(DataError, match=r"chart\.csv is binary, not text \(it looks like a PNG image\)") as err:
        read_feed(png)
    assert "IHDR" not in str(err.value)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("t\xe9xt,created_at\ncaf\xe9 profit rose,2014-01-02\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        read_feed(latin)
    assert str(err.value) == f"{latin} is not UTF-8 text (invalid byte at offset 1, line 1); convert it or pass --encoding"
    res = read_feed(latin, FinanceConfig(text_col="t\xe9xt"), encoding="latin-1")
    assert [it.text for it in res.items] == ["caf\xe9 profit rose"] and not res.rejects
    utf16 = tmp_path / "excel.csv"
    utf16.write_bytes("text\nprofit rose\n".encode("utf-16"))
    with pytest.raises(DataError, match="is UTF-16 text .byte-order mark.; pass --encoding utf-16"):
        read_feed(utf16)
    assert [it.text for it in read_feed(utf16, encoding="utf-16").items] == ["profit rose"]
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_feed(latin, encoding="klingon")


def test_a_mostly_latin1_file_is_one_error_but_a_stray_byte_is_one_reject(tmp_path):
    most = tmp_path / "most.jsonl"
    most.write_bytes(b'{"text": "ok"}\n' + '{"text": "caf\xe9"}\n'.encode("latin-1") * 3)
    with pytest.raises(DataError, match=r"most\.jsonl is not UTF-8 text \(invalid byte at offset 28, line 2\)"):
        read_feed(most)
    stray = tmp_path / "stray.jsonl"
    stray.write_bytes(b'{"text": "ok one"}\n{"text": "ok two"}\n' + '{"text": "caf\xe9"}\n'.encode("latin-1")
                      + b'{"text": "ok three"}\n')
    res = read_feed(stray)
    assert len(res.items) == 3 and [(r.row, r.reason.split(" (")[0]) for r in res.rejects] == [(3, "not valid UTF-8")]


def test_empty_header_only_and_all_bad_feeds(tmp_path):
    from kgfusion.apps.finance.ingest import no_items_error

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        read_feed(empty)
    header = tmp_path / "header.csv"
    header.write_text("text,created_at\n")  # used to say "no text column 'text'; columns found: []"
    res = read_feed(header)
    assert res.items == [] and res.rejects == [] and res.columns["time"] == "created_at"
    assert "0 items scored, 0 rejected; the feed has no data rows" in str(no_items_error(header, res, None))
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n[1, 2]\n")  # no JSON object at all: rows rejected, not "no text column"
    res = read_feed(junk)
    assert res.items == [] and [r.row for r in res.rejects] == [1, 2]
    assert str(no_items_error(junk, res, "r.csv")).startswith("0 items scored, 2 rejected -> r.csv (first: ")


def test_huge_items_and_fields_are_rejects_or_one_line_errors(tmp_path):
    from kgfusion.apps.finance.ingest import MAX_ITEM_CHARS

    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"text": "profit rose " * (MAX_ITEM_CHARS // 10)}) + '\n{"text": "short"}\n')
    res = read_feed(big)
    assert [it.text for it in res.items] == ["short"]
    assert res.rejects[0].row == 1 and res.rejects[0].reason.startswith("text too long (119,999 characters")
    wide = tmp_path / "wide.csv"
    wide.write_text("text\n" + "x" * 200_000 + "\n")
    with pytest.raises(DataError, match=r"wide\.csv: CSV parse error at line 2 \(field larger than field limit"):
        read_feed(wide)
    long_header = tmp_path / "long_header.csv"
    long_header.write_text("a" * 100_000 + ",b\n1,2\n")
    with pytest.raises(DataError) as err:
        read_feed(long_header)
    assert len(str(err.value)) < 400 and "--text-col" in str(err.value)
