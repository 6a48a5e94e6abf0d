"""LightGBM LambdaRank ranker: learns a signal, saves as text, reloads to identical scores."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgfusion.apps.recommend.ranker import Ranker, label_candidates
from kgfusion.core.errors import BundleError, DataError


def frame(n_users: int = 40, per_user: int = 20, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    signal = rng.normal(size=len(users))
    noise = rng.normal(size=len(users))
    labels = (signal + 0.3 * rng.normal(size=len(users)) > 1.0).astype(int)
    return pd.DataFrame({"user_id": users, "item_id": np.tile(np.arange(per_user), n_users),
                         "signal": signal, "noise": noise}), labels


def test_ranker_learns_the_signal_and_roundtrips(tmp_path):
    cands, labels = frame()
    ranker = Ranker(["signal", "noise"], rounds=30, params={"min_data_in_leaf": 5}).fit(cands, labels)
    test, test_labels = frame(seed=1)
    scores = ranker.score(test)
    assert scores[test_labels == 1].mean() > scores[test_labels == 0].mean()
    gain = ranker.info["importance_gain"]
    assert gain["signal"] > gain["noise"]
    ranker.save(tmp_path)
    assert (tmp_path / "ranker.txt").read_text().startswith("tree")
    again = Ranker.load(tmp_path)
    np.testing.assert_array_equal(again.score(test), scores)
    assert again.features == ["signal", "noise"]


def test_labels_and_errors(tmp_path):
    cands = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 5], "x": [0.1, 0.2, 0.3]})
    assert label_candidates(cands, {1: {6}, 2: set()}).tolist() == [0, 1, 0]
    with pytest.raises(DataError):
        Ranker(["x"]).fit(cands, np.zeros(3, dtype=int))  # no positives at all
    with pytest.raises(DataError):
        Ranker(["missing"]).fit(cands, np.ones(3, dtype=int))
    with pytest.raises(DataError):
        Ranker(["x"]).score(cands)
    with pytest.raises(BundleError):
        Ranker.load(tmp_path)


def test_group_effects_name_the_feature_that_moved_the_score():
    cands, labels = frame()
    ranker = Ranker(["signal", "noise"], rounds=30, params={"min_data_in_leaf": 5}).fit(cands, labels)
    test, _ = frame(seed=2)
    reference = {"signal": float(test["signal"].median()), "noise": float(test["noise"].median())}
    effects = ranker.group_effects(test, {"signal": ["signal"], "noise": ["noise"]}, reference)
    assert effects.shape == (len(test), 2)
    assert np.abs(effects[:, 0]).mean() > 3 * np.abs(effects[:, 1]).mean()
    strong = test["signal"].to_numpy() > np.quantile(test["signal"], 0.9)
    assert (effects[strong, 0] > 0).all()  # a high signal pushed those scores up
    at_reference = test.assign(signal=reference["signal"], noise=reference["noise"]).iloc[:3]
    np.testing.assert_allclose(ranker.group_effects(at_reference, {"signal": ["signal"]}, reference), 0.0)
    assert ranker.group_effects(test.iloc[:0], {"signal": ["signal"]}, reference).shape == (0, 1)


def test_a_loaded_ranker_scores_like_lightgbm_without_importing_it(tmp_path):
    """The C-API booster gives lightgbm's own scores (missing values too), pickles, rejects bad shapes,
    and a fresh process that loads and scores never imports lightgbm or scikit-learn (their import is
    most of a model load)."""
    import pickle
    import subprocess
    import sys

    import lightgbm as lgb

    from kgfusion.apps.recommend.booster import NativeBooster

    cands, labels = frame()
    Ranker(["signal", "noise"], rounds=20, params={"min_data_in_leaf": 5}).fit(cands, labels).save(tmp_path)
    text = (tmp_path / "ranker.txt").read_text()
    x = np.random.default_rng(3).normal(size=(500, 2))
    x[::5, 0] = np.nan
    native = NativeBooster(text)
    expected = lgb.Booster(model_str=text).predict(x)
    np.testing.assert_array_equal(native.predict(x), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(native)).predict(x), expected)
    assert native.predict(np.zeros((0, 2))).shape == (0,)
    with pytest.raises(BundleError, match="expects 2 features"):
        native.predict(np.zeros((3, 5)))
    with pytest.raises(BundleError, match="LightGBM"):
        NativeBooster("not a model")
    probe = ("import sys; import numpy as np; from kgfusion.apps.recommend.ranker import Ranker; "
             f"r = Ranker.load({str(tmp_path)!r}); r.booster.predict(np.zeros((2, 2))); "
             "print(sorted(m for m in ('lightgbm', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
