"""Sentence embeddings by mean pooling over a base encoder (used for retrieval).

An Embedder maps texts to L2-normalised float32 vectors, so inner product is cosine similarity.
Anything with ``encode(texts) -> np.ndarray`` and ``dim`` can stand in for it (tests use mocks).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np


class TextEncoder(Protocol):
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...


class Embedder:
    """Mean-pooled, L2-normalised embeddings from a local encoder (default: packaged MiniLM)."""

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] = "minilm",
        max_length: int = 128,
        model=None,
        tokenizer=None,
    ) -> None:
        import torch

        from kgfusion.core.models import base_reference, load_base

        # Recorded by indexes built with this encoder, so a different model forces a rebuild.
        self.name = base_reference(model_name_or_path) if model is None else type(model).__name__
        if model is None or tokenizer is None:
            model, tokenizer = load_base(model_name_or_path, task="embedding")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.dim = int(model.config.hidden_size)
        self._torch = torch

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Return an array of shape (len(texts), dim), rows of unit length."""
        torch = self._torch
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sort by length so each batch pads little; restore the order at the end.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[idx] = pooled.cpu().numpy()
        return out
