"""The persistent Oxigraph backend answers like the in-memory graph and is built once, reused, rebuilt on change."""
from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pyoxigraph")

from kgfusion.knowledge import oxigraph_store  # noqa: E402
from kgfusion.knowledge.graph import GraphError, KgStore, KnowledgeGraph  # noqa: E402
from kgfusion.knowledge.oxigraph_store import MARKER, OxigraphKnowledgeGraph, open_graph  # noqa: E402
from kgfusion.knowledge.sparql import QueryTimeout, SparqlError  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "kg"

QUERIES = [
    "SELECT ?c ?n WHERE { ?c a schema:Corporation ; rdfs:label ?n } ORDER BY ?c",
    "SELECT ?s (COUNT(?c) AS ?n) WHERE { ?c kgf:inSector ?s } GROUP BY ?s ORDER BY ?s",
    "SELECT ?a WHERE { obo:DOID_5844 rdfs:subClassOf+ ?x . ?x rdfs:label ?a }",
    "SELECT ?x ?alt WHERE { ?x rdfs:label ?l OPTIONAL { ?x skos:altLabel ?alt } } ORDER BY ?x ?alt",
    "ASK { drug:DB00945 kgf:treats obo:DOID_5844 }",
    "ASK { drug:DB00945 kgf:treats obo:DOID_114 }",
    "CONSTRUCT { ?d kgf:treats ?x } WHERE { ?d kgf:treats ?x }",
    "DESCRIBE obo:SYMP_0000099",
]


@pytest.fixture
def ttl(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "tiny.ttl"
    path.parent.mkdir()
    shutil.copy(DATA / "tiny.ttl", path)
    return path


@pytest.fixture
def both(ttl: Path, tmp_path: Path) -> tuple[KnowledgeGraph, KnowledgeGraph]:
    return KnowledgeGraph.load(ttl), KnowledgeGraph.load(ttl, store=f"oxigraph:{tmp_path / 'store'}")


def test_same_answers_as_memory(both: tuple[KnowledgeGraph, KnowledgeGraph]) -> None:
    mem, ox = both
    assert isinstance(ox, OxigraphKnowledgeGraph) and not isinstance(mem, OxigraphKnowledgeGraph)
    assert len(ox) == len(mem) > 0
    for name in ("Apple", "heart attack", "MICROSOFT", "nothing"):
        assert ox.lookup(name) == mem.lookup(name)
    for uri in ("company:AAPL", "obo:DOID_5844", "drug:DB00945", "sector:information-technology"):
        assert ox.labels(uri) == mem.labels(uri)
        assert ox.label(uri) == mem.label(uri)
        assert ox.types(uri) == mem.types(uri)
        for direction in ("out", "in", "both"):
            a, b = ox.neighbors(uri, direction=direction), mem.neighbors(uri, direction=direction)
            assert a == b and [n.direction for n in a] == [n.direction for n in b]
        assert ox.triples_about(uri) == mem.triples_about(uri)
    assert ox.neighbors("company:AAPL", predicate="kgf:inSector") == mem.neighbors("company:AAPL",
                                                                                     predicate="kgf:inSector")
    assert ox.entity_records() == mem.entity_records()
    assert ox.stats() == mem.stats()
    assert sorted(ox.to_networkx().edges(keys=True)) == sorted(mem.to_networkx().edges(keys=True))
    assert ox.shortest_path("company:AAPL", "company:MSFT") == mem.shortest_path("company:AAPL", "company:MSFT")
    for sparql in QUERIES:
        a, b = ox.query(sparql), mem.query(sparql)
        key = lambda r: sorted(r.items())  # noqa: E731 (property-path rows come in engine order)
        assert sorted(a, key=key) == sorted(b, key=key), sparql
    bound = {"c": "company:AAPL"}
    assert ox.query("SELECT ?n WHERE { ?c rdfs:label ?n }", bound) == mem.query(
        "SELECT ?n WHERE { ?c rdfs:label ?n }", bound) == [{"n": "Apple Inc."}]


def test_row_cap_and_limit_as_memory(both: tuple[KnowledgeGraph, KnowledgeGraph]) -> None:
    mem, ox = both
    sparql = "SELECT ?s WHERE { ?s ?p ?o } ORDER BY ?s"
    for kwargs in ({"max_rows": 3}, {"limit": 2}, {"limit": 2, "max_rows": 5}):
        a, b = ox.query(sparql, **kwargs), mem.query(sparql, **kwargs)
        assert (list(a), a.truncated, a.note) == (list(b), b.truncated, b.note)
    assert ox.query(sparql, max_rows=3).truncated


def test_guard_rejects_updates_and_remote_data(both: tuple[KnowledgeGraph, KnowledgeGraph]) -> None:
    _, ox = both
    for bad in ("INSERT DATA { company:AAPL rdfs:label \"x\" }", "DELETE WHERE { ?s ?p ?o }",
                "DROP ALL", "LOAD <http://example.org/x.ttl>",
                "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
                "SELECT * FROM <http://example.org/g> WHERE { ?s ?p ?o }", "SELEC nonsense"):
        with pytest.raises(SparqlError):
            ox.query(bad)
    assert ox.lookup("Apple")  # still intact
    with pytest.raises(GraphError, match="read-only"):
        ox.graph.add((ox.expand("company:AAPL"), ox.expand("rdfs:label"), ox.expand("company:X")))


def test_time_limit_stops_oxigraph_query(both: tuple[KnowledgeGraph, KnowledgeGraph]) -> None:
    _, ox = both
    runaway = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n2 ?o }"
    with pytest.raises(QueryTimeout):
        ox.query(runaway, timeout_s=0.3)
    assert ox.query("ASK { ?s ?p ?o }") == [{"ask": "true"}]  # the store still answers after the kill


