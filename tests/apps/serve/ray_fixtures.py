"""Tiny services for the Ray Serve test, built inside each replica (``loader_path`` points here)."""
from __future__ import annotations

import os

from kgfusion.apps.serve.services import ModelInfo, Services

LABEL = "ray-fake-positive"
MODEL_NAME = "finsent-ray-test"


class FakeFinance:
    """A finance service answering every item with ``LABEL`` and the replica's process id."""

    def __init__(self) -> None:
        self.info = ModelInfo("finance", MODEL_NAME, "0123456789ab", "fake")

    def run_batch(self, items):
        return [{"id": it.get("id"), "label": LABEL, "score": 0.5, "replica_pid": os.getpid()} for it in items]


def load() -> Services:
    return Services(finance=FakeFinance())


def load_broken() -> Services:
    raise RuntimeError("the finance bundle is corrupt")
