"""implicit ALS / BPR baselines: unseen items only, deterministic, explanations from similar items."""
from __future__ import annotations

import pytest

from kgfusion.apps.recommend.data import read_movies, read_ratings
from kgfusion.apps.recommend.mf import MatrixFactorization
from kgfusion.core.errors import ConfigError
from tests.apps.recommend.synthetic import write_dataset


@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    path = write_dataset(tmp_path_factory.mktemp("ml-mf"))
    ratings, _ = read_ratings(path / "ratings.csv")
    movies = read_movies(path / "movies.csv")
    return ratings, dict(zip(movies["movieId"], movies["title"], strict=True))


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_recommends_unseen_items_deterministically(ml, kind):
    ratings, titles = ml
    a = MatrixFactorization(kind, factors=8, iterations=30, seed=3).fit(ratings, titles=titles)
    b = MatrixFactorization(kind, factors=8, iterations=30, seed=3).fit(ratings, titles=titles)
    users = sorted(ratings["userId"].unique())
    recs = a.recommend(users, k=5)
    assert recs == b.recommend(users, k=5)
    for user, items in recs.items():
        assert len(items) == 5 and len(set(items)) == 5
        assert not set(items) & a.seen(user)


def test_als_learns_the_genre_clusters(ml):
    ratings, titles = ml
    model = MatrixFactorization("als", factors=8, iterations=30, regularization=0.01, seed=1).fit(ratings)
    users = sorted(ratings["userId"].unique())
    recs = model.recommend(users, k=5)
    # each user has ~1 unseen item of its own cluster among ~27 unseen: chance of a top-5 hit is ~0.19
    share = sum(any(i % 4 == u % 4 for i in recs[u]) for u in users) / len(users)
    assert share >= 0.5


def test_explain_names_a_watched_title_and_unknown_user_gets_popular(ml):
    ratings, titles = ml
    model = MatrixFactorization("als", factors=8, iterations=10, seed=1).fit(ratings, titles=titles)
    item = model.recommend([1], k=1)[1][0]
    source = model.because(1, item)
    assert source in model.seen(1)
    assert titles[source] in model.explain(1, item)
    assert model.recommend([424242], k=3)[424242] == model._top(set(), 3)
    assert model.because(424242, item) is None


def test_bad_settings_raise():
    with pytest.raises(ConfigError):
        MatrixFactorization("svd")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        MatrixFactorization(factors=2)
