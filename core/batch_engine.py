"""One batch engine: run a row-wise scoring function over shards of a streaming input, in-process or on Ray.

    shards = chunked(rows, shard_size)                    # any iterator of rows, consumed lazily
    stats = run_shards(shards, WorkerSpec("pkg.mod:load", {"model_dir": "..."}), store=store,
                       engine="local" | "ray", on_result=handle)

The scoring function is built by a *worker spec*: a loader ("module:function" import string, or the
callable itself for the local engine) called with keyword arguments, returning ``fn(rows) -> result``.
Each Ray worker builds it once (one model load per worker); the local engine builds it once, lazily (a
fully resumed run loads no model).

With a :class:`ShardStore` (``<out>.shards/``: manifest.json + shard-00001.parquet ...), each finished
shard is written atomically; a rerun with the same manifest skips finished shards, so a killed job resumes
without losing or duplicating rows; other settings are refused unless ``restart``. :func:`write_frames`
then streams the shards, in order, into one output file (.parquet/.csv/.jsonl) written atomically.
Without a store, ``on_result`` receives every shard's result in input order in the driver, so a single
writer (e.g. one DuckDB connection) can commit shard by shard.

Memory stays bounded: the input is pulled one shard at a time, at most ``max_in_flight`` shards are
being scored or waiting to be handed over in order, and outputs are appended shard by shard.
Ray: a local instance with ``ray_num_cpus`` CPUs is started (and stopped) unless one is running or
``RAY_ADDRESS`` names a cluster. Ray Data's ``from_items`` needs the whole input as a list, so the Ray
engine drives a small pool of Ray actors itself (one shard per task) to keep the input streaming.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TypeVar

import pandas as pd

from kgfusion.core.errors import ConfigError, KgfusionError, missing_extra
from kgfusion.core.fileio import atomic_write, atomic_write_json

log = logging.getLogger(__name__)

Engine = Literal["local", "ray"]
ENGINES = ("local", "ray")
OUT_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")
ShardFn = Callable[[list[Any]], Any]
T = TypeVar("T")
# Files above this size enter a directory fingerprint by size and mtime instead of their content.
_HASH_LIMIT = 64 << 20


class BatchError(KgfusionError):
    """A batch run cannot start or continue (mismatched resume state, a shard failed, a worker broke)."""


# ------------------------------------------------------------------------------------------ inputs
def chunked(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` rows (the last may be shorter), pulled lazily from ``rows``."""
    check_shard_size(size)
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def check_shard_size(size: int) -> None:
    if not isinstance(size, int) or size < 1:
        raise ConfigError(f"shard_size={size} must be >= 1")


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"engine={engine!r}; choose 'local' or 'ray'")


# ----------------------------------------------------------------------------------------- workers
def resolve_callable(ref: str | Callable[..., Any], hint: str = "") -> Callable[..., Any]:
    """A callable from an import string "package.module:function" (or the callable itself)."""
    if callable(ref):
        return ref
    module_name, sep, attr = str(ref).partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"loader {ref!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"loader {ref!r}: cannot import {module_name!r} ({exc}); check the module path"
                          + (f" ({hint})" if hint else "")) from exc
    fn: Any = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise ConfigError(f"loader {ref!r}: {module_name} has no callable {attr!r}")
    return fn


def callable_ref(fn: str | Callable[..., Any]) -> str | Callable[..., Any]:
    """An import string for a module-level function (what Ray ships to workers), else the callable."""
    if isinstance(fn, str):
        return fn
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if module and module != "__main__" and "<" not in qualname:
        return f"{module}:{qualname}"
    return fn


@dataclass(frozen=True)
class WorkerSpec:
    """How a worker builds its shard function: ``resolve_callable(loader)(**kwargs) -> fn(rows)``.

    ``kwargs`` travel to Ray workers by pickle: keep them small (paths, settings), not models."""

    loader: str | Callable[..., ShardFn]
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def build(self) -> ShardFn:
        fn = resolve_callable(self.loader)(**dict(self.kwargs))
        if not callable(fn):
            raise BatchError(f"loader {callable_ref(self.loader)!r} returned {type(fn).__name__}, not a "
                             "function of a list of rows")
        return fn


def dir_fingerprint(root: str | Path) -> str:
    """SHA-256 over the relative paths and contents of the files under ``root`` (hidden files skipped)."""
    root = Path(root)
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


