"""Descriptive event study: the next-day return after each company alert vs the ticker's average day.

Descriptive only: no abnormal-return model, no significance test, overlapping events not removed;
it says what happened next in this sample, not that sentiment predicts returns.
Prices: a CSV with ticker, Date and Adj Close (or Close) columns (StockNet's stocknet_prices_raw.csv.gz).
The "next-day return" of an alert in period d is close(first trading day after d) / close(last trading
day on or before d) - 1.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgfusion.core.errors import DataError


def read_prices(path: str | Path) -> pd.DataFrame:
    """Frame ticker, date, close (adjusted when available); rows with missing closes dropped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: prices file not found")
    frame = pd.read_csv(path)
    cols = {c.lower().replace(" ", "_"): c for c in frame.columns}
    close = cols.get("adj_close") or cols.get("close")
    if "ticker" not in cols or "date" not in cols or close is None:
        raise DataError(f"{path}: need columns ticker, Date and Adj Close or Close; found {list(frame.columns)}")
    out = pd.DataFrame({"ticker": frame[cols["ticker"]].astype(str).str.upper(),
                        "date": pd.to_datetime(frame[cols["date"]], errors="coerce"),
                        "close": pd.to_numeric(frame[close], errors="coerce")})
    return out.dropna().sort_values(["ticker", "date"]).reset_index(drop=True)


def next_day_returns(alerts: pd.DataFrame, prices: pd.DataFrame,
                     entity_of: Callable[[str], str | None]) -> pd.DataFrame:
    """Per company alert with prices: entity, name, period, price ticker, next_return, base_mean, base_neg_rate."""
    prices = prices.assign(entity=prices["ticker"].map(entity_of)).dropna(subset=["entity"])
    rows = []
    company = alerts[alerts["level"] == "company"] if "level" in alerts else alerts
    for entity, g in prices.groupby("entity"):
        g = g.sort_values("date").drop_duplicates("date")
        rets = g["close"].pct_change().dropna()
        dates = g["date"].to_numpy()
        closes = g["close"].to_numpy()
        for a in company[company["entity"] == entity].itertuples(index=False):
            day = pd.Timestamp(a.period).normalize().to_datetime64()
            i = np.searchsorted(dates, day, side="right") - 1  # last trading day on or before the alert day
            if i < 0 or i + 1 >= len(dates):
                continue
            rows.append({"entity": entity, "name": a.name, "period": a.period, "ticker": g["ticker"].iloc[0],
                         "next_return": float(closes[i + 1] / closes[i] - 1.0),
                         "base_mean": float(rets.mean()), "base_neg_rate": float((rets < 0).mean())})
    return pd.DataFrame(rows, columns=["entity", "name", "period", "ticker", "next_return", "base_mean",
                                       "base_neg_rate"])


def summarize(events: pd.DataFrame) -> dict[str, Any]:
    """Mean/median next-day return, hit rate of a negative next day, and the same tickers' averages."""
    if events.empty:
        return {"events": 0, "note": "no company alert had prices for the next trading day"}
    return {
        "events": int(len(events)),
        "mean_next_return": float(events["next_return"].mean()),
        "median_next_return": float(events["next_return"].median()),
        "hit_rate_negative": float((events["next_return"] < 0).mean()),
        "baseline_mean_return": float(events["base_mean"].mean()),
        "baseline_negative_rate": float(events["base_neg_rate"].mean()),
        "note": "descriptive: next-day close-to-close return after alert days vs the same tickers' average "
                "day; no abnormal-return model, no significance test",
    }
