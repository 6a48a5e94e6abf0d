"""The Models page's Versions section (AppTest): a registry with a promoted version, a broken registry.json,
and no registry; the text a person sees."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kgfusion.core.lifecycle.registry import Registry
from tests.apps.ui.markdown import shown
from tests.core.lifecycle.test_registry import fake_bundle

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "ui" / "models_page.py")


@pytest.fixture
def page_env(tmp_path, monkeypatch):
    """A shipped finsent bundle, no results, no finance DB (the rest of the page stays short), a registry."""
    fake_bundle(tmp_path / "data" / "models" / "finsent")
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KGFUSION_RESULTS", str(tmp_path / "none"))
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(tmp_path / "none.duckdb"))
    monkeypatch.setenv("KGFUSION_REGISTRY", str(tmp_path / "registry"))
    return Registry(tmp_path / "registry", tmp_path / "data" / "models"), tmp_path


def run() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def versions_table(at: AppTest):
    return next(d.value for d in at.dataframe if "version" in d.value.columns and "promoted" in d.value.columns)


def test_versions_section_marks_the_promoted_version(page_env):
    reg, tmp = page_env
    reg.register("finsent", fake_bundle(tmp / "a", {"dev_macro_f1": 0.61}), created_by="ana")
    reg.register("finsent", fake_bundle(tmp / "b", {"dev_macro_f1": 0.72}, weights=b"2"), parent=1, created_by="bo")
    reg.promote("finsent", 2, "bo", "better")
    at = run()
    assert "Versions" in [h.value for h in at.header]
    assert "finsent" in [shown(s.value) for s in at.subheader]
    assert any(shown(m.value) == "The apps load: v2" for m in at.markdown)
    table = versions_table(at)
    assert list(table["version"]) == ["v0", "v1", "v2"]
    assert list(table["promoted"]) == ["", "", "★"]
    assert list(table["status"]) == ["shipped", "registered", "promoted"]
    assert list(table["by"]) == ["-", "ana", "bo"] and table["metrics"].iloc[2] == "dev macro_f1 0.720"
    assert table["parent"].iloc[1] == "finsent (v0)" and table["parent"].iloc[2] == "v1"

    reg.rollback("finsent", "cy")  # v2 was the first promotion: back to the shipped v0
    at = run()
    table = versions_table(at)
    assert list(table["promoted"]) == ["★", "", ""] and table["status"].iloc[2] == "rolled back"
    assert any(shown(m.value) == "The apps load: v0 (shipped)" for m in at.markdown)


def test_a_broken_registry_is_a_warning_and_no_registry_an_invitation(page_env):
    reg, tmp = page_env
    at = run()
    infos = " ".join(shown(i.value) for i in at.info)
    assert "No model versions" in infos and "kgfusion model register NAME BUNDLE_DIR" in infos

    reg.register("finsent", fake_bundle(tmp / "a"), created_by="ana")
    (reg.root / "other").mkdir()
    (reg.root / "other" / "registry.json").write_text("{broken")
    at = run()
    assert any("other" in shown(w.value) and "unreadable" in shown(w.value) for w in at.warning)
    assert any(shown(m.value) == "The apps load: v0 (shipped)" for m in at.markdown)
    assert list(versions_table(at)["promoted"]) == ["★", ""]
