"""Explanations for recommendations: KG paths, similar watched items, and the cold-start statement.

Evidence is a list of ``{source, detail, weight}`` dicts (JSON in the output frame); the explanation is
one readable line built from the strongest of them. KG paths read like ``KnowledgeGraph.explain_path``:
"Heat —[has genre]→ Crime ←[has genre]— Casino" (the recommended item first, a watched item last).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kgfusion.apps.recommend.candidates import ItemGraph


@dataclass(frozen=True)
class Reason:
    """One piece of evidence: source (itemknn, embedding, kg, mf, popularity, ranker, rule:<id>, cold_start)."""

    source: str
    detail: str
    weight: float | None = None

    def to_dict(self) -> dict:
        return {"source": self.source, "detail": self.detail,
                "weight": None if self.weight is None else round(float(self.weight), 6)}


def kg_path(graph: ItemGraph, titles: Sequence[str], item: int, history: Sequence[int]) -> tuple[str, int] | None:
    """A 2-hop path item -> shared attribute <- watched item, preferring the rarest attribute (fewest
    movies), then the most recently watched item; returns (text, watched row) or None if none is shared.
    ``history`` is in time order (catalogue rows)."""
    attrs = graph.attributes(item)
    if not attrs or len(history) == 0:
        return None
    attr_set = set(attrs)
    best: tuple[float, int, int] | None = None  # (degree, -recency, attr)
    owner: dict[int, int] = {}
    for pos in range(len(history) - 1, -1, -1):
        row = int(history[pos])
        for a in graph.attributes(row):
            if a in attr_set and a not in owner:
                owner[a] = row
                key = (float(graph.degree[a]), len(history) - pos, a)
                if best is None or key < best:
                    best = key
    if best is None:
        return None
    attr = best[2]
    pred = graph.predicates[attr] or "linked to"
    watched = owner[attr]
    text = f"{titles[item]} —[{pred}]→ {graph.labels[attr]} ←[{pred}]— {titles[watched]}"
    return text, watched


def kg_attribute_path(graph: ItemGraph, titles: Sequence[str], item: int) -> str | None:
    """One hop to the item's rarest attribute ("Heat —[has genre]→ Crime"), for cold-start lists."""
    attrs = graph.attributes(item)
    if not attrs:
        return None
    attr = min(attrs, key=lambda a: (graph.degree[a], a))
    return f"{titles[item]} —[{graph.predicates[attr] or 'linked to'}]→ {graph.labels[attr]}"


def graph_path(kg, item_uri: str, watched_uri: str) -> str:
    """The shortest KG path between two entities of a loaded KnowledgeGraph, as readable text ("" if none)."""
    return kg.explain_path(kg.shortest_path(item_uri, watched_uri), start=item_uri)


def known_user_reasons(*, gen, titles: Sequence[str], user: int, row: int, features: Mapping[str, float],
                       score: float) -> list[Reason]:
    """Evidence for a recommendation to a user with history (gen: a fitted CandidateGenerator)."""
    reasons = [Reason("ranker", f"LightGBM LambdaRank score {score:.3f} over {int(features['n_sources'])} "
                      "candidate source(s)", score)]
    knn = gen.knn_because(user, row)
    if knn is not None:
        reasons.append(Reason("itemknn", f"because you watched {titles[knn[0]]} (co-watched, cosine {knn[1]:.2f})",
                              knn[1]))
    emb = gen.emb_because(user, row)
    if emb is not None and np.isfinite(features.get("emb", np.nan)):
        reasons.append(Reason("embedding", f"similar title/genres/tags to {titles[emb[0]]} (cosine {emb[1]:.2f})",
                              emb[1]))
    if gen.graph is not None:
        path = kg_path(gen.graph, titles, row, gen.seen.get(user, []))
        if path is not None:
            reasons.append(Reason("kg", path[0], float(features.get("kg", 0.0))))
    if np.isfinite(features.get("mf", np.nan)) and features.get("mf_rank", np.inf) <= 100:
        reasons.append(Reason("mf", f"ALS factor score {features['mf']:.3f} (rank {int(features['mf_rank'])})",
                              float(features["mf"])))
    return reasons


def cold_start_reasons(*, gen, titles: Sequence[str], user: int, row: int, known_user: bool) -> list[Reason]:
    why = "has no history" if known_user else "is unknown to this model"
    reasons = [Reason("cold_start", f"user {user} {why}: popularity + knowledge-graph fallback"),
               Reason("popularity", f"watched by {int(gen.pop[row])} users", float(gen.pop[row]))]
    if gen.graph is not None:
        path = kg_attribute_path(gen.graph, titles, row)
        if path:
            reasons.append(Reason("kg", path))
    return reasons


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def explanation_text(reasons: Sequence[Reason], cold_start: bool) -> str:
    """One line: the main reason, then the KG path and rules that changed the score."""
    by = {}
    for r in reasons:
        by.setdefault(r.source.split(":")[0], []).append(r)
    parts: list[str] = []
    if cold_start:
        parts.append(f"Cold start ({by['cold_start'][0].detail}); popular: {by['popularity'][0].detail}")
    elif "itemknn" in by:
        parts.append(_upper_first(by["itemknn"][0].detail))
    elif "embedding" in by:
        parts.append(_upper_first(by["embedding"][0].detail))
    elif "mf" in by:
        parts.append("Users with similar taste watched it (" + by["mf"][0].detail + ")")
    else:
        parts.append(by["ranker"][0].detail if "ranker" in by else "recommended")
    if "kg" in by:
        parts.append("KG: " + by["kg"][0].detail)
    for r in by.get("rule", []):
        parts.append(f"rule {r.source[5:]}: {r.detail}")
    return "; ".join(parts)


def evidence_json(reasons: Sequence[Reason]) -> str:
    return json.dumps([r.to_dict() for r in reasons], ensure_ascii=False)
