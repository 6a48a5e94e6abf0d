from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgfusion.apps.finance.alerts import detect_alerts, robust_z, top_evidence, trailing_median_mad
from kgfusion.apps.finance.config import FinanceConfig
from kgfusion.apps.finance.timeseries import build_series, entity_rows

CFG = FinanceConfig(window=20, min_history=5, min_volume=10, z_threshold=3.0, min_negative_share=0.25)


def series(neg_shares, volumes, entity="E"):
    periods = pd.date_range("2014-01-01", periods=len(neg_shares), freq="D")
    return pd.DataFrame({"level": "company", "entity": entity, "name": entity, "period": periods,
                         "volume": volumes, "mean_score": 0.0, "negative_share": neg_shares, "positive_share": 0.0})


def test_a_spike_alerts():
    rng = np.random.default_rng(0)
    shares = list(np.clip(0.1 + rng.normal(0, 0.02, 25), 0, 1)) + [0.7]
    alerts = detect_alerts(series(shares, [40] * 26), CFG)
    assert len(alerts) == 1 and alerts.iloc[0]["period"] == pd.Timestamp("2014-01-26")
    assert alerts.iloc[0]["z"] > 3 and alerts.iloc[0]["baseline_share"] == pytest.approx(0.1, abs=0.03)


def test_a_quiet_series_does_not_alert():
    rng = np.random.default_rng(1)
    shares = list(np.clip(0.2 + rng.normal(0, 0.03, 40), 0, 1))
    assert detect_alerts(series(shares, [40] * 40), CFG).empty


def test_low_volume_does_not_alert():
    shares = [0.0] * 25 + [1.0]
    assert detect_alerts(series(shares, [40] * 25 + [3]), CFG).empty
    assert len(detect_alerts(series(shares, [40] * 25 + [12]), CFG)) == 1


def test_flat_history_is_floored_by_the_binomial_error():
    # MAD is 0 over a flat history: the spread falls back to sqrt(p(1-p)/n), so a tiny move is no alert
    shares = [0.1] * 25 + [0.15]
    scored = robust_z(series(shares, [40] * 26), 20, 5)
    assert np.isfinite(scored["z"]).sum() == 21 and scored["z"].iloc[-1] < 3


def test_too_little_history_is_no_alert():
    assert detect_alerts(series([0.0] * 3 + [1.0], [40] * 4), CFG).empty


def test_trailing_median_mad_excludes_the_current_period():
    med, mad, n = trailing_median_mad(np.array([1.0, 2.0, 3.0, 100.0]), window=3, min_history=2)
    assert np.isnan(med[:2]).all() and med[2] == 1.5 and med[3] == 2.0 and mad[3] == 1.0 and n[3] == 3


def mentions_frame():
    rows = []
    for i, (day, label, score, ticker, sector) in enumerate([
            ("2014-01-01 10:00", "negative", -0.8, "A", "S1"), ("2014-01-01 11:30", "positive", 0.6, "B", "S1"),
            ("2014-01-02 09:00", "neutral", 0.0, "A", "S1")]):
        rows.append({"item_id": f"i{i}", "ts": pd.Timestamp(day), "label": label, "score": score, "entity": ticker,
                     "ticker": ticker, "company": ticker, "industry_uri": "I1", "industry": "Ind",
                     "sector_uri": sector, "sector": "Sector 1", "match": "cashtag"})
    rows.append(rows[0] | {"entity": "B", "ticker": "B", "company": "B"})  # item i0 mentions A and B
    return pd.DataFrame(rows)


def test_series_counts_an_item_once_per_sector():
    s = build_series(mentions_frame(), "day")
    sec = s[(s["level"] == "sector")].set_index("period")
    assert sec.loc["2014-01-01", "volume"] == 2  # i0 (A and B) once, i1 once
    assert sec.loc["2014-01-01", "negative_share"] == 0.5
    comp = s[(s["level"] == "company") & (s["entity"] == "A")]
    assert comp["volume"].tolist() == [1, 1] and comp["mean_score"].tolist() == [-0.8, 0.0]
    hourly = build_series(mentions_frame(), "hour")
    assert len(hourly[hourly["level"] == "sector"]) == 3
    capped = build_series(mentions_frame(), "day", max_companies=1)  # i0 names two companies: left out
    assert capped[capped["level"] == "sector"]["volume"].tolist() == [1, 1]


def test_top_evidence_orders_by_most_negative():
    m = mentions_frame()
    rows = entity_rows(m)
    items = pd.DataFrame({"id": ["i0", "i1", "i2"], "ts": m["ts"][:3], "text": ["bad", "good", "meh"],
                          "label": ["negative", "positive", "neutral"], "score": [-0.8, 0.6, 0.0],
                          "confidence": [0.9, 0.8, 0.7], "evidence": ["[]", "[]", "[]"]})
    alerts = pd.DataFrame({"entity": ["S1"], "period": [pd.Timestamp("2014-01-01")]})
    (ev,) = top_evidence(alerts, rows, items, k=2)
    assert [e["text"] for e in ev] == ["bad", "good"]


def test_retweets_of_one_text_count_once_per_entity_and_period():
    m = mentions_frame()
    keys = {"i0": "k-bad", "i1": "k-good", "i2": "k-meh"}
    m = m.assign(text_key=m["item_id"].map(keys))
    copies = m[m["item_id"] == "i0"].assign(item_id="i0-rt", ts=pd.Timestamp("2014-01-01 12:00"))
    with_rt = pd.concat([m, copies], ignore_index=True)
    once = build_series(with_rt, "day")
    assert once.equals(build_series(m, "day"))  # the retweet adds no volume and no extra negative share
    # on another day the same text is a new voice
    later = copies.assign(item_id="i0-later", ts=pd.Timestamp("2014-01-02 12:00"))
    s = build_series(pd.concat([m, later], ignore_index=True), "day")
    a = s[(s["level"] == "company") & (s["entity"] == "A")].set_index("period")
    assert a.loc["2014-01-02", "volume"] == 2


def test_top_evidence_cites_a_retweeted_text_once():
    m = mentions_frame()
    m = pd.concat([m, m.iloc[[0]].assign(item_id="i0-rt")], ignore_index=True)
    rows = entity_rows(m)
    items = pd.DataFrame({"id": ["i0", "i0-rt", "i1", "i2"], "ts": [m["ts"][0]] * 2 + list(m["ts"][1:3]),
                          "text": ["bad", "RT @x: bad", "good", "meh"], "text_key": ["k0", "k0", "k1", "k2"],
                          "label": ["negative", "negative", "positive", "neutral"], "score": [-0.8, -0.8, 0.6, 0.0],
                          "confidence": [0.9, 0.9, 0.8, 0.7], "evidence": ["[]"] * 4})
    alerts = pd.DataFrame({"entity": ["S1"], "period": [pd.Timestamp("2014-01-01")]})
    (ev,) = top_evidence(alerts, rows, items, k=2)
    assert [e["text"] for e in ev] == ["bad", "good"]
