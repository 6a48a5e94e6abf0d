"""Explanations for recommendations: the structured evidence and the plain sentence shown to a person.

Evidence is a list of ``Reason`` (JSON ``{source, detail, weight}`` in the output frame) holding every
number: ranker score, per-group contributions, similarities, ranks, KG paths, rule arithmetic. The ranker's
features fall into evidence groups (co-watch, knowledge graph, text similarity, popularity); each group
that has something to show for this user becomes one Reason whose weight is the group's contribution to
the ranker score. The sentence names the one or two strongest groups in plain words, with the watched
titles behind them ("Because you watched Heat (1995), co-watched with it by 40 users") and no scores.

Lookups that do not depend on the item (kNN by column, item attributes, the user's history index) are
built once per generator and per user, so an explanation costs a few sparse/array slices.
"""
from __future__ import annotations

import json
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from kgfusion.apps.recommend.candidates import FEATURE_GROUPS

# Evidence groups a person reads, built from the ranker's feature groups (the collaborative sources are
# one "co-watch" kind of evidence), in the order used when no contributions are given.
GROUPS: dict[str, tuple[str, ...]] = {
    "co_watch": sum((FEATURE_GROUPS[s] for s in ("knn", "mf", "ease", "rp3")), ()),
    "kg": FEATURE_GROUPS["kg"],
    "embedding": FEATURE_GROUPS["emb"],
    "popularity": FEATURE_GROUPS["pop"],
}
GROUP_NAMES = {"co_watch": "co-watch", "kg": "knowledge graph", "embedding": "text similarity",
               "popularity": "popularity/freshness"}
SECOND_SHARE = 0.25  # a second group is named only if it moved the score at least this much of the first
_CF_RANK_LIMIT = 100  # a factor model without a co-watched title counts as evidence only inside its top 100
_LATELY_MIN = 10  # fewer recent viewers than this is not "popular lately", whatever the ranker made of it
_LATELY_SHARE = 0.25


@dataclass(frozen=True)
class Reason:
    """One piece of evidence: source (ranker, co_watch, kg, embedding, popularity, cold_start, rule:<id>).

    ``text`` is the plain-words clause for the sentence ("" = evidence only); it is not serialised.
    """

    source: str
    detail: str
    weight: float | None = None
    text: str = field(default="", compare=False)

    def to_dict(self) -> dict:
        return {"source": self.source, "detail": self.detail,
                "weight": None if self.weight is None else round(float(self.weight), 6)}


# ----------------------------------------------------------------------------- cached lookups
class _Catalogue:
    """Per-generator lookups: kNN columns, item attributes (KG genres/tags, else catalogue genres),
    primary genres and popularity ranks within them."""

    def __init__(self, gen) -> None:
        self.knn, self.graph, self.pop, self.items = getattr(gen, "knn", None), gen.graph, gen.pop, gen.items
        self.knn_csc = None if self.knn is None else self.knn.tocsc()
        self.genres: list[list[str]] = [list(g) for g in gen.items["genres"]]
        n = len(self.genres)
        if gen.graph is not None:
            g = gen.graph
            movie = g.node_item >= 0
            nodes = [g.item_node[r] if r < len(g.item_node) else -1 for r in range(n)]
            a = g.adjacency
            self.attrs = [() if node < 0 else tuple(int(x) for x in a.indices[a.indptr[node]:a.indptr[node + 1]]
                                                    if not movie[x]) for node in nodes]
            self.label, self.pred, self.degree = g.labels, g.predicates, g.degree
            self.kind = ["tag" if "/tag/" in u else "genre" if "/genre/" in u else "other" for u in g.uris]
        else:  # no graph: the catalogue genres are the only attributes
            index = {name: j for j, name in enumerate(gen.genre_names)}
            self.attrs = [tuple(index[x] for x in gs) for gs in self.genres]
            self.label = list(gen.genre_names)
            self.pred = ["has genre"] * len(self.label)
            self.degree = np.asarray(gen.genre_matrix.sum(axis=0)).ravel()
            self.kind = ["genre"] * len(self.label)
        self.primary = [gs[0] if gs else "" for gs in self.genres]
        by_genre: dict[str, list[float]] = {}
        for r, g in enumerate(self.primary):
            by_genre.setdefault(g, []).append(float(gen.pop[r]))
        self.genre_pops = {g: np.sort(np.asarray(p)) for g, p in by_genre.items()}
        self.all_pops = np.sort(np.asarray(gen.pop, dtype=np.float64))

    def current(self, gen) -> bool:
        return (self.knn is getattr(gen, "knn", None) and self.graph is gen.graph and self.pop is gen.pop
                and self.items is gen.items)

    def genre_rank(self, row: int) -> tuple[str, int]:
        """(primary genre or "", 1-based popularity rank of ``row`` among the items of that genre)."""
        genre = self.primary[row]
        pops = self.genre_pops[genre] if genre else self.all_pops
        return genre, int(len(pops) - np.searchsorted(pops, float(self.pop[row]), side="right")) + 1


