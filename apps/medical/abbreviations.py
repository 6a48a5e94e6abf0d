"""Abbreviations: in-text definitions (Schwartz & Hearst 2003) and the shipped clinical abbreviation list.

In-text definitions: "chronic kidney disease (CKD)" (and "CKD (chronic kidney disease)") define CKD
for the rest of the note: the short form in the parentheses and every *later* use get the long form.

The shipped list (Wikipedia "List of medical abbreviations", CC BY-SA, via the Meta-Inventory) is used
for abbreviations the note does not define. Which occurrences count: the token is written exactly as
in the list, has at least 2 characters of which at least 2 are capitals ("HTN", "CKD", "DM"; not
"ab", "Hx"), and is not an English word in capitals (NOT_ABBREVIATIONS: "NO", "IT", "OR", ...).
Which sense (the rule):
1. a definition in the note wins;
2. one sense in the list -> that sense;
3. several senses -> the one sense whose long form links to a KG concept (``resolve`` returns a
   URI), when exactly one does;
4. else the one sense whose long form also appears in the same note, when exactly one does;
5. else the abbreviation is ambiguous and is not expanded (the senses are reported).
"""
from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgfusion.core.errors import DataError

# Capitalised English words and note shorthand that the list also carries as abbreviations.
NOT_ABBREVIATIONS = frozenset({
    "NO", "IT", "OR", "AT", "IN", "ON", "AS", "BE", "DO", "IS", "AM", "PM", "US", "ID", "TO", "UP", "IF",
    "OF", "BY", "SO", "HE", "WE", "ME", "MY", "AN", "GO", "OK", "PE", "CC", "ALL", "AND", "THE", "FOR", "CAN",
    "MAY", "ARE", "NOT", "HAD", "HAS", "WAS", "BUT", "MD", "DR", "RN", "PT", "ER", "ED", "HR", "BP",
})
_SHORT_FORM = re.compile(r"\(\s*([^()\s][^()]{0,79}?)\s*\)")
_CAND_TOKEN = re.compile(r"(?<![\w-])[A-Za-z0-9][\w/&.-]*[\w]|(?<![\w-])[A-Z](?![\w-])")


@dataclass(frozen=True)
class Definition:
    """An in-text definition: the short form's span and the long form's span (character offsets)."""

    short: str
    long: str
    short_start: int
    short_end: int
    long_start: int
    long_end: int


@dataclass(frozen=True)
class Expansion:
    """One occurrence of an abbreviation [start, end) with its long form (None when ambiguous).

    source: "definition" | "list"; senses: every sense of the list (for ambiguous ones); rule: which step of
    the module rule decided; definition: the in-text definition used, if any.
    """

    start: int
    end: int
    short: str
    long: str | None
    source: str
    rule: str
    senses: tuple[str, ...] = ()
    definition: Definition | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"start": self.start, "end": self.end, "short": self.short, "long": self.long, "source": self.source,
               "rule": self.rule, "senses": list(self.senses)}
        if self.definition is not None:
            d = self.definition
            out["definition"] = {"long": d.long, "long_start": d.long_start, "long_end": d.long_end,
                                 "short_start": d.short_start}
        return out


# ---------------------------------------------------------------------------- Schwartz & Hearst


def _valid_short(sf: str) -> bool:
    """2-10 characters, at most 2 words, starts alphanumeric, has a capital letter ("CKD", "HbA1c")."""
    return (2 <= len(sf) <= 10 and len(sf.split()) <= 2 and sf[0].isalnum()
            and any(c.isupper() for c in sf))


