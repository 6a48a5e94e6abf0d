from __future__ import annotations

import pandas as pd
import pytest

from kgfusion.apps.finance.eventstudy import next_day_returns, read_prices, summarize
from kgfusion.core.errors import DataError


def test_next_day_return_after_an_alert(tmp_path):
    prices = tmp_path / "p.csv"
    prices.write_text("ticker,Date,Open,High,Low,Close,Adj Close,Volume\n"
                      "FB,2014-01-02,1,1,1,1,100,1\nFB,2014-01-03,1,1,1,1,110,1\n"
                      "FB,2014-01-06,1,1,1,1,99,1\nFB,2014-01-07,1,1,1,1,99,1\n")
    alerts = pd.DataFrame({"level": ["company", "company", "sector"], "entity": ["META", "META", "META"],
                           "name": ["META"] * 3,
                           "period": pd.to_datetime(["2014-01-04", "2014-01-07", "2014-01-03"])})
    events = next_day_returns(alerts, read_prices(prices), {"FB": "META"}.get)
    # 2014-01-04 is a Saturday: last close on or before it is 01-03 (110), next is 01-06 (99)
    assert len(events) == 1 and events.iloc[0]["next_return"] == pytest.approx(99 / 110 - 1)
    s = summarize(events)
    assert s["events"] == 1 and s["hit_rate_negative"] == 1.0 and "descriptive" in s["note"]
    assert s["baseline_negative_rate"] == pytest.approx(1 / 3)


def test_prices_need_the_columns(tmp_path):
    bad = tmp_path / "p.csv"
    bad.write_text("sym,when,price\nA,2014-01-01,1\n")
    with pytest.raises(DataError, match="Adj Close"):
        read_prices(bad)
    assert summarize(pd.DataFrame())["events"] == 0
