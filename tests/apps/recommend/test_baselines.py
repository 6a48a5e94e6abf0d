from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from kgfusion.apps.recommend.baselines import EASE, ItemKNN, NotFittedError, Popularity, RP3beta
from kgfusion.apps.recommend.data import read_movies, read_ratings, split_by_time, to_sets
from kgfusion.apps.recommend.metrics import ndcg_at_k
from kgfusion.core.errors import DataError
from tests.apps.recommend.synthetic import write_dataset


def _history(pairs):
    return pd.DataFrame([(u, i, 4.0, t) for t, (u, i) in enumerate(pairs)],
                        columns=["userId", "movieId", "rating", "timestamp"])


# Items 1 and 2 are always consumed together; 3 is popular; 4 goes with 3.
HISTORY = _history([
    (1, 1), (1, 2), (1, 3),
    (2, 1), (2, 2),
    (3, 3), (3, 4),
    (4, 3), (4, 4), (4, 5),
    (5, 1),
])


@pytest.mark.parametrize("model", [Popularity(), ItemKNN(n_neighbors=3), EASE(), EASE(lambdas=(1.0,)), RP3beta(),
                                   RP3beta(alphas=(1.0,), betas=(0.5,), n_neighbors=2)])
def test_never_recommends_seen_items(model):
    model.fit(HISTORY)
    recs = model.recommend([1, 2, 3, 4, 5], k=10)
    seen = HISTORY.groupby("userId")["movieId"].apply(set).to_dict()
    for user, items in recs.items():
        assert items, user
        assert not set(items) & seen[user]
        assert len(items) == len(set(items))


def test_popularity_order_and_explanation():
    model = Popularity().fit(HISTORY)
    assert model.recommend([5], k=3)[5] == [3, 2, 4]  # 3 (3 users) then ties of 2 users by movieId
    assert model.recommend([99], k=2)[99] == [1, 3]  # unknown user: plain popularity
    assert model.recommend_explained([5], k=1)[5] == [(3, "popular: 3 interactions")]


def test_itemknn_recommends_the_co_consumed_item():
    model = ItemKNN(n_neighbors=2).fit(HISTORY, titles={1: "Alpha", 3: "Gamma"})
    # User 5 saw only item 1; item 2 always co-occurs with 1, item 3 (more popular) only once.
    assert model.recommend([5], k=1)[5] == [2]
    assert model.because(5, 2) == 1
    assert model.explain(5, 2) == "similar to Alpha"
    # User 3 saw 3 and 4; item 5 co-occurs with both.
    assert model.recommend([3], k=1)[3] == [5]


def test_itemknn_pads_with_popular_items_and_handles_unknown_users():
    model = ItemKNN(n_neighbors=1).fit(HISTORY)
    recs = model.recommend([5, 42], k=4)
    assert len(recs[5]) == 4 and 1 not in recs[5]
    assert recs[42] == Popularity().fit(HISTORY).recommend([42], k=4)[42]


def test_errors():
    with pytest.raises(NotFittedError):
        Popularity().recommend([1])
    with pytest.raises(NotFittedError):
        ItemKNN().recommend([1])
    with pytest.raises(DataError, match="missing column"):
        Popularity().fit(pd.DataFrame({"user": [1]}))
    with pytest.raises(DataError, match="empty"):
        ItemKNN().fit(HISTORY.iloc[:0])
    with pytest.raises(ValueError):
        ItemKNN(n_neighbors=0)
    for model in (EASE(), RP3beta()):
        with pytest.raises(NotFittedError):
            model.recommend([1])
        with pytest.raises(NotFittedError):
            model.explain(1, 2)
        with pytest.raises(NotFittedError):
            model.user_scores(1)
        with pytest.raises(DataError, match="timestamp"):  # the grid search splits the history by time
            model.fit(HISTORY.drop(columns="timestamp"))
    assert EASE(lambdas=(5.0,)).fit(HISTORY.drop(columns="timestamp")).lam == 5.0  # one point: no search
    with pytest.raises(ValueError):
        EASE(lambdas=(0.0,))
    with pytest.raises(ValueError):
        RP3beta(betas=(-0.1,))
    with pytest.raises(ValueError):
        RP3beta(n_neighbors=0)


