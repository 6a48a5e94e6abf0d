"""`kgfusion kg ... --kg-store oxigraph:DIR`: same output as memory, built once, clear errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("pyoxigraph")

from kgfusion.apps.kg.cli import group  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "kg"


@pytest.fixture
def graph(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.ttl"
    shutil.copy(DATA / "tiny.ttl", path)
    return path


def invoke(*args: str):
    return CliRunner().invoke(group, list(args))


def test_query_neighbors_path_stats_agree_with_memory(graph: Path, tmp_path: Path) -> None:
    store = f"oxigraph:{tmp_path / 'kgstore'}"
    q = "SELECT ?c ?l WHERE { ?c kgf:inSector sector:information-technology ; rdfs:label ?l } ORDER BY ?l"
    commands = [
        ["query", q, "--graph", str(graph), "--json"],
        ["query", "ASK { drug:DB00945 kgf:treats obo:DOID_5844 }", "--graph", str(graph), "--json"],
        ["neighbors", "Apple Inc.", "--graph", str(graph), "--json"],
        ["path", "company:AAPL", "Microsoft", "--graph", str(graph), "--json"],
        ["stats", "--graph", str(graph), "--json"],
    ]
    for args in commands:
        mem = invoke(*args)
        ox = invoke(*args, "--kg-store", store)
        assert mem.exit_code == ox.exit_code == 0, ox.output
        assert json.loads(ox.stdout) == json.loads(mem.stdout), args
    assert "Built the Oxigraph store" not in invoke(*commands[0], "--kg-store", store).stderr  # reused


def test_first_run_says_it_built_the_store_and_env_var(graph: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGFUSION_KG_STORE", f"oxigraph:{tmp_path / 'env-store'}")
    first = invoke("query", "ASK { ?s ?p ?o }", "--graph", str(graph))
    assert first.exit_code == 0 and "Built the Oxigraph store" in first.stderr
    assert (tmp_path / "env-store" / "kgfusion-kg-store.json").is_file()


def test_guard_and_bad_store_errors(graph: Path, tmp_path: Path) -> None:
    store = f"oxigraph:{tmp_path / 'kgstore'}"
    update = invoke("query", "DELETE WHERE { ?s ?p ?o }", "--graph", str(graph), "--kg-store", store)
    assert update.exit_code == 1 and "read-only" in update.output
    assert invoke("query", "ASK { ?s ?p ?o }", "--graph", str(graph), "--kg-store", "oxigraph").exit_code == 2
    assert invoke("query", "ASK { ?s ?p ?o }", "--graph", str(graph), "--kg-store", "neo4j:x").exit_code == 2
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    bad = invoke("query", "ASK { ?s ?p ?o }", "--graph", str(graph), "--kg-store", f"oxigraph:{foreign}")
    assert bad.exit_code == 1 and "not a kgfusion knowledge-graph store" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_option_reaches_the_app_loaders(graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    from kgfusion.apps.common import chosen_kg_store, kg_store_option, load_kg

    @click.command()
    @kg_store_option
    def show() -> None:  # what finance/medical/recommend do: load_kg(path) with the command's choice
        kg = load_kg(graph)
        click.echo(f"{type(kg).__name__} {chosen_kg_store()}")

    monkeypatch.delenv("KGFUSION_KG_STORE", raising=False)
    assert CliRunner().invoke(show, []).output.strip() == "KnowledgeGraph memory"
    store = tmp_path / "s"
    assert CliRunner().invoke(show, ["--kg-store", f"oxigraph:{store}"]).output.strip() == (
        f"OxigraphKnowledgeGraph oxigraph:{store}")
    assert chosen_kg_store().kind == "memory"  # outside a command: $KGFUSION_KG_STORE, else memory
    monkeypatch.setenv("KGFUSION_KG_STORE", f"oxigraph:{store}")
    assert chosen_kg_store().kind == "oxigraph"


def test_server_graph_service_uses_the_store(graph: Path, tmp_path: Path) -> None:
    from kgfusion.apps.serve.services import GraphService

    service = GraphService({"tiny": graph}, store=f"oxigraph:{tmp_path / 's'}")
    kg = service.kg("tiny")
    assert type(kg).__name__ == "OxigraphKnowledgeGraph" and service.info.backend == "oxigraph"
    assert kg.query("SELECT ?n WHERE { company:AAPL rdfs:label ?n }") == [{"n": "Apple Inc."}]
