"""`kgfusion finance correct` and the finance corrections glue: corrections in the monitor DuckDB next to the
items, validated labels/topics, CSV import with rejects, export -> core reader. Keyword predictors, no model."""
from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from kgfusion.apps.finance.cli import group
from kgfusion.apps.finance.corrections import correct_item, import_corrections
from kgfusion.apps.finance.store import FinanceStore
from kgfusion.apps.model.corrections_cli import corrections as corrections_group
from kgfusion.core.data import read_text_classification
from kgfusion.core.errors import DataError
from kgfusion.core.lifecycle.corrections import CorrectionStore
from tests.apps.finance.conftest import KeywordTopicPredictor


@pytest.fixture
def db(monitor_factory, feed_path, tmp_path):
    path = tmp_path / "fin.duckdb"
    monitor_factory().monitor(feed_path, path)
    return path


@pytest.fixture
def topic_db(monitor_factory, topic_feed_path, tmp_path):
    path = tmp_path / "topics.duckdb"
    monitor_factory(KeywordTopicPredictor()).monitor(topic_feed_path, path)
    return path


def items(path, n=3) -> list[dict]:
    with FinanceStore(path, read_only=True) as store:
        return store.items(limit=n)[["id", "text", "label", "topic"]].to_dict("records")


def run(args, cmd=group):
    return CliRunner().invoke(cmd, args)


def one_line_error(res, *words):
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)  # a click error, not a crash
    lines = [ln for ln in res.output.strip().splitlines() if ln.startswith("Error")]
    assert len(lines) == 1, res.output
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_correct_an_item_then_again_newest_wins_on_export(db, tmp_path):
    first, second = items(db, 2)
    res = run(["correct", "--db", str(db), "--item", first["id"], "--label", "NEGATIVE", "--who", "ana"])
    assert res.exit_code == 0, res.output
    assert f"item {first['id']} sentiment {first['label']} -> negative (by ana" in res.output
    run(["correct", "--db", str(db), "--item", second["id"], "--label", "neutral", "--who", "ana"])
    res = run(["correct", "--db", str(db), "--item", first["id"], "--label", "positive", "--who", "bo", "--json"])
    assert json.loads(res.output)["corrections"][0]["new_value"] == "positive"
    assert items(db, 2) == [first, second]  # the model's predictions stay where they are
    with CorrectionStore(db, read_only=True) as store:
        stored = store.select("finance")
    assert [(c.item_id, c.new_value, c.who, c.old_value, c.model) for c in stored] == [
        (first["id"], "negative", "ana", first["label"], "finsent"),
        (second["id"], "neutral", "ana", second["label"], "finsent"),
        (first["id"], "positive", "bo", first["label"], "finsent")]
    out = tmp_path / "train.csv"
    res = run(["export", "--db", str(db), "--domain", "finance", "--field", "sentiment", "--out", str(out)],
              corrections_group)
    assert res.exit_code == 0 and res.output.startswith("2 rows from 2 corrected items"), res.output
    back = read_text_classification(out)
    assert sorted((e.text, e.label) for e in back.examples) == sorted(
        [(first["text"], "positive"), (second["text"], "neutral")])
    res = run(["list", "--db", str(db), "--latest", "--json"], corrections_group)
    assert json.loads(res.output)["total"] == 2


def test_topic_correction_uses_the_database_topics(topic_db, tmp_path):
    item = items(topic_db, 1)[0]
    [c] = correct_item(topic_db, item["id"], who="ana", topic="m&a | investments")
    assert (c.field, c.old_value, c.new_value) == ("topic", item["topic"], "M&A | Investments")
    res = run(["correct", "--db", str(topic_db), "--item", item["id"], "--topic", "Weather", "--who", "ana"])
    one_line_error(res, "topic 'Weather' is not allowed", "Earnings")
    out = tmp_path / "topics.jsonl"
    run(["export", "--db", str(topic_db), "--domain", "finance", "--field", "topic", "--out", str(out)],
        corrections_group)
    assert [(e.text, e.label) for e in read_text_classification(out).examples] == [(item["text"], "M&A | Investments")]


