"""Batch scoring: top-K recommendations for many users, sharded, resumable, in-process or on Ray.

``score_users(model_dir, users, k=10, out="recs.parquet")`` splits the users (input order, duplicates
removed) into shards of ``shard_size``; each finished shard is written atomically to
``<out>.shards/shard-00001.parquet`` beside a ``manifest.json`` (users hash, k, shard size, model
fingerprint). A rerun with the same settings skips finished shards, so a killed job resumes without
losing or duplicating rows; a rerun with other settings is refused unless ``restart=True``. At the end
the shards are concatenated, in order, into ``out`` (.parquet, .csv or .jsonl) atomically.

Every input user is accounted for: malformed or duplicate ids go to ``<out>.rejects.csv``
(source,row,reason,raw), unknown users are scored as cold start (``cold_start`` = True).

The model is anything with ``recommend_frame(user_ids, k) -> DataFrame`` (:class:`Scorer`), built by a
loader ``Callable[[Path], Scorer]`` given as an import string ("module:function") so Ray workers can
import it and load the model once per worker. ``engine="ray"`` sends the pending shards to a pool of Ray
actors (core/batch_engine.py) on a local Ray instance (or $RAY_ADDRESS); the driver writes the same shard
files, so a job started on one engine resumes on the other. The sharding, resume, Ray and output
streaming are the core batch engine's; this module keeps the recommendation specifics.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from kgfusion.core import batch_engine as be
from kgfusion.core.batch_engine import BatchError, Engine, ShardStore, check_out_suffix, write_frames
from kgfusion.core.data import Reject, write_rejects
from kgfusion.core.errors import ConfigError, DataError, ModelNotFoundError
from kgfusion.core.textfile import brief, read_text, show_names

log = logging.getLogger(__name__)

DEFAULT_LOADER = "kgfusion.apps.recommend.recommender:load_recommender"
DEFAULT_SHARD_SIZE = 64
REC_COLUMNS = ("user_id", "rank", "item_id", "title", "score", "explanation", "evidence", "cold_start")
OUT_SUFFIXES = be.OUT_SUFFIXES
MANIFEST_VERSION = 1
# What a resume must match, and how a changed user list is reported.
_COMPARE = ("version", "users_sha256", "k", "shard_size", "model_fingerprint")
_PHRASES = {"users_sha256": "different user list"}
__all__ = ["REC_COLUMNS", "ScoringError", "ShardStore", "loader_ref", "model_fingerprint", "read_users",
           "score_users", "shard_users", "user_list", "load_scorer", "resolve_loader", "write_recs"]


@runtime_checkable
class Scorer(Protocol):
    """What batch scoring needs from a recommender."""

    def recommend_frame(self, user_ids: Sequence[int], k: int = 10) -> pd.DataFrame: ...


Loader = Callable[[Path], Scorer]


# A scoring run cannot start or continue (mismatched resume state, scorer broke its contract).
ScoringError = BatchError


# ------------------------------------------------------------------------------------------ loading
def resolve_loader(loader: str | Loader) -> Loader:
    """A loader callable from an import string "package.module:function" (or the callable itself)."""
    return be.resolve_callable(loader, "the default model code is apps/recommend/recommender.py")


def loader_ref(loader: str | Loader) -> str | Loader:
    """An import string for a module-level loader (what Ray ships to workers), else the callable."""
    return be.callable_ref(loader)


def load_scorer(model_dir: str | Path, loader: str | Loader = DEFAULT_LOADER) -> Scorer:
    """Load the model in ``model_dir`` with ``loader``; a missing directory is a clear error."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelNotFoundError(f"recommender model not found: {model_dir}; build it with "
                                 "`kgfusion recommend train` or pass --model DIR")
    scorer = resolve_loader(loader)(model_dir)
    if not isinstance(scorer, Scorer):
        raise ScoringError(f"loader {loader_ref(loader)!r} returned {type(scorer).__name__}, "
                           "which has no recommend_frame(user_ids, k)")
    return scorer


