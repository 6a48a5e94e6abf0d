"""MovieLens readers and the evaluation protocol.

Readers: ``read_ratings`` (userId,movieId,rating,timestamp) checks the columns up front and sends bad
rows (non-numeric ids, unparseable timestamps, ratings outside 0.5..5) to rejects with file/row/reason;
duplicate (user, item) pairs keep the latest rating and the dropped ones are reported as rejects.
``read_movies`` (movieId,title,genres) gives a genres list ('|'-separated; "(no genres listed)" -> [])
and the release year parsed from a trailing "(YYYY)" in the title (None when absent).

Protocol (``split_by_time``), implicit feedback: every rating, whatever its value, is an interaction.
Per user, ratings are ordered by (timestamp, movieId) — movieId breaks ties so the split is
deterministic — and the last frac * n of them (rounded half up), at least 1 and at most n - 1, form the
validation target; everything earlier is history. Users with a single rating keep it in history and
have no target (they are counted in ``SplitStats.single_rating_users``). Note: the shipped
ml-latest-small copy already holds only each user's first 80% of ratings (the rest is a kept-back
test set), so this target is a validation split carved from those 80%.
"""
from __future__ import annotations

import gzip
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kgfusion.core.data import Reject
from kgfusion.core.errors import DataError
from kgfusion.core.textfile import UTF8_HINT, brief, check_text, decoding_name, show_names

RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MOVIE_COLUMNS = ("movieId", "title", "genres")
MIN_RATING, MAX_RATING = 0.5, 5.0
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _read_csv(path: Path, required: tuple[str, ...], encoding: str = "utf-8") -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: file not found; pass the path to a MovieLens CSV file")
    check_text(path, encoding, hint=UTF8_HINT)  # binary data or a bad byte: say so, with the offset
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=decoding_name(encoding))
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty; the header row must be {','.join(required)}") from exc
    except (pd.errors.ParserError, UnicodeDecodeError,
            gzip.BadGzipFile, EOFError, zlib.error) as exc:  # the last three: a corrupt .csv.gz
        raise DataError(f"{path}: cannot parse as CSV ({exc}); fix the file format") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {show_names(list(frame.columns))}; "
            f"the header row must be {','.join(required)}"
        )
    return frame


def read_ratings(path: str | Path, encoding: str = "utf-8") -> tuple[pd.DataFrame, list[Reject]]:
    """Ratings as a frame (userId, movieId int64; rating float; timestamp int64 seconds) plus rejects.

    Rows are 1-based data rows (header excluded, so row 1 is line 2 of the file).
    """
    path = Path(path)
    raw = _read_csv(path, RATING_COLUMNS, encoding)
    rows = np.arange(1, len(raw) + 1)
    user = pd.to_numeric(raw["userId"].str.strip(), errors="coerce")
    item = pd.to_numeric(raw["movieId"].str.strip(), errors="coerce")
    rating = pd.to_numeric(raw["rating"].str.strip(), errors="coerce")
    stamp = pd.to_numeric(raw["timestamp"].str.strip(), errors="coerce")
    reasons = pd.Series("", index=raw.index, dtype=object)
    # Check order matters only for which reason is reported; the first failing check wins.
    checks = [
        (user.isna() | (user % 1 != 0), "userId is not an integer"),
        (item.isna() | (item % 1 != 0), "movieId is not an integer"),
        (stamp.isna() | (stamp % 1 != 0) | (stamp < 0), "timestamp is not integer epoch seconds"),
        (rating.isna(), "rating is not a number"),
        (~rating.between(MIN_RATING, MAX_RATING) & rating.notna(),
         f"rating outside {MIN_RATING}..{MAX_RATING}"),
    ]
    for bad, reason in checks:
        reasons[bad & (reasons == "")] = reason
    rejects = [
        Reject(str(path), int(rows[i]), reasons.iat[i], ",".join(raw.iloc[i].tolist())[:200])
        for i in np.flatnonzero((reasons != "").to_numpy())
    ]
    ok = (reasons == "").to_numpy()
    frame = pd.DataFrame({
        "userId": user[ok].astype("int64"),
        "movieId": item[ok].astype("int64"),
        "rating": rating[ok].astype("float64"),
        "timestamp": stamp[ok].astype("int64"),
        "_row": rows[ok],
    })
    # Keep the latest rating of a (user, item) pair; the later file row wins on equal timestamps.
    frame = frame.sort_values(["userId", "movieId", "timestamp", "_row"], kind="mergesort")
    dup = frame.duplicated(["userId", "movieId"], keep="last").to_numpy()
    for r, u, i in frame.loc[dup, ["_row", "userId", "movieId"]].itertuples(index=False):
        rejects.append(Reject(str(path), int(r), f"duplicate (userId={u}, movieId={i}): a later rating is kept"))
    frame = frame.loc[~dup].sort_values("_row", kind="mergesort").drop(columns="_row").reset_index(drop=True)
    rejects.sort(key=lambda rej: rej.row)
    if frame.empty:
        first = rejects[0].reason if rejects else "file has no data rows"
        raise DataError(f"{path}: no usable ratings ({len(rejects)} rejected); first reason: {first}")
    return frame, rejects


