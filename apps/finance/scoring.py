"""Item sentiment: model probabilities fused with the finance rule base into an explainable Decision.

Model: the Predictor's class probabilities, in batches; items longer than ``long_chars`` are split into
sentences and the sentence probabilities averaged, weighted by sentence length. Rules: the finance
lexicon with negation / intensifier / hedge cues (knowledge.fusion.score_lexicon) gives a score in
[-1, 1] that log-linear fusion adds to the model's log-probabilities; hard overrides (e.g. "files for
bankruptcy") force the label. The item's sentiment score is P(positive) - P(negative) of the fused
distribution, in [-1, 1] (after an override: the override's confidence, signed by its label).

Topics (issue 15): with a multi-head predictor that has a ``topic`` head (core/multitask.py) one
``predict_heads`` call answers sentiment and topic from the same forward pass; the item's topic is the
argmax of the (sentence length-weighted) topic probabilities, ``topic_prob`` its probability, and a model
evidence entry "topic head: <topic> <p>" joins the evidence. A single-head predictor keeps the
``predict_proba`` path unchanged and leaves topic / topic_prob None.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from kgfusion.apps.finance.config import FinanceConfig
from kgfusion.apps.finance.topics import SENTIMENT_HEAD, TOPIC_DETAIL, TOPIC_HEAD, predictor_topics
from kgfusion.core.errors import ConfigError
from kgfusion.knowledge.fusion import (
    Decision,
    Evidence,
    FusionConfig,
    LexiconScorer,
    find_overrides,
    fuse_log_linear,
)
from kgfusion.knowledge.rules import PatternRule, RuleBase

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$\"'(])")
SENTIMENT_LABELS = ("negative", "neutral", "positive")


class ProbaModel(Protocol):
    labels: list[str]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ScoredItem:
    """label in negative|neutral|positive; score = P(pos) - P(neg) in [-1, 1]; probs fused, model_probs raw;
    topic: the topic head's label (None without a topic head), topic_prob its probability in [0, 1]."""

    label: str
    score: float
    confidence: float
    probs: dict[str, float]
    model_probs: dict[str, float]
    rule_score: float
    decision: Decision
    topic: str | None = None
    topic_prob: float | None = None

    def evidence_dicts(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.decision.evidence]


def split_sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p] or [text]


def sentiment_score(decision: Decision) -> float:
    """P(positive) - P(negative) of the fused scores; an override's confidence signed by its label."""
    if decision.evidence and decision.evidence[0].detail.startswith("override"):
        sign = {"positive": 1.0, "negative": -1.0}.get(str(decision.value), 0.0)
        return sign * decision.confidence
    s = decision.scores or {}
    return float(s.get("positive", 0.0) - s.get("negative", 0.0))