def model_fingerprint(model_dir: str | Path) -> str:
    """SHA-256 over the relative paths and contents of the files in ``model_dir`` (hidden files skipped)."""
    return be.dir_fingerprint(model_dir)


# -------------------------------------------------------------------------------------------- users
@dataclass
class UserList:
    """Accepted user ids (input order, unique) and the rejected input rows."""

    users: list[int]
    rejects: list[Reject] = field(default_factory=list)
    source: str = "<users>"


_ID_HEADERS = ("user_id", "userid", "user")


def _parse_id(text: str) -> int | None:
    text = text.strip()
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return None
        if not number.is_integer():
            return None
        value = int(number)
    return value if value >= 0 else None


def _csv_rows(reader, path: Path):
    """The reader's rows; a CSV the parser gives up on (a 20 MB field, a stray quote) is one clear DataError."""
    try:
        yield from reader
    except csv.Error as exc:
        raise DataError(f"{path}: CSV parse error at line {reader.line_num} ({exc}); give one user id per line "
                        "or a CSV with a user_id column") from exc


def read_users(path: str | Path) -> UserList:
    """User ids from a CSV with a ``user_id`` (or ``userId``) column, or a text file with one id per line.

    An optional header line ``user_id`` is allowed in the one-per-line form. Blank lines are ignored;
    ids that are not non-negative integers and repeated ids go to rejects with their file line number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"users file not found: {path}; pass --users all or a CSV/TXT file of user ids")
    text = read_text(path, "utf-8", hint="save the users file as UTF-8")  # binary / bad byte: one clear error
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    delimiter = "\t" if "\t" in first else ","
    header = [h.strip() for h in first.split(delimiter)]
    column = next((i for i, h in enumerate(header) if h.lower() in _ID_HEADERS), None)
    has_header = column is not None
    if column is None:
        if len(header) > 1 and _parse_id(header[0]) is None:
            raise DataError(f"{path}: line 1 has columns {show_names(header)} but no user_id column; "
                            "name the id column user_id or give one id per line")
        column = 0
    users, rejects, seen = [], [], {}
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header_skipped = not has_header
    for row in _csv_rows(reader, path):
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if not header_skipped:
            header_skipped = True
            continue
        raw = delimiter.join(row)[:200]
        if column >= len(row) or not row[column].strip():
            rejects.append(Reject(str(path), line, "user_id is empty", raw))
            continue
        uid = _parse_id(row[column])
        if uid is None:
            rejects.append(Reject(str(path), line, f"user_id {brief(row[column].strip())} is not a non-negative "
                                  "integer", raw))
        elif uid in seen:
            rejects.append(Reject(str(path), line, f"duplicate user_id {uid} (first at line {seen[uid]})", raw))
        else:
            seen[uid] = line
            users.append(uid)
    return UserList(users, rejects, str(path))


def user_list(ids: Sequence[Any], source: str = "<users>") -> UserList:
    """Validate in-memory ids like :func:`read_users` (row = 1-based position)."""
    users, rejects, seen = [], [], {}
    for row, value in enumerate(ids, start=1):
        uid = _parse_id(str(value)) if not isinstance(value, bool) else None
        if uid is None:
            rejects.append(Reject(source, row, f"user_id {value!r} is not a non-negative integer", str(value)))
        elif uid in seen:
            rejects.append(Reject(source, row, f"duplicate user_id {uid} (first at row {seen[uid]})", str(value)))
        else:
            seen[uid] = row
            users.append(uid)
    return UserList(users, rejects, source)


def shard_users(users: Sequence[int], shard_size: int) -> list[list[int]]:
    """Consecutive chunks of ``shard_size`` users (the last may be shorter); deterministic."""
    if shard_size < 1:
        raise ConfigError(f"shard_size={shard_size} must be >= 1")
    return [list(users[i:i + shard_size]) for i in range(0, len(users), shard_size)]


# ---------------------------------------------------------------------------------------- scoring
def normalise_recs(frame: pd.DataFrame) -> pd.DataFrame:
    """:data:`REC_COLUMNS` in order with plain numpy/object dtypes (Ray hands back Arrow-backed ones)."""
    frame = frame.loc[:, list(REC_COLUMNS)].copy()
    for col in ("user_id", "rank", "item_id"):
        frame[col] = frame[col].astype("int64")
    frame["score"] = frame["score"].astype("float64")
    frame["cold_start"] = frame["cold_start"].astype(bool)
    for col in ("title", "explanation"):
        frame[col] = frame[col].astype(str).astype(object)
    frame["evidence"] = frame["evidence"].map(lambda v: v if isinstance(v, str) else json.dumps(v, default=str))
    frame["evidence"] = frame["evidence"].astype(object)
    return frame.reset_index(drop=True)


def score_shard(scorer: Scorer, users: Sequence[int], k: int) -> pd.DataFrame:
    """``scorer.recommend_frame(users, k)`` checked and normalised to :data:`REC_COLUMNS` dtypes."""
    users = [int(u) for u in users]
    frame = scorer.recommend_frame(users, k=k)
    missing = [c for c in REC_COLUMNS if c not in frame.columns]
    if missing:
        raise ScoringError(f"recommend_frame returned no column(s) {missing} (got {list(frame.columns)}); "
                           "the scorer must return " + ", ".join(REC_COLUMNS))
    frame = normalise_recs(frame)
    got = set(frame["user_id"].tolist())
    lost = [u for u in users if u not in got]
    extra = sorted(got - set(users))
    if lost or extra:
        raise ScoringError(f"recommend_frame broke its contract: no rows for user(s) {lost[:10]}"
                           + (f", rows for unrequested user(s) {extra[:10]}" if extra else "")
                           + "; every requested user needs at least one row (cold start for unknown users)")
    if frame.duplicated(["user_id", "rank"]).any():
        raise ScoringError("recommend_frame returned duplicate (user_id, rank) rows")
    order = {u: i for i, u in enumerate(users)}
    frame["_order"] = frame["user_id"].map(order)
    return frame.sort_values(["_order", "rank"], kind="mergesort").drop(columns="_order").reset_index(drop=True)


def shard_worker(model_dir: str, loader: str | Loader, k: int) -> Callable[[list[int]], pd.DataFrame]:
    """The engine's worker: loads the model once (per Ray worker), then scores one shard of users per call."""
    scorer = load_scorer(model_dir, loader)
    return lambda users: score_shard(scorer, users, k)


