"""Batched inference used by every app.

Backends: ``fp32`` (torch), ``int8`` (torch dynamic int8 on Linear layers) and ``onnx-int8``
(ONNX Runtime; the bundle must hold ``model.int8.onnx``, made by ``kgfusion model quantize --onnx``).
Inputs are tokenized once, split into overlapping windows when longer than ``max_length``, sorted by
length and padded per batch. Classification aggregates window probabilities (weighted by window
length); token classification keeps, for every word, the window where it sits most central, and
returns spans with character offsets into the input text.

Multi-task bundles (core/multitask.py: one encoder, a head per task) answer every head from one forward
pass: ``predict_heads(texts) -> {"sentiment": probs, "topic": probs}``; ``predict_proba``/``predict``
give the primary head, so code written for one classifier keeps working. A single-head model has one
head, named ``SINGLE_HEAD``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import torch

from kgfusion.core.batching import pad_batch, padding_aware_batches
from kgfusion.core.errors import BundleError, ConfigError

Backend = Literal["fp32", "int8", "onnx-int8"]
BACKENDS: tuple[str, ...] = ("fp32", "int8", "onnx-int8")
BATCH_INVARIANT_ENV = "KGFUSION_BATCH_INVARIANT"  # 1: onnx-int8 quantizes per token (core/per_token_quant.py)
SINGLE_HEAD = "label"  # the name predict_heads gives the one head of a single-head model


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    probs: dict[str, float]


@dataclass(frozen=True)
class Span:
    start: int  # character offsets into the input text, end exclusive
    end: int
    label: str
    score: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Predictor:
    """Turn texts into class probabilities or entity spans with one of three backends."""

    # head -> LexicalHead fused into that head's probabilities (set by from_bundle; empty = model only)
    lexical: Mapping[str, Any] = MappingProxyType({})

    def __init__(
        self,
        model,
        tokenizer,
        labels: Sequence[str],
        task: Literal["sequence", "token"],
        backend: Backend = "fp32",
        batch_size: int = 32,
        max_length: int = 128,
        stride: int | None = None,
        onnx_path: str | Path | None = None,
        decoder: str = "argmax",
        decoder_scores: dict[str, np.ndarray] | None = None,
        gazetteer=None,
        heads: dict[str, Sequence[str]] | None = None,
        primary_head: str = "",
        batch_invariant: bool | None = None,
    ) -> None:
        """``heads``/``primary_head``: a multi-task model's heads (name -> labels) and the head ``labels``
        belong to; read from a MultiTaskModel itself, needed for onnx-int8 (``from_bundle`` passes them).
        ``batch_invariant``: onnx-int8 quantizes activations per token, so a text's probabilities do not
        depend on the texts batched with it (about 0.6x the speed); default: the environment variable
        ``KGFUSION_BATCH_INVARIANT=1``."""
        if backend not in BACKENDS:
            raise ConfigError(f"backend={backend!r}; allowed: {list(BACKENDS)}")
        if batch_invariant is None:
            batch_invariant = os.environ.get(BATCH_INVARIANT_ENV, "") not in ("", "0")
        if batch_invariant and backend == "int8":  # torch's dynamic int8 also scales per batch
            raise ConfigError(f"batch_invariant needs backend onnx-int8 or fp32, not {backend!r} (set "
                              f"{BATCH_INVARIANT_ENV}=0 or pick another backend)")
        self.batch_invariant = bool(batch_invariant) and backend == "onnx-int8"  # fp32 is already invariant
        stride = min(32, max_length // 4) if stride is None else stride
        if not 0 <= stride < max_length // 2:
            raise ConfigError(f"stride={stride} must be in [0, max_length/2) = [0, {max_length // 2})")
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.task = task
        self._set_heads(model, heads, primary_head)
        self.backend = backend
        self.batch_size = batch_size
        self.max_length = max_length
        self.stride = stride
        self._input_names = ["input_ids", "attention_mask", "token_type_ids"]
        # Token models: structured decoding (core/decoding.py) and gazetteer features (core/features.py).
        self.gazetteer = gazetteer if gazetteer is not None else getattr(model, "gazetteer", None)
        if decoder_scores is None and model is not None and hasattr(model, "decoder_scores"):
            decoder_scores = model.decoder_scores()
        self.decoder = None
        if task == "token":
            from kgfusion.core.decoding import IOB2Decoder

            mode = decoder if decoder != "crf" or decoder_scores is not None else "viterbi"
            self.decoder = IOB2Decoder(self.labels, mode, **(decoder_scores or {}) if mode == "crf" else {})
        if self.gazetteer is not None:
            self._input_names.append("feature_ids")
        if backend == "onnx-int8":
            from kgfusion.core.quantize import OnnxModel

            if onnx_path is None or not Path(onnx_path).is_file():
                raise BundleError(
                    f"ONNX model not found at {onnx_path}; create it with `kgfusion model quantize BUNDLE --onnx`"
                )
            self._onnx = OnnxModel(onnx_path, per_token=self.batch_invariant)
            self.model = None
        else:
            model = model.eval()
            if backend == "int8":
                from kgfusion.core.quantize import quantize_dynamic_int8

                model = quantize_dynamic_int8(model)
            self.model = model
            self._input_names = [n for n in self._input_names if _accepts(model, n)]

    def _set_heads(self, model, heads: dict[str, Sequence[str]] | None, primary: str) -> None:
        from kgfusion.core.multitask import multitask_info, ordered_heads

        info = multitask_info(model) if model is not None else None
        if info is not None and heads is None:
            heads, primary = info["heads"], primary or info["primary_head"]
        self.multi_head = bool(heads)
        if not heads:
            self.heads: dict[str, list[str]] = {SINGLE_HEAD: list(self.labels)}
            self.primary_head = SINGLE_HEAD
            return
        if self.task != "sequence":
            raise ConfigError(f"a multi-head model classifies sequences; task={self.task!r}")
        self.heads = ordered_heads(heads, primary)
        self.primary_head = next(iter(self.heads))
        if self.labels != self.heads[self.primary_head]:
            raise ConfigError(f"labels {self.labels} differ from the primary head {self.primary_head!r} labels "
                              f"{self.heads[self.primary_head]}")

    @classmethod
    def from_bundle(cls, bundle_dir: str | Path, backend: Backend | Literal["auto"] = "fp32", *, lexical: bool = True,
                    **kwargs) -> Predictor:
        """``backend='auto'``: the best one the bundle ships (onnx-int8 when present, else fp32).
        ``lexical=False`` ignores the bundle's lexical heads (model-only probabilities)."""
        from kgfusion.core.bundle import ONNX_INT8, load_bundle, read_manifest, resolve_backend

        bundle_dir = Path(bundle_dir)
        if backend == "auto":
            backend = resolve_backend(bundle_dir, backend)  # type: ignore[assignment]
        if backend == "onnx-int8":
            from transformers import AutoTokenizer

            from kgfusion.core.bundle import verify_bundle
            from kgfusion.core.multitask import manifest_heads

            manifest = verify_bundle(bundle_dir)
            tokenizer = AutoTokenizer.from_pretrained(bundle_dir, trust_remote_code=False)
            kwargs.setdefault("max_length", max(manifest.max_length, 128))
            kwargs.setdefault("decoder", manifest.extra.get("decoder", "argmax"))
            multi = manifest_heads(manifest.extra)
            if multi is not None:
                kwargs.setdefault("heads", multi[0])
                kwargs.setdefault("primary_head", multi[1])
            if manifest.task == "token":
                from kgfusion.core.tokenmodel import load_decoder_scores, load_gazetteer

                kwargs.setdefault("decoder_scores", load_decoder_scores(bundle_dir))
                kwargs.setdefault("gazetteer", load_gazetteer(bundle_dir))
            pred = cls(None, tokenizer, manifest.labels, manifest.task, backend=backend,
                       onnx_path=bundle_dir / ONNX_INT8, **kwargs)
            return pred._with_lexical(bundle_dir, lexical)
        loaded = load_bundle(bundle_dir)
        manifest = read_manifest(bundle_dir)
        kwargs.setdefault("max_length", max(manifest.max_length, 128))
        kwargs.setdefault("decoder", manifest.extra.get("decoder", "argmax"))
        pred = cls(loaded.model, loaded.tokenizer, loaded.labels, loaded.task, backend=backend, **kwargs)
        return pred._with_lexical(bundle_dir, lexical)

    def _with_lexical(self, bundle_dir: Path, enabled: bool) -> Predictor:
        """Attach the bundle's lexical heads (core.lexical), fused into those heads' probabilities."""
        if enabled and self.task == "sequence":
            from kgfusion.core.lexical import load_lexical_heads

            self.lexical = load_lexical_heads(bundle_dir, list(self.heads))
        return self

    def _fuse_lexical(self, head: str, probs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        lex = self.lexical.get(head)
        return probs if lex is None or not len(texts) else lex.fuse(probs, texts)

    # -- shared machinery -------------------------------------------------------------------
    def _encode(self, texts: Sequence[str]):
        enc = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.max_length,
            stride=self.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=self.task == "token",
        )
        if self.gazetteer is not None:
            enc["feature_ids"] = self._features(list(texts), enc)
        return enc

    def _features(self, texts: list[str], enc) -> list[list[int]]:
        """Gazetteer feature id per sub-token: words (the tokenizer's own) matched against the gazetteer."""
        spans: list[dict[int, list[int]]] = [{} for _ in texts]
        for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
            for j, wid in enumerate(enc.word_ids(w)):
                if wid is None:
                    continue
                s, e = enc["offset_mapping"][w][j]
                cur = spans[sample].setdefault(wid, [s, e])
                cur[0], cur[1] = min(cur[0], s), max(cur[1], e)
        word_feats: list[dict[int, int]] = []
        for text, wmap in zip(texts, spans):
            order = sorted(wmap)
            feats = self.gazetteer.word_features([text[wmap[k][0] : wmap[k][1]] for k in order])
            word_feats.append(dict(zip(order, feats)))
        return [[0 if wid is None else word_feats[sample].get(wid, 0) for wid in enc.word_ids(w)]
                for w, sample in enumerate(enc["overflow_to_sample_mapping"])]

    def _logits(self, enc) -> list[np.ndarray]:
        """Logits per window (unpadded) of the primary head, computed in length-sorted batches."""
        return self._head_logits(enc)[self.primary_head]

    def _head_logits(self, enc) -> dict[str, list[np.ndarray]]:
        """Every head's logits per window (unpadded), from one forward pass per length-sorted batch (cut where
        padding would cost more than another call: see batching.padding_aware_batches)."""
        ids = enc["input_ids"]
        out: dict[str, list[np.ndarray | None]] = {h: [None] * len(ids) for h in self.heads}
        names = [n for n in self._input_names if n in enc]
        for batch in padding_aware_batches([len(x) for x in ids], self.batch_size):
            feats = [{n: enc[n][i] for n in names} for i in batch]
            inputs = pad_batch(feats, self.tokenizer.pad_token_id or 0)
            for head, logits in self._forward(inputs).items():
                for row, i in enumerate(batch):
                    out[head][i] = logits[row] if logits.ndim == 2 else logits[row, : len(ids[i])]
        return out  # type: ignore[return-value]

    def _forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """One batch through the model: logits per head name."""
        if self.model is None:
            arrays = {k: v.numpy() for k, v in inputs.items()}
            if not self.multi_head:
                return {self.primary_head: self._onnx(**arrays)}
            from kgfusion.core.multitask import ONNX_OUTPUT_PREFIX

            got = self._onnx.run_outputs([ONNX_OUTPUT_PREFIX + h for h in self.heads], **arrays)
            return {h: got[ONNX_OUTPUT_PREFIX + h] for h in self.heads}
        with torch.inference_mode():
            result = self.model(**inputs)
        if not self.multi_head:
            return {self.primary_head: result.logits.float().numpy()}
        return {h: result.head_logits[h].float().numpy() for h in self.heads}

    # -- sequence classification ------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities of the primary head, shape (len(texts), n_labels); long texts average their windows."""
        self._require("sequence")
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        enc = self._encode(texts)
        probs = self._aggregate(enc, self._logits(enc), len(texts), len(self.labels))
        return self._fuse_lexical(self.primary_head, probs, texts)

    def predict_heads(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Probabilities of every head from one forward pass: head -> (len(texts), n_labels of that head).
        A single-head model answers ``{SINGLE_HEAD: probs}``."""
        self._require("sequence")
        texts = list(texts)
        if not texts:
            return {h: np.zeros((0, len(labs)), dtype=np.float32) for h, labs in self.heads.items()}
        enc = self._encode(texts)
        logits = self._head_logits(enc)
        return {h: self._fuse_lexical(h, self._aggregate(enc, logits[h], len(texts), len(labs)), texts)
                for h, labs in self.heads.items()}

    @staticmethod
    def _aggregate(enc, logits: list[np.ndarray], n_texts: int, n_labels: int) -> np.ndarray:
        """Window probabilities averaged per text, weighted by window length."""
        probs = np.zeros((n_texts, n_labels), dtype=np.float64)
        weight = np.zeros(n_texts)
        for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
            n = len(enc["input_ids"][w])
            probs[sample] += n * softmax(logits[w].astype(np.float64))
            weight[sample] += n
        return (probs / weight[:, None]).astype(np.float32)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """The primary head's label, its probability and all probabilities, per text."""
        return self._predictions(self.predict_proba(texts), self.labels)

    def predict_multi(self, texts: Sequence[str]) -> list[dict[str, Prediction]]:
        """Per text, every head's Prediction (one forward pass), e.g. ``[{"sentiment": ..., "topic": ...}]``."""
        texts = list(texts)
        probs = self.predict_heads(texts)
        per_head = {h: self._predictions(p, self.heads[h]) for h, p in probs.items()}
        return [{h: preds[i] for h, preds in per_head.items()} for i in range(len(texts))]

    @staticmethod
    def _predictions(probs: np.ndarray, labels: list[str]) -> list[Prediction]:
        out = []
        for row in probs:
            best = int(np.argmax(row))
            out.append(Prediction(labels[best], float(row[best]), dict(zip(labels, map(float, row)))))
        return out

    # -- token classification ---------------------------------------------------------------
    def predict_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        """Entity spans per text with character offsets; windows overlap by ``stride`` tokens."""
        self._require("token")
        texts = list(texts)
        if not texts:
            return []
        enc = self._encode(texts)
        logits = self._logits(enc)
        # per text: word id -> (centrality, probs of first sub-token, start, end)
        words: list[dict[int, list]] = [{} for _ in texts]
        for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
            word_ids = enc.word_ids(w)
            offsets = enc["offset_mapping"][w]
            n = len(word_ids)
            prev = None
            for j, wid in enumerate(word_ids):
                if wid is None:
                    prev = None
                    continue
                s, e = offsets[j]
                entry = words[sample].get(wid)
                if entry is None:
                    entry = words[sample][wid] = [-1, None, s, e]
                entry[2], entry[3] = min(entry[2], s), max(entry[3], e)
                if wid != prev:  # first sub-token of the word in this window
                    centrality = min(j, n - 1 - j)
                    if centrality > entry[0]:
                        entry[0], entry[1] = centrality, logits[w][j].astype(np.float64)
                prev = wid
        results = []
        for text, wmap in zip(texts, words):
            seq = [(wmap[k][2], wmap[k][3], wmap[k][1]) for k in sorted(wmap) if wmap[k][1] is not None]
            results.append(self._decode(text, seq))
        return results

    def _decode(self, text: str, seq: list[tuple[int, int, np.ndarray]]) -> list[Span]:
        """Word logits -> tags (argmax, constrained Viterbi or CRF) -> spans; an I- without a matching
        open entity starts one (lenient, only reachable with argmax)."""
        spans: list[Span] = []
        cur: list | None = None  # [start, end, type, scores]
        if not seq:
            return spans
        word_logits = np.stack([lg for _, _, lg in seq])
        probs = softmax(word_logits)
        tags = self.decoder.decode(word_logits) if self.decoder is not None else list(word_logits.argmax(-1))
        for (s, e, _), p, tag_id in zip(seq, probs, tags):
            tag = self.labels[int(tag_id)]
            score = float(p[int(tag_id)])
            prefix, _, etype = tag.partition("-")
            if tag == "O" or not etype:
                cur = self._close(text, cur, spans)
                continue
            if prefix == "B" or cur is None or cur[2] != etype:
                cur = self._close(text, cur, spans)
                cur = [s, e, etype, [score]]
            else:
                cur[1] = e
                cur[3].append(score)
        self._close(text, cur, spans)
        return spans

    @staticmethod
    def _close(text: str, cur: list | None, spans: list[Span]) -> None:
        if cur is not None:
            spans.append(Span(cur[0], cur[1], cur[2], float(np.mean(cur[3])), text[cur[0] : cur[1]]))
        return None

    def _require(self, task: str) -> None:
        if self.task != task:
            raise ConfigError(f"this model does {self.task} classification, not {task}")


def _accepts(model, name: str) -> bool:
    """Whether ``model.forward`` takes ``name``; a plain peft wrapper (``**kwargs``) passes on to its base."""
    import inspect

    params = inspect.signature(model.forward).parameters
    if name in params:
        return True
    base = getattr(model, "get_base_model", None)
    if callable(base) and any(p.kind is p.VAR_KEYWORD for p in params.values()):
        inner = base()
        return inner is not model and _accepts(inner, name)
    return False
