"""Bounded SPARQL: the time limit really stops runaway queries (worker killed, CPU back), the row cap
reads lazily and says when it cut a result, and normal queries return what they always did."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS

from kgfusion.core.errors import KgfusionError
from kgfusion.knowledge import sparql
from kgfusion.knowledge.graph import KnowledgeGraph
from kgfusion.knowledge.sparql import QueryRows, QueryTimeout, SparqlError, run_bounded
from kgfusion.knowledge.vocab import KGF

DATA = Path(__file__).resolve().parents[1] / "data" / "kg"
N_TRIPLES = 3000
# 3000^3 = 2.7e10 solutions: rdflib would count for days.
CROSS_JOIN = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
# The same product over materialised sub-queries: the final join pulls no triples from the store.
SUBQUERY_JOIN = ("SELECT (COUNT(*) AS ?n) WHERE { { SELECT ?a WHERE { ?a ?b ?c } } { SELECT ?d WHERE { ?d ?e ?f } } "
                 "{ SELECT ?g WHERE { ?g ?h ?i } } }")
TIMEOUT = 1.0
MARGIN = 1.5  # fork, kill and reap on a loaded two-core machine


def message(seconds: float) -> str:
    return f"query stopped after {seconds:g} s (limit --timeout); add LIMIT or narrow the pattern"


@pytest.fixture(scope="module")
def big() -> KnowledgeGraph:
    """3000 triples: 300 typed, labelled items with notes."""
    g = Graph()
    for i in range(N_TRIPLES // 10):
        item = URIRef(f"https://kgfusion.dev/id/item/{i}")
        g.add((item, RDF.type, KGF.Item))
        g.add((item, RDFS.label, Literal(f"item {i}")))
        for j in range(8):
            g.add((item, KGF.note, Literal(f"note {i}.{j}")))
    kg = KnowledgeGraph(g)
    assert len(kg) == N_TRIPLES
    return kg


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pids of the worker processes started by sparql.run_bounded during the test."""
    pids: list[int] = []
    real_fork = os.fork

    def spy() -> int:
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(sparql.os, "fork", spy)
    return pids


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# ---------------------------------------------------------------- time limit


@pytest.mark.parametrize("query", [CROSS_JOIN, SUBQUERY_JOIN], ids=["bgp-cross-join", "subquery-cross-join"])
def test_runaway_query_stops_within_the_limit(big: KnowledgeGraph, forks: list[int], query: str) -> None:
    start = time.monotonic()
    with pytest.raises(QueryTimeout) as info:
        big.query(query, timeout_s=TIMEOUT)
    elapsed = time.monotonic() - start
    assert TIMEOUT <= elapsed < TIMEOUT + MARGIN, elapsed
    assert str(info.value) == message(TIMEOUT)
    assert info.value.timeout_s == TIMEOUT
    assert isinstance(info.value, SparqlError) and isinstance(info.value, KgfusionError)
    (pid,) = forks
    assert gone(pid), "the worker must be killed and reaped, not left running"


def test_default_limit_is_five_seconds(big: KnowledgeGraph) -> None:
    start = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"^query stopped after 5 s \(limit --timeout\); add LIMIT or narrow"):
        big.query(CROSS_JOIN)
    assert time.monotonic() - start < 5 + MARGIN


def test_caller_keeps_its_cpu_and_next_query_is_normal(big: KnowledgeGraph, forks: list[int]) -> None:
    cpu, start = time.process_time(), time.monotonic()
    with pytest.raises(QueryTimeout):
        big.query(CROSS_JOIN, timeout_s=TIMEOUT)
    # The calling process (a Streamlit server, say) only waited: the work ran, and died, elsewhere.
    assert time.process_time() - cpu < 0.3 * (time.monotonic() - start)
    assert gone(forks[0])
    start = time.monotonic()
    assert big.query("SELECT (COUNT(*) AS ?n) WHERE { ?s a kgf:Item }") == [{"n": "300"}]
    assert time.monotonic() - start < 1.0


def test_in_process_fallback_without_fork_stops_bgp_joins(big: KnowledgeGraph, monkeypatch) -> None:
    monkeypatch.delattr(sparql.os, "fork")  # as on Windows: deadline checked as triples are pulled
    start = time.monotonic()
    with pytest.raises(QueryTimeout, match="limit --timeout"):
        big.query(CROSS_JOIN, timeout_s=0.5)
    assert time.monotonic() - start < 0.5 + MARGIN
    assert big.query("SELECT ?l WHERE { <https://kgfusion.dev/id/item/7> rdfs:label ?l }") == [{"l": "item 7"}]
    assert big.query("SELECT ?i WHERE { ?i a kgf:Item }", max_rows=5).truncated


def test_guard_runs_before_any_worker(big: KnowledgeGraph, forks: list[int]) -> None:
    with pytest.raises(SparqlError, match="read-only"):
        big.query("DELETE WHERE { ?s ?p ?o }")
    with pytest.raises(SparqlError, match="SERVICE"):
        big.query("SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }")
    with pytest.raises(SparqlError, match="Malformed SPARQL at line 1"):
        big.query("SELECT ?s WHERE { ?s ?p }")
    assert forks == []


@pytest.mark.parametrize("timeout_s", [0, -1.0, math.nan])
def test_bad_time_limit(big: KnowledgeGraph, timeout_s: float) -> None:
    with pytest.raises(SparqlError, match="Time limit must be > 0"):
        big.query("ASK { ?s ?p ?o }", timeout_s=timeout_s)


def test_no_time_limit_runs_in_process(big: KnowledgeGraph, forks: list[int]) -> None:
    assert big.query("ASK { ?s a kgf:Item }", timeout_s=None) == [{"ask": "true"}]
    assert forks == []