def test_itemknn_single_item_catalogue():
    model = ItemKNN().fit(_history([(1, 7), (2, 7)]))
    assert model.recommend([1, 3], k=5) == {1: [], 3: [7]}


def _dense(model, history):
    """The binary user x item matrix of ``history`` in the model's column order (rows: sorted userId)."""
    users = sorted(history["userId"].unique())
    x = np.zeros((len(users), len(model.items)))
    col = {int(m): c for c, m in enumerate(model.items)}
    for u, i in zip(history["userId"], history["movieId"]):
        x[users.index(u), col[int(i)]] = 1.0
    return users, x


def test_ease_matches_the_closed_form():
    lam = 3.0
    model = EASE(lambdas=(lam,)).fit(HISTORY)
    users, x = _dense(model, HISTORY)
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]  # B = I - P diagMat(1 / diag(P))
    assert model.weights.dtype == np.float32
    assert np.all(np.diag(model.weights) == 0.0)
    np.testing.assert_allclose(model.weights, b, atol=1e-6)
    for row, user in enumerate(users):
        expected = x[row] @ b
        np.testing.assert_allclose(model.user_scores(user), expected, atol=1e-6)
        unseen = [c for c in np.argsort(-expected, kind="stable") if x[row, c] == 0 and expected[c] > 0]
        assert model.recommend([user], k=2)[user][:len(unseen[:2])] == [int(model.items[c]) for c in unseen[:2]]


# A hand-made walk: users 1: {10, 20}, 2: {20, 30}, 3: {10, 20, 30}.
WALK = _history([(1, 10), (1, 20), (2, 20), (2, 30), (3, 10), (3, 20), (3, 30)])
# P(i -> j) = sum over users u of i: 1/|users(i)| * 1/|items(u)|, e.g. 10 -> 20 = 1/2 * 1/2 + 1/2 * 1/3.
TWO_STEP = np.array([[0.0, 5 / 12, 1 / 6],
                     [5 / 18, 0.0, 5 / 18],
                     [1 / 6, 5 / 12, 0.0]])


def test_rp3beta_is_the_two_step_random_walk():
    model = RP3beta(alphas=(1.0,), betas=(0.0,)).fit(WALK, titles={10: "Ten", 20: "Twenty", 30: "Thirty"})
    assert model.items.tolist() == [10, 20, 30]
    np.testing.assert_allclose(model.weights, TWO_STEP, atol=1e-6)
    # User 1 (saw 10, 20) reaches 30 with 1/6 + 5/18; 20 contributes most.
    np.testing.assert_allclose(model.user_scores(1)[2], 1 / 6 + 5 / 18, atol=1e-6)
    assert model.recommend([1], k=1) == {1: [30]}
    assert model.because_weighted(1, 30) == (20, pytest.approx(5 / 18))
    assert model.explain(1, 30) == "because you watched Twenty, weight 0.278"
    # alpha sharpens each one-step probability (P_iu^a P_ui^a, as the authors' code), beta divides column j
    # by popularity_j^beta (users: 10 -> 2, 20 -> 3, 30 -> 2). E.g. 10 -> 20 = (1/2)^2 (1/2)^2 + (1/2)^2 (1/3)^2.
    sharp = RP3beta(alphas=(2.0,), betas=(1.0,)).fit(WALK)
    walked = np.array([[0.0, 13 / 144, 1 / 36],
                       [13 / 324, 0.0, 13 / 324],
                       [1 / 36, 13 / 144, 0.0]])
    np.testing.assert_allclose(sharp.weights, walked / np.array([2.0, 3.0, 2.0])[None, :], atol=1e-6)
    top1 = RP3beta(alphas=(1.0,), betas=(0.0,), n_neighbors=1).fit(WALK)
    assert (top1.weights > 0).sum(axis=1).tolist() == [1, 1, 1]


