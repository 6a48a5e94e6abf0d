"""core.batch_engine: streaming shards, order, resume, refused settings, atomic outputs, kill-and-resume
(an exception after N shards on both engines, and a SIGKILLed child process)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from kgfusion.core import batch_engine as be
from kgfusion.core.errors import ConfigError, DataError

WORKER = "tests.core.test_batch_engine:square_worker"
REPO = Path(__file__).resolve().parents[2]


def square_worker(fail_marker: str = "", fail_at: int = -1, delay: float = 0.0):
    """A row-wise scorer: x -> x*x; raises on row ``fail_at`` while ``fail_marker`` exists (a "kill")."""
    def score(rows: list[int]) -> pd.DataFrame:
        if fail_at in rows and fail_marker and Path(fail_marker).exists():
            raise RuntimeError(f"worker died at row {fail_at}")
        time.sleep(delay)
        return pd.DataFrame({"x": rows, "y": [r * r for r in rows], "pid": os.getpid(),
                             "tag": [None if r % 2 else f"t{r}" for r in rows]})
    return score


class Counting:
    """An input iterator that records how many rows were pulled (to prove lazy consumption)."""

    def __init__(self, n: int) -> None:
        self.n, self.pulled = n, 0

    def __iter__(self):
        for i in range(self.n):
            self.pulled += 1
            yield i


def _store(tmp_path: Path, **manifest) -> be.ShardStore:
    store = be.ShardStore(tmp_path / "out.parquet", {"version": 1, "input": "range", **manifest})
    return store


def _run(store, rows, *, engine="local", kwargs=None, **kw) -> be.RunStats:
    return be.run_shards(be.chunked(rows, 4), be.WorkerSpec(WORKER, kwargs or {}), engine=engine, store=store,
                         done=lambda i, shard: store.is_done(i, "x", shard), **kw)


# -------------------------------------------------------------------------------------- streaming
def test_chunked_is_lazy_and_rejects_bad_sizes():
    src = Counting(10)
    chunks = be.chunked(src, 4)
    assert next(chunks) == [0, 1, 2, 3] and src.pulled == 4
    assert list(chunks) == [[4, 5, 6, 7], [8, 9]]
    with pytest.raises(ConfigError, match="shard_size=0"):
        next(be.chunked([1], 0))


def test_local_engine_pulls_one_shard_at_a_time_and_hands_results_over_in_order():
    src = Counting(10)
    seen: list[tuple[int, list[int], int]] = []

    def on_result(i, rows, frame):
        seen.append((i, list(rows), src.pulled))

    stats = be.run_shards(be.chunked(src, 3), be.WorkerSpec(WORKER), on_result=on_result)
    assert [s[0] for s in seen] == [0, 1, 2, 3] and [s[1] for s in seen][-1] == [9]
    assert [s[2] for s in seen] == [3, 6, 9, 10]  # nothing read ahead of the shard being scored
    assert (stats.shards, stats.shards_done, stats.rows_scored, stats.shards_skipped) == (4, 4, 10, 0)


def test_a_fully_resumed_run_builds_no_worker(tmp_path):
    store = _store(tmp_path)
    store.open()
    _run(store, range(8))
    built = []
    stats = be.run_shards(be.chunked(range(8), 4), be.WorkerSpec(lambda: built.append(1) or (lambda rows: None)),
                          store=store, done=lambda i, shard: store.is_done(i, "x", shard))
    store.close()
    assert stats.shards_skipped == 2 and not built


# --------------------------------------------------------------------------------- store + resume
def test_resume_skips_finished_shards_and_rescores_missing_or_corrupt_ones(tmp_path):
    store = _store(tmp_path)
    store.open()
    first = _run(store, range(18))
    reference = pd.concat(store.frames(first.shards), ignore_index=True)
    store.path(1).unlink()
    store.path(3).write_bytes(b"not parquet")
    (store.dir / ".shard-00005.parquet.x.tmp").write_bytes(b"half")
    store.close()
    store = _store(tmp_path)
    store.open()
    second = _run(store, range(18))
    assert (first.shards_done, second.shards_done, second.shards_skipped) == (5, 2, 3)
    pd.testing.assert_frame_equal(pd.concat(store.frames(5), ignore_index=True)[["x", "y"]], reference[["x", "y"]])
    assert not list(store.dir.glob(".*.tmp"))
    store.close()


def test_changed_settings_are_refused_unless_restart(tmp_path):
    store = be.ShardStore(tmp_path / "o.csv", {"version": 1, "k": 4, "input_sha256": "a"},
                          phrases={"input_sha256": "a different input"})
    store.open()
    _run(store, range(8))
    store.close()
    changed = be.ShardStore(tmp_path / "o.csv", {"version": 1, "k": 2, "input_sha256": "b"},
                            phrases={"input_sha256": "a different input"})
    with pytest.raises(be.BatchError, match=r"k 4 -> 2; a different input\) holds 2 finished shard.*--restart"):
        changed.open()
    changed.open(restart=True)
    assert not list(changed.dir.glob("shard-*"))
    changed.close()


def test_a_second_concurrent_run_is_refused(tmp_path):
    holder = _store(tmp_path)
    holder.open()
    try:
        with pytest.raises(be.BatchError, match="another run is writing"):
            _store(tmp_path).open()
    finally:
        holder.close()


# ----------------------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_streamed_output_equals_writing_the_concatenation_at_once(tmp_path, suffix):
    store = _store(tmp_path)
    store.open()
    stats = _run(store, range(10))  # shard 3 = [8, 9]: "tag" is null in row 9 only; shards differ in nulls
    frames = list(store.frames(stats.shards))
    whole = pd.concat(frames, ignore_index=True)
    out = be.write_frames(tmp_path / f"streamed{suffix}", store.frames(stats.shards), schema=store.schema(3))
    ref = tmp_path / f"whole{suffix}"
    if suffix == ".parquet":
        whole.to_parquet(ref, index=False)
        pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(ref))
    elif suffix == ".csv":
        whole.to_csv(ref, index=False)
        assert out.read_bytes() == ref.read_bytes()
    else:
        whole.to_json(ref, orient="records", lines=True, force_ascii=False)
        assert out.read_bytes() == ref.read_bytes()
    store.close()


def test_parquet_schema_unifies_a_column_that_is_all_null_in_one_shard(tmp_path):
    store = _store(tmp_path)
    store.open()
    store.write(0, pd.DataFrame({"x": [1], "tag": [None]}))
    store.write(1, pd.DataFrame({"x": [2], "tag": ["b"]}))
    out = be.write_frames(tmp_path / "u.parquet", store.frames(2), schema=store.schema(2))
    tags = pd.read_parquet(out)["tag"]
    assert tags.isna().tolist() == [True, False] and tags.iat[1] == "b"
    with pytest.raises(ConfigError, match="unsupported suffix"):
        be.write_frames(tmp_path / "u.xlsx", [])
    store.close()


def test_loader_strings_are_checked():
    with pytest.raises(ConfigError, match="module:function"):
        be.WorkerSpec("nocolon").build()
    with pytest.raises(ConfigError, match="cannot import"):
        be.WorkerSpec("no.such.module:f").build()
    assert be.callable_ref(square_worker) == WORKER


# -------------------------------------------------------------------------------- kill and resume
def test_kill_after_n_shards_then_resume_local_loses_and_duplicates_nothing(tmp_path):
    marker = tmp_path / "fail"
    marker.touch()
    kwargs = {"fail_marker": str(marker), "fail_at": 13}
    store = _store(tmp_path)
    store.open()
    with pytest.raises(be.BatchError, match=r"scoring shard 4 failed: RuntimeError\('worker died at row 13'\).*"
                                            r"finished shards are kept in .*rerun to resume"):
        _run(store, range(22), kwargs=kwargs)
    assert store.count() == 3
    marker.unlink()
    stats = _run(store, range(22), kwargs=kwargs)
    out = be.write_frames(tmp_path / "final.csv", store.frames(stats.shards))
    store.close()
    assert (stats.shards_skipped, stats.shards_done) == (3, 3)
    assert pd.read_csv(out)["x"].tolist() == list(range(22))


CHILD = """
import sys, time
from kgfusion.core import batch_engine as be
store = be.ShardStore(sys.argv[1], {"version": 1})
store.open()
def report(i, rows, frame):
    print(f"SHARD {i}", flush=True)