# -------------------------------------------------------------------------------------- shard store
class ShardStore:
    """``<out>.shards/``: manifest.json, shard-00001.parquet ..., and a lock against concurrent runs.

    ``compare``: the manifest keys a resume must match (default: all); ``phrases`` names how a changed
    key is reported instead of "old -> new" (e.g. {"users_sha256": "different user list"}).
    """

    def __init__(self, out: str | Path, manifest: dict[str, Any], *, compare: Sequence[str] | None = None,
                 phrases: Mapping[str, str] | None = None) -> None:
        out = Path(out)
        self.dir = out.with_name(out.name + ".shards")
        self.manifest = manifest
        self.compare = tuple(compare) if compare is not None else tuple(sorted(manifest))
        self.phrases = dict(phrases or {})
        self._lock: io.TextIOWrapper | None = None

    def path(self, index: int) -> Path:
        return self.dir / f"shard-{index + 1:05d}.parquet"

    def open(self, restart: bool = False) -> None:
        """Create or check the directory; ``restart`` discards earlier shards."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._acquire()
        try:
            self._check(restart)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ShardStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, restart: bool) -> None:
        mpath = self.dir / "manifest.json"
        if mpath.exists():
            try:
                old = json.loads(mpath.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = {}
            diff = [key for key in self.compare if old.get(key) != self.manifest.get(key)]
            if diff and not restart:
                shards = len(list(self.dir.glob("shard-*.parquet")))
                changes = [f"{key} {old.get(key)!r} -> {self.manifest.get(key)!r}" for key in diff
                           if key not in self.phrases]
                changes += [self.phrases[key] for key in diff if key in self.phrases]
                raise BatchError(
                    f"{mpath}: an unfinished run with different settings ({', '.join(diff)}: "
                    + "; ".join(changes) + f") holds {shards} finished shard(s); rerun with the same settings "
                    "to resume, pass --restart to discard them, or choose another --out")
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
            raise BatchError(f"another run is writing {self.dir} (lock {self.dir / '.lock'}); "
                             "wait for it to finish or choose another --out") from exc
        self._lock = fh

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def is_done(self, index: int, column: str, keys: Sequence[Any], *, exact: bool = True) -> bool:
        """True when the shard file exists, reads, and its ``column`` holds ``keys`` (in order when
        ``exact``; as a set otherwise, for shards with several rows per key)."""
        path = self.path(index)
        if not path.is_file():
            return False
        try:
            got = pd.read_parquet(path, columns=[column])[column].tolist()
        except Exception:  # a truncated/corrupt file is rescored, not trusted
            log.warning("shard %s is unreadable; scoring it again", path)
            return False
        return got == list(keys) if exact else set(got) == set(keys)

    def write(self, index: int, frame: pd.DataFrame) -> None:
        atomic_write(self.path(index), lambda p: frame.to_parquet(p, index=False))

    def read(self, index: int) -> pd.DataFrame:
        return pd.read_parquet(self.path(index))

    def count(self) -> int:
        """Consecutive shard files from shard 1 (what a finished run left)."""
        n = 0
        while self.path(n).is_file():
            n += 1
        return n

    def frames(self, count: int) -> Iterator[pd.DataFrame]:
        """Shards 1..count, one at a time."""
        for i in range(count):
            yield self.read(i)

    def schema(self, count: int):
        """The Arrow schema of shards 1..count unified (a column that is all null in one shard takes its
        type from the others), with the first shard's pandas metadata."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schemas = [pq.read_schema(self.path(i)) for i in range(count)]
        unified = pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
        return unified.with_metadata(schemas[0].metadata) if schemas else unified

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------------------- outputs
def check_out_suffix(path: str | Path, flag: str = "--out") -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise ConfigError(f"{flag} {path}: unsupported suffix {suffix!r}; use one of {', '.join(OUT_SUFFIXES)}")
    return suffix


def write_frames(path: str | Path, frames: Iterable[pd.DataFrame], *, schema=None, date_format: str | None = None,
                 fmt: Literal["parquet", "csv", "jsonl"] | None = None) -> Path:
    """Append ``frames`` one by one to ``path`` (.parquet/.csv/.jsonl by suffix, or ``fmt``), atomically.

    The result equals writing their concatenation at once (pandas' own writers, shard by shard).
    Parquet: ``schema`` (e.g. :meth:`ShardStore.schema`) fixes the column types; default: the first frame's.
    """
    suffix = "." + fmt if fmt else check_out_suffix(path)

    def write(tmp: Path) -> None:
        if suffix == ".parquet":
            _write_parquet(tmp, frames, schema)
            return
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            first, empty = True, None
            for frame in frames:
                if suffix == ".csv":
                    frame.to_csv(fh, index=False, header=first)
                elif len(frame):
                    kw = {"date_format": date_format} if date_format else {}
                    fh.write(frame.to_json(orient="records", lines=True, force_ascii=False, **kw))
                elif empty is None:
                    empty = frame
                first = False
            if suffix != ".csv" and fh.tell() == 0 and empty is not None:  # no rows: what pandas writes
                fh.write(empty.to_json(orient="records", lines=True, force_ascii=False))

    return atomic_write(path, write)


