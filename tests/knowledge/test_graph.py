from __future__ import annotations

import gzip
import os
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS

from kgfusion.core.errors import KgfusionError
from kgfusion.knowledge.graph import GraphError, KnowledgeGraph
from kgfusion.knowledge.records import EntityRecord
from kgfusion.knowledge.sparql import SparqlError
from kgfusion.knowledge.vocab import COMPANY, DISEASE, KGF, KGFID, OBO, SECTOR

DATA = Path(__file__).resolve().parents[1] / "data" / "kg"
AAPL = str(KGFID["company/AAPL"])
MSFT = str(KGFID["company/MSFT"])
KO = str(KGFID["company/KO"])
IT = str(KGFID["sector/information-technology"])


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return KnowledgeGraph.load(DATA / "tiny.ttl")


def test_labels_types_and_entities(kg: KnowledgeGraph) -> None:
    assert kg.label("company:AAPL") == "Apple Inc."
    assert kg.labels(AAPL) == ["Apple Inc.", "$AAPL", "AAPL", "Apple"]
    assert kg.types("kgfid:company/AAPL") == [COMPANY]
    assert kg.entities(SECTOR) == [URIRef(KGFID["sector/consumer-staples"]), URIRef(IT)]
    assert len(kg.entities()) == 11
    # No rdfs:label: fall back to the local name.
    assert kg.label("https://kgfusion.dev/id/company/NOPE") == "NOPE"


def test_entity_records_contract(kg: KnowledgeGraph) -> None:
    records = {r.uri: r for r in kg.entity_records()}
    assert records[AAPL] == EntityRecord(
        uri=AAPL, label="Apple Inc.", aliases=("$AAPL", "AAPL", "Apple"), type=str(COMPANY),
        xrefs=("CIK:0000320193",),
    )
    mi = records[str(OBO["DOID_5844"])]
    assert mi.xrefs == ("DOID:5844", "ICD10CM:I21", "MESH:D009203")
    assert mi.names() == ("myocardial infarction", "heart attack")
    diseases = kg.entity_records(types=["schema:MedicalCondition"])
    assert [r.uri for r in diseases] == [str(OBO["DOID_114"]), str(OBO["DOID_5844"])]
    assert all(r.type == str(DISEASE) for r in diseases)


def test_lookup_is_case_insensitive_and_reports_ambiguity(kg: KnowledgeGraph) -> None:
    assert kg.lookup("heart ATTACK") == [URIRef(OBO["DOID_5844"])]
    assert kg.lookup("Apple") == [URIRef(AAPL), URIRef(KO)]
    assert kg.lookup("nothing like this") == []


def test_neighbors_say_direction(kg: KnowledgeGraph) -> None:
    out = kg.neighbors(AAPL, predicate="kgf:inSector", direction="out")
    assert out == [(KGF.inSector, URIRef(IT))]
    assert out[0].direction == "out"
    incoming = kg.neighbors(IT, direction="in")
    assert {(n.predicate, str(n.node), n.direction) for n in incoming} == {
        (KGF.inSector, AAPL, "in"), (KGF.inSector, MSFT, "in"),
        (KGF.industryInSector, str(KGFID["industry/technology-hardware"]), "in"),
        (KGF.industryInSector, str(KGFID["industry/systems-software"]), "in"),
    }
    both = kg.neighbors(IT)
    assert [n.direction for n in both] == ["out"] * 2 + ["in"] * 4  # type + label, then the four above
    pred, node = both[0]  # still a plain 2-tuple
    assert pred == RDF.type
    with pytest.raises(GraphError, match="direction"):
        kg.neighbors(IT, direction="sideways")  # type: ignore[arg-type]


def test_triples_about_orders_outgoing_then_incoming(kg: KnowledgeGraph) -> None:
    triples = kg.triples_about(OBO["DOID_5844"], limit=None)
    subjects = [str(s) for s, _, _ in triples]
    assert subjects[0] == str(OBO["DOID_5844"])
    assert subjects[-1] == str(KGFID["drug/DB00945"])  # the incoming kgf:treats
    assert len(kg.triples_about(OBO["DOID_5844"], limit=3)) == 3


def test_select_ask_construct_and_limit(kg: KnowledgeGraph) -> None:
    rows = kg.query("SELECT ?c ?l WHERE { ?c kgf:inSector sector:information-technology ; rdfs:label ?l } ORDER BY ?l")
    assert rows == [{"c": AAPL, "l": "Apple Inc."}, {"c": MSFT, "l": "Microsoft"}]
    assert len(kg.query("SELECT ?s WHERE { ?s ?p ?o }", limit=4)) == 4
    bound = kg.query("SELECT ?l WHERE { ?c rdfs:label ?l }", init_bindings={"c": "company:KO"})
    assert bound == [{"l": "Coca-Cola Company (The)"}]
    assert kg.query("ASK { company:AAPL kgf:inSector ?s }") == [{"ask": "true"}]
    assert kg.query("ASK { company:KO kgf:inSector sector:information-technology }") == [{"ask": "false"}]
    built = kg.query("CONSTRUCT { ?d kgf:treatedBy ?x } WHERE { ?x kgf:treats ?d }")
    assert built == [{"subject": str(OBO["DOID_5844"]), "predicate": str(KGF.treatedBy),
                      "object": str(KGFID["drug/DB00945"])}]


