from __future__ import annotations

import pytest

from kgfusion.apps.finance.config import FinanceConfig
from kgfusion.apps.finance.linking import CompanyCatalog, CompanyLinker, neighbourhood


@pytest.fixture
def linker(finance_graph, finance_rules):
    cfg = FinanceConfig()
    return CompanyLinker(CompanyCatalog.from_graph(finance_graph, cfg), finance_rules, cfg)


def links(linker, text, hint=None):
    return [(m.company.ticker, m.match) for m in linker.link(text, hint)]


def test_cashtags_tickers_and_names(linker):
    assert links(linker, "$AAPL and MSFT up; Apple's iPhone sells") == [("AAPL", "cashtag"), ("MSFT", "ticker")]
    assert links(linker, "Microsoft beats") == [("MSFT", "name")]
    assert links(linker, "$xom lower") == [("XOM", "cashtag")]


def test_ambiguous_tickers_need_a_cashtag_or_the_company_name(linker):
    assert links(linker, "ALL IN on tech, IT is the future") == []
    assert links(linker, "Allstate raises ALL guidance") == [("ALL", "name")]
    assert links(linker, "Analysts like $IT today") == [("IT", "cashtag")]
    ticker_only = [m for m in linker.link("IT spending rises, Gartner says") if m.match == "ticker"]
    assert ticker_only == []  # the name links it; the bare IT is only accepted with the name present
    assert links(linker, "Gartner: IT budgets grow") == [("IT", "name")]


def test_bare_tickers_not_trusted_in_shouting_text_or_urls(linker):
    assert links(linker, "BUY MSFT NOW BEFORE IT IS TOO LATE") == []
    assert links(linker, "read http://t.co/MSFT now") == []


def test_weak_names_count_only_next_to_their_ticker(linker):
    assert links(linker, "Analysts raise their price Target") == []
    assert links(linker, "Target cuts outlook, TGT down") == [("TGT", "name")]


def test_historical_tickers_and_extra_names(linker):
    assert links(linker, "$FB beats") == [("META", "cashtag")]
    assert links(linker, "Facebook users grow") == [("META", "name")]


def test_feed_ticker_confirms_but_never_links_alone(finance_graph, finance_rules, linker):
    assert links(linker, "great quarter", hint="AAPL") == []
    assert links(linker, "$MSFT great quarter", hint="AAPL") == [("MSFT", "cashtag")]
    assert links(linker, "IT budgets grow", hint="IT") == [("IT", "ticker")]  # ambiguous, confirmed by the feed
    assert links(linker, "IT budgets grow", hint="MSFT") == []
    assert links(linker, "Target shoppers return", hint="TGT") == [("TGT", "name")]

    def with_hint(mode):
        cfg = FinanceConfig(ticker_hint=mode)
        return CompanyLinker(CompanyCatalog.from_graph(finance_graph, cfg), finance_rules, cfg)

    assert links(with_hint("fallback"), "great quarter", hint="AAPL") == [("AAPL", "feed_hint")]
    assert links(with_hint("fallback"), "$MSFT up", hint="AAPL") == [("MSFT", "cashtag")]
    assert links(with_hint("always"), "$MSFT up", hint="AAPL") == [("MSFT", "cashtag"), ("AAPL", "feed_hint")]
    assert links(with_hint("ignore"), "IT budgets grow", hint="IT") == []


def test_truncated_cashtags_are_skipped(linker):
    assert links(linker, "RT @x: earnings M: $AAPL F: $MSFT…") == [("AAPL", "cashtag")]


def test_mentions_roll_up_to_industry_and_sector_with_evidence(linker):
    (m,) = linker.link("$AAPL falls")
    assert (m.company.industry, m.company.sector) == ("Technology Hardware", "Information Technology")
    assert (m.start, m.end, m.surface) == (0, 5, "$AAPL") and "cashtag" in m.detail
    assert any("kgf:inSector Information Technology" in f for f in m.kg_facts())


def test_fuzzy_names_through_a_linker(finance_graph, finance_rules):
    class FakeLinker:
        def link(self, mention, types=None):
            from types import SimpleNamespace

            hit = mention == "Exxon Mobil"
            return SimpleNamespace(uri="https://kgfusion.dev/id/company/XOM" if hit else None,
                                   match="ngram" if hit else "none", score=0.91 if hit else 0.2)

    cfg = FinanceConfig(fuzzy_names=True, extra_names={})
    lk = CompanyLinker(CompanyCatalog.from_graph(finance_graph, cfg), finance_rules, cfg, FakeLinker())
    assert links(lk, "Shares of Exxon Mobil slipped") == [("XOM", "fuzzy")]


def test_fuzzy_span_cache_is_bounded_and_keeps_answers(finance_graph, finance_rules, monkeypatch):
    from types import SimpleNamespace

    import kgfusion.apps.finance.linking as linking

    calls: list[str] = []

    class CountingLinker:
        def link(self, mention, types=None):
            calls.append(mention)
            hit = mention == "Exxon Mobil"
            return SimpleNamespace(uri="https://kgfusion.dev/id/company/XOM" if hit else None,
                                   match="ngram" if hit else "none", score=0.91 if hit else 0.2)

    monkeypatch.setattr(linking, "FUZZY_CACHE_SIZE", 2)
    cfg = FinanceConfig(fuzzy_names=True, extra_names={})
    lk = CompanyLinker(CompanyCatalog.from_graph(finance_graph, cfg), finance_rules, cfg, CountingLinker())
    assert links(lk, "Exxon Mobil rallies") == [("XOM", "fuzzy")]
    assert links(lk, "Exxon Mobil rallies") == [("XOM", "fuzzy")] and calls.count("Exxon Mobil") == 1  # cached
    for name in ("Northwind Traders", "Contoso Holdings", "Fabrikam Group"):
        links(lk, f"{name} reports")
    assert len(lk._fuzzy_cache) <= 2  # the oldest spans were dropped
    assert links(lk, "Exxon Mobil rallies") == [("XOM", "fuzzy")] and calls.count("Exxon Mobil") == 2  # linked again


def test_neighbourhood_lists_sector_and_industry(finance_graph):
    rows = neighbourhood(finance_graph, "https://kgfusion.dev/id/company/AAPL")
    preds = {r["predicate"]: r["neighbour"] for r in rows}
    assert preds["kgf:inSector"] == "Information Technology"


def test_name_scan_matches_the_longest_first_alternation_on_shipped_tweets(finance_rules):
    """The trie over the shipped S&P catalog finds exactly what an alternation of its names finds."""
    import gzip
    import json
    import re

    from kgfusion.apps.common import load_kg, repo_data_dir

    cfg = FinanceConfig()
    catalog = CompanyCatalog.from_graph(load_kg(repo_data_dir() / "kg" / "finance.ttl"), cfg)
    alternation = "|".join(re.escape(n) for n in sorted(catalog.names, key=len, reverse=True))
    reference = re.compile(rf"(?<![\w&])(?:{alternation})(?![\w&])")
    scan = CompanyLinker(catalog, finance_rules, cfg)._names
    with gzip.open(repo_data_dir() / "datasets" / "stocknet" / "stocknet_raw_tweets.jsonl.gz", "rt") as f:
        texts = [json.loads(line)["text"] for _, line in zip(range(3000), f)]
    texts += [f"{n} and {n}s, {n}-led, {n}&Co" for n in list(catalog.names)[:200]]
    found = 0
    for text in texts:
        expected = [(m.start(), m.group()) for m in reference.finditer(text)]
        assert [(m.start(), m.group()) for m in scan.finditer(text)] == expected, text
        found += len(expected)
    assert found > 500