def _write_parquet(tmp: Path, frames: Iterable[pd.DataFrame], schema) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if schema is None:
                schema = table.schema
            table = table.select(schema.names).cast(schema) if table.schema != schema else table
            if writer is None:
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table)
        if writer is None:  # no frame at all: an empty file with the schema (or none)
            pq.write_table(pa.table({}) if schema is None else schema.empty_table(), tmp)
    finally:
        if writer is not None:
            writer.close()


# ------------------------------------------------------------------------------------------ running
@dataclass
class RunStats:
    """What a run did: shards seen / scored / resumed, rows scored, seconds since the model was ready."""

    engine: str = "local"
    shards: int = 0
    shards_done: int = 0
    shards_skipped: int = 0
    rows: int = 0
    rows_scored: int = 0
    scoring_seconds: float = 0.0
    seconds: float = 0.0


def run_shards(
    shards: Iterable[Sequence[Any]],
    worker: WorkerSpec,
    *,
    engine: Engine = "local",
    store: ShardStore | None = None,
    done: Callable[[int, Sequence[Any]], bool] | None = None,
    on_result: Callable[[int, Sequence[Any], Any], None] | None = None,
    local_fn: ShardFn | None = None,
    describe: Callable[[int, Sequence[Any]], str] | None = None,
    error: type[KgfusionError] = BatchError,
    resume_hint: str = "",
    progress: bool = False,
    total: int | None = None,
    desc: str = "score",
    unit: str = "row",
    ray_concurrency: int = 2,
    ray_num_cpus: int = 2,
    max_in_flight: int | None = None,
) -> RunStats:
    """Score every shard of ``shards`` (an iterator of row lists, pulled lazily) with ``worker``.

    ``done(i, rows)``: True for a shard a previous run finished (skipped; ``on_result`` gets None as its
    result). With ``store``, each new result (a DataFrame) is written to it. ``on_result(i, rows, result)``
    runs in the driver in shard order. ``local_fn``: an already built shard function for the local engine.
    A failing shard raises ``error`` naming ``describe(i, rows)`` (default "shard N") and that finished
    shards are kept (``resume_hint``, default: the store directory).
    """
    check_engine(engine)
    t0 = time.perf_counter()
    stats = RunStats(engine=engine)
    describe = describe or (lambda i, rows: f"shard {i + 1}")
    hint = resume_hint or (f"finished shards are kept in {store.dir}; rerun to resume" if store
                           else "rerun to resume")
    from tqdm.auto import tqdm

    bar = tqdm(total=total, disable=not progress, desc=desc, unit=unit)
    clock = {"ready": None}

    def ready() -> None:
        if clock["ready"] is None:
            clock["ready"] = time.perf_counter()

    def tagged() -> Iterator[tuple[int, Sequence[Any], bool]]:
        for i, rows in enumerate(shards):
            stats.shards += 1
            stats.rows += len(rows)
            skip = bool(done and done(i, rows))
            if skip:
                stats.shards_skipped += 1
                bar.update(len(rows))
            yield i, rows, skip

    def finish(i: int, rows: Sequence[Any], result: Any, skipped: bool) -> None:
        if not skipped:
            if store is not None:
                store.write(i, result)
            stats.shards_done += 1
            stats.rows_scored += len(rows)
            bar.update(len(rows))
        if on_result is not None:
            on_result(i, rows, None if skipped else result)

    try:
        if engine == "local":
            fn = local_fn
            for i, rows, skipped in tagged():
                result = None
                if not skipped:
                    if fn is None:
                        fn = worker.build()
                    ready()
                    try:
                        result = fn(list(rows))
                    except KgfusionError:
                        raise
                    except Exception as exc:  # a model bug: keep finished shards, name the shard
                        raise error(f"scoring {describe(i, rows)} failed: {exc!r}; {hint}") from exc
                finish(i, rows, result, skipped)
        else:
            _run_ray(tagged(), worker, finish, ready, describe, error, hint, ray_concurrency, ray_num_cpus,
                     max_in_flight)
    finally:
        bar.close()
    end = time.perf_counter()
    stats.scoring_seconds = round(end - clock["ready"], 3) if clock["ready"] is not None else 0.0
    stats.seconds = round(end - t0, 3)
    return stats


