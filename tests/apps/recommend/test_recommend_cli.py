from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from kgfusion.apps.cli import cli
from tests.apps.recommend.fake_scorer import LOADER, make_model_dir

ROOT = Path(__file__).resolve().parents[3]


def _run(*args: str):
    return CliRunner().invoke(cli, ["recommend", "score", "--loader", LOADER, *args])


def test_score_json_summary_and_files(tmp_path):
    model = make_model_dir(tmp_path / "m", items=15)
    users = tmp_path / "users.txt"
    users.write_text("user_id\n2\n5\n500\noops\n")
    out = tmp_path / "recs.jsonl"
    res = _run("--model", str(model), "--users", str(users), "--k", "3", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert (summary["users"], summary["rows"], summary["rejects"], summary["cold_start_users"]) == (3, 9, 1, 1)
    recs = pd.read_json(out, lines=True)
    assert recs["user_id"].drop_duplicates().tolist() == [2, 5, 500]
    rejects = pd.read_csv(summary["rejects_path"])
    assert rejects["row"].tolist() == [5] and "'oops'" in rejects["reason"].iat[0]


def test_score_text_output_and_users_all(tmp_path):
    model = make_model_dir(tmp_path / "m", items=15, known_users=range(1, 8))
    res = _run("--model", str(model), "--out", str(tmp_path / "r.parquet"), "--quiet")
    assert res.exit_code == 0, res.output
    assert "7 users scored (70 rows, 0 cold start)" in res.output and "0 rejected" in res.output


def test_score_bad_input_is_one_clear_line(tmp_path):
    model = make_model_dir(tmp_path / "m")
    res = _run("--model", str(tmp_path / "nope"), "--out", str(tmp_path / "r.parquet"))
    assert res.exit_code == 1 and "kgfusion recommend train" in res.output and "Traceback" not in res.output
    res = _run("--model", str(model), "--users", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r.parquet"))
    assert res.exit_code == 1 and "users file not found" in res.output
    res = _run("--model", str(model), "--users", "all", "--out", str(tmp_path / "r.xlsx"))
    assert res.exit_code == 1 and "unsupported suffix" in res.output
    res = _run("--model", str(model), "--out", str(tmp_path / "r.parquet"), "--k", "0")
    assert res.exit_code == 2


def test_resume_after_mismatch_needs_restart(tmp_path):
    model = make_model_dir(tmp_path / "m", items=15)
    out = str(tmp_path / "r.parquet")
    assert _run("--model", str(model), "--out", out, "--k", "3", "--keep-shards", "--quiet").exit_code == 0
    res = _run("--model", str(model), "--out", out, "--k", "4", "--quiet")
    assert res.exit_code == 1 and "--restart" in res.output
    res = _run("--model", str(model), "--out", out, "--k", "4", "--restart", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["rows"] == 80


def test_killed_job_resumes_without_losing_or_duplicating_rows(tmp_path):
    """SIGKILL a slow scoring run after a few shards, rerun: every user exactly once, k rows each."""
    model = make_model_dir(tmp_path / "m", items=20, known_users=range(1, 41), delay=0.1)
    out = tmp_path / "recs.parquet"
    shards = tmp_path / "recs.parquet.shards"
    cmd = [sys.executable, "-c", "from kgfusion.apps.cli import main; main()", "recommend", "score", "--loader", LOADER,
           "--model", str(model), "--users", "all", "--k", "5", "--shard-size", "2", "--out", str(out), "--json"]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list(shards.glob("shard-*.parquet"))) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no shards written in 60 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    finished = len(list(shards.glob("shard-*.parquet")))
    assert not out.exists() and 3 <= finished < 20

    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["shards_skipped"] == finished and summary["shards_done"] == 20 - finished
    recs = pd.read_parquet(out)
    assert sorted(recs["user_id"].unique()) == list(range(1, 41))
    assert (recs.groupby("user_id").size() == 5).all()
    assert not recs.duplicated(["user_id", "rank"]).any() and not recs.duplicated(["user_id", "item_id"]).any()
