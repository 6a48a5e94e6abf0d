"""Structured decoding for IOB2 tagging: constrained Viterbi and a linear-chain CRF.

Argmax tagging can emit sequences no annotator would write (``O I-Disease``, ``B-Chemical
I-Disease``). Two remedies, both decoding at the word level (the first sub-token of every word):

- ``viterbi``: the best *legal* path under the model's own log-probabilities, transitions either
  allowed (0) or forbidden (-inf); no training change.
- ``crf``: a learned transition matrix on top of the emissions (Lample et al. 2016), trained with the
  sequence negative log-likelihood; forbidden transitions stay forbidden.

Decoding runs in NumPy so every backend (torch fp32/int8, ONNX Runtime) shares it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

FORBIDDEN = -1e4  # finite, so the CRF's log-sum-exp stays stable; far below any real score


def iob2_constraints(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(start_allowed[C], transition_allowed[C, C]) for IOB2: ``I-X`` only after ``B-X`` or ``I-X``."""
    n = len(labels)
    start = np.ones(n, dtype=bool)
    trans = np.ones((n, n), dtype=bool)
    for j, tag in enumerate(labels):
        if tag.startswith("I-"):
            etype = tag[2:]
            start[j] = False
            for i, prev in enumerate(labels):
                trans[i, j] = prev in (f"B-{etype}", f"I-{etype}")
    return start, trans


def viterbi(emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray,
            end: np.ndarray | None = None) -> list[int]:
    """Best path of a (T, C) score matrix with additive (C, C) transitions and (C,) start/end scores."""
    steps = emissions.shape[0]
    if steps == 0:
        return []
    score = start + emissions[0]
    back = np.zeros((steps, emissions.shape[1]), dtype=np.int64)
    for t in range(1, steps):
        cand = score[:, None] + transitions  # prev x next
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + emissions[t]
    if end is not None:
        score = score + end
    path = [int(score.argmax())]
    for t in range(steps - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


class IOB2Decoder:
    """Word-level decoding of a label sequence: ``argmax``, ``viterbi`` (constrained) or ``crf``.

    ``crf`` needs the learned ``transitions``/``start``/``end`` (from a trained CRF); it decodes raw
    emission scores (logits); the others decode log-probabilities.
    """

    def __init__(self, labels: Sequence[str], mode: str = "argmax", transitions: np.ndarray | None = None,
                 start: np.ndarray | None = None, end: np.ndarray | None = None) -> None:
        from kgfusion.core.errors import ConfigError

        if mode not in ("argmax", "viterbi", "crf"):
            raise ConfigError(f"decoder={mode!r}; allowed: ['argmax', 'viterbi', 'crf']")
        if mode == "crf" and transitions is None:
            raise ConfigError("decoder='crf' needs the CRF's learned transitions (a bundle trained with decoder=crf)")
        self.labels = list(labels)
        self.mode = mode
        ok_start, ok_trans = iob2_constraints(self.labels)
        mask_start = np.where(ok_start, 0.0, FORBIDDEN)
        mask_trans = np.where(ok_trans, 0.0, FORBIDDEN)
        n = len(self.labels)
        self.transitions = mask_trans + (np.asarray(transitions, dtype=np.float64) if transitions is not None else 0.0)
        self.start = mask_start + (np.asarray(start, dtype=np.float64) if start is not None else 0.0)
        self.end = np.asarray(end, dtype=np.float64) if end is not None else np.zeros(n)

    def decode(self, logits: np.ndarray) -> list[int]:
        """Label ids for a (T, C) matrix of word logits."""
        logits = np.asarray(logits, dtype=np.float64)
        if self.mode == "argmax":
            return [int(i) for i in logits.argmax(axis=-1)]
        if self.mode == "viterbi":
            z = logits - logits.max(axis=-1, keepdims=True)
            scores = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        else:
            scores = logits
        return viterbi(scores, self.transitions, self.start, self.end)


class CRF(torch.nn.Module):
    """Linear-chain CRF over word emissions with IOB2 constraints (forbidden moves fixed at -1e4)."""

    def __init__(self, labels: Sequence[str]) -> None:
        super().__init__()
        n = len(labels)
        ok_start, ok_trans = iob2_constraints(labels)
        self.transitions = torch.nn.Parameter(torch.zeros(n, n))
        self.start = torch.nn.Parameter(torch.zeros(n))
        self.end = torch.nn.Parameter(torch.zeros(n))
        self.register_buffer("trans_mask", torch.tensor(np.where(ok_trans, 0.0, FORBIDDEN), dtype=torch.float32))
        self.register_buffer("start_mask", torch.tensor(np.where(ok_start, 0.0, FORBIDDEN), dtype=torch.float32))

    def _trans(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transitions + self.trans_mask, self.start + self.start_mask

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of gold ``tags`` (B, T) under (B, T, C) ``emissions``; ``mask`` (B, T)
        marks real words, left-aligned (every row starts with its words, then padding)."""
        trans, start = self._trans()
        mask = mask.bool()
        batch, steps, _ = emissions.shape
        tags = tags.clamp(min=0)
        ar = torch.arange(batch, device=emissions.device)
        # score of the gold path
        gold = start[tags[:, 0]] + emissions[ar, 0, tags[:, 0]]
        for t in range(1, steps):
            step = trans[tags[:, t - 1], tags[:, t]] + emissions[ar, t, tags[:, t]]
            gold = gold + step * mask[:, t]
        lengths = mask.sum(dim=1).clamp(min=1)
        last = tags[ar, lengths - 1]
        gold = gold + self.end[last]
        # partition function (forward algorithm)
        alpha = start + emissions[:, 0]
        for t in range(1, steps):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
        log_z = torch.logsumexp(alpha + self.end, dim=1)
        keep = mask[:, 0]
        return ((log_z - gold) * keep).sum() / keep.sum().clamp(min=1)

    def export(self) -> dict[str, np.ndarray]:
        """The learned scores (without the constraint masks) for :class:`IOB2Decoder`."""
        return {"transitions": self.transitions.detach().cpu().numpy(), "start": self.start.detach().cpu().numpy(),
                "end": self.end.detach().cpu().numpy()}


def word_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(index (B, W), mask (B, W)) of the labelled positions (labels >= 0: first sub-token of each word),
    left-aligned per row; padded indices point at position 0 and are masked."""
    keep = labels >= 0
    counts = keep.sum(dim=1)
    width = int(counts.max().item()) if labels.numel() else 0
    width = max(width, 1)
    index = torch.zeros(labels.shape[0], width, dtype=torch.long, device=labels.device)
    mask = torch.zeros(labels.shape[0], width, dtype=torch.bool, device=labels.device)
    for row in range(labels.shape[0]):
        pos = keep[row].nonzero(as_tuple=True)[0]
        index[row, : len(pos)] = pos
        mask[row, : len(pos)] = True
    return index, mask


def gather_words(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values (B, L, ...) at index (B, W) -> (B, W, ...)."""
    if values.ndim == 2:
        return values.gather(1, index)
    return values.gather(1, index.unsqueeze(-1).expand(-1, -1, values.shape[-1]))
