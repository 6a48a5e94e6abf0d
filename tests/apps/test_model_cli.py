from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kgfusion.apps.cli import cli


@pytest.fixture(scope="module")
def pb_file(tmp_path_factory):
    from tests.conftest import make_sentiment_examples

    path = tmp_path_factory.mktemp("pb") / "pb.txt"
    rows = [f"{e.text} {i}@{e.label}" for i, e in enumerate(make_sentiment_examples(20))]
    rows += ["no label at all", rows[0]]  # one malformed row, one duplicate
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    return path


@pytest.fixture(scope="module")
def bundle(tiny_model_dir, pb_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    res = CliRunner().invoke(cli, ["model", "train", "--data", str(pb_file), "--out", str(out), "--base",
                                   tiny_model_dir, "--epochs", "2", "--batch-size", "8", "--max-length", "16",
                                   "--lr", "0.01", "--quiet", "--json"])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.output)


def test_train_writes_bundle_with_card_metrics_and_rejects(bundle):
    out, result = bundle
    assert result["rejects"] == 2
    rejects = (out / "rejects.csv").read_text()
    assert "expected 'sentence@label'" in rejects and "duplicate of row 1" in rejects
    split = result["data"]["split"]
    assert (split["train"], split["dev"], split["test"], split["seed"]) == (48, 6, 6, 13)
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Rebuild" in card and "kgfusion model train" in card
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["test_accuracy"] <= 1 and "confusion" in metrics["details"]["test"]


def test_evaluate_uses_the_recorded_test_split(bundle):
    out, result = bundle
    res = CliRunner().invoke(cli, ["model", "evaluate", str(out), "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.output)
    assert metrics["n"] == 6 and metrics["split"] == "test"
    assert metrics["accuracy"] == pytest.approx(result["metrics"]["test_accuracy"])
    text = CliRunner().invoke(cli, ["model", "evaluate", str(out), "--split", "dev"]).output
    assert "macro-F1" in text and "confusion" in text


def test_predict_and_info(bundle):
    out, _ = bundle
    res = CliRunner().invoke(cli, ["model", "predict", str(out), "profit rose", "loss fell", "--json"])
    rows = json.loads(res.output)
    assert [r["text"] for r in rows] == ["profit rose", "loss fell"]
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-4 for r in rows)
    info = json.loads(CliRunner().invoke(cli, ["model", "info", str(out), "--json"]).output)
    assert info["verified"] and info["manifest"]["method"] == "lora"


def test_corrupt_bundle_is_one_clear_error(bundle, tmp_path):
    import shutil

    out, _ = bundle
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"garbage")
    res = CliRunner().invoke(cli, ["model", "info", str(broken)])
    assert res.exit_code == 1
    assert "checksum mismatch" in res.output and "Traceback" not in res.output


def test_missing_data_file_is_a_usage_error():
    res = CliRunner().invoke(cli, ["model", "train", "--data", "nope.csv", "--out", "x"])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_help_lists_groups():
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    for group in ("model", "kg", "demo"):
        assert group in res.output


def test_quantize_adds_onnx_to_bundle_and_reports_rows(bundle, tmp_path):
    import shutil

    out, _ = bundle
    copy = tmp_path / "q"
    shutil.copytree(out, copy)
    res = CliRunner().invoke(cli, ["model", "quantize", str(copy), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)["rows"]
    assert [r["variant"] for r in rows] == ["fp32", "int8 (torch dynamic)", "onnx-int8 (ORT)"]
    assert all(0 <= r["accuracy"] <= 1 and r["items_per_s"] > 0 for r in rows)
    assert rows[1]["size_mb"] < rows[0]["size_mb"]
    # The export is now part of the verified bundle and serves predictions.
    pred = CliRunner().invoke(cli, ["model", "predict", str(copy), "profit rose", "--backend", "onnx-int8", "--json"])
    assert pred.exit_code == 0, pred.output
    assert json.loads(pred.output)[0]["label"] in ("negative", "neutral", "positive")


def test_compress_distils_a_smaller_student(bundle, tmp_path):
    out, _ = bundle
    student = tmp_path / "student"
    res = CliRunner().invoke(cli, ["model", "compress", str(out), "--layers", "1", "--epochs", "1", "--prune", "0.3",
                                   "--out", str(student), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["variant"]: r for r in json.loads(res.output)["rows"]}
    assert rows["student 1L fp32"]["size_mb"] < rows["teacher fp32"]["size_mb"]
    assert any(v.startswith("pruned") for v in rows)
    info = json.loads(CliRunner().invoke(cli, ["model", "info", str(student), "--json"]).output)
    assert info["verified"] and info["manifest"]["method"] == "full"


def test_search_prints_trials(tiny_model_dir, pb_file):
    res = CliRunner().invoke(cli, ["model", "search", "--data", str(pb_file), "--base", tiny_model_dir,
                                   "--trials", "2", "--max-steps", "2", "--max-length", "16", "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.output)
    assert len(obj["trials"]) == 2 and obj["best_value"] == max(t["value"] for t in obj["trials"])


def test_model_help_says_only_what_exists():
    """The group used to promise "serve encoders" with no serving command behind it."""
    top = CliRunner().invoke(cli, ["--help"]).output
    model = CliRunner().invoke(cli, ["model", "--help"]).output
    model_line = next(line for line in top.splitlines() if line.strip().startswith("model"))
    assert "serve" not in model_line.lower() and "serve" not in model.split("Commands:")[0].lower()
    listed = {line.split()[0] for line in model.split("Commands:")[1].splitlines() if line.strip()}
    for verb in ("train", "pretrain", "evaluate", "quantize", "compress"):
        assert verb in listed and verb in model_line