class SentimentScorer:
    """Score texts: model probabilities (batched, long texts split) + lexicon + overrides -> ScoredItem."""

    def __init__(self, predictor: ProbaModel, rules: RuleBase, config: FinanceConfig | None = None,
                 model_name: str = "finsent") -> None:
        self.predictor = predictor
        heads = getattr(predictor, "heads", None)
        # the topic head's labels, or None: a single-head model keeps the predict_proba path
        self.topic_labels: list[str] | None = predictor_topics(predictor)
        if self.topic_labels is not None and not hasattr(predictor, "predict_heads"):
            raise ConfigError("the predictor lists a topic head but has no predict_heads(); use core.predict.Predictor")
        self._sentiment_head = (SENTIMENT_HEAD if isinstance(heads, dict) and SENTIMENT_HEAD in heads
                                else getattr(predictor, "primary_head", SENTIMENT_HEAD))
        self.labels = (list(heads[self._sentiment_head]) if self.topic_labels is not None
                       and self._sentiment_head in heads else list(predictor.labels))
        missing = [lab for lab in SENTIMENT_LABELS if lab not in self.labels]
        if missing:
            raise ConfigError(f"the sentiment model's labels {self.labels} lack {missing}; "
                              "use a bundle trained by `kgfusion finance train`")
        self.rules = rules
        self.config = config or FinanceConfig()
        self.lexicon = LexiconScorer(rules)
        # find_overrides scans the rule base per call: give it only the pattern rules, and only when a
        # hard-override regex matches at all (most items have none)
        patterns = rules.by_kind(PatternRule)
        self._override_rules = RuleBase(patterns)
        self._override_res = [p.compiled for p in patterns if p.override]
        self.fusion = FusionConfig(model_weight=self.config.model_weight, rule_weight=self.config.rule_weight)
        self.model_name = model_name

    @property
    def _topic_fusion_note(self) -> str:
        lex = getattr(self.predictor, "lexical", {}).get(TOPIC_HEAD)
        return f" (fused with the n-gram head, weight {lex.alpha:.2f})" if lex is not None else ""

    @property
    def has_topics(self) -> bool:
        return self.topic_labels is not None

    def model_probs(self, texts: Sequence[str]) -> np.ndarray:
        """(n, n_labels) sentiment probabilities; long texts are the length-weighted mean of their sentences."""
        return self.model_outputs(texts)[0]

    def model_outputs(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(sentiment probs (n, 3), topic probs (n, n_topics) or None without a topic head), from one
        forward pass per chunk; long texts are the length-weighted mean of their sentences for both."""
        pieces: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            parts = split_sentences(text) if len(text) > self.config.long_chars else [text]
            pieces += parts
            owner += [i] * len(parts)
        out = np.zeros((len(texts), len(self.labels)))
        topics = np.zeros((len(texts), len(self.topic_labels))) if self.topic_labels is not None else None
        weight = np.zeros(len(texts))
        step = self.config.batch_size * 8  # the predictor batches internally; this bounds memory
        for start in range(0, len(pieces), step):
            chunk = pieces[start:start + step]
            if topics is None:  # sentiment-only: exactly today's call
                probs, topic_probs = np.asarray(self.predictor.predict_proba(chunk), dtype=np.float64), None
            else:
                heads = self.predictor.predict_heads(chunk)
                probs = np.asarray(heads[self._sentiment_head], dtype=np.float64)
                topic_probs = np.asarray(heads[TOPIC_HEAD], dtype=np.float64)
            w = np.array([len(p) for p in chunk], dtype=np.float64)
            idx = np.asarray(owner[start:start + step])
            np.add.at(out, idx, w[:, None] * probs)
            if topics is not None:
                np.add.at(topics, idx, w[:, None] * topic_probs)
            np.add.at(weight, idx, w)
        norm = np.maximum(weight, 1e-9)[:, None]
        return out / norm, (topics / norm if topics is not None else None)

    def score(self, texts: Sequence[str]) -> list[ScoredItem]:
        texts = list(texts)
        probs, topics = self.model_outputs(texts)
        if topics is None:
            return [self._fuse(t, p) for t, p in zip(texts, probs)]
        return [self._fuse(t, p, trow) for t, p, trow in zip(texts, probs, topics)]

    def _fuse(self, text: str, row: np.ndarray, topic_row: np.ndarray | None = None) -> ScoredItem:
        model_probs = {lab: float(p) for lab, p in zip(self.labels, row)}
        rule_score, rule_ev = self.lexicon.score(text)
        overrides = (find_overrides(text, self._override_rules)
                     if any(r.search(text) for r in self._override_res) else [])
        d = fuse_log_linear(model_probs, rule_score, config=self.fusion, model_name=self.model_name,
                            rule_evidence=rule_ev, overrides=overrides)
        score = sentiment_score(d)
        topic = topic_prob = None
        if topic_row is not None and self.topic_labels:
            best = int(np.argmax(topic_row))
            topic, topic_prob = self.topic_labels[best], round(float(topic_row[best]), 6)
            d = d.with_evidence(Evidence("model", self.model_name,
                                         f"{TOPIC_DETAIL}{topic} {topic_prob:.2f}{self._topic_fusion_note}",
                                         weight=topic_prob))
        return ScoredItem(str(d.value), round(score, 6), d.confidence, dict(d.scores or {}), model_probs,
                          rule_score, d, topic, topic_prob)


def highlight_html(text: str, evidence: Sequence[dict[str, Any]]) -> str:
    """HTML of ``text`` with evidence spans marked: red/green for rule terms by sign, blue for companies."""
    import html as _html

    spans = []
    for e in evidence:
        span = e.get("span")
        if not span or span[1] <= span[0]:
            continue
        if e.get("kind") == "kg":
            color = "#cfe2ff"
        else:
            w = e.get("weight") or 0.0
            color = "#f8d7da" if w < 0 else "#d1e7dd" if w > 0 else "#eeeeee"
        spans.append((int(span[0]), int(span[1]), color, f"{e.get('source', '')} {e.get('detail', '')}"))
    out, pos = [], 0
    for s, e, color, title in sorted(spans):
        if s < pos:  # overlapping spans: keep the first
            continue
        out.append(_html.escape(text[pos:s]))
        out.append(f'<mark style="background:{color}" title="{_html.escape(title, quote=True)}">'
                   f"{_html.escape(text[s:e])}</mark>")
        pos = e
    out.append(_html.escape(text[pos:]))
    return "".join(out)
