"""Write extraction results: JSONL (one note per line), CSV (one mention per row), FHIR R4 Bundle.

FHIR mapping (a "collection" Bundle; per note a Patient placeholder, since notes carry no patient
identity here, and a DocumentReference every resource points back to):

- Disease mention, about the patient -> **Condition**, one per distinct concept (or unlinked text) and
  status per note; code = DOID (or Symptom Ontology) + ICD-10-CM + MeSH + OMIM codings from the KG
  xrefs (text = the concept label, or the mention when unlinked).
  verificationStatus: negated -> ``refuted``; possible -> ``provisional``; else ``confirmed`` (the note
  asserts it). clinicalStatus: ``active`` for current asserted and possible mentions; *omitted* for
  refuted ones (a refuted condition has no clinical status) and for historical ones: "history of MI"
  or a Past Medical History entry does not say whether it is resolved (hypertension in a PMH list is
  usually still active), so mapping historical to resolved/inactive would invent facts. Historical
  mentions get category ``problem-list-item`` (with a note saying so), current ones
  ``encounter-diagnosis``.
- Family mention -> **FamilyMemberHistory** (status completed, relationship from the sentence: mother
  MTH, father FTH, ... else FAMMEMB); negated family mentions ("no family history of X") are skipped
  (R4 cannot state a relative's absent condition without a code for absence).
- Hypothetical mentions ("return if fever develops") are not conditions: skipped.
- Chemical mention -> **MedicationStatement** (one per drug and status): status ``not-taken`` when
  negated, ``intended`` when hypothetical, ``completed`` when historical, ``active`` in a medications
  section, else ``unknown``; medicationCodeableConcept with the DrugBank coding. Drugs in the allergies
  section or about family members are skipped.
Every skip is counted in the summary ``to_fhir`` returns.
"""
from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kgfusion.apps.medical.extract import Mention, NoteResult
from kgfusion.core.fileio import atomic_write_text

SYSTEMS = {
    "DOID": "http://purl.obolibrary.org/obo/doid.owl",
    "SYMP": "http://purl.obolibrary.org/obo/symp.owl",
    "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "MESH": "urn:oid:2.16.840.1.113883.6.177",
    "OMIM": "https://www.omim.org",
    "DRUGBANK": "https://go.drugbank.com",
}
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
RELATIVES = {  # word in the sentence -> v3 RoleCode
    "mother": ("MTH", "mother"), "father": ("FTH", "father"), "brother": ("BRO", "brother"),
    "sister": ("SIS", "sister"), "son": ("SON", "son"), "daughter": ("DAU", "daughter"),
    "grandmother": ("GRMTH", "grandmother"), "grandfather": ("GRFTH", "grandfather"), "aunt": ("AUNT", "aunt"),
    "uncle": ("UNCLE", "uncle"), "cousin": ("COUSN", "cousin"), "sibling": ("SIB", "sibling"),
}
MEDICATION_SECTIONS = {"medications", "discharge_medications"}
CSV_COLUMNS = ["note_id", "start", "end", "text", "label", "score", "sources", "asserted", "negated", "possible",
               "historical", "family", "hypothetical", "section", "expansion", "concept_curie", "concept_label",
               "concept_uri", "link_score", "link_match", "doid", "symp", "icd10cm", "mesh", "omim", "drugbank",
               "kg_facts"]


# ------------------------------------------------------------------------------- JSONL / CSV


def to_jsonl(results: Iterable[NoteResult], include_text: bool = True) -> str:
    return "".join(json.dumps(r.to_dict(include_text), ensure_ascii=False, sort_keys=True) + "\n" for r in results)


def write_jsonl(results: Iterable[NoteResult], path: str | Path, include_text: bool = True) -> Path:
    """One JSON object per note (its mentions, abbreviations, warnings and, by default, its text)."""
    return atomic_write_text(path, to_jsonl(results, include_text))


def mention_row(note_id: str, m: Mention) -> dict[str, Any]:
    c = m.concept
    codes = c.codes if c else {}
    return {
        "note_id": note_id, "start": m.start, "end": m.end, "text": m.text, "label": m.label,
        "score": round(m.score, 4), "sources": "+".join(m.sources), "asserted": m.asserted,
        **{a: bool(m.attributes.get(a)) for a in ("negated", "possible", "historical", "family", "hypothetical")},
        "section": m.section or "", "expansion": m.expansion or "",
        "concept_curie": c.curie if c else "", "concept_label": c.label if c else "", "concept_uri": c.uri if c else "",
        "link_score": c.score if c else "", "link_match": c.match if c else "",
        **{k.lower(): "|".join(codes.get(k, [])) for k in ("DOID", "SYMP", "ICD10CM", "MESH", "OMIM", "DRUGBANK")},
        "kg_facts": "; ".join(f.text() for f in c.facts) if c else "",
    }


