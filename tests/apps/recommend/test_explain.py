"""Explanations: the sentence names the strongest evidence in plain words, the evidence keeps the numbers."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from kgfusion.apps.recommend.candidates import CandidateConfig, CandidateGenerator, ItemGraph
from kgfusion.apps.recommend.explain import (
    Reason,
    cold_start_reasons,
    evidence_json,
    explanation_text,
    known_user_reasons,
)

# title, genres, tags; the user (1) watched Heat, Casino and Toy Story; Ronin shares 'heist' with Heat
MOVIES = [
    ("Heat (1995)", ["Crime", "Thriller"], ["heist", "los angeles"]),
    ("Casino (1995)", ["Crime", "Drama"], ["las vegas"]),
    ("Toy Story (1995)", ["Animation", "Comedy"], ["pixar"]),
    ("Ronin (1998)", ["Action", "Crime"], ["heist"]),
    ("Up (2009)", ["Animation", "Comedy"], ["pixar"]),
    ("Alien (1979)", ["Horror", "Sci-Fi"], ["space"]),
    ("Amelie (2001)", ["Romance"], []),
]
HEAT, CASINO, TOY, RONIN, UP, ALIEN, AMELIE = range(len(MOVIES))
ID = "https://kgfusion.dev/id/"
NUMBERS = re.compile(r"\d\.\d|x1\.|rule|cosine|score", re.I)


def _graph() -> ItemGraph:
    attrs = sorted({("genre", g) for _, gs, _ in MOVIES for g in gs} | {("tag", t) for _, _, ts in MOVIES for t in ts})
    node = {a: len(MOVIES) + j for j, a in enumerate(attrs)}
    edges = [(r, node["genre", g]) for r, (_, gs, _) in enumerate(MOVIES) for g in gs]
    edges += [(r, node["tag", t]) for r, (_, _, ts) in enumerate(MOVIES) for t in ts]
    rows = [a for a, b in edges] + [b for a, b in edges]
    cols = [b for a, b in edges] + [a for a, b in edges]
    n = len(MOVIES) + len(attrs)
    adjacency = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    node_item = list(range(len(MOVIES))) + [-1] * len(attrs)
    labels = [t for t, _, _ in MOVIES] + [label for _, label in attrs]
    predicates = [""] * len(MOVIES) + [f"has {kind}" for kind, _ in attrs]
    uris = [f"{ID}movie/{r + 1}" for r in range(len(MOVIES))] + [f"{ID}{k}/{v.replace(' ', '-')}" for k, v in attrs]
    return ItemGraph(adjacency, np.array(node_item), labels, predicates, uris)


def _generator(graph: ItemGraph | None = None) -> CandidateGenerator:
    items = pd.DataFrame({"item_id": range(1, len(MOVIES) + 1), "title": [t for t, _, _ in MOVIES],
                          "genres": [g for _, g, _ in MOVIES],
                          "year": [float(t[-5:-1]) for t, _, _ in MOVIES]})
    # user 1: Heat, Casino, Toy Story; users 2-6 pair Heat (and some Casino) with Ronin; 7-8 watch Up
    watched = {1: [HEAT, CASINO, TOY], 2: [HEAT, RONIN], 3: [HEAT, RONIN], 4: [HEAT, RONIN, CASINO],
               5: [CASINO, RONIN], 6: [TOY, UP, AMELIE], 7: [TOY, UP], 8: [ALIEN, UP]}
    hist = pd.DataFrame([(u, r + 1, 4.0, 1000 + 10 * t) for u, rows in watched.items() for t, r in enumerate(rows)],
                        columns=["userId", "movieId", "rating", "timestamp"])
    emb = np.eye(len(MOVIES), 4, dtype=np.float32)
    emb[RONIN] = [0.8, 0.6, 0, 0]  # Ronin's text is closest to Heat, then Casino
    emb[UP] = [0, 0, 1, 0]  # Up's text matches Toy Story
    config = CandidateConfig(per_source=3, knn_neighbors=4, mf_factors=8, mf_iterations=2)
    return CandidateGenerator(items, graph if graph is not None else _graph(), emb, config).fit(hist)


@pytest.fixture(scope="module")
def gen():
    return _generator()


@pytest.fixture(scope="module")
def titles(gen):
    return gen.items["title"].tolist()


def _features(gen, row: int) -> dict[str, float]:
    cands = gen.candidates([1])
    f = cands.loc[cands["item_row"] == row].iloc[0]
    return {c: float(f[c]) for c in cands.columns if c not in ("user_id", "item_id", "item_row")
            and not c.startswith("from_")}


def _contrib(**groups: float) -> dict[str, float]:
    """Group effects as Ranker.group_effects gives them (groups not named: 0)."""
    return {"co_watch": 0.0, "kg": 0.0, "embedding": 0.0, "popularity": 0.0, **groups}


def _explain(gen, titles, row: int, contrib=None):
    reasons = known_user_reasons(gen=gen, titles=titles, user=1, row=row, features=_features(gen, row),
                                 score=1.25, contrib=contrib)
    return reasons, explanation_text(reasons, cold_start=False)


def test_co_watch_sentence_names_the_watched_title_behind_it(gen, titles):
    reasons, text = _explain(gen, titles, RONIN, _contrib(co_watch=0.9, kg=0.1, embedding=0.05, popularity=0.02))
    assert [r.source for r in reasons] == ["ranker", "co_watch", "kg", "embedding", "popularity"]
    assert reasons[1].weight == pytest.approx(0.9)
    best = max((HEAT, CASINO, TOY), key=lambda h: gen.knn[h, RONIN])
    n = int(gen.co_watchers(RONIN, [best])[0])
    assert text.startswith(f"Because you watched {titles[best]}")
    assert f"co-watched with it by {n}" in text
    assert "; also" not in text  # the KG group moved the score too little to be named


def test_kg_contribution_makes_the_sentence_about_the_shared_tag(gen, titles):
    reasons, text = _explain(gen, titles, RONIN, _contrib(co_watch=0.3, kg=1.0, embedding=0.0, popularity=-0.2))
    assert reasons[1].source == "kg"
    # Crime is as rare as 'heist' in this tiny catalogue (3 films, 2 of them watched), so both are named
    assert text.startswith("Shares the genre Crime and the tag 'heist' with Heat (1995), which you watched")
    assert "; also because you watched" in text  # co-watch moved the score 0.3 of the KG's: named second
    kg = next(r for r in reasons if r.source == "kg")
    assert "Ronin (1998) —[has tag]→ heist ←[has tag]— Heat (1995)" in kg.detail


def test_text_similarity_and_popularity_wording(gen, titles):
    _, text = _explain(gen, titles, RONIN, _contrib(co_watch=0.0, kg=0.0, embedding=0.5, popularity=0.4))
    first, second = text.split("; also ")
    assert first == f"Similar in title, genres and tags to {titles[HEAT]} and {titles[CASINO]}, which you watched"
    assert second.startswith(f"popular ({int(gen.pop[RONIN])} viewers), a Crime film like 2 you watched")


def test_sentence_has_no_numbers_while_the_evidence_keeps_them(gen, titles):
    reasons, _ = _explain(gen, titles, RONIN, _contrib(co_watch=0.9, kg=0.6, embedding=0.3, popularity=0.1))
    reasons.append(Reason("rule:rec.freshness", "freshness x1.016 (year=1998, 11 older than 2009)", 1.016))
    text = explanation_text(reasons, cold_start=False)
    assert not NUMBERS.search(text.replace("(1995)", "").replace("(1998)", "")), text
    evidence = json.loads(evidence_json(reasons))
    assert all(set(e) == {"source", "detail", "weight"} for e in evidence)
    blob = json.dumps(evidence)
    assert "LambdaRank score 1.250" in blob and "cosine" in blob and "x1.016" in blob and "co-watch +0.900" in blob


def test_no_kg_reason_when_nothing_in_the_history_shares_an_attribute(gen, titles):
    reasons, text = _explain(gen, titles, ALIEN, _contrib(co_watch=0.1, kg=2.0, embedding=0.1, popularity=0.1))
    assert "kg" not in [r.source for r in reasons]
    assert "Shares" not in text and "—[" not in text
    # a shared genre alone is enough: Up shares Animation/Comedy/pixar with Toy Story
    reasons, text = _explain(gen, titles, UP, _contrib(kg=2.0))
    assert text.startswith("Shares the tag 'pixar'") and titles[TOY] in text


def test_negative_groups_are_not_named(gen, titles):
    _, text = _explain(gen, titles, RONIN, _contrib(co_watch=-0.5, kg=-0.1, embedding=0.4, popularity=-0.3))
    assert text.startswith("Similar in title") and "; also" not in text


def test_without_contributions_the_fallback_order_is_used(gen, titles):
    reasons, text = _explain(gen, titles, RONIN)
    assert [r.source for r in reasons][:3] == ["ranker", "co_watch", "kg"]
    features = _features(gen, RONIN)
    assert reasons[1].weight == pytest.approx(features["knn"]) and reasons[2].weight == pytest.approx(features["kg"])
    assert text.startswith("Because you watched") and "; also shares the genre Crime and the tag 'heist'" in text


def test_catalogue_genres_stand_in_for_a_missing_graph(titles):
    gen = _generator()
    gen.graph = None
    reasons, text = _explain(gen, titles, RONIN, _contrib(kg=1.0))
    assert text.startswith(f"Shares the genre Crime with {titles[CASINO]} and {titles[HEAT]}")


def test_cold_start_says_what_it_is_based_on(gen, titles):
    reasons = cold_start_reasons(gen=gen, titles=titles, user=42, row=HEAT, known_user=False)
    reasons.append(Reason("rule:rec.cap", "cap 3 per primary_genre", None))
    text = explanation_text(reasons, cold_start=True)
    assert text == f"Cold start, based on popularity: the most watched Crime film ({int(gen.pop[HEAT])} viewers)"
    assert [r.source for r in reasons][:3] == ["cold_start", "popularity", "kg"]  # the KG hop: evidence only
    text = explanation_text(cold_start_reasons(gen=gen, titles=titles, user=42, row=CASINO, known_user=True),
                            cold_start=True)
    assert text == f"Cold start, based on popularity: the 2nd most watched Crime film ({int(gen.pop[CASINO])} viewers)"


def test_refitted_generator_is_not_explained_from_stale_lookups(titles):
    gen = _generator()
    _, before = _explain(gen, titles, RONIN, _contrib(co_watch=1.0))
    gen.seen[1] = np.array([CASINO])  # the user's history changed: the cached view must not be reused
    gen.knn = sparse.csr_matrix(gen.knn)  # and so did the kNN matrix
    _, after = _explain(gen, titles, RONIN, _contrib(co_watch=1.0))
    assert titles[HEAT] in before and titles[HEAT] not in after and titles[CASINO] in after


def test_co_watch_without_a_knn_neighbour_names_the_most_co_watched_titles(titles):
    gen = _generator()
    gen.knn = sparse.csr_matrix(gen.knn.shape, dtype=np.float32)  # only the factor models found Ronin
    reasons, text = _explain(gen, titles, RONIN, _contrib(co_watch=1.0))
    counts = gen.co_watchers(RONIN, [HEAT, CASINO])
    assert text == (f"Because you watched {titles[HEAT]} and {titles[CASINO]}, co-watched with it by "
                    f"{counts[0]} and {counts[1]} users")
    assert "kNN cosine" not in reasons[1].detail
