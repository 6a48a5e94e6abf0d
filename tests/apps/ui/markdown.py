"""Test helper: the text a Markdown string built with ``render.escape_markdown`` shows on the page."""
from __future__ import annotations

import re
import string

_ESCAPED = re.compile(r"\\([" + re.escape(string.punctuation) + r"])")


def shown(markdown: str) -> str:
    """Drop backslash escapes, hard-break backslashes and the non-breaking-space entities escape_markdown adds."""
    return _ESCAPED.sub(r"\1", markdown.replace("\\\n", "\n")).replace("&#160;", " ")
