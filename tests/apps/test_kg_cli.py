from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kgfusion.apps.kg.cli import group

DATA = Path(__file__).resolve().parents[1] / "data" / "kg"
AAPL = "https://kgfusion.dev/id/company/AAPL"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A $KGFUSION_DATA folder with the fixture graphs built into kg/."""
    root = tmp_path_factory.mktemp("data")
    result = CliRunner().invoke(group, ["build", "all", "--datasets", str(DATA / "datasets"), "--out",
                                        str(root / "kg"), "--json"])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def run(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KGFUSION_DATA", str(data_dir))

    def invoke(*args: str):
        return CliRunner().invoke(group, list(args))

    return invoke


def test_build_reports_and_writes(tmp_path: Path, run) -> None:
    result = run("build", "finance", "--datasets", str(DATA / "datasets"), "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    (payload,) = json.loads(result.output)
    assert payload["domain"] == "finance" and Path(payload["path"]) == tmp_path / "finance.ttl"
    assert payload["stats"]["types"]["schema:Corporation"] == 5 and payload["report"]["rows_rejected"] == 1
    text = run("build", "movies", "--datasets", str(DATA / "datasets"), "--out", str(tmp_path))
    assert text.exit_code == 0 and "movies:" in text.output and "schema:Movie 4" in text.output


def test_build_uses_data_dir_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(DATA / "datasets", tmp_path / "datasets")
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path))
    result = CliRunner().invoke(group, ["build", "medical"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kg" / "medical.ttl").is_file()


def test_build_rejects_bad_domain_and_missing_dir(run, tmp_path: Path) -> None:
    assert run("build", "crypto").exit_code == 2
    assert run("build", "finance", "--datasets", str(tmp_path / "absent")).exit_code == 2
    empty = run("build", "finance", "--datasets", str(tmp_path), "--out", str(tmp_path / "out"))
    assert empty.exit_code == 1 and "constituents.csv" in empty.output


def test_stats(run) -> None:
    result = run("stats", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert set(stats) == {"finance", "medical", "movies"}
    assert stats["medical"]["types"]["schema:Drug"] == 3
    one = run("stats", "--graph", str(DATA / "tiny.ttl"))
    assert one.exit_code == 0 and "tiny" in one.output and "schema:Corporation: 3" in one.output


def test_query(run) -> None:
    q = "SELECT ?c ?l WHERE { ?c kgf:inSector sector:information-technology ; rdfs:label ?l } ORDER BY ?l"
    result = run("query", q, "--graph", "finance", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"c": AAPL, "l": "Apple Inc."},
                                         {"c": "https://kgfusion.dev/id/company/MSFT", "l": "Microsoft"}]
    text = run("query", q, "--graph", "finance", "--limit", "1")
    assert text.output.splitlines() == ["c\tl", "company:AAPL\tApple Inc."]


def test_query_from_file_and_errors(run, tmp_path: Path) -> None:
    rq = tmp_path / "q.rq"
    rq.write_text("ASK { company:AAPL a schema:Corporation }", encoding="utf-8")
    assert json.loads(run("query", f"@{rq}", "--graph", "finance", "--json").output) == [{"ask": "true"}]
    update = run("query", "DELETE WHERE { ?s ?p ?o }", "--graph", "finance")
    assert update.exit_code == 1 and "read-only" in update.output
    bad = run("query", "SELECT ?s WHERE { ?s ?p }", "--graph", "finance")
    assert bad.exit_code == 1 and "Malformed SPARQL" in bad.output
    assert run("query", "ASK { ?s ?p ?o }").exit_code == 2  # --graph is required
    assert run("query", "ASK { ?s ?p ?o }", "--graph", "nowhere.ttl").exit_code == 2
    broken = run("query", "ASK { ?s ?p ?o }", "--graph", str(DATA / "malformed.ttl"))
    assert broken.exit_code == 1 and "malformed.ttl" in broken.output and "line 5" in broken.output


def test_neighbors(run) -> None:
    result = run("neighbors", "kgfid:company/AAPL", "--predicate", "kgf:inSector", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"direction": "out", "predicate": "https://kgfusion.dev/ns#inSector",
                                          "node": "https://kgfusion.dev/id/sector/information-technology",
                                          "label": "Information Technology"}]
    by_label = run("neighbors", "Information Technology", "--graph", "finance", "--direction", "in")
    assert by_label.exit_code == 0 and "<- kgf:inSector  company:AAPL  (Apple Inc.)" in by_label.output
    medical = run("neighbors", "obo:DOID_5844", "--direction", "in")
    assert medical.exit_code == 0 and "drug:DB00945" in medical.output


def test_neighbors_needs_graph_for_plain_labels(run) -> None:
    result = run("neighbors", "Apple Inc.")
    assert result.exit_code == 2 and "--graph" in result.output
    missing = run("neighbors", "Nothing Such", "--graph", "finance")
    assert missing.exit_code == 2 and "no entity" in missing.output


def test_path(run) -> None:
    result = run("path", "company:AAPL", "Microsoft", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["explanation"] == "Apple Inc. —[in sector]→ Information Technology ←[in sector]— Microsoft"
    assert payload["hops"][0] == [AAPL, "https://kgfusion.dev/ns#inSector",
                                  "https://kgfusion.dev/id/sector/information-technology"]
    none = run("path", "company:AAPL", "company:KO")
    assert none.exit_code == 0 and "No path" in none.output
    directed = run("path", "company:AAPL", "company:MSFT", "--directed")
    assert "No path" in directed.output


def test_path_with_ambiguous_label(run) -> None:
    result = run("path", "Apple", "Microsoft", "--graph", str(DATA / "tiny.ttl"))
    assert result.exit_code == 2 and "names 2 entities" in result.output


def test_unbuilt_graph_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path))
    result = CliRunner().invoke(group, ["stats", "--graph", "movies"])
    assert result.exit_code == 2 and "kgfusion kg build movies" in result.output
    assert CliRunner().invoke(group, ["stats"]).exit_code == 1


@pytest.fixture(scope="module")
def big_ttl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3000-triple Turtle file: enough for a cross join that would run for days."""
    path = tmp_path_factory.mktemp("big") / "big.ttl"
    lines = ["@prefix kgf: <https://kgfusion.dev/ns#> ."]
    lines += [f'<https://kgfusion.dev/id/item/{i}> kgf:note "note {i}" .' for i in range(3000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


CROSS_JOIN = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


def test_query_timeout_is_one_line_and_exit_1(big_ttl: Path) -> None:
    start = time.monotonic()
    result = CliRunner().invoke(group, ["query", CROSS_JOIN, "--graph", str(big_ttl), "--timeout", "1"])
    assert time.monotonic() - start < 1 + 2.5  # load + fork + kill on a loaded machine
    assert result.exit_code == 1
    assert result.output == "Error: query stopped after 1 s (limit --timeout); add LIMIT or narrow the pattern\n"
    half = CliRunner().invoke(group, ["query", CROSS_JOIN, "--graph", str(big_ttl), "--timeout", "0.5", "--json"])
    assert half.exit_code == 1 and "query stopped after 0.5 s (limit --timeout)" in half.output


def test_query_max_rows_note_and_limits(big_ttl: Path) -> None:
    q = "SELECT ?s WHERE { ?s kgf:note ?o }"
    capped = CliRunner().invoke(group, ["query", q, "--graph", str(big_ttl), "--limit", "0", "--max-rows", "25"])
    assert capped.exit_code == 0, capped.output
    assert len(capped.stdout.splitlines()) == 1 + 25  # header + rows
    assert capped.stderr == "Note: result truncated at 25 rows (limit --max-rows); add LIMIT or narrow the pattern\n"
    as_json = CliRunner().invoke(group, ["query", q, "--graph", str(big_ttl), "--max-rows", "5", "--json"])
    assert as_json.exit_code == 0 and len(json.loads(as_json.stdout)) == 5 and "truncated at 5 rows" in as_json.stderr
    everything = CliRunner().invoke(group, ["query", q, "--graph", str(big_ttl), "--limit", "0", "--max-rows", "0",
                                            "--timeout", "0", "--json"])
    assert everything.exit_code == 0 and len(json.loads(everything.stdout)) == 3000 and not everything.stderr
    default = CliRunner().invoke(group, ["query", q, "--graph", str(big_ttl)])  # --limit 100 < --max-rows
    assert default.exit_code == 0 and len(default.stdout.splitlines()) == 101 and not default.stderr
    for bad in (["--timeout", "-1"], ["--max-rows", "-2"], ["--timeout", "soon"]):
        assert CliRunner().invoke(group, ["query", q, "--graph", str(big_ttl), *bad]).exit_code == 2
