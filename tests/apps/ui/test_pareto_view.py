"""The Models page's variant comparison (AppTest): rows from scale.json as a person sees them."""
from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "ui" / "models_page.py")


def _env(tmp_path, monkeypatch, results: dict | None):
    (tmp_path / "data" / "models").mkdir(parents=True)
    res = tmp_path / "results"
    res.mkdir()
    if results is not None:
        (res / "scale.json").write_text(json.dumps(results))
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KGFUSION_RESULTS", str(res))
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(tmp_path / "none.duckdb"))
    monkeypatch.setenv("KGFUSION_REGISTRY", str(tmp_path / "registry"))


def test_variants_table_shows_speedup_and_quality_change(tmp_path, monkeypatch):
    _env(tmp_path, monkeypatch, {"pareto_sentiment": [
        {"variant": "fp32", "backend": "fp32", "accuracy": 0.87, "items_per_s": 100.0, "size_mb": 90.9},
        {"variant": "fast", "backend": "onnx-int8", "accuracy": 0.862, "items_per_s": 400.0, "size_mb": 11.6}]})
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "Financial sentiment (finsent-topics)" in [s.value for s in at.subheader]
    table = next(d.value for d in at.dataframe if "speed-up vs fp32" in d.value.columns)
    fast = table[table["variant"] == "fast"].iloc[0]
    assert fast["speed-up vs fp32"] == "4.00x" and fast["change (points)"] == -0.8
    assert any("--model-variant fast|accurate" in c.value for c in at.caption)
    assert "Clinical NER" not in [s.value for s in at.subheader]  # no NER rows measured: no empty table


def test_no_results_says_how_to_measure(tmp_path, monkeypatch):
    _env(tmp_path, monkeypatch, None)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert any("python benchmarks/fast_models.py" in i.value for i in at.info)
