from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kgfusion.knowledge.builders.movies import build_movies_graph
from tests.apps.recommend.fake_scorer import GENRES, LOADER, make_model_dir

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "recommend" / "page.py")


@pytest.fixture
def page_env(tmp_path, monkeypatch):
    model = make_model_dir(tmp_path / "model", items=30, known_users=range(1, 11))
    ml = tmp_path / "datasets" / "movielens_small"
    ml.mkdir(parents=True)
    rows = [f"{i},Movie {i} ({1990 + i % 30}),{GENRES[i % 3]}" for i in range(1, 31)]
    (ml / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(rows) + "\n")
    (ml / "tags.csv").write_text("userId,movieId,tag,timestamp\n" + "\n".join(
        f"1,{i},{'twist ending' if i % 2 else 'quirky'},1" for i in range(1, 31)) + "\n")
    kg = tmp_path / "movies.ttl"
    build_movies_graph(tmp_path / "datasets").save(kg)
    results = tmp_path / "results" / "recommend.json"
    results.parent.mkdir()
    # recommend.json nests per-model metrics; recommend_baselines.json uses flat "<model>_<metric>" keys.
    results.write_text(json.dumps({"ndcg_at_10": 0.2, "k": 10, "users_per_s_local": 250.0, "models": {
        "kgfusion": {"ndcg_at_10": 0.2, "recall_at_10": 0.25, "fit_s": 3.0},
        "als": {"ndcg_at_10": 0.12, "recall_at_10": 0.13}},
        "slices": {"kgfusion": {"short_history_ndcg_at_10": 0.31, "cold_item_hits": 7.0, "cold_item_targets": 40.0},
                   "ease": {"short_history_ndcg_at_10": 0.22, "cold_item_hits": 0.0, "cold_item_targets": 40.0}}}))
    (results.parent / "recommend_baselines.json").write_text(json.dumps(
        {"itemknn_ndcg_at_10": 0.11, "itemknn_recall_at_10": 0.12, "popularity_ndcg_at_10": 0.09,
         "als_ndcg_at_10": 0.5}))
    for key, value in {"MODEL": model, "KG": kg, "RESULTS": results, "LOADER": LOADER}.items():
        monkeypatch.setenv(f"KGFUSION_RECOMMEND_{key}", str(value))
    return tmp_path


def _table(at, column):
    return next(t.value for t in at.dataframe if column in t.value.columns)


def test_page_shows_history_recommendations_neighbourhood_and_metrics(page_env):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert at.selectbox[0].value == 1  # the first known user
    assert len(_table(at, "rating")) == 3  # history
    recs = _table(at, "explanation")
    assert recs["rank"].tolist() == list(range(1, 11))
    assert len(at.expander) == 10
    assert "fake-cf" in _table(at, "weight")["source"].tolist()  # evidence of the first item
    nbrs = _table(at, "shared_with_history")
    assert set(nbrs["relation"]) == {"has genre", "has tag"}
    assert nbrs["shared_with_history"].max() >= 1  # the user's rated movies share a genre or tag
    metrics = _table(at, "ndcg_at_10")
    assert metrics["model"].tolist() == ["kgfusion", "als", "itemknn", "popularity"]
    assert metrics.set_index("model").loc["als", "ndcg_at_10"] == 0.12  # recommend.json wins over baselines
    assert any("250 users/s" in c.value for c in at.caption)
    slices = _table(at, "slice").set_index("slice")
    assert slices.loc["cold items: hits"].tolist() == [7.0, 0.0]  # kgfusion reaches cold items, EASE cannot
    assert list(slices.columns) == ["kgfusion", "EASE"]
    assert slices.loc["short-history users: NDCG@10", "kgfusion"] == 0.31
    assert any("Slices" in m.value for m in at.markdown)


def test_new_user_gets_cold_start_and_k_follows_the_slider(page_env):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox[0].set_value("New user (cold start)").run()
    at.sidebar.slider[0].set_value(4).run()
    assert not at.exception
    assert any("Cold start" in i.value for i in at.info)
    assert len(_table(at, "explanation")) == 4
    assert not any("rating" in t.value.columns for t in at.dataframe)


def test_missing_model_and_results_explain_what_to_run(page_env, monkeypatch):
    (page_env / "results" / "recommend.json").unlink()
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert any("kgfusion recommend evaluate" in i.value for i in at.info)
    monkeypatch.setenv("KGFUSION_RECOMMEND_MODEL", str(page_env / "nope"))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception and "kgfusion recommend train" in at.info[0].value


def test_comparison_table_shows_ease_and_rp3beta(page_env):
    results = page_env / "results" / "recommend.json"
    data = json.loads(results.read_text())
    data["models"].update({"ease": {"ndcg_at_10": 0.15, "recall_at_10": 0.16, "coverage": 0.05},
                           "rp3beta": {"ndcg_at_10": 0.14, "recall_at_10": 0.15, "coverage": 0.06}})
    results.write_text(json.dumps(data))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    metrics = _table(at, "ndcg_at_10").set_index("model")
    assert metrics.index.tolist() == ["kgfusion", "EASE", "RP3beta", "als", "itemknn", "popularity"]
    assert metrics.loc["EASE", "ndcg_at_10"] == 0.15 and metrics.loc["RP3beta", "coverage"] == 0.06
