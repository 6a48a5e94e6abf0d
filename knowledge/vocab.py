"""Namespaces and the kgfusion schema: standard vocabularies first, a small ``kgf:`` for the rest.

Labels: ``rdfs:label`` (one preferred label), ``skos:altLabel`` (aliases). Types: schema.org where one
fits (Corporation, MedicalCondition, Drug, Movie), ``kgf:`` otherwise (Sector, Industry, Genre, Tag).
Finance news topics are SKOS concepts (``a skos:Concept, kgf:Topic``, ``skos:prefLabel``, ``skos:broader`` a
``kgf:TopicGroup``): ``topic:earnings`` (kgfid:topic/earnings), ``topic-group:macro`` (kgfid:topic-group/macro).
Cross-references are plain literals on ``kgf:xref`` normalised as ``PREFIX:ID`` (MESH:D001943,
OMIM:114480, ICD10CM:C50, DRUGBANK:DB00945).

Predicates (``kgf:``; full table with domains and ranges in knowledge/SCHEMA.md):
  finance   kgf:ticker, kgf:cik, kgf:headquarters, kgf:founded, kgf:foundedYear, kgf:dateAdded (literals);
            kgf:inSector (company -> sector), kgf:inIndustry (company -> industry),
            kgf:industryInSector (industry -> sector)
  medical   rdfs:subClassOf (disease -> parent disease), kgf:hasSymptom (disease -> symptom),
            kgf:treats (drug -> disease, disease-modifying), kgf:palliates (drug -> disease, symptomatic),
            kgf:nonIndication (drug -> disease: curated NOT an indication; not a contraindication)
  movies    kgf:year, kgf:hasGenre (movie -> genre), kgf:hasTag (movie -> tag), kgf:usageCount (tag, literal)
  all       kgf:xref (literal ``PREFIX:ID``)
"""
from __future__ import annotations

from rdflib import Namespace
from rdflib.namespace import OWL, RDF, RDFS, SDO, SKOS, XSD

KGF = Namespace("https://kgfusion.dev/ns#")
KGFID = Namespace("https://kgfusion.dev/id/")  # instance URIs: KGFID["company/AAPL"]
OBO = Namespace("http://purl.obolibrary.org/obo/")  # Disease Ontology: OBO["DOID_1612"]

# Entity types used across the apps.
COMPANY = SDO.Corporation
SECTOR = KGF.Sector
INDUSTRY = KGF.Industry
DISEASE = SDO.MedicalCondition
SYMPTOM = SDO.MedicalSignOrSymptom
DRUG = SDO.Drug
MOVIE = SDO.Movie
GENRE = KGF.Genre
TAG = KGF.Tag

PREFIXES = {
    "kgf": KGF,
    "kgfid": KGFID,
    "obo": OBO,
    "rdf": RDF,
    "rdfs": RDFS,
    "skos": SKOS,
    "schema": SDO,
    "owl": OWL,
    "xsd": XSD,
}

# Short prefixes for instance URIs, so Turtle and SPARQL can say company:AAPL for kgfid:company/AAPL.
ID_KINDS = ("company", "sector", "industry", "topic", "topic-group", "drug", "movie", "genre", "tag")
ID_PREFIXES = {kind: Namespace(str(KGFID[f"{kind}/"])) for kind in ID_KINDS}
ALL_PREFIXES = {**PREFIXES, **ID_PREFIXES}


def bind_prefixes(graph) -> None:
    """Bind the project prefixes so Turtle output and SPARQL read naturally."""
    for prefix, ns in PREFIXES.items():
        graph.bind(prefix, ns, override=True)
