"""Ensembles of fine-tuned models and their soft targets, for distillation into one small student.

``EnsemblePredictor`` averages the members' log-probabilities window by window (a geometric mean of
their distributions) and then decodes like any Predictor (constrained Viterbi for token tasks), so
teacher and student are measured by the same code. ``soft_targets`` gives the averaged distribution
per training example — (C,) for sequences, (n_words, C) for tokens — for ``train(soft_targets=...)``.
Members must share labels and tokenizer (the same base model).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kgfusion.core.errors import ConfigError
from kgfusion.core.predict import SINGLE_HEAD, Predictor, softmax


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class EnsemblePredictor(Predictor):
    """A Predictor over several member Predictors of the same task and labels."""

    def __init__(self, members: Sequence[Predictor], decoder: str = "viterbi") -> None:
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        first = members[0]
        for m in members[1:]:
            if m.labels != first.labels or m.task != first.task:
                raise ConfigError(f"ensemble members disagree on task/labels: {first.task} {first.labels} vs "
                                  f"{m.task} {m.labels}")
        self.members = list(members)
        self._init_from(first, decoder)

    def _init_from(self, first: Predictor, decoder: str) -> None:
        """The Predictor state taken from the first member (no model of its own: members run)."""
        from kgfusion.core.decoding import IOB2Decoder

        self.tokenizer, self.labels, self.task = first.tokenizer, first.labels, first.task
        self.backend, self.batch_size, self.max_length, self.stride = "ensemble", first.batch_size, \
            first.max_length, first.stride
        self.model, self._input_names = None, first._input_names
        # one head: the members' primary heads, averaged (predict_heads answers {SINGLE_HEAD: probs})
        self.heads, self.primary_head, self.multi_head = {SINGLE_HEAD: list(self.labels)}, SINGLE_HEAD, False
        self.gazetteer = next((m.gazetteer for m in self.members if m.gazetteer is not None), None)
        self.decoder = IOB2Decoder(self.labels, "viterbi" if decoder == "crf" else decoder) \
            if self.task == "token" else None

    def _encode(self, texts):
        enc = self.members[0]._encode(texts)
        if self.gazetteer is not None and "feature_ids" not in enc:
            enc["feature_ids"] = self._features(list(texts), enc)
        return enc

    def _logits(self, enc) -> list[np.ndarray]:
        total: list[np.ndarray] | None = None
        for m in self.members:
            logp = [_log_softmax(x.astype(np.float64)) for x in m._logits(enc)]
            total = logp if total is None else [a + b for a, b in zip(total, logp)]
        return [t / len(self.members) for t in total]  # type: ignore[union-attr]

    def _head_logits(self, enc) -> dict[str, list[np.ndarray]]:
        return {self.primary_head: self._logits(enc)}


def soft_targets(predictor: Predictor, examples: Sequence) -> list[np.ndarray]:
    """The (ensemble) predictor's distribution per example: (C,) for texts, (n_words, C) for token
    examples (the word split of ``examples``: tokens joined by spaces, as in evaluation)."""
    if predictor.task == "sequence":
        return list(predictor.predict_proba([e.text for e in examples]))
    out: list[np.ndarray] = []
    texts = [" ".join(e.tokens) for e in examples]
    for start in range(0, len(texts), 256):
        chunk = texts[start : start + 256]
        enc = predictor._encode(chunk)
        logits = predictor._logits(enc)
        words: list[dict[int, tuple[int, np.ndarray]]] = [{} for _ in chunk]
        for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
            ids = enc.word_ids(w)
            n, prev = len(ids), None
            for j, wid in enumerate(ids):
                if wid is not None and wid != prev:
                    centrality = min(j, n - 1 - j)
                    if wid not in words[sample] or centrality > words[sample][wid][0]:
                        words[sample][wid] = (centrality, logits[w][j])
                prev = wid
        for i, wmap in enumerate(words):
            n_words = len(examples[start + i].tokens)
            probs = np.full((n_words, len(predictor.labels)), 1.0 / len(predictor.labels))
            for wid, (_, lg) in wmap.items():
                if wid < n_words:
                    probs[wid] = softmax(lg.astype(np.float64))
            out.append(probs.astype(np.float32))
    return out
