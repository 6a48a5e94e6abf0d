"""`kgfusion model update`: a new version from new data and corrections, scored on old and new held-out splits,
registered, promoted only through the forgetting gate."""
from __future__ import annotations

import csv
import json
import random

import pytest
from click.testing import CliRunner

from kgfusion.apps.cli import cli
from tests.conftest import make_sentiment_examples


@pytest.fixture(scope="module")
def old_bundle(tiny_model_dir, tmp_path_factory):
    """A tiny bundle trained by `model train --data` (so it records its training file and splits)."""
    data = tmp_path_factory.mktemp("old") / "old.csv"
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i, e in enumerate(make_sentiment_examples(20)):
            w.writerow([f"{e.text} {i}", e.label])
    out = tmp_path_factory.mktemp("bundles") / "tiny-sent"
    res = CliRunner().invoke(cli, ["model", "train", "--data", str(data), "--out", str(out), "--base", tiny_model_dir,
                                   "--method", "full", "--epochs", "4", "--batch-size", "8", "--max-length", "16",
                                   "--lr", "0.003", "--quiet"])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def new_data(tmp_path):
    rng = random.Random(3)
    words = {"positive": ["stock soared", "rally strong"], "negative": ["stock plunged", "selloff deep"],
             "neutral": ["analyst call", "ticker today"]}
    path = tmp_path / "new.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i in range(60):
            label = rng.choice(sorted(words))
            w.writerow([f"{rng.choice(words[label])} {i}", label])
    return path


def _update(bundle, new_data, out, registry, monkeypatch, *extra):
    monkeypatch.setenv("KGFUSION_REGISTRY", str(registry))
    return CliRunner().invoke(cli, ["model", "update", str(bundle), "--data", str(new_data), "--out", str(out),
                                    "--epochs", "3", "--lr", "0.003", "--replay", "30", "--by", "ana", "--quiet",
                                    "--json", *extra])


def test_update_scores_both_splits_registers_and_gates(old_bundle, new_data, tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    res = _update(old_bundle, new_data, tmp_path / "v-new", registry, monkeypatch, "--max-drop", "100")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["promote"] is True and out["replayed"] == 30 and out["method"] == "rehearsal"
    assert {"accuracy", "n"} <= set(out["old_heldout"]) and {"accuracy", "n"} <= set(out["new_heldout"])
    assert out["new_heldout"]["n"] == 6  # 10% of the new file held out
    versions = json.loads(CliRunner().invoke(cli, ["model", "versions", old_bundle.name, "--json"]).output)
    listed = versions["versions"] if isinstance(versions, dict) else versions
    assert any(v.get("version") == 1 for v in listed)
    info = json.loads((tmp_path / "v-new" / "data.json").read_text())
    assert info["updates"][-1]["method"] == "rehearsal" and info["path"]  # the old task's file stays recorded
    # a gate nobody can pass: written and registered, not promoted, exit code 1 with the reason
    res = _update(old_bundle, new_data, tmp_path / "v-strict", registry, monkeypatch, "--max-drop", "0",
                  "--method", "naive", "--lr", "0.05")
    body = json.loads(res.output)
    if body["old_drop_points"] > 0:
        assert res.exit_code == 1 and "not promoted" in body["message"]
    else:
        assert res.exit_code == 0 and body["promote"]


def test_update_errors_are_one_line(old_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("KGFUSION_REGISTRY", str(tmp_path / "r"))
    res = CliRunner().invoke(cli, ["model", "update", str(old_bundle), "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "give --data FILE and/or --corrections DB" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n" + "".join(f"stock soared {i},bullish\nstock fell {i},bearish\n" for i in range(10)))
    res = CliRunner().invoke(cli, ["model", "update", str(old_bundle), "--data", str(bad), "--out", str(tmp_path / "y")])
    assert res.exit_code != 0 and "not among the model's labels" in res.output and "Traceback" not in res.output
