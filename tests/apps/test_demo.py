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
    # the finance app's bundle with its default backend (next to fp32 when it ships fp32), per held-out test set
    assert "finsent-topics (onnx-int8 by default, the only model it ships)" in res.output
    rows = re.findall(r"^(phrasebank50|phrasebank_allagree|twitter)\s+(\d+)\s+(\d\.\d{4})"
                      r"(?:\s+(\d\.\d{4})\s+([+-]\d+\.\d) points)?$", res.output, flags=re.M)
    assert [r[0] for r in rows] == ["phrasebank50", "phrasebank_allagree", "twitter"]
    for _, n, first, second, diff in rows:
        assert int(n) > 0 and float(first) > 0.75
        if second:
            assert float(diff) == pytest.approx(100 * (float(second) - float(first)), abs=0.06)
    assert "negative" in res.output and "positive" in res.output
    assert "items linked to companies" in res.output and (tmp_path / "runs" / "finance.duckdb").is_file()
    assert re.search(r"10 notes, \d+ mentions", res.output)  # the medical step read every sample note
    assert "negated" in res.output and "DOID:" in res.output
    ndcg = float(re.search(r"NDCG@10 (\d\.\d+)", res.output).group(1))
    assert ndcg > 0.1 and "Cold start" in res.output  # recommender metrics and the new-user fallback
