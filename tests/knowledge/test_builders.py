from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS

import kgfusion.knowledge.builders as builders
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.knowledge.builders import DOMAINS, build, build_graph, build_with_report, output_path
from kgfusion.knowledge.builders.finance import company_names
from kgfusion.knowledge.builders.medical import build_medical_graph, default_synonyms_path, normalize_xref
from kgfusion.knowledge.builders.movies import normalize_tag, parse_title
from kgfusion.knowledge.graph import KnowledgeGraph
from kgfusion.knowledge.vocab import (
    COMPANY,
    DISEASE,
    DRUG,
    GENRE,
    INDUSTRY,
    KGF,
    KGFID,
    MOVIE,
    OBO,
    SECTOR,
    SYMPTOM,
    TAG,
)

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "kg" / "datasets"
REAL = Path(__file__).resolve().parents[2] / "data" / "datasets"


def literals(kg: KnowledgeGraph, node: URIRef, pred: URIRef) -> set[str]:
    return {str(o) for o in kg.graph.objects(node, pred)}


# ---------------------------------------------------------------- finance
def test_company_names() -> None:
    assert company_names("Apple Inc.") == ("Apple Inc.", ["Apple"])
    assert company_names("Alphabet Inc. (Class C)") == ("Alphabet Inc.", ["Alphabet"])
    assert company_names("Coca-Cola Company (The)") == ("Coca-Cola Company (The)", ["The Coca-Cola Company", "Coca-Cola"])
    assert company_names("Lilly (Eli)") == ("Lilly (Eli)", ["Eli Lilly"])
    assert company_names("JPMorgan Chase & Co.") == ("JPMorgan Chase & Co.", ["JPMorgan Chase"])
    assert company_names("News Corp (Class A)") == ("News Corp", [])  # "News" alone is too generic
    assert company_names("3M") == ("3M", [])


def test_finance_graph() -> None:
    kg = build_graph("finance", FIXTURES)
    aapl, googl = KGFID["company/AAPL"], KGFID["company/GOOGL"]
    assert kg.entities(COMPANY) == sorted(URIRef(KGFID[f"company/{t}"]) for t in ("AAPL", "BRK.B", "GOOGL", "KO", "MSFT"))
    assert kg.build_report["rows"] == 7 and kg.build_report["rows_rejected"] == 1
    assert kg.build_report["share_class_rows_merged"] == 1
    # Share classes: one issuer node named after the Class A ticker, carrying both tickers.
    assert (KGFID["company/GOOG"], None, None) not in kg.graph
    assert kg.label(googl) == "Alphabet Inc."
    assert literals(kg, googl, KGF.ticker) == {"GOOGL", "GOOG"}
    assert {"GOOG", "$GOOG", "GOOGL", "$GOOGL", "Alphabet", "Alphabet Inc. (Class C)"} <= set(kg.labels(googl))
    assert literals(kg, googl, KGF.dateAdded) == {"2006-04-03"}  # earliest listing
    assert kg.labels(aapl) == ["Apple Inc.", "$AAPL", "AAPL", "Apple"]
    assert {"$BRK.B", "$BRK-B", "BRK-B"} <= set(kg.labels(KGFID["company/BRK.B"]))
    assert "The Coca-Cola Company" in kg.labels(KGFID["company/KO"])
    assert literals(kg, aapl, KGF.cik) == {"0000320193"} and literals(kg, aapl, KGF.xref) == {"CIK:0000320193"}
    assert literals(kg, aapl, KGF.headquarters) == {"Cupertino, California"}
    assert kg.graph.value(aapl, KGF.foundedYear) == Literal(1977)
    sector, industry = KGFID["sector/information-technology"], KGFID["industry/systems-software"]
    assert (aapl, KGF.inSector, sector) in kg.graph
    assert (KGFID["company/MSFT"], KGF.inIndustry, industry) in kg.graph
    assert (industry, KGF.industryInSector, sector) in kg.graph
    assert kg.types(sector) == [SECTOR] and kg.types(industry) == [INDUSTRY]
    assert kg.label(sector) == "Information Technology"


# ---------------------------------------------------------------- medical
def test_normalize_xref() -> None:
    assert normalize_xref("MIM:114480") == "OMIM:114480"
    assert normalize_xref("MIM:PS145500") == "OMIM:PS145500"
    assert normalize_xref("MESH:D009203") == "MESH:D009203"