class _History:
    """Per-user lookups: watched rows (latest first, once each), attribute -> watched rows, genre counts."""

    def __init__(self, cat: _Catalogue, gen, seen: np.ndarray) -> None:
        self.cat, self.seen = cat, seen
        rev = np.asarray(seen, dtype=np.int64)[::-1]
        _, first = np.unique(rev, return_index=True)
        self.rows = rev[np.sort(first)]
        self.member = np.zeros(len(cat.genres), dtype=bool)
        self.member[self.rows] = True
        self.by_attr: dict[int, list[int]] = {}
        self.genre_counts: Counter[str] = Counter()
        for r in self.rows.tolist():
            for a in cat.attrs[r]:
                self.by_attr.setdefault(a, []).append(r)
            self.genre_counts.update(cat.genres[r])
        self.emb = None if gen.embeddings is None else gen.embeddings[self.rows]


_CATALOGUES: OrderedDict[int, _Catalogue] = OrderedDict()
_HISTORIES: OrderedDict[tuple[int, int], _History] = OrderedDict()
_KEEP = 4  # generators / users cached (batch scoring explains one user's items in a row)
_LOCK = threading.Lock()  # the page may explain from several sessions' threads at once


def _remember(cache: OrderedDict, key, value):
    with _LOCK:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _KEEP:
            cache.popitem(last=False)
    return value


def _catalogue(gen) -> _Catalogue:
    # The entry keeps the generator's arrays alive, so an identity match cannot be a recycled id.
    cat = _CATALOGUES.get(id(gen))
    return cat if cat is not None and cat.current(gen) else _remember(_CATALOGUES, id(gen), _Catalogue(gen))


def _history(gen, cat: _Catalogue, user: int) -> _History | None:
    seen = gen.seen.get(int(user))
    if seen is None or len(seen) == 0:
        return None
    hist = _HISTORIES.get((id(gen), int(user)))
    if hist is not None and hist.seen is seen and hist.cat is cat:
        return hist
    return _remember(_HISTORIES, (id(gen), int(user)), _History(cat, gen, seen))


# ----------------------------------------------------------------------------- wording helpers
def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _finite(features: Mapping[str, float], name: str) -> float | None:
    v = features.get(name)
    return float(v) if v is not None and math.isfinite(v) else None


def _numbers(features: Mapping[str, float], names: Sequence[str]) -> str:
    vals = [(n, _finite(features, n)) for n in names]
    return ", ".join(f"{n} {v:.0f}" if n.endswith("_rank") else f"{n} {v:.3f}" for n, v in vals if v is not None)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _attr_phrase(cat: _Catalogue, attrs: Sequence[int]) -> str:
    """"the tag 'heist' and the genre Crime" / "the tags 'heist' and 'la'" / "the genres Crime and Drama"."""
    kinds = [cat.kind[a] for a in attrs]
    shown = [f"'{cat.label[a]}'" if k == "tag" else cat.label[a] for a, k in zip(attrs, kinds, strict=True)]
    if len(attrs) == 2 and kinds[0] == kinds[1] and kinds[0] != "other":
        return f"the {kinds[0]}s {shown[0]} and {shown[1]}"
    return _and([s if k == "other" else f"the {k} {s}" for s, k in zip(shown, kinds, strict=True)])


def _path(cat: _Catalogue, titles: Sequence[str], item: int, attr: int, watched: int) -> str:
    """"Heat —[has genre]→ Crime ←[has genre]— Casino" (as KnowledgeGraph.explain_path writes it)."""
    pred = cat.pred[attr] or "linked to"
    return f"{titles[item]} —[{pred}]→ {cat.label[attr]} ←[{pred}]— {titles[watched]}"


