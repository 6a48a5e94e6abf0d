"""The Knowledge page's SPARQL box under limits: a runaway query ends in a warning (not a traceback)
within its time limit, and a capped result says it was truncated. AppTest, hand-made graph."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[3] / "apps" / "ui" / "knowledge_page.py"
TTL = """\
@prefix company: <https://kgfusion.dev/id/company/> .
@prefix sector: <https://kgfusion.dev/id/sector/> .
@prefix kgf: <https://kgfusion.dev/ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix schema: <https://schema.org/> .

company:AAPL a schema:Corporation ; rdfs:label "Apple Inc." ; kgf:ticker "AAPL" ;
    kgf:inSector sector:information-technology .
sector:information-technology a kgf:Sector ; rdfs:label "Information Technology" .
"""
CROSS_JOIN = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The page on a finance graph of ~2000 triples (a 3-way cross join of it would run for days)."""
    kg_dir = tmp_path / "kg"
    kg_dir.mkdir()
    notes = "".join(f'<https://kgfusion.dev/id/note/{i}> kgf:note "note {i}" .\n' for i in range(2000))
    (kg_dir / "finance.ttl").write_text(TTL + notes, encoding="utf-8")
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path))
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def number_input(at: AppTest, label: str):
    (widget,) = [w for w in at.number_input if w.label == label]
    return widget


def test_runaway_query_shows_the_timeout_message(page: AppTest) -> None:
    assert number_input(page, "Time limit in seconds (--timeout)").value == 5.0
    number_input(page, "Time limit in seconds (--timeout)").set_value(0.5)
    page.text_area[0].input(CROSS_JOIN)
    start = time.monotonic()
    page.button[0].click().run()
    assert time.monotonic() - start < 0.5 + 3  # the rerun itself takes a moment
    assert not page.exception, [e.value for e in page.exception]
    assert not page.error
    assert [w.value for w in page.warning] == [
        "query stopped after 0.5 s (limit --timeout); add LIMIT or narrow the pattern"]

    page.text_area[0].input("SELECT ?n WHERE { company:AAPL rdfs:label ?n }")  # the page is still usable
    page.button[0].click().run()
    assert not page.exception and not page.warning
    assert list(page.dataframe[-2].value["n"]) == ["Apple Inc."]


def test_capped_result_says_it_was_truncated(page: AppTest) -> None:
    number_input(page, "Max rows (--max-rows)").set_value(7)
    page.text_area[0].input("SELECT ?s ?o WHERE { ?s kgf:note ?o }")
    page.button[0].click().run()
    assert not page.exception and not page.error
    assert len(page.dataframe[-2].value) == 7
    assert [w.value for w in page.warning] == [
        "result truncated at 7 rows (limit --max-rows); add LIMIT or narrow the pattern"]