def test_medical_graph() -> None:
    kg = build_graph("medical", FIXTURES)
    r = kg.build_report
    mi, htn, t2d, root = OBO["DOID_5844"], OBO["DOID_10763"], OBO["DOID_9352"], OBO["DOID_4"]
    assert r["diseases"] == 7 and r["parents_unresolved"] == 1 and r["xref_rows_obsolete_skipped"] == 1
    assert (OBO["DOID_2089"], None, None) not in kg.graph  # obsolete term
    assert kg.label(root) == "disease" and (OBO["DOID_7"], RDFS.subClassOf, root) in kg.graph
    assert (mi, RDFS.subClassOf, OBO["DOID_114"]) in kg.graph
    assert list(kg.graph.objects(htn, RDFS.subClassOf)) == [OBO["DOID_1287"]]
    assert kg.types(mi) == [DISEASE]
    assert literals(kg, mi, KGF.xref) == {"DOID:5844", "MESH:D009203", "ICD10CM:I21"}
    assert "OMIM:PS145500" in literals(kg, htn, KGF.xref) and "OMIM:125853" in literals(kg, t2d, KGF.xref)
    # Symptoms: from the report, from "'has symptom' some headache" (by label), unknown ones counted.
    assert (mi, KGF.hasSymptom, OBO["SYMP_0000099"]) in kg.graph
    assert (htn, KGF.hasSymptom, OBO["SYMP_0000504"]) in kg.graph
    assert kg.types(OBO["SYMP_0000504"]) == [SYMPTOM]
    assert r["symptom_rows_unknown_disease"] == 1 and r["restriction_symptoms_unresolved"] == 1
    # Drugs and curated indications.
    aspirin, lisinopril = KGFID["drug/DB00945"], KGFID["drug/DB00722"]
    assert kg.types(aspirin) == [DRUG] and literals(kg, aspirin, KGF.xref) == {"DRUGBANK:DB00945"}
    assert (aspirin, KGF.treats, mi) in kg.graph
    assert (lisinopril, KGF.palliates, mi) in kg.graph
    assert (aspirin, KGF.nonIndication, t2d) in kg.graph and (aspirin, KGF.treats, t2d) not in kg.graph
    assert r["indication_rows_rejected"] == 1  # category XX
    assert (t2d, SKOS.altLabel, Literal("type II diabetes mellitus")) in kg.graph


def test_medical_without_optional_files(tmp_path: Path) -> None:
    (tmp_path / "disease_ontology").mkdir()
    shutil.copy(FIXTURES / "disease_ontology" / "HumanDO.tsv", tmp_path / "disease_ontology")
    kg = build_graph("medical", tmp_path)
    assert kg.build_report["diseases"] == 6  # no root DOID:4 without the xref reports
    assert kg.build_report["parents_unresolved"] == 3  # "disease" (twice) stays unresolved too
    assert kg.build_report["missing_pharmacotherapydb"] == 1
    assert kg.entities(DRUG) == []


