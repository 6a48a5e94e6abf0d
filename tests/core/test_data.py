from __future__ import annotations

import gzip
import json

import pytest

from kgfusion.core.data import (
    TextExample,
    deduplicate,
    read_conll,
    read_phrasebank,
    read_text_classification,
    split_stratified,
    write_rejects,
)
from kgfusion.core.errors import DataError


def test_phrasebank_latin1_and_rejects(tmp_path):
    p = tmp_path / "pb.txt"
    p.write_bytes("Caf\xe9 sales rose .@positive\n\nno label here\nLoss widened@negative\n".encode("latin-1"))
    res = read_phrasebank(p)
    assert [e.text for e in res.examples] == ["Café sales rose .", "Loss widened"]
    assert [e.label for e in res.examples] == ["positive", "negative"]
    assert [(r.row, r.reason) for r in res.rejects] == [(2, "empty line"), (3, "expected 'sentence@label'")]


def test_phrasebank_keeps_at_signs_in_text(tmp_path):
    p = tmp_path / "pb.txt"
    p.write_text("mail me @ home@neutral\n", encoding="latin-1")
    assert read_phrasebank(p).examples[0].text == "mail me @ home"


def test_csv_missing_column_names_file_and_fix(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("sentence,label\nhello,positive\n")
    with pytest.raises(DataError, match=r"d\.csv: missing column\(s\) \['text'\].*--text-col"):
        read_text_classification(p)


def test_csv_rows_accounted_for(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label\nhello,positive\n,negative\nworld,\nok,neutral\n")
    res = read_text_classification(p)
    assert len(res.examples) + len(res.rejects) == 4
    assert {r.row for r in res.rejects} == {3, 4}


def test_jsonl_gz_and_label_map(tmp_path):
    p = tmp_path / "d.jsonl.gz"
    lines = [json.dumps({"text": "up", "label": 1}), "{broken", json.dumps({"text": "down", "label": 0}),
             json.dumps({"text": "odd", "label": 7})]
    with gzip.open(p, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    res = read_text_classification(p, label_map={"0": "negative", "1": "positive"})
    assert [(e.text, e.label) for e in res.examples] == [("up", "positive"), ("down", "negative")]
    reasons = sorted(r.reason for r in res.rejects)
    assert reasons[0].startswith("invalid JSON") and "not in label map" in reasons[1]


def test_non_utf8_csv_is_a_clear_error(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(b"text,label\ncaf\xe9,positive\n")
    with pytest.raises(DataError) as err:
        read_text_classification(p)
    assert str(err.value) == f"{p} is not UTF-8 text (invalid byte at offset 14, line 2); convert it to UTF-8"
    assert read_text_classification(p, encoding="latin-1").examples[0].text == "caf\xe9"


def test_conll_reads_sentences_and_rejects_bad_iob(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("Breast\tB-Disease\ncancer\tI-Disease\n.\tO\n\nbad\tI-Disease\nstart\tO\n\nok\tO\n")
    res = read_conll(p)
    assert [e.tokens for e in res.examples] == [("Breast", "cancer", "."), ("ok",)]
    assert len(res.rejects) == 1 and res.rejects[0].row == 5 and "must continue" in res.rejects[0].reason


def test_deduplicate_reports_conflicts():
    exs = [TextExample("A b", "positive", 1), TextExample("a  B", "positive", 2),
           TextExample("c", "neutral", 3), TextExample("C", "negative", 4)]
    kept, report, rejects = deduplicate(exs)
    assert [e.row for e in kept] == [1]
    assert report.exact_duplicates == 1 and report.conflicts == [("c", ["negative", "neutral"])]
    assert sorted(r.row for r in rejects) == [2, 3, 4]


def test_split_is_seeded_stratified_and_disjoint(sentiment_examples):
    a = split_stratified(sentiment_examples, 0.2, 0.2, seed=1)
    b = split_stratified(sentiment_examples, 0.2, 0.2, seed=1)
    c = split_stratified(sentiment_examples, 0.2, 0.2, seed=2)
    assert a.dev == b.dev and a.dev != c.dev
    rows = [e.row for part in (a.train, a.dev, a.test) for e in part]
    assert sorted(rows) == sorted(e.row for e in sentiment_examples)
    for part in (a.dev, a.test):
        assert {lab: sum(e.label == lab for e in part) for lab in ("positive", "negative", "neutral")} == \
            {"positive": 6, "negative": 6, "neutral": 6}


def test_split_rejects_bad_fractions(sentiment_examples):
    with pytest.raises(DataError, match="sum below 1"):
        split_stratified(sentiment_examples, 0.6, 0.5)


def test_write_rejects_atomic(tmp_path):
    from kgfusion.core.data import Reject

    out = write_rejects([Reject("f.csv", 3, "empty text")], tmp_path / "r" / "rejects.csv")
    assert out.read_text().splitlines() == ["source,row,reason,raw", "f.csv,3,empty text,"]
    assert [p.name for p in out.parent.iterdir()] == ["rejects.csv"]


def test_binary_empty_and_garbage_header_files_say_what_they_are(tmp_path):
    """Issue 11: binary input was read as rows (or a header) of garbage; say what the file is instead."""

    xlsx = tmp_path / "sheet.csv"
    xlsx.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(200)))
    with pytest.raises(DataError, match=r"sheet\.csv is binary, not text \(it looks like a ZIP archive"):
        read_text_classification(xlsx)
    pb = tmp_path / "pb.txt"  # latin-1 decodes any byte: only the binary check can catch this one
    pb.write_bytes(b"\x00\x01\x02@positive\n")
    with pytest.raises(DataError, match=r"pb\.txt is binary, not text \(NUL byte at offset 0\)"):
        read_text_classification(pb)
    conll = tmp_path / "c.tsv"
    conll.write_bytes(b"fever\tB-Disease\n\xff\xfe\tO\n")
    with pytest.raises(DataError, match=r"c\.tsv is not UTF-8 text \(invalid byte at offset 16, line 2\)"):
        read_conll(conll)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty; expected a header row"):
        read_text_classification(empty)
    wide = tmp_path / "wide.csv"
    wide.write_text("x" * 50_000 + ",label\n")
    with pytest.raises(DataError) as err:
        read_text_classification(wide)
    assert "missing column(s) ['text']" in str(err.value) and len(str(err.value)) < 300
    huge = tmp_path / "huge.csv"
    huge.write_text("text,label\n" + "y" * 200_000 + ",positive\n")
    with pytest.raises(DataError, match=r"huge\.csv: CSV parse error at line 2 \(field larger than field limit"):
        read_text_classification(huge)
