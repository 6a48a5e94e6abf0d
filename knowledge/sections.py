"""Clinical note sections: headers at line starts ("Family History:", "PMH:") -> section spans.

A header is one of a SectionRule's ``headers`` at the start of a line (after spaces), followed by ``:``
or by the end of the line. A section runs from its header to the next header (or the end of the text);
text before the first header belongs to no section.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kgfusion.knowledge.rules import RuleBase, SectionRule


@dataclass(frozen=True)
class Section:
    """One section: [start, end) covers header and body; the header is [header_start, header_end)."""

    start: int
    end: int
    category: str
    rule_id: str
    header_start: int
    header_end: int
    header: str
    attributes: tuple[str, ...] = ()

    def as_tuple(self) -> tuple[int, int, str]:
        return (self.start, self.end, self.category)


def _normalize(header: str) -> str:
    return " ".join(header.lower().split())


class SectionDetector:
    """Finds section headers with one pre-compiled regex over all SectionRules."""

    def __init__(self, rules: RuleBase | Iterable[SectionRule]) -> None:
        rules = rules.by_kind(SectionRule) if isinstance(rules, RuleBase) else tuple(rules)
        self._by_header: dict[str, SectionRule] = {}
        for rule in rules:
            for header in rule.headers:
                self._by_header.setdefault(_normalize(header), rule)  # first rule wins on a shared header
        alternatives = sorted(self._by_header, key=len, reverse=True)
        body = "|".join(r"[ \t]+".join(map(re.escape, h.split())) for h in alternatives)
        self._regex = (
            re.compile(rf"^[ \t]*(?P<h>{body})[ \t]*(?::|(?=\r?$))", re.IGNORECASE | re.MULTILINE)
            if alternatives else None
        )

    def detect(self, text: str) -> list[Section]:
        """Sections in text order; empty when no header is found."""
        if self._regex is None:
            return []
        found = []
        for m in self._regex.finditer(text):
            rule = self._by_header[_normalize(m.group("h"))]
            found.append((m.start("h"), m.end(), m.group("h"), rule))
        sections = []
        for i, (start, header_end, header, rule) in enumerate(found):
            end = found[i + 1][0] if i + 1 < len(found) else len(text)
            sections.append(Section(start, end, rule.category, rule.id, start, header_end, header, rule.attributes))
        return sections


def detect_sections(text: str, rules: RuleBase | Iterable[SectionRule]) -> list[Section]:
    """Convenience wrapper: ``SectionDetector(rules).detect(text)``."""
    return SectionDetector(rules).detect(text)
