"""Medical graph: Disease Ontology classes, their MeSH/OMIM/ICD-10-CM xrefs and symptoms, plus
PharmacotherapyDB drug indications.

Inputs (under ``datasets_dir``): disease_ontology/HumanDO.tsv (required; id, label, parent *label*),
disease_ontology/{MESH,OMIM,ICD10}inDO.tsv, disease_ontology/requested/disease-symptom.tsv,
disease_ontology/DO-subClassOf-anonymous.tsv ("'has symptom' some X" restrictions) and
pharmacotherapydb/catalog/{drugs,indications}.tsv (all optional). DO terms only found in the xref
reports are obsolete and skipped, except the root DOID:4 "disease" that HumanDO.tsv omits.

Drug synonyms ("aspirin" for DrugBank's "Acetylsalicylic acid", brand names) come from a curated file
written by the kgfusion authors, ``<datasets_dir>/../kg/sources/drug_synonyms.tsv`` (drugbank_id, drug,
synonym, kind; optional): each becomes a skos:altLabel of its drug. Rows whose id is not a drug of the graph
or whose ``drug`` name differs from the graph's label are rejected and counted in the build report.
"""
from __future__ import annotations

import re
from pathlib import Path

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS

from kgfusion.core.errors import DataError
from kgfusion.knowledge.builders import read_table
from kgfusion.knowledge.graph import KnowledgeGraph
from kgfusion.knowledge.vocab import DISEASE, DRUG, KGF, KGFID, OBO, SYMPTOM

XREF_FILES = ("MESHinDO.tsv", "OMIMinDO.tsv", "ICD10inDO.tsv")
# PharmacotherapyDB categories: DM disease-modifying, SYM symptomatic, NOT a curated non-indication
# (a source listed the pair but physicians judged it is not an indication; it is NOT a contraindication).
CATEGORY_PREDICATES = {"DM": KGF.treats, "SYM": KGF.palliates, "NOT": KGF.nonIndication}
_DOID = re.compile(r"DOID:(\d+)")
_SYMP = re.compile(r"SYMP:(\d+)")
_DRUGBANK = re.compile(r"DB\d{5}")
_HAS_SYMPTOM = re.compile(r"'has symptom' some (?:'(.+)'|(\S.*))")


def disease_uri(doid: str) -> URIRef:
    """"DOID:1612" -> obo:DOID_1612."""
    return OBO[doid.replace(":", "_")]


def normalize_xref(xref: str) -> str:
    """"MIM:PS267700" -> "OMIM:PS267700", "MIM:114480" -> "OMIM:114480"; other prefixes unchanged."""
    prefix, _, local = xref.strip().partition(":")
    prefix = prefix.upper()
    return f"{'OMIM' if prefix == 'MIM' else prefix}:{local}"


def default_synonyms_path(datasets_dir: str | Path) -> Path:
    """The curated drug synonym file beside the graphs: ``<datasets_dir>/../kg/sources/drug_synonyms.tsv``."""
    return Path(datasets_dir).resolve().parent / "kg" / "sources" / "drug_synonyms.tsv"


