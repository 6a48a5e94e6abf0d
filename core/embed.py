"""Sentence embeddings by mean pooling over a base encoder (used for retrieval).

An Embedder maps texts to L2-normalised float32 vectors, so inner product is cosine similarity.
Anything with ``encode(texts) -> np.ndarray`` and ``dim`` can stand in for it (tests use mocks).

``Embedder.quantized(backend)`` gives an int8 copy of the same encoder for *queries* against an
index built with the fp32 one (the vectors live in the same space, cosine to fp32 ~0.99):

* ``"torch"``: torch dynamic int8 ``nn.Linear`` (no extra dependency, built in a second);
* ``"onnx"``: the encoder plus mean pooling exported to ONNX and quantized by ONNX Runtime (extra
  ``onnx``); with ``cache_dir`` the int8 graph is built once and reused while the weights match.

The int8 copies get their own ``name`` (``<name>+int8-<backend>``), so an index *built* with one is
never mistaken for an fp32 index.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from kgfusion.core.errors import ConfigError

Backend = Literal["fp32", "torch", "onnx"]
INT8_BACKENDS = ("torch", "onnx")
ONNX_CACHE_VERSION = 1


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
        self.backend: Backend = "fp32"
        self._session: Any = None  # onnxruntime.InferenceSession for the "onnx" backend
        self._onnx_inputs: list[str] = []
        self._torch = torch

    # -- int8 copies ------------------------------------------------------------------------------------
    def quantized(self, backend: Literal["torch", "onnx"] = "onnx", *, cache_dir: str | os.PathLike[str] | None = None,
                  num_threads: int | None = None) -> Embedder:
        """An int8 copy of this fp32 encoder for queries (see the module docstring for the backends).

        ``cache_dir`` (onnx only): where the int8 graph is kept; None builds it in a temporary
        directory each time (~20 s for MiniLM). ``num_threads``: ONNX Runtime intra-op threads
        (default torch's); its workers do not spin while idle, which on a busy machine (a training
        job, other workers) made 2 threads ~1.8x faster than ORT's default spinning pool.
        """
        if backend not in INT8_BACKENDS:
            raise ConfigError(f"Embedder.quantized backend={backend!r} is not one of {INT8_BACKENDS}.")
        if self.backend != "fp32":
            raise ConfigError(f"Embedder {self.name!r} is already int8 ({self.backend}); quantize the fp32 one.")
        clone = object.__new__(Embedder)
        clone.__dict__.update(self.__dict__)
        clone.name, clone.backend = f"{self.name}+int8-{backend}", backend
        if backend == "torch":
            from kgfusion.core.quantize import quantize_dynamic_int8

            clone.model = quantize_dynamic_int8(self.model)
        else:
            threads = num_threads or self._torch.get_num_threads()
            if cache_dir is None:  # ORT holds the graph in memory once the session exists: no file left behind
                with tempfile.TemporaryDirectory(prefix="kgfusion-embed-onnx-") as work:
                    clone._session = _ort_session(self._onnx_int8_path(work), threads)
            else:
                clone._session = _ort_session(self._onnx_int8_path(cache_dir), threads)
            clone._onnx_inputs = [i.name for i in clone._session.get_inputs()]
        return clone

    def _fingerprint(self) -> str:
        """SHA-256 over the weights and the pooling setup: a changed model invalidates the cached graph."""
        digest = hashlib.sha256(f"{ONNX_CACHE_VERSION}|{self.name}|{self.dim}".encode())
        for key, tensor in sorted(self.model.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def _onnx_int8_path(self, cache_dir: str | os.PathLike[str]) -> Path:
        """The cached int8 graph in ``cache_dir`` when its fingerprint matches, else a freshly built one."""
        from kgfusion.core.fileio import atomic_write_text

        fingerprint = self._fingerprint()
        work = Path(cache_dir)
        work.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^0-9A-Za-z._-]+", "_", self.name).strip("_")[-60:] or "encoder"
        int8, meta = work / f"{stem}.int8.onnx", work / f"{stem}.int8.json"
        if int8.is_file() and meta.is_file():
            try:
                if json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
                    return int8
            except (OSError, ValueError):
                pass  # unreadable sidecar: rebuild
        meta.unlink(missing_ok=True)  # the sidecar is written last: without it the graph is not trusted
        from kgfusion.core.quantize import quantize_onnx_int8

        fp32 = self._export_onnx(work / f".{stem}.fp32.onnx")
        try:
            quantize_onnx_int8(fp32, int8)
        finally:
            fp32.unlink(missing_ok=True)
        atomic_write_text(meta, json.dumps({"fingerprint": fingerprint, "encoder": self.name,
                                            "version": ONNX_CACHE_VERSION}, indent=2, sort_keys=True))
        return int8

    def _export_onnx(self, out: Path) -> Path:
        """fp32 ONNX graph of encoder + mean pooling + L2 normalisation; output ``embeddings`` (batch, dim)."""
        torch = self._torch
        from kgfusion.core.quantize import (
            _dummy_inputs,
            _export_dynamo,
            _export_legacy,
            _forward_inputs,
            import_onnx,
        )

        import_onnx()
        names = _forward_inputs(self.model, self.tokenizer)
        model = self.model

        class Pooled(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors):
                inputs = dict(zip(names, tensors, strict=True))
                hidden = self.model(**inputs, return_dict=True).last_hidden_state
                return _pool(torch, hidden, inputs["attention_mask"])

        wrapper = Pooled().eval()
        args = _dummy_inputs(self.tokenizer, names)
        tmp = str(out) + ".tmp"
        try:
            _export_legacy(wrapper, args, names, tmp, "sequence", 17, ["embeddings"])
        except TypeError:  # the legacy exporter is gone in this torch
            _export_dynamo(wrapper, args, names, tmp, 17, ["embeddings"])
        os.replace(tmp, out)
        return out

    # -- encoding ---------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Return an array of shape (len(texts), dim), rows of unit length."""
        torch = self._torch
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sort by length so each batch pads little; restore the order at the end.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        tensors = "np" if self._session is not None else "pt"
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors=tensors,
                )
                if self._session is not None:
                    feed = {n: np.ascontiguousarray(enc[n], dtype=np.int64) for n in self._onnx_inputs}
                    out[idx] = self._session.run(["embeddings"], feed)[0]
                    continue
                hidden = self.model(**enc).last_hidden_state
                out[idx] = _pool(torch, hidden, enc["attention_mask"]).cpu().numpy()
        return out


def _ort_session(path: Path, num_threads: int):
    """A CPU InferenceSession over the pooled int8 graph (full graph optimisation, no idle spinning)."""
    from kgfusion.core.onnx_model import import_onnxruntime

    if num_threads < 1:
        raise ConfigError(f"num_threads must be >= 1, got {num_threads}")
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int(num_threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _pool(torch, hidden, attention_mask):
    """Masked mean over tokens, then L2 normalisation."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)