# --------------------------------------------------------------------------------------------- Ray
class _ShardWorker:
    """A Ray actor: builds the shard function once (one model load per worker), then scores shards."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.fn = spec.build()

    def run(self, rows: list[Any]) -> Any:
        return self.fn(rows)


def worker_pythonpath() -> str:
    """sys.path entries outside the interpreter's own (project roots, test dirs) for Ray workers."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    keep: list[str] = []
    for entry in sys.path:
        real = os.path.realpath(entry or os.getcwd())
        if os.path.isdir(real) and not any(real.startswith(p) for p in prefixes) and real not in keep:
            keep.append(real)
    return os.pathsep.join(keep + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def ray_runtime_env() -> dict[str, Any]:
    """Workers import what the driver imports and see its KGFUSION_* settings (data dir, registry ...)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("KGFUSION_")}
    return {"env_vars": {"PYTHONPATH": worker_pythonpath(), **env}}


def start_ray(num_cpus: int) -> bool:
    """Connect to $RAY_ADDRESS or start a local Ray with ``num_cpus``; False when Ray was already up."""
    try:
        import ray
    except ImportError as exc:
        raise missing_extra("ray", "distributed") from exc
    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):  # an existing cluster: its size is its own, so no num_cpus
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False, logging_level=logging.WARNING,
                 runtime_env=ray_runtime_env())
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 runtime_env=ray_runtime_env())
    return True


def _unwrap(exc: BaseException) -> BaseException:
    """The user-level error inside Ray's wrappers (task error -> cause, actor died -> its init error)."""
    for _ in range(5):
        cause = getattr(exc, "cause", None)
        if not isinstance(cause, BaseException):  # ActorDiedError carries the init's task error in args
            cause = next((a for a in exc.args if isinstance(a, BaseException)), None)
        if cause is None or cause is exc:
            break
        exc = cause
    return exc


def _run_ray(tagged: Iterator[tuple[int, Sequence[Any], bool]], worker: WorkerSpec,
             finish: Callable[[int, Sequence[Any], Any, bool], None], ready: Callable[[], None],
             describe: Callable[[int, Sequence[Any]], str], error: type[KgfusionError], hint: str,
             concurrency: int, num_cpus: int, max_in_flight: int | None) -> None:
    spec = WorkerSpec(callable_ref(worker.loader), dict(worker.kwargs))
    size = max(1, concurrency)
    limit = max(size, max_in_flight or 2 * size)  # shards being scored or waiting for their turn, at most
    ray: Any = None
    started = False
    actors: list[Any] = []
    idle: list[Any] = []
    running: dict[Any, tuple[int, Sequence[Any], Any]] = {}  # ref -> (index, rows, actor)
    waiting: dict[int, tuple[Sequence[Any], Any, bool]] = {}  # finished, not yet handed over in order
    held: tuple[int, Sequence[Any]] | None = None  # pulled from the input, waiting for a free actor
    next_out, exhausted = 0, False
    try:
        while True:
            while len(running) + len(waiting) + (held is not None) < limit or held is not None:
                if held is None:
                    item = next(tagged, None)
                    if item is None:
                        exhausted = True
                        break
                    i, rows, skipped = item
                    if skipped:
                        waiting[i] = (rows, None, True)
                        continue
                    held = (i, rows)
                if ray is None:  # Ray starts on the first shard to score: a fully resumed run starts none
                    started = start_ray(num_cpus)
                    import ray as _ray

                    ray = _ray
                    actor_cls = ray.remote(num_cpus=1)(_ShardWorker)
                    ready()
                if not idle and len(actors) < size:
                    actors.append(actor_cls.remote(spec))
                    idle.append(actors[-1])
                if not idle:
                    break
                actor = idle.pop()
                running[actor.run.remote(list(held[1]))] = (held[0], held[1], actor)
                held = None
            while next_out in waiting:  # hand over in input order
                rows, result, skipped = waiting.pop(next_out)
                finish(next_out, rows, result, skipped)
                next_out += 1
            if not running:
                if exhausted and held is None:
                    break
                continue
            (ref,), _ = ray.wait(list(running), num_returns=1)
            i, rows, actor = running.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:
                raise _ray_error(exc, describe(i, rows), error, hint) from exc
            waiting[i] = (rows, result, False)
            idle.append(actor)
    finally:
        for actor in actors:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor)
        if started:
            ray.shutdown()


def _ray_error(exc: BaseException, what: str, error: type[KgfusionError], hint: str) -> KgfusionError:
    cause = _unwrap(exc)
    if isinstance(cause, KgfusionError):
        try:
            return type(cause)(str(cause))
        except TypeError:  # an error class with another signature
            return error(str(cause))
    return error(f"scoring {what} on Ray failed: {cause!r}; {hint}")
