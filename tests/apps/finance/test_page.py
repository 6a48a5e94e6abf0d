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


@pytest.fixture
def fake_bundle_monitor(monitor_factory, monkeypatch):
    """The page's 'Score feed' path with the keyword predictor instead of the shipped bundle."""
    from kgfusion.apps.finance.pipeline import FinanceMonitor

    monkeypatch.setattr(FinanceMonitor, "from_paths", classmethod(lambda cls, *a, **k: monitor_factory()))
    monkeypatch.setenv("KGFUSION_FINANCE_KG", str(DATA / "mini_finance.ttl"))


def test_uploaded_feed_is_scored_and_its_rejects_offered(fake_bundle_monitor):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.sidebar.radio[0].set_value("Upload a feed").run()
    assert "Upload a feed" in at.info[0].value
    at.file_uploader[0].upload("bad.csv", (DATA / "feed_bad.csv").read_bytes(), "text/csv").run()
    at.text_input[0].set_value("body")
    at.button[0].click().run()
    assert not at.exception
    done = at.success[0].value
    n_items, n_rejected = int(done.split()[0]), int(done.split(", ")[1].split()[0])
    assert n_items >= 1 and n_rejected >= 1
    assert n_items + n_rejected == 9  # every data row of the file is scored or rejected
    assert at.metric[0].value == str(n_items)
    assert len(at.get("download_button")) == 1


def test_upload_with_a_wrong_text_column_names_the_columns(fake_bundle_monitor):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.sidebar.radio[0].set_value("Upload a feed").run()
    at.file_uploader[0].upload("bad.csv", (DATA / "feed_bad.csv").read_bytes(), "text/csv").run()
    at.text_input[0].set_value("headline")
    at.button[0].click().run()
    assert not at.exception
    assert "headline" in at.error[0].value and "body" in at.error[0].value
