"""The Models page's drift section (AppTest): a finance DB with a hand-made drift table, one without,
and no DB; the text a person sees."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from kgfusion.apps.finance.drift import COLUMNS, ensure_drift_table, figures_row
from kgfusion.apps.finance.store import FinanceStore
from kgfusion.core.lifecycle.drift import DriftFigures, VariableDrift
from tests.apps.ui.markdown import shown

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "ui" / "models_page.py")


def figures(day_psi: float, drifted: bool | None, reasons: list[str]) -> DriftFigures:
    conf = VariableDrift(60, day_psi / 2, 0.05, 0.6, 0.85, 0.86, 0.2)
    return DriftFigures(60, day_psi, 0.2, {"negative": 0.3}, {"confidence": conf}, 0.01, 0.02, 0.5, 60, drifted,
                        reasons)


@pytest.fixture
def page_env(tmp_path, monkeypatch):
    """No bundles or results (the rest of the page stays short); $KGFUSION_FINANCE_DB set by each test."""
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KGFUSION_RESULTS", str(tmp_path / "none"))
    return tmp_path


def make_db(path: Path, with_drift: bool = True) -> Path:
    with FinanceStore(path) as store:
        if with_drift:
            ensure_drift_table(store)
            rows = [figures_row(pd.Timestamp("2014-03-01").date(), 60, figures(0.01, False, []), "finsent@abc", "b"),
                    figures_row(pd.Timestamp("2014-03-02").date(), 60,
                                figures(0.9, True, ["label PSI 0.900 > 0.2", "confidence KS D=0.4 p=1e-05 < 0.01"]),
                                "finsent@abc", "b"),
                    figures_row(pd.Timestamp("2014-03-03").date(), 4, figures(0.1, None, []), "finsent@abc", "b")]
            store.con.register("_d", pd.DataFrame(rows, columns=COLUMNS))
            store.con.execute(f"INSERT INTO drift SELECT {', '.join(COLUMNS)} FROM _d")
    return path


def run(monkeypatch, db: Path) -> AppTest:
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(db))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_drift_section_shows_days_alerts_and_the_psi_line(page_env, monkeypatch):
    at = run(monkeypatch, make_db(page_env / "feed.duckdb"))
    assert "Drift (finance feed)" in [h.value for h in at.header]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"days": "3", "drift alerts": "1", "latest day": "2014-03-03: too few items"}
    warnings = [shown(w.value) for w in at.warning if " drift: " in shown(w.value)]  # (the page also warns: no models)
    assert warnings == ["2014-03-02 drift: label PSI 0.900 > 0.2; confidence KS D=0.4 p=1e-05 < 0.01"]
    table = at.dataframe[-1].value
    assert list(table["day"]) == ["2014-03-01", "2014-03-02", "2014-03-03"]
    assert list(table["verdict"]) == ["ok", "DRIFT", "too few items"]
    assert table["label PSI"].tolist() == pytest.approx([0.01, 0.9, 0.1])
    spec = json.dumps([json.loads(c.proto.spec) for c in at.get("vega_lite_chart")])  # the PSI-per-day line
    assert '"type": "line"' in spec and "rule" in spec and "PSI vs the training reference" in spec
    assert any("finsent@abc" in shown(c.value) for c in at.caption)


def test_a_database_without_drift_figures_says_how_to_compute_them(page_env, monkeypatch):
    db = make_db(page_env / "old.duckdb", with_drift=False)
    at = run(monkeypatch, db)
    infos = " ".join(shown(i.value) for i in at.info)
    assert "No drift figures" in infos and f"kgfusion finance alerts --db {db} --drift" in infos


def test_no_database_and_another_path_typed_in(page_env, monkeypatch):
    at = run(monkeypatch, page_env / "missing.duckdb")
    assert any("No database at" in shown(i.value) and "finance monitor" in i.value for i in at.info)
    at.text_input(key="drift_db").set_value(str(make_db(page_env / "other.duckdb"))).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["drift alerts"] == "1"