def best_long_form(short: str, long: str) -> str | None:
    """Schwartz & Hearst's matcher: the shortest suffix of ``long`` whose characters cover ``short``
    right to left, with the short form's first character starting a word."""
    s, i = len(short) - 1, len(long) - 1
    while s >= 0:
        c = short[s].lower()
        if not c.isalnum():
            s -= 1
            continue
        while i >= 0 and (long[i].lower() != c or (s == 0 and i > 0 and long[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return None
        i -= 1
        s -= 1
    start = long.rfind(" ", 0, i + 1) + 1
    return long[start:]


def find_definitions(text: str) -> list[Definition]:
    """Definitions "long form (SF)" and "SF (long form)" in ``text``, in order of appearance."""
    out: list[Definition] = []
    for m in _SHORT_FORM.finditer(text):
        inner, inner_start = m.group(1), m.start(1)
        # Text before the parenthesis, back to the sentence / clause start.
        before_start = max(text.rfind(ch, 0, m.start()) for ch in ".;:\n()")
        before = text[before_start + 1 : m.start()].rstrip()
        if _valid_short(inner) and before:
            words = before.split()
            max_words = min(len(inner) + 5, len(inner) * 2)
            cand = " ".join(words[-max_words:])
            lf = best_long_form(inner, cand)
            if lf and len(lf) > len(inner) and inner.lower() not in lf.lower().split() and len(lf.split()) > 1:
                long_end = before_start + 1 + len(before)
                long_start = long_end - len(lf)
                if text[long_start:long_end] == lf:
                    out.append(Definition(inner, lf, inner_start, inner_start + len(inner), long_start, long_end))
                    continue
        # Reverse order: "CKD (chronic kidney disease)".
        prev = re.search(r"([A-Za-z0-9][\w-]{1,9})\s*$", text[: m.start()])
        long_enough = prev is not None and (len(inner.split()) >= 2 or len(inner) >= 2 * len(prev.group(1)))
        if prev and long_enough and _valid_short(prev.group(1)) and prev.group(1).upper() == prev.group(1):
            sf = prev.group(1)
            lf = best_long_form(sf, inner)
            if lf and lf == inner:
                out.append(Definition(sf, inner, prev.start(1), prev.end(1), inner_start, inner_start + len(inner)))
    return out


# ---------------------------------------------------------------------------------- the list


@dataclass
class AbbreviationList:
    """abbreviation -> senses (long forms, de-duplicated, file order)."""

    senses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def from_csv(cls, path: str | Path) -> AbbreviationList:
        """Read a CSV with columns ``abr`` and ``long_form`` (the shipped Wikipedia list)."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: abbreviation list not found (expected a CSV with columns abr,long_form)")
        table: dict[str, list[str]] = {}
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"abr", "long_form"} <= set(reader.fieldnames):
                raise DataError(f"{path}: needs the columns abr,long_form; found {reader.fieldnames}")
            for row in reader:
                abr, lf = (row.get("abr") or "").strip(), (row.get("long_form") or "").strip()
                if abr and lf and lf.lower() not in (s.lower() for s in table.get(abr, [])):
                    table.setdefault(abr, []).append(lf)
        return cls({k: tuple(v) for k, v in table.items()}, str(path))

    def usable(self, abr: str) -> bool:
        """The occurrence rule of the module docstring."""
        return (abr in self.senses and len(abr) >= 2 and sum(c.isupper() for c in abr) >= 2
                and abr not in NOT_ABBREVIATIONS)


class AbbreviationResolver:
    """Expand abbreviations in a note: definitions first, then the list (see the module rule).

    ``resolve``: long form -> KG URI or None (cheap: alias / normalised name lookups), used by step 3.
    """

    def __init__(self, abbreviations: AbbreviationList | None = None,
                 resolve: Callable[[str], str | None] | None = None) -> None:
        self.list = abbreviations or AbbreviationList()
        self.resolve = resolve
        self._sense_cache: dict[str, tuple[str | None, str]] = {}

    def _list_sense(self, abr: str) -> tuple[str | None, str]:
        """(sense, rule) from steps 2-3 (note-independent, cached); (None, "ambiguous") otherwise."""
        if abr in self._sense_cache:
            return self._sense_cache[abr]
        senses = self.list.senses.get(abr, ())
        result: tuple[str | None, str] = (None, "ambiguous")
        if len(senses) == 1:
            result = (senses[0], "single_sense")
        elif self.resolve is not None:
            linked = [s for s in senses if self.resolve(s)]
            if len(linked) == 1:
                result = (linked[0], "kg_links_one_sense")
        self._sense_cache[abr] = result
        return result

    def expand(self, text: str, definitions: Iterable[Definition] | None = None) -> list[Expansion]:
        """Every abbreviation occurrence in ``text`` with its long form (or None when ambiguous)."""
        defs = list(definitions) if definitions is not None else find_definitions(text)
        first_def: dict[str, Definition] = {}
        for d in defs:
            first_def.setdefault(d.short, d)
        lowered = text.lower()
        out: list[Expansion] = []
        for m in _CAND_TOKEN.finditer(text):
            tok = m.group()
            s, e = m.start(), m.end()
            d = first_def.get(tok)
            if d is not None and s >= d.short_start:
                inside_long = d.long_start <= s < d.long_end
                if not inside_long:
                    out.append(Expansion(s, e, tok, d.long, "definition", "definition", (), d))
                continue
            if not self.list.usable(tok):
                continue
            sense, rule = self._list_sense(tok)
            senses = self.list.senses[tok]
            if sense is None:
                present = [x for x in senses if re.search(rf"(?<!\w){re.escape(x.lower())}(?!\w)", lowered)]
                if len(present) == 1:
                    sense, rule = present[0], "long_form_in_note"
            out.append(Expansion(s, e, tok, sense, "list", rule, senses if sense is None else ()))
        return out
