"""Serve fixtures: the real FinanceService over the mini KG with a keyword model, small fakes for the
other apps (their pipelines are tested in their own suites), and a client factory."""
from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from kgfusion.apps.serve.services import FinanceService, GraphService, ModelInfo, RecommendService, Services
from tests.apps.finance.conftest import (  # noqa: F401 - fixtures reused here
    DATA,
    KeywordPredictor,
    finance_graph,
    finance_rules,
    monitor_factory,
)


class FakeRecommender:
    """known users 1 and 2; every list is items 10, 11, 12, ... with falling scores."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], int]] = []

    def known_users(self) -> list[int]:
        return [1, 2]

    def recommend_frame(self, user_ids, k=10) -> pd.DataFrame:
        self.calls.append((list(user_ids), k))
        rows = []
        for u in dict.fromkeys(user_ids):
            cold = u not in (1, 2)
            for r in range(k):
                why = "popular with users who watch dramas" if cold else f"Because you liked Heat (user {u})"
                rows.append((u, r + 1, 10 + r, f"Movie {10 + r}", 1.0 - r / 100, why,
                             '[{"source": "ease", "detail": "co-watched", "weight": 0.4}]', cold))
        return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "title", "score", "explanation",
                                           "evidence", "cold_start"])


class SlowFinance:
    """A finance service whose batches take ``seconds`` and can be made to fail."""

    def __init__(self, seconds: float = 0.0, fail: bool = False) -> None:
        self.info = ModelInfo("finance", "slow-test", "0123456789ab", "fake")
        self.seconds = seconds
        self.fail = fail
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def run_batch(self, items):
        import time

        with self._lock:
            self.batch_sizes.append(len(items))
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("secret internal detail /home/x/model.py line 3")
        return [{"id": it.get("id"), "label": "neutral", "score": 0.0} for it in items]


@pytest.fixture
def finance_service(monitor_factory):  # noqa: F811 - the imported fixture
    return FinanceService(monitor_factory(KeywordPredictor()), ModelInfo("finance", "finsent-test", "abc123def456",
                                                                       "keyword"))


@pytest.fixture
def services(finance_service):
    rec = RecommendService(FakeRecommender(), ModelInfo("recommend", "rec-test", "feedbeef0000", "fake"))
    kg = GraphService({"finance": Path(DATA / "mini_finance.ttl")})
    return Services(finance=finance_service, recommend=rec, kg=kg)


@pytest.fixture
def make_client():
    from fastapi.testclient import TestClient

    from kgfusion.apps.serve.app import create_app
    from kgfusion.apps.serve.settings import ServeSettings

    def make(services, **settings):
        return TestClient(create_app(ServeSettings(**settings), services), raise_server_exceptions=False)

    return make
