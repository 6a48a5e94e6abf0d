"""core.lifecycle corrections: append-only store, newest wins, CSV import with rejects, export that the
core readers read back with nothing lost. DuckDB files in tmp_path; no model."""
from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta

import pytest

from kgfusion.core.data import read_conll, read_text_classification
from kgfusion.core.errors import DataError
from kgfusion.core.lifecycle.correction_export import Span, bio_sentences, export, text_examples
from kgfusion.core.lifecycle.corrections import (
    Correction,
    CorrectionError,
    CorrectionStore,
    RowRejected,
    import_csv,
    span_value,
)

NOTE = "Patient denies fever.\nHistory of breast cancer, on metformin. Mother had heart failure."


def fin(item: str, label: str, text: str, who: str = "ana", old: str = "neutral", **kw) -> Correction:
    return Correction("finance", item, "sentiment", label, text, who, old_value=old, model="finsent",
                      model_version="v1", **kw)


def span_of(phrase: str, text: str = NOTE) -> tuple[int, int]:
    start = text.index(phrase)
    return start, start + len(phrase)


def missed(phrase: str, label: str, who: str = "dr b") -> Correction:
    s, e = span_of(phrase)
    return Correction("medical", "n1", "missed_mention", span_value(s, e, label, NOTE), NOTE, who, span=f"{s}:{e}")


def wrong(phrase: str, label: str) -> Correction:
    s, e = span_of(phrase)
    return Correction("medical", "n1", "mention", None, NOTE, "dr b", old_value=span_value(s, e, label, NOTE),
                      span=f"{s}:{e}")


@pytest.fixture
def store(tmp_path):
    with CorrectionStore(tmp_path / "c.duckdb") as s:
        yield s


