"""Every CLI command that reads a file, fed the ordinary mistakes: none may print a traceback.

Each command gets an empty file, a binary file, a header-only file, a file of only bad rows and a file
whose single line is 20 MB long. The answer is either a normal run (every row accounted for) or one
clear error line that names the file, never a traceback and never the file's bytes echoed back.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from kgfusion.apps.cli import cli
from tests.apps.medical.conftest import KeywordPredictor, keyword_encoder, make_data_dir
from tests.apps.recommend.fake_scorer import LOADER, make_model_dir

DATA = Path(__file__).resolve().parent / "data"
FINANCE_KG = str(DATA / "finance" / "mini_finance.ttl")
HUGE_BYTES = 20 * 1024 * 1024
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
CASES = ("empty", "binary", "header_only", "bad_rows", "huge_line")


@dataclass(frozen=True)
class Command:
    """A command line with FILE where the bad input goes; ``header``/``bad_rows`` fit its format."""
    suffix: str
    header: str
    bad_rows: str
    args: Callable[[Path, Path, dict], list[str]]  # (bad file, tmp dir, fixtures) -> argv
    obj: Callable[[dict], dict | None] = lambda fx: None


COMMANDS: dict[str, Command] = {
    "finance score": Command(
        ".csv", "text,created_at\n", ",2014-01-02\nprofit rose,not a date\n\"unterminated,2014-01-02\n",
        lambda f, tmp, fx: ["finance", "score", str(f), "--bundle", fx["bundle"], "--kg", FINANCE_KG,
                            "--backend", "fp32", "--out", str(tmp / "scored.csv"), "--quiet"]),
    "finance monitor": Command(
        ".csv", "text,created_at\n", ",2014-01-02\nprofit rose,not a date\n",
        lambda f, tmp, fx: ["finance", "monitor", str(f), "--db", str(tmp / "m.duckdb"), "--bundle", fx["bundle"],
                            "--kg", FINANCE_KG, "--backend", "fp32", "--quiet"]),
    "finance score --rules": Command(
        ".yaml", "# rules\n", "- kind: no_such_kind\n  id: x\n",
        lambda f, tmp, fx: ["finance", "score", fx["feed"], "--rules", str(f), "--bundle", fx["bundle"],
                            "--kg", FINANCE_KG, "--backend", "fp32", "--quiet"]),
    "finance score --config": Command(
        ".json", "{}", "{\"window\": \"many\"}\n",
        lambda f, tmp, fx: ["finance", "score", fx["feed"], "--config", str(f), "--bundle", fx["bundle"],
                            "--kg", FINANCE_KG, "--backend", "fp32", "--quiet"]),
    "finance score --kg": Command(
        ".ttl", "@prefix ex: <http://example.org/> .\n", "this is not turtle .\n",
        lambda f, tmp, fx: ["finance", "score", fx["feed"], "--kg", str(f), "--bundle", fx["bundle"],
                            "--backend", "fp32", "--quiet"]),
    "medical extract csv": Command(
        ".csv", "note_id,text\n", "1,\n2,\"unterminated\n",
        lambda f, tmp, fx: ["medical", "extract", str(f), "--out", str(tmp / "out.jsonl")], obj=lambda fx: fx["med"]),
    "medical extract jsonl": Command(
        ".jsonl", "", "{\"note_id\": 1}\nnot json\n",
        lambda f, tmp, fx: ["medical", "extract", str(f), "--out", str(tmp / "out.jsonl")], obj=lambda fx: fx["med"]),
    "medical extract txt": Command(
        ".txt", "", "\x00\x01 control bytes in a note\n",
        lambda f, tmp, fx: ["medical", "extract", str(f), "--out", str(tmp / "out.jsonl")], obj=lambda fx: fx["med"]),
    "medical evaluate --file": Command(
        ".tsv", "", "word\tX-Disease\nsecond\n",
        lambda f, tmp, fx: ["medical", "evaluate", fx["ner_bundle"], "--file", str(f)]),
    "model train --data": Command(
        ".csv", "text,label\n", ",positive\nhello,\n",
        lambda f, tmp, fx: ["model", "train", "--data", str(f), "--base", fx["base"], "--out", str(tmp / "b"),
                            "--epochs", "1", "--max-steps", "1", "--quiet"]),
    "model evaluate --data": Command(
        ".csv", "text,label\n", ",positive\nhello,not-a-label\n",
        lambda f, tmp, fx: ["model", "evaluate", fx["bundle"], "--data", str(f), "--split", "all"]),
    "model predict --input": Command(
        ".csv", "text\n", "\n\n",
        lambda f, tmp, fx: ["model", "predict", fx["bundle"], "--input", str(f)]),
    "model pretrain --corpus": Command(
        ".txt", "", "\n \n\t\n",
        lambda f, tmp, fx: ["model", "pretrain", "--corpus", str(f), "--out", str(tmp / "pre"), "--base", fx["base"],
                            "--max-length", "16", "--batch-size", "2", "--max-steps", "1", "--quiet"]),
    "recommend train --ratings": Command(
        ".csv", "userId,movieId,rating,timestamp\n", "a,b,c,d\n1,2,99,x\n",
        lambda f, tmp, fx: ["recommend", "train", "--ratings", str(f), "--out", str(tmp / "rec")]),
    "recommend train --movies": Command(
        ".csv", "movieId,title,genres\n", "x,,\nnot-a-number,Heat (1995),Action\n",
        lambda f, tmp, fx: ["recommend", "train", "--ratings", fx["ratings"], "--movies", str(f),
                            "--out", str(tmp / "rec")]),
    "recommend score --users": Command(
        ".csv", "user_id\n", "abc\n-1\n",
        lambda f, tmp, fx: ["recommend", "score", "--loader", LOADER, "--model", fx["rec_model"], "--users", str(f),
                            "--out", str(tmp / "recs.csv")]),
    "kg query --graph": Command(
        ".ttl", "@prefix ex: <http://example.org/> .\n", "ex:a ex:b .\nnot turtle at all\n",
        lambda f, tmp, fx: ["kg", "query", "--graph", str(f), "SELECT * WHERE { ?s ?p ?o } LIMIT 3"]),
    "kg stats --graph": Command(
        ".ttl", "@prefix ex: <http://example.org/> .\n", "<<<>>> .\n",
        lambda f, tmp, fx: ["kg", "stats", "--graph", str(f)]),
    "kg query @FILE": Command(
        ".rq", "", "DELETE WHERE { ?s ?p ?o }\n",
        lambda f, tmp, fx: ["kg", "query", "--graph", FINANCE_KG, f"@{f}"]),
}


@pytest.fixture(scope="session")
def fixtures(tiny_bundle, tiny_ner_bundle, tiny_model_dir, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("sweep")
    feed = root / "feed.csv"
    feed.write_text("text,created_at\nApple profit rose,2014-01-02\n", encoding="utf-8")
    ratings = root / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.0,964982704\n", encoding="utf-8")
    med = make_data_dir(root / "med-data")
    return {"bundle": str(tiny_bundle), "base": tiny_model_dir, "feed": str(feed), "ratings": str(ratings),
            "ner_bundle": str(tiny_ner_bundle),
            "rec_model": str(make_model_dir(root / "rec-model", items=12, known_users=range(1, 6))),
            "med_dir": med,
            "med": {"build_kwargs": {"data_dir": med, "predictor": KeywordPredictor(), "encoder": keyword_encoder()}}}


class HugeLine(bytes):
    def __repr__(self) -> str:  # a failure report must not print 20 MB
        return f"<{len(self)} bytes of 'x'>"


@pytest.fixture(scope="session")
def huge_line() -> bytes:
    return HugeLine(b"x" * HUGE_BYTES)


def bad_file(tmp: Path, command: Command, case: str, huge: bytes) -> Path:
    path = tmp / f"input-{case}{command.suffix}"
    content = {"empty": b"", "binary": BINARY, "header_only": command.header.encode(),
               "bad_rows": (command.header + command.bad_rows).encode(), "huge_line": huge}[case]
    path.write_bytes(bytes(content))
    return path


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", list(COMMANDS))
def test_no_traceback_and_a_clear_line(name, case, fixtures, huge_line, tmp_path, monkeypatch):
    command = COMMANDS[name]
    monkeypatch.setenv("KGFUSION_DATA", str(fixtures["med_dir"]))
    path = bad_file(tmp_path, command, case, huge_line)
    res = CliRunner().invoke(cli, command.args(path, tmp_path, fixtures), obj=command.obj(fixtures))
    out = res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), \
        f"{name} on {case}: {type(res.exception).__name__}: {str(res.exception)[:300]}"
    assert "Traceback" not in out
    assert "\x00" not in out and "\ufffd" not in out and "IHDR" not in out, f"{name} echoed binary: {out[:300]!r}"
    assert max((len(line) for line in out.splitlines()), default=0) < 600, f"{name} flooded: {out[:300]!r}"
    if res.exit_code != 0:
        errors = [line for line in out.splitlines() if line.startswith("Error")]
        assert len(errors) == 1, f"{name} on {case}: {out[:600]!r}"
        assert path.name in out or os.fspath(path) in out, f"{name} on {case} does not name the file: {out[:600]!r}"
