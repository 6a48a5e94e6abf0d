"""The browser test's topic-filter check (test_browser.py::test_finance_topic_filter_...) as an AppTest, so the
default suite covers it where no Chromium is installed: the same demo database (finance_demo.py), the same
topic picked in the sidebar, the same things a person then sees."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from tests.apps.ui.finance_demo import SPIKE_TOPIC, TRICKY, build_finance_demo_db, finance_graph_path
from tests.apps.ui.markdown import shown

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "finance" / "page.py")


@pytest.fixture
def demo_page(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(build_finance_demo_db(tmp_path)))
    monkeypatch.setenv("KGFUSION_FINANCE_KG", str(finance_graph_path()))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    return at


def visible_text(body: str) -> str:
    """What a person reads in highlighted HTML: the text without tags (and badges), unescaped."""
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<sub\b.*?</sub>", "", body)))


def chart(at: AppTest, index: int) -> tuple[dict, pd.DataFrame]:
    """The ``index``-th Vega-Lite chart: its spec and its data (Arrow, as sent to the browser)."""
    element = at.get("vega_lite_chart")[index]
    return json.loads(element.proto.spec), dataframe_util.convert_arrow_bytes_to_pandas_df(
        element.proto.datasets[0].data.data)


def test_topic_filter_narrows_alerts_heatmap_lines_and_evidence(demo_page):
    at = demo_page
    spec, cells = chart(at, 0)
    assert "rect" in str(spec["mark"])  # the topic x day heatmap comes first
    assert len(set(cells["topic"])) == 3 and SPIKE_TOPIC in set(cells["topic"])  # all the store's topics
    topic = at.sidebar.selectbox(key="topic_filter")
    assert topic.value is None and topic.options[0] == "All topics"
    assert any(re.fullmatch(rf"{SPIKE_TOPIC} \(\d+ items\)", o) for o in topic.options), topic.options

    topic.set_value(SPIKE_TOPIC).run()
    assert not at.exception
    assert any(shown(h.value) == f"Alerts about {SPIKE_TOPIC}" for h in at.subheader)
    # Alerts: only the topic's levels, each naming the topic (the alert picker shows the same rows)
    alerts = at.dataframe[0].value
    assert set(alerts["level"]) == {"topic", "company-topic", "sector-topic"} and set(alerts["topic"]) == {SPIKE_TOPIC}
    picker = next(s for s in at.selectbox if s.label == "Alert")
    labels = list(picker.options)  # AppTest lists the options as shown (format_func applied)
    assert len(labels) == len(alerts) and all(f"{SPIKE_TOPIC} · z=" in lab for lab in labels), labels
    # Heatmap: the heading, one row (the topic), one cell per day; the alert day is the one fully negative cell
    assert any(shown(m.value) == "**Negative share by topic and day**" for m in at.markdown)
    spec, cells = chart(at, 0)
    assert set(cells["topic"]) == {SPIKE_TOPIC} and cells["period"].is_unique
    assert spec["encoding"]["x"]["timeUnit"] == "yearmonthdate"  # cells one day wide, not bars from the origin
    assert (cells["negative_share"] == 1.0).sum() == 1
    assert str(cells.loc[cells["negative_share"].idxmax(), "period"])[:10] == "2014-01-25"
    # Per-topic lines: the company with most items of the topic, lines only for the topic
    assert at.selectbox(key="topic_company").value == "AAPL"
    _, lines = chart(at, 1)
    assert set(lines["topic"]) == {SPIKE_TOPIC} and set(lines["name"]) == {f"AAPL · {SPIKE_TOPIC}"}
    # Evidence of the first alert: three tweets, each showing the topic and its probability
    items = [shown(m.value) for m in at.markdown if "(confidence " in m.value]
    assert len(items) == 3 and all(line.endswith(f" · topic: {SPIKE_TOPIC} (0.90)") for line in items), items
    texts = [visible_text(h.value) for h in at.html]
    assert len(texts) == 3 and all(t.startswith(TRICKY) for t in texts), texts  # the tweets as written
