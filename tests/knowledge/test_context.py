"""ConText: directions, terminators, pseudo-triggers, sentence limits, sections, evidence, offsets."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgfusion.core.errors import DataError
from kgfusion.knowledge.context import ConTextEngine, split_sentences
from kgfusion.knowledge.rules import ContextRule, load_domain_rules, load_rules
from kgfusion.knowledge.sections import detect_sections

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


# ------------------------------------------------------------- review fixes (context_kgfusion.yaml)


def attrs(engine: ConTextEngine, text: str, term: str) -> set[str]:
    r = annotate(engine, text, term)[term]
    return {a for a, v in r.attributes().items() if v}


@pytest.mark.parametrize("text, term", [
    ("Fever: no", "Fever"),
    ("Chest pain: denies.", "Chest pain"),
    ("Dysuria: none", "Dysuria"),
    ("Hematuria: negative, flank pain: present.", "Hematuria"),
    ("Stridor: absent\n", "Stridor"),
    ("Fever:\nno", "Fever"),  # the value on the next line belongs to the header above it
    ("Chest pain:\n  Denies.", "Chest pain"),
])
def test_colon_value_negates_its_header_backward(engine, text, term):
    assert attrs(engine, text, term) == {"negated"}
    r = annotate(engine, text, term)[term]
    assert [e.source for e in r.evidence] == ["ctx.kgf.colon_negative"]


@pytest.mark.parametrize("text, term", [
    ("Cough. Fever: no", "Cough"),  # sentence end
    ("- Cough\n- Fever: no", "Cough"),  # previous list item
    ("Cough\nFever: no", "Cough"),  # previous line item
    ("Palpitations\nSyncope: denied", "Palpitations"),
    ("Chills: yes, night sweats: no.", "Chills"),  # previous header: value pair on the same line
    ("Cough; fever: no", "Cough"),
    ("Fever: no. Cough: yes.", "Cough"),  # backward only: never the item after the value
    ("Ankle swelling: none today.", "Ankle swelling"),  # the value must end at punctuation / line end
    ("Fever:\n\nno", "Fever"),  # a blank line: not the same item
    ("Fever:\nno cough today", "Fever"),  # "no cough" on the next line is a new statement
])
def test_colon_value_stays_within_its_item(engine, text, term):
    assert "negated" not in attrs(engine, text, term)


def test_colon_value_scope_is_the_header_item(engine):
    text = "Chills: yes, night sweats: no."
    (mod,) = [m for m in engine.find_modifiers(text) if m.rule.id == "ctx.kgf.colon_negative"]
    assert text[mod.scope_start:mod.scope_end].strip(" ,") == "yes, night sweats"


@pytest.mark.parametrize("text, term", [
    ("HPI: no fever or rash.", "rash"),
    ("Assessment: no evidence of pneumonia.", "pneumonia"),
    ("Resolved: no longer has dysuria.", "dysuria"),
    ("Family History:\nNo family history of lung cancer.", "lung cancer"),
])
def test_header_colon_does_not_swallow_forward_no(engine, text, term):
    assert "negated" in attrs(engine, text, term)


def test_was_negative_for_is_forward(engine):
    assert attrs(engine, "He was negative for influenza.", "influenza") == {"negated"}
    assert attrs(engine, "Stool studies are negative for C. diff infection.", "infection") == {"negated"}
    assert attrs(engine, "Negative for pneumonia.", "pneumonia") == {"negated"}
    # the backward "was negative" still negates what comes before it
    assert attrs(engine, "Influenza testing was negative.", "Influenza") == {"negated"}
    assert attrs(engine, "Pneumonia was negative for nothing.", "Pneumonia") == set()


@pytest.mark.parametrize("text, term", [
    ("No known drug allergies.", "drug allergies"),
    ("Allergies: No known drug allergies.", "drug allergies"),
    ("No known history of seizures.", "seizures"),
    ("She has no prior history of venous thromboembolism.", "venous thromboembolism"),
    ("No previous stroke.", "stroke"),
    ("No documented seizures.", "seizures"),
])
def test_no_known_is_negated_not_historical(engine, text, term):
    assert attrs(engine, text, term) == {"negated"}


def test_known_alone_stays_historical(engine):
    assert attrs(engine, "Known chronic kidney disease, stage 3.", "chronic kidney disease") == {"historical"}


def test_possible_triggers_both_directions(engine):
    assert attrs(engine, "Suspected gout of the first toe.", "gout") == {"possible"}  # forward
    assert attrs(engine, "Early sepsis is suspected.", "sepsis") == {"possible"}  # backward
    assert attrs(engine, "Concern for sepsis given the fever.", "sepsis") == {"possible"}
    assert attrs(engine, "Sepsis, concern for pneumonia.", "Sepsis") == set()  # concern for: forward only
    assert attrs(engine, "Mammogram is suspicious for breast cancer.", "breast cancer") == {"possible"}
    assert attrs(engine, "Admit to r/o acute coronary syndrome.", "acute coronary syndrome") == {"possible"}
    assert attrs(engine, "Rule out meningitis.", "meningitis") == {"possible"}
    assert attrs(engine, "The differential includes viral gastroenteritis.", "viral gastroenteritis") == {"possible"}
    assert attrs(engine, "Questionable asthma.", "asthma") == {"possible"}


@pytest.mark.parametrize("text", ["Appendicitis cannot be excluded.", "Appendicitis cannot be ruled out.",
                                  "Appendicitis cannot be completely excluded.", "Appendicitis can't be excluded."])
def test_cannot_be_excluded_is_possible_backward(engine, text):
    assert attrs(engine, text, "Appendicitis") == {"possible"}
    assert attrs(engine, text.replace("Appendicitis", "It") + " Gout too.", "Gout") == set()  # not forward


def test_could_not_rule_out_is_bidirectional(engine):
    assert attrs(engine, "We could not rule out a stress fracture.", "stress fracture") == {"possible"}
    assert attrs(engine, "A stress fracture we could not rule out.", "stress fracture") == {"possible"}


@pytest.mark.parametrize("text, term", [
    ("Mental status changes due to delirium.", "delirium"),
    ("Documented fever of 38.9 C in the emergency department.", "fever"),
    ("Screen for hepatitis B prior to starting rituximab.", "hepatitis B"),
    ("Previously healthy man with acute pancreatitis.", "acute pancreatitis"),
])
def test_false_historical_triggers_removed(engine, text, term):
    assert "historical" not in attrs(engine, text, term)


@pytest.mark.parametrize("text, term", [
    ("Status post cholecystectomy for gallstones.", "gallstones"),
    ("S/p knee replacement for osteoarthritis.", "osteoarthritis"),
    ("Prior myocardial infarction.", "myocardial infarction"),
    ("She was previously treated for depression.", "depression"),
    ("He had shingles last year.", "shingles"),
])
def test_historical_triggers(engine, text, term):
    assert attrs(engine, text, term) == {"historical"}


def test_prior_is_forward_and_short(engine):
    assert "historical" not in attrs(engine, "Gout, prior.", "Gout")
    text = "Prior appendectomy, now with new onset of severe abdominal pain and fever."
    assert "historical" not in attrs(engine, text, "fever")  # beyond max_scope 5


def test_family_history_is_family_only(engine):
    assert attrs(engine, "Family history is notable for colon cancer.", "colon cancer") == {"family"}
    assert attrs(engine, "Family history of sickle cell anemia.", "sickle cell anemia") == {"family"}


def test_hypothetical_instructions(engine):
    assert attrs(engine, "Monitor for signs of bleeding.", "bleeding") == {"hypothetical"}
    assert attrs(engine, "Screen for tuberculosis before the biologic.", "tuberculosis") == {"hypothetical"}
    assert attrs(engine, "She should report any visual changes.", "visual changes") == {"hypothetical"}
    assert attrs(engine, "Bleeding was seen; monitor for anemia.", "Bleeding") == set()  # forward only


def test_new_terminators(engine):
    assert attrs(engine, "Denies tobacco use; reports daily alcohol use.", "daily alcohol use") == set()
    assert attrs(engine, "Denies tobacco use; reports daily alcohol use.", "tobacco use") == {"negated"}
    assert attrs(engine, "Denies dizziness, endorses fatigue.", "fatigue") == set()
    assert attrs(engine, "Denies dizziness, endorses fatigue.", "dizziness") == {"negated"}
    assert attrs(engine, "History of gout; reports knee pain.", "knee pain") == set()


def test_line_items_split_sentences(engine):
    text = "Medications:\nSalbutamol inhaler as needed\nLevothyroxine 75 mcg daily"
    assert attrs(engine, text, "Levothyroxine") == set()  # "as needed" stays on its own line
    assert attrs(engine, text, "Salbutamol") == set()
    text = "Seen for cough and\nfever. Fever:\nNone\nGout"
    pieces = [text[s:e] for s, e in split_sentences(text)]
    assert pieces == ["Seen for cough and\nfever.", "Fever:\nNone", "Gout"]


def test_kgfusion_rule_file_is_documented():
    path = Path(__file__).resolve().parents[2] / "data" / "rules" / "medical" / "context_kgfusion.yaml"
    rules = load_rules(path.parent)
    own = [r for r in rules.by_kind(ContextRule) if rules.origin(r.id) == str(path)]
    assert len(own) >= 15
    assert all(r.id.startswith("ctx.kgf.") and r.source == "kgfusion" and r.note for r in own)
    for gone in ("ctx.medspacy.097.no", "ctx.pycontext.historical.documented", "ctx.kgf.status_post"):
        assert gone not in rules
    assert "by the kgfusion authors" in path.read_text(encoding="utf-8")[:300]