def test_reused_on_second_open_without_reading_the_turtle(ttl: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store_dir = tmp_path / "store"
    first = open_graph(ttl, store_dir)
    assert not first.store_info.reused and first.store_info.triples == len(first)
    assert (store_dir / MARKER).is_file()

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuilt")

    monkeypatch.setattr(oxigraph_store, "_build", no_build)
    monkeypatch.setattr(oxigraph_store, "_sha256", no_build)  # the fast path does not even hash the file
    second = open_graph(ttl, store_dir)
    assert second.store_info.reused and second.store_info.store_path == first.store_info.store_path
    assert second.lookup("Apple") == first.lookup("Apple")


def test_touch_rehashes_but_reuses(ttl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_dir = tmp_path / "store"
    first = open_graph(ttl, store_dir)
    st = ttl.stat()
    os.utime(ttl, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    monkeypatch.setattr(oxigraph_store, "_build", lambda *a, **k: pytest.fail("rebuilt"))
    again = open_graph(ttl, store_dir)
    assert again.store_info.reused and again.store_info.fingerprint == first.store_info.fingerprint
    manifest = json.loads((first.store_info.slot / "manifest.json").read_text())
    assert manifest["sources"][0]["mtime_ns"] == ttl.stat().st_mtime_ns


def test_changed_turtle_rebuilds(ttl: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    first = open_graph(ttl, store_dir)
    assert first.lookup("Zed Corp") == []
    ttl.write_text(ttl.read_text() + '\ncompany:ZED a schema:Corporation ; rdfs:label "Zed Corp" .\n')
    second = open_graph(ttl, store_dir)
    assert not second.store_info.reused and second.store_info.fingerprint != first.store_info.fingerprint
    assert second.lookup("Zed Corp") == [second.expand("company:ZED")]
    assert len(second) == len(first) + 2
    assert [p.name for p in second.store_info.slot.glob("store-*")] == [second.store_info.store_path.name]


def test_gzip_source_and_several_graphs_in_one_directory(ttl: Path, tmp_path: Path) -> None:
    gz = tmp_path / "src" / "other.ttl.gz"
    gz.write_bytes(gzip.compress(ttl.read_bytes()))
    store_dir = tmp_path / "store"
    a, b = open_graph(ttl, store_dir), open_graph(gz, store_dir)
    assert a.store_info.slot != b.store_info.slot and len(a) == len(b)
    assert open_graph(ttl, store_dir).store_info.reused and open_graph(gz, store_dir).store_info.reused


def test_two_read_only_handles_share_a_store(ttl: Path, tmp_path: Path) -> None:
    a = open_graph(ttl, tmp_path / "store")
    b = open_graph(ttl, tmp_path / "store")
    assert a.query("SELECT ?n WHERE { company:MSFT rdfs:label ?n }") == b.query(
        "SELECT ?n WHERE { company:MSFT rdfs:label ?n }") == [{"n": "Microsoft"}]


def test_bad_directories_and_files_are_one_line_errors(ttl: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(GraphError, match="not a kgfusion knowledge-graph store"):
        open_graph(ttl, foreign)
    assert (foreign / "notes.txt").read_text() == "mine" and len(list(foreign.iterdir())) == 1
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(GraphError, match="is a file"):
        open_graph(ttl, a_file)
    with pytest.raises(GraphError, match="not found"):
        open_graph(tmp_path / "missing.ttl", tmp_path / "store")
    with pytest.raises(GraphError, match=r"malformed Turtle.*Fix the file"):
        open_graph(DATA / "malformed.ttl", tmp_path / "store")
    assert not list((tmp_path / "store").glob("*/.build-*"))  # a failed build leaves no half store

    good = open_graph(ttl, tmp_path / "store2")
    for f in good.store_info.store_path.iterdir():  # wreck the store behind its manifest
        if f.is_file():
            f.write_bytes(b"garbage")
    with pytest.raises(GraphError, match=r"cannot open the Oxigraph store.*delete") as err:
        open_graph(ttl, tmp_path / "store2")
    assert "\n" not in str(err.value)


def test_build_lock_held_by_another_builder(ttl: Path, tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    store_dir = tmp_path / "store"
    oxigraph_store._check_directory(store_dir, create=True)
    slot = oxigraph_store.slot_for(store_dir, [ttl.resolve()])
    slot.mkdir()
    with (slot / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # flock locks are per open file: a second open conflicts
        with pytest.raises(GraphError, match="locked by process"):
            oxigraph_store.open_store([ttl], store_dir, lock_timeout_s=0.2)
    assert oxigraph_store.open_store([ttl], store_dir)[1].reused is False


def test_missing_extra_names_it(ttl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object):
        if name == "pyoxigraph":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(oxigraph_store, "_PYOXIGRAPH", None)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(Exception, match=r"kgfusion\[store\]"):
        KnowledgeGraph.load(ttl, store=f"oxigraph:{tmp_path / 'store'}")


def test_store_choice_parsing(tmp_path: Path) -> None:
    assert KgStore.parse(None) == KgStore.parse("memory") == KgStore()
    choice = KgStore.parse(f"oxigraph:{tmp_path}")
    assert choice.kind == "oxigraph" and choice.directory == tmp_path and str(choice) == f"oxigraph:{tmp_path}"
    for bad, match in (("oxigraph", "needs a directory"), ("oxigraph:", "needs a directory"),
                       ("sqlite:x", "Unknown"), ("memory:x", "takes no directory")):
        with pytest.raises(GraphError, match=match):
            KgStore.parse(bad)


def test_another_process_reads_the_store_while_this_one_has_it_open(ttl: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    mine = open_graph(ttl, tmp_path / "store")
    code = ("import sys; from kgfusion.knowledge.oxigraph_store import open_graph; "
            "kg = open_graph(sys.argv[1], sys.argv[2]); "
            "print(kg.store_info.reused, kg.query('SELECT ?n WHERE { company:KO rdfs:label ?n }')[0]['n'])")
    done = subprocess.run([sys.executable, "-c", code, str(ttl), str(tmp_path / "store")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True Coca-Cola Company (The)"
    assert mine.lookup("Coca-Cola Company (The)") == [mine.expand("company:KO")]


def test_deleted_store_folder_is_rebuilt(ttl: Path, tmp_path: Path) -> None:
    first = open_graph(ttl, tmp_path / "store")
    shutil.rmtree(first.store_info.store_path)
    again = open_graph(ttl, tmp_path / "store")
    assert not again.store_info.reused and len(again) == len(first)
