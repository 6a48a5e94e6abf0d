"""The trie pattern matches what a longest-first alternation of the same names matches."""
from __future__ import annotations

import random
import re

from kgfusion.knowledge.name_pattern import trie_pattern


def _alternation(names: list[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


def _matches(pattern: str, text: str) -> list[tuple[int, int, str]]:
    rx = re.compile(rf"(?<![\w&])(?:{pattern})(?![\w&])")
    return [(m.start(), m.end(), m.group()) for m in rx.finditer(text)]


def test_prefers_the_longest_name_the_boundaries_accept() -> None:
    names = ["Bank", "Bank of America", "Apple", "Apple Inc", "AT&T", "S&P"]
    text = "Bank of Americas rose; Apple Inc. and AT&T fell; Bank of America too; S&P500 S&P"
    got = _matches(trie_pattern(names), text)
    assert got == _matches(_alternation(names), text)
    second = text.index("Bank of America too")
    assert (second, second + 15, "Bank of America") in got  # the whole name when a space follows
    assert (0, 4, "Bank") in got  # "Bank of Americas": the long name fails the boundary, "Bank" wins
    assert [s for s, _, g in got if g == "S&P"] == [text.rindex("S&P")]  # "S&P500" is no match


def test_special_characters_are_literal() -> None:
    names = ["a.b", "c+d", "(x)", "e|f"]
    rx = re.compile(trie_pattern(names))
    assert rx.fullmatch("a.b") and not rx.fullmatch("axb")
    assert rx.fullmatch("c+d") and rx.fullmatch("(x)") and rx.fullmatch("e|f")
    assert not rx.fullmatch("e")


def test_no_names_matches_nothing() -> None:
    assert re.search(trie_pattern([]), "anything") is None
    assert re.search(trie_pattern(["", ""]), "anything") is None


def test_random_names_agree_with_the_alternation() -> None:
    rng = random.Random(7)
    alphabet = "ab &.-"
    for _ in range(40):
        names = list({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))).strip() or "a"
                      for _ in range(rng.randint(1, 25))})
        text = "".join(rng.choice(alphabet + "cX") for _ in range(300))
        assert _matches(trie_pattern(names), text) == _matches(_alternation(names), text), names
