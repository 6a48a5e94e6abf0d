"""Learned ranker over candidate features: LightGBM LambdaRank (one query group per user).

Labels are 1 when the candidate is in the user's held-out items, else 0. Users without any positive
candidate carry no ranking signal and are dropped from training. The model is saved as LightGBM's
text format (never pickle) with the feature list in a JSON sidecar; a loaded ranker scores through
LightGBM's C API (apps/recommend/booster.py).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kgfusion.core.errors import BundleError, DataError
from kgfusion.core.fileio import atomic_write_json, atomic_write_text

DEFAULT_PARAMS: dict = {
    "objective": "lambdarank", "metric": "ndcg", "eval_at": [10], "learning_rate": 0.05, "num_leaves": 31,
    "min_data_in_leaf": 50, "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
    "lambdarank_truncation_level": 20, "num_threads": 1, "deterministic": True, "force_row_wise": True,
    "verbosity": -1,
}


def label_candidates(cands: pd.DataFrame, relevant: Mapping[int, set[int]]) -> np.ndarray:
    """1 where (user_id, item_id) is a held-out interaction, else 0 (int array aligned with ``cands``)."""
    return np.array([int(i in relevant.get(int(u), ())) for u, i in zip(cands["user_id"], cands["item_id"],
                                                                         strict=True)], dtype=np.int32)


class Ranker:
    """``fit(cands, labels)`` then ``score(cands)``; ``features`` are the columns used (order kept)."""

    def __init__(self, features: Sequence[str], rounds: int = 300, seed: int = 13, params: Mapping | None = None
                 ) -> None:
        self.features = list(features)
        self.rounds = rounds
        self.seed = seed
        self.params = {**DEFAULT_PARAMS, **dict(params or {}), "seed": seed}
        self.booster = None
        self.info: dict = {}

    def fit(self, cands: pd.DataFrame, labels: np.ndarray) -> Ranker:
        import lightgbm as lgb

        missing = [f for f in self.features if f not in cands.columns]
        if missing:
            raise DataError(f"candidate frame lacks feature column(s) {missing}")
        frame = cands.assign(_label=labels)
        has_pos = frame.groupby("user_id")["_label"].transform("max") > 0
        frame = frame[has_pos].sort_values(["user_id", "item_id"], kind="mergesort")
        if frame.empty:
            raise DataError("no user has a held-out item among its candidates: nothing to learn; "
                            "check the split (users need >= 2 history ratings) or raise per_source")
        groups = frame.groupby("user_id", sort=True).size().to_numpy()
        data = lgb.Dataset(frame[self.features].to_numpy(np.float64), label=frame["_label"].to_numpy(),
                           group=groups, feature_name=self.features, free_raw_data=True)
        self.booster = lgb.train(self.params, data, num_boost_round=self.rounds)
        gain = self.booster.feature_importance("gain")
        self.info = {"train_users": len(groups), "train_rows": len(frame),
                     "positives": int(frame["_label"].sum()),
                     "importance_gain": {f: round(float(g), 2) for f, g in sorted(
                         zip(self.features, gain, strict=True), key=lambda x: -x[1])}}
        return self

    def score(self, cands: pd.DataFrame) -> np.ndarray:
        if self.booster is None:
            raise DataError("Ranker.fit must run before score (or load a saved ranker)")
        if cands.empty:
            return np.zeros(0)
        return np.asarray(self.booster.predict(cands[self.features].to_numpy(np.float64)), dtype=np.float64)

    def group_effects(self, cands: pd.DataFrame, groups: Mapping[str, Sequence[str]],
                      reference: Mapping[str, float]) -> np.ndarray:
        """How much each feature group moved each row's score (rows x groups): the score minus the score
        with the group's features set to ``reference`` (a typical candidate's values, e.g. the batch
        medians). An occlusion effect: one extra prediction per row and group, where TreeSHAP
        (``pred_contrib``) costs tens of milliseconds per row on a few hundred trees."""
        if self.booster is None:
            raise DataError("Ranker.fit must run before group_effects (or load a saved ranker)")
        if cands.empty:
            return np.zeros((0, len(groups)))
        x = cands[self.features].to_numpy(np.float64)
        blocks = []
        for names in groups.values():
            xg = x.copy()
            for name in names:
                if name in self.features:
                    xg[:, self.features.index(name)] = reference.get(name, np.nan)
            blocks.append(xg)
        scores = np.asarray(self.booster.predict(np.vstack([x, *blocks])), dtype=np.float64).reshape(-1, len(x))
        return (scores[0][None, :] - scores[1:]).T

    def save(self, out_dir: str | Path) -> None:
        if self.booster is None:
            raise DataError("Ranker.fit must run before save")
        out = Path(out_dir)
        atomic_write_text(out / "ranker.txt", self.booster.model_to_string())
        atomic_write_json(out / "ranker.json", {"features": self.features, "rounds": self.rounds, "seed": self.seed,
                                                "params": self.params, "info": self.info})

    @classmethod
    def load(cls, model_dir: str | Path) -> Ranker:
        """A scoring ranker: the booster is the C-API ``NativeBooster`` (no lightgbm/sklearn import)."""
        from kgfusion.apps.recommend.booster import NativeBooster

        model_dir = Path(model_dir)
        meta, text = model_dir / "ranker.json", model_dir / "ranker.txt"
        if not meta.is_file() or not text.is_file():
            raise BundleError(f"{model_dir}: ranker.txt/ranker.json missing; retrain with `kgfusion recommend train`")
        spec = json.loads(meta.read_text(encoding="utf-8"))
        ranker = cls(spec["features"], spec["rounds"], spec["seed"], spec["params"])
        ranker.booster = NativeBooster(text.read_text(encoding="utf-8"))
        ranker.info = spec.get("info", {})
        return ranker