def test_labels_come_from_the_bundle(db, tmp_path):
    bundle = tmp_path / "finsent-x"
    bundle.mkdir()
    (bundle / "bundle.json").write_text(json.dumps({
        "format": "kgfusion-bundle", "version": 1, "task": "sequence", "method": "full", "base": "minilm",
        "labels": ["bearish", "bullish"], "max_length": 16, "files": {}, "name": "finsent-x",
        "created": "2026-01-01T00:00:00Z", "extra": {"version": 3}}))
    item = items(db, 1)[0]
    with pytest.raises(DataError, match="label 'negative' is not allowed; use one of bearish, bullish"):
        correct_item(db, item["id"], who="ana", label="negative", bundle=bundle)
    [c] = correct_item(db, item["id"], who="ana", label="Bullish", bundle=bundle)
    assert (c.new_value, c.model, c.model_version) == ("bullish", "finsent", "3")


def test_cli_errors_are_one_line(db, tmp_path):
    item = items(db, 1)[0]["id"]
    one_line_error(run(["correct", "--db", str(db), "--item", "nope", "--label", "negative", "--who", "a"]),
                   "item 'nope' is not in", str(db))
    one_line_error(run(["correct", "--db", str(db), "--item", item, "--label", "awful", "--who", "a"]),
                   "label 'awful' is not allowed", "negative, neutral, positive")
    one_line_error(run(["correct", "--db", str(db), "--item", item, "--label", "negative"]), "--who")
    one_line_error(run(["correct", "--db", str(db), "--item", item, "--label", "negative", "--who", " "]), "--who")
    one_line_error(run(["correct", "--db", str(db), "--item", item, "--who", "a"]), "--label")
    one_line_error(run(["correct", "--db", str(db), "--who", "a"]), "--item", "--csv")
    one_line_error(run(["correct", "--db", str(db), "--item", item, "--topic", "Earnings", "--who", "a"]), "no topics")
    missing = tmp_path / "missing.duckdb"
    one_line_error(run(["correct", "--db", str(missing), "--item", item, "--label", "negative", "--who", "a"]),
                   "database not found")
    assert not missing.exists()  # nothing created
    one_line_error(run(["export", "--db", str(db), "--domain", "finance", "--field", "sentiment", "--out",
                        str(tmp_path / "x.csv")], corrections_group), "no finance sentiment corrections")
    with CorrectionStore(db, read_only=True) as store:
        assert store.select() == []


def test_csv_import_rejects_bad_rows_and_keeps_the_good(db, tmp_path):
    a, b, c = (r["id"] for r in items(db, 3))
    path = tmp_path / "fixes.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerows([["id", "sentiment", "who"], [a, "negative", ""], ["ghost", "negative", ""], [b, "awful", ""],
                     [c, "Positive", "bo"], [b, "", ""]])
    res = run(["correct", "--db", str(db), "--csv", str(path), "--who", "ana"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("2 corrections of 2 items imported, 3 rows rejected -> ")
    with open(f"{path}.rejects.csv", encoding="utf-8", newline="") as fh:
        rejects = list(csv.DictReader(fh))
    assert [r["row"] for r in rejects] == ["3", "4", "6"]
    assert "ghost" in rejects[0]["reason"] and "awful" in rejects[1]["reason"] and "label" in rejects[2]["reason"]
    with CorrectionStore(db, read_only=True) as store:
        assert {(x.item_id, x.new_value, x.who) for x in store.select()} == {(a, "negative", "ana"), (c, "positive", "bo")}


def test_csv_import_file_level_errors(db, tmp_path):
    path = tmp_path / "fixes.csv"
    path.write_text("item,label\nx,negative\n", encoding="utf-8")
    one_line_error(run(["correct", "--db", str(db), "--csv", str(path), "--who", "ana"]),
                   "missing column(s) item_id or id")
    path.write_text("item_id,label\nghost,negative\n", encoding="utf-8")
    msg = one_line_error(run(["correct", "--db", str(db), "--csv", str(path), "--who", "ana"]),
                         "0 corrections imported, 1 rows rejected")
    assert "row 2" in msg and "ghost" in msg
    with pytest.raises(DataError, match="file not found"):
        import_corrections(db, tmp_path / "none.csv", who="ana")


@pytest.mark.parametrize("data, words", [
    (b"", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)), "binary"),
    (b"item_id,label\n", "no data rows"),
    ("item_id,label\ncaf\xe9,negative\n".encode("latin-1"), "not UTF-8 text"),
])
def test_bad_csv_files_are_one_line_errors(db, tmp_path, data, words):
    path = tmp_path / "fixes.csv"
    path.write_bytes(data)
    one_line_error(run(["correct", "--db", str(db), "--csv", str(path), "--who", "ana"]), str(path), words)
