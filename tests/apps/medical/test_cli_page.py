"""`kgfusion medical` commands (CliRunner on the group) and the Streamlit page (AppTest)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kgfusion.apps.medical.cli import group
from tests.apps.medical.conftest import KeywordPredictor, keyword_encoder
from tests.apps.medical.test_extract import NOTE
from tests.apps.ui.markdown import shown

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "medical" / "page.py")


@pytest.fixture
def notes_dir(tmp_path):
    d = tmp_path / "notes"
    d.mkdir()
    (d / "n1.txt").write_text(NOTE, encoding="utf-8")
    (d / "n2.txt").write_bytes("Patient has fever; caf\xe9.".encode("cp1252"))
    (d / "empty.txt").write_text("")
    (d / "image.txt").write_bytes(b"\x00\x01\x02binary")
    return d


def run_extract(med_data_dir, args, monkeypatch):
    monkeypatch.setenv("KGFUSION_DATA", str(med_data_dir))
    obj = {"build_kwargs": {"data_dir": med_data_dir, "predictor": KeywordPredictor(), "encoder": keyword_encoder()}}
    return CliRunner().invoke(group, ["extract", *args], obj=obj, catch_exceptions=False)


def test_extract_writes_all_outputs_and_rejects(med_data_dir, notes_dir, tmp_path, monkeypatch):
    out = tmp_path / "res.jsonl"
    res = run_extract(med_data_dir, [str(notes_dir), "--out", str(out), "--csv", str(tmp_path / "m.csv"),
                                     "--fhir", str(tmp_path / "b.json"), "--json"], monkeypatch)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["notes"] == 2 and summary["rejected"] == 2 and summary["mentions"] > 10
    assert summary["attributes"]["negated"] >= 2 and summary["by_label"]["Chemical"] >= 2
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["note_id"] for x in lines] == ["n1", "n2"]
    assert lines[1]["encoding"] == "cp1252" and lines[1]["warnings"]
    for note in lines:
        for m in note["mentions"]:
            assert note["text"][m["start"]:m["end"]] == m["text"]
    rejects = list(csv.DictReader((tmp_path / "res.rejects.csv").open()))
    assert sorted(Path(r["source"]).name for r in rejects) == ["empty.txt", "image.txt"]
    assert len(list(csv.DictReader((tmp_path / "m.csv").open()))) == summary["mentions"]
    assert json.loads((tmp_path / "b.json").read_text())["resourceType"] == "Bundle"


def test_extract_policy_text_output_and_oversize(med_data_dir, tmp_path, monkeypatch):
    note = tmp_path / "one.txt"
    note.write_text("History of chronic kidney disease. " * 60)
    res = run_extract(med_data_dir, [str(note), "--out", str(tmp_path / "o.jsonl"), "--policy", "prefer_model",
                                     "--max-chars", "1000", "--oversize", "reject",
                                     "--rejects", str(tmp_path / "rj.csv")], monkeypatch)
    assert res.exit_code == 0 and "1 rejected" in res.output and "max_chars" in (tmp_path / "rj.csv").read_text()
    res = run_extract(med_data_dir, [str(note), "--out", str(tmp_path / "o.jsonl"), "--policy", "prefer_model"],
                      monkeypatch)
    assert res.exit_code == 0 and "wrote jsonl" in res.output
    texts = {m["text"] for m in json.loads((tmp_path / "o.jsonl").read_text())["mentions"]}
    assert texts == {"kidney disease"}


def test_cli_errors(med_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KGFUSION_DATA", str(med_data_dir))
    runner = CliRunner()
    res = runner.invoke(group, ["extract", str(tmp_path / "nope"), "--out", "x.jsonl"])
    assert res.exit_code != 0 and "does not exist" in res.output
    (tmp_path / "n.txt").write_text("fever")
    res = runner.invoke(group, ["extract", str(tmp_path / "n.txt"), "--out", str(tmp_path / "o.jsonl"),
                                "--bundle", "no-such-bundle"])
    assert res.exit_code == 1 and "no-such-bundle" in res.output and "kgfusion medical train" in res.output
    res = runner.invoke(group, ["extract", str(tmp_path / "n.txt"), "--out", "o.jsonl", "--policy", "bogus"])
    assert res.exit_code == 2
    res = runner.invoke(group, ["evaluate", "no-such-bundle"])
    assert res.exit_code == 1 and "not found" in res.output


def visible_text(body: str) -> str:
    """What a person reads in the highlighted note: text without tags and label badges, unescaped."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<sub\b.*?</sub>", "", body)))


def test_page_extracts_and_renders(tiny_ner_bundle, med_data_dir, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "example.txt").write_text(NOTE)
    monkeypatch.setenv("KGFUSION_DATA", str(med_data_dir))
    monkeypatch.setenv("KGFUSION_MEDICAL_NOTES", str(notes))
    monkeypatch.setenv("KGFUSION_MEDICAL_BUNDLE", str(tiny_ner_bundle))
    monkeypatch.setenv("KGFUSION_MEDICAL_LINK_ENCODER", "hashing")
    at = AppTest.from_file(PAGE, default_timeout=90).run()
    assert not at.exception
    at.sidebar.selectbox[0].set_value("fp32").run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    note = next(h.value for h in at.html if "kgf-text" in h.value)  # the note via st.html, not Markdown
    assert "<mark" in note and "line-through" in note and "font-style:italic" in note
    assert visible_text(note) == NOTE  # every line, blank lines included, with no markup showing
    assert not any("<mark" in m.value for m in at.markdown)
    assert int(at.metric[0].value) >= 8 and int(at.metric[2].value) >= 2
    assert len(at.expander) == int(at.metric[0].value)
    table = at.dataframe[-1].value
    assert {"text", "label", "negated", "concept_curie"} <= set(table.columns)
    assert "CKD" in set(table["text"]) and "DOID:784" in set(table["concept_curie"])
    at.radio[0].set_value("Paste").run()
    assert not at.exception and "medical_result" not in at.session_state

    # A pasted note with Markdown/LaTeX/HTML characters shows exactly as written.
    tricky = "Copay $5 and $10 for <b>aspirin</b>; *no* _fever_.\n\n    # Plan: 1. CKD $x$"
    at.text_area[0].input(tricky).run()
    at.button[0].click().run()
    assert not at.exception
    note = next(h.value for h in at.html if "kgf-text" in h.value)
    assert visible_text(note) == tricky and "&lt;" in note and "<b>" not in note  # (spans come from a random model)
    assert not at.get("latex")
    for head in (shown(e.label) for e in at.expander):
        assert head.split(" — ")[0] in tricky  # expander labels show the mention text literally


def test_page_reports_a_missing_bundle(med_data_dir, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("KGFUSION_DATA", str(med_data_dir))
    monkeypatch.setenv("KGFUSION_MEDICAL_NOTES", str(tmp_path))
    monkeypatch.setenv("KGFUSION_MEDICAL_BUNDLE", "missing-bundle")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio[0].set_value("Paste").run()
    at.text_area[0].input("Patient denies fever.").run()
    at.button[0].click().run()
    assert not at.exception and "missing-bundle" in shown(at.error[0].value)