def write_recs(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write recommendations atomically as Parquet, CSV or JSONL by the file suffix."""
    return write_frames(path, [frame])


# ------------------------------------------------------------------------------------------ driver
def score_users(
    model_dir: str | Path,
    users: str | Path | Sequence[int],
    *,
    k: int = 10,
    out: str | Path,
    engine: Engine = "local",
    shard_size: int = DEFAULT_SHARD_SIZE,
    loader: str | Loader = DEFAULT_LOADER,
    progress: bool = True,
    restart: bool = False,
    rejects_path: str | Path | None = None,
    keep_shards: bool = False,
    ray_concurrency: int = 2,
    ray_num_cpus: int = 2,
) -> dict[str, Any]:
    """Top-``k`` recommendations for ``users`` ("all" = the model's known users, a users file, or ids)
    written to ``out``; resumable by shard. Returns a summary dict (users, rows, shards_done,
    shards_skipped, seconds, users_per_s, scoring_seconds, rejects, cold_start_users, ...).
    """
    t0 = time.perf_counter()
    out, model_dir = Path(out), Path(model_dir)
    be.check_engine(engine)
    if k < 1:
        raise ConfigError(f"k={k} must be >= 1")
    check_out_suffix(out)
    shard_users([], shard_size)  # validates shard_size before any work
    if not model_dir.is_dir():
        raise ModelNotFoundError(f"recommender model not found: {model_dir}; build it with "
                                 "`kgfusion recommend train` or pass --model DIR")

    scorer: Scorer | None = None
    if isinstance(users, str) and users == "all":
        scorer = load_scorer(model_dir, loader)
        if not hasattr(scorer, "known_users"):
            raise ScoringError("--users all needs a recommender with known_users(); pass a users file instead")
        selection = user_list(list(scorer.known_users()), source="known_users()")
    elif isinstance(users, (str, Path)):
        selection = read_users(users)
    else:
        selection = user_list(list(users))

    rejects_file = Path(rejects_path) if rejects_path else out.with_name(out.name + ".rejects.csv")
    if selection.rejects:
        write_rejects(selection.rejects, rejects_file)
    elif rejects_path is None and rejects_file.exists():
        rejects_file.unlink()  # a stale file from an earlier run would claim rejects that no longer exist
    if not selection.users:
        raise DataError(f"{selection.source}: no valid user ids ({len(selection.rejects)} rejected"
                        + (f", see {rejects_file}" if selection.rejects else "") + ")")

    n_shards = -(-len(selection.users) // shard_size)
    manifest = {
        "version": MANIFEST_VERSION,
        "users": len(selection.users),
        "users_sha256": hashlib.sha256(",".join(map(str, selection.users)).encode()).hexdigest(),
        "k": k,
        "shard_size": shard_size,
        "shards": n_shards,
        "model_dir": str(model_dir.resolve()),
        "model_fingerprint": model_fingerprint(model_dir),
        "source": selection.source,
    }
    store = ShardStore(out, manifest, compare=_COMPARE, phrases=_PHRASES)
    store.open(restart)
    try:
        stats = be.run_shards(
            be.chunked(selection.users, shard_size),
            be.WorkerSpec(loader_ref(shard_worker), {"model_dir": str(model_dir), "loader": loader_ref(loader),
                                                     "k": k}),
            engine=engine, store=store,
            done=lambda i, s: store.is_done(i, "user_id", s, exact=False),
            local_fn=(lambda s: score_shard(scorer, s, k)) if scorer is not None else None,
            describe=lambda i, s: f"shard {i + 1} (users {s[0]}..{s[-1]})", error=ScoringError,
            progress=progress, total=len(selection.users), unit="user",
            ray_concurrency=ray_concurrency, ray_num_cpus=ray_num_cpus)
        check = _ShardCheck(set(selection.users))
        write_frames(out, map(check, store.frames(n_shards)), schema=store.schema(n_shards))
        if check.seen != check.wanted:
            raise ScoringError(f"{store.dir}: shards do not match the user list; rerun with --restart")
    finally:
        store.close()
    if not keep_shards:
        store.remove()
    seconds = time.perf_counter() - t0
    scored = stats.rows_scored
    return {
        "out": str(out), "engine": engine, "k": k, "shard_size": shard_size,
        "users": len(selection.users), "rows": check.rows, "cold_start_users": len(check.cold),
        "shards": n_shards, "shards_done": stats.shards_done, "shards_skipped": stats.shards_skipped,
        "users_scored": scored, "seconds": round(seconds, 3),
        "users_per_s": round(scored / seconds, 2) if scored and seconds > 0 else 0.0,
        "scoring_seconds": stats.scoring_seconds,
        "users_per_s_scoring": round(scored / stats.scoring_seconds, 2) if scored and stats.scoring_seconds > 0
        else 0.0,
        "rejects": len(selection.rejects), "rejects_path": str(rejects_file) if selection.rejects else None,
        "shards_dir": str(store.dir) if keep_shards else None,
    }


class _ShardCheck:
    """Counts rows and cold-start users while the shards stream out; a user in two shards is an error."""

    def __init__(self, wanted: set[int]) -> None:
        self.wanted, self.seen, self.cold, self.rows = wanted, set(), set(), 0

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        users = set(frame["user_id"].tolist())
        if users & self.seen or frame.duplicated(["user_id", "rank"]).any():
            raise ScoringError("shards hold duplicate (user_id, rank) rows; rerun with --restart")
        self.seen |= users
        self.cold |= set(frame.loc[frame["cold_start"].astype(bool), "user_id"].tolist())
        self.rows += len(frame)
        return frame
