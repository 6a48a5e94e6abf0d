"""Run an exported (fp32 or int8) ONNX classifier with ONNX Runtime on CPU.

``OnnxModel(path)(input_ids, attention_mask, token_type_ids=None)`` returns the logits as a numpy
array: shape (batch, num_labels) for sequence models, (batch, seq, num_labels) for token models.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from kgfusion.core.errors import BundleError, ConfigError, DataError, ModelNotFoundError, missing_extra


def import_onnxruntime():
    """Import onnxruntime lazily; a missing package names the extra to install."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise missing_extra("onnxruntime", "onnx") from exc
    return onnxruntime


def _as_int64(x: Any) -> np.ndarray:
    """Accept numpy arrays, torch tensors or nested lists; ORT wants contiguous int64."""
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x, dtype=np.int64))


class OnnxModel:
    """An ONNX Runtime session over an exported classifier (CPUExecutionProvider, full graph optimisation).

    num_threads: intra-op threads (>= 1); default ``torch.get_num_threads()`` so ORT and torch
    compare fairly on the same machine.
    per_token: quantize activations per token (core/per_token_quant.py) so a text's output does not depend
    on the other texts in its batch; slower.
    """

    def __init__(self, path: str | os.PathLike[str], num_threads: int | None = None, *,
                 per_token: bool = False) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(
                f"ONNX model not found: {self.path}. Create one with core.quantize.export_onnx(...)."
            )
        if num_threads is None:
            import torch

            num_threads = torch.get_num_threads()
        if num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1, got {num_threads}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1  # a BERT graph is a chain: parallelism lives inside ops
        options.log_severity_level = 3  # keep ORT's optimiser chatter off stderr
        self.num_threads = int(num_threads)
        self.per_token = per_token
        source: str | bytes = str(self.path)
        if per_token:
            import onnx

            from kgfusion.core.per_token_quant import per_token_quantized

            model, rewritten = per_token_quantized(onnx.load(str(self.path)))
            if not rewritten:
                raise ConfigError(f"{self.path}: no dynamically quantized MatMul to make per-token (an fp32 "
                                  "graph is already batch-invariant: drop the per-token option)")
            source = model.SerializeToString()
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.input_names: list[str] = [i.name for i in self.session.get_inputs()]
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None,
                 feature_ids: Any = None) -> np.ndarray:
        """Return float32 logits (output ``logits``, else the first output: a multi-head model's primary
        head); only the inputs the graph declares are fed."""
        feed = self._feed(input_ids, attention_mask, token_type_ids, feature_ids)
        (logits,) = self.session.run(["logits"] if "logits" in self.output_names else self.output_names[:1], feed)
        return logits

    def run_outputs(self, names: list[str] | None = None, *, input_ids: Any, attention_mask: Any,
                    token_type_ids: Any = None, feature_ids: Any = None) -> dict[str, np.ndarray]:
        """Several outputs from one run (a multi-head model: ``logits_<head>``); default every output."""
        names = list(names) if names is not None else list(self.output_names)
        missing = [n for n in names if n not in self.output_names]
        if missing:
            raise BundleError(f"{self.path} has no output(s) {missing}; it has {self.output_names}. Re-export it "
                              "with `kgfusion model quantize BUNDLE --onnx`")
        feed = self._feed(input_ids, attention_mask, token_type_ids, feature_ids)
        return dict(zip(names, self.session.run(names, feed)))

    def _feed(self, input_ids: Any, attention_mask: Any, token_type_ids: Any, feature_ids: Any) -> dict[str, np.ndarray]:
        ids = _as_int64(input_ids)
        if ids.ndim != 2:
            raise DataError(f"input_ids must be 2-D (batch, seq), got shape {ids.shape}")
        given = {
            "input_ids": ids,
            "attention_mask": _as_int64(attention_mask),
            "token_type_ids": np.zeros_like(ids) if token_type_ids is None else _as_int64(token_type_ids),
            "feature_ids": np.zeros_like(ids) if feature_ids is None else _as_int64(feature_ids),
        }
        feed = {name: given[name] for name in self.input_names if name in given}
        missing = [name for name in self.input_names if name not in given]
        if missing:
            raise BundleError(f"{self.path} expects inputs {missing} that OnnxModel cannot supply")
        return feed

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, num_threads={self.num_threads}, inputs={self.input_names})"
