"""The shipped bundle and the real MiniLM linker on the sample notes (slow: loads real models)."""
from __future__ import annotations

from pathlib import Path

import pytest

from kgfusion.apps.common import repo_data_dir

BUNDLE = repo_data_dir() / "models" / "medical-ner-bc5cdr"


@pytest.mark.slow
def test_shipped_model_on_sample_notes():
    from kgfusion.apps.medical.config import MedicalConfig
    from kgfusion.apps.medical.extract import build_extractor
    from kgfusion.apps.medical.readers import read_notes

    assert (BUNDLE / "bundle.json").is_file(), "train it: kgfusion medical train"
    notes = read_notes(repo_data_dir() / "notes")
    assert len(notes.notes) >= 8 and not notes.rejects
    ex = build_extractor(MedicalConfig(backend="onnx-int8"))  # the bundle ships its ONNX model only
    results, rejects = ex.extract_many(notes.notes)
    assert not rejects
    mentions = [m for r in results for m in r.mentions]
    for r in results:
        for m in r.mentions:
            assert r.text[m.start:m.end] == m.text
    assert any("model" in m.sources for m in mentions)
    assert {m.label for m in mentions} == {"Disease", "Chemical"}
    linked = [m for m in mentions if m.concept is not None]
    assert len(linked) / len(mentions) > 0.7
    assert sum(m.attributes["negated"] for m in mentions) >= 5
    assert sum(m.attributes["family"] for m in mentions) >= 5
    ckd = [m for r in results if r.note_id.startswith("note01") for m in r.mentions if m.text == "CKD"]
    assert ckd and all(m.concept and m.concept.curie == "DOID:784" for m in ckd)


@pytest.mark.slow
def test_shipped_bundle_files_are_small():
    assert sum(p.stat().st_size for p in BUNDLE.iterdir()) <= 25_000_000  # the whole bundle, not each file
    assert (BUNDLE / "model.int8.onnx").is_file() and (BUNDLE / "MODEL_CARD.md").is_file()
    assert Path(BUNDLE / "metrics.json").is_file()


@pytest.mark.slow
def test_demo_summary_on_sample_notes():
    """The demo's quick mode on data/notes: shipped bundle, hashing linking; aspirin links via its synonym."""
    from kgfusion.apps.medical.config import MedicalConfig
    from kgfusion.apps.medical.demo import demo_summary
    from kgfusion.apps.medical.extract import build_extractor
    from kgfusion.apps.medical.readers import read_notes

    s = demo_summary(repo_data_dir() / "notes", quick=True)
    assert s["notes"] >= 8 and s["rejects"] == 0 and s["backend"] == "onnx-int8"
    assert s["linked"] / s["mentions"] > 0.7 and s["by_attribute"]["negated"] >= 5
    assert {ex["concept"]["curie"].split(":")[0] for ex in s["examples"]} >= {"DOID", "DRUGBANK"}
    ex = build_extractor(MedicalConfig(link_encoder="hashing"))
    (res,) = ex.extract_notes([n for n in read_notes(repo_data_dir() / "notes").notes if n.note_id.startswith("note03")])
    aspirin = [m for m in res.mentions if m.text.lower() == "aspirin"]
    assert aspirin and all(m.concept and m.concept.curie == "DRUGBANK:DB00945" for m in aspirin)
