"""ConText (Chapman et al. 2009; as in pyConText / medspaCy): negation, uncertainty, history,
family and hypothetical modifiers for target spans in clinical text.

Triggers are found case-insensitively on word boundaries (literal phrases through a token dictionary,
regex patterns behind one combined pre-filter regex); overlapping triggers resolve longest-first, so a
PSEUDO trigger ("no increase") blocks the shorter triggers inside it ("no"). A modifier's scope runs
FORWARD to the end of its sentence, BACKWARD to the sentence start, or both (BIDIRECTIONAL), limited
to ``max_scope`` tokens and cut at the nearest TERMINATE trigger or trigger of the same category.
A BACKWARD trigger that starts with ":" is the value of a "header: value" item ("Fever: no", "Chest pain:
denies", "Allergies:\nnone"): its scope is only the item before the colon, from the start of the colon's line
or the previous ":" / ";" on it, so "chills: yes, fever: no" negates fever alone.
Targets overlapping a scope (but not the trigger itself) get the category's attribute. Sections with
attributes (family history -> family) apply to every target inside them, with evidence kind
"section".
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kgfusion.core.errors import DataError
from kgfusion.knowledge.fusion import Evidence
from kgfusion.knowledge.rules import (
    ATTRIBUTES,
    CATEGORY_ATTRIBUTE,
    ContextRule,
    PhraseMatcher,
    RuleBase,
    SectionRule,
    select_longest,
    tokenize,
)
from kgfusion.knowledge.sections import Section, SectionDetector

# Words that end with "." without ending a sentence (compared lower-case, without the final dot).
ABBREVIATIONS = frozenset({
    "dr", "mr", "mrs", "ms", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx", "fig", "inc",
    "ltd", "co", "corp", "pt", "pts", "hx", "dx", "tx", "rx", "sx", "h/o", "s/p", "b.i.d", "t.i.d", "q.i.d",
    "q.d", "p.o", "p.r.n", "a.m", "p.m", "min", "max", "no", "nos", "mg", "ml", "cm", "mm", "yr", "yrs",
    "wk", "wks", "mo", "mos", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
})
_END_PUNCT = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")
_LINE_BREAK = re.compile(r"\n[ \t]*(?:\n|(?=[-*•]|\d+[.)]\s|[A-Z][A-Za-z0-9 /&]{0,40}:))")
# A line that does not end in ':' ',' ';' '(' '-' '/' followed by a line starting upper-case is a new item
# ("Salbutamol inhaler as needed\nLevothyroxine 75 mcg"); a line ending in ':' keeps its value ("Fever:\nNone").
_ITEM_BREAK = re.compile(r"(?<=[^\s:,;(\-/])[ \t]*\n(?=[ \t]*[A-Z])")


def split_sentences(text: str, *, breaks: Iterable[int] = ()) -> list[tuple[int, int]]:
    """Rule-based sentence spans [start, end) over ``text`` (whitespace trimmed, offsets kept).

    Splits after . ! ? followed by space/end unless the word is an abbreviation ("Dr.", "e.g."), a single
    letter or the next word starts lower-case (a "." inside "37.5" never splits); at blank lines; at line
    breaks before a list item or a "Header:"; at line breaks before an upper-case line unless the line ends
    in ':' ',' ';' '(' '-' '/' (one list item per line); and at the extra ``breaks`` offsets (section headers).
    """
    cuts = {0, len(text)}
    for m in _END_PUNCT.finditer(text):
        before = text[max(0, m.start() - 20):m.start()].split()
        word = before[-1].lower().lstrip("([\"'") if before else ""
        if m.group()[0] == "." and (word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue
        rest = text[m.end():]
        nxt = rest.lstrip()
        newline = "\n" in rest[: len(rest) - len(nxt)]
        if m.group()[0] == "." and nxt[:1].islower() and not newline:
            continue
        cuts.add(m.end())
    cuts.update(m.start() for m in _LINE_BREAK.finditer(text))
    cuts.update(m.start() for m in _ITEM_BREAK.finditer(text))
    cuts.update(b for b in breaks if 0 <= b <= len(text))
    spans = []
    ordered = sorted(cuts)
    for a, b in zip(ordered, ordered[1:], strict=False):
        chunk = text[a:b]
        lead = len(chunk) - len(chunk.lstrip())
        trail = len(chunk.rstrip())
        if trail > lead:
            spans.append((a + lead, a + trail))
    return spans


def _item_start(text: str, colon: int) -> int:
    """Start of the "header" item that ends at ``colon``: after the last newline, ':' or ';' before it."""
    return max(text.rfind(ch, 0, colon) for ch in "\n:;") + 1


@dataclass(frozen=True)
class Modifier:
    """A trigger found in the text and its scope [scope_start, scope_end) (character offsets)."""

    rule: ContextRule
    start: int
    end: int
    text: str
    scope_start: int
    scope_end: int

    @property
    def category(self) -> str:
        return self.rule.category

    @property
    def direction(self) -> str:
        return self.rule.direction


@dataclass(frozen=True)
class ContextResult:
    """ConText attributes of one target span, the note section it lies in, and the evidence."""

    start: int
    end: int
    label: str
    negated: bool = False
    possible: bool = False
    historical: bool = False
    family: bool = False
    hypothetical: bool = False
    section: str | None = None
    evidence: tuple[Evidence, ...] = ()

    def attributes(self) -> dict[str, bool]:
        return {a: getattr(self, a) for a in ATTRIBUTES}

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "label": self.label, **self.attributes(),
                "section": self.section, "evidence": [e.to_dict() for e in self.evidence]}


class ConTextEngine:
    """ConText over a rule set; build once, call ``annotate`` per document.

    rules: a RuleBase (its ContextRules, and its SectionRules unless ``section_rules`` is given) or
    ContextRules. section_rules: SectionRules (a RuleBase or iterable) or None for no section context.
    """

    def __init__(
        self,
        rules: RuleBase | Iterable[ContextRule],
        section_rules: RuleBase | Iterable[SectionRule] | None = None,
    ) -> None:
        if isinstance(rules, RuleBase):
            if section_rules is None:
                section_rules = rules.by_kind(SectionRule)
            rules = rules.by_kind(ContextRule)
        self.rules: tuple[ContextRule, ...] = tuple(rules)
        self._literals = PhraseMatcher((p, i) for i, r in enumerate(self.rules) for p in r.phrases)
        self._patterns = [(i, r.compiled) for i, r in enumerate(self.rules) if r.compiled is not None]
        # One combined regex tells, per token start, whether any pattern matches there at all.
        self._prefilter = (
            re.compile("|".join(f"(?:{r.pattern})" for _, r in self._pattern_rules()), re.IGNORECASE)
            if self._patterns else None
        )
        sections = tuple(section_rules.by_kind(SectionRule) if isinstance(section_rules, RuleBase)
                         else section_rules or ())
        self._sections = SectionDetector(sections) if sections else None

    def _pattern_rules(self) -> list[tuple[int, ContextRule]]:
        return [(i, self.rules[i]) for i, _ in self._patterns]

    def sections(self, text: str) -> list[Section]:
        return self._sections.detect(text) if self._sections is not None else []

    def find_modifiers(
        self, text: str, *, tokens: Sequence[tuple[int, int, str]] | None = None,
        sentences: Sequence[tuple[int, int]] | None = None,
    ) -> list[Modifier]:
        """Triggers (longest match wins; PSEUDO triggers removed after blocking) with their scopes."""
        tokens = tokens if tokens is not None else tokenize(text)
        sentences = sentences if sentences is not None else split_sentences(text)
        matches = self._literals.find_all(tokens)
        if self._prefilter is not None:
            for pos, _, _ in tokens:
                if self._prefilter.match(text, pos) is None:
                    continue
                for i, rx in self._patterns:
                    m = rx.match(text, pos)
                    if m and m.end() > pos:
                        matches.append((pos, m.end(), i))
        # Ties on span: earlier rule wins (select_longest keeps input order), so sort by rule index.
        chosen = select_longest(sorted(matches, key=lambda m: m[2]))
        token_starts = [s for s, _, _ in tokens]
        sent_starts = [s for s, _ in sentences]
        raw = []
        for s, e, i in chosen:
            rule = self.rules[i]
            if rule.direction == "PSEUDO":
                continue
            k = bisect.bisect_right(sent_starts, s) - 1
            sent = sentences[k] if k >= 0 and s < sentences[k][1] else (s, e)
            raw.append((rule, s, e, sent))
        modifiers = []
        for rule, s, e, (sent_start, sent_end) in raw:
            if rule.direction == "TERMINATE":
                modifiers.append(Modifier(rule, s, e, text[s:e], e, e))
                continue
            lo = sent_start if rule.direction in ("BACKWARD", "BIDIRECTIONAL") else e
            if rule.direction == "BACKWARD" and text[s] == ":":  # "header: value" -> the header item only
                lo = max(lo, _item_start(text, s))
            hi = sent_end if rule.direction in ("FORWARD", "BIDIRECTIONAL") else s
            if rule.max_scope is not None:
                if rule.direction != "BACKWARD":
                    j = bisect.bisect_left(token_starts, e) + rule.max_scope - 1
                    if j < len(tokens):
                        hi = min(hi, tokens[j][1])
                if rule.direction != "FORWARD":
                    j = bisect.bisect_left(token_starts, s) - rule.max_scope
                    if j >= 0:
                        lo = max(lo, tokens[j][0])
            for other, os_, oe, _ in raw:
                if other is rule and (os_, oe) == (s, e):
                    continue
                if not (other.direction == "TERMINATE" or (
                        other.category == rule.category and other.allowed_types == rule.allowed_types)):
                    continue
                if os_ >= e and rule.direction != "BACKWARD":
                    hi = min(hi, os_)
                if oe <= s and rule.direction != "FORWARD":
                    lo = max(lo, oe)
            modifiers.append(Modifier(rule, s, e, text[s:e], lo, max(lo, hi)))
        return modifiers

    def annotate(self, text: str, spans: Sequence[Sequence[Any]]) -> list[ContextResult]:
        """ConText attributes for each target ``(start, end[, label])``, in input order."""
        targets = []
        for span in spans:
            if len(span) not in (2, 3):
                raise DataError(f"target {span!r} must be (start, end) or (start, end, label)")
            s, e = span[0], span[1]
            label = str(span[2]) if len(span) == 3 else ""
            if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text)):
                raise DataError(f"target {span!r} has offsets outside the text (length {len(text)}); "
                                "use 0 <= start < end <= len(text)")
            targets.append((s, e, label))
        tokens = tokenize(text)
        sections = self.sections(text)
        breaks = [b for sec in sections for b in (sec.header_start, sec.header_end)]
        sentences = split_sentences(text, breaks=breaks)
        modifiers = self.find_modifiers(text, tokens=tokens, sentences=sentences)
        results = []
        for s, e, label in targets:
            attrs = dict.fromkeys(ATTRIBUTES, False)
            evidence: list[Evidence] = []
            section = next((sec for sec in sections if sec.start <= s < sec.end), None)
            if section is not None:
                for attr in section.attributes:
                    attrs[attr] = True
                if section.attributes:
                    evidence.append(Evidence("section", section.rule_id,
                                             f"{section.category} (header '{section.header}')",
                                             span=(section.header_start, section.header_end)))
            for mod in modifiers:
                attr = CATEGORY_ATTRIBUTE.get(mod.category)
                if attr is None or mod.direction == "TERMINATE":
                    continue
                if mod.rule.allowed_types is not None and label.upper() not in mod.rule.allowed_types:
                    continue
                if s < mod.end and e > mod.start:  # a target never modifies itself
                    continue
                if s < mod.scope_end and e > mod.scope_start:
                    attrs[attr] = True
                    evidence.append(Evidence("rule", mod.rule.id, f"{mod.category} '{mod.text}'",
                                             span=(mod.start, mod.end)))
            results.append(ContextResult(s, e, label, **attrs, section=section.category if section else None,
                                         evidence=tuple(evidence)))
        return results