def test_optional_unbound_variables_are_left_out(kg: KnowledgeGraph) -> None:
    rows = kg.query("SELECT ?c ?t WHERE { ?c a schema:Corporation OPTIONAL { ?c kgf:ticker ?t } } ORDER BY ?c")
    assert rows[1] == {"c": KO}  # KO has no kgf:ticker in the fixture


def test_query_rejects_updates_and_bad_syntax(kg: KnowledgeGraph) -> None:
    with pytest.raises(SparqlError, match="INSERT"):
        kg.query("INSERT DATA { company:X rdfs:label 'x' }")
    with pytest.raises(SparqlError, match="line 2"):
        kg.query("SELECT ?s\nWHERE { ?s ?p }")
    with pytest.raises(SparqlError, match="limit"):
        kg.query("SELECT ?s WHERE { ?s ?p ?o }", limit=0)
    assert len(kg) == 50  # nothing changed


def test_save_is_deterministic_and_round_trips(tmp_path: Path, kg: KnowledgeGraph) -> None:
    first, second = kg.save(tmp_path / "a.ttl"), KnowledgeGraph.load(DATA / "tiny.ttl").save(tmp_path / "b.ttl")
    assert first.read_bytes() == second.read_bytes()
    again = KnowledgeGraph.load(first)
    assert set(again.graph) == set(kg.graph)
    assert again.save(tmp_path / "c.ttl").read_bytes() == first.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left
    umask = os.umask(0)
    os.umask(umask)
    assert first.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_gzip_round_trip_is_byte_identical(tmp_path: Path, kg: KnowledgeGraph) -> None:
    a, b = kg.save(tmp_path / "a.ttl.gz"), kg.save(tmp_path / "b.ttl.gz")
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()).decode() == kg.to_turtle()
    assert set(KnowledgeGraph.load(a).graph) == set(kg.graph)


def test_writer_escapes_literals_and_odd_uris(tmp_path: Path) -> None:
    from rdflib.namespace import XSD  # imported here: pytest's collector warns on the XSD namespace object

    g = Graph()
    s = URIRef("https://kgfusion.dev/id/tag/based%20on%20a%20book")
    odd = URIRef("https://kgfusion.dev/id/movie/a/b.")
    g.add((s, RDFS.label, Literal('say "hi"\n\tback\\slash')))
    g.add((s, RDFS.label, Literal("Ärger", lang="de")))
    g.add((s, KGF.year, Literal(1995)))
    g.add((s, KGF.dateAdded, Literal("2020-01-02", datatype=XSD.date)))
    g.add((s, KGF.related, odd))
    path = KnowledgeGraph(g).save(tmp_path / "odd.ttl")
    assert "tag:based%20on%20a%20book" in path.read_text()
    assert set(KnowledgeGraph.load(path).graph) == set(g)


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_any_literal_text_round_trips(text: str) -> None:
    g = Graph()
    g.add((URIRef(KGFID["tag/x"]), RDFS.label, Literal(text)))
    parsed = Graph().parse(data=KnowledgeGraph(g).to_turtle(), format="turtle")
    assert set(parsed) == set(g)


def test_malformed_turtle_names_file_and_line() -> None:
    with pytest.raises(GraphError, match=r"malformed\.ttl: malformed Turtle at line 5") as info:
        KnowledgeGraph.load(DATA / "malformed.ttl")
    assert isinstance(info.value, KgfusionError)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="not found"):
        KnowledgeGraph.load(tmp_path / "absent.ttl")
    bad = tmp_path / "bad.ttl.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(GraphError, match="bad.ttl.gz"):
        KnowledgeGraph.load(bad)


def test_binary_and_non_utf8_turtle_say_what_the_file_is(tmp_path: Path) -> None:
    """Issue 11: Python's codec message ("'utf-8' codec can't decode byte 0xe9 ...") became one wording."""
    latin = tmp_path / "latin.ttl"
    latin.write_bytes('@prefix ex: <http://e/> .\nex:a ex:b "caf\xe9" .\n'.encode("latin-1"))
    with pytest.raises(GraphError) as info:
        KnowledgeGraph.load(latin)
    assert str(info.value) == (f"{latin} is not UTF-8 text (invalid byte at offset 40, line 2); convert it to UTF-8 "
                               "or rebuild it (kgfusion kg build)")
    image = tmp_path / "kg.ttl.gz"
    image.write_bytes(gzip.compress(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))
    with pytest.raises(GraphError, match=r"kg\.ttl\.gz is binary, not text \(it looks like a PNG image\)"):
        KnowledgeGraph.load(image)


