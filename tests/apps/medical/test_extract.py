"""ClinicalExtractor end to end with a keyword predictor, the tiny graph and the packaged ConText rules."""
from __future__ import annotations

import pytest

from kgfusion.apps.medical.extract import NoteRejected, split_chunks
from kgfusion.apps.medical.readers import NoteInput

NOTE = (
    "History of Present Illness:\n"
    "Patient with chronic kidney disease (CKD) and hypertension presents with fever. CKD is stable. "
    "Denies chest pain. Taking metformin and aspirin. No pneumonia.\n\n"
    "Past Medical History:\nGout.\n\n"
    "Family History:\nMother had breast cancer.\n\n"
    "Assessment and Plan:\nHTN: continue lisinopril. Return if fever develops. "
    "She denies fever but has chest pain. Possible pneumonia on imaging. Renal failure noted. "
    "Pneumonia was ruled out.\n"
)


def by_text(result, text, nth=0):
    hits = [m for m in result.mentions if m.text == text]
    assert len(hits) > nth, f"{text!r} not among {[m.text for m in result.mentions]}"
    return hits[nth]


def check_offsets(result):
    for m in result.mentions:
        assert result.text[m.start:m.end] == m.text
        for e in m.evidence:
            if e.span is not None:
                assert 0 <= e.span[0] <= e.span[1] <= len(result.text)


def test_offsets_sources_and_labels(extractor):
    r = extractor.extract(NOTE, "n1")
    check_offsets(r)
    assert by_text(r, "pneumonia").sources == ["model", "gazetteer"]
    assert by_text(r, "aspirin").sources == ["gazetteer"] and by_text(r, "aspirin").label == "Chemical"
    assert by_text(r, "Renal failure").sources == ["model"]
    both = by_text(r, "metformin")
    assert both.score == pytest.approx(1 - (1 - 0.7) * (1 - 0.9))  # both sources agree
    kinds = {e.kind for e in both.evidence}
    assert {"model", "kg"} <= kinds


def test_context_directions_and_terminator(extractor):
    r = extractor.extract(NOTE, "n1")
    assert by_text(r, "chest pain", 0).attributes["negated"]            # "Denies" forward
    assert by_text(r, "pneumonia", 0).attributes["negated"]             # "No"
    assert by_text(r, "Gout").attributes["historical"]                  # PMH section
    assert by_text(r, "Gout").section == "past_medical_history"
    assert by_text(r, "breast cancer").attributes["family"]             # Family History section
    assert by_text(r, "fever", 1).attributes["hypothetical"]            # "Return if ..."
    assert by_text(r, "fever", 2).attributes["negated"]                 # "denies fever but ..."
    after_but = by_text(r, "chest pain", 1)
    assert not after_but.attributes["negated"] and after_but.asserted   # "but" terminates the scope
    assert by_text(r, "pneumonia", 1).attributes["possible"]            # "Possible"
    backward = by_text(r, "Pneumonia")                                  # "... was ruled out": backward scope
    assert backward.attributes["negated"] and not backward.attributes["possible"]
    plain = by_text(r, "fever", 0)
    assert plain.asserted and not any(plain.attributes.values())
    ev = [e for e in by_text(r, "chest pain", 0).evidence if e.kind == "rule"]
    assert ev and "NEGATED" in ev[0].detail.upper()


def test_abbreviation_definition_links_later_uses(extractor):
    r = extractor.extract(NOTE, "n1")
    uses = [m for m in r.mentions if m.text == "CKD"]
    assert len(uses) == 2  # the defining "(CKD)" and the later use
    for m in uses:
        assert m.expansion == "chronic kidney disease"
        assert m.concept.curie == "DOID:784" and m.sources == ["abbreviation"]
    htn = by_text(r, "HTN")  # from the list: single sense
    assert htn.expansion == "hypertension" and htn.concept.curie == "DOID:10763"
    assert any(x.short == "CKD" and x.source == "definition" for x in r.abbreviations)


