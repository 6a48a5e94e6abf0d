"""Linker: map a text mention to a KG entity, trying the cheapest, surest evidence first.

1. exact: the mention equals a label or alias (case-sensitive);
2. normalized: the normalised keys agree (case, punctuation, hyphens, possessives, plurals, Greek
   letters, a trailing "disease"/"syndrome"/"disorder" dropped — see knowledge.textnorm);
3. retrieval: the EntityIndex's nearest entities by embedding cosine, re-scored with character
   n-gram similarity of the mention to the entity's names (helps short and misspelt mentions);
   combined as ``max(cos, ngram)`` (default) or ``(1-w)*cos + w*ngram``. The match is "ngram" when
   the n-gram score carried the decision, else "embedding";
4. below ``threshold`` the result is match="none" with uri None (candidates still listed).

An exact or normalised name shared by several entities is ambiguous: every one is reported in
``candidates`` (``ambiguous`` is True) and the one whose *other* names are closest to the mention by
embedding cosine wins (the shared name itself scores alike for all of them).
Scores: 1.0 for string matches, else the combined score (cosine part in -1..1, n-gram part 0..1).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from kgfusion.core.errors import ConfigError
from kgfusion.knowledge.index import EntityIndex, EntityIndexError
from kgfusion.knowledge.records import EntityRecord
from kgfusion.knowledge.textnorm import best_ngram_similarity, name_keys

MatchKind = Literal["exact", "normalized", "ngram", "embedding", "none"]
COMBINE = ("max", "weighted")


@dataclass(frozen=True)
class LinkCandidate:
    """A scored candidate entity: combined score, its cosine and n-gram parts, and the name matched."""

    uri: str
    label: str
    type: str
    name: str
    score: float
    cosine: float
    ngram: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LinkResult:
    """The linked entity (uri None when match == "none") with its score and the ranked candidates."""

    mention: str
    uri: str | None
    label: str | None
    score: float
    match: MatchKind
    candidates: list[LinkCandidate] = field(default_factory=list)
    ambiguous: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["candidates"] = [c.to_dict() for c in self.candidates]
        return out


class Linker:
    """Entity linker over an EntityIndex plus the records (or a KnowledgeGraph) it was built from.

    ``source``: EntityRecords, or anything with ``entity_records()``; None uses the index's own
    records. ``threshold``: minimum combined score for a retrieval match. ``fetch_k``: how many
    index candidates are re-scored per mention (at least ``k``).
    """

    def __init__(
        self,
        index: EntityIndex,
        source: Iterable[EntityRecord] | Any | None = None,
        threshold: float = 0.5,
        *,
        combine: Literal["max", "weighted"] = "max",
        ngram_weight: float = 0.5,
        fetch_k: int = 20,
        ngram_n: tuple[int, ...] = (3,),
    ) -> None:
        if combine not in COMBINE:
            raise ConfigError(f"Linker combine={combine!r} is not one of {COMBINE}.")
        if not 0.0 <= ngram_weight <= 1.0:
            raise ConfigError(f"Linker ngram_weight={ngram_weight} must lie in 0..1.")
        if fetch_k < 1:
            raise ConfigError(f"Linker fetch_k={fetch_k} must be >= 1.")
        self.index = index
        self.threshold = float(threshold)
        self.combine = combine
        self.ngram_weight = float(ngram_weight)
        self.fetch_k = int(fetch_k)
        self.ngram_n = tuple(ngram_n)
        if source is None:
            records = list(index.records)
        elif hasattr(source, "entity_records"):
            records = list(source.entity_records())
        else:
            records = list(source)
        self.records: dict[str, EntityRecord] = {}
        self._exact: dict[str, set[str]] = {}
        self._norm: dict[str, set[str]] = {}
        self._loose: dict[str, set[str]] = {}  # full and suffix-stripped keys
        for rec in records:
            self.records[rec.uri] = rec
            self._register_names(rec.uri, rec.names())

    def _register_names(self, uri: str, names: Iterable[str]) -> None:
        for name in names:
            if not name.strip():
                continue
            self._exact.setdefault(name, set()).add(uri)
            keys = name_keys(name)
            if keys:
                self._norm.setdefault(keys[0], set()).add(uri)
                for key in keys:
                    self._loose.setdefault(key, set()).add(uri)

    def add_aliases(self, aliases: Mapping[str, Iterable[str]], embed: bool = True) -> int:
        """Add names at run time (uri -> names, e.g. training mentions); returns how many were new.

        The names join the exact/normalised tables at once; with ``embed`` they are also encoded
        and added to the FAISS index (no rebuild). Unknown URIs raise EntityIndexError.
        """
        added = 0
        clean: dict[str, list[str]] = {}
        for uri in aliases:  # validate all first so a bad URI leaves the tables unchanged
            if self.index.record(uri) is None and (embed or uri not in self.records):
                raise EntityIndexError(f"Cannot add aliases to {uri!r}: not an entity of the linker's index.")
        for uri, names in aliases.items():
            rec = self.records.get(uri) or self.index.record(uri)
            if rec is None:  # unreachable: validated above
                continue
            known = set(rec.names())
            fresh = [n for n in dict.fromkeys(names) if n.strip() and n not in known]
            if not fresh:
                continue
            clean[uri] = fresh
            self.records[uri] = EntityRecord(rec.uri, rec.label, (*rec.aliases, *fresh), rec.type, rec.xrefs)
            self._register_names(uri, fresh)
            added += len(fresh)
        if embed and clean:
            self.index.add_aliases(clean)
        return added

    # -- linking ------------------------------------------------------------------------------------------
    def link(self, mention: str, types: Iterable[str] | None = None, k: int = 10) -> LinkResult:
        """Link one mention (see the module docstring for the order of evidence)."""
        return self.link_many([mention], types=types, k=k)[0]

    def link_many(self, mentions: Sequence[str], types: Iterable[str] | None = None, k: int = 10) -> list[LinkResult]:
        """Link a batch: queries are encoded in one batch and searched in one FAISS call."""
        if k < 1:
            raise ConfigError(f"k={k} must be >= 1.")
        mentions = list(mentions)
        wanted = set(types) if types else None
        live = [i for i, m in enumerate(mentions) if m.strip()]
        results: list[LinkResult] = [LinkResult(m, None, None, 0.0, "none") for m in mentions]
        if not live:
            return results
        vectors = self.index.encode([mentions[i] for i in live])
        retrieved = self.index.search_vectors(vectors, k=max(k, self.fetch_k), types=wanted)
        for row, i in enumerate(live):
            results[i] = self._link_one(mentions[i], vectors[row], retrieved[row], wanted, k)
        return results

    def _alias_hits(self, mention: str, wanted: set[str] | None) -> tuple[set[str], MatchKind]:
        def typed(uris: set[str] | None) -> set[str]:
            if not uris:
                return set()
            return {u for u in uris if wanted is None or self._type_of(u) in wanted}

        hits = typed(self._exact.get(mention))
        if hits:
            return hits, "exact"
        keys = name_keys(mention)
        if not keys:
            return set(), "none"
        hits = typed(self._norm.get(keys[0]))
        if hits:
            return hits, "normalized"
        for key in keys:
            hits = typed(self._loose.get(key))
            if hits:
                return hits, "normalized"
        return set(), "none"

    def _type_of(self, uri: str) -> str:
        rec = self.records.get(uri) or self.index.record(uri)
        return rec.type if rec else ""

    def _label_of(self, uri: str) -> str:
        rec = self.records.get(uri) or self.index.record(uri)
        return rec.label if rec else uri

    def _names_of(self, uri: str) -> tuple[str, ...]:
        rec = self.records.get(uri) or self.index.record(uri)
        return rec.names() if rec else ()

    def _combine(self, cosine: float, ngram: float) -> float:
        if self.combine == "max":
            return max(cosine, ngram)
        return (1.0 - self.ngram_weight) * cosine + self.ngram_weight * ngram

    def _link_one(self, mention, vector: np.ndarray, retrieved, wanted, k: int) -> LinkResult:
        scored: list[LinkCandidate] = []
        for cand in retrieved:
            ngram, ngram_name = best_ngram_similarity(mention, self._names_of(cand.uri), self.ngram_n)
            name = ngram_name if ngram > cand.score else cand.name
            scored.append(
                LinkCandidate(cand.uri, self._label_of(cand.uri), cand.type, name,
                              self._combine(cand.score, ngram), cand.score, ngram)
            )
        scored.sort(key=lambda c: (-c.score, -c.cosine, c.uri))

        hits, kind = self._alias_hits(mention, wanted)
        if hits:
            # A shared name scores alike for every hit, so ambiguity is settled by the entities' other names.
            mkeys = set(name_keys(mention))
            shared = {n for uri in hits for n in self._names_of(uri) if n == mention or mkeys & set(name_keys(n))}
            shared = shared if len(hits) > 1 else set()
            by_embedding = self.index.score_entities(vector, hits, exclude=shared)
            string_cands = []
            for uri in hits:
                emb = by_embedding.get(uri)
                cos = emb.score if emb else 0.0
                ngram, name = best_ngram_similarity(mention, self._names_of(uri), self.ngram_n)
                string_cands.append(LinkCandidate(uri, self._label_of(uri), self._type_of(uri),
                                                  name, 1.0, cos, ngram))
            string_cands.sort(key=lambda c: (-c.cosine, -c.ngram, c.uri))
            rest = [c for c in scored if c.uri not in hits]
            best = string_cands[0]
            return LinkResult(mention, best.uri, best.label, 1.0, kind, (string_cands + rest)[: max(k, len(hits))],
                              ambiguous=len(hits) > 1)

        scored = scored[:k]
        if not scored or scored[0].score < self.threshold:
            return LinkResult(mention, None, None, scored[0].score if scored else 0.0, "none", scored)
        best = scored[0]
        match: MatchKind = "ngram" if best.ngram > best.cosine else "embedding"
        return LinkResult(mention, best.uri, best.label, best.score, match, scored)
