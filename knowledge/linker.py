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

Speed (``link_many``; ``string_first=True``, the default): string matches are found before any
embedding and take the *stored* vector of the matched name as their query vector instead of
encoding the mention. For an exact match that is the very vector the mention would get (same string,
same encoder), so results are unchanged; for a normalised match the candidates' cosines are those
of the matched name (the linked entity and its score 1.0 are unchanged; the other candidates can
rank slightly differently). Ambiguous normalised matches, and names that are not in the index
(``add_aliases(embed=False)``), still encode the mention. Only the remaining unique mentions are
encoded, in batches, by ``query_encoder`` (default the index's encoder; e.g. an int8 copy from
``Embedder.quantized``), then searched in one FAISS call. Results are cached per (mention, types,
k) in a bounded LRU (``cache_size``; 0 turns it off) that ``add_aliases`` and any change of the
linker's settings or of the index size invalidate; cached results are returned as copies.
``string_first=False`` restores encoding every mention (the reference path).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from kgfusion.core.errors import ConfigError
from kgfusion.knowledge.index import EntityIndex, EntityIndexError
from kgfusion.knowledge.records import EntityRecord
from kgfusion.knowledge.textnorm import char_ngrams, name_keys

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
    index candidates are re-scored per mention (at least ``k``). ``query_encoder``: encodes the
    mentions (same vector space and dim as the index's encoder; default the index's encoder).
    ``batch_size``: mentions per encoder batch. ``cache_size``: LRU entries (0 = no cache).
    ``string_first``: see the module docstring.
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
        query_encoder: Any | None = None,
        batch_size: int = 64,
        cache_size: int = 50_000,
        string_first: bool = True,
    ) -> None:
        if combine not in COMBINE:
            raise ConfigError(f"Linker combine={combine!r} is not one of {COMBINE}.")
        if not 0.0 <= ngram_weight <= 1.0:
            raise ConfigError(f"Linker ngram_weight={ngram_weight} must lie in 0..1.")
        if fetch_k < 1:
            raise ConfigError(f"Linker fetch_k={fetch_k} must be >= 1.")
        if batch_size < 1 or cache_size < 0:
            raise ConfigError(f"Linker batch_size={batch_size} must be >= 1 and cache_size={cache_size} >= 0.")
        if query_encoder is not None and int(query_encoder.dim) != index.dim:
            raise ConfigError(f"Linker query_encoder gives {query_encoder.dim}-d vectors but the index holds "
                              f"{index.dim}-d ones; use the index's encoder or an int8 copy of it.")
        self.index = index
        self.threshold = float(threshold)
        self.combine = combine
        self.ngram_weight = float(ngram_weight)
        self.fetch_k = int(fetch_k)
        self.ngram_n = tuple(ngram_n)
        self.query_encoder = query_encoder
        self.batch_size = int(batch_size)
        self.string_first = bool(string_first)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[tuple, LinkResult] = OrderedDict()
        self._cache_lock = threading.Lock()  # serving threads share one linker
        self._generation = 0  # bumped when names change: cached results from before never match
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
        if added:
            self.clear_cache()
        return added

    def clear_cache(self) -> None:
        """Forget cached results (done automatically when names are added)."""
        with self._cache_lock:
            self._generation += 1
            self._cache.clear()

    # -- linking ------------------------------------------------------------------------------------------
    def link(self, mention: str, types: Iterable[str] | None = None, k: int = 10) -> LinkResult:
        """Link one mention (see the module docstring for the order of evidence)."""
        return self.link_many([mention], types=types, k=k)[0]

    def link_many(self, mentions: Sequence[str], types: Iterable[str] | None = None, k: int = 10) -> list[LinkResult]:
        """Link a batch: string matches first, repeats and cached mentions once, the rest encoded in
        batches and searched in one FAISS call (see the module docstring). Empty mentions: "none"."""
        if k < 1:
            raise ConfigError(f"k={k} must be >= 1.")
        mentions = list(mentions)
        wanted = frozenset(types) if types else None
        results: list[LinkResult | None] = [None] * len(mentions)
        state = self._state()
        todo: dict[str, list[int]] = {}  # unique uncached mention -> its positions
        for i, m in enumerate(mentions):
            if not m.strip():
                results[i] = LinkResult(m, None, None, 0.0, "none")
                continue
            if m in todo:
                todo[m].append(i)
                continue
            cached = self._cache_get((m, wanted, k, state))
            if cached is None:
                todo[m] = [i]
            else:
                results[i] = _copy(cached)
        if todo:
            unique = list(todo)
            for m, res in zip(unique, self._link_unique(unique, wanted, k), strict=True):
                self._cache_put((m, wanted, k, state), res)
                for i in todo[m]:
                    results[i] = _copy(res)
        return results  # type: ignore[return-value]  # every slot is filled above

    def _state(self) -> tuple:
        """Everything besides (mention, types, k) a result depends on: part of every cache key."""
        return (self._generation, self.index.name_count, id(self.index), id(self.query_encoder), self.threshold,
                self.combine, self.ngram_weight, self.fetch_k, self.ngram_n, self.string_first)

    def _cache_get(self, key: tuple) -> LinkResult | None:
        if not self.cache_size:
            return None
        with self._cache_lock:
            res = self._cache.get(key)
            if res is not None:
                self._cache.move_to_end(key)
            return res

    def _cache_put(self, key: tuple, res: LinkResult) -> None:
        if not self.cache_size:
            return
        with self._cache_lock:
            self._cache[key] = res
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _link_unique(self, mentions: list[str], wanted: frozenset[str] | None, k: int) -> list[LinkResult]:
        hits = [self._alias_hits(m, wanted) for m in mentions]
        vectors = np.zeros((len(mentions), self.index.dim), dtype=np.float32)
        encode: list[int] = []
        for row, (m, (uris, kind)) in enumerate(zip(mentions, hits, strict=True)):
            proxy = self._stored_vector(m, uris, kind) if self.string_first and uris else None
            if proxy is None:
                encode.append(row)
            else:
                vectors[row] = proxy
        if encode:
            vectors[encode] = self._encode([mentions[r] for r in encode])
        retrieved = self.index.search_vectors(vectors, k=max(k, self.fetch_k), types=wanted)
        return [self._link_one(m, vectors[r], retrieved[r], wanted, k, hits[r]) for r, m in enumerate(mentions)]

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.query_encoder is None:
            return self.index.encode(texts)
        vecs = np.asarray(self.query_encoder.encode(texts, batch_size=self.batch_size), dtype=np.float32)
        if vecs.shape != (len(texts), self.index.dim):
            raise EntityIndexError(f"Linker query_encoder returned shape {vecs.shape}, "
                                   f"expected ({len(texts)}, {self.index.dim}).")
        return vecs

    def _stored_vector(self, mention: str, uris: set[str], kind: MatchKind) -> np.ndarray | None:
        """The indexed vector standing in for the mention's embedding, or None (then it is encoded)."""
        if kind == "exact":  # every hit has a name equal to the mention: its vector is the mention's
            for uri in sorted(uris):
                vec = self.index.name_vector(uri, mention)
                if vec is not None:
                    return vec
            return None
        if len(uris) != 1:
            return None  # ambiguous normalised match: settled by the mention's own embedding
        (uri,) = uris
        mkeys = name_keys(mention)
        names = [n for n in self._names_of(uri) if set(name_keys(n)) & set(mkeys)]
        names.sort(key=lambda n: name_keys(n)[0] != mkeys[0])  # a name with the same full key first
        for name in names:
            vec = self.index.name_vector(uri, name)
            if vec is not None:
                return vec
        return None

    def _alias_hits(self, mention: str, wanted: Collection[str] | None) -> tuple[set[str], MatchKind]:
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

    def _best_ngram(self, grams: frozenset[str], names: Iterable[str]) -> tuple[float, str]:
        """textnorm.best_ngram_similarity with the mention's n-grams computed once (the hot loop)."""
        best, best_name = 0.0, ""
        if not grams:
            return best, best_name
        for name in names:
            other = char_ngrams(name, self.ngram_n)
            if other:
                sim = 2.0 * len(grams & other) / (len(grams) + len(other))
                if sim > best:
                    best, best_name = sim, name
        return best, best_name

    def _combine(self, cosine: float, ngram: float) -> float:
        if self.combine == "max":
            return max(cosine, ngram)
        return (1.0 - self.ngram_weight) * cosine + self.ngram_weight * ngram

    def _link_one(self, mention: str, vector: np.ndarray, retrieved, wanted, k: int,
                  hits: tuple[set[str], MatchKind] | None = None) -> LinkResult:
        scored: list[LinkCandidate] = []
        grams = char_ngrams(mention, self.ngram_n)
        for cand in retrieved:
            ngram, ngram_name = self._best_ngram(grams, self._names_of(cand.uri))
            name = ngram_name if ngram > cand.score else cand.name
            scored.append(
                LinkCandidate(cand.uri, self._label_of(cand.uri), cand.type, name,
                              self._combine(cand.score, ngram), cand.score, ngram)
            )
        scored.sort(key=lambda c: (-c.score, -c.cosine, c.uri))

        hits, kind = hits if hits is not None else self._alias_hits(mention, wanted)
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
                ngram, name = self._best_ngram(grams, self._names_of(uri))
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


def _copy(res: LinkResult) -> LinkResult:
    """A result with its own candidate list, so a caller editing it cannot change the cache."""
    return replace(res, candidates=list(res.candidates))
