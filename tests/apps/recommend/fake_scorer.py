"""A small deterministic stand-in for the MovieLens recommender (module-level so Ray workers import it).

The model directory holds ``fake.json``: {"items": N, "known_users": [...], "delay": seconds per call,
"fail_user": id whose scoring raises (optional)}.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

LOADER = "tests.apps.recommend.fake_scorer:load_fake"
GENRES = ["Action", "Comedy", "Drama"]


def make_model_dir(path: Path, items: int = 30, known_users: Sequence[int] = range(1, 21), delay: float = 0.0,
                   fail_user: int | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "fake.json").write_text(json.dumps({"items": items, "known_users": list(known_users), "delay": delay,
                                                "fail_user": fail_user}))
    return path


class FakeRecommender:
    def __init__(self, model_dir: Path) -> None:
        cfg = json.loads((Path(model_dir) / "fake.json").read_text())
        self.delay = float(cfg["delay"])
        self.fail_user = cfg.get("fail_user")
        self._known = [int(u) for u in cfg["known_users"]]
        n = int(cfg["items"])
        self.items = pd.DataFrame({
            "item_id": range(1, n + 1),
            "title": [f"Movie {i} ({1990 + i % 30})" for i in range(1, n + 1)],
            "genres": [[GENRES[i % 3]] for i in range(1, n + 1)],
            "year": [1990 + i % 30 for i in range(1, n + 1)],
        })

    def known_users(self) -> list[int]:
        return list(self._known)

    def _seen(self, user: int) -> list[int]:
        return [1 + (user * 3 + j) % len(self.items) for j in range(3)] if user in self._known else []

    def history(self, user_id: int) -> pd.DataFrame:
        seen = self._seen(int(user_id))
        rows = self.items.set_index("item_id").loc[seen].reset_index()
        return pd.DataFrame({"item_id": rows["item_id"], "title": rows["title"], "genres": rows["genres"],
                             "rating": [4.0] * len(seen), "timestamp": [1_000_000 + j for j in range(len(seen))]})

    def recommend_frame(self, user_ids: Sequence[int], k: int = 10) -> pd.DataFrame:
        if self.delay:
            time.sleep(self.delay)
        rows = []
        titles = dict(zip(self.items["item_id"], self.items["title"], strict=True))
        for user in user_ids:
            user = int(user)
            if user == self.fail_user:
                raise RuntimeError(f"fake failure for user {user}")
            cold = user not in self._known
            seen = set(self._seen(user))
            ranked = sorted((i for i in titles if i not in seen), key=lambda i: ((i * 7 + user * 13) % 101, i))
            for rank, item in enumerate(ranked[:k], start=1):
                evidence = [{"source": "popularity" if cold else "fake-cf", "detail": f"item {item}",
                             "weight": round(1.0 / rank, 3)}]
                rows.append({"user_id": user, "rank": rank, "item_id": item, "title": titles[item],
                             "score": 1.0 / rank, "explanation": f"because fake rule {item % 5}",
                             "evidence": json.dumps(evidence), "cold_start": cold})
        return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "title", "score", "explanation", "evidence",
                                           "cold_start"])


def load_fake(model_dir: Path) -> FakeRecommender:
    return FakeRecommender(model_dir)
