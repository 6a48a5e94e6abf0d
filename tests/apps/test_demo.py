from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from kgfusion.apps.cli import cli


@pytest.mark.slow
def test_demo_evaluates_the_shipped_bundle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["demo", "--quick"])
    assert res.exit_code == 0, res.output
    accuracies = [float(x) for x in re.findall(r"accuracy (\d\.\d+)", res.output)]
    assert len(accuracies) == 2 and min(accuracies) > 0.75  # fp32 and int8 on the held-out split
    assert "negative" in res.output and "positive" in res.output
    assert "items linked to companies" in res.output and (tmp_path / "runs" / "finance.duckdb").is_file()
    assert re.search(r"10 notes, \d+ mentions", res.output)  # the medical step read every sample note
    assert "negated" in res.output and "DOID:" in res.output
    ndcg = float(re.search(r"NDCG@10 (\d\.\d+)", res.output).group(1))
    assert ndcg > 0.1 and "Cold start" in res.output  # recommender metrics and the new-user fallback