@pytest.fixture(scope="module")
def synthetic_split(tmp_path_factory):
    ml = write_dataset(tmp_path_factory.mktemp("ml"))
    ratings, _ = read_ratings(ml / "ratings.csv")
    movies = read_movies(ml / "movies.csv")
    history, target = split_by_time(ratings, frac=0.2)
    return ratings, history, target, dict(zip(movies["movieId"], movies["title"], strict=True))


@pytest.mark.parametrize("make", [EASE, RP3beta])
def test_strong_baselines_on_synthetic_data(make, synthetic_split):
    _, history, target, titles = synthetic_split
    model = make().fit(history, titles=titles)
    users = sorted(set(target["userId"]))
    recs = model.recommend(users, k=10)
    seen = history.groupby("userId")["movieId"].apply(set).to_dict()
    for user, items in recs.items():
        assert len(items) == len(set(items)) == 10
        assert not set(items) & seen[user]
        for item in items[:3]:
            m = re.fullmatch(r"because you watched (.+), weight (\S+)", model.explain(user, item))
            assert m, model.explain(user, item)
            source, weight = model.because_weighted(user, item)
            assert source in seen[user] and m[1] == titles[source]
            assert float(m[2]) == pytest.approx(weight, rel=1e-2) and weight > 0
    # The synthetic users mostly watch one genre: both beat popularity on the held-out target.
    relevant = to_sets(target)
    assert ndcg_at_k(recs, relevant) > ndcg_at_k(Popularity().fit(history).recommend(users), relevant)
    assert model.recommend([999], k=3)[999] == Popularity().fit(history).recommend([999], k=3)[999]


@pytest.mark.parametrize("make", [EASE, RP3beta])
def test_hyperparameters_are_chosen_on_the_history_only(make, synthetic_split):
    ratings, history, target, _ = synthetic_split
    model = make().fit(history)
    assert len(model.validation) == len(model.grid) > 1
    assert model.params == max(model.validation, key=lambda pv: pv[1])[0]
    # Each grid point is scored on the history's own last 20% per user ...
    inner_hist, inner_target = split_by_time(history, frac=0.2)
    params, score = model.validation[-1]
    grid_arg = {"lam": "lambdas", "alpha": "alphas", "beta": "betas"}
    single = make(**{grid_arg[key]: (value,) for key, value in params.items()}).fit(inner_hist)
    relevant = to_sets(inner_target)
    assert ndcg_at_k(single.recommend(sorted(relevant), k=10), relevant) == pytest.approx(score)
    # ... so altering the benchmark's held-out targets changes nothing.
    altered = target.assign(movieId=(target["movieId"] * 7) % 39 + 1)
    history2, target2 = split_by_time(pd.concat([history, altered], ignore_index=True), frac=0.2)
    pd.testing.assert_frame_equal(history2, history)
    assert not target2["movieId"].equals(target["movieId"])
    again = make().fit(history2)
    assert again.params == model.params and again.validation == model.validation


@pytest.mark.slow
def test_real_movielens_itemknn_beats_popularity():
    from pathlib import Path

    from kgfusion.apps.recommend.data import read_ratings, split_by_time, to_sets
    from kgfusion.apps.recommend.metrics import ndcg_at_k

    data = Path(__file__).resolve().parents[3] / "data" / "datasets" / "movielens_small"
    ratings, rejects = read_ratings(data / "ratings.csv")
    assert not rejects
    history, target = split_by_time(ratings)
    relevant = to_sets(target)
    users = sorted(relevant)
    pop = ndcg_at_k(Popularity().fit(history).recommend(users), relevant)
    knn = ndcg_at_k(ItemKNN().fit(history).recommend(users), relevant)
    assert 0.0 < pop < knn < 1.0