def test_worker_errors_come_back_as_sparql_errors() -> None:
    graph = Graph()

    def broken(_: Graph) -> None:
        raise ValueError("bad value")

    def refused(_: Graph) -> None:
        raise SparqlError("SPARQL evaluation failed: no such function")

    def dies(_: Graph) -> None:
        os._exit(3)

    with pytest.raises(SparqlError, match="^SPARQL evaluation failed: ValueError: bad value$"):
        run_bounded(broken, graph, 5)
    with pytest.raises(SparqlError, match="^SPARQL evaluation failed: no such function$"):
        run_bounded(refused, graph, 5)
    with pytest.raises(SparqlError, match="worker process died before answering"):
        run_bounded(dies, graph, 5)
    assert run_bounded(lambda g: {"triples": len(g), "rows": [{"a": "b"}] * 3}, graph, 5) == {
        "triples": 0, "rows": [{"a": "b"}] * 3}


def test_large_result_crosses_the_pipe(big: KnowledgeGraph) -> None:
    rows = big.query("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", max_rows=None)
    assert len(rows) == N_TRIPLES and not rows.truncated
    assert sorted(map(tuple, (r.values() for r in rows))) == sorted(
        (str(s), str(p), str(o)) for s, p, o in big.graph)


# ---------------------------------------------------------------- same answers as in-process

NORMAL = [
    "SELECT ?i ?l WHERE { ?i a kgf:Item ; rdfs:label ?l } ORDER BY ?l LIMIT 7",
    "SELECT (COUNT(?n) AS ?notes) WHERE { ?i kgf:note ?n }",
    "SELECT ?i ?n WHERE { ?i rdfs:label 'item 3' OPTIONAL { ?i kgf:note ?n } } ORDER BY ?n",
    "SELECT ?i WHERE { ?i rdfs:label ?l FILTER(STRSTARTS(?l, 'item 29')) } ORDER BY ?i",
    "ASK { <https://kgfusion.dev/id/item/5> kgf:note 'note 5.1' }",
    "ASK { <https://kgfusion.dev/id/item/5> kgf:note 'nothing' }",
    "CONSTRUCT { ?i kgf:named ?l } WHERE { ?i rdfs:label ?l FILTER(?l IN ('item 1', 'item 2')) }",
    "DESCRIBE <https://kgfusion.dev/id/item/4>",
]


@pytest.mark.parametrize("query", NORMAL)
def test_bounded_queries_match_in_process_results(big: KnowledgeGraph, query: str) -> None:
    bounded = big.query(query)
    assert isinstance(bounded, QueryRows) and not bounded.truncated and bounded.note == ""
    assert bounded == big.query(query, timeout_s=None, max_rows=None)
    assert bounded  # every query above has an answer


def test_shipped_fixture_graph_answers_as_before() -> None:
    kg = KnowledgeGraph.load(DATA / "tiny.ttl")
    rows = kg.query("SELECT ?c ?l WHERE { ?c kgf:inSector sector:information-technology ; rdfs:label ?l } ORDER BY ?l")
    assert rows == [{"c": "https://kgfusion.dev/id/company/AAPL", "l": "Apple Inc."},
                    {"c": "https://kgfusion.dev/id/company/MSFT", "l": "Microsoft"}]
    assert kg.query("SELECT ?l WHERE { ?c rdfs:label ?l }", init_bindings={"c": "company:KO"}, timeout_s=2) == \
        kg.query("SELECT ?l WHERE { ?c rdfs:label ?l }", init_bindings={"c": "company:KO"}, timeout_s=None)


# ---------------------------------------------------------------- row cap


def test_row_cap_truncates_and_says_so(big: KnowledgeGraph) -> None:
    rows = big.query("SELECT ?s ?o WHERE { ?s kgf:note ?o }", max_rows=100)
    assert len(rows) == 100 and rows.truncated and rows.max_rows == 100
    assert rows.note == "result truncated at 100 rows (limit --max-rows); add LIMIT or narrow the pattern"
    assert big.query("SELECT ?s WHERE { ?s kgf:note ?o }").note == ""  # 2400 rows < 10,000 default
    full = big.query("SELECT ?s WHERE { ?s a kgf:Item }", max_rows=300)
    assert len(full) == 300 and not full.truncated  # exactly at the cap: nothing was cut
    asked = big.query("SELECT ?s WHERE { ?s a kgf:Item }", limit=10, max_rows=100)
    assert len(asked) == 10 and not asked.truncated  # the caller's own limit is not a truncation
    both = big.query("SELECT ?s WHERE { ?s a kgf:Item }", limit=50, max_rows=20)
    assert len(both) == 20 and both.truncated
    built = big.query("CONSTRUCT { ?s kgf:n ?o } WHERE { ?s kgf:note ?o }", max_rows=30)
    assert len(built) == 30 and built.truncated
    assert built == big.query("CONSTRUCT { ?s kgf:n ?o } WHERE { ?s kgf:note ?o }", max_rows=None)[:30]
    assert "10,000 rows" in sparql.truncation_note(10_000)


def test_row_cap_reads_lazily(big: KnowledgeGraph) -> None:
    start = time.monotonic()  # 2.7e10 solutions; only the first 11 are ever produced
    rows = big.query("SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }", max_rows=10, timeout_s=10)
    assert len(rows) == 10 and rows.truncated
    assert time.monotonic() - start < 3


def test_bad_row_cap(big: KnowledgeGraph) -> None:
    with pytest.raises(SparqlError, match="Row cap must be >= 1"):
        big.query("ASK { ?s ?p ?o }", max_rows=0)
