"""JSONL / CSV / FHIR R4 exports: shape, required fields, statuses and reference integrity."""
from __future__ import annotations

import csv
import io
import json

import pytest

from kgfusion.apps.medical.export import (
    CSV_COLUMNS,
    to_csv,
    to_fhir,
    to_html,
    to_jsonl,
    write_fhir,
    write_jsonl,
)
from tests.apps.medical.test_extract import NOTE

REQUIRED = {  # FHIR R4 1..1 / 1..* elements of the resources we write
    "Patient": [],
    "DocumentReference": ["status", "content"],
    "Condition": ["subject"],
    "FamilyMemberHistory": ["status", "patient", "relationship"],
    "MedicationStatement": ["status", "medicationCodeableConcept", "subject"],
}
MED_STATUS = {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken"}


@pytest.fixture
def result(extractor):
    return extractor.extract(NOTE, "n1")


def references(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "reference":
                yield v
            else:
                yield from references(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from references(v)


def test_fhir_bundle_shape_and_references(result):
    bundle, summary = to_fhir([result])
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    for e in bundle["entry"]:
        res = e["resource"]
        assert res["resourceType"] in REQUIRED
        assert e["fullUrl"] == f"urn:uuid:{res['id']}"
        for field in REQUIRED[res["resourceType"]]:
            assert res.get(field), f"{res['resourceType']} lacks {field}"
        for ref in references(res):
            assert ref in full_urls, f"dangling reference {ref}"
    json.dumps(bundle)  # serialisable
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types.count("Patient") == 1 and types.count("DocumentReference") == 1
    assert summary["Condition"] == types.count("Condition") and summary["skipped_hypothetical"] >= 1


def by_code(bundle, rtype, text):
    out = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype
           and text in json.dumps(e["resource"].get("code") or e["resource"].get("condition")
                                  or e["resource"].get("medicationCodeableConcept"))]
    assert out, f"no {rtype} for {text}"
    return out


def test_fhir_condition_statuses(result):
    bundle, _ = to_fhir([result])
    conds = by_code(bundle, "Condition", "chronic kidney disease")
    assert len(conds) == 1  # every mention of the concept with the same status: one Condition
    ckd = conds[0]
    assert ckd["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert ckd["clinicalStatus"]["coding"][0]["code"] == "active"
    systems = {c["system"]: c["code"] for c in ckd["code"]["coding"]}
    assert systems["http://hl7.org/fhir/sid/icd-10-cm"] == "N18.9"
    assert systems["http://purl.obolibrary.org/obo/doid.owl"] == "DOID:784"
    assert "4 mention(s)" in ckd["note"][0]["text"]  # + "Renal failure", linked to the same concept
    pneu = {c["verificationStatus"]["coding"][0]["code"]: c for c in by_code(bundle, "Condition", "pneumonia")}
    assert set(pneu) == {"refuted", "provisional"}
    assert "clinicalStatus" not in pneu["refuted"]
    gout = by_code(bundle, "Condition", "gout")[0]  # Past Medical History: historical
    assert "clinicalStatus" not in gout and gout["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert not any("breast cancer" in json.dumps(c.get("code")) for c in
                   (e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"))


def test_fhir_family_and_medications(result):
    bundle, _ = to_fhir([result])
    fam = by_code(bundle, "FamilyMemberHistory", "breast cancer")[0]
    assert fam["relationship"]["coding"][0]["code"] == "MTH" and fam["status"] == "completed"
    met = by_code(bundle, "MedicationStatement", "Metformin")[0]
    assert met["status"] in MED_STATUS and met["status"] == "unknown"  # mentioned in the HPI
    assert met["medicationCodeableConcept"]["coding"][0] == {
        "system": "https://go.drugbank.com", "code": "DB00331", "display": "Metformin"}
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "MedicationStatement":
            assert e["resource"]["status"] in MED_STATUS


def test_medication_section_and_negation_status(extractor):
    note = "Medications:\nMetformin 500 mg daily.\n\nAssessment:\nStable. No furosemide. If needed, start lisinopril.\n"
    bundle, _ = to_fhir([extractor.extract(note, "m")])
    status = {e["resource"]["medicationCodeableConcept"]["text"]: e["resource"]["status"]
              for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationStatement"}
    assert status == {"Metformin": "active", "Furosemide": "not-taken", "Lisinopril": "intended"}


def test_jsonl_csv_and_html(result, tmp_path):
    path = write_jsonl([result], tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["note_id"] == "n1" and rows[0]["text"] == NOTE
    for m in rows[0]["mentions"]:
        assert NOTE[m["start"]:m["end"]] == m["text"]
        assert set(m["attributes"]) == {"negated", "possible", "historical", "family", "hypothetical"}
    assert "text" not in json.loads(to_jsonl([result], include_text=False))
    table = list(csv.DictReader(io.StringIO(to_csv([result]))))
    assert len(table) == len(result.mentions) and list(table[0]) == CSV_COLUMNS
    ckd = next(r for r in table if r["text"] == "CKD")
    assert ckd["expansion"] == "chronic kidney disease" and ckd["icd10cm"] == "N18.9"
    html = to_html(result)
    assert html.count("<mark") == len(result.mentions) and "line-through" in html and "font-style:italic" in html
    summary = write_fhir([result], tmp_path / "b.json")
    assert json.loads((tmp_path / "b.json").read_text())["type"] == "collection" and summary["Patient"] == 1