def read_movies(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Movies indexed by nothing special: movieId (int64), title, genres (list[str]), year (int or None).

    Rows with a non-integer movieId raise DataError naming the row (the catalogue must be clean), and so
    does a catalogue without a single movie.
    """
    path = Path(path)
    raw = _read_csv(path, MOVIE_COLUMNS, encoding)
    if raw.empty:
        raise DataError(f"{path}: no movies (the file has a header but no rows); one row per movie: "
                        f"{','.join(MOVIE_COLUMNS)}")
    ids = pd.to_numeric(raw["movieId"].str.strip(), errors="coerce")
    bad = ids.isna() | (ids % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise DataError(f"{path}: data row {row}: movieId {brief(raw['movieId'].iat[row - 1])} is not an integer; "
                        "fix or remove the row")

    def genres(text: str) -> list[str]:
        return [g for g in text.split("|") if g and g != "(no genres listed)"]

    def year(title: str) -> int | None:
        m = _YEAR.search(title)
        return int(m.group(1)) if m else None

    return pd.DataFrame({
        "movieId": ids.astype("int64"),
        "title": raw["title"].str.strip(),
        "genres": raw["genres"].map(genres),
        "year": pd.Series([year(t) for t in raw["title"]], dtype=object),
    })


@dataclass(frozen=True)
class SplitStats:
    users: int
    target_users: int
    single_rating_users: int
    history_rows: int
    target_rows: int


def target_size(n: int, frac: float) -> int:
    """Target ratings for a user with n ratings: round-half-up(frac * n), clipped to 1..n-1 (0 if n < 2)."""
    if n < 2:
        return 0
    return min(n - 1, max(1, math.floor(frac * n + 0.5)))


def split_by_time(ratings: pd.DataFrame, frac: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, the chronologically last ``frac`` of ratings -> target, the rest -> history.

    ``frac`` must be in (0, 1). Both frames keep the input columns, sorted by (userId, timestamp, movieId).
    """
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac={frac} must be strictly between 0 and 1")
    missing = [c for c in ("userId", "movieId", "timestamp") if c not in ratings.columns]
    if missing:
        raise DataError(f"ratings frame: missing column(s) {missing}; found {list(ratings.columns)}; "
                        "read it with read_ratings")
    ordered = ratings.sort_values(["userId", "timestamp", "movieId"], kind="mergesort").reset_index(drop=True)
    counts = ordered.groupby("userId", sort=False)["movieId"].transform("size").to_numpy()
    position = ordered.groupby("userId", sort=False).cumcount().to_numpy()
    n_target = np.array([target_size(int(n), frac) for n in counts])
    is_target = position >= counts - n_target
    return ordered.loc[~is_target].reset_index(drop=True), ordered.loc[is_target].reset_index(drop=True)


def split_stats(history: pd.DataFrame, target: pd.DataFrame) -> SplitStats:
    """Counts describing a split (users with one rating have history only)."""
    users = set(history["userId"]) | set(target["userId"])
    per_user = history.groupby("userId").size()
    target_users = set(target["userId"])
    single = sum(1 for u, n in per_user.items() if n == 1 and u not in target_users)
    return SplitStats(len(users), len(target_users), single, len(history), len(target))


def to_sets(frame: pd.DataFrame) -> dict[int, set[int]]:
    """user -> set of items in a ratings frame (e.g. the target, for the metrics)."""
    return {int(u): set(map(int, g)) for u, g in frame.groupby("userId")["movieId"]}
