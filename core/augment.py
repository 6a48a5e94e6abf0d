"""Knowledge-driven data augmentation, seeded and deterministic.

- :func:`mention_replacement` (token tasks): copies of training sentences in which entity mentions are
  replaced by other names of the same type (from the knowledge graph, or the training mentions), tags
  re-written as B-/I- over the new words (Dai & Adel 2020, "mention replacement").
- :func:`term_swap` (text tasks): copies of sentences in which a known term (e.g. a company name from
  the finance KG) is replaced by another term of the same list; the label stays.

The original examples always come first and unchanged; new examples get row numbers after the last one.
"""
from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from kgfusion.core.data import TextExample, TokenExample
from kgfusion.core.errors import ConfigError


def entity_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) word spans of a strict IOB2 tag sequence."""
    spans, start, etype = [], None, ""
    for i, tag in enumerate(list(tags) + ["O"]):
        if start is not None and not (tag.startswith("I-") and tag[2:] == etype):
            spans.append((start, i, etype))
            start = None
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            start, etype = i, tag[2:]
    return spans


def mention_pool(examples: Sequence[TokenExample]) -> dict[str, list[tuple[str, ...]]]:
    """Distinct mentions per entity type in ``examples`` (sorted, so the pool is deterministic)."""
    pool: dict[str, set[tuple[str, ...]]] = {}
    for e in examples:
        for s, t, etype in entity_spans(e.tags):
            pool.setdefault(etype, set()).add(tuple(e.tokens[s:t]))
    return {k: sorted(v) for k, v in sorted(pool.items())}


def mention_replacement(examples: Sequence[TokenExample], pool: Mapping[str, Sequence[Sequence[str]]], *,
                        rate: float = 0.5, copies: int = 1, seed: int = 13) -> list[TokenExample]:
    """Originals + ``copies`` augmented copies of every sentence with at least one replaced mention.

    Each mention is replaced with probability ``rate`` by a name (a word tuple) of its type drawn from
    ``pool``; sentences where nothing was replaced add no copy.
    """
    if not 0 < rate <= 1:
        raise ConfigError(f"rate={rate}; allowed range (0, 1]")
    if copies < 1:
        raise ConfigError(f"copies={copies}; must be >= 1")
    rng = random.Random(seed)
    out = list(examples)
    next_row = max((e.row for e in examples), default=0) + 1
    for _ in range(copies):
        for e in examples:
            spans = entity_spans(e.tags)
            if not spans:
                continue
            toks: list[str] = []
            tags: list[str] = []
            pos, changed = 0, False
            for s, t, etype in spans:
                toks += e.tokens[pos:s]
                tags += e.tags[pos:s]
                names = pool.get(etype) or ()
                if names and rng.random() < rate:
                    new = list(names[rng.randrange(len(names))])
                    changed = changed or tuple(new) != tuple(e.tokens[s:t])
                else:
                    new = list(e.tokens[s:t])
                toks += new
                tags += [f"B-{etype}"] + [f"I-{etype}"] * (len(new) - 1)
                pos = t
            toks += e.tokens[pos:]
            tags += e.tags[pos:]
            if changed:
                out.append(TokenExample(tuple(toks), tuple(tags), next_row))
                next_row += 1
    return out


def term_swap(examples: Sequence[TextExample], terms: Sequence[str], *, rate: float = 1.0, copies: int = 1,
              seed: int = 13) -> list[TextExample]:
    """Originals + copies of the sentences that mention a term, with each found term (whole word,
    case-sensitive) swapped for another term of the list with probability ``rate``."""
    if not terms:
        raise ConfigError("term_swap needs a non-empty list of terms")
    uniq = sorted({t for t in terms if t.strip()}, key=lambda t: (-len(t), t))
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in uniq) + r")(?!\w)")
    rng = random.Random(seed)
    out = list(examples)
    next_row = max((e.row for e in examples), default=0) + 1
    for _ in range(copies):
        for e in examples:
            if not pattern.search(e.text):
                continue

            def swap(m: re.Match) -> str:
                if rng.random() >= rate:
                    return m.group(0)
                other = uniq[rng.randrange(len(uniq))]
                return other if other != m.group(0) else uniq[(uniq.index(other) + 1) % len(uniq)]

            text = pattern.sub(swap, e.text)
            if text != e.text:
                out.append(replace(e, text=text, row=next_row))  # keeps the label and the head
                next_row += 1
    return out
