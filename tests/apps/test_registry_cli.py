"""`kgfusion model versions | register | promote | rollback`, and the apps loading a name's promoted version
(finance scoring, the medical extractor, the HTTP service) from a registry in a temp dir."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kgfusion.apps.cli import cli
from kgfusion.apps.finance.config import DEFAULT_BUNDLE_NAME as FINSENT
from tests.core.lifecycle.test_registry import fake_bundle

FINANCE_DATA = Path(__file__).resolve().parent.parent / "data" / "finance"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """$KGFUSION_DATA with a shipped (fake, unloadable) finsent-full and the mini finance KG; $KGFUSION_REGISTRY."""
    data = tmp_path / "data"
    fake_bundle(data / "models" / "finsent-full")
    (data / "kg").mkdir()
    shutil.copyfile(FINANCE_DATA / "mini_finance.ttl", data / "kg" / "finance.ttl")
    monkeypatch.setenv("KGFUSION_DATA", str(data))
    monkeypatch.setenv("KGFUSION_REGISTRY", str(tmp_path / "registry"))
    return tmp_path


def model(*args: str):
    return CliRunner().invoke(cli, ["model", *map(str, args)])


def test_register_versions_promote_rollback(env):
    train = env / "train.csv"
    train.write_text("text,label\nprofit rose,positive\n")
    res = model("register", "finsent-full", fake_bundle(env / "new"), "--by", "ana", "--data", train)
    assert res.exit_code == 0, res.output
    assert "finsent-full v1 registered" in res.output and "dev macro_f1 0.500" in res.output
    assert "kgfusion model promote finsent-full 1 --by NAME" in res.output

    lines = model("versions", "finsent-full").output.splitlines()
    assert lines[1].split() == ["version", "parent", "status", "created", "by", "metrics"]
    assert lines[2].split()[:3] == ["*", "v0", "-"] and "shipped" in lines[2]  # nothing promoted: v0 in effect
    assert lines[3].split()[:4] == ["v1", "finsent-full", "(v0)", "registered"] and " ana " in lines[3]
    assert "the apps load: v0, the shipped bundle" in lines[-1]

    res = model("promote", "finsent-full", "1", "--by", "ana", "--reason", "better on tweets")
    assert res.exit_code == 0 and "finsent-full v1 promoted by ana; the apps now load v1" in res.output
    res = model("register", "finsent-full", fake_bundle(env / "newer", weights=b"2"), "--by", "bo", "--promote")
    assert res.exit_code == 0 and "v2 registered" in res.output and "the apps now load v2" in res.output

    listed = json.loads(model("versions", "finsent-full", "--json").output)
    assert listed["promoted"] == 2
    by_version = {v["version"]: v for v in listed["versions"]}
    assert by_version[1]["status"] == "superseded" and by_version[2]["parent"] == 1
    assert by_version[1]["data"] == {str(train): by_version[1]["data"][str(train)]}
    assert [e["reason"] for e in by_version[1]["events"]][1] == "better on tweets"
    assert by_version[2]["promoted"] and not by_version[0]["promoted"]

    res = model("rollback", "finsent-full", "--by", "cy")
    assert res.exit_code == 0 and "v2 rolled back by cy; the apps now load v1" in res.output
    res = model("rollback", "finsent-full", "--by", "cy", "--to", "0", "--json")
    assert json.loads(res.output) == {"name": "finsent-full", "rolled_back": 1, "promoted": None}
    res = model("rollback", "finsent-full", "--by", "cy")
    assert res.exit_code == 1 and res.output.startswith("Error: nothing to roll back")


@pytest.mark.parametrize("args, message", [
    (["versions", "nope"], "no model named 'nope'"),
    (["promote", "finsent-full", "3", "--by", "a"], "finsent-full has no version 3 (versions: none)"),
    (["rollback", "finsent-full", "--by", "a"], "nothing to roll back"),
    (["register", "x", "/no/such/dir", "--by", "a"], "/no/such/dir: bundle directory not found"),
    (["register", "x", "{tmp}", "--by", "a"], "is not a kgfusion bundle"),
    (["register", "x", "{bundle}", "--by", "a", "--recipe", "{tmp}/r.json"], "--recipe"),
    (["register", "x", "{bundle}", "--by", "a", "--parent", "4"], "parent v4"),
    (["promote", "finsent-full", "1", "--by", " "], "--by NAME"),
])
def test_errors_are_one_line(env, args, message):
    bundle = fake_bundle(env / "b")
    args = [a.format(tmp=env, bundle=bundle) for a in args]
    res = model(*args)
    assert res.exit_code == 1, res.output
    assert res.output.startswith("Error: ") and message in res.output and len(res.output.strip().splitlines()) == 1
    assert res.exception is None or isinstance(res.exception, SystemExit)


def _promote_tiny(bundle: Path, name: str) -> None:
    res = model("register", name, bundle, "--by", "ana", "--promote")
    assert res.exit_code == 0, res.output


def test_finance_scoring_loads_the_promoted_version(env, tiny_bundle):
    shutil.copytree(tiny_bundle, env / "data" / "models" / FINSENT)  # the shipped v0
    _promote_tiny(tiny_bundle, FINSENT)
    shipped = env / "data" / "models" / FINSENT
    res = CliRunner().invoke(cli, ["finance", "score", str(FINANCE_DATA / "feed.jsonl"), "--limit", "3",
                                   "--backend", "fp32", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["summary"]["model"] == f"{FINSENT}@v1"
    evidence = json.loads(out["items"][0]["evidence"]) if isinstance(out["items"][0]["evidence"], str) \
        else out["items"][0]["evidence"]
    assert any(e["kind"] == "model" and e["source"] == f"{FINSENT}@v1" for e in evidence)
    res = CliRunner().invoke(cli, ["finance", "score", str(FINANCE_DATA / "feed.jsonl"), "--limit", "2",
                                   "--bundle", str(shipped), "--backend", "fp32"])
    assert res.exit_code == 0, res.output
    assert f"model: {FINSENT}@v1 (promoted in the registry {env / 'registry'})" in res.output

    from kgfusion.apps.serve.services import FinanceService, bundle_version

    service = FinanceService.load(shipped, backend="fp32")
    assert service.info.name == f"{FINSENT}@v1"
    assert service.info.version == bundle_version(env / "registry" / FINSENT / "v1")

    assert model("rollback", FINSENT, "--by", "ana").exit_code == 0  # back to the shipped v0
    res = CliRunner().invoke(cli, ["finance", "score", str(FINANCE_DATA / "feed.jsonl"), "--limit", "1",
                                   "--backend", "fp32", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["summary"]["model"] == FINSENT


def test_the_medical_extractor_loads_the_promoted_version(env, tiny_ner_bundle):
    from kgfusion.apps.medical.config import MedicalConfig
    from kgfusion.apps.medical.extract import build_extractor
    from tests.apps.medical.conftest import keyword_encoder, make_data_dir

    data = make_data_dir(env / "data")
    fake_bundle(data / "models" / "medical-ner")
    _promote_tiny(tiny_ner_bundle, "medical-ner")
    extractor = build_extractor(MedicalConfig(bundle="medical-ner", backend="fp32"), data, encoder=keyword_encoder())
    assert extractor.model_name == "medical-ner@v1"
    assert extractor.predictor.labels == ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
