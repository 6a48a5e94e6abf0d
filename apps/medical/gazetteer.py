"""KG gazetteer: disease and drug names of the medical graph as a fast longest-match phrase matcher.

Matching is token-based (knowledge.rules.tokenize: words and single punctuation marks, lower-cased),
so a name only matches whole words ("gout" never matches inside "gouty") and hyphens/commas must agree.

Which names are used (the rule):
- every rdfs:label and skos:altLabel of a disease (schema:MedicalCondition) or drug (schema:Drug), plus
  optional extra names (the app adds gold mentions of the NCBI-disease / BC5CDR *training* files that
  map to one DO concept); symptoms (schema:MedicalSignOrSymptom) when asked for, as Disease;
- names shorter than ``min_chars`` characters (default 4) are skipped, as are the generic heads in
  GENERIC_NAMES ("disease", "syndrome", ...) and names without any letter;
- names written in capitals (acronyms such as "COVID-19", "SADDAN") match case-sensitively, all other
  names case-insensitively;
- a regular English plural of the last word ("lymphomas", "seizures") matches too (score 0.85 instead of 0.9);
- overlapping matches resolve longest-first (then earliest).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kgfusion.apps.medical.config import TYPE_LABEL
from kgfusion.core.errors import DataError
from kgfusion.knowledge.records import EntityRecord
from kgfusion.knowledge.rules import PhraseMatcher, select_longest, tokenize

DISEASE_TYPE = "https://schema.org/MedicalCondition"
SYMPTOM_TYPE = "https://schema.org/MedicalSignOrSymptom"
DRUG_TYPE = "https://schema.org/Drug"

# Too generic to be a mention on their own (the DO root is literally "disease").
GENERIC_NAMES = frozenset({
    "disease", "diseases", "syndrome", "disorder", "disorders", "infection", "injury", "lesion", "condition",
    "illness", "tumor", "tumour", "cancer of", "abnormality", "deficiency", "poisoning", "pain", "water",
    "oxygen", "alcohol", "sodium", "potassium", "calcium", "iron", "zinc", "gold", "lead", "silver", "sugar",
})
EXACT_SCORE, PLURAL_SCORE = 0.9, 0.85
_ACRONYM = re.compile(r"^[A-Z0-9][A-Z0-9\-]*[A-Z][A-Z0-9\-]*$")


@dataclass(frozen=True)
class GazetteerEntry:
    """One matchable name: the KG concept it names, its NER label and whether case must agree."""

    name: str
    uri: str
    label: str
    kg_type: str
    case_sensitive: bool = False
    plural: bool = False


@dataclass(frozen=True)
class GazetteerSpan:
    """A gazetteer hit: [start, end) in the text, NER label, score, the concept URI (``ref``) and name."""

    start: int
    end: int
    label: str
    score: float
    ref: str
    text: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _plural(name: str) -> str | None:
    last = name.rsplit(" ", 1)[-1]
    if len(last) < 4 or not last.isalpha() or last[-1] in "sxz" or last.endswith(("ch", "sh")):
        return None
    if last.endswith("y") and last[-2] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def usable_name(name: str, min_chars: int) -> bool:
    """The skip rule of the module docstring (length, generic heads, needs a letter)."""
    stripped = name.strip()
    return (len(stripped) >= min_chars and stripped.lower() not in GENERIC_NAMES
            and any(c.isalpha() for c in stripped))


class Gazetteer:
    """Longest-match KG name matcher; build with ``from_records`` (or ``from_graph``), call ``find``."""

    def __init__(self, entries: Iterable[GazetteerEntry]) -> None:
        self.entries: list[GazetteerEntry] = list(entries)
        self._matcher = PhraseMatcher((e.name, i) for i, e in enumerate(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def from_records(cls, records: Iterable[EntityRecord], *, min_chars: int = 4, symptoms: bool = False,
                     plurals: bool = True, extra_names: Mapping[str, Iterable[str]] | None = None) -> Gazetteer:
        """Entries for disease and drug records (and symptoms when ``symptoms``), per the module rule;
        ``extra_names`` (uri -> names, e.g. training-corpus mentions) go through the same rule."""
        wanted = {DISEASE_TYPE, DRUG_TYPE} | ({SYMPTOM_TYPE} if symptoms else set())
        extra = extra_names or {}
        entries: list[GazetteerEntry] = []
        seen: set[tuple[str, str, bool]] = set()
        for rec in records:
            if rec.type not in wanted:
                continue
            label = TYPE_LABEL[rec.type]
            for name in dict.fromkeys([*rec.names(), *extra.get(rec.uri, ())]):
                if not usable_name(name, min_chars):
                    continue
                case = bool(_ACRONYM.match(name))
                variants = [(name, False)]
                plural = _plural(name) if plurals and not case else None
                if plural:
                    variants.append((plural, True))
                for text, is_plural in variants:
                    key = (text if case else text.lower(), rec.uri, is_plural)
                    if key not in seen:
                        seen.add(key)
                        entries.append(GazetteerEntry(text, rec.uri, label, rec.type, case, is_plural))
        if not entries:
            raise DataError("the gazetteer found no disease or drug names in the graph's records; "
                            "check that the graph types diseases as schema:MedicalCondition and drugs as schema:Drug")
        return cls(entries)

    @classmethod
    def from_graph(cls, graph, **kwargs) -> Gazetteer:
        """From a KnowledgeGraph (its entity_records)."""
        return cls.from_records(graph.entity_records(), **kwargs)

    def find(self, text: str, tokens: Sequence[tuple[int, int, str]] | None = None) -> list[GazetteerSpan]:
        """Non-overlapping hits in ``text`` (longest first); a name shared by several concepts keeps the
        first concept by URI order and the others are dropped (the linker reports such ambiguity)."""
        tokens = tokens if tokens is not None else tokenize(text)
        hits = []
        for s, e, i in self._matcher.find_all(tokens):
            entry = self.entries[i]
            if entry.case_sensitive and text[s:e] != entry.name:
                continue
            hits.append((s, e, i))
        # Prefer non-plural, then the smallest URI, for identical spans (deterministic).
        hits.sort(key=lambda h: (self.entries[h[2]].plural, self.entries[h[2]].uri))
        out = []
        for s, e, i in select_longest(hits):
            entry = self.entries[i]
            out.append(GazetteerSpan(s, e, entry.label, PLURAL_SCORE if entry.plural else EXACT_SCORE,
                                     entry.uri, text[s:e], entry.name))
        return out

    # -- cache ------------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps([asdict(e) for e in self.entries], ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Gazetteer:
        try:
            return cls(GazetteerEntry(**row) for row in json.loads(text))
        except (json.JSONDecodeError, TypeError) as exc:
            raise DataError(f"gazetteer cache is unreadable ({exc}); delete it to rebuild") from exc
