"""Tokens and phrases: the tokenizer every rule kind matches on, a one-pass phrase matcher, longest-match."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

# Words, "n't" split off like spaCy ("didn't" -> "did", "n't"), and single punctuation marks.
_TOKEN_RE = re.compile(r"\w+(?=n['’]t\b)|n['’]t\b|\w+|[^\w\s]", re.IGNORECASE)


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """(start, end, lower-cased token) for words and punctuation; offsets index ``text``."""
    return [(m.start(), m.end(), m.group().lower().replace("’", "'")) for m in _TOKEN_RE.finditer(text)]


class PhraseMatcher:
    """All token-sequence matches of many literal phrases in one pass (dict lookups per token)."""

    def __init__(self, phrases: Iterable[tuple[str, Any]]) -> None:
        self._table: dict[tuple[str, ...], list[Any]] = {}
        self._prefixes: set[tuple[str, ...]] = set()
        for phrase, payload in phrases:
            key = tuple(t for _, _, t in tokenize(phrase))
            if not key:
                continue
            self._table.setdefault(key, []).append(payload)
            self._prefixes.update(key[:i] for i in range(1, len(key) + 1))

    def find_all(self, tokens: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, Any]]:
        """(start_char, end_char, payload) for every phrase occurrence (overlaps included)."""
        out = []
        words = [t for _, _, t in tokens]
        for i in range(len(words)):
            for j in range(i + 1, len(words) + 1):
                key = tuple(words[i:j])
                if key not in self._prefixes:
                    break
                for payload in self._table.get(key, ()):
                    out.append((tokens[i][0], tokens[j - 1][1], payload))
        return out


def select_longest(matches: Iterable[tuple[int, int, Any]]) -> list[tuple[int, int, Any]]:
    """Non-overlapping subset: longest first, then earliest, then input order; returned by start."""
    indexed = sorted(enumerate(matches), key=lambda im: (-(im[1][1] - im[1][0]), im[1][0], im[0]))
    chosen: list[tuple[int, int, Any]] = []
    for _, (s, e, p) in indexed:
        if all(e <= cs or s >= ce for cs, ce, _ in chosen):
            chosen.append((s, e, p))
    return sorted(chosen, key=lambda m: (m[0], m[1]))


def token_key(phrase: str) -> tuple[str, ...]:
    """The lower-cased token sequence of a phrase (the key phrases are compared by)."""
    return tuple(t for _, _, t in tokenize(phrase))