def build_medical_graph(datasets_dir: str | Path, drug_synonyms: str | Path | None = None) -> KnowledgeGraph:
    """Diseases, symptoms and drugs from the Disease Ontology reports and PharmacotherapyDB, plus drug
    synonyms (``drug_synonyms``; default: ``default_synonyms_path(datasets_dir)`` when it exists)."""
    do_dir = Path(datasets_dir) / "disease_ontology"
    kg = KnowledgeGraph()
    g = kg.graph
    report: dict[str, int] = {}

    # Diseases and is-a parents (parents are given by label).
    rows = read_table(do_dir / "HumanDO.tsv", ("id", "label", "subClassOf"), "\t")
    report["do_rows"] = len(rows)
    report["do_rows_rejected"] = 0
    labels: dict[str, str] = {}
    parents: dict[str, set[str]] = {}
    for row in rows:
        if not (_DOID.fullmatch(row["id"]) and row["label"]):
            report["do_rows_rejected"] += 1
            continue
        labels.setdefault(row["id"], row["label"])
        parents.setdefault(row["id"], set())
        if row["subClassOf"]:
            parents[row["id"]].add(row["subClassOf"])

    xref_rows: list[tuple[str, dict[str, str]]] = []
    for name in XREF_FILES:
        path = do_dir / name
        if path.is_file():
            xref_rows += [(name, r) for r in read_table(path, ("id", "label", "xrefs"), "\t")]
        else:
            report[f"missing_{name}"] = 1
    for _, row in xref_rows:  # the root DOID:4 "disease" only appears in the xref reports
        if row["id"] not in labels and _DOID.fullmatch(row["id"]) and not row["label"].startswith("obsolete"):
            labels[row["id"]] = row["label"]
            parents.setdefault(row["id"], set())

    by_label = {label: doid for doid, label in labels.items()}
    report["diseases"] = len(labels)
    report["parent_links"] = report["parents_unresolved"] = 0
    for doid, label in labels.items():
        node = disease_uri(doid)
        g.add((node, RDF.type, DISEASE))
        g.add((node, RDFS.label, Literal(label)))
        g.add((node, KGF.xref, Literal(doid)))
        for parent in parents[doid]:
            if parent in by_label:
                g.add((node, RDFS.subClassOf, disease_uri(by_label[parent])))
                report["parent_links"] += 1
            else:
                report["parents_unresolved"] += 1

    report["xrefs"] = report["xref_rows_obsolete_skipped"] = 0
    for _, row in xref_rows:
        if row["id"] not in labels:
            report["xref_rows_obsolete_skipped"] += 1
            continue
        for xref in filter(None, (x.strip() for x in row["xrefs"].split("|"))):
            g.add((disease_uri(row["id"]), KGF.xref, Literal(normalize_xref(xref))))
            report["xrefs"] += 1

    _add_symptoms(kg, do_dir, labels, report)
    _add_drugs(kg, Path(datasets_dir) / "pharmacotherapydb" / "catalog", labels, report)
    _add_drug_synonyms(kg, Path(drug_synonyms) if drug_synonyms else default_synonyms_path(datasets_dir), report)
    report["symptoms"] = len(set(g.subjects(RDF.type, SYMPTOM)))
    report["drugs"] = len(set(g.subjects(RDF.type, DRUG)))
    kg.build_report = report
    return kg


def _add_symptoms(kg: KnowledgeGraph, do_dir: Path, labels: dict[str, str], report: dict[str, int]) -> None:
    """kgf:hasSymptom from disease-symptom.tsv, then from "'has symptom' some X" restrictions (by label)."""
    g = kg.graph
    path = do_dir / "requested" / "disease-symptom.tsv"
    symptoms: dict[str, URIRef] = {}
    report["symptom_rows"] = report["symptom_rows_rejected"] = report["symptom_rows_unknown_disease"] = 0
    if path.is_file():
        rows = read_table(path, ("disease_id", "disease_label", "symptom_id", "symptom_label"), "\t")
        report["symptom_rows"] = len(rows)
        for row in rows:
            if not (_SYMP.fullmatch(row["symptom_id"]) and row["symptom_label"]):
                report["symptom_rows_rejected"] += 1
                continue
            symptom = OBO[row["symptom_id"].replace(":", "_")]
            symptoms.setdefault(row["symptom_label"].lower(), symptom)
            g.add((symptom, RDF.type, SYMPTOM))
            g.add((symptom, RDFS.label, Literal(row["symptom_label"])))
            g.add((symptom, KGF.xref, Literal(row["symptom_id"])))
            if row["disease_id"] not in labels:  # DO ids retired since the report was made
                report["symptom_rows_unknown_disease"] += 1
                continue
            g.add((disease_uri(row["disease_id"]), KGF.hasSymptom, symptom))
    else:
        report["missing_disease-symptom.tsv"] = 1

    anon = do_dir / "DO-subClassOf-anonymous.tsv"
    report["restriction_symptoms"] = report["restriction_symptoms_unresolved"] = 0
    if not anon.is_file():
        return
    for row in read_table(anon, ("ID", "LABEL", "SubClass Of [ANON]"), "\t"):
        for part in row["SubClass Of [ANON]"].split("|"):
            m = _HAS_SYMPTOM.fullmatch(part.strip())
            if not m or row["ID"] not in labels:
                continue
            symptom = symptoms.get((m.group(1) or m.group(2)).lower())
            if symptom is None:  # no SYMP id known for this label: leave it out rather than mint one
                report["restriction_symptoms_unresolved"] += 1
                continue
            g.add((disease_uri(row["ID"]), KGF.hasSymptom, symptom))
            report["restriction_symptoms"] += 1


