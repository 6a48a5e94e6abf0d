"""Finance drift: a monitor DuckDB (keyword predictor, mini KG) with two days like the reference, one
shifted day and one small day; the drift table, its in-place upgrade, `finance alerts --drift` and
`finance drift-reference` (tiny bundle, hashing encoder: no MiniLM)."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from kgfusion.apps.finance.cli import group
from kgfusion.apps.finance.drift import (
    build_reference,
    cached_reference_path,
    drift_alerts,
    ensure_drift_table,
    load_or_build_reference,
    read_drift,
    update_drift,
)
from kgfusion.apps.finance.store import FinanceStore
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.lifecycle.drift import DriftReference, DriftThresholds
from kgfusion.knowledge.hashing import HashingEncoder
from tests.conftest import make_sentiment_examples

# the reference mix: positive, negative, neutral in turn
MIX = ("$AAPL profit rose in the quarter", "Microsoft $MSFT sales fell with a loss", "the company met the market")
SHIFTED = "$XOM downgrade: guidance cuts, shares fall after analysts slash targets"


def mixed(n: int, seed: int) -> list[str]:
    """n texts of the mix, each with a random 4-digit number (the same distribution for every seed)."""
    rng = random.Random(seed)
    return [f"{MIX[i % 3]} ({rng.randrange(10_000):04d})" for i in range(n)]


def write_feed(path: Path) -> Path:
    """2014-03-01 and -02: 60 items like the reference; -03: 60 shifted items; -04: 5 items."""
    rows = []
    for day, texts in ((1, mixed(60, 1)), (2, mixed(60, 2)),
                       (3, [f"{SHIFTED} ({k})" for k in range(60)]), (4, mixed(5, 4))):
        rows += [{"id": f"{day}-{k}", "created_at": f"2014-03-0{day}T{k % 24:02d}:{k % 60:02d}:00Z", "text": t}
                 for k, t in enumerate(texts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def world(tmp_path, monitor_factory):
    """(db, reference file, reference): the DB written by FinanceMonitor.monitor, the reference scored by the
    same scorer on 300 mixed texts and embedded with the hashing encoder."""
    monitor = monitor_factory()
    db = tmp_path / "feed.duckdb"
    monitor.monitor(write_feed(tmp_path / "feed.jsonl"), db)
    ref = build_reference(monitor.scorer, mixed(300, 0), encoder=HashingEncoder(256), meta={"bundle": "keyword"})
    return db, ref.save(tmp_path / "ref.json"), ref


def test_drift_table_has_a_row_per_day_and_flags_the_shifted_one(world):
    db, _, ref = world
    table = update_drift(db, ref)
    assert table.attrs["computed"] == 4
    assert [str(d)[:10] for d in table["day"]] == ["2014-03-01", "2014-03-02", "2014-03-03", "2014-03-04"]
    by_day = {str(r.day)[:10]: r for r in table.itertuples()}
    for calm in ("2014-03-01", "2014-03-02"):
        assert by_day[calm].drifted is False
        assert json.loads(by_day[calm].reasons) == []
        assert by_day[calm].label_psi < 0.05 and by_day[calm].centroid_ratio < 1.5
    shifted = by_day["2014-03-03"]
    assert shifted.drifted is True and shifted.items == 60 and shifted.embedded == 60
    reasons = " ".join(json.loads(shifted.reasons))
    assert "label PSI" in reasons and "embedding centroid" in reasons
    assert by_day["2014-03-04"].items == 5 and by_day["2014-03-04"].drifted is None  # too few for a verdict
    assert [str(d)[:10] for d in drift_alerts(table)["day"]] == ["2014-03-03"]
    with FinanceStore(db, read_only=True) as store:  # stored in the same DuckDB
        stored = read_drift(store)
    assert len(stored) == 4 and json.loads(stored["figures"][2])["drifted"] is True


def test_days_are_computed_once_and_again_when_they_change(world, monitor_factory, tmp_path):
    db, _, ref = world
    update_drift(db, ref)
    assert update_drift(db, ref).attrs["computed"] == 0
    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps({"id": f"x{k}", "created_at": "2014-03-04T12:00:00Z", "text": t}) + "\n"
                            for k, t in enumerate(mixed(60, 5))))
    monitor_factory().monitor(more, db)
    table = update_drift(db, ref)
    assert table.attrs["computed"] == 1  # only 2014-03-04 changed
    assert int(table["items"].iloc[-1]) == 65 and table["drifted"].iloc[-1] is False
    assert update_drift(db, ref, thresholds=DriftThresholds(psi=0.5)).attrs["computed"] == 4  # new thresholds


def test_an_old_database_gains_the_table_and_new_columns_in_place(world):
    db, _, ref = world
    with FinanceStore(db, read_only=True) as store:
        assert read_drift(store).empty  # written before drift existed: no table, no rows
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE drift (day DATE PRIMARY KEY, items BIGINT)")  # an older drift table
    con.close()
    with FinanceStore(db) as store:
        ensure_drift_table(store)
        cols = {r[0] for r in store.con.execute("SELECT column_name FROM information_schema.columns "
                                                "WHERE table_name = 'drift'").fetchall()}
    assert {"label_psi", "centroid_ratio", "drifted", "reasons", "basis"} <= cols
    assert len(update_drift(db, ref)) == 4


def test_a_reference_from_another_encoder_is_refused(world):
    db, _, ref = world
    with pytest.raises(ConfigError, match="built with the encoder 'hashing-char3'"):
        update_drift(db, ref, encoder=type("Other", (), {"name": "minilm", "encode": None})())


# ----------------------------------------------------------------------------------------------- CLI
def test_alerts_drift_prints_days_and_drift_alerts(world):
    db, ref_file, _ = world
    res = CliRunner().invoke(group, ["alerts", "--db", str(db), "--drift", "--reference", str(ref_file)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "drift vs keyword" in out and "thresholds: PSI > 0.2" in out
    lines = {ln[:10]: ln for ln in out.splitlines() if ln.startswith("2014-")}
    assert lines["2014-03-01"].endswith("ok") and lines["2014-03-03"].endswith("DRIFT")
    assert lines["2014-03-04"].endswith("too few items")
    assert "1 drift alert:" in out and "  2014-03-03  label PSI" in out
    assert "4 day(s) computed now" in out
    res = CliRunner().invoke(group, ["alerts", "--db", str(db), "--drift", "--reference", str(ref_file), "--json"])
    data = json.loads(res.output)
    assert data["computed"] == 0 and len(data["days"]) == 4  # stored by the first call
    assert [a["day"] for a in data["alerts"]] == ["2014-03-03"] and data["alerts"][0]["reasons"]
    assert data["days"][3]["verdict"] == "too few items" and data["days"][3]["notes"]


def test_alerts_drift_errors_are_one_line(world, tmp_path):
    db, _, _ = world
    res = CliRunner().invoke(group, ["alerts", "--db", str(db), "--drift", "--reference", str(tmp_path / "no.json")])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and "drift reference not found" in res.output
    assert "kgfusion finance drift-reference" in res.output
    res = CliRunner().invoke(group, ["alerts", "--db", str(tmp_path / "none.duckdb"), "--drift"])
    assert res.exit_code == 2 and "does not exist" in res.output
    (tmp_path / "bad.json").write_text("[]")
    res = CliRunner().invoke(group, ["alerts", "--db", str(db), "--drift", "--reference", str(tmp_path / "bad.json")])
    assert res.exit_code == 1 and "not a kgfusion drift reference" in res.output


@pytest.fixture
def data_dir(tmp_path):
    """datasets/ with tiny PhraseBank and Twitter files (the layout FinanceData.default reads)."""
    d = tmp_path / "data" / "datasets"
    (d / "financial_phrasebank").mkdir(parents=True)
    (d / "twitter_financial_news").mkdir(parents=True)
    pb = make_sentiment_examples(20, seed=1)
    lines = [f"{e.text} {i}@{e.label}" for i, e in enumerate(pb)]
    (d / "financial_phrasebank" / "Sentences_50Agree.txt").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (d / "financial_phrasebank" / "Sentences_AllAgree.txt").write_bytes(("\n".join(lines[::2]) + "\n").encode("latin-1"))
    codes = {"negative": "0", "positive": "1", "neutral": "2"}
    tw = make_sentiment_examples(20, seed=2)
    (d / "twitter_financial_news" / "sent_train.csv").write_text(
        "text,label\n" + "\n".join(f"tweet {e.text} {i},{codes[e.label]}" for i, e in enumerate(tw)) + "\n")
    return d.parent


def test_drift_reference_command_and_the_cache_beside_the_bundle(tiny_bundle, data_dir, tmp_path):
    out = tmp_path / "ref.json"
    res = CliRunner().invoke(group, ["drift-reference", "--bundle", str(tiny_bundle), "--out", str(out),
                                     "--data-dir", str(data_dir), "--encoder", "hashing"])
    assert res.exit_code == 0, res.output
    assert f"drift reference written: {out}" in res.output and "dev split, 12 items" in res.output
    ref = DriftReference.load(out)
    assert ref.n == 12 and ref.meta["bundle"] == "finsent-tiny" and ref.meta["encoder"] == "hashing-char3"
    assert len(ref.centroid) == 512 and len(ref.confidences) == 12
    # without --reference: built once beside the bundle, then read back while bundle.json is unchanged
    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "models" / "finsent-tiny"))
    built, source = load_or_build_reference(bundle, data_dir=data_dir, encoder="hashing")
    assert source.endswith("(built now)") and cached_reference_path(bundle).is_file()
    again, source = load_or_build_reference(bundle, data_dir=data_dir, encoder="hashing")
    assert source == str(cached_reference_path(bundle)) and again.fingerprint == built.fingerprint
    with pytest.raises(DataError, match="sentiment bundle not found"):
        load_or_build_reference(tmp_path / "nope")
