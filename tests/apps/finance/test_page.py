from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.apps.finance.conftest import DATA
from tests.apps.ui.markdown import shown

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "finance" / "page.py")


@pytest.fixture
def demo_db(monitor_factory, feed_path, tmp_path, monkeypatch):
    db = tmp_path / "demo.duckdb"
    monitor_factory().monitor(feed_path, db)
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(db))
    monkeypatch.setenv("KGFUSION_FINANCE_KG", str(DATA / "mini_finance.ttl"))
    return db


def test_page_renders_kpis_alerts_and_drilldown(demo_db):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    at.sidebar.number_input[0].set_value(3).run()
    assert not at.exception
    assert at.metric[0].value == "168"
    tables = at.dataframe
    assert len(tables) >= 2  # alert table, evidence/KG tables
    alerts = tables[0].value
    assert "z" in alerts.columns and len(alerts) >= 1
    assert any("<mark" in h.value for h in at.html)  # highlighted evidence, as HTML (st.html)
    assert not any("<mark" in m.value for m in at.markdown)
    assert any("inSector" in str(t.value.get("predicate", "").tolist()) for t in tables if "predicate" in t.value)


def test_page_without_database_explains_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(tmp_path / "missing.duckdb"))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "kgfusion finance monitor" in shown(at.info[0].value)


@pytest.fixture
def fake_bundle_monitor(monitor_factory, monkeypatch):
    """The page's 'Score feed' path with the keyword predictor instead of the shipped bundle."""
    from kgfusion.apps.finance.pipeline import FinanceMonitor

    monkeypatch.setattr(FinanceMonitor, "from_paths", classmethod(lambda cls, *a, **k: monitor_factory()))
    monkeypatch.setenv("KGFUSION_FINANCE_KG", str(DATA / "mini_finance.ttl"))


def test_uploaded_feed_is_scored_and_its_rejects_offered(fake_bundle_monitor):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.sidebar.radio[0].set_value("Upload a feed").run()
    assert "Upload a feed" in at.info[0].value
    at.file_uploader[0].upload("bad.csv", (DATA / "feed_bad.csv").read_bytes(), "text/csv").run()
    at.text_input[0].set_value("body")
    at.button[0].click().run()
    assert not at.exception
    done = at.success[0].value
    n_items, n_rejected = int(done.split()[0]), int(done.split(", ")[1].split()[0])
    assert n_items >= 1 and n_rejected >= 1
    assert n_items + n_rejected == 9  # every data row of the file is scored or rejected
    assert at.metric[0].value == str(n_items)
    assert len(at.get("download_button")) == 1


def test_upload_with_a_wrong_text_column_names_the_columns(fake_bundle_monitor):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.sidebar.radio[0].set_value("Upload a feed").run()
    at.file_uploader[0].upload("bad.csv", (DATA / "feed_bad.csv").read_bytes(), "text/csv").run()
    at.text_input[0].set_value("headline")
    at.button[0].click().run()
    assert not at.exception
    error = shown(at.error[0].value)
    assert "headline" in error and "body" in error


# A tweet as people write them: several cashtags (two `$` = LaTeX math in Markdown), HTML-like text,
# Markdown emphasis/heading characters and an ampersand; it must show character for character.
TRICKY = "<b>Sell</b> $KEY $PTEN $EIX $AAPL: shares fell after the downgrade, loss widens *now* _x_ #1 & 5$"


def visible_text(body: str) -> str:
    """What a person reads in highlighted HTML: the text without tags (and without badges), unescaped."""
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<sub\b.*?</sub>", "", body)))


