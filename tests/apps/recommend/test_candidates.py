"""Candidate generation: KG PageRank view, per-source features, persistence. Also holds the tiny synthetic
MovieLens-like data the other recommender tests import."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgfusion.apps.recommend.baselines import EASE, RP3beta
from kgfusion.apps.recommend.candidates import (
    FEATURES,
    SOURCES,
    CandidateConfig,
    CandidateGenerator,
    ItemGraph,
)
from kgfusion.core.errors import ConfigError, DataError
from tests.apps.recommend.synthetic import synthetic_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_data(tmp_path_factory.mktemp("ml"))


def test_ppr_matches_knowledge_graph_pagerank(data):
    graph, kg, items = data["graph"], data["kg"], data["items"]
    from scipy import sparse

    from kgfusion.knowledge.builders.movies import movie_uri

    seeds = [0, 4]  # catalogue rows (item ids 1 and 5)
    x = sparse.csr_matrix((np.ones(2), ([0, 0], seeds)), shape=(1, len(items)))
    ours = graph.ppr(x, alpha=0.85, iterations=100)[0]
    ref = dict(kg.personalized_pagerank([str(movie_uri(int(items["item_id"][r]))) for r in seeds], alpha=0.85))
    for r, item in enumerate(items["item_id"]):
        uri = str(movie_uri(int(item)))
        if uri in ref:
            assert ours[r] == pytest.approx(ref[uri], abs=1e-5)
    # a movie sharing the seeds' genre outranks one that shares nothing
    same = int(np.flatnonzero(items["item_id"] == 9)[0])  # 9 % 4 == 1 like item 1 and 5
    other = int(np.flatnonzero(items["item_id"] == 11)[0])
    assert ours[same] > ours[other]


def test_candidates_have_features_and_skip_seen(data):
    gen = CandidateGenerator(data["items"], data["graph"], data["emb"], CandidateConfig(per_source=8)).fit(
        data["ratings"])
    users = [1, 2, 3, 999]
    cands = gen.candidates(users)
    assert set(cands["user_id"]) == {1, 2, 3}  # unknown users are not candidates' business
    for col in FEATURES:
        assert col in cands.columns
    for user, group in cands.groupby("user_id"):
        seen = set(data["ratings"].loc[data["ratings"]["userId"] == user, "movieId"])
        assert not seen & set(group["item_id"])
        assert group["item_id"].is_unique
    flags = cands[[f"from_{s}" for s in SOURCES]]
    assert flags.any(axis=1).all()
    assert (cands["n_sources"] == flags.sum(axis=1)).all()
    # the text source proposes items of the user's favourite genre (keyword embeddings)
    mine = cands[cands["user_id"] == 1]
    same = mine["item_id"] % 4 == 1
    assert same.any() and (~same).any()
    assert mine.loc[same, "emb"].mean() > mine.loc[~same, "emb"].mean()
    assert mine.loc[same, "from_emb"].all()


def test_state_roundtrip_gives_identical_candidates(data):
    gen = CandidateGenerator(data["items"], data["graph"], data["emb"]).fit(data["ratings"])
    arrays = {k: np.asarray(v) for k, v in gen.state().items()}
    again = CandidateGenerator(data["items"], ItemGraph.from_state(arrays, gen.graph.meta()),
                               arrays["item_embeddings"].astype(np.float32)).restore(arrays, data["ratings"])
    a, b = gen.candidates([1, 5]), again.candidates([1, 5])
    pd.testing.assert_frame_equal(a[["user_id", "item_id"]], b[["user_id", "item_id"]])
    np.testing.assert_allclose(a["knn"], b["knn"], rtol=1e-5)
    np.testing.assert_allclose(a["emb"], b["emb"], atol=2e-3)  # float16 storage
    for name in ("ease", "rp3", "kg", "mf"):  # EASE/RP3beta weights are float16-rounded before saving
        np.testing.assert_array_equal(a[name], b[name])
        np.testing.assert_array_equal(a[f"{name}_rank"], b[f"{name}_rank"])


def test_ease_and_rp3beta_sources_score_like_the_baselines(data):
    """With every neighbour kept, the EASE/RP3beta features are the baselines' own scores (to float16
    rounding), and the ranks count how many unseen items score higher."""
    ratings = data["ratings"]
    n = len(data["items"])
    gen = CandidateGenerator(data["items"], data["graph"], data["emb"],
                             CandidateConfig(per_source=5, item_neighbors=n, ease_lambda=10.0)).fit(ratings)
    cands = gen.candidates([1, 2])
    assert cands["from_ease"].any() and cands["from_rp3"].any()
    ease = EASE(lambdas=(10.0,)).fit(ratings)
    rp3 = RP3beta(alphas=(0.5,), betas=(0.6,)).fit(ratings)
    for user in (1, 2):
        mine = cands[cands["user_id"] == user]
        for name, model in (("ease", ease), ("rp3", rp3)):
            full = dict(zip(model.items, model.user_scores(user), strict=True))
            assert (mine[name] > 0).any()
            for item, value in zip(mine["item_id"], mine[name], strict=True):
                assert value == pytest.approx(full[item], rel=2e-3, abs=1e-4)
        # rank 1 = the best unseen item by EASE; ranks agree with the score order
        by_score = mine.sort_values("ease", ascending=False)
        assert by_score["ease_rank"].is_monotonic_increasing
        assert mine["ease_rank"].min() == 1


def test_sources_can_be_switched_off(data):
    gen = CandidateGenerator(data["items"], data["graph"], data["emb"],
                             CandidateConfig(per_source=5, sources=("knn", "pop"))).fit(data["ratings"])
    cands = gen.candidates([1])
    assert not cands[["from_ease", "from_rp3", "from_mf", "from_emb", "from_kg"]].any().any()
    assert cands["ease"].isna().all() and cands["rp3"].isna().all()  # not fitted: no feature either
    assert "ease_data" not in gen.state()


def test_bad_config_and_inputs(data):
    with pytest.raises(ConfigError):
        CandidateConfig(sources=("nope",))
    with pytest.raises(ConfigError):
        CandidateConfig.from_dict({"per_source": 5, "bogus": 1})
    with pytest.raises(DataError):
        CandidateGenerator(data["items"], None, data["emb"][:3])
    empty = data["ratings"].assign(movieId=10**6)
    with pytest.raises(DataError):
        CandidateGenerator(data["items"], None, None).fit(empty)