def test_expand_and_curie(kg: KnowledgeGraph) -> None:
    assert kg.expand("kgfid:company/AAPL") == kg.expand("company:AAPL") == URIRef(AAPL)
    assert kg.expand(f"<{AAPL}>") == URIRef(AAPL)
    assert kg.curie(AAPL) == "company:AAPL"
    assert kg.curie(OBO["DOID_5844"]) == "obo:DOID_5844"
    with pytest.raises(GraphError, match="prefix"):
        kg.expand("nosuch:thing")


def test_networkx_view(kg: KnowledgeGraph) -> None:
    net = kg.to_networkx()
    assert isinstance(net, nx.MultiDiGraph)
    assert net.nodes[AAPL] == {"label": "Apple Inc.", "type": str(COMPANY)}
    assert net.has_edge(AAPL, IT, key=str(KGF.inSector))
    assert net[AAPL][IT][str(KGF.inSector)]["predicate"] == str(KGF.inSector)
    assert "Apple Inc." not in net  # literals are not nodes
    assert not net.has_edge(str(KGFID["drug/DB00945"]), str(OBO["DOID_114"]))  # non-indication left out
    assert kg.to_networkx() is net  # cached
    other = KnowledgeGraph.load(DATA / "tiny.ttl")
    before = other.to_networkx()
    other.graph.add((URIRef(KO), KGF.inIndustry, KGFID["industry/soft-drinks"]))
    after = other.to_networkx()
    assert after is not before and after.has_edge(KO, str(KGFID["industry/soft-drinks"]))


def test_shortest_path_and_explanation(kg: KnowledgeGraph) -> None:
    hops = kg.shortest_path("company:AAPL", "company:MSFT")
    assert hops == [(AAPL, str(KGF.inSector), IT), (MSFT, str(KGF.inSector), IT)]
    assert kg.explain_path(hops) == "Apple Inc. —[in sector]→ Information Technology ←[in sector]— Microsoft"
    chain = kg.shortest_path("drug:DB00945", "obo:SYMP_0000099")
    assert kg.explain_path(chain) == "Acetylsalicylic acid —[treats]→ myocardial infarction —[has symptom]→ chest pain"
    one = kg.shortest_path(IT, AAPL)
    assert kg.explain_path(one, start=IT) == "Information Technology ←[in sector]— Apple Inc."
    assert kg.shortest_path("company:AAPL", "company:MSFT", undirected=False) == []
    assert kg.shortest_path("company:AAPL", "obo:DOID_114") == []  # different components
    with pytest.raises(GraphError, match="not linked"):
        kg.shortest_path("company:AAPL", "company:NOPE")
    with pytest.raises(GraphError, match="path"):
        kg.explain_path([hops[0], (KO, str(KGF.inSector), str(KGFID["sector/consumer-staples"]))], start=AAPL)


def test_k_hop(kg: KnowledgeGraph) -> None:
    assert kg.k_hop(AAPL, 0) == set()
    assert kg.k_hop(AAPL, 1) == {IT, str(KGFID["industry/technology-hardware"])}
    assert MSFT in kg.k_hop(AAPL, 2) and KO not in kg.k_hop(AAPL, 5)
    with pytest.raises(GraphError):
        kg.k_hop(AAPL, -1)


def test_personalized_pagerank(kg: KnowledgeGraph) -> None:
    ranked = kg.personalized_pagerank(["company:AAPL"])
    assert abs(sum(s for _, s in ranked) - 1.0) < 1e-6
    scores = dict(ranked)
    assert scores[MSFT] > scores.get(KO, 0.0)  # same sector beats another component
    assert scores.get(str(OBO["DOID_114"]), 0.0) == 0.0
    companies = kg.personalized_pagerank({AAPL: 1.0}, types=[COMPANY], exclude_seeds=True, top_k=1)
    assert companies == [(MSFT, pytest.approx(scores[MSFT]))]
    weighted = dict(kg.personalized_pagerank({AAPL: 1.0, "company:KO": 3.0}))
    assert weighted[KO] > weighted[AAPL]
    with pytest.raises(GraphError, match="seeds"):
        kg.personalized_pagerank(["company:NOPE"])
    with pytest.raises(GraphError, match="alpha"):
        kg.personalized_pagerank([AAPL], alpha=1.5)


def test_stats(kg: KnowledgeGraph) -> None:
    stats = kg.stats()
    assert stats["triples"] == 50 and stats["entities"] == 11
    assert stats["types"]["schema:Corporation"] == 3
    assert stats["predicates"]["kgf:inSector"] == 3
