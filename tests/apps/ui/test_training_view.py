"""The Models page's training section (AppTest): shipped figures against targets and anchors, and the ablation."""
from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from kgfusion.apps.ui.training_view import ablation_frame, headline_frame

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "ui" / "models_page.py")


def _env(tmp_path, monkeypatch, files: dict[str, dict]):
    (tmp_path / "data" / "models").mkdir(parents=True)
    res = tmp_path / "results"
    res.mkdir()
    for stem, data in files.items():
        (res / f"{stem}.json").write_text(json.dumps(data))
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KGFUSION_RESULTS", str(res))
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(tmp_path / "none.duckdb"))
    monkeypatch.setenv("KGFUSION_REGISTRY", str(tmp_path / "registry"))


def test_headlines_say_met_or_how_far_short():
    frame = headline_frame({"medical": {"ncbi_devel_f1": 0.8363, "bc5cdr_devel_disease_f1": 0.8136},
                            "finance": {"twitter_accuracy": "n/a"}})
    by_metric = frame.set_index("metric")
    assert by_metric.loc["NCBI-disease devel entity F1, model", "status"] == "short by 1.4 points"
    assert by_metric.loc["BC5CDR devel Disease F1", "status"] == "met"
    assert "BioBERT 0.891" in by_metric.loc["NCBI-disease devel entity F1, model", "anchor (published, test split)"]
    assert len(frame) == 2  # a missing or non-numeric key is left out, not shown as 0


def test_ablation_rows_keep_their_source_and_only_known_columns():
    frame = ablation_frame("ncbi", {
        "lora-short": {"devel_f1": 0.727, "train_seconds": 638, "shipped_mb": 2.1, "source": "old bundle (git abc)"},
        "full-long": {"devel_f1": 0.834, "devel_viterbi_f1": 0.842, "train_seconds": 2773, "shipped_mb": 91.0,
                      "teachers": ["x"]}})
    assert list(frame["configuration"]) == ["lora-short", "full-long"]
    assert "teachers" not in frame.columns and "devel_precision" not in frame.columns
    assert frame.loc[0, "source"] == "old bundle (git abc)"
    assert frame.loc[1, "source"] == "trained by benchmarks/training.py"


def test_page_shows_targets_anchors_and_configurations(tmp_path, monkeypatch):
    _env(tmp_path, monkeypatch, {
        "finance": {"phrasebank50_accuracy": 0.853, "phrasebank_allagree_accuracy": 0.9524},
        "training": {"tasks": {"finance": {
            "full-long": {"phrasebank50_accuracy": 0.8509, "twitter_accuracy": 0.8678, "train_seconds": 2534.5,
                          "shipped_mb": 91.6, "description": "full fine-tune, 10 epochs"}}}}})
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "Training recipes: shipped figures, targets and anchors" in [h.value for h in at.header]
    head = next(d.value for d in at.dataframe if "anchor (published, test split)" in d.value.columns)
    row = head[head["metric"] == "PhraseBank 50-agree accuracy"].iloc[0]
    assert row["kgfusion (shipped)"] == 0.853 and row["status"] == "short by 1.7 points"
    assert row["anchor (published, test split)"] == "FinBERT 0.86"
    assert "Configurations tried: Financial sentiment (held-out accuracy)" in [s.value for s in at.subheader]
    abl = next(d.value for d in at.dataframe if "what changed" in d.value.columns)
    assert abl.iloc[0]["twitter_accuracy"] == 0.8678 and abl.iloc[0]["what changed"] == "full fine-tune, 10 epochs"
    assert "Configurations tried: NCBI-disease (devel entity F1)" not in [s.value for s in at.subheader]


def test_page_without_results_says_what_to_run(tmp_path, monkeypatch):
    _env(tmp_path, monkeypatch, {})
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    infos = [i.value for i in at.info]
    assert any("python benchmarks/training.py" in i for i in infos)
    assert any("python benchmarks/medical.py" in i for i in infos)
