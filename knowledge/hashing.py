"""A model-free retrieval encoder: character 3-gram feature hashing (builds an index in a second)."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np


class HashingEncoder:
    """Character 3-gram feature hashing, L2-normalised (no model: the cheap retrieval fallback)."""

    name = "hashing-char3"

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim
        self._buckets: dict[str, int] = {}  # trigram -> bucket: names share few distinct trigrams

    def _bucket(self, gram: str) -> int:
        b = self._buckets.get(gram)
        if b is None:
            b = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=4).digest(), "little") % self.dim
            self._buckets[gram] = b
        return b

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        rows: list[int] = []
        cols: list[int] = []
        for i, text in enumerate(texts):
            key = "#" + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + "#"
            for j in range(len(key) - 2):
                rows.append(i)
                cols.append(self._bucket(key[j:j + 3]))
        np.add.at(out, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)), 1.0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)
