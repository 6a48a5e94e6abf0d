"""Test doubles shared by the suites: a keyword one-hot encoder with predictable similarities."""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np


class KeywordEncoder:
    """Each dimension is one keyword group; a text's vector counts its groups, L2-normalised (zero if none).

    ``calls`` records the batch sizes it was asked to encode, so tests can check batching.
    """

    name = "keyword-mock"

    def __init__(self, keywords: Mapping[str, int], dim: int | None = None) -> None:
        self.keywords = dict(keywords)
        self.dim = dim if dim is not None else max(self.keywords.values()) + 1
        self.calls: list[int] = []

    @property
    def encoded(self) -> int:
        return sum(self.calls)

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                if word in self.keywords:
                    out[i, self.keywords[word]] += 1.0
            norm = np.linalg.norm(out[i])
            if norm:
                out[i] /= norm
        return out