def _add_drugs(kg: KnowledgeGraph, catalog: Path, labels: dict[str, str], report: dict[str, int]) -> None:
    """Drugs (DrugBank ids) and their curated indications: treats / palliates / nonIndication."""
    g = kg.graph
    drugs_path, ind_path = catalog / "drugs.tsv", catalog / "indications.tsv"
    if not (drugs_path.is_file() and ind_path.is_file()):
        report["missing_pharmacotherapydb"] = 1
        return
    report["drug_rows_rejected"] = 0
    for row in read_table(drugs_path, ("drugbank_id", "drug"), "\t"):
        if not (_DRUGBANK.fullmatch(row["drugbank_id"]) and row["drug"]):
            report["drug_rows_rejected"] += 1
            continue
        node = KGFID[f"drug/{row['drugbank_id']}"]
        g.add((node, RDF.type, DRUG))
        g.add((node, RDFS.label, Literal(row["drug"])))
        g.add((node, KGF.xref, Literal(f"DRUGBANK:{row['drugbank_id']}")))

    rows = read_table(ind_path, ("doid_id", "drugbank_id", "disease", "drug", "category"), "\t")
    report["indication_rows"] = len(rows)
    for key in ("treats", "palliates", "nonIndication", "indication_rows_rejected", "disease_aliases"):
        report[key] = 0
    for row in rows:
        predicate = CATEGORY_PREDICATES.get(row["category"])
        drug = KGFID[f"drug/{row['drugbank_id']}"]
        if predicate is None or row["doid_id"] not in labels or (drug, RDF.type, DRUG) not in g:
            report["indication_rows_rejected"] += 1  # unknown category, disease or drug
            continue
        disease = disease_uri(row["doid_id"])
        g.add((drug, predicate, disease))
        report[str(predicate).rsplit("#", 1)[-1]] += 1
        # PharmacotherapyDB (2016) sometimes names a disease differently from today's DO label.
        if row["disease"] and row["disease"] != labels[row["doid_id"]]:
            if (disease, SKOS.altLabel, Literal(row["disease"])) not in g:
                report["disease_aliases"] += 1
            g.add((disease, SKOS.altLabel, Literal(row["disease"])))


def _add_drug_synonyms(kg: KnowledgeGraph, path: Path, report: dict[str, int]) -> None:
    """skos:altLabel per curated synonym row (comment lines start with '#'); bad rows are counted."""
    if not path.is_file():
        report["missing_drug_synonyms"] = 1
        return
    g = kg.graph
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    header = lines[0].split("\t") if lines else []
    if header[:3] != ["drugbank_id", "drug", "synonym"]:
        raise DataError(f"{path}: the first non-comment line must be the header 'drugbank_id<TAB>drug<TAB>synonym"
                        f"<TAB>kind', found {header}")
    report["drug_synonyms"] = report["drug_synonym_rows_rejected"] = 0
    for row in lines[1:]:
        cells = [c.strip() for c in row.split("\t")]
        node = KGFID[f"drug/{cells[0]}"] if cells and _DRUGBANK.fullmatch(cells[0]) else None
        label = g.value(node, RDFS.label) if node is not None else None
        if len(cells) < 3 or not cells[2] or label is None or str(label) != cells[1]:
            report["drug_synonym_rows_rejected"] += 1  # unknown drug id or a name that does not match the graph
            continue
        g.add((node, SKOS.altLabel, Literal(cells[2])))
        report["drug_synonyms"] += 1
