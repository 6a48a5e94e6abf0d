"""FinanceConfig: input columns, scoring/fusion weights, series resolution and alert thresholds."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kgfusion.core.config import ConfigBase, check_range
from kgfusion.core.errors import ConfigError

# The shipped bundle (under data/models/) and the backend the CLI, page, server and demo use by default:
# finsent-topics answers sentiment and topic from one forward pass (0.94x the sentiment-only finsent-full's
# monitor throughput, same sentiment accuracy: benchmarks/results/finance.json); "auto" is the best backend
# the bundle ships (ONNX int8, which is all it ships).
DEFAULT_BUNDLE_NAME = "finsent-topics"
DEFAULT_BACKEND = "auto"

# Column names tried, in order, when a column option is left empty ("" = auto-detect).
AUTO_COLUMNS: dict[str, tuple[str, ...]] = {
    "time": ("timestamp", "created_at", "datetime", "date", "time", "ts"),
    "id": ("id", "id_str", "item_id", "tweet_id"),
    "source": ("source", "feed", "user", "author"),
    "ticker": ("ticker", "symbol"),
}

# Former tickers and everyday names of S&P 500 issuers that the KG (a 2026 snapshot) does not carry;
# StockNet (2014-16) uses them. Same legal entity only (FB is Meta Platforms; CELG -> BMY is not).
HISTORICAL_TICKERS: dict[str, str] = {"FB": "META", "PCLN": "BKNG", "UTX": "RTX", "BRK-A": "BRK.B", "BRK.A": "BRK.B"}
EXTRA_NAMES: dict[str, str] = {
    "Facebook": "META", "Priceline": "BKNG", "United Technologies": "RTX", "Google": "GOOGL",
    "Exxon": "XOM", "Exxon Mobil": "XOM", "Wal-Mart": "WMT", "JPMorgan": "JPM", "JP Morgan": "JPM",
    "Disney": "DIS", "Home Depot": "HD", "Coca-Cola": "KO", "McDonalds": "MCD", "Amazon.com": "AMZN",
    "Procter & Gamble": "PG", "P&G": "PG", "Goldman": "GS", "Wells Fargo": "WFC", "Citi": "C",
}
# Short names that are also common words: they count as a company cue only next to its ticker.
WEAK_NAMES: tuple[str, ...] = (
    "Ball", "Block", "Booking", "Carnival", "Cooper", "Coherent", "Dover", "Dow", "Everest", "Flex", "Fox",
    "Hartford", "Progressive", "Southern", "Target", "Travelers", "Waters", "Williams", "Corning", "Mosaic",
    "Nasdaq", "Aon", "Citi",
)


@dataclass
class FinanceConfig(ConfigBase):
    """Settings of the finance monitor (all optional; defaults suit StockNet-style tweet feeds).

    Columns: ``text_col`` is required in the input; the others are optional and auto-detected from
    AUTO_COLUMNS when empty. Scoring: ``model_weight``/``rule_weight`` of log-linear fusion (>= 0);
    items longer than ``long_chars`` characters are split into sentences and aggregated. Linking:
    ``ticker_hint`` says what to do with the feed's own ticker column (``confirm``: it confirms an ambiguous ticker or
    common-word name of that company in the text but never links alone; ``fallback``: also link it when the
    text links nothing (low precision on StockNet, whose files hold tweets matched on "$T" in "HEI$T");
    ``ignore``; ``always``: add it to the text's links); ``extra_ambiguous``: tickers to treat like
    data/rules/finance/ambiguous_tickers.yaml entries without editing it; ``fuzzy_threshold`` is
    the minimum Linker score for a fuzzy company-name match (0..1). Series/alerts: ``resolution``,
    trailing ``window`` periods (>= 3) for the robust z-score of the negative share, at least
    ``min_history`` earlier periods with data, ``min_volume`` items in the period, ``z_threshold``
    and ``min_negative_share`` (0..1) to alert; ``top_evidence`` items per alert. Items linked to more than
    ``max_companies`` companies (cashtag lists, spam) are stored but left out of series and alerts.
    """

    text_col: str = "text"
    time_col: str = ""
    id_col: str = ""
    source_col: str = ""
    ticker_col: str = ""
    default_source: str = ""
    batch_size: int = 64
    long_chars: int = 600
    model_weight: float = 1.0
    rule_weight: float = 0.6
    ticker_hint: Literal["confirm", "fallback", "ignore", "always"] = "confirm"
    fuzzy_names: bool = False
    historical_tickers: dict[str, str] = field(default_factory=lambda: dict(HISTORICAL_TICKERS))
    extra_names: dict[str, str] = field(default_factory=lambda: dict(EXTRA_NAMES))
    weak_names: tuple[str, ...] = WEAK_NAMES
    extra_ambiguous: tuple[str, ...] = ()
    fuzzy_threshold: float = 0.85
    levels: tuple[str, ...] = ("company", "industry", "sector")
    max_companies: int = 5
    resolution: Literal["day", "hour"] = "day"
    window: int = 20
    min_history: int = 5
    min_volume: int = 10
    z_threshold: float = 3.0
    min_negative_share: float = 0.25
    top_evidence: int = 3

    def validate(self) -> None:
        if not self.text_col.strip():
            raise ConfigError("FinanceConfig.text_col is empty; name the text column (--text-col)")
        check_range(self, "batch_size", 1, 4096)
        check_range(self, "long_chars", 50, None)
        check_range(self, "model_weight", 0, None)
        check_range(self, "rule_weight", 0, None)
        check_range(self, "fuzzy_threshold", 0, 1)
        check_range(self, "window", 3, 10_000)
        check_range(self, "min_history", 1, None)
        check_range(self, "min_volume", 1, None)
        check_range(self, "z_threshold", 0, None, lo_open=True)
        check_range(self, "min_negative_share", 0, 1)
        check_range(self, "top_evidence", 0, 100)
        check_range(self, "max_companies", 1, None)
        if self.min_history > self.window:
            raise ConfigError(f"FinanceConfig.min_history={self.min_history} must be <= window={self.window}")
        bad = [lv for lv in self.levels if lv not in ("company", "industry", "sector")]
        if bad or not self.levels:
            raise ConfigError(f"FinanceConfig.levels={list(self.levels)}; allowed: company, industry, sector")

    @property
    def period_freq(self) -> str:
        """pandas frequency of one period ("D" or "h")."""
        return "D" if self.resolution == "day" else "h"