def test_linking_codes_and_facts(extractor):
    r = extractor.extract(NOTE, "n1")
    ckd = by_text(r, "chronic kidney disease")
    assert ckd.concept.codes["ICD10CM"] == ["N18.9"] and ckd.concept.codes["MESH"] == ["D007676"]
    met = by_text(r, "metformin")
    assert met.concept.codes["DRUGBANK"] == ["DB00331"]
    assert [f.disease_label for f in met.concept.facts] == ["type 2 diabetes mellitus"]
    htn = by_text(r, "hypertension")
    assert "Lisinopril" in [f.drug_label for f in htn.concept.facts]
    renal = by_text(r, "Renal failure")  # model-only span linked by retrieval
    assert renal.concept is not None and renal.concept.match in ("embedding", "ngram")
    assert renal.concept.curie == "DOID:784"


def test_policies(make_extractor):
    text = "History of chronic kidney disease."
    union = make_extractor(policy="union").extract(text)
    assert [m.text for m in union.mentions] == ["chronic kidney disease"]
    model = make_extractor(policy="prefer_model").extract(text)
    assert [m.text for m in model.mentions] == ["kidney disease"]
    kept = model.mentions[0]
    assert {e.kind for e in kept.evidence} >= {"model", "kg"}  # the losing gazetteer span is still evidence
    gaz = make_extractor(policy="prefer_gazetteer").extract(text)
    assert [m.text for m in gaz.mentions] == ["chronic kidney disease"]


def test_components_can_be_switched_off(make_extractor):
    r = make_extractor(gazetteer=False, abbreviations=False, link=False, context=False).extract(NOTE)
    assert all(m.sources == ["model"] for m in r.mentions)
    assert all(m.concept is None and not any(m.attributes.values()) for m in r.mentions)


