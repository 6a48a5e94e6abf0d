"""The orchestrating Recommender: output contract, rules, cold start, save/load, train/evaluate + CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kgfusion.apps.recommend.candidates import CandidateConfig
from kgfusion.apps.recommend.model_cli import evaluate, train
from kgfusion.apps.recommend.recommender import (
    FRAME_COLUMNS,
    fit_and_evaluate,
    load_recommender,
    train_recommender,
)
from kgfusion.core.errors import BundleError, DataError
from kgfusion.knowledge.rules import default_rules_dir, load_rules
from tests.apps.recommend.synthetic import synthetic_data


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = synthetic_data(tmp_path_factory.mktemp("ml-rec"))
    root, ml, ratings, items, graph, emb = d["root"], d["ml"], d["ratings"], d["items"], d["graph"], d["emb"]
    rules = load_rules(sorted(default_rules_dir("recommend").glob("*.yaml")))
    rec, metrics = fit_and_evaluate(ratings, items, graph, emb, rules, config=CandidateConfig(per_source=10),
                                    rounds=20, seed=1)
    return {"root": root, "ml": ml, "ratings": ratings, "rec": rec, "metrics": metrics}


def test_metrics_are_in_range_and_nothing_seen_leaks(setup):
    m = setup["metrics"]
    for key in ("ndcg_at_10", "recall_at_10", "map_at_10", "coverage", "diversity", "candidate_recall"):
        assert 0.0 <= m[key] <= 1.0
    assert m["seen_leak"] == 0.0
    assert m["cold_item_candidate_hits"] >= 0 and float(m["cold_item_candidate_hits"]).is_integer()
    assert m["users_evaluated"] == 24


def test_frame_contract_rules_and_explanations(setup):
    rec = setup["rec"]
    users = rec.known_users()[:6]
    frame = rec.recommend_frame(users, k=5)
    assert tuple(frame.columns) == FRAME_COLUMNS
    assert frame["user_id"].dtype == np.int64 and frame["cold_start"].dtype == bool
    genre_of = dict(zip(rec.items["item_id"], rec.items["genres"], strict=True))
    for user, group in frame.groupby("user_id"):
        assert group["rank"].tolist() == list(range(1, 6))
        assert not set(group["item_id"]) & set(rec.history(user)["item_id"])
        assert group["score"].is_monotonic_decreasing
        primaries = pd.Series([genre_of[i][0] if genre_of[i] else "" for i in group["item_id"]])
        assert primaries.value_counts().max() <= 3  # rec.cap.primary_genre
    assert 40 not in set(frame["item_id"])  # rec.exclude.no_genre: item 40 has no genres
    assert not frame["cold_start"].any()
    for ev in frame["evidence"]:
        parsed = json.loads(ev)
        assert parsed and all(set(e) == {"source", "detail", "weight"} for e in parsed)
        assert parsed[0]["source"] == "ranker"
    assert frame["explanation"].str.len().min() > 10
    # every sentence names what it rests on (watched titles or popularity); the numbers stay in the evidence
    assert frame["explanation"].str.contains("you watched|viewers").all()
    assert not frame["explanation"].str.contains(r"\d\.\d|x1\.|rule|cosine|score").any()
    pd.testing.assert_frame_equal(frame, rec.recommend_frame(users, k=5))  # deterministic


def test_cold_start_for_unknown_users(setup):
    rec = setup["rec"]
    frame = rec.recommend_frame([987654, rec.known_users()[0], 987654], k=4)
    cold = frame[frame["user_id"] == 987654]
    assert len(cold) == 4 and cold["cold_start"].all()
    assert cold["explanation"].str.startswith("Cold start").all()
    assert all(any(e["source"] == "cold_start" for e in json.loads(x)) for x in cold["evidence"])
    assert frame["user_id"].tolist()[:4] == [987654] * 4  # input order, duplicates once
    assert rec.history(987654).empty
    with pytest.raises(DataError):
        rec.recommend_frame([1], k=0)


def test_save_load_roundtrip_and_tamper(setup, tmp_path):
    rec = setup["rec"]
    out = rec.save(tmp_path / "model", metrics={"ndcg_at_10": 0.5})
    assert not list(out.rglob("*.pkl")) and (out / "ranker.txt").is_file() and (out / "MODEL_CARD.md").is_file()
    loaded = load_recommender(out)
    users = [*rec.known_users()[:4], 31337]
    pd.testing.assert_frame_equal(loaded.recommend_frame(users, k=5), rec.recommend_frame(users, k=5),
                                  check_exact=False, atol=1e-3)
    assert loaded.known_users() == rec.known_users()
    (out / "ranker.txt").write_text("tree\n", encoding="utf-8")
    with pytest.raises(BundleError):
        load_recommender(out)
    with pytest.raises(BundleError):
        load_recommender(tmp_path)


def test_train_and_evaluate_end_to_end_with_cli(setup, tiny_model_dir, tmp_path):
    ml, root = setup["ml"], setup["root"]
    metrics = train_recommender(ml / "ratings.csv", ml / "movies.csv", root / "movies.ttl", tmp_path / "m",
                                encoder=tiny_model_dir, tune_encoder=True, quick=True, progress=False)
    assert 0.0 <= metrics["ndcg_at_10"] <= 1.0 and metrics["encoder_tuned"] == 1.0
    assert (tmp_path / "m" / "encoder" / "adapter_model.safetensors").is_file()
    served = load_recommender(tmp_path / "m")
    # the served model is refitted on all ratings: a user's latest rating is in its history
    last = setup["ratings"].sort_values("timestamp").groupby("userId").tail(1).iloc[0]
    assert int(last["movieId"]) in set(served.history(int(last["userId"]))["item_id"])
    runner = CliRunner()
    res = runner.invoke(evaluate, ["--model", str(tmp_path / "m"), "--ratings", str(ml / "ratings.csv"),
                                   "--movies", str(ml / "movies.csv"), "--json"])
    assert res.exit_code == 0, res.output
    assert 0.0 <= json.loads(res.output)["ndcg_at_10"] <= 1.0
    res = runner.invoke(train, ["--ratings", str(ml / "ratings.csv"), "--movies", str(ml / "movies.csv"),
                                "--kg", str(root / "movies.ttl"), "--out", str(tmp_path / "m2"),
                                "--encoder", "none", "--quick", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["encoder_tuned"] == 0.0
    res = runner.invoke(train, ["--ratings", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x")])
    assert res.exit_code != 0


@pytest.mark.slow
def test_shipped_model_loads_and_explains():
    from kgfusion.apps.recommend.recommender import ROOT

    rec = load_recommender(ROOT / "data" / "models" / "recommender-movielens")
    user = rec.known_users()[0]
    frame = rec.recommend_frame([user, -1], k=10)
    assert len(frame) == 20 and tuple(frame.columns) == FRAME_COLUMNS
    assert not set(frame.loc[frame["user_id"] == user, "item_id"]) & set(rec.history(user)["item_id"])
    assert frame.loc[frame["user_id"] == -1, "cold_start"].all()
    metrics = json.loads((ROOT / "data" / "models" / "recommender-movielens" / "metrics.json").read_text())
    assert metrics["ndcg_at_10"] > 0.1
