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
import it and load the model once per worker. ``engine="ray"`` maps the pending shards through Ray Data
``map_batches`` (one batch = one shard) on a local Ray instance; the driver writes the same shard files,
so a job started on one engine resumes on the other.
"""
from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import pandas as pd

from kgfusion.core.data import Reject, write_rejects
from kgfusion.core.errors import ConfigError, DataError, KgfusionError, ModelNotFoundError, missing_extra
from kgfusion.core.fileio import atomic_write, atomic_write_json
from kgfusion.core.textfile import brief, read_text, show_names

log = logging.getLogger(__name__)

DEFAULT_LOADER = "kgfusion.apps.recommend.recommender:load_recommender"
DEFAULT_SHARD_SIZE = 64
REC_COLUMNS = ("user_id", "rank", "item_id", "title", "score", "explanation", "evidence", "cold_start")
OUT_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")
MANIFEST_VERSION = 1
# Files above this size enter the model fingerprint by size and mtime instead of their content.
_HASH_LIMIT = 64 << 20

Engine = Literal["local", "ray"]


@runtime_checkable
class Scorer(Protocol):
    """What batch scoring needs from a recommender."""

    def recommend_frame(self, user_ids: Sequence[int], k: int = 10) -> pd.DataFrame: ...


Loader = Callable[[Path], Scorer]


class ScoringError(KgfusionError):
    """A scoring run cannot start or continue (mismatched resume state, scorer broke its contract)."""


# ------------------------------------------------------------------------------------------ loading
def resolve_loader(loader: str | Loader) -> Loader:
    """A loader callable from an import string "package.module:function" (or the callable itself)."""
    if callable(loader):
        return loader
    module_name, sep, attr = str(loader).partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"loader {loader!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"loader {loader!r}: cannot import {module_name!r} ({exc}); "
                          "check the module path (the default model code is apps/recommend/recommender.py)") from exc
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise ConfigError(f"loader {loader!r}: {module_name} has no callable {attr!r}")
    return fn


def loader_ref(loader: str | Loader) -> str | Loader:
    """An import string for a module-level loader (what Ray ships to workers), else the callable."""
    if isinstance(loader, str):
        return loader
    module, qualname = getattr(loader, "__module__", None), getattr(loader, "__qualname__", "")
    if module and module != "__main__" and "<" not in qualname:
        return f"{module}:{qualname}"
    return loader


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
    root = Path(model_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        digest.update(str(rel.as_posix()).encode() + b"\0")
        stat = path.stat()
        if stat.st_size > _HASH_LIMIT:
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        else:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


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


class _RayShardScorer:
    """Ray Data actor: loads the model once, then scores one shard per batch."""

    def __init__(self, model_dir: str, loader: str | Loader, k: int) -> None:
        self.scorer = load_scorer(model_dir, loader)
        self.k = k

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        frames = []
        for shard, users in zip(batch["shard"], batch["users"], strict=True):
            frame = score_shard(self.scorer, [int(u) for u in users], self.k)
            frames.append(frame.assign(_shard=int(shard), _shard_rows=len(frame)))
        return pd.concat(frames, ignore_index=True)


def _worker_pythonpath() -> str:
    """sys.path entries outside the interpreter's own (project roots, test dirs) for the Ray workers."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    keep = []
    for entry in sys.path:
        real = os.path.realpath(entry or os.getcwd())
        if os.path.isdir(real) and not any(real.startswith(p) for p in prefixes) and real not in keep:
            keep.append(real)
    return os.pathsep.join(keep + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def _ray_shards(pending: list[tuple[int, list[int]]], model_dir: Path, k: int, loader: str | Loader,
                concurrency: int, num_cpus: int, on_ready: Callable[[], None] = lambda: None,
                ) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield (shard index, frame) as Ray finishes them; starts and stops a local Ray if none is running.

    ``on_ready`` is called once Ray is up (so callers can time scoring without the cluster start).
    """
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise missing_extra("ray", "distributed") from exc
    started = not ray.is_initialized()
    if started:
        runtime_env = {"env_vars": {"PYTHONPATH": _worker_pythonpath()}}
        if os.environ.get("RAY_ADDRESS"):  # an existing cluster: its size is its own, so no num_cpus
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False, logging_level=logging.WARNING,
                     runtime_env=runtime_env)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, runtime_env=runtime_env)
    on_ready()
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        items = [{"shard": i, "users": users} for i, users in pending]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        # One batch = one shard, so a shard is scored by exactly one actor and written once.
        out = ds.map_batches(
            _RayShardScorer, fn_constructor_kwargs={"model_dir": str(model_dir), "loader": loader, "k": k},
            batch_size=1, batch_format="pandas", num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=max(1, min(concurrency, len(items)))),
        )
        parts: dict[int, list[pd.DataFrame]] = {}
        for block in out.iter_batches(batch_size=None, batch_format="pandas"):
            # Output blocks may split or merge shards; a shard is complete when all its rows arrived.
            for shard, part in block.groupby("_shard", sort=False):
                parts.setdefault(int(shard), []).append(part)
                got = parts[int(shard)]
                if sum(len(p) for p in got) == int(part["_shard_rows"].iat[0]):
                    frame = pd.concat(parts.pop(int(shard)), ignore_index=True)
                    yield int(shard), normalise_recs(frame)
    except Exception as exc:  # Ray wraps worker errors in its own types
        cause = getattr(exc, "cause", None)
        if isinstance(cause, KgfusionError):
            raise type(cause)(str(cause)) from exc
        if isinstance(exc, KgfusionError):
            raise
        why = cause if cause is not None else exc
        raise ScoringError(f"Ray scoring failed: {why!r}. Finished shards are kept; rerun to resume.") from exc
    finally:
        if started:
            ray.shutdown()


# -------------------------------------------------------------------------------------- shard store
class ShardStore:
    """``<out>.shards/``: manifest.json, shard-00001.parquet ..., and a lock against concurrent runs."""

    def __init__(self, out: Path, manifest: dict[str, Any]) -> None:
        self.dir = out.with_name(out.name + ".shards")
        self.manifest = manifest
        self._lock: io.TextIOWrapper | None = None

    def path(self, index: int) -> Path:
        return self.dir / f"shard-{index + 1:05d}.parquet"

    def open(self, restart: bool) -> None:
        """Create or check the directory; ``restart`` discards earlier shards."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._acquire()
        try:
            self._check(restart)
        except BaseException:
            self.close()
            raise

    def _check(self, restart: bool) -> None:
        mpath = self.dir / "manifest.json"
        if mpath.exists():
            try:
                old = json.loads(mpath.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = {}
            diff = [key for key in ("version", "users_sha256", "k", "shard_size", "model_fingerprint")
                    if old.get(key) != self.manifest.get(key)]
            if diff and not restart:
                shards = len(list(self.dir.glob("shard-*.parquet")))
                raise ScoringError(
                    f"{mpath}: an unfinished run with different settings ({', '.join(diff)}: "
                    + "; ".join(f"{key} {old.get(key)!r} -> {self.manifest.get(key)!r}" for key in diff
                                if key != "users_sha256")
                    + ("; different user list" if "users_sha256" in diff else "")
                    + f") holds {shards} finished shard(s); rerun with the same settings to resume, "
                    "pass --restart to discard them, or choose another --out")
            if restart or diff:
                self._clear()
        elif restart:
            self._clear()
        for tmp in self.dir.glob(".*.tmp"):  # left by a killed run mid-write
            tmp.unlink(missing_ok=True)
        atomic_write_json(mpath, self.manifest)

    def _clear(self) -> None:
        for path in self.dir.glob("shard-*.parquet"):
            path.unlink()

    def _acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process lock
            return
        fh = open(self.dir / ".lock", "w")  # noqa: SIM115 - held open for the run
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.close()
            raise ScoringError(f"another run is writing {self.dir} (lock {self.dir / '.lock'}); "
                               "wait for it to finish or choose another --out") from exc
        self._lock = fh

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def is_done(self, index: int, users: Sequence[int]) -> bool:
        """True when the shard file exists, reads, and holds exactly these users."""
        path = self.path(index)
        if not path.is_file():
            return False
        try:
            got = pd.read_parquet(path, columns=["user_id"])["user_id"]
        except Exception:  # a truncated/corrupt file is rescored, not trusted
            log.warning("shard %s is unreadable; scoring it again", path)
            return False
        return set(got.tolist()) == set(users)

    def write(self, index: int, frame: pd.DataFrame) -> None:
        atomic_write(self.path(index), lambda p: frame.to_parquet(p, index=False))

    def read(self, index: int) -> pd.DataFrame:
        return pd.read_parquet(self.path(index))

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def write_recs(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write recommendations atomically as Parquet, CSV or JSONL by the file suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return atomic_write(path, lambda p: frame.to_parquet(p, index=False))
    if suffix == ".csv":
        return atomic_write(path, lambda p: frame.to_csv(p, index=False))
    if suffix in (".jsonl", ".ndjson"):
        return atomic_write(path, lambda p: frame.to_json(p, orient="records", lines=True, force_ascii=False))
    raise ConfigError(f"--out {path}: unsupported suffix {suffix!r}; use one of {', '.join(OUT_SUFFIXES)}")


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="score", unit="user")


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
    if engine not in ("local", "ray"):
        raise ConfigError(f"engine={engine!r}; choose 'local' or 'ray'")
    if k < 1:
        raise ConfigError(f"k={k} must be >= 1")
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise ConfigError(f"--out {out}: unsupported suffix {out.suffix!r}; use one of {', '.join(OUT_SUFFIXES)}")
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

    shards = shard_users(selection.users, shard_size)
    manifest = {
        "version": MANIFEST_VERSION,
        "users": len(selection.users),
        "users_sha256": hashlib.sha256(",".join(map(str, selection.users)).encode()).hexdigest(),
        "k": k,
        "shard_size": shard_size,
        "shards": len(shards),
        "model_dir": str(model_dir.resolve()),
        "model_fingerprint": model_fingerprint(model_dir),
        "source": selection.source,
    }
    store = ShardStore(out, manifest)
    store.open(restart)
    try:
        pending = [(i, s) for i, s in enumerate(shards) if not store.is_done(i, s)]
        skipped = len(shards) - len(pending)
        bar = _progress(sum(len(s) for _, s in pending), progress)
        clock = {"start": time.perf_counter()}  # reset once the model (local) or Ray is ready

        def ready() -> None:
            clock["start"] = time.perf_counter()

        try:
            if engine == "local" and pending:
                scorer = scorer or load_scorer(model_dir, loader)
                ready()
                for i, s in pending:
                    try:
                        frame = score_shard(scorer, s, k)
                    except KgfusionError:
                        raise
                    except Exception as exc:  # a model bug: keep finished shards, name the shard
                        raise ScoringError(f"scoring shard {i + 1} (users {s[0]}..{s[-1]}) failed: {exc!r}; "
                                           f"finished shards are kept in {store.dir}; rerun to resume") from exc
                    store.write(i, frame)
                    bar.update(len(s))
            elif pending:
                for i, frame in _ray_shards(pending, model_dir, k, loader_ref(loader), ray_concurrency, ray_num_cpus,
                                            on_ready=ready):
                    store.write(i, frame)
                    bar.update(len(shards[i]))
        finally:
            bar.close()
        scoring_seconds = time.perf_counter() - clock["start"]
        final = pd.concat([store.read(i) for i in range(len(shards))], ignore_index=True)
        if final.duplicated(["user_id", "rank"]).any() or set(final["user_id"]) != set(selection.users):
            raise ScoringError(f"{store.dir}: shards do not match the user list; rerun with --restart")
        write_recs(final, out)
    finally:
        store.close()
    if not keep_shards:
        store.remove()
    seconds = time.perf_counter() - t0
    scored = sum(len(s) for _, s in pending)
    cold = final.loc[final["cold_start"], "user_id"].nunique()
    return {
        "out": str(out), "engine": engine, "k": k, "shard_size": shard_size,
        "users": len(selection.users), "rows": len(final), "cold_start_users": int(cold),
        "shards": len(shards), "shards_done": len(pending), "shards_skipped": skipped,
        "users_scored": scored, "seconds": round(seconds, 3),
        "users_per_s": round(scored / seconds, 2) if scored and seconds > 0 else 0.0,
        "scoring_seconds": round(scoring_seconds, 3),
        "users_per_s_scoring": round(scored / scoring_seconds, 2) if scored and scoring_seconds > 0 else 0.0,
        "rejects": len(selection.rejects), "rejects_path": str(rejects_file) if selection.rejects else None,
        "shards_dir": str(store.dir) if keep_shards else None,
    }
