"""Kill-and-resume: SIGKILL `kgfusion finance monitor` midway, rerun it, and check the DuckDB store holds
every feed item exactly once, with the same mentions as an uninterrupted run."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from click.testing import CliRunner

from kgfusion.apps.finance.cli import group
from kgfusion.apps.finance.pipeline import CHUNK_ENV
from tests.apps.finance.conftest import DATA

REPO = Path(__file__).resolve().parents[3]
KG = str(DATA / "mini_finance.ttl")
N_ITEMS, CHUNK = 300, 10

# Runs the real CLI in a child process. The only addition: after each committed chunk it prints a
# progress line (the store's DuckDB file is locked by the writer, so the test cannot poll it) and
# pauses briefly, so the kill lands mid-run on any machine. Commit logic is untouched.
CHILD = """
import sys, time
import kgfusion.apps.finance.store as store

_upsert = store.FinanceStore.upsert

def upsert(self, items, mentions):
    new = _upsert(self, items, mentions)
    print(f"COMMITTED {len(items)}", flush=True)
    time.sleep(float(sys.argv[1]))
    return new

store.FinanceStore.upsert = upsert
from kgfusion.apps.cli import cli
cli(sys.argv[2:])
"""


def _feed(path: Path) -> list[str]:
    rng = random.Random(7)
    words = ["profit rose", "loss fell", "downgrade", "sales increased", "the market", "cuts jobs"]
    tags = ["$AAPL", "$MSFT", "$XOM", "Microsoft", "Apple", ""]
    ids = []
    with path.open("w", encoding="utf-8") as fh:
        for i in range(N_ITEMS):
            ids.append(f"r{i}")
            text = f"{rng.choice(tags)} {rng.choice(words)} item {i} {rng.choice(tags)}".strip()
            fh.write(json.dumps({"id": f"r{i}", "created_at": f"2014-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                                 "text": text}) + "\n")
    return ids


def _args(feed: Path, db: Path, bundle: Path) -> list[str]:
    return ["finance", "monitor", str(feed), "--db", str(db), "--bundle", str(bundle), "--kg", KG,
            "--backend", "fp32", "--quiet", "--json"]


def _env() -> dict[str, str]:
    return {**os.environ, CHUNK_ENV: str(CHUNK), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": str(REPO)}


def _kill_midway(feed: Path, db: Path, bundle: Path, min_chunks: int = 4) -> int:
    """Start the monitor, SIGKILL it after ``min_chunks`` committed chunks; returns chunks seen."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "0.2", *_args(feed, db, bundle)], cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen, deadline = 0, time.monotonic() + 120
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen += line.startswith("COMMITTED")
            if seen >= min_chunks or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the monitor finished before it could be killed"
    return seen


def _store(db: Path) -> tuple[list[str], list[tuple[str, str]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        ids = [r[0] for r in con.execute("SELECT id FROM items").fetchall()]
        pairs = [(r[0], r[1]) for r in con.execute("SELECT item_id, entity FROM mentions").fetchall()]
    finally:
        con.close()
    return ids, pairs


def test_killed_monitor_resumes_without_losing_or_duplicating_rows(tiny_bundle, tmp_path, monkeypatch):
    feed = tmp_path / "feed.jsonl"
    ids = _feed(feed)
    db = tmp_path / "resume.duckdb"

    chunks = _kill_midway(feed, db, tiny_bundle)
    partial, _ = _store(db)  # the writer is dead, so the file lock is free; DuckDB replays its WAL
    assert chunks * CHUNK <= len(partial) < N_ITEMS, "committed chunks must survive the kill"
    assert len(partial) == len(set(partial)) and set(partial) <= set(ids)

    # The rerun may run in this process: only the killed run needs its own.
    monkeypatch.setenv(CHUNK_ENV, str(CHUNK))
    rerun = CliRunner().invoke(group, _args(feed, db, tiny_bundle)[1:])
    assert rerun.exit_code == 0, rerun.output
    summary = json.loads(rerun.output)
    assert summary["skipped_existing"] == len(partial)
    assert summary["new_items"] == N_ITEMS - len(partial)

    stored, pairs = _store(db)
    assert sorted(stored) == sorted(ids)  # every item once: none lost, none duplicated
    assert len(pairs) == len(set(pairs))  # no duplicate (item, entity) mention rows

    # The resumed store links exactly what one uninterrupted run links.
    clean = tmp_path / "clean.duckdb"
    res = CliRunner().invoke(group, _args(feed, clean, tiny_bundle)[1:])
    assert res.exit_code == 0, res.output
    clean_ids, clean_pairs = _store(clean)
    assert sorted(clean_ids) == sorted(stored)
    assert sorted(clean_pairs) == sorted(pairs) and pairs


def test_chunk_size_env_override_is_validated(monkeypatch):
    from kgfusion.apps.finance.pipeline import CHUNK as DEFAULT
    from kgfusion.apps.finance.pipeline import chunk_size
    from kgfusion.core.errors import ConfigError

    monkeypatch.delenv(CHUNK_ENV, raising=False)
    assert chunk_size() == DEFAULT
    monkeypatch.setenv(CHUNK_ENV, "17")
    assert chunk_size() == 17
    for bad in ("0", "-3", "ten", "1.5"):
        monkeypatch.setenv(CHUNK_ENV, bad)
        try:
            chunk_size()
        except ConfigError as exc:
            assert CHUNK_ENV in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")
