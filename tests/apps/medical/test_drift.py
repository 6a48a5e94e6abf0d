"""Medical drift: entity rate and mention confidence of a batch of notes against a reference built from
development abstracts (keyword predictor and encoder over the tiny graph; no model)."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kgfusion.apps.medical.cli import group
from kgfusion.apps.medical.config import MedicalConfig
from kgfusion.apps.medical.drift import (
    MEDICAL_THRESHOLDS,
    RATE,
    build_reference,
    cached_reference_path,
    check,
    drift_config,
    reference_notes,
    run_extractor,
)
from kgfusion.apps.medical.extract import build_extractor
from kgfusion.apps.medical.readers import NoteInput
from kgfusion.core.lifecycle.drift import DriftReference
from tests.apps.medical.conftest import KeywordPredictor, keyword_encoder, make_data_dir

FINDINGS = ("fever and chest pain", "pneumonia", "renal failure", "heart failure on furosemide",
            "metformin for diabetes", "headache")
FILLER = ("The patient was seen in clinic today.", "Vital signs were recorded by the nurse.",
          "She walks two miles most days.", "Follow-up was arranged in four weeks.")


def note_text(rng: random.Random, findings: int = 2) -> str:
    parts = [f"Admitted with {rng.choice(FINDINGS)}." for _ in range(findings)]
    parts += [rng.choice(FILLER) for _ in range(rng.randint(2, 6))]
    rng.shuffle(parts)
    return " ".join(parts)


def notes(n: int, seed: int, findings: int = 2) -> list[NoteInput]:
    rng = random.Random(seed)
    return [NoteInput(f"n{seed}-{i}", note_text(rng, findings)) for i in range(n)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The tiny medical data dir plus a development PubTator file of 60 abstracts like ``notes``."""
    root = make_data_dir(tmp_path_factory.mktemp("med-drift"))
    d = root / "datasets" / "bc5cdr"
    d.mkdir(parents=True)
    lines = []
    for i, note in enumerate(notes(60, seed=0)):
        title, _, abstract = note.text.partition(". ")
        lines += [f"{1000 + i}|t|{title}.", f"{1000 + i}|a|{abstract}", f"{1000 + i}\t0\t5\tx\tDisease\tD1", ""]
    (d / "CDR_DevelopmentSet.PubTator.txt").write_text("\n".join(lines), encoding="utf-8")
    return root


def extractor(data_dir: Path, score: float = 0.7):
    return build_extractor(drift_config(MedicalConfig()), data_dir, predictor=KeywordPredictor(score=score),
                           encoder=keyword_encoder())


@pytest.fixture(scope="module")
def reference(data_dir):
    return build_reference(extractor(data_dir), reference_notes("bc5cdr", data_dir), {"bundle": "tiny-ner"})


def test_the_reference_holds_rates_confidences_and_labels(reference):
    assert reference.meta["notes"] == 60 and reference.meta["mentions"] > 60
    assert len(reference.values[RATE]) == 60 and len(reference.confidences) == reference.meta["mentions"]
    assert set(reference.labels) == {"Chemical", "Disease"} and reference.meta["overall_rate"] > 0


def test_notes_like_the_reference_do_not_drift(reference, data_dir):
    fig = check(reference, run_extractor(extractor(data_dir), notes(30, seed=1)))
    assert fig.drifted is False and fig.reasons == []
    rate = fig.variables[RATE]
    # 30 notes in 10 bins: PSI's own noise is far above 0.2, so the limit rises with it; KS has its p-value
    assert rate.psi < rate.psi_limit and rate.psi_limit > 0.2 and rate.ks_p > 0.01
    assert fig.variables["confidence"].ks_p > 0.01


def test_a_different_entity_rate_drifts(reference, data_dir):
    dense = run_extractor(extractor(data_dir), notes(30, seed=2, findings=8))
    fig = check(reference, dense)
    assert fig.drifted is True and any(r.startswith("entity_rate") for r in fig.reasons)
    assert fig.variables[RATE].mean > fig.variables[RATE].reference_mean


