from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.apps.finance.conftest import DATA

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "finance" / "page.py")


@pytest.fixture
def demo_db(monitor_factory, feed_path, tmp_path, monkeypatch):
    db = tmp_path / "demo.duckdb"
    monitor_factory().monitor(feed_path, db)
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(db))
    monkeypatch.setenv("KGFUSION_FINANCE_KG", str(DATA / "mini_finance.ttl"))
    return db


def test_page_renders_kpis_alerts_and_drilldown(demo_db):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    at.sidebar.number_input[0].set_value(3).run()
    assert not at.exception
    assert at.metric[0].value == "168"
    tables = at.dataframe
    assert len(tables) >= 2  # alert table, evidence/KG tables
    alerts = tables[0].value
    assert "z" in alerts.columns and len(alerts) >= 1
    assert any("mark" in m.value for m in at.markdown)  # highlighted evidence
    assert any("inSector" in str(t.value.get("predicate", "").tolist()) for t in tables if "predicate" in t.value)


def test_page_without_database_explains_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(tmp_path / "missing.duckdb"))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "kgfusion finance monitor" in at.info[0].value