def test_sentiment_round_trip_newest_wins_and_nothing_is_overwritten(store, tmp_path):
    store.add(fin("i1", "positive", "Profit rose, a line, with \"quotes\"\nand a break"))
    store.add(fin("i2", "negative", "Shares fell"))
    store.add(fin("i1", "negative", "Profit rose, a line, with \"quotes\"\nand a break", who="bo"))  # newer wins
    assert len(store.select("finance")) == 3  # the first correction of i1 is still there
    first = store.select("finance", item_id="i1")[0]
    assert (first.new_value, first.who, first.old_value) == ("positive", "ana", "neutral")
    for suffix in (".csv", ".tsv", ".jsonl"):
        out = tmp_path / f"train{suffix}"
        result = export(store, "finance", "sentiment", out)
        assert result.rows == 2 and result.labels == {"negative": 2}
        back = read_text_classification(out)
        assert not back.rejects
        assert sorted((e.text, e.label) for e in back.examples) == sorted(
            (e.text, e.label) for e in text_examples(store, "finance", "sentiment"))
        assert {e.label for e in back.examples} == {"negative"}
    with open(tmp_path / "train.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["item_id"]: r["who"] for r in rows} == {"i1": "bo", "i2": "ana"}


def test_topic_export_only_topic_rows(store, tmp_path):
    store.add(fin("i1", "negative", "text one"))
    store.add(Correction("finance", "i1", "topic", "Earnings", "text one", "ana", old_value="Markets"))
    result = export(store, "finance", "topic", tmp_path / "t.jsonl")
    back = read_text_classification(tmp_path / "t.jsonl")
    assert result.rows == 1 and [(e.text, e.label) for e in back.examples] == [("text one", "Earnings")]


def test_created_orders_newest_before_the_id(store):
    now = datetime(2026, 1, 2)
    store.add(fin("i1", "negative", "t", created=now))
    store.add(fin("i1", "positive", "t", created=now - timedelta(days=1)))  # imported, but older
    assert [c.new_value for c in store.latest("finance")] == ["negative"]


@pytest.mark.parametrize("bad, message", [
    (dict(who="  "), "--who"),
    (dict(field="mention"), "not a finance field"),
    (dict(text=" "), "text it corrects is empty"),
    (dict(new_value=""), "new value is empty"),
    (dict(domain="legal"), "domain"),
])
def test_bad_corrections_are_refused_with_the_reason(store, bad, message):
    c = fin("i1", "negative", "t")
    with pytest.raises(CorrectionError, match=message):
        store.add(Correction(**(c.__dict__ | bad)))
    assert store.select() == []


def test_span_checks(store):
    with pytest.raises(CorrectionError, match="past the text"):
        store.add(Correction("medical", "n1", "missed_mention", "{}", "short", "a", span="2:99"))
    with pytest.raises(CorrectionError, match="START:END"):
        store.add(Correction("medical", "n1", "missed_mention", "{}", "short", "a", span="x"))
    with pytest.raises(CorrectionError, match="needs a span"):
        store.add(Correction("medical", "n1", "concept", "DOID:1", "short", "a"))


def test_ner_round_trip_prediction_minus_wrong_plus_missed(store, tmp_path):
    fever, cancer, heart = span_of("fever"), span_of("breast cancer"), span_of("heart failure")
    prediction = {"mentions": [{"start": fever[0], "end": fever[1], "label": "Disease"},
                               {"start": cancer[0], "end": cancer[1], "label": "Disease"},
                               {"start": heart[0], "end": heart[1], "label": "Chemical"}]}
    assert store.record_prediction("medical", "n1", NOTE, prediction, "medical-ner", "v1")
    assert not store.record_prediction("medical", "n1", NOTE, {"mentions": []})  # the first snapshot stays
    store.add_many([wrong("heart failure", "Chemical"), missed("metformin", "Chemical")])
    store.add(missed("heart failure", "Disease"))  # the right label, after marking the wrong one
    store.add(wrong("fever", "Disease"))  # negated, so not a mention: then changed back
    store.add(missed("fever", "Disease", who="dr c"))
    result = export(store, "medical", "ner", tmp_path / "ner.conll")
    assert result.items == 1 and result.without_prediction == 0 and not result.skipped
    back = read_conll(tmp_path / "ner.conll")
    assert not back.rejects and len(back.examples) == result.rows == 3  # three sentences
    entities = [(" ".join(t for t, g in zip(ex.tokens, ex.tags) if g != "O"), ex.tags) for ex in back.examples]
    got = sorted(_entities(ex) for ex in back.examples)
    assert sorted(sum(got, [])) == sorted([("fever", "Disease"), ("breast cancer", "Disease"),
                                           ("metformin", "Chemical"), ("heart failure", "Disease")])
    assert result.labels == {"Chemical": 1, "Disease": 3} and entities
    assert store.prediction("medical", "n1", NOTE) == prediction  # the original prediction is untouched


def _entities(ex) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for tok, tag in zip(ex.tokens, ex.tags):
        if tag.startswith("B-"):
            out.append((tok, tag[2:]))
        elif tag.startswith("I-"):
            out[-1] = (out[-1][0] + " " + tok, out[-1][1])
    return out


def test_ner_without_prediction_and_overlaps_are_reported(store, tmp_path):
    store.add(missed("breast cancer", "Disease"))
    s, e = span_of("cancer")
    store.add(Correction("medical", "n1", "missed_mention", span_value(s, e, "Disease", NOTE), NOTE, "x",
                         span=f"{s}:{e}"))  # newer, overlapping: it wins
    result = export(store, "medical", "ner", tmp_path / "ner.tsv")
    assert result.without_prediction == 1 and len(result.skipped) == 1 and "overlaps" in result.skipped[0]
    back = read_conll(tmp_path / "ner.tsv")
    assert sum((_entities(ex) for ex in back.examples), []) == [("cancer", "Disease")]


def test_bio_cuts_tokens_at_span_boundaries():
    text = "pre-eclampsia,HbA1c"
    [ex] = bio_sentences(text, [Span(4, 13, "Disease", (1, 0.0, 1))])
    assert ex.tokens == ("pre", "-", "eclampsia", ",", "HbA1c") and ex.tags[2] == "B-Disease"
    [ex] = bio_sentences("abcdef", [Span(0, 3, "Disease", (1, 0.0, 1)), Span(3, 6, "Disease", (1, 0.0, 2))])
    assert ex.tokens == ("abc", "def") and ex.tags == ("B-Disease", "B-Disease")


def test_export_errors_are_one_line(store, tmp_path):
    with pytest.raises(DataError, match="no finance sentiment corrections"):
        export(store, "finance", "sentiment", tmp_path / "x.csv")
    store.add(fin("i1", "negative", "t"))
    with pytest.raises(DataError, match="use one of"):
        export(store, "finance", "sentiment", tmp_path / "x.parquet")
    with pytest.raises(DataError, match="not exported for finance"):
        export(store, "finance", "ner", tmp_path / "x.conll")
    assert not (tmp_path / "x.csv").exists()


def _rows(row: dict[str, str], line: int) -> list[Correction]:
    if row["label"] not in ("negative", "neutral", "positive"):
        raise RowRejected(f"label {row['label']!r} is not negative, neutral or positive")
    return [fin(row["item_id"], row["label"], "text of " + row["item_id"], who=row.get("who") or "ana")]


def test_csv_import_rejects_bad_rows_with_a_reason(store, tmp_path):
    path = tmp_path / "fix.csv"
    path.write_text("item_id,label,who\ni1,negative,\ni2,awful,\n\ni3,positive,bo,extra\ni4,neutral, \n",
                    encoding="utf-8")
    result = import_csv(store, path, _rows, required=("item_id", "label"))
    assert [c.item_id for c in result.added] == ["i1", "i4"] and result.rows == 4
    with open(tmp_path / "fix.csv.rejects.csv", encoding="utf-8", newline="") as fh:
        rejects = list(csv.DictReader(fh))
    assert [(r["row"], r["reason"].split()[0]) for r in rejects] == [("3", "label"), ("5", "4")]
    assert "awful" in rejects[0]["reason"] and "header has 3" in rejects[1]["reason"]
    assert all(c.source.startswith("csv:fix.csv:") for c in store.select())


def test_csv_import_file_errors(store, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,sentiment\ni1,negative\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"missing column\(s\).*found"):
        import_csv(store, path, _rows, required=("item_id", "label"))
    path.write_text("item_id,label\ni1,awful\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"0 corrections imported, 1 rows rejected -> .*first: row 2"):
        import_csv(store, path, _rows, required=("item_id", "label"))
    path.write_bytes(b"\x00\x01\x02 binary")
    with pytest.raises(DataError):
        import_csv(store, path, _rows, required=("item_id", "label"))
    assert store.select() == []


def test_read_only_store_without_tables_reads_empty(tmp_path):
    import duckdb

    duckdb.connect(str(tmp_path / "other.duckdb")).close()
    with CorrectionStore(tmp_path / "other.duckdb", read_only=True) as s:
        assert s.select() == [] and s.counts() == {}
    with pytest.raises(DataError, match="not found"):
        CorrectionStore(tmp_path / "missing.duckdb", read_only=True)
    assert json.loads(span_value(0, 3, "Disease", "abc def")) == {"end": 3, "label": "Disease", "start": 0,
                                                                  "text": "abc"}
