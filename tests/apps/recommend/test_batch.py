from __future__ import annotations

import json

import pandas as pd
import pytest

from kgfusion.apps.recommend.batch import (
    REC_COLUMNS,
    ScoringError,
    ShardStore,
    loader_ref,
    model_fingerprint,
    read_users,
    score_users,
    shard_users,
)
from kgfusion.core.errors import ConfigError, DataError, ModelNotFoundError
from tests.apps.recommend.fake_scorer import LOADER, load_fake, make_model_dir

K = 4


@pytest.fixture
def model(tmp_path):
    return make_model_dir(tmp_path / "model", items=12, known_users=range(1, 21))


def _users_file(tmp_path, text: str, name: str = "users.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------- reading
def test_read_users_csv_keeps_order_and_rejects_bad_rows_with_line_numbers(tmp_path):
    path = _users_file(tmp_path, "name,user_id\na,3\nb,1\nc,abc\nd,-2\ne,1.5\nf,\n\ng,3\nh,2.0\n")
    got = read_users(path)
    assert got.users == [3, 1, 2]
    reasons = {r.row: r.reason for r in got.rejects}
    assert set(reasons) == {4, 5, 6, 7, 9}
    assert "not a non-negative integer" in reasons[4] and "'-2'" in reasons[5] and "'1.5'" in reasons[6]
    assert reasons[7] == "user_id is empty"
    assert "duplicate user_id 3 (first at line 2)" in reasons[9]
    assert all(r.source == str(path) for r in got.rejects)


@pytest.mark.parametrize("text", ["5\n7\n\n9\n", "user_id\n5\n7\n9\n", "userId\n5\n7\n9\n"])
def test_read_users_one_id_per_line(tmp_path, text):
    assert read_users(_users_file(tmp_path, text, "users.txt")).users == [5, 7, 9]


def test_read_users_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(DataError, match="users file not found.*--users all"):
        read_users(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no user_id column"):
        read_users(_users_file(tmp_path, "name,age\na,3\n"))
    bad = tmp_path / "latin.txt"
    bad.write_bytes(b"1\n\xff\xfe2\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_users(bad)


def test_shards_are_deterministic_chunks():
    assert shard_users([5, 1, 9, 2, 7], 2) == [[5, 1], [9, 2], [7]]
    with pytest.raises(ConfigError):
        shard_users([1], 0)


def test_loader_ref_is_an_import_string_for_module_level_loaders():
    assert loader_ref(load_fake) == LOADER
    assert loader_ref(LOADER) == LOADER


# ----------------------------------------------------------------------------------------- scoring
def test_every_input_user_lands_in_the_output_or_the_rejects(tmp_path, model):
    users = _users_file(tmp_path, "user_id\n3\n999\nxyz\n3\n1\n4\n")
    out = tmp_path / "recs.parquet"
    summary = score_users(model, users, k=K, out=out, shard_size=2, loader=LOADER, progress=False)
    recs = pd.read_parquet(out)
    assert list(recs.columns) == list(REC_COLUMNS)
    assert recs["user_id"].drop_duplicates().tolist() == [3, 999, 1, 4]  # input order kept
    assert recs.groupby("user_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4]).all()
    assert not recs.duplicated(["user_id", "item_id"]).any()
    cold = recs.groupby("user_id")["cold_start"].first()
    assert cold[999] and not cold[3]
    rejects = pd.read_csv(summary["rejects_path"])
    assert rejects["row"].tolist() == [4, 5] and "duplicate" in rejects["reason"].iat[1]
    assert summary["users"] + summary["rejects"] == 6
    assert (summary["rows"], summary["shards"], summary["shards_done"], summary["cold_start_users"]) == (16, 2, 2, 1)
    assert not (tmp_path / "recs.parquet.shards").exists()  # cleaned up after success


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_output_format_follows_the_suffix(tmp_path, model, suffix):
    out = tmp_path / f"recs{suffix}"
    score_users(model, [1, 2], k=K, out=out, loader=LOADER, progress=False)
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_json(out, lines=True)
    assert len(frame) == 2 * K
    assert json.loads(frame["evidence"].iat[0])[0]["source"] == "fake-cf"


def test_users_all_scores_the_known_users(tmp_path, model):
    summary = score_users(model, "all", k=K, out=tmp_path / "r.parquet", shard_size=7, loader=LOADER, progress=False)
    assert (summary["users"], summary["shards"], summary["cold_start_users"]) == (20, 3, 0)


def test_resume_skips_finished_shards_and_rescores_missing_or_corrupt_ones(tmp_path, model):
    out = tmp_path / "recs.parquet"
    kw = {"k": K, "out": out, "shard_size": 3, "loader": LOADER, "progress": False, "keep_shards": True}
    first = score_users(model, list(range(1, 16)), **kw)
    reference = pd.read_parquet(out)
    shards = tmp_path / "recs.parquet.shards"
    (shards / "shard-00002.parquet").unlink()
    (shards / "shard-00004.parquet").write_bytes(b"not parquet")
    (shards / ".shard-00005.parquet.abc.tmp").write_bytes(b"half written")
    out.unlink()
    second = score_users(model, list(range(1, 16)), **kw)
    assert (first["shards_done"], second["shards_done"], second["shards_skipped"]) == (5, 2, 3)
    assert second["users_scored"] == 6
    pd.testing.assert_frame_equal(pd.read_parquet(out), reference)
    assert not list(shards.glob(".*.tmp"))


def test_failure_keeps_finished_shards_and_a_rerun_completes(tmp_path):
    model = make_model_dir(tmp_path / "m", items=12, fail_user=7)
    out = tmp_path / "recs.parquet"
    with pytest.raises(ScoringError, match=r"shard 3 \(users 7\.\.9\) failed.*rerun to resume"):
        score_users(model, list(range(1, 13)), k=K, out=out, shard_size=3, loader=LOADER, progress=False)
    shards = sorted(p.name for p in (tmp_path / "recs.parquet.shards").glob("shard-*"))
    assert shards == ["shard-00001.parquet", "shard-00002.parquet"] and not out.exists()


def test_mismatched_manifest_is_refused_unless_restart(tmp_path, model):
    out = tmp_path / "recs.parquet"
    kw = {"out": out, "shard_size": 3, "loader": LOADER, "progress": False, "keep_shards": True}
    score_users(model, [1, 2, 3, 4], k=K, **kw)
    with pytest.raises(ScoringError, match=r"k 4 -> 2.*--restart"):
        score_users(model, [1, 2, 3, 4], k=2, **kw)
    with pytest.raises(ScoringError, match="different user list"):
        score_users(model, [1, 2, 3, 5], k=K, **kw)
    summary = score_users(model, [1, 2, 3, 4], k=2, restart=True, **kw)
    assert summary["shards_done"] == 2 and len(pd.read_parquet(out)) == 8


def test_model_change_changes_the_fingerprint(tmp_path, model):
    before = model_fingerprint(model)
    (model / "weights.bin").write_bytes(b"\x01")
    assert model_fingerprint(model) != before


def test_a_second_concurrent_run_is_refused(tmp_path, model):
    out = tmp_path / "recs.parquet"
    holder = ShardStore(out, {"version": 1})
    holder.open(restart=False)
    try:
        with pytest.raises(ScoringError, match="another run is writing"):
            score_users(model, [1], k=K, out=out, loader=LOADER, progress=False)
    finally:
        holder.close()


def test_bad_settings_are_clear_errors(tmp_path, model):
    with pytest.raises(ConfigError, match="unsupported suffix"):
        score_users(model, [1], out=tmp_path / "r.xlsx", loader=LOADER)
    with pytest.raises(ModelNotFoundError, match="kgfusion recommend train"):
        score_users(tmp_path / "missing", [1], out=tmp_path / "r.parquet", loader=LOADER)
    with pytest.raises(ConfigError, match="module:function"):
        score_users(model, [1], out=tmp_path / "r.parquet", loader="nocolon", progress=False)
    with pytest.raises(DataError, match="no valid user ids"):
        score_users(model, _users_file(tmp_path, "user_id\nabc\n"), out=tmp_path / "r.parquet", loader=LOADER)
    assert (tmp_path / "r.parquet.rejects.csv").is_file()


def _dropping_loader(model_dir):
    fake = load_fake(model_dir)

    class Dropping:
        def recommend_frame(self, user_ids, k=10):
            frame = fake.recommend_frame(user_ids, k)
            return frame[frame["user_id"] != user_ids[0]]

    return Dropping()


def test_a_scorer_that_drops_users_is_an_error_not_a_silent_loss(tmp_path, model):
    with pytest.raises(ScoringError, match=r"no rows for user\(s\) \[1\]"):
        score_users(model, [1, 2], out=tmp_path / "r.parquet", loader=_dropping_loader, progress=False)


# --------------------------------------------------------------------------------------------- Ray
def test_ray_engine_matches_local_and_resumes_a_local_run(tmp_path, model):
    """One local Ray start (~15 s): Ray scores the shards a local run left, output equals local output."""
    users = list(range(1, 23))  # 20 known + 2 cold start
    out = tmp_path / "recs.parquet"
    kw = {"k": K, "out": out, "shard_size": 4, "loader": LOADER, "progress": False, "keep_shards": True}
    score_users(model, users, **kw)
    reference = pd.read_parquet(out)
    shards = tmp_path / "recs.parquet.shards"
    for name in ("shard-00002.parquet", "shard-00005.parquet", "shard-00006.parquet"):
        (shards / name).unlink()
    summary = score_users(model, users, engine="ray", **kw)
    assert (summary["shards_done"], summary["shards_skipped"], summary["engine"]) == (3, 3, "ray")
    pd.testing.assert_frame_equal(pd.read_parquet(out), reference)
    import ray

    assert not ray.is_initialized()  # the local instance was shut down


def test_read_users_explains_binary_and_non_utf8_files(tmp_path):
    """Issue 11: a binary users file was parsed as ids (or raised with Python's codec message)."""
    blob = tmp_path / "users.csv"
    blob.write_bytes(b"\x00\x01\x02\x03user_id\n1\n")
    with pytest.raises(DataError, match=r"users\.csv is binary, not text \(NUL byte at offset 0\); pass a text file"):
        read_users(blob)
    latin = tmp_path / "users.txt"
    latin.write_bytes(b"user_id\n1\n\xe92\n")
    with pytest.raises(DataError) as err:
        read_users(latin)
    assert str(err.value) == f"{latin} is not UTF-8 text (invalid byte at offset 10, line 3); save the users file as UTF-8"
    long_id = tmp_path / "long.txt"
    long_id.write_text("user_id\n" + "7" * 5000 + "x\n")
    (reject,) = read_users(long_id).rejects
    assert reject.row == 2 and len(reject.reason) < 120