def test_long_note_offsets_and_chunking(make_extractor):
    para = ("Patient denies chest pain. History of chronic kidney disease (CKD) with fever. "
            "Taking metformin.\n\n")
    text = para * (20_000 // len(para) + 1)
    assert len(text) > 20_000
    whole = make_extractor().extract(text, "long")
    check_offsets(whole)
    chunked = make_extractor(max_chars=5_000).extract(text, "long")
    check_offsets(chunked)
    assert chunked.chunks > 4 and any("chunks" in w for w in chunked.warnings)
    assert [(m.start, m.end, m.label) for m in chunked.mentions] == [(m.start, m.end, m.label) for m in whole.mentions]


def test_split_chunks_cover_text():
    text = ("word " * 50 + "\n\n") * 40
    chunks = split_chunks(text, 1000)
    assert "".join(p for _, p in chunks) == text
    assert all(len(p) <= 1000 and text[o:o + len(p)] == p for o, p in chunks)
    hard = "x" * 2500  # no boundary at all: hard cuts
    assert [len(p) for _, p in split_chunks(hard, 1000)] == [1000, 1000, 500]


def test_bad_input_rejected(make_extractor):
    ex = make_extractor(max_chars=1000, oversize="reject")
    for text, reason in (("", "empty"), ("   \n", "empty"), ("abc\x00def", "binary"), ("x " * 600, "max_chars"),
                         (b"bytes", "not a string")):
        with pytest.raises(NoteRejected, match=reason):
            ex.extract(text, "bad")
    notes = [NoteInput("ok", "Patient has fever."), NoteInput("empty", "  ", "f.csv", 3),
             NoteInput("huge", "fever " * 300, "g.txt")]
    results, rejects = ex.extract_many(notes)
    assert [r.note_id for r in results] == ["ok"]
    assert [(r.source, r.row, r.reason) for r in rejects] == [("f.csv", 3, "empty note"), ("g.txt", 0, rejects[1].reason)]
    assert "max_chars" in rejects[1].reason


def test_extract_many_batches_model_calls(make_extractor):
    from tests.apps.medical.conftest import KeywordPredictor

    pred = KeywordPredictor()
    ex = make_extractor(predictor=pred, batch_notes=3)
    notes = [NoteInput(f"n{i}", f"Note {i}: fever and chest pain.") for i in range(7)]
    results, rejects = ex.extract_many(notes)
    assert len(results) == 7 and not rejects
    assert pred.calls == [3, 3, 1]
    assert all(len(r.mentions) == 2 for r in results)


def test_model_spans_cleaned_and_abbreviations_fused():
    from kgfusion.apps.medical.extract import clean_model_spans
    from kgfusion.core.predict import Span

    text = "History of Present Illness:\nchest pain\nMetformin 500 mcg daily"

    def span(sub, label, score):
        i = text.index(sub)
        return Span(i, i + len(sub), label, score, sub)

    spans = [span("Illness", "Disease", 0.9), span("chest pain\nMetformin", "Chemical", 0.8),
             span("mcg", "Chemical", 0.7), span("500", "Chemical", 0.2)]
    got = [(s.text, text[s.start:s.end]) for s in clean_model_spans(text, spans, 0.1, [(0, 27)])]
    assert got == [("chest pain", "chest pain"), ("Metformin", "Metformin")]


def test_abbreviation_label_beats_a_mislabelled_model_span(make_extractor):
    from tests.apps.medical.conftest import KeywordPredictor

    pred = KeywordPredictor({r"CKD": "Chemical"}, score=0.5)
    r = make_extractor(predictor=pred).extract("Chronic kidney disease (CKD) is stable. CKD stage 3.")
    ckd = [m for m in r.mentions if m.text == "CKD"]
    assert len(ckd) == 2 and all(m.label == "Disease" and m.concept.curie == "DOID:784" for m in ckd)
    assert all({"model", "kg"} <= {e.kind for e in m.evidence} for m in ckd)  # the model's span stays as evidence


def test_chemical_spans_lose_a_trailing_dose():
    from kgfusion.apps.medical.extract import clean_model_spans
    from kgfusion.core.predict import Span

    text = "Aspirin 325 mg given. Carvedilol 12.5\nTrisomy 21 noted. Vitamin B12 daily. Salbutamol inhaler"

    def span(sub, label):
        i = text.index(sub)
        return Span(i, i + len(sub), label, 0.9, sub)

    spans = [span("Aspirin 325 mg", "Chemical"), span("Carvedilol 12.5", "Chemical"), span("Trisomy 21", "Disease"),
             span("Vitamin B12", "Chemical"), span("Salbutamol inhaler", "Chemical")]
    got = [text[s.start:s.end] for s in clean_model_spans(text, spans, 0.0)]
    assert got == ["Aspirin", "Carvedilol", "Trisomy 21", "Vitamin B12", "Salbutamol"]  # diseases keep numbers


def test_aspirin_links_through_its_synonym(make_extractor):
    """A dose-suffixed model span ("Aspirin 325") is trimmed and linked to DrugBank's Acetylsalicylic acid."""
    from tests.apps.medical.conftest import KeywordPredictor

    pred = KeywordPredictor({r"aspirin 325": "Chemical"})
    r = make_extractor(predictor=pred).extract("Aspirin 325 mg given in the emergency department.")
    (m,) = [m for m in r.mentions if m.label == "Chemical"]
    assert m.text == "Aspirin" and m.concept is not None
    assert m.concept.codes["DRUGBANK"] == ["DB00945"] and m.concept.label == "Acetylsalicylic acid"


def test_defined_abbreviation_takes_a_label_only_from_a_span_holding_the_long_forms_head(make_extractor):
    from tests.apps.medical.conftest import KeywordPredictor

    pred = KeywordPredictor({r"breast cancer": "Disease", r"adenomatous polyposis": "Disease"}, score=0.9)
    r = make_extractor(predictor=pred).extract(
        "Mutations of the breast cancer susceptibility gene 1 (BRCA1) raise the risk. "
        "Familial adenomatous polyposis (FAP) is rare; FAP needs colonoscopy.")
    texts = [m.text for m in r.mentions]
    assert "breast cancer" in texts and "BRCA1" not in texts  # the long form's head is "gene 1": not a Disease
    fap = [m for m in r.mentions if m.text == "FAP"]
    assert len(fap) == 2 and all(m.label == "Disease" and m.sources == ["abbreviation"] for m in fap)
    assert any(x.short == "BRCA1" and x.source == "definition" for x in r.abbreviations)  # still expanded
