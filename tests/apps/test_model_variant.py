"""--model-variant fast|accurate: the fast sibling bundle <name>-fast, or a clear error naming its recipe."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from kgfusion.apps.common import bundle_variant
from kgfusion.core.errors import KgfusionError


@pytest.fixture
def models(tmp_path, monkeypatch):
    root = tmp_path / "data" / "models"
    (root / "finsent-topics").mkdir(parents=True)
    (root / "finsent-topics-fast").mkdir()
    (root / "medical-ner-bc5cdr").mkdir()
    monkeypatch.setenv("KGFUSION_DATA", str(tmp_path / "data"))
    return root


def test_fast_names_the_sibling_for_names_and_paths(models):
    assert bundle_variant("finsent-topics", "fast") == "finsent-topics-fast"
    assert bundle_variant(models / "finsent-topics", "fast") == models / "finsent-topics-fast"
    assert bundle_variant(str(models / "finsent-topics"), "fast") == models / "finsent-topics-fast"
    assert bundle_variant("finsent-topics", "accurate") == "finsent-topics"
    assert bundle_variant("finsent-topics-fast", "fast") == "finsent-topics-fast"  # already the fast one


def test_missing_fast_variant_says_how_to_build_it(models):
    with pytest.raises(KgfusionError, match=r"no fast variant of medical-ner-bc5cdr: .* build it with `kgfusion model "
                                            r"train --recipe data/recipes/medical-ner-bc5cdr-fast.json`"):
        bundle_variant("medical-ner-bc5cdr", "fast")
    with pytest.raises(KgfusionError, match="unknown"):
        bundle_variant("finsent-topics", "tiny")


def test_cli_option_reaches_the_bundle_choice(models, tmp_path):
    from kgfusion.apps.cli import cli as main

    note = tmp_path / "note.txt"
    note.write_text("Patient denies chest pain.")
    res = CliRunner().invoke(main, ["medical", "extract", str(note), "--out", str(tmp_path / "o.jsonl"),
                                    "--model-variant", "fast"])
    assert res.exit_code == 1 and "no fast variant of medical-ner-bc5cdr" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(main, ["finance", "score", "--help"])
    assert "--model-variant [accurate|fast]" in res.output


def test_server_loads_the_chosen_variant_or_reports_why_not(models, monkeypatch):
    from kgfusion.apps.serve import services as svc
    from kgfusion.apps.serve.settings import ServeSettings
    from kgfusion.core.errors import ConfigError

    monkeypatch.setattr(svc.GraphService, "load", classmethod(lambda cls, *a, **k: None))
    out = svc.Services.load(["medical"], model_variant="fast")
    assert out.medical is None and "no fast variant of medical-ner-bc5cdr" in out.errors["medical"]
    with pytest.raises(ConfigError, match="model_variant='tiny'"):
        ServeSettings(model_variant="tiny").validate()
    res = CliRunner().invoke(__import__("kgfusion.apps.cli", fromlist=["cli"]).cli, ["serve", "--help"])
    assert "--model-variant [accurate|fast]" in res.output
