"""The finance app's own rule kind, ``ambiguous_ticker``, registered with the rule registry at import.

Import this module before loading finance rule files (data/rules/finance/ambiguous_tickers.yaml); the
knowledge layer does not know the kind otherwise.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from kgfusion.knowledge.rules import Rule, RuleBase, fail, register_kind

_TICKER_RE = re.compile(r"^[A-Z][A-Z0-9]{0,5}(?:\.[A-Z])?$")


@register_kind("ambiguous_ticker")
@dataclass(frozen=True, kw_only=True)
class AmbiguousTicker(Rule):
    """A ticker that is also a common word ("ALL", "IT"): link it only with a ``requires`` cue
    (``cashtag``: $ALL; ``company_name``: the company named nearby)."""

    ticker: str
    company: str
    requires: tuple[Literal["cashtag", "company_name"], ...] = ("cashtag", "company_name")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _TICKER_RE.match(self.ticker):
            fail(self.id, f"ticker {self.ticker!r} is not an upper-case ticker",
                 "write it in quotes and upper case, e.g. ticker: 'ON'")
        if not self.requires:
            fail(self.id, "requires is empty", "list at least one of cashtag, company_name")


def ambiguous_tickers(rulebase: RuleBase) -> dict[str, AmbiguousTicker]:
    """Ticker -> AmbiguousTicker rule (tickers that need a cashtag or company name to be linked)."""
    return {r.ticker: r for r in rulebase.by_kind(AmbiguousTicker)}
