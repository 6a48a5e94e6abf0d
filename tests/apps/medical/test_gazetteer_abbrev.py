"""Gazetteer matching rules and abbreviation handling (Schwartz-Hearst definitions, list senses)."""
from __future__ import annotations

import pytest

from kgfusion.apps.medical.abbreviations import (
    AbbreviationList,
    AbbreviationResolver,
    best_long_form,
    find_definitions,
)
from kgfusion.apps.medical.gazetteer import Gazetteer, usable_name
from kgfusion.core.errors import DataError
from kgfusion.knowledge.records import EntityRecord
from tests.apps.medical.conftest import DATA

D, S, X = "https://schema.org/MedicalCondition", "https://schema.org/MedicalSignOrSymptom", "https://schema.org/Drug"


def records():
    return [
        EntityRecord("d:ckd", "chronic kidney disease", ("chronic kidney failure",), D),
        EntityRecord("d:kd", "kidney disease", (), D),
        EntityRecord("d:gout", "gout", (), D),
        EntityRecord("d:root", "disease", (), D),
        EntityRecord("d:flu", "flu", (), D),  # 3 characters: skipped
        EntityRecord("d:covid", "COVID-19", (), D),
        EntityRecord("d:lymphoma", "lymphoma", (), D),
        EntityRecord("s:fever", "fever", (), S),
        EntityRecord("x:met", "Metformin", (), X),
    ]


def test_longest_match_case_and_boundaries():
    g = Gazetteer.from_records(records())
    text = "Chronic Kidney Disease and gouty arthritis; kidney disease; covid-19 vs COVID-19; METFORMIN; lymphomas."
    hits = [(h.text, h.label, h.ref, h.score) for h in g.find(text)]
    assert hits == [
        ("Chronic Kidney Disease", "Disease", "d:ckd", 0.9),   # longest wins over "kidney disease"
        ("kidney disease", "Disease", "d:kd", 0.9),
        ("COVID-19", "Disease", "d:covid", 0.9),                # acronym: case-sensitive, "covid-19" skipped
        ("METFORMIN", "Chemical", "x:met", 0.9),
        ("lymphomas", "Disease", "d:lymphoma", 0.85),           # plural of the last word
    ]
    assert not any(h.text.lower().startswith("gout") for h in g.find(text))  # "gouty" is another word
    for h in g.find(text):
        assert text[h.start:h.end] == h.text


def test_skip_rule_and_symptoms():
    assert not usable_name("disease", 4) and not usable_name("flu", 4) and not usable_name("123", 2)
    assert usable_name("gout", 4)
    no_sym = Gazetteer.from_records(records())
    assert not no_sym.find("fever and flu") and not any(e.name == "disease" for e in no_sym.entries)
    with_sym = Gazetteer.from_records(records(), symptoms=True)
    assert [h.text for h in with_sym.find("fever and flu")] == ["fever"]
    with pytest.raises(DataError, match="no disease or drug names"):
        Gazetteer.from_records([EntityRecord("s:x", "something", (), S)])


def test_gazetteer_json_round_trip():
    g = Gazetteer.from_records(records())
    again = Gazetteer.from_json(g.to_json())
    text = "chronic kidney failure on metformin"
    assert again.find(text) == g.find(text)


def test_schwartz_hearst_definitions():
    text = ("Known chronic kidney disease (CKD) and congestive heart failure (CHF). HTN (hypertension) "
            "controlled. Treated (see above) with heparin (5000 U).")
    defs = {d.short: d for d in find_definitions(text)}
    assert set(defs) == {"CKD", "CHF", "HTN"}
    assert defs["CKD"].long == "chronic kidney disease" and text[defs["CKD"].long_start:defs["CKD"].long_end] == "chronic kidney disease"
    assert defs["HTN"].long == "hypertension"
    assert best_long_form("CKD", "the patient has chronic kidney disease") == "chronic kidney disease"
    assert best_long_form("XYZ", "chronic kidney disease") is None


def test_list_sense_rules():
    abbr = AbbreviationList.from_csv(DATA / "abbreviations.csv")
    linked = {"diabetes mellitus", "pneumonia"}
    r = AbbreviationResolver(abbr, resolve=lambda s: "uri" if s.lower() in linked else None)
    text = "HTN and DM. MS noted. NO fever. PNA suspected. BID dosing, ab soft."
    got = {x.short: (x.long, x.rule) for x in r.expand(text)}
    assert got["HTN"] == ("hypertension", "single_sense")
    assert got["DM"] == ("diabetes mellitus", "kg_links_one_sense")     # Dermatomyositis is not in the KG
    assert got["MS"] == (None, "ambiguous")                              # two KG-less senses, none in the note
    assert got["PNA"] == ("pneumonia", "kg_links_one_sense")
    assert got["BID"] == ("twice a day", "single_sense")
    assert "NO" not in got and "ab" not in got                           # English word / lower case
    in_note = AbbreviationResolver(abbr).expand("MS, i.e. multiple sclerosis, is stable.")
    assert [(x.long, x.rule) for x in in_note] == [("multiple sclerosis", "long_form_in_note")]


def test_definition_beats_list_and_applies_later_only():
    abbr = AbbreviationList.from_csv(DATA / "abbreviations.csv")
    text = "MS stable. Severe mitral stenosis (MS) on echo. MS is moderate."
    xs = AbbreviationResolver(abbr).expand(text)
    # The use before the definition is not defined yet; the list's sense present in the note decides it.
    assert [(x.start, x.long, x.source, x.rule) for x in xs] == [
        (0, "mitral stenosis", "list", "long_form_in_note"),
        (text.index("(MS)") + 1, "mitral stenosis", "definition", "definition"),
        (text.rindex("MS"), "mitral stenosis", "definition", "definition")]
    no_long = AbbreviationResolver(abbr).expand("MS stable. MS is moderate.")
    assert [x.long for x in no_long] == [None, None]


def test_abbreviation_list_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        AbbreviationList.from_csv(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nx,y\n")
    with pytest.raises(DataError, match="abr,long_form"):
        AbbreviationList.from_csv(bad)
