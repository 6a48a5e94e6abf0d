from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from kgfusion.apps.finance.cli import group
from tests.apps.finance.conftest import DATA

KG = str(DATA / "mini_finance.ttl")


@pytest.fixture(scope="module")
def monitored(tiny_bundle, tmp_path_factory):
    db = tmp_path_factory.mktemp("cli") / "m.duckdb"
    res = CliRunner().invoke(group, ["monitor", str(DATA / "feed.jsonl"), "--db", str(db), "--bundle", str(tiny_bundle),
                                     "--kg", KG, "--backend", "fp32", "--min-volume", "3", "--json"])
    assert res.exit_code == 0, res.output
    return db, json.loads(res.output)


def test_monitor_reports_and_is_idempotent(monitored, tiny_bundle):
    db, summary = monitored
    assert summary["items"] == 168 and summary["new_items"] == 168 and summary["mentions"] >= 168
    res = CliRunner().invoke(group, ["monitor", str(DATA / "feed.jsonl"), "--db", str(db), "--bundle",
                                     str(tiny_bundle), "--kg", KG, "--backend", "int8", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "168 items (0 new, 168 already stored)" in res.output


def test_alerts_command_json_text_and_out(monitored, tmp_path):
    db, _ = monitored
    res = CliRunner().invoke(group, ["alerts", "--db", str(db), "--min-volume", "3", "--top", "2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["total"] >= 1 and len(out["alerts"]) <= 2
    assert {"entity", "period", "z", "volume", "negative_share", "evidence"} <= set(out["alerts"][0])
    csv_out = tmp_path / "alerts.csv"
    res = CliRunner().invoke(group, ["alerts", "--db", str(db), "--min-volume", "3", "--level", "company",
                                     "--out", str(csv_out)])
    assert res.exit_code == 0 and "alerts; top" in res.output
    assert set(pd.read_csv(csv_out)["level"]) <= {"company"}


def test_alerts_with_prices_runs_the_event_study(monitored, tmp_path):
    db, _ = monitored
    prices = tmp_path / "p.csv"
    days = pd.date_range("2014-01-01", "2014-02-10", freq="B")
    pd.DataFrame({"ticker": "AAPL", "Date": days.strftime("%Y-%m-%d"), "Adj Close": range(100, 100 + len(days))}
                 ).to_csv(prices, index=False)
    res = CliRunner().invoke(group, ["alerts", "--db", str(db), "--min-volume", "3", "--prices", str(prices),
                                     "--kg", KG, "--json"])
    assert res.exit_code == 0, res.output
    es = json.loads(res.output)["event_study"]
    if es["events"]:
        assert es["hit_rate_negative"] == 0.0 and "descriptive" in es["note"]


def test_score_writes_outputs_and_rejects(tiny_bundle, tmp_path):
    out = tmp_path / "scored.parquet"
    res = CliRunner().invoke(group, ["score", str(DATA / "feed_bad.csv"), "--text-col", "body", "--time-col", "when",
                                     "--id-col", "post_id", "--bundle", str(tiny_bundle), "--kg", KG,
                                     "--backend", "fp32", "--out", str(out), "--rejects", str(tmp_path / "r.csv"),
                                     "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)["summary"]
    assert summary["items"] == 4 and summary["rejected"] == 5
    frame = pd.read_parquet(out)
    assert len(frame) == 4 and {"label", "score", "evidence", "tickers"} <= set(frame.columns)
    assert frame["score"].between(-1, 1).all()
    assert len(pd.read_csv(tmp_path / "r.csv")) == 5
    res = CliRunner().invoke(group, ["score", str(DATA / "feed.jsonl"), "--bundle", str(tiny_bundle), "--kg", KG,
                                     "--backend", "fp32", "--limit", "5", "--out", str(tmp_path / "s.jsonl")])
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 5


def test_user_errors_are_one_line(tiny_bundle, tmp_path):
    res = CliRunner().invoke(group, ["score", str(DATA / "feed_bad.csv"), "--bundle", str(tiny_bundle), "--kg", KG])
    assert res.exit_code == 1 and "--text-col" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(group, ["monitor", str(DATA / "feed.jsonl"), "--db", str(tmp_path / "x.duckdb"),
                                     "--bundle", str(tmp_path / "nope")])
    assert res.exit_code == 1 and "finance train" in res.output
    res = CliRunner().invoke(group, ["alerts", "--db", str(DATA / "feed.jsonl")])
    assert res.exit_code == 1


def test_a_feed_of_only_bad_rows_writes_rejects_and_fails_in_one_line(tiny_bundle, tmp_path):
    """Used to end in KeyError: 'id' (FinanceMonitor.score on no items)."""
    feed = tmp_path / "feed.csv"
    feed.write_text('text,created_at\nprofit rose,not a date\nloss fell,yesterday-ish\n"unterminated,2014-01-02\n')
    common = ["--bundle", str(tiny_bundle), "--kg", KG, "--backend", "fp32"]
    res = CliRunner().invoke(group, ["score", str(feed), *common, "--out", str(tmp_path / "x.csv")])
    rejects = tmp_path / "x.csv.rejects.csv"
    assert res.exit_code == 1 and res.exception.__class__ is SystemExit, res.output
    assert res.output.startswith(f"Error: 0 items scored, 3 rejected -> {rejects} (first: {feed} row 2: unparseable")
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "x.csv").exists()
    assert pd.read_csv(rejects)["row"].tolist() == [2, 3, 4]
    db = tmp_path / "m.duckdb"
    res = CliRunner().invoke(group, ["monitor", str(feed), "--db", str(db), *common, "--quiet"])
    assert res.exit_code == 1 and f"0 items scored, 3 rejected -> {db}.rejects.csv" in res.output, res.output
    assert not db.exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for cmd in (["score", str(empty)], ["monitor", str(empty), "--db", str(db)]):
        res = CliRunner().invoke(group, [*cmd, *common])
        assert res.exit_code == 1 and "the file is empty" in res.output and "Traceback" not in res.output


def test_encoding_option_reads_a_latin1_feed(tiny_bundle, tmp_path):
    feed = tmp_path / "latin.csv"
    feed.write_bytes("text\nCaf\xe9 chain profit rose\n".encode("latin-1"))
    common = ["--bundle", str(tiny_bundle), "--kg", KG, "--backend", "fp32", "--json"]
    res = CliRunner().invoke(group, ["score", str(feed), *common])
    assert res.exit_code == 1
    assert f"{feed} is not UTF-8 text (invalid byte at offset 8, line 2); convert it or pass --encoding" in res.output
    res = CliRunner().invoke(group, ["score", str(feed), "--encoding", "latin-1", *common])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["items"][0]["text"] == "Caf\xe9 chain profit rose"
