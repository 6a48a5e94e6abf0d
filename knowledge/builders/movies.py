"""Movies graph from MovieLens (data/datasets/movielens_small: movies.csv, tags.csv, links.csv).

Movies link to genres and to normalised user tags (lowercase, single spaces); a tag node counts how
often it was applied (kgf:usageCount). IMDb/TMDB ids become kgf:xref "IMDB:tt0114709", "TMDB:862".
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS

from kgfusion.knowledge.builders import read_table, uri_part
from kgfusion.knowledge.graph import KnowledgeGraph
from kgfusion.knowledge.vocab import GENRE, KGF, KGFID, MOVIE, TAG

NO_GENRE = "(no genres listed)"
_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{4})?\)\s*$")
_ARTICLE = re.compile(r"^(.+), (The|A|An|Les|La|Le|L'|Il|El|Die|Der|Das|Los|Las|Un|Une|Una|Lo|I|O|Gli|De|Det|Den)$")
_ALT_TITLE = re.compile(r"^(.+?)\s+\((?:a\.k\.a\.\s*)?([^()]{4,})\)$")


def movie_uri(movie_id: str | int) -> URIRef:
    return KGFID[f"movie/{movie_id}"]


def normalize_tag(tag: str) -> str:
    """"  Highly   Quotable " -> "highly quotable"."""
    return " ".join(tag.lower().split())


def _front_article(title: str) -> str:
    """"American President, The" -> "The American President"."""
    m = _ARTICLE.match(title)
    if not m:
        return title
    sep = "" if m.group(2).endswith("'") else " "
    return f"{m.group(2)}{sep}{m.group(1)}"


def parse_title(title: str) -> tuple[str, int | None, list[str]]:
    """(label, year, aliases): "City of Lost Children, The (Cité des enfants perdus, La) (1995)" ->
    ("City of Lost Children, The (Cité des enfants perdus, La)", 1995,
     ["City of Lost Children, The", "The City of Lost Children", "La Cité des enfants perdus"])."""
    m = _YEAR.search(title)
    year = int(m.group(1)) if m else None
    label = _YEAR.sub("", title).strip() if m else title.strip()
    names: list[str] = [_front_article(label)]
    alt = _ALT_TITLE.match(label)
    if alt:
        names += [alt.group(1), _front_article(alt.group(1)), _front_article(alt.group(2).strip())]
    return label, year, [n for n in dict.fromkeys(names) if n and n != label]


def build_movies_graph(datasets_dir: str | Path) -> KnowledgeGraph:
    """Movies, genres and tags from ``<datasets_dir>/movielens_small``."""
    ml = Path(datasets_dir) / "movielens_small"
    kg = KnowledgeGraph()
    g = kg.graph
    rows = read_table(ml / "movies.csv", ("movieId", "title", "genres"))
    report = {"movie_rows": len(rows), "movie_rows_rejected": 0, "movies_without_year": 0, "movies_without_genre": 0}
    movies: set[str] = set()
    for row in rows:
        if not (row["movieId"].isdigit() and row["title"]) or row["movieId"] in movies:
            report["movie_rows_rejected"] += 1  # bad or duplicate id, or no title
            continue
        movies.add(row["movieId"])
        node = movie_uri(row["movieId"])
        label, year, aliases = parse_title(row["title"])
        g.add((node, RDF.type, MOVIE))
        g.add((node, RDFS.label, Literal(label)))
        for alias in aliases:
            g.add((node, SKOS.altLabel, Literal(alias)))
        if year is None:
            report["movies_without_year"] += 1
        else:
            g.add((node, KGF.year, Literal(year)))
        genres = [x.strip() for x in row["genres"].split("|") if x.strip() and x.strip() != NO_GENRE]
        if not genres:
            report["movies_without_genre"] += 1
        for name in genres:
            genre = KGFID[f"genre/{uri_part(name)}"]
            g.add((genre, RDF.type, GENRE))
            g.add((genre, RDFS.label, Literal(name)))
            g.add((node, KGF.hasGenre, genre))

    links_path = ml / "links.csv"
    report["xrefs"] = report["link_rows_unknown_movie"] = 0
    if links_path.is_file():
        for row in read_table(links_path, ("movieId", "imdbId", "tmdbId")):
            if row["movieId"] not in movies:
                report["link_rows_unknown_movie"] += 1
                continue
            node = movie_uri(row["movieId"])
            if row["imdbId"].isdigit():
                g.add((node, KGF.xref, Literal(f"IMDB:tt{row['imdbId'].zfill(7)}")))
                report["xrefs"] += 1
            if row["tmdbId"].isdigit():
                g.add((node, KGF.xref, Literal(f"TMDB:{int(row['tmdbId'])}")))
                report["xrefs"] += 1
    else:
        report["missing_links.csv"] = 1

    tags_path = ml / "tags.csv"
    usage: Counter[str] = Counter()
    report["tag_rows"] = report["tag_rows_rejected"] = 0
    if tags_path.is_file():
        rows = read_table(tags_path, ("userId", "movieId", "tag"))
        report["tag_rows"] = len(rows)
        for row in rows:
            tag = normalize_tag(row["tag"])
            if not tag or row["movieId"] not in movies:
                report["tag_rows_rejected"] += 1  # empty tag or unknown movie
                continue
            usage[tag] += 1
            g.add((movie_uri(row["movieId"]), KGF.hasTag, KGFID[f"tag/{uri_part(tag)}"]))
    else:
        report["missing_tags.csv"] = 1
    for tag, count in usage.items():
        node = KGFID[f"tag/{uri_part(tag)}"]
        g.add((node, RDF.type, TAG))
        g.add((node, RDFS.label, Literal(tag)))
        g.add((node, KGF.usageCount, Literal(count)))

    report["movies"] = len(movies)
    report["genres"] = len(set(g.subjects(RDF.type, GENRE)))
    report["tags"] = len(usage)
    kg.build_report = report
    return kg
