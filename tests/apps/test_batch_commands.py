"""The four batch commands on the core batch engine: `finance score`, `finance monitor`, `medical extract`
and `recommend score` on a local Ray (one Ray for the module) give what the local engine gives; finance
score and medical extract resume after a failure mid-run without losing or duplicating rows."""
from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from kgfusion.apps.cli import cli
from tests.apps.finance.conftest import DATA as FIN_DATA
from tests.apps.medical.conftest import make_data_dir
from tests.apps.medical.test_extract import NOTE
from tests.apps.recommend.fake_scorer import LOADER, make_model_dir
from tests.core.test_batch_engine import local_ray  # noqa: F401 - the module's one local Ray

KG = str(FIN_DATA / "mini_finance.ttl")
FEED = str(FIN_DATA / "feed.jsonl")


def _ok(args: list[str], obj=None):
    res = CliRunner().invoke(cli, args, obj=obj, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def _finance(cmd: str, tiny_bundle, *args: str) -> list[str]:
    return ["finance", cmd, FEED, "--bundle", str(tiny_bundle), "--kg", KG, "--backend", "fp32", "--quiet", *args]


@pytest.fixture(scope="module")
def med_data(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("med-data"))


@pytest.fixture
def notes_file(tmp_path):
    path = tmp_path / "notes.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(9):
            fh.write(json.dumps({"note_id": f"n{i}", "text": NOTE if i % 3 else "Fever and chest pain; no gout."}) + "\n")
        fh.write(json.dumps({"note_id": "empty", "text": "  "}) + "\nnot json\n")
    return path


def _medical(notes, out, tiny_ner_bundle, *args: str) -> list[str]:
    return ["medical", "extract", str(notes), "--out", str(out), "--bundle", str(tiny_ner_bundle), "--backend", "fp32",
            "--link-encoder", "hashing", "--shard-size", "4", "--json", *args]


def _jsonl(path) -> list[dict]:
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    for r in rows:
        r.pop("seconds")
    return rows


# ------------------------------------------------------------------------- local: resume after failure
def test_finance_score_resumes_after_a_failure_mid_run(tiny_bundle, tmp_path, monkeypatch):
    import kgfusion.apps.finance.batch as fbatch

    ref = tmp_path / "ref.csv"
    _ok(_finance("score", tiny_bundle, "--out", str(ref), "--shard-size", "30"))
    calls = {"n": 0}
    real = fbatch.table_frame

    def dying(frame):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("killed")
        return real(frame)

    monkeypatch.setattr(fbatch, "table_frame", dying)
    out = tmp_path / "scored.csv"
    res = CliRunner().invoke(cli, _finance("score", tiny_bundle, "--out", str(out), "--shard-size", "30"))
    assert res.exit_code == 1 and "scoring shard 4 (rows 91..120) failed: RuntimeError('killed')" in res.output
    assert "rerun to resume" in res.output
    assert len(list((tmp_path / "scored.csv.shards").glob("shard-*.parquet"))) == 3 and not out.exists()
    res = CliRunner().invoke(cli, _finance("score", tiny_bundle, "--out", str(out), "--shard-size", "20"))
    assert res.exit_code == 1 and "different settings (shard_size" in res.output  # refused ...
    monkeypatch.setattr(fbatch, "table_frame", real)
    summary = json.loads(_ok(_finance("score", tiny_bundle, "--out", str(out), "--shard-size", "30", "--json")).output)
    assert summary["summary"]["items"] == 168
    got, want = pd.read_csv(out), pd.read_csv(ref)
    assert got["id"].tolist() == want["id"].tolist() and not got["id"].duplicated().any()
    pd.testing.assert_frame_equal(got.drop(columns=["run_id"]), want.drop(columns=["run_id"]))
    assert not (tmp_path / "scored.csv.shards").exists()
    # ... unless --restart
    _ok(_finance("score", tiny_bundle, "--out", str(out), "--shard-size", "20", "--restart"))


def test_medical_extract_resumes_after_a_failure_mid_run(tiny_ner_bundle, med_data, notes_file, tmp_path, monkeypatch):
    import kgfusion.apps.medical.batch as mbatch

    obj = {"build_kwargs": {"data_dir": med_data}}
    ref = tmp_path / "ref.jsonl"
    ref_summary = json.loads(_ok(_medical(notes_file, ref, tiny_ner_bundle), obj).output)
    real, calls = mbatch.shard_rows, {"n": 0}

    def dying(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(*a, **kw)

    monkeypatch.setattr(mbatch, "shard_rows", dying)
    out = tmp_path / "res.jsonl"
    res = CliRunner().invoke(cli, _medical(notes_file, out, tiny_ner_bundle), obj=obj)
    assert res.exit_code != 0 and not out.exists()
    monkeypatch.setattr(mbatch, "shard_rows", real)
    summary = json.loads(_ok(_medical(notes_file, out, tiny_ner_bundle, "--csv", str(tmp_path / "m.csv")),
                             obj).output)
    assert _jsonl(out) == _jsonl(ref)
    assert {k: v for k, v in summary.items() if "seconds" not in k and k not in ("files", "notes_per_s")} == \
        {k: v for k, v in ref_summary.items() if "seconds" not in k and k not in ("files", "notes_per_s")}
    assert summary["notes"] == 9 and summary["rejected"] == 2  # every input row: output or rejects
    assert len(pd.read_csv(tmp_path / "m.csv")) == summary["mentions"]


# ------------------------------------------------------------------------------------- on a local Ray
def test_finance_score_on_ray_equals_local(tiny_bundle, tmp_path, local_ray):  # noqa: F811
    local, ray_out = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    a = json.loads(_ok(_finance("score", tiny_bundle, "--out", str(local), "--shard-size", "40", "--json")).output)
    b = json.loads(_ok(_finance("score", tiny_bundle, "--out", str(ray_out), "--shard-size", "40", "--json",
                                "--engine", "ray")).output)
    assert a["summary"] | {"out": None} == b["summary"] | {"out": None}
    cols = ["id", "label", "score", "tickers", "evidence"]
    pd.testing.assert_frame_equal(pd.read_parquet(ray_out)[cols], pd.read_parquet(local)[cols], atol=1e-5)


def test_finance_monitor_on_ray_stores_every_item_once(tiny_bundle, tmp_path, local_ray):  # noqa: F811
    local_db, ray_db = tmp_path / "l.duckdb", tmp_path / "r.duckdb"
    a = json.loads(_ok(_finance("monitor", tiny_bundle, "--db", str(local_db), "--min-volume", "3", "--json",
                                "--shard-size", "50")).output)
    b = json.loads(_ok(_finance("monitor", tiny_bundle, "--db", str(ray_db), "--min-volume", "3", "--json",
                                "--shard-size", "50", "--engine", "ray")).output)
    assert (b["items"], b["new_items"], b["mentions"], b["alerts"]) == (a["items"], a["new_items"], a["mentions"],
                                                                          a["alerts"])

    def table(db):
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute("SELECT id, label, round(score, 4) FROM items ORDER BY id").fetchall()

    assert table(ray_db) == table(local_db) and len(table(ray_db)) == 168
    c = json.loads(_ok(_finance("monitor", tiny_bundle, "--db", str(ray_db), "--json", "--engine", "ray")).output)
    assert (c["new_items"], c["skipped_existing"]) == (0, 168)  # a rerun scores nothing (and starts no Ray work)


def test_medical_extract_on_ray_equals_local(tiny_ner_bundle, med_data, notes_file, tmp_path, local_ray):  # noqa: F811
    obj = {"build_kwargs": {"data_dir": med_data}}
    local, ray_out = tmp_path / "l.jsonl", tmp_path / "r.jsonl"
    a = json.loads(_ok(_medical(notes_file, local, tiny_ner_bundle), obj).output)  # builds the caches first
    b = json.loads(_ok(_medical(notes_file, ray_out, tiny_ner_bundle, "--engine", "ray"), obj).output)
    assert _jsonl(ray_out) == _jsonl(local)
    assert (b["notes"], b["rejected"], b["mentions"], b["model"]) == (a["notes"], a["rejected"], a["mentions"],
                                                                      a["model"])


def test_recommend_score_on_ray(tmp_path, local_ray):  # noqa: F811
    model = make_model_dir(tmp_path / "m", items=12)
    users = tmp_path / "users.txt"
    users.write_text("user_id\n" + "\n".join(map(str, range(1, 12))) + "\nbad\n")
    args = ["recommend", "score", "--loader", LOADER, "--model", str(model), "--users", str(users), "--k", "3",
            "--shard-size", "3", "--json"]
    a = json.loads(_ok([*args, "--out", str(tmp_path / "l.csv")]).output)
    b = json.loads(_ok([*args, "--out", str(tmp_path / "r.csv"), "--engine", "ray"]).output)
    assert (b["users"], b["rows"], b["rejects"], b["shards_done"]) == (a["users"], a["rows"], 1, 4)
    assert (tmp_path / "r.csv").read_bytes() == (tmp_path / "l.csv").read_bytes()


# ------------------------------------------------------------------------------------ streamed input
@pytest.mark.parametrize("encoding", ["auto", "utf-8-sig"])
def test_medical_jsonl_streams_in_blocks_with_read_notes_results(tmp_path, monkeypatch, encoding):
    import kgfusion.apps.medical.batch as mbatch
    from kgfusion.apps.medical.readers import read_notes

    path = tmp_path / "n.jsonl"
    lines = ['{"id": "a", "text": "fever"}', "", "{bad json", '{"id": "b", "text": "caf\u00e9 \u2028 pain"}\r',
             '["x"]', '{"note": "no id here"}', '{"id": "c", "text": ""}', '{"id": "d", "text": "gout"}']
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode("utf-8"))
    monkeypatch.setattr(mbatch, "STREAM_LINES", 3)
    stream = mbatch.NoteStream(path, encoding=encoding)
    assert mbatch._streamable(path, encoding)
    got = list(stream)
    want = read_notes(path, encoding=encoding)
    assert got == want.notes and stream.rejects == want.rejects
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"id": "x", "text": "caf\xe9"}\n')
    assert not mbatch._streamable(latin, "auto")  # cp1252 fallback: read whole, as read_notes does
    assert list(mbatch.NoteStream(latin)) == read_notes(latin).notes
