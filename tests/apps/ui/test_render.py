"""apps/ui/render.py: highlighted HTML with everything escaped, Markdown-safe text, and the st.html path."""
from __future__ import annotations

import html
import re

import pytest
from streamlit.testing.v1 import AppTest

from kgfusion.apps.ui.render import Highlight, escape_markdown, highlight_html
from tests.apps.ui.markdown import shown

TWEET = "<b>Sell</b> $KEY $PTEN $EIX $AAPL & *now* _x_ #1"
NASTY = [TWEET, "$5 and $10", "1. first\n2. second", "# heading", "    indented code", "a\n\n    b",
         ":smile: :red[x] :material/home:", "[link](http://x) ![img](y) <https://z>", "~~gone~~ `code` \\ back",
         "&amp; &#36; &lt;", "Face/Off (1997) | a | b |", "*batteries not included (1987)", "> quote", "---", "x_y_z"]


def visible(body: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<sub\b.*?</sub>", "", body)))


def test_highlight_html_escapes_every_piece_and_keeps_the_text():
    start = TWEET.index("$AAPL")
    body = highlight_html(TWEET, [Highlight(start, start + 5, style="background:#cfe2ff",
                                            title='kg "Apple" <Inc> & co', css_class="kgf-kg"),
                                  Highlight(0, 3, style="color:red", title="t", badge="<X>")])
    assert visible(body) == TWEET
    assert body.startswith('<div class="kgf-text" style="white-space:pre-wrap;line-height:1.9">')
    assert ('<mark class="kgf-kg" style="background:#cfe2ff" title="kg &quot;Apple&quot; &lt;Inc&gt; &amp; co">'
            "$AAPL</mark>") in body
    assert '<mark style="color:red" title="t">&lt;b&gt;<sub style="font-size:0.6em;color:#374151"> &lt;X&gt;</sub>' \
        "</mark>" in body
    assert body.count("<b>") == 0 and body.count("<mark") == 2


def test_highlight_html_overlaps_clipping_and_empty_spans():
    text = "abcdefghij"
    body = highlight_html(text, [Highlight(2, 5), Highlight(2, 8), Highlight(4, 9), Highlight(7, 7),
                                 Highlight(-3, 1), Highlight(9, 99)])
    assert re.findall(r"<mark>(.*?)</mark>", body) == ["a", "cdefgh", "j"]  # same start: the longer wins
    assert visible(body) == text
    assert highlight_html("", []) == '<div class="kgf-text" style="white-space:pre-wrap;line-height:1.9"></div>'
    assert visible(highlight_html("a\n\n    b $x$", [])) == "a\n\n    b $x$"


@pytest.mark.parametrize("text", NASTY)
def test_escape_markdown_renders_literally_in_commonmark(text):
    markdown_it = pytest.importorskip("markdown_it")
    escaped = escape_markdown(text)
    rendered = markdown_it.MarkdownIt("commonmark").render(escaped)
    tags = set(re.findall(r"</?(\w+)", rendered))
    assert tags <= {"p", "br"}, (escaped, rendered)  # no emphasis, heading, list, code, link, HTML
    assert html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace("\xa0", " ").strip() == text.strip()
    assert shown(escaped) == text
    assert not re.search(r"(?<!\\)\$", escaped)  # every `$` escaped: no math delimiter left


def test_escape_markdown_accepts_any_object():
    assert escape_markdown(3.5) == "3\\.5"
    assert shown(escape_markdown(ValueError("bad_file.csv: row 3"))) == "bad_file.csv: row 3"


def _page():
    import streamlit as st

    from kgfusion.apps.ui.render import Highlight, escape_markdown, show_highlighted, show_text

    text = "<b>Sell</b> $KEY $PTEN $EIX $AAPL"
    show_highlighted(text, [Highlight(text.index("$AAPL"), len(text), style="background:#cfe2ff", title="Apple")])
    show_text("$5 and $10 *each*")
    with st.expander(escape_markdown("1. $A $B *c*")):
        show_text("inside")


def test_show_functions_use_st_html_for_highlights_and_escaped_markdown_for_text():
    at = AppTest.from_function(_page).run()
    assert not at.exception
    assert [h.value for h in at.html] == [highlight_html("<b>Sell</b> $KEY $PTEN $EIX $AAPL", [
        Highlight(28, 33, style="background:#cfe2ff", title="Apple")])]
    assert [shown(m.value) for m in at.markdown] == ["$5 and $10 *each*", "inside"]
    assert shown(at.expander[0].label) == "1. $A $B *c*"
    assert not at.get("latex")
