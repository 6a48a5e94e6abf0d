"""The Streamlit suite offline: entry script + navigation, Home, Models and Knowledge pages (AppTest),
the readers behind them, and `kgfusion ui`. Small hand-made bundles, results and graph; no model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from kgfusion.apps.ui import catalog, kgview
from kgfusion.apps.ui.pages import page_specs
from kgfusion.knowledge.graph import GraphError, KnowledgeGraph
from tests.apps.ui.markdown import shown

UI = Path(__file__).resolve().parents[3] / "apps" / "ui"

TTL = """\
@prefix company: <https://kgfusion.dev/id/company/> .
@prefix sector: <https://kgfusion.dev/id/sector/> .
@prefix kgf: <https://kgfusion.dev/ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix schema: <https://schema.org/> .

company:AAPL a schema:Corporation ; rdfs:label "Apple Inc." ; skos:altLabel "Apple", "AAPL" ;
    kgf:ticker "AAPL" ; kgf:inSector sector:information-technology .
company:MSFT a schema:Corporation ; rdfs:label "Microsoft" ; skos:altLabel "MSFT" ;
    kgf:ticker "MSFT" ; kgf:inSector sector:information-technology .
company:XOM a schema:Corporation ; rdfs:label "Exxon \\"Mobil\\"" ; kgf:ticker "XOM" ; kgf:inSector sector:energy .
sector:information-technology a kgf:Sector ; rdfs:label "Information Technology" .
sector:energy a kgf:Sector ; rdfs:label "Energy" .
"""

SPEED = {
    "n_test": 100, "speedup_vs_pipeline": 12.0, "accuracy_drop_points": 0.1,
    "baseline_pipeline_accuracy": 0.80, "baseline_pipeline_items_per_s": 4.0,
    "pipeline_fp32_accuracy": 0.80, "pipeline_fp32_macro_f1": 0.78, "pipeline_fp32_size_mb": 90.0,
    "pipeline_fp32_items_per_s": 4.0, "pipeline_fp32_speedup_vs_pipeline": 1.0,
    "predictor_onnx_int8_accuracy": 0.79, "predictor_onnx_int8_macro_f1": 0.77, "predictor_onnx_int8_size_mb": 23.0,
    "predictor_onnx_int8_items_per_s": 48.0, "predictor_onnx_int8_speedup_vs_pipeline": 12.0,
}


def write_bundle(root: Path, name: str, metrics: dict, card: str = "") -> Path:
    path = root / name
    path.mkdir(parents=True)
    manifest = {"format": "kgfusion-bundle", "version": 1, "task": "sequence", "method": "lora", "base": "minilm",
                "labels": ["negative", "positive"], "max_length": 32, "files": {}, "name": name,
                "created": "2026-01-01T00:00:00Z", "extra": {}}
    (path / "bundle.json").write_text(json.dumps(manifest))
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "adapter_model.safetensors").write_bytes(b"\0" * 2_000_000)
    if card:
        (path / "MODEL_CARD.md").write_text(card)
    return path


@pytest.fixture
def suite_dirs(tmp_path, monkeypatch):
    """$KGFUSION_DATA with two bundles (+ one broken) and a finance graph; $KGFUSION_RESULTS with results."""
    data, results = tmp_path / "data", tmp_path / "results"
    models = data / "models"
    write_bundle(models, "tiny-sentiment", {"dev_macro_f1": 0.7123, "dev_accuracy": 0.8, "devel_f1": 0.61,
                                            "devel_onnx_int8_f1": 0.6, "details": {"dev": {"n": 10}}},
                 card="# Tiny sentiment card\n\nTrained on twelve sentences for this test.")
    write_bundle(models, "tiny-ner", {"dev_f1": 0.5555})
    (models / "broken").mkdir()
    (models / "broken" / "bundle.json").write_text("{not json")
    (data / "kg").mkdir(parents=True)
    (data / "kg" / "finance.ttl").write_text(TTL)
    results.mkdir()
    (results / "core_speed.json").write_text(json.dumps(SPEED))
    (results / "finance.json").write_text(json.dumps({"fused_phrasebank50_accuracy": 0.8468, "twitter_accuracy": 0.85,
                                                      "onnx_int8_twitter_accuracy": 0.84}))
    (results / "zeta.json").write_text(json.dumps({"aaa_count": 7, "b_ndcg_at_10": 0.25, "note": "text"}))
    (results / "bad.json").write_text("[1, 2]")
    monkeypatch.setenv("KGFUSION_DATA", str(data))
    monkeypatch.setenv("KGFUSION_RESULTS", str(results))
    return data, results


def run_page(name: str) -> AppTest:
    at = AppTest.from_file(str(UI / name), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ---------------------------------------------------------------- pages


def test_app_navigates_to_every_page(suite_dirs):
    at = AppTest.from_file(str(UI / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "kgfusion"
    links = {p.proto.page for p in at.get("page_link")}
    assert links == {s.url_path for s in page_specs() if not s.is_home} >= {"finance", "medical", "models", "knowledge"}
    for script, title in (("../ui/models_page.py", "Models"), ("../ui/knowledge_page.py", "Knowledge graphs"),
                          ("../finance/page.py", "Financial sentiment monitor")):
        at.switch_page(script).run()
        assert not at.exception, (script, [e.value for e in at.exception])
        assert at.title[0].value == title


def test_home_shows_bundles_headlines_and_problems(suite_dirs):
    at = run_page("home.py")
    table = at.dataframe[0].value
    assert list(table["bundle"]) == ["tiny-ner", "tiny-sentiment"]
    assert dict(zip(table["bundle"], table["value"], strict=True)) == {"tiny-ner": 0.5555, "tiny-sentiment": 0.7123}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["PhraseBank accuracy (model + rules)"] == "84.7%"
    assert metrics["ONNX int8 speed-up vs HF pipeline"] == "12.0x"
    assert metrics["b ndcg at 10"] == "0.25"  # uncurated file: quality metric first
    warnings = " ".join(shown(w.value) for w in at.warning)
    assert "broken" in warnings and "bad.json" in warnings
    assert any("kgfusion kg build all" in m.value for m in at.markdown)


def test_models_page_tables_cards_and_quantization(suite_dirs):
    at = run_page("models_page.py")
    bundles = at.dataframe[0].value
    assert set(bundles["bundle"]) == {"tiny-ner", "tiny-sentiment"}
    assert (bundles["size_mb"] >= 2.0).all()
    assert [shown(e.label).split(" — ")[0] for e in at.expander] == ["tiny-ner", "tiny-sentiment"]
    assert any("Tiny sentiment card" in m.value for m in at.expander[1].markdown)
    pairs = at.expander[1].dataframe[1].value
    assert pairs.iloc[0]["metric"] == "devel_f1" and pairs.iloc[0]["delta"] == pytest.approx(-0.01)
    quant = next(d.value for d in at.dataframe if "variant" in d.value)
    assert list(quant["variant"]) == ["pipeline_fp32", "predictor_onnx_int8"]
    assert quant.set_index("variant").loc["predictor_onnx_int8", "speedup_vs_pipeline"] == 12.0
    assert any("bad.json" in shown(w.value) for w in at.warning)


def test_models_page_without_bundles_or_results(tmp_path, monkeypatch):
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path))
    monkeypatch.setenv("KGFUSION_RESULTS", str(tmp_path / "none"))
    at = run_page("models_page.py")
    infos = " ".join(i.value for i in at.info)
    assert "kgfusion model train" in infos and "core_speed.py" in infos


def test_knowledge_page_stats_search_sparql_and_neighbourhood(suite_dirs):
    at = run_page("knowledge_page.py")
    assert [m.value for m in at.metric][:2] == [str(len(KnowledgeGraph.load(suite_dirs[0] / "kg" / "finance.ttl"))),
                                               "5"]
    assert "Apple Inc." in at.success[0].value and "company:AAPL" in at.success[0].value
    candidates = at.dataframe[2].value
    assert candidates.iloc[0]["uri"] == "company:AAPL"
    dot = at.get("graphviz_chart")[0].proto.spec
    assert "Apple Inc." in dot and "in sector" in dot and "Information Technology" in dot

    at.button[0].click().run()  # the example SELECT
    rows = at.dataframe[-2].value
    assert set(rows["ticker"]) == {"AAPL", "MSFT"} and set(rows["company"]) == {"company:AAPL", "company:MSFT"}

    at.text_area[0].input("INSERT DATA { <urn:a> <urn:b> <urn:c> }")  # form: applied on submit
    at.button[0].click().run()
    assert not at.exception and "Query refused" in at.error[0].value and "INSERT" in at.error[0].value
    at.text_area[0].input("SELECT ?x WHERE { ?x ")
    at.button[0].click().run()
    assert "Malformed SPARQL" in at.error[0].value

    at.text_input(key="kg_entity_finance").input("Nobody Corp").run()
    assert any("No entity" in e.value for e in at.error)
    at.sidebar.selectbox[0].set_value("movies").run()
    assert not at.exception and "kgfusion kg build movies" in at.info[0].value


# ---------------------------------------------------------------- readers behind the pages


def test_quantization_rows_and_int8_pairs():
    rows = catalog.quantization_rows(SPEED)
    assert [r["variant"] for r in rows] == ["pipeline_fp32", "predictor_onnx_int8"]  # no size -> dropped
    assert rows[1] == {"variant": "predictor_onnx_int8", "accuracy": 0.79, "macro_f1": 0.77, "size_mb": 23.0,
                       "items_per_s": 48.0, "speedup_vs_pipeline": 12.0}
    assert catalog.int8_pairs({"a_f1": 0.5, "onnx_int8_a_f1": 0.4, "onnx_int8_b": 1.0, "flag": True}) == [
        {"metric": "a_f1", "fp32": 0.5, "onnx_int8": 0.4, "delta": pytest.approx(-0.1)}]
    assert catalog.flat_numbers({"a": 1, "b": True, "c": {"d": 1}, "e": "x", "f": 2.5}) == {"a": 1.0, "f": 2.5}


def test_list_bundles_reports_unreadable_metrics(tmp_path):
    write_bundle(tmp_path, "ok", {"dev_f1": 0.5})
    bad = write_bundle(tmp_path, "bad-metrics", {})
    (bad / "metrics.json").write_text("{oops")
    (tmp_path / "not-a-bundle").mkdir()
    bundles, problems = catalog.list_bundles(tmp_path)
    assert [b.name for b in bundles] == ["bad-metrics", "ok"]
    assert bundles[1].primary() == ("dev_f1", 0.5) and bundles[0].primary() is None
    assert len(problems) == 1 and "bad-metrics" in problems[0] and "metrics" in problems[0]
    assert catalog.list_bundles(tmp_path / "missing") == ([], [f"No models folder at {tmp_path / 'missing'}."])


def test_kgview_resolve_and_dot(tmp_path):
    path = tmp_path / "g.ttl"
    path.write_text(TTL)
    kg = KnowledgeGraph.load(path)
    assert str(kgview.resolve_entity(kg, "Microsoft")).endswith("company/MSFT")
    assert str(kgview.resolve_entity(kg, "company:XOM")).endswith("company/XOM")
    for bad in ("", "company:NOPE", "Unknown"):
        with pytest.raises(GraphError):
            kgview.resolve_entity(kg, bad)
    xom = kgview.resolve_entity(kg, "company:XOM")
    dot, drawn = kgview.neighbourhood_dot(kg, xom)
    assert drawn == 2  # type + sector; literals (label, ticker) are not drawn
    assert 'Exxon \\"Mobil\\"' in dot and dot.count("->") == 2
    sector = kgview.resolve_entity(kg, "sector:information-technology")
    assert kgview.neighbourhood_dot(kg, sector, max_edges=1)[1] == 1
    rows = kgview.neighbour_rows(kg, sector)
    assert {r["node"] for r in rows if r["direction"] == "<-"} == {"company:AAPL", "company:MSFT"}
    result = kgview.hashing_linker(kg).link("Microsft", k=3)  # misspelt: found by n-grams
    assert result.uri and result.uri.endswith("company/MSFT")
    assert kgview.candidate_rows(result)[0]["rank"] == 1


def test_every_example_query_is_read_only_sparql():
    from kgfusion.knowledge.sparql import check_read_only
    from kgfusion.knowledge.vocab import ALL_PREFIXES

    for name, example in kgview.EXAMPLES.items():
        assert check_read_only(example.sparql, ALL_PREFIXES) == "SELECT", name


# ---------------------------------------------------------------- kgfusion ui


def test_ui_command_runs_streamlit_locally(monkeypatch):
    from kgfusion.apps.cli import cli

    calls = []
    monkeypatch.setattr("kgfusion.apps.ui.cli.subprocess.call", lambda cmd: calls.append(cmd) or 0)
    res = CliRunner().invoke(cli, ["ui", "--port", "8600", "--headless"])
    assert res.exit_code == 0, res.output
    cmd = calls[0]
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("apps/ui/app.py")
    opts = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert opts["--server.port"] == "8600" and opts["--server.address"] == "127.0.0.1"
    assert opts["--server.headless"] == "true" and opts["--browser.gatherUsageStats"] == "false"

    monkeypatch.setattr("kgfusion.apps.ui.cli.subprocess.call", lambda cmd: 3)
    res = CliRunner().invoke(cli, ["ui"])
    assert res.exit_code == 1 and "exited with code 3" in res.output
    assert "ui" in CliRunner().invoke(cli, ["--help"]).output