# ----------------------------------------------------------------------------- evidence groups
def _co_watch(gen, cat: _Catalogue, hist: _History, titles: Sequence[str], row: int,
              features: Mapping[str, float]) -> tuple[str, str] | None:
    """(detail, text) from the watched items whose kNN similarity to ``row`` adds most to its score."""
    picks: list[tuple[int, float]] = []
    if cat.knn_csc is not None:
        c = cat.knn_csc
        idx, sims = c.indices[c.indptr[row]:c.indptr[row + 1]], c.data[c.indptr[row]:c.indptr[row + 1]]
        mine = hist.member[idx] & (sims > 0)
        idx, sims = idx[mine], sims[mine]
        top = np.argsort(-sims, kind="stable")[:2]
        picks = [(int(idx[j]), float(sims[j])) for j in top]
    if picks:
        counts = gen.co_watchers(row, [r for r, _ in picks])
    else:  # the factor models found it without a kNN neighbour: name the most co-watched titles
        together = gen.co_watchers(row, hist.rows)
        top = [j for j in np.argsort(-together, kind="stable")[:2] if together[j] > 0]
        picks = [(int(hist.rows[j]), float("nan")) for j in top]
        counts = together[top]
    numbers = _numbers(features, GROUPS["co_watch"])
    if picks:
        watched = "; ".join(f"{titles[r]}: co-watched by {_count(int(n), 'user')}"
                            + ("" if math.isnan(s) else f", kNN cosine {s:.3f}")
                            for (r, s), n in zip(picks, counts, strict=True))
        text = (f"Because you watched {_and([titles[r] for r, _ in picks])}, co-watched with it by "
                f"{_and([str(int(n)) for n in counts[:-1]] + [_count(int(counts[-1]), 'user')])}")
        return f"{watched} ({numbers})", text
    ranks = [_finite(features, f"{m}_rank") for m in ("mf", "ease", "rp3")]
    if any(r is not None and r <= _CF_RANK_LIMIT for r in ranks):
        return f"collaborative models: {numbers}", "Viewers with tastes like yours watched it"
    return None


def _knowledge_graph(cat: _Catalogue, hist: _History, titles: Sequence[str], row: int,
                     features: Mapping[str, float]) -> tuple[str, str] | None:
    """(detail, text) from the item's genres/tags shared with the history, or None if none is shared.

    An attribute counts by how many watched items carry it over how many items carry it at all (its share
    of a two-hop walk from the history), so a rare shared tag beats a common genre; ties favour tags."""
    shared = [a for a in cat.attrs[row] if a in hist.by_attr]
    if not shared:
        return None
    shared.sort(key=lambda a: (-len(hist.by_attr[a]) / max(float(cat.degree[a]), 1.0), cat.kind[a] != "tag", a))
    first = shared[0]
    named, watched = [first], hist.by_attr[first][:2]
    for other in shared[1:3]:  # add a second attribute only if a watched item carries both
        both = [r for r in hist.by_attr[first] if other in cat.attrs[r]][:2]
        if both:
            named, watched = [first, other], both
            break
    detail = "; ".join([_path(cat, titles, row, a, watched[0]) for a in named]
                       + [f"{cat.kind[a]} {cat.label[a]}: {len(hist.by_attr[a])} watched of {cat.degree[a]:.0f} "
                          "items" for a in shared[:5]]
                       + [_numbers(features, GROUPS["kg"])])
    text = f"Shares {_attr_phrase(cat, named)} with {_and([titles[r] for r in watched])}, which you watched"
    return detail, text


def _text_similarity(gen, hist: _History, titles: Sequence[str], row: int,
                     features: Mapping[str, float]) -> tuple[str, str] | None:
    if hist.emb is None or _finite(features, "emb") is None:
        return None
    sims = hist.emb @ gen.embeddings[row]
    top = [j for j in np.argsort(-sims, kind="stable")[:2] if sims[j] > 0]
    if not top:
        return None
    rows = [int(hist.rows[j]) for j in top]
    detail = "; ".join([f"{titles[r]}: cosine {sims[j]:.3f}" for r, j in zip(rows, top, strict=True)]
                       + [_numbers(features, GROUPS["embedding"])])
    return detail, f"Similar in title, genres and tags to {_and([titles[r] for r in rows])}, which you watched"


def _popularity(gen, cat: _Catalogue, hist: _History, row: int, features: Mapping[str, float]) -> tuple[str, str]:
    viewers = int(gen.pop[row])
    recent_log = _finite(features, "pop_recent_log")
    recent = 0 if recent_log is None else int(round(math.expm1(recent_log)))
    # "lately" only when the recent window holds a real audience and a large share of all its viewers
    lately = recent >= _LATELY_MIN and recent >= _LATELY_SHARE * max(viewers, 1)
    text = f"Popular lately ({_count(recent, 'recent viewer')})" if lately else f"Popular ({_count(viewers, 'viewer')})"
    genre = max(cat.genres[row], key=lambda g: (hist.genre_counts[g], g), default="")
    if hist.genre_counts[genre]:
        text += f", {_a(genre)} {genre} film like {hist.genre_counts[genre]} you watched"
    window = getattr(gen.config, "window_days", 0)
    detail = (f"watched by {_count(viewers, 'user')}, {recent} in the {window:g} days before the user's last rating "
              f"({_numbers(features, GROUPS['popularity'])})")
    return detail, text