def to_csv(results: Iterable[NoteResult]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        for m in r.mentions:
            writer.writerow(mention_row(r.note_id, m))
    return buf.getvalue()


def write_csv(results: Iterable[NoteResult], path: str | Path) -> Path:
    """One mention per row (CSV_COLUMNS)."""
    return atomic_write_text(path, to_csv(results))


# -------------------------------------------------------------------------------------- FHIR


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "kgfusion:" + "/".join(parts)))


def _codeable(m: Mention, systems: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"text": m.concept.label if m.concept else m.text}
    if m.concept:
        coding = []
        for system in systems:
            for code in m.concept.codes.get(system, []):
                entry = {"system": SYSTEMS[system], "code": code}
                if system in ("DOID", "SYMP", "DRUGBANK"):
                    entry["display"] = m.concept.label
                coding.append(entry)
        if coding:
            out["coding"] = coding
    return out


def _concept_key(m: Mention) -> str:
    return m.concept.uri if m.concept else "text:" + m.text.lower()


def _relationship(text: str, m: Mention) -> dict[str, Any]:
    start = max(text.rfind(ch, 0, m.start) for ch in ".\n;")
    end_candidates = [i for i in (text.find(ch, m.end) for ch in ".\n;") if i >= 0]
    sentence = text[start + 1 : min(end_candidates) if end_candidates else len(text)].lower()
    for word, (code, display) in RELATIVES.items():
        if re.search(rf"\b{word}s?\b", sentence):
            return {"coding": [{"system": ROLE_CODE, "code": code, "display": display}], "text": display}
    return {"coding": [{"system": ROLE_CODE, "code": "FAMMEMB", "display": "family member"}], "text": "family member"}


def _mention_note(mentions: Sequence[Mention]) -> str:
    spans = ", ".join(f"'{m.text}' [{m.start},{m.end})" for m in mentions[:10])
    return f"kgfusion NLP: {len(mentions)} mention(s): {spans}"


