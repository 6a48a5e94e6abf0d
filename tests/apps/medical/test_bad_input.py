"""Issue 11 for the medical app: bad notes are explained, every note is accounted for, and
`medical evaluate --file` names its scores after what was scored."""
from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from kgfusion.apps.medical.cli import group
from kgfusion.apps.medical.readers import decode_bytes, looks_binary, read_notes
from kgfusion.core.errors import DataError
from tests.apps.medical.conftest import KeywordPredictor, keyword_encoder


def run_extract(med_data_dir, args, monkeypatch):
    monkeypatch.setenv("KGFUSION_DATA", str(med_data_dir))
    obj = {"build_kwargs": {"data_dir": med_data_dir, "predictor": KeywordPredictor(), "encoder": keyword_encoder()}}
    return CliRunner().invoke(group, ["extract", *args], obj=obj)


def test_explicit_encoding_decodes_or_rejects_with_the_offset(tmp_path):
    note = tmp_path / "n.txt"
    note.write_bytes("Caf\xe9 au lait spots, fever.".encode("latin-1"))
    assert read_notes(note).notes[0].encoding == "cp1252"  # auto: guessed, with a warning
    got = read_notes(note, encoding="latin-1").notes[0]
    assert got.text == "Caf\xe9 au lait spots, fever." and got.encoding == "latin-1" and not got.warnings
    (reject,) = read_notes(note, encoding="utf-8").rejects
    assert reject.reason == "not UTF-8 text (invalid byte at offset 3, line 1); convert it or pass --encoding"
    with pytest.raises(DataError, match="unknown encoding 'nope'"):
        read_notes(note, encoding="nope")


def test_utf16_notes_are_text_and_binary_files_are_named(tmp_path):
    (tmp_path / "windows.txt").write_bytes("Patient denies fever.".encode("utf-16"))
    (tmp_path / "scan.txt").write_bytes(b"%PDF-1.7\n\x00\x01\x02 binary")
    read = read_notes(tmp_path)
    assert [(n.note_id, n.text, n.encoding) for n in read.notes] == [("windows", "Patient denies fever.", "utf-16")]
    assert [r.reason for r in read.rejects] == ["binary file (a PDF document); not a text note"]
    assert not looks_binary("x".encode("utf-16")) and decode_bytes("x".encode("utf-16"))[:2] == ("x", "utf-16")


def test_a_bad_table_in_a_folder_is_a_reject_not_the_end_of_the_run(tmp_path):
    (tmp_path / "good.txt").write_text("Patient has fever.")
    (tmp_path / "no_note_column.csv").write_text("a,b\n1,2\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "huge.csv").write_text("text\n" + "x" * 200_000 + "\n")
    read = read_notes(tmp_path)
    assert [n.note_id for n in read.notes] == ["good"]
    reasons = {r.source.rsplit("/", 1)[-1]: r.reason for r in read.rejects}
    assert reasons["no_note_column.csv"].startswith("no note column among ['a', 'b']")
    assert reasons["empty.csv"].startswith("the file is empty")
    assert reasons["huge.csv"].startswith("CSV parse error at line 2")


def test_extract_with_no_usable_note_writes_rejects_and_fails_in_one_line(med_data_dir, tmp_path, monkeypatch):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (notes / "blank.txt").write_text("  \n")
    out = tmp_path / "res.jsonl"
    res = run_extract(med_data_dir, [str(notes), "--out", str(out)], monkeypatch)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    rejects = tmp_path / "res.rejects.csv"
    assert res.output == (f"Error: 0 notes extracted, 2 rejected -> {rejects} "
                          f"(first: {notes / 'blank.txt'}: empty note)\n")
    assert [r["reason"] for r in csv.DictReader(rejects.open())] == [
        "empty note", "binary file (a PNG image); not a text note"]
    assert not out.exists()
    header_only = tmp_path / "h.csv"
    header_only.write_text("note_id,text\n")
    res = run_extract(med_data_dir, [str(header_only), "--out", str(out)], monkeypatch)
    assert res.exit_code == 1 and "0 notes extracted, 0 rejected; the file has no data rows" in res.output


def test_extract_encoding_option(med_data_dir, tmp_path, monkeypatch):
    note = tmp_path / "n.csv"
    note.write_bytes("note_id,text\nn1,Fi\xe8vre: fever and chest pain.\n".encode("latin-1"))
    out = tmp_path / "o.jsonl"
    res = run_extract(med_data_dir, [str(note), "--out", str(out), "--encoding", "latin-1", "--json"], monkeypatch)
    assert res.exit_code == 0, res.output
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert line["text"] == "Fi\xe8vre: fever and chest pain." and line["encoding"] == "latin-1"
    res = run_extract(med_data_dir, [str(note), "--out", str(out), "--encoding", "utf-8"], monkeypatch)
    assert res.exit_code == 1 and "not UTF-8 text (invalid byte at offset 18, line 2)" in res.output


def test_evaluate_file_names_scores_after_what_was_scored(tiny_ner_bundle, tmp_path):
    iob = tmp_path / "mine.tsv"
    iob.write_text("aspirin\tB-Chemical\ncaused\tO\nrash\tB-Disease\n\nno\tO\nfever\tB-Disease\n")
    res = CliRunner().invoke(group, ["evaluate", str(tiny_ner_bundle), "--file", str(iob), "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.output)
    assert not [k for k in m if k.startswith("devel")]  # used to be devel_f1, devel_precision, ...
    assert {"f1", "precision", "recall", "chemical_f1", "disease_f1"} <= set(m) and m["file"] == str(iob)
    assert "published_test_f1" not in m  # a published devel/test anchor says nothing about this file
    text = CliRunner().invoke(group, ["evaluate", str(tiny_ner_bundle), "--file", str(iob)]).output
    assert f"on {iob} (fp32): P " in text and "published" not in text
    bad = tmp_path / "bad.tsv"
    bad.write_text("aspirin\tI-Chemical\n")
    res = CliRunner().invoke(group, ["evaluate", str(tiny_ner_bundle), "--file", str(bad)])
    assert res.exit_code == 1 and "no sentences read (1 rejected); first reason: line 1: tag 'I-Chemical'" in res.output