def _fallback_weight(group: str, features: Mapping[str, float]) -> float | None:
    lead = {"co_watch": ("knn", "ease", "rp3", "mf"), "kg": ("kg",), "embedding": ("emb",),
            "popularity": ("pop_log",)}[group]
    return next((v for v in (_finite(features, n) for n in lead) if v is not None), None)


def known_user_reasons(*, gen, titles: Sequence[str], user: int, row: int, features: Mapping[str, float],
                       score: float, contrib: Mapping[str, float] | None = None) -> list[Reason]:
    """Evidence for a recommendation to a user with history (gen: a fitted CandidateGenerator).

    ``features``: the candidate's ranker features; ``contrib``: per evidence group (GROUPS keys), how much
    the group moved the ranker score (Ranker.group_effects: the score minus the score with the group's
    features set to a typical candidate's). The ranker Reason comes first, then one Reason per evidence
    group, strongest first (without ``contrib``: co-watch, KG, text, popularity). Only the
    first group, and a second that moved the score at least SECOND_SHARE as much, carry a sentence text.
    """
    cat = _catalogue(gen)
    hist = _history(gen, cat, user)
    totals = None if contrib is None else {g: float(contrib.get(g, 0.0)) for g in GROUPS}
    head = f"LightGBM LambdaRank score {score:.3f} over {int(features.get('n_sources', 0))} candidate source(s)"
    if totals is not None:
        head += "; contributions: " + ", ".join(f"{GROUP_NAMES[g]} {v:+.3f}" for g, v in totals.items())
    reasons = [Reason("ranker", head, score)]
    if hist is None:
        return reasons
    found = {"co_watch": _co_watch(gen, cat, hist, titles, row, features),
             "kg": _knowledge_graph(cat, hist, titles, row, features),
             "embedding": _text_similarity(gen, hist, titles, row, features),
             "popularity": _popularity(gen, cat, hist, row, features)}
    groups = [(g, ev, totals[g] if totals is not None else _fallback_weight(g, features))
              for g, ev in found.items() if ev is not None]
    if totals is not None:
        groups.sort(key=lambda x: -x[2])  # stable: ties keep the fallback order
    for i, (g, (detail, text), weight) in enumerate(groups):
        if totals is None or i == 0:
            named = i < 2
        else:  # feature values of different groups do not compare; contributions do
            named = i == 1 and weight > 0 and weight >= SECOND_SHARE * groups[0][2]
        reasons.append(Reason(g, detail, weight, text if named else ""))
    return reasons


def cold_start_reasons(*, gen, titles: Sequence[str], user: int, row: int, known_user: bool) -> list[Reason]:
    """Evidence for a user without history: the item's popularity overall and within its primary genre."""
    cat = _catalogue(gen)
    why = "has no history" if known_user else "is unknown to this model"
    viewers = int(gen.pop[row])
    genre, rank = cat.genre_rank(row)
    films = f"{genre} film" if genre else "film"
    if viewers == 0:
        text = f"{_a(films)} {films} nobody has rated yet"
    elif rank <= 10:
        text = f"the {'' if rank == 1 else _ordinal(rank) + ' '}most watched {films} ({_count(viewers, 'viewer')})"
    else:
        top = next((k for k in (20, 50, 100) if rank <= k), None)
        text = f"one of the {top} most watched {films}s" if top else f"a popular {films}"
        text += f" ({_count(viewers, 'viewer')})"
    reasons = [Reason("cold_start", f"user {user} {why}: popularity fallback with the item's genre and KG context"),
               Reason("popularity", f"watched by {_count(viewers, 'user')}; rank {rank} by viewers among "
                      f"{len(cat.genre_pops[genre]) if genre else len(cat.all_pops)} {films}s", float(viewers), text)]
    if gen.graph is not None and cat.attrs[row]:
        attr = min(cat.attrs[row], key=lambda a: (cat.degree[a], a))  # the rarest: the most telling fact
        reasons.append(Reason("kg", f"{titles[row]} —[{cat.pred[attr] or 'linked to'}]→ {cat.label[attr]}"))
    return reasons


def explanation_text(reasons: Sequence[Reason], cold_start: bool) -> str:
    """The sentence for a person: the first one or two reasons that carry a text, in plain words.

    Scores, similarities and rule arithmetic stay in the evidence; known_user_reasons orders the
    reasons strongest first and gives a text only to those worth naming."""
    texts = [r.text for r in reasons if r.text]
    if cold_start:
        return "Cold start, based on popularity" + (f": {texts[0]}" if texts else "")
    if not texts:
        return "Picked by the ranker from your viewing history"
    second = f"; also {texts[1][:1].lower()}{texts[1][1:]}" if len(texts) > 1 else ""
    return texts[0] + second


def evidence_json(reasons: Sequence[Reason]) -> str:
    return json.dumps([r.to_dict() for r in reasons], ensure_ascii=False)
