"""kgfusion.apps.medical.demo: the demo summary over a folder of notes (tiny graph, keyword model, hashing linking)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kgfusion.apps.medical.demo import demo_backend, demo_summary, format_summary, pick_examples
from kgfusion.apps.medical.readers import NoteInput
from kgfusion.core.errors import DataError
from tests.apps.medical.conftest import DATA, KeywordPredictor


@pytest.fixture
def notes_dir(tmp_path: Path) -> Path:
    d = tmp_path / "notes"
    d.mkdir()
    shutil.copyfile(DATA / "note.txt", d / "a.txt")
    (d / "b.txt").write_text("Review of Systems:\nFever: no\nChest pain: yes\n\nFather with heart failure.\n",
                             encoding="utf-8")
    (d / "c.txt").write_text("   \n", encoding="utf-8")  # empty: a reject, not a crash
    return d


def test_demo_summary_counts_and_examples(notes_dir, med_data_dir):
    s = demo_summary(notes_dir, quick=True, data_dir=med_data_dir, predictor=KeywordPredictor())
    assert s["notes"] == 2 and s["rejects"] == 1
    assert s["link_encoder"] == "hashing"
    assert s["mentions"] == sum(s["by_label"].values()) > 0
    assert set(s["by_label"]) <= {"Disease", "Chemical"} and s["by_label"]["Chemical"] >= 2
    assert s["by_attribute"]["negated"] >= 3  # chest pain (a), pneumonia (a), fever (b: "Fever: no")
    assert s["by_attribute"]["family"] >= 2 and s["by_attribute"]["historical"] >= 1
    assert 0 < s["asserted"] < s["mentions"] and 0 < s["linked"] <= s["mentions"]
    assert 0 < s["extract_seconds"] <= s["seconds"] and s["notes_per_s"] > 0
    assert s["examples"] and len(s["examples"]) <= 7
    for ex in s["examples"]:
        assert ex["concept"] is not None and ex["concept"]["curie"]
        assert ex["note_id"] in {"a", "b"} and ex["label"] in {"Disease", "Chemical"}
    attrs = {a for ex in s["examples"] for a in ex["attributes"]}
    assert {"negated", "family"} <= attrs
    lines = format_summary(s)
    assert lines[0].startswith("2 notes") and any("->" in line for line in lines[3:])


def test_demo_summary_rejects_an_empty_folder(tmp_path, med_data_dir):
    d = tmp_path / "empty"
    d.mkdir()
    (d / "x.txt").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no readable notes"):
        demo_summary(d, quick=True, data_dir=med_data_dir, predictor=KeywordPredictor())


def test_pick_examples_without_links_is_empty(make_extractor):
    ex = make_extractor(link=False)
    (res,) = ex.extract_notes([NoteInput("n", "No fever.")])
    assert pick_examples([("n", m) for m in res.mentions]) == []


def test_demo_backend_prefers_onnx(tmp_path):
    assert demo_backend(tmp_path) == "int8"
    (tmp_path / "model.int8.onnx").write_bytes(b"x")
    assert demo_backend(tmp_path) == "onnx-int8"
