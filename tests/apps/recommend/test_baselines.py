from __future__ import annotations

import pandas as pd
import pytest

from kgfusion.apps.recommend.baselines import ItemKNN, NotFittedError, Popularity
from kgfusion.core.errors import DataError


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


@pytest.mark.parametrize("model", [Popularity(), ItemKNN(n_neighbors=3)])
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


def test_itemknn_single_item_catalogue():
    model = ItemKNN().fit(_history([(1, 7), (2, 7)]))
    assert model.recommend([1, 3], k=5) == {1: [], 3: [7]}


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
