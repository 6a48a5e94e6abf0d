"""Synthetic MovieLens-shaped data for the recommend tests: user u mostly watches genre u % 4."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from kgfusion.apps.recommend.candidates import ItemGraph
from kgfusion.apps.recommend.data import read_movies, read_ratings
from kgfusion.apps.recommend.item_text import embed_items, item_texts
from kgfusion.apps.recommend.recommender import catalogue
from tests.mocks import KeywordEncoder

GENRES = ["Action", "Comedy", "Drama", "Horror"]
WORDS = {"Action": "explosion", "Comedy": "laugh", "Drama": "tears", "Horror": "ghost"}


def write_dataset(root: Path, n_items: int = 40, n_users: int = 24, per_user: int = 12, seed: int = 0) -> Path:
    """<root>/movielens_small/{movies,ratings,tags}.csv: user u mostly watches genre u % 4."""
    rng = random.Random(seed)
    ml = root / "movielens_small"
    ml.mkdir(parents=True, exist_ok=True)
    movies = []
    for i in range(1, n_items + 1):
        g = GENRES[i % 4]
        extra = "|" + GENRES[(i + 1) % 4] if i % 5 == 0 else ""
        genres = "(no genres listed)" if i == n_items else g + extra
        movies.append(f"{i},{WORDS[g]} film {i} ({1990 + i % 25}),{genres}")
    (ml / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(movies) + "\n", encoding="utf-8")
    rows = []
    for u in range(1, n_users + 1):
        liked = [i for i in range(1, n_items) if i % 4 == u % 4]
        other = [i for i in range(1, n_items) if i % 4 != u % 4]
        picks = rng.sample(liked, min(len(liked), per_user - 3)) + rng.sample(other, 3)
        rng.shuffle(picks)
        for t, item in enumerate(picks):
            rows.append(f"{u},{item},{rng.choice([3.0, 4.0, 5.0])},{1_000_000 + u * 10 + t * 1000}")
    (ml / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n", encoding="utf-8")
    tags = [f"1,{i},{WORDS[GENRES[i % 4]]} classic,1000000" for i in range(1, n_items, 3)]
    (ml / "tags.csv").write_text("userId,movieId,tag,timestamp\n" + "\n".join(tags) + "\n", encoding="utf-8")
    return ml


def make_kg(root: Path, out: Path):
    from kgfusion.knowledge.builders.movies import build_movies_graph

    kg = build_movies_graph(root)
    kg.save(out)
    return kg


def keyword_encoder() -> KeywordEncoder:
    return KeywordEncoder({w: j for j, w in enumerate(WORDS.values())} | {"classic": 4})


def synthetic_data(root: Path) -> dict[str, Any]:
    """Dataset files, movies KG, ratings, catalogue, item graph and keyword embeddings under ``root``."""
    ml = write_dataset(root)
    kg = make_kg(root, root / "movies.ttl")
    ratings, _ = read_ratings(ml / "ratings.csv")
    items = catalogue(read_movies(ml / "movies.csv"))
    graph = ItemGraph.from_kg(kg, items["item_id"].tolist())
    emb = embed_items(keyword_encoder(), item_texts(items))
    return {"root": root, "ml": ml, "kg": kg, "kg_path": root / "movies.ttl", "ratings": ratings, "items": items,
            "graph": graph, "emb": emb}