@pytest.fixture
def tricky_db(monitor_factory, tmp_path, monkeypatch):
    """The test feed with the alert day's negative tweets rewritten to TRICKY (+ their number)."""
    rows = [json.loads(line) for line in (DATA / "feed.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        if "downgrade" in row["text"]:
            row["text"] = f"{TRICKY} ({row['id']})"
    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    db = tmp_path / "tricky.duckdb"
    monitor_factory().monitor(feed, db)
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(db))
    monkeypatch.setenv("KGFUSION_FINANCE_KG", str(DATA / "mini_finance.ttl"))
    return db


def test_drilldown_shows_cashtags_and_markup_literally_with_highlights(tricky_db):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.sidebar.number_input[0].set_value(3).run()
    assert not at.exception
    shown_html = [h.value for h in at.html if TRICKY in visible_text(h.value)]
    assert shown_html, [visible_text(h.value) for h in at.html]
    body = shown_html[0]
    text = visible_text(body)
    assert re.fullmatch(re.escape(TRICKY) + r" \(t\d+\)", text)  # exactly as written, cashtags and all
    # Highlights are HTML elements: the linked company (hover: the KG link) and the negative rule words.
    apple = re.search(r'<mark class="kgf-kg" style="background:#cfe2ff" title="([^"]*)">\$AAPL</mark>', body)
    assert apple and "Apple" in html.unescape(apple.group(1))
    for word in ("fell", "downgrade", "loss"):
        assert re.search(rf'<mark class="kgf-rule" style="background:#f8d7da" title="[^"]+">{word}', body), word
    # The text's own markup is escaped (shown, not interpreted); `$` and `*` are plain characters in HTML.
    assert "&lt;b&gt;Sell&lt;/b&gt;" in body and "<b>" not in body
    assert "#1 &amp; 5$" in body and "*now* _x_ #1" in body
    # Nothing of the tweet goes through Markdown (where `$...$` would become math).
    assert not any("$KEY" in m.value or "<mark" in m.value for m in at.markdown)
    assert not at.get("latex")


@pytest.fixture
def topic_page_db(monitor_factory, topic_feed_path, tmp_path, monkeypatch):
    """A database scored with sentiment and topics (keyword multi-head predictor): Legal | Regulation spikes."""
    from tests.apps.finance.conftest import KeywordTopicPredictor

    db = tmp_path / "topics.duckdb"
    monitor_factory(KeywordTopicPredictor()).monitor(topic_feed_path, db)
    monkeypatch.setenv("KGFUSION_FINANCE_DB", str(db))
    monkeypatch.setenv("KGFUSION_FINANCE_KG", str(DATA / "mini_finance.ttl"))
    return db


def test_topic_filter_heatmap_lines_and_evidence_topics(topic_page_db):
    legal = "Legal | Regulation"
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.sidebar.number_input[0].set_value(3).run()
    assert not at.exception
    topic = at.sidebar.selectbox(key="topic_filter")
    assert topic.value is None and topic.options[0] == "All topics"
    assert {f"{legal} (144 items)", "company-specific (topic group)"} <= set(topic.options)
    every = at.dataframe[0].value
    assert {"topic-group", "topic", "company-topic", "company"} <= set(every["level"])
    assert at.selectbox(key="topic_company").value == "AAPL"  # per-topic lines: the company with most items
    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    marks = [str(c.get("mark")) for c in charts]
    assert len(charts) == 3 and "rect" in marks[0]  # topic x day heatmap, per-topic lines, the entity series
    topic.set_value(legal).run()
    assert not at.exception
    alerts = at.dataframe[0].value
    assert len(alerts) < len(every) and set(alerts["topic"]) == {legal}
    assert set(alerts["level"]) == {"topic", "company-topic", "sector-topic"}
    assert any(f"Alerts about {legal}" in shown(h.value) for h in at.subheader)
    item_lines = [shown(m.value) for m in at.markdown if "confidence" in m.value]
    assert item_lines and all(f"topic: {legal} (0.90)" in line for line in item_lines)
    assert not at.info  # the store has topics: no info line
    at.selectbox(key="topic_filter").set_value("group:markets").run()  # a quiet group: no alerts
    assert not at.exception and any("No alerts at these settings" in shown(m.value) for m in at.markdown)


def test_a_store_without_topics_hides_the_topic_widgets(demo_db):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert not [s for s in at.selectbox if s.key in ("topic_filter", "topic_company")]
    assert any("No topics in this database" in shown(i.value) for i in at.info)
    at.sidebar.number_input[0].set_value(3).run()
    alerts = at.dataframe[0].value
    assert "topic" not in alerts.columns and set(alerts["level"]) <= {"company", "industry", "sector"}
