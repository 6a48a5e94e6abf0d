"""The correction forms a person uses (AppTest): the finance page's "Correct an item" and the medical
"Correct this note" form; after Submit the person reads a confirmation and the correction is stored."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kgfusion.core.lifecycle.corrections import CorrectionStore
from tests.apps.finance.conftest import DATA, KeywordPredictor
from tests.apps.ui.markdown import shown

FINANCE_PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "finance" / "page.py")


@pytest.fixture
def finance_db(tmp_path, monkeypatch):
    from kgfusion.apps.finance import rule_kinds  # noqa: F401 - registers ambiguous_ticker
    from kgfusion.apps.finance.config import FinanceConfig
    from kgfusion.apps.finance.pipeline import FinanceMonitor
    from kgfusion.knowledge.graph import KnowledgeGraph
    from kgfusion.knowledge.rules import load_domain_rules

    db = tmp_path / "demo.duckdb"
    FinanceMonitor(FinanceConfig(min_volume=3, min_history=5), KeywordPredictor(),
                   KnowledgeGraph.load(DATA / "mini_finance.ttl"), load_domain_rules("finance"),
                   progress=False).monitor(DATA / "feed.jsonl", db)
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(db))
    monkeypatch.setenv("KGFUSION_FINANCE_KG", str(DATA / "mini_finance.ttl"))
    return db


def submit(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def test_finance_person_corrects_an_evidence_item_and_sees_the_confirmation(finance_db):
    at = AppTest.from_file(FINANCE_PAGE, default_timeout=60).run()
    at.sidebar.number_input[0].set_value(3).run()  # enough volume for alerts, so evidence items show
    assert not at.exception
    item = at.selectbox(key="finance_correct_item")
    chosen = item.value
    submit(at, "Submit correction")  # no name yet: told what to fix, nothing stored
    assert "--who" in shown(at.error[0].value) and not at.success
    at.selectbox(key="finance_correct_label").set_value("negative")
    at.text_input(key="finance_correct_who").input("Ana Analyst")
    submit(at, "Submit correction")
    assert not at.exception
    message = shown(at.success[0].value)
    assert message.startswith(f"Correction saved for item {chosen}: sentiment ") and "by Ana Analyst" in message
    with CorrectionStore(finance_db, read_only=True) as store:
        [c] = store.select("finance")
    assert (c.item_id, c.new_value, c.who, c.source) == (chosen, "negative", "Ana Analyst", "page")


def _medical_form() -> None:
    from kgfusion.apps.medical.corrections_page import correction_form
    from kgfusion.apps.medical.extract import Mention, NoteResult

    text = "Patient denies fever. Takes metformin for diabetes."
    mentions = [Mention(15, 20, "fever", "Disease", 0.9, ["model"], {"negated": True}),
                Mention(28, 37, "metformin", "Chemical", 0.9, ["model"], {})]
    correction_form(NoteResult("n1", text, mentions), "no-such-bundle")


@pytest.mark.parametrize("kind, fill, expect", [
    ("Mark a mention wrong", {}, "mention 'fever' Disease marked wrong"),
    ("Add a missed mention", {"medical_correct_span": "diabetes"}, "missed mention 'diabetes' Disease added"),
    ("Fix an attribute", {}, "attribute:negated true -> false"),
    ("Fix the concept", {"medical_correct_concept": "DOID:9351"}, "concept - -> DOID:9351"),
])
def test_medical_person_saves_a_correction_and_sees_the_confirmation(tmp_path, kind, fill, expect):
    db = tmp_path / "corrections.duckdb"
    at = AppTest.from_function(_medical_form, default_timeout=30).run()
    assert not at.exception
    at.text_input(key="medical_correct_db").input(str(db)).run()
    at.selectbox(key="medical_correct_kind").set_value(kind).run()
    for key, value in fill.items():
        at.text_input(key=key).input(value)
    at.text_input(key="medical_correct_who").input("Dr B")
    submit(at, "Save correction")
    assert not at.exception and not at.error
    message = shown(at.success[0].value)
    assert message.startswith(f"Correction saved in {db}") and expect in message
    with CorrectionStore(db, read_only=True) as store:
        [c] = store.select("medical", "n1")
        assert c.who == "Dr B" and store.prediction("medical", "n1", c.text) is not None


def test_medical_form_says_why_a_correction_is_refused(tmp_path):
    db = tmp_path / "corrections.duckdb"
    at = AppTest.from_function(_medical_form, default_timeout=30).run()
    at.text_input(key="medical_correct_db").input(str(db)).run()
    at.selectbox(key="medical_correct_kind").set_value("Add a missed mention").run()
    at.text_input(key="medical_correct_span").input("insulin")
    at.text_input(key="medical_correct_who").input("Dr B")
    submit(at, "Save correction")
    assert "'insulin' is not in the note" in shown(at.error[0].value) and not at.success
    at.text_input(key="medical_correct_span").input("15:22")  # overlaps 'fever'
    submit(at, "Save correction")
    assert "overlaps the mention 15:20" in shown(at.error[0].value)
    assert not db.exists() or CorrectionStore(db, read_only=True).select() == []
