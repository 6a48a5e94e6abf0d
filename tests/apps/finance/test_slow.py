"""Slow tests: the real MiniLM encoder (fuzzy linking) and the shipped sentiment bundle."""
from __future__ import annotations

import pytest

from kgfusion.apps.common import repo_data_dir
from kgfusion.apps.finance.config import DEFAULT_BUNDLE_NAME, FinanceConfig
from kgfusion.apps.finance.linking import CompanyCatalog, CompanyLinker

pytestmark = pytest.mark.slow


def test_fuzzy_names_with_the_real_entity_index(finance_graph, finance_rules):
    from kgfusion.apps.finance.pipeline import build_fuzzy_linker

    cfg = FinanceConfig(fuzzy_names=True, extra_names={})
    lk = CompanyLinker(CompanyCatalog.from_graph(finance_graph, cfg), finance_rules, cfg, build_fuzzy_linker(finance_graph))
    got = [(m.company.ticker, m.match) for m in lk.link("Shares of Exxon Mobil slipped while Microsoft Corp rose")]
    assert ("XOM", "fuzzy") in got and ("MSFT", "name") in got
    assert [m for m in lk.link("Weather Report for Tuesday") if m.match == "fuzzy"] == []


def test_shipped_bundle_scores_clear_cases(finance_rules):
    from kgfusion.apps.finance.scoring import SentimentScorer
    from kgfusion.core.predict import Predictor

    predictor = Predictor.from_bundle(repo_data_dir() / "models" / DEFAULT_BUNDLE_NAME, backend="auto")
    scorer = SentimentScorer(predictor, finance_rules)
    bad, good = scorer.score(["Operating profit fell sharply and the company cut 500 jobs",
                              "Net sales rose 25% and the order backlog hit a record high"])
    assert bad.label == "negative" and good.label == "positive" and bad.score < 0 < good.score
