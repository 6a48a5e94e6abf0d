"""Shared hypothesis strategies for the property suite: hostile text, bytes and tables."""
from __future__ import annotations

import gzip
import os

from hypothesis import strategies as st


def examples(default: int) -> int:
    """max_examples: ``default`` (keeps the suite fast) times $KGFUSION_PROPERTY_SCALE for deep sweeps."""
    return max(1, round(default * float(os.environ.get("KGFUSION_PROPERTY_SCALE", "1"))))

# Characters that break naive readers: delimiters, quotes, line breaks of every kind, NUL, BOM,
# Unicode line separators, non-Latin scripts and an HTML entity start.
TRICKY = ',;\t"\'\n\r\x00\ufeff\u2028\u2029\x85\x0b\x0c @&#<>{}[]:\\é中🙂'
SAFE = "abcdefgh XYZ0123"

texts = st.text(alphabet=st.sampled_from(TRICKY + SAFE), max_size=40)
# No line breaks / NUL: values that must survive a line-based format untouched.
one_line = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                                          blacklist_characters="\ufeff\x85"), max_size=30)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
labels = st.sampled_from(["positive", "negative", "neutral", "", "  ", "0", "1"])
line_endings = st.sampled_from(["\n", "\r\n"])

_CHUNKS = [b"", b"\n", b"\r\n", b"\r", b",", b"\t", b'"', b"'", b"\x00", b"\xff", b"\xef\xbb\xbf", b"text", b"label",
           b"{", b"}", b":", b"@", b"id", b"B-X", b"I-Y", b"O", b"userId,movieId,rating,timestamp",
           b"movieId,title,genres", b"text,label\n", b"1", b"3.5", b"-", b"rules:", b"kind: lexicon", b"- ", b"\xc3",
           b"null", b"[", b"]", b"abc", b" ", b'{"text": "a", "label": "b"}\n', b"@prefix ex: <http://e/> .",
           b"ex:a ex:b ex:c .", b"<", b">"]
garbage = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(_CHUNKS), max_size=40).map(b"".join),
    st.binary(max_size=200).map(gzip.compress),
    st.binary(max_size=200).map(lambda b: gzip.compress(b)[: len(b) // 2 + 10]),  # truncated gzip
)