def write_synonyms(path: Path, *rows: str) -> Path:
    path.write_text("# a comment\ndrugbank_id\tdrug\tsynonym\tkind\n" + "".join(r + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_medical_drug_synonyms_become_alt_labels(tmp_path: Path) -> None:
    syn = write_synonyms(tmp_path / "syn.tsv", "DB00945\tAcetylsalicylic acid\taspirin\tgeneric",
                         "DB00722\tLisinopril\tZestril\tbrand",
                         "DB00722\tAspirin\twrong name\tbrand",  # drug name differs from the graph label
                         "DB99999\tNothing\tnothing\tbrand",  # not a drug of the graph
                         "nonsense")
    kg = build_medical_graph(FIXTURES, drug_synonyms=syn)
    aspirin, lisinopril = KGFID["drug/DB00945"], KGFID["drug/DB00722"]
    assert literals(kg, aspirin, SKOS.altLabel) == {"aspirin"}
    assert literals(kg, lisinopril, SKOS.altLabel) == {"Zestril"}
    assert kg.label(aspirin) == "Acetylsalicylic acid"  # the label itself is unchanged
    assert kg.build_report["drug_synonyms"] == 2 and kg.build_report["drug_synonym_rows_rejected"] == 3
    assert kg.lookup("ASPIRIN") == [aspirin]
    (rec,) = [r for r in kg.entity_records(types=[DRUG]) if r.uri == str(aspirin)]
    assert "aspirin" in rec.aliases


def test_medical_drug_synonyms_bad_header_and_missing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tname\n", encoding="utf-8")
    with pytest.raises(DataError, match="bad.tsv.*header"):
        build_medical_graph(FIXTURES, drug_synonyms=bad)
    kg = build_medical_graph(FIXTURES, drug_synonyms=tmp_path / "absent.tsv")
    assert kg.build_report["missing_drug_synonyms"] == 1
    assert not list(kg.graph.objects(KGFID["drug/DB00945"], SKOS.altLabel))


def test_shipped_drug_synonyms_match_the_drug_catalog() -> None:
    """data/kg/sources/drug_synonyms.tsv: every row names a PharmacotherapyDB drug by its exact name, each
    synonym once, no synonym equal to another drug's name; authorship and licence in the header."""
    import csv

    path = default_synonyms_path(REAL)
    text = path.read_text(encoding="utf-8")
    assert "kgfusion authors" in text and "Apache-2.0" in text
    with (REAL / "pharmacotherapydb" / "catalog" / "drugs.tsv").open(encoding="utf-8") as fh:
        drugs = {r["drugbank_id"]: r["drug"] for r in csv.DictReader(fh, delimiter="\t")}
    rows = [ln.split("\t") for ln in text.splitlines() if ln and not ln.startswith("#")][1:]
    assert 50 <= len(rows) <= 150
    assert all(len(r) == 4 and drugs.get(r[0]) == r[1] for r in rows)
    assert {r[3] for r in rows} <= {"generic", "salt", "brand", "abbreviation"}
    names = [r[2].lower() for r in rows]
    assert len(set(names)) == len(names) and not set(names) & {d.lower() for d in drugs.values()}
    assert ("DB00945", "Acetylsalicylic acid", "aspirin", "generic") in {tuple(r) for r in rows}


# ---------------------------------------------------------------- movies
def test_parse_title_and_tags() -> None:
    assert parse_title("Toy Story (1995)") == ("Toy Story", 1995, [])
    assert parse_title("American President, The (1995)") == ("American President, The", 1995, ["The American President"])
    assert parse_title("Babylon 5") == ("Babylon 5", None, [])
    label, year, aliases = parse_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)")
    assert year == 1995 and "The City of Lost Children" in aliases and "La Cité des enfants perdus" in aliases
    assert normalize_tag("  Highly   Quotable ") == "highly quotable"


def test_movies_graph() -> None:
    kg = build_graph("movies", FIXTURES)
    r = kg.build_report
    toy, prez = KGFID["movie/1"], KGFID["movie/2"]
    assert len(kg.entities(MOVIE)) == 4 and kg.types(toy) == [MOVIE]
    assert kg.label(toy) == "Toy Story" and kg.graph.value(toy, KGF.year) == Literal(1995)
    assert kg.labels(prez) == ["American President, The", "The American President"]
    assert kg.graph.value(KGFID["movie/3"], KGF.year) is None and r["movies_without_year"] == 1
    assert (KGFID["movie/4"], KGF.hasGenre, None) not in kg.graph and r["movies_without_genre"] == 1
    assert (KGFID["movie/3"], KGF.hasGenre, KGFID["genre/Sci-Fi"]) in kg.graph
    assert kg.types(KGFID["genre/Sci-Fi"]) == [GENRE]
    assert "(no genres listed)" not in {str(o) for o in kg.graph.objects(None, RDFS.label)}
    pixar, fun = KGFID["tag/pixar"], KGFID["tag/fun%20movie"]
    assert kg.types(pixar) == [TAG] and kg.graph.value(pixar, KGF.usageCount) == Literal(2)
    assert list(kg.graph.objects(toy, KGF.hasTag)) and {pixar, fun} == set(kg.graph.objects(toy, KGF.hasTag))
    assert kg.label(fun) == "fun movie"
    assert r["tag_rows_rejected"] == 2  # unknown movie 99, empty tag
    assert literals(kg, toy, KGF.xref) == {"IMDB:tt0114709", "TMDB:862"}
    assert literals(kg, KGFID["movie/3"], KGF.xref) == {"IMDB:tt0105946"}


def test_finance_graph_has_the_news_topics_as_skos_concepts(tmp_path: Path) -> None:
    from kgfusion.knowledge.builders.finance import TOPIC_GROUPS, topic_group_uri, topic_uri

    kg = build_graph("finance", FIXTURES)
    g = kg.graph
    topics = kg.entities(KGF.Topic)
    assert len(topics) == 20 == kg.build_report["topics"] and kg.build_report["topic_groups"] == 4
    legal, company = topic_uri("Legal | Regulation"), topic_group_uri("company-specific")
    assert (legal, RDF.type, SKOS.Concept) in g and (legal, SKOS.prefLabel, Literal("Legal | Regulation")) in g
    assert (legal, SKOS.broader, company) in g and (company, RDF.type, KGF.TopicGroup) in g
    assert (topic_uri("Fed | Central Banks"), SKOS.broader, topic_group_uri("macro")) in g
    # the topic: / topic-group: prefixes name the same URIs as kgfid:topic/... (stored data keeps its URIs)
    assert legal == KGFID["topic/legal-regulation"] == kg.expand("topic:legal-regulation")
    assert kg.expand("topic-group:company-specific") == company == KGFID["topic-group/company-specific"]
    assert "\ntopic:legal-regulation a kgf:Topic, skos:Concept ;" in kg.to_turtle()
    assert {str(g.value(t, SKOS.prefLabel)) for t in topics} == {t for ts in TOPIC_GROUPS.values() for t in ts}
    # no rdfs:label on topics: the sector "Financials" stays the only entity of that name
    assert kg.lookup("Financials") == [KGFID["sector/financials"]] and kg.lookup("Legal | Regulation") == []
    # the data set's labels.csv must name the same topics
    shutil.copytree(FIXTURES, tmp_path / "ds")
    labels = tmp_path / "ds" / "twitter_financial_news_topic" / "labels.csv"
    labels.parent.mkdir()
    names = [t for ts in TOPIC_GROUPS.values() for t in ts]
    labels.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(names)), encoding="utf-8")
    assert len(build_graph("finance", tmp_path / "ds").entities(KGF.Topic)) == 20
    labels.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate([*names[:-1], "Crypto"])),
                      encoding="utf-8")
    with pytest.raises(DataError, match=r"topics \['Crypto'\] have no group.*TOPIC_GROUPS"):
        build_graph("finance", tmp_path / "ds")


