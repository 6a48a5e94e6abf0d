"""Show user text on the suite's pages exactly as written: highlighted HTML and Markdown-safe text.

Streamlit's Markdown (st.markdown, st.write, st.caption, st.info/success/warning/error, widget and
expander labels) is not plain text: text between two ``$`` becomes KaTeX math (``$KEY $PTEN`` in a tweet),
``*``/``_`` emphasis, ``#`` a heading, ``1.`` a list, ``:name:`` an emoji, ``<b>`` raw HTML, and a blank line
ends an HTML block so the rest of the markup shows up as text (or as an indented code block). So:

- highlighted text (tweets with linked companies and rule words, notes with mentions) is built by
  :func:`highlight_html` with every piece of the text and every title HTML-escaped, and shown with
  ``st.html`` (:func:`show_highlighted`), which inserts sanitised HTML without any Markdown or math pass;
- any other user text that goes into Markdown (titles, labels, explanations, file names, error messages)
  passes through :func:`escape_markdown` (or :func:`show_text`), which backslash-escapes every ASCII
  punctuation character so it renders literally.

Streamlit is imported only by the ``show_*`` functions, so the builders can be used (and tested) anywhere.
"""
from __future__ import annotations

import html
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_LEADING_SPACE = re.compile(r"^[ \t]+", re.MULTILINE)
TEXT_STYLE = "white-space:pre-wrap;line-height:1.9"


@dataclass(frozen=True)
class Highlight:
    """A span ``text[start:end]`` to mark: inline CSS ``style``, hover ``title``, a CSS class and an optional
    small ``badge`` shown after the marked text (e.g. "DISE"). All strings are escaped when rendered."""

    start: int
    end: int
    style: str = ""
    title: str = ""
    css_class: str = ""
    badge: str = ""


def _attr(name: str, value: str) -> str:
    return f' {name}="{html.escape(value, quote=True)}"' if value else ""


def highlight_html(text: str, highlights: Iterable[Highlight], *, css_class: str = "kgf-text") -> str:
    """``text`` as one ``<div>`` of HTML with each highlight in a ``<mark>``; line breaks and spaces kept.

    Every slice of ``text``, every title, class, style and badge is HTML-escaped, so the result shows the
    text character for character. Spans are clipped to the text; empty ones are dropped; of overlapping
    spans the one starting first (on a tie, the longer) wins.
    """
    n = len(text)
    spans = sorted(((max(0, min(n, int(h.start))), max(0, min(n, int(h.end))), h) for h in highlights),
                   key=lambda s: (s[0], -s[1]))
    out, pos = [], 0
    for start, end, h in spans:
        if end <= start or start < pos:
            continue
        out.append(html.escape(text[pos:start]))
        badge = (f'<sub style="font-size:0.6em;color:#374151"> {html.escape(h.badge)}</sub>' if h.badge else "")
        out.append(f"<mark{_attr('class', h.css_class)}{_attr('style', h.style)}{_attr('title', h.title)}>"
                   f"{html.escape(text[start:end])}{badge}</mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    return f'<div{_attr("class", css_class)} style="{TEXT_STYLE}">{"".join(out)}</div>'


def escape_markdown(text: object) -> str:
    """``text`` (any object, via ``str``) escaped so Streamlit's Markdown shows it literally.

    Every ASCII punctuation character gets a backslash (CommonMark allows that for all of them), which
    turns off math (``$``), emphasis, headings, lists, links, HTML, emoji and colour directives (``:``);
    line breaks become hard breaks and leading spaces non-breaking, so lines stay lines and no
    indented code block appears.
    """
    escaped = _PUNCTUATION.sub(r"\\\1", str(text))
    escaped = _LEADING_SPACE.sub(lambda m: "&#160;" * len(m.group(0).expandtabs(4)), escaped)
    return escaped.replace("\r\n", "\n").replace("\n", "\\\n")


def show_html(body: str, where=None) -> None:
    """Insert HTML built by this module (or another escaping builder) with ``st.html``: no Markdown, no math."""
    import streamlit as st

    (where or st).html(body)


def show_highlighted(text: str, highlights: Iterable[Highlight], where=None, *, css_class: str = "kgf-text") -> None:
    """Show ``text`` with its highlights (see :func:`highlight_html`); ``where``: a container, default the page."""
    show_html(highlight_html(text, highlights, css_class=css_class), where)


def show_text(text: object, where=None) -> None:
    """Show user text literally in the page's body font (Markdown with everything escaped)."""
    import streamlit as st

    (where or st).markdown(escape_markdown(text))