stats = be.run_shards(be.chunked(range(40), 4), be.WorkerSpec("tests.core.test_batch_engine:square_worker",
                      {"delay": float(sys.argv[2])}), store=store, done=lambda i, s: store.is_done(i, "x", s),
                      on_result=report)
be.write_frames(sys.argv[1], store.frames(stats.shards))
print(f"DONE {stats.shards_skipped} {stats.shards_done}", flush=True)
"""


def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path):
    out = tmp_path / "killed.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), "0.2"], stdout=subprocess.PIPE, text=True,
                             env=env, cwd=REPO)
    try:
        for line in child.stdout:
            if line.startswith("SHARD 2"):
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert not out.exists()
    done = subprocess.run([sys.executable, "-c", CHILD, str(out), "0"], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    skipped, scored = map(int, done.stdout.strip().splitlines()[-1].split()[1:])
    assert skipped >= 3 and skipped + scored == 10
    assert pd.read_json(out, lines=True)["x"].tolist() == list(range(40))


# --------------------------------------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray for this module (~10 s); the engine leaves a Ray it did not start running."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    os.environ.pop("RAY_ADDRESS", None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=be.ray_runtime_env())
    yield ray
    ray.shutdown()


def test_ray_streams_in_order_resumes_a_killed_run_and_uses_one_worker_per_actor(tmp_path, local_ray):
    marker = tmp_path / "fail"
    marker.touch()
    kwargs = {"fail_marker": str(marker), "fail_at": 21, "delay": 0.05}
    src = Counting(30)
    pulled_at_first = []
    store = _store(tmp_path)
    store.open()
    with pytest.raises(be.BatchError, match=r"scoring shard 6 on Ray failed: RuntimeError\('worker died at row 21'"):
        be.run_shards(be.chunked(src, 4), be.WorkerSpec(WORKER, kwargs), engine="ray", store=store,
                      done=lambda i, s: store.is_done(i, "x", s), max_in_flight=3,
                      on_result=lambda i, rows, f: pulled_at_first.append(src.pulled) if i == 0 else None)
    assert pulled_at_first and pulled_at_first[0] <= 4 * 4  # bounded read-ahead: never the whole input
    finished = store.count()
    assert 1 <= finished <= 5
    marker.unlink()
    stats = _run(store, range(30), engine="ray", kwargs=kwargs)
    assert (stats.shards_skipped, stats.shards_done) == (finished, 8 - finished)
    final = pd.concat(store.frames(8), ignore_index=True)
    store.close()
    assert final["x"].tolist() == list(range(30))  # no row lost, none duplicated, input order
    assert final.loc[final.index >= 4 * finished, "pid"].nunique() <= 2  # at most 2 actors did the work
    assert local_ray.is_initialized()  # not ours to stop


def test_ray_worker_load_errors_are_clear(tmp_path, local_ray):
    with pytest.raises(DataError, match="bad model"):
        be.run_shards(be.chunked(range(4), 2), be.WorkerSpec("tests.core.test_batch_engine:broken_worker"),
                      engine="ray")


def broken_worker():
    raise DataError("bad model dir: rebuild it")