# ---------------------------------------------------------------- build()
def test_build_is_deterministic_and_idempotent(tmp_path: Path) -> None:
    for domain in DOMAINS:
        a = build(domain, FIXTURES, tmp_path / "a")
        b = build(domain, FIXTURES, tmp_path / "b")
        first = a.read_bytes()
        assert a.name == f"{domain}.ttl" and first == b.read_bytes()
        assert build(domain, FIXTURES, tmp_path / "a").read_bytes() == first  # rebuild in place
        assert set(KnowledgeGraph.load(a).graph) == set(build_graph(domain, FIXTURES).graph)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["finance.ttl", "medical.ttl", "movies.ttl"]


def test_large_graphs_are_gzipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = build("finance", FIXTURES, tmp_path)
    monkeypatch.setattr(builders, "MAX_PLAIN_BYTES", 100)
    result = build_with_report("finance", FIXTURES, tmp_path)
    assert result.path.name == "finance.ttl.gz" and not plain.exists()  # stale plain file removed
    assert output_path("finance", tmp_path) == result.path
    assert result.bytes == result.path.stat().st_size and result.stats["entities"] == len(
        KnowledgeGraph.load(result.path).entities()
    )


def test_input_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="constituents.csv"):
        build_graph("finance", tmp_path)
    (tmp_path / "sp500").mkdir()
    (tmp_path / "sp500" / "constituents.csv").write_text("Symbol,Security\nAAPL,Apple\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"missing column\(s\).*GICS Sector"):
        build_graph("finance", tmp_path)
    with pytest.raises(ConfigError, match="finance, medical, movies"):
        build_graph("crypto", tmp_path)


@pytest.mark.slow
def test_build_real_graphs(tmp_path: Path) -> None:
    results = {d: build_with_report(d, REAL, tmp_path) for d in DOMAINS}
    for r in results.values():
        assert r.path.suffix == ".ttl" and r.bytes < 25 * 1024 * 1024
    fin, med, mov = results["finance"].report, results["medical"].report, results["movies"].report
    assert fin["companies"] == 500 and fin["sectors"] == 11 and fin["industries"] == 127
    assert med["diseases"] > 12000 and med["parents_unresolved"] == 0 and med["treats"] == 755
    assert med["palliates"] == 390 and med["nonIndication"] == 243 and med["symptoms"] == 300
    assert mov["movies"] == 9742 and mov["genres"] == 19 and mov["movie_rows_rejected"] == 0
    kg = KnowledgeGraph.load(results["medical"].path)
    aspirin = kg.lookup("Acetylsalicylic acid")
    assert len(aspirin) == 1 and kg.types(aspirin[0]) == [DRUG]
    records = kg.entity_records(types=[DISEASE])
    assert any("MESH:D003924" in r.xrefs for r in records)  # type 2 diabetes mellitus
    assert (KGFID["drug/DB00945"], RDF.type, DRUG) in kg.graph
