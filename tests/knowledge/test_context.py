"""ConText: directions, terminators, pseudo-triggers, sentence limits, sections, evidence, offsets."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import DataError
from knowledge.context import ConTextEngine, split_sentences
from knowledge.rules import ContextRule, load_domain_rules, load_rules
from knowledge.sections import detect_sections

DATA = Path(__file__).resolve().parents[1] / "data" / "rules"


@pytest.fixture(scope="module")
def engine() -> ConTextEngine:
    """The packaged medical rules (medspaCy + NegEx + pyConTextNLP + sections)."""
    return ConTextEngine(load_domain_rules("medical"))


@pytest.fixture(scope="module")
def small() -> ConTextEngine:
    return ConTextEngine(load_rules([DATA / "valid" / "context.yaml", DATA / "valid" / "section.yaml"]))


def annotate(engine: ConTextEngine, text: str, *terms: str, label: str = "PROBLEM"):
    spans = []
    for term in terms:
        start = text.index(term)
        spans.append((start, start + len(term), label))
    return {text[r.start:r.end]: r for r in engine.annotate(text, spans)}


def test_forward_negation(engine):
    r = annotate(engine, "The patient has no fever.", "fever")["fever"]
    assert r.negated and not r.possible
    (ev,) = r.evidence
    assert ev.kind == "rule" and ev.source.startswith("ctx.medspacy") and ev.span == (16, 18)


def test_backward_negation(engine):
    r = annotate(engine, "Pulmonary embolism was ruled out.", "Pulmonary embolism")["Pulmonary embolism"]
    assert r.negated
    assert "ruled out" in r.evidence[0].detail


def test_bidirectional(small):
    res = annotate(small, "Pneumonia possible here, also cough later on today", "Pneumonia", "cough")
    assert res["Pneumonia"].possible  # before the trigger
    assert not res["cough"].possible  # beyond max_scope (3 tokens)
    res = annotate(small, "Possible pneumonia.", "pneumonia")
    assert res["pneumonia"].possible


def test_terminator_stops_scope(engine, small):
    for eng in (engine, small):
        res = annotate(eng, "No fever but has cough.", "fever", "cough")
        assert res["fever"].negated
        assert not res["cough"].negated


def test_pseudo_trigger_blocks_negation(engine, small):
    for eng in (engine, small):
        res = annotate(eng, "No increase in edema.", "edema")
        assert not res["edema"].negated
        assert res["edema"].evidence == ()


def test_sentence_boundary_limits_scope(engine):
    res = annotate(engine, "Denies chest pain. Reports cough.", "chest pain", "cough")
    assert res["chest pain"].negated
    assert not res["cough"].negated


def test_sections_set_family_and_historical(engine):
    text = ("HPI: presents with chest pain.\n"
            "Past Medical History:\nhypertension, diabetes\n"
            "Family History:\nbreast cancer\n"
            "Social History: smoker")
    res = annotate(engine, text, "chest pain", "diabetes", "breast cancer", "smoker")
    assert res["diabetes"].historical and res["diabetes"].section == "past_medical_history"
    assert res["breast cancer"].family and res["breast cancer"].section == "family_history"
    assert any(e.kind == "section" and e.source == "sec.family_history" for e in res["breast cancer"].evidence)
    assert not any(res["chest pain"].attributes().values())
    assert res["chest pain"].section == "history_of_present_illness"
    assert not res["smoker"].family and res["smoker"].section == "social_history"


def test_historical_family_hypothetical_triggers(engine):
    res = annotate(engine, "History of myocardial infarction. Mother with breast cancer. Return if rash develops.",
                   "myocardial infarction", "breast cancer", "rash")
    assert res["myocardial infarction"].historical
    assert res["breast cancer"].family
    assert res["rash"].hypothetical
    res = annotate(engine, "Diabetes in her mother.", "Diabetes")
    assert res["Diabetes"].family


def test_negation_with_clitic(engine):
    assert annotate(engine, "He didn't have a rash.", "rash")["rash"].negated


def test_allowed_types_and_self_overlap(small):
    res = annotate(small, "History of asthma.", "asthma", label="problem")
    assert res["asthma"].historical
    res = annotate(small, "History of aspirin.", "aspirin", label="DRUG")
    assert not res["aspirin"].historical  # rule only allows PROBLEM
    text = "no fever"
    (r,) = small.annotate(text, [(0, 8, "PROBLEM")])  # the target covers the trigger: not self-modified
    assert not r.negated


def test_bad_spans_raise(engine):
    with pytest.raises(DataError, match="outside the text"):
        engine.annotate("short", [(0, 50, "X")])
    with pytest.raises(DataError):
        engine.annotate("short", [(0,)])


def test_sentence_splitter_keeps_offsets_and_abbreviations():
    text = "Seen by Dr. Smith today. Temp 37.5 e.g. mild. Fine!\n- item one\n- item two\n\nNew para"
    spans = split_sentences(text)
    pieces = [text[s:e] for s, e in spans]
    assert pieces == ["Seen by Dr. Smith today.", "Temp 37.5 e.g. mild.", "Fine!", "- item one", "- item two",
                      "New para"]


def test_detect_sections_offsets():
    rules = load_rules(DATA / "valid" / "section.yaml")
    text = "intro\nFH: mother MI\n  PMH:\nasthma"
    secs = detect_sections(text, rules)
    assert [s.as_tuple() for s in secs] == [(6, 22, "family_history"), (22, 33, "past_medical_history")]
    assert text[secs[0].header_start:secs[0].header_end] == "FH:"


def test_rules_from_iterable_and_no_sections():
    rules = [ContextRule(id="n", category="NEGATED_EXISTENCE", direction="FORWARD", literal="without")]
    eng = ConTextEngine(rules)
    (r,) = eng.annotate("Family History: without asthma", [(24, 30, "X")])
    assert r.negated and not r.family and r.section is None


_words = st.sampled_from(["no", "fever", "but", "cough", "denies", "history", "of", ".", "\n", "Family History:",
                          "possible", "was", "ruled", "out", "Dr.", "37.5", "mother", "n't", ":", "PMH:", " "])


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(_words, min_size=1, max_size=25), data=st.data())
def test_results_stay_within_text(engine, parts, data):
    text = " ".join(parts)
    n = len(text)
    spans = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n)).filter(lambda t: t[0] < t[1]),
                               max_size=4))
    results = engine.annotate(text, [(s, e, "X") for s, e in spans])
    assert [(r.start, r.end) for r in results] == spans
    for r in results:
        for ev in r.evidence:
            assert ev.span is not None and 0 <= ev.span[0] <= ev.span[1] <= n
    for m in engine.find_modifiers(text):
        assert 0 <= m.start < m.end <= n and 0 <= m.scope_start <= m.scope_end <= n
    for s, e in split_sentences(text):
        assert 0 <= s < e <= n and text[s:e].strip() == text[s:e]
