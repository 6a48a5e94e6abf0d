"""Tokens and phrases: the tokenizer every rule kind matches on, a one-pass phrase matcher, longest-match."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

# Words, "n't" split off like spaCy ("didn't" -> "did", "n't"), and single punctuation marks.
_TOKEN_RE = re.compile(r"\w+(?=n['’]t\b)|n['’]t\b|\w+|[^\w\s]", re.IGNORECASE)


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """(start, end, lower-cased token) for words and punctuation; offsets index ``text``."""
    # one-for-one replacement keeps the offsets; cheaper than a replace per token
    return [(m.start(), m.end(), m.group().lower()) for m in _TOKEN_RE.finditer(text.replace("’", "'"))]


class PhraseMatcher:
    """All token-sequence matches of many literal phrases in one pass (dict lookups per token)."""

    def __init__(self, phrases: Iterable[tuple[str, Any]]) -> None:
        self._table: dict[tuple[str, ...], list[Any]] = {}
        self._prefixes: set[tuple[str, ...]] = set()
        self._first_words: set[str] = set()  # most tokens start no phrase: one set lookup rules them out
        for phrase, payload in phrases:
            key = tuple(t for _, _, t in tokenize(phrase))
            if not key:
                continue
            self._table.setdefault(key, []).append(payload)
            self._prefixes.update(key[:i] for i in range(1, len(key) + 1))
            self._first_words.add(key[0])

    def find_all(self, tokens: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, Any]]:
        """(start_char, end_char, payload) for every phrase occurrence (overlaps included)."""
        out = []
        words = [t for _, _, t in tokens]
        first = self._first_words
        for i in range(len(words)):
            if words[i] not in first:
                continue
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


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_QUANTIFIERS = "?*+{"
_WORD_RUN = re.compile(r"\w+")


def _atom_end(pattern: str, i: int) -> int:
    """Index after the escape or character class starting at ``i`` (after the one character otherwise)."""
    if pattern[i] == "\\":
        return i + 2
    if pattern[i] == "[":
        j = i + 1
        j += pattern[j:j + 1] == "^"
        j += pattern[j:j + 1] == "]"  # a "]" right after "[" or "[^" is literal
        while j < len(pattern) and pattern[j] != "]":
            j += 2 if pattern[j] == "\\" else 1
        return j + 1
    return i + 1


def _split_top(pattern: str) -> list[str] | None:
    """``pattern`` split at its top-level ``|``; None for unbalanced parentheses."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return None
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i = _atom_end(pattern, i)
    return None if depth or i > len(pattern) else [*parts, pattern[start:]]


def _group_end(body: str) -> int | None:
    """Index of the ``)`` closing the group ``body`` starts with; None if unbalanced."""
    depth, i = 0, 0
    while i < len(body):
        depth += {"(": 1, ")": -1}.get(body[i], 0)
        if depth == 0:
            return i
        i = _atom_end(body, i)
    return None


def _leading_runs(body: str) -> list[str] | None:
    """The literal word characters every match of ``body`` starts with, one per alternative."""
    if body.startswith("(?:"):
        end = _group_end(body)
        if end is None or body[end + 1:end + 2] in tuple(_QUANTIFIERS):
            return None  # unbalanced, or an optional group: nothing is certain
        alternatives = _split_top(body[3:end])
        if alternatives is None:
            return None
        runs = [_leading_runs(a) for a in alternatives]
        return None if any(r is None for r in runs) else [w for r in runs for w in r]
    run = ""
    for ch in body.lower():
        if ch not in _WORD_CHARS:
            break
        run += ch
    if body[len(run):len(run) + 1] in tuple(_QUANTIFIERS):
        run = run[:-1]  # "rumou?red": the u is optional
    return [run] if run else None


def leading_words(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Lower-case word starts one of which every match of a case-insensitive ``pattern`` begins a word
    with (``\\b(?:profit|loss)\\s+rose`` -> ("profit", "loss")); None when the pattern is not of that
    shape (each top-level alternative a ``\\b`` then literal word characters or a group of such)."""
    if not pattern.flags & re.IGNORECASE or pattern.flags & re.VERBOSE:
        return None
    alternatives = _split_top(pattern.pattern)
    if alternatives is None:
        return None
    words: list[str] = []
    for alt in alternatives:
        if not alt.startswith(r"\b"):
            return None
        runs = _leading_runs(alt[2:])
        if runs is None:
            return None
        words += runs
    return tuple(dict.fromkeys(words))


def word_starts(text: str) -> list[str] | None:
    """The lower-cased words of an ASCII ``text`` (None otherwise: case-insensitive regexes also match a
    few non-ASCII letters, such as the Kelvin sign for k, that lower-casing does not map)."""
    return _WORD_RUN.findall(text.lower()) if text.isascii() else None


class _Starts:
    """Does some word begin with one of ``starts``? A set lookup of each word's first letters first."""

    def __init__(self, starts: tuple[str, ...]) -> None:
        self.starts = starts
        self.n = min(map(len, starts))
        self.keys = frozenset(w[:self.n] for w in starts)

    def any_word(self, words: list[str]) -> bool:
        n, keys, starts = self.n, self.keys, self.starts
        return any(w[:n] in keys and w.startswith(starts) for w in words)

    def words(self, words: list[str]) -> list[str]:
        n, keys, starts = self.n, self.keys, self.starts
        return [w for w in words if w[:n] in keys and w.startswith(starts)]


class WordStartFilter:
    """Skips, per text, the regexes that cannot match it: those whose every match begins a word with
    known letters (``leading_words``) when no word of the text begins so. Regexes of another shape are
    always kept. One check over the text's words rules them all out on most texts."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        found = [leading_words(p) for p in patterns]
        self._each = [_Starts(s) if s else None for s in found]
        union = tuple(w for s in found if s for w in s)
        self._any = _Starts(union) if union else None

    def keep(self, words: list[str] | None) -> list[bool]:
        """Per pattern: may it match the text whose ``word_starts`` are ``words`` (None: not known)?"""
        if words is None:
            return [True] * len(self._each)
        candidates = self._any.words(words) if self._any is not None else []
        if not candidates:
            return [s is None for s in self._each]
        return [s is None or s.any_word(candidates) for s in self._each]