def test_a_different_confidence_drifts(reference, data_dir):
    unsure = run_extractor(extractor(data_dir, score=0.35), notes(30, seed=3))
    fig = check(reference, unsure)
    assert fig.drifted is True and any(r.startswith("confidence") for r in fig.reasons)
    assert not any(r.startswith("entity_rate") for r in fig.reasons)


def test_few_notes_give_no_verdict(reference, data_dir):
    fig = check(reference, run_extractor(extractor(data_dir), notes(3, seed=4, findings=1)))
    assert fig.drifted is None and any("fewer than the 20" in n for n in fig.notes)
    assert MEDICAL_THRESHOLDS.min_items == 20


# ----------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def bundle(tiny_ner_bundle, data_dir, tmp_path):
    """A copy of the tiny NER bundle under data/models/ of a fresh copy of ``data_dir``."""
    root = Path(shutil.copytree(data_dir, tmp_path / "data"))
    path = Path(shutil.copytree(tiny_ner_bundle, root / "models" / "tiny-ner"))
    return path, root


def invoke(root: Path, args: list[str]):
    obj = {"build_kwargs": {"data_dir": root, "predictor": KeywordPredictor(), "encoder": keyword_encoder()}}
    return CliRunner().invoke(group, args, obj=obj)


def write_notes(folder: Path, batch: list[NoteInput]) -> Path:
    folder.mkdir()
    for n in batch:
        (folder / f"{n.note_id}.txt").write_text(n.text, encoding="utf-8")
    return folder


def test_drift_command_builds_caches_and_judges(bundle, tmp_path):
    path, root = bundle
    calm = write_notes(tmp_path / "calm", notes(25, seed=5))
    res = invoke(root, ["drift", "--notes", str(calm), "--bundle", str(path)])
    assert res.exit_code == 0, res.output
    assert "(built now)" in res.output and cached_reference_path(path).is_file()
    assert "25 notes (0 rejected)" in res.output and "entity rate per note:" in res.output
    assert "mention confidence:" in res.output and res.output.rstrip().endswith("verdict: ok")
    dense = write_notes(tmp_path / "dense", notes(25, seed=6, findings=8))
    res = invoke(root, ["drift", "--notes", str(dense), "--bundle", str(path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["verdict"] == "DRIFT" and out["reference"]["source"] == str(cached_reference_path(path))
    assert any(r.startswith("entity_rate PSI") for r in out["figures"]["reasons"])


def test_drift_reference_command_and_one_line_errors(bundle, tmp_path):
    path, root = bundle
    ref_file = tmp_path / "ref.json"
    res = invoke(root, ["drift-reference", "--bundle", str(path), "--out", str(ref_file)])
    assert res.exit_code == 0, res.output and f"drift reference written: {ref_file}" in res.output
    ref = DriftReference.load(ref_file)
    assert ref.meta["dataset"] == "bc5cdr" and ref.meta["bundle"] == "tiny-ner" and ref.meta["notes"] == 60
    calm = write_notes(tmp_path / "calm", notes(25, seed=7))
    res = invoke(root, ["drift", "--notes", str(calm), "--bundle", str(path), "--reference", str(ref_file)])
    assert res.exit_code == 0 and f"from {ref_file}" in res.output
    res = invoke(root, ["drift", "--notes", str(calm), "--bundle", str(path), "--reference", str(tmp_path / "no.json")])
    assert res.exit_code == 1 and res.output.count("\n") == 1 and "drift reference not found" in res.output
    (root / "datasets" / "bc5cdr" / "CDR_DevelopmentSet.PubTator.txt").unlink()
    res = invoke(root, ["drift", "--notes", str(calm), "--bundle", str(path)])
    assert res.exit_code == 1 and res.output.count("\n") == 1 and "development PubTator file not found" in res.output