def note_resources(result: NoteResult) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(resources with fullUrl, skip counts) for one note; see the module docstring for the mapping."""
    nid = result.note_id
    patient_id, doc_id = _uuid(nid, "patient"), _uuid(nid, "document")
    patient_ref = {"reference": f"urn:uuid:{patient_id}"}
    doc_ref = {"reference": f"urn:uuid:{doc_id}"}
    resources: list[dict[str, Any]] = [
        {"fullUrl": f"urn:uuid:{patient_id}", "resource": {
            "resourceType": "Patient", "id": patient_id,
            "identifier": [{"system": "urn:kgfusion:note-patient", "value": nid}]}},
        {"fullUrl": f"urn:uuid:{doc_id}", "resource": {
            "resourceType": "DocumentReference", "id": doc_id, "status": "current", "subject": patient_ref,
            "description": f"clinical note {nid}",
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "title": nid,
                                        "size": len(result.text.encode("utf-8"))}}]}},
    ]
    skipped = {"hypothetical": 0, "negated_family": 0, "allergy_drug": 0, "family_drug": 0}
    groups: dict[tuple, list[Mention]] = {}
    for m in result.mentions:
        a = m.attributes
        if m.label == "Disease":
            if a.get("family"):
                if a.get("negated"):
                    skipped["negated_family"] += 1
                    continue
                rel = _relationship(result.text, m)
                key = ("FamilyMemberHistory", rel["coding"][0]["code"], _concept_key(m))
            elif a.get("hypothetical") and not a.get("negated"):
                skipped["hypothetical"] += 1
                continue
            else:
                ver = "refuted" if a.get("negated") else "provisional" if a.get("possible") else "confirmed"
                hist = bool(a.get("historical")) and ver != "refuted"
                key = ("Condition", ver, hist, _concept_key(m))
        elif m.label == "Chemical":
            if a.get("family"):
                skipped["family_drug"] += 1
                continue
            if m.section == "allergies":
                skipped["allergy_drug"] += 1
                continue
            status = ("not-taken" if a.get("negated") else "intended" if a.get("hypothetical")
                      else "completed" if a.get("historical")
                      else "active" if m.section in MEDICATION_SECTIONS else "unknown")
            key = ("MedicationStatement", status, _concept_key(m))
        else:
            continue
        groups.setdefault(key, []).append(m)
    for key, ms in groups.items():
        rid = _uuid(nid, *map(str, key))
        first = ms[0]
        kind = key[0]
        if kind == "Condition":
            _, ver, hist, _ = key
            res: dict[str, Any] = {
                "resourceType": "Condition", "id": rid,
                "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": ver}]},
                "category": [{"coding": [{"system": CONDITION_CATEGORY,
                                          "code": "problem-list-item" if hist else "encounter-diagnosis"}]}],
                "code": _codeable(first, ("DOID", "SYMP", "ICD10CM", "MESH", "OMIM")),
                "subject": patient_ref,
                "evidence": [{"detail": [doc_ref]}],
                "note": [{"text": _mention_note(ms) + (
                    "; historical mention (the note does not state whether it is resolved)" if hist else "")}],
            }
            if ver != "refuted" and not hist:
                res["clinicalStatus"] = {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]}
        elif kind == "FamilyMemberHistory":
            res = {
                "resourceType": "FamilyMemberHistory", "id": rid, "status": "completed", "patient": patient_ref,
                "relationship": _relationship(result.text, first),
                "condition": [{"code": _codeable(first, ("DOID", "SYMP", "ICD10CM", "MESH", "OMIM"))}],
                "note": [{"text": _mention_note(ms)}],
            }
        else:
            res = {
                "resourceType": "MedicationStatement", "id": rid, "status": key[1],
                "medicationCodeableConcept": _codeable(first, ("DRUGBANK",)),
                "subject": patient_ref, "derivedFrom": [doc_ref],
                "note": [{"text": _mention_note(ms)}],
            }
        resources.append({"fullUrl": f"urn:uuid:{rid}", "resource": res})
    return resources, skipped


def to_fhir(results: Iterable[NoteResult]) -> tuple[dict[str, Any], dict[str, int]]:
    """A FHIR R4 Bundle (type collection) for all notes, and counts per resource type and skip reason."""
    return fhir_bundle(note_resources(r) for r in results)


def fhir_bundle(per_note: Iterable[tuple[list[dict[str, Any]], dict[str, int]]]) -> tuple[dict[str, Any], dict[str, int]]:
    """The Bundle and its summary from each note's ``note_resources`` (resources, skip counts)."""
    entries: list[dict[str, Any]] = []
    summary: dict[str, int] = {}
    for resources, skipped in per_note:
        entries += resources
        for e in resources:
            t = e["resource"]["resourceType"]
            summary[t] = summary.get(t, 0) + 1
        for k, v in skipped.items():
            summary[f"skipped_{k}"] = summary.get(f"skipped_{k}", 0) + v
    bundle = {"resourceType": "Bundle", "id": _uuid("bundle", *(e["fullUrl"] for e in entries[:1])),
              "type": "collection", "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "entry": entries}
    return bundle, summary


def write_fhir(results: Iterable[NoteResult], path: str | Path) -> dict[str, int]:
    bundle, summary = to_fhir(results)
    atomic_write_text(path, json.dumps(bundle, indent=2, ensure_ascii=False) + "\n")
    return summary


# ------------------------------------------------------------------------------- HTML / table

COLOURS = {"Disease": "#fde2e1", "Chemical": "#dbeafe"}
BORDERS = {"Disease": "#dc2626", "Chemical": "#2563eb"}


def mention_style(m: Mention) -> str:
    """CSS of a highlighted mention: colour by label; negated struck through, historical grey,
    family italic, possible / hypothetical dashed underline."""
    a = m.attributes
    style = [f"background:{COLOURS.get(m.label, '#eeeeee')}", f"border-bottom:2px solid {BORDERS.get(m.label, '#555')}",
             "padding:0 2px", "border-radius:3px"]
    if a.get("negated"):
        style.append("text-decoration:line-through")
    if a.get("historical"):
        style.append("color:#6b7280")
    if a.get("family"):
        style.append("font-style:italic")
    if a.get("possible") or a.get("hypothetical"):
        style[1] = f"border-bottom:2px dashed {BORDERS.get(m.label, '#555')}"
    return ";".join(style)


def to_html(result: NoteResult) -> str:
    """The note as HTML with every mention in a styled <mark> (title: label, attributes, concept)."""
    import html

    parts, pos = [], 0
    for m in sorted(result.mentions, key=lambda x: x.start):
        if m.start < pos:
            continue  # fused mentions never overlap; guard anyway
        parts.append(html.escape(result.text[pos:m.start]))
        flags = [a for a, v in m.attributes.items() if v]
        title = f"{m.label}" + (f" [{', '.join(flags)}]" if flags else "") + (
            f" -> {m.concept.label} ({m.concept.curie})" if m.concept else "")
        parts.append(f'<mark class="kgf-{m.label.lower()}" style="{mention_style(m)}" title="{html.escape(title)}">'
                     f"{html.escape(m.text)}<sub style=\"font-size:0.6em;color:#374151\"> {m.label[:4].upper()}</sub></mark>")
        pos = m.end
    parts.append(html.escape(result.text[pos:]))
    body = "".join(parts)
    return f'<div style="white-space:pre-wrap;line-height:1.9;font-family:sans-serif">{body}</div>'


def legend_html() -> str:
    return (f'<span style="background:{COLOURS["Disease"]};padding:0 4px">Disease</span> '
            f'<span style="background:{COLOURS["Chemical"]};padding:0 4px">Chemical / drug</span> '
            '<span style="text-decoration:line-through">negated</span> '
            '<span style="color:#6b7280">historical</span> <span style="font-style:italic">family</span> '
            '<span style="border-bottom:2px dashed #555">possible / hypothetical</span>')


def mentions_table(results: Iterable[NoteResult]) -> list[dict[str, Any]]:
    """Rows of CSV_COLUMNS for a table view."""
    return [mention_row(r.note_id, m) for r in results for m in r.mentions]
