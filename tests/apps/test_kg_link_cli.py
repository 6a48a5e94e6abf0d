"""`kgfusion kg link` via CliRunner on a tiny Turtle fixture with a keyword mock encoder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import kgfusion.apps.kg.link as link_mod
from kgfusion.apps.kg.link import link_command
from tests.mocks import KeywordEncoder

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "kg_link" / "tiny.ttl"
KEYWORDS = {"breast": 0, "mammary": 0, "cancer": 1, "carcinoma": 1, "tumour": 1, "lung": 2, "pulmonary": 2,
            "diabetes": 3, "aspirin": 4, "acetylsalicylic": 4, "tay": 5, "sachs": 5}


@pytest.fixture()
def encoder(monkeypatch) -> KeywordEncoder:
    enc = KeywordEncoder(KEYWORDS)
    monkeypatch.setattr(link_mod, "make_encoder", lambda: enc)
    return enc


@pytest.fixture()
def graph(tmp_path) -> Path:
    path = tmp_path / "kg" / "tiny.ttl"
    path.parent.mkdir()
    shutil.copy(FIXTURE, path)
    return path


def run(*args: str):
    return CliRunner().invoke(link_command, list(args), catch_exceptions=False)


def test_link_json_builds_and_caches_the_index(graph, encoder) -> None:
    res = run("mammary carcinoma", "pulmonary tumour", "--graph", str(graph), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    first, second = out["results"]
    assert (first["uri"], first["match"]) == ("http://purl.obolibrary.org/obo/DOID_1612", "exact")
    assert (second["uri"], second["match"]) == ("http://purl.obolibrary.org/obo/DOID_1324", "embedding")
    assert out["index"]["entities"] == 5 and out["index"]["encoder"] == "keyword-mock"
    cache = graph.parent / "index" / "tiny"
    assert (cache / "manifest.json").is_file()

    encoder.calls.clear()
    res = run("Tay Sachs", "--graph", str(graph), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["results"][0]["match"] == "normalized"
    assert encoder.encoded == 0  # cached index reused; a normalised match reuses a stored name vector


def test_graph_change_triggers_rebuild(graph, encoder) -> None:
    assert run("aspirin", "--graph", str(graph)).exit_code == 0
    graph.write_text(graph.read_text().replace('"aspirin"', '"acetylsalicylic acid tablet"'), encoding="utf-8")
    encoder.calls.clear()
    res = run("aspirin", "--graph", str(graph), "--json")
    assert res.exit_code == 0, res.output
    assert encoder.encoded > 1  # names re-encoded
    labels = [c["label"] for c in json.loads(res.output)["results"][0]["candidates"]]
    assert "acetylsalicylic acid tablet" in labels


def test_corrupt_cache_is_rebuilt(graph, encoder) -> None:
    assert run("aspirin", "--graph", str(graph)).exit_code == 0
    (graph.parent / "index" / "tiny" / "index.faiss").write_bytes(b"garbage")
    res = run("ASA", "--graph", str(graph), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["results"][0]["uri"] == "https://kgfusion.dev/id/drug/DB00945"


def test_type_filter_and_text_output(graph, encoder) -> None:
    res = run("ASA", "--graph", str(graph), "--type", "disease", "-k", "2")
    assert res.exit_code == 0, res.output
    assert "DB00945" not in res.output
    res = run("aspirin", "--graph", str(graph), "--type", "schema:Drug")
    assert res.exit_code == 0 and "aspirin <https://kgfusion.dev/id/drug/DB00945>" in res.output
    assert "exact" in res.output


def test_named_graph_resolves_under_data_dir(tmp_path, monkeypatch, encoder) -> None:
    (tmp_path / "kg").mkdir()
    shutil.copy(FIXTURE, tmp_path / "kg" / "medical.ttl")
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path))
    res = run("DM", "--json")  # --graph defaults to medical
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["results"][0]["uri"].endswith("DOID_9351")
    assert (tmp_path / "kg" / "index" / "medical" / "manifest.json").is_file()


def test_bad_input_is_a_clear_error(tmp_path, monkeypatch, encoder) -> None:
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path))
    res = CliRunner().invoke(link_command, ["x", "--graph", "finance"])
    assert res.exit_code == 2 and "kgfusion kg build finance" in res.output
    res = CliRunner().invoke(link_command, ["x", "--graph", str(FIXTURE), "--type", "planet"])
    assert res.exit_code == 2 and "Unknown type 'planet'" in res.output
    bad = tmp_path / "bad.ttl"
    bad.write_text("this is not turtle .", encoding="utf-8")
    res = CliRunner().invoke(link_command, ["x", "--graph", str(bad)])
    assert res.exit_code == 1 and "bad.ttl" in res.output
