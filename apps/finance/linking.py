"""Company linking: cashtags, tickers and names in an item -> KG companies rolled up to industry and sector.

Order of evidence (best first): a cashtag ($AAPL); a company name or alias from the KG (case-sensitive,
whole words; "weak" names that are common words only count next to the company's ticker); an upper-case
ticker token; a fuzzy name through ``kgfusion.knowledge.linker.Linker`` (optional). Tickers listed in
ambiguous_tickers.yaml (ALL, IT, ON ...) link only with a cashtag or the company's name in the item;
bare tickers are not trusted in mostly upper-case text; a cashtag cut off by a retweet ("$C…") is
skipped. The feed's own ticker column is a hint used per ``ticker_hint`` (default ``confirm``: it can
confirm an ambiguous ticker or a common-word name of that company, never link alone). Each Mention
says how it matched.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from kgfusion.apps.finance.config import FinanceConfig
from kgfusion.apps.finance.rule_kinds import AmbiguousTicker, ambiguous_tickers
from kgfusion.knowledge.graph import KnowledgeGraph
from kgfusion.knowledge.name_pattern import trie_pattern
from kgfusion.knowledge.rules import RuleBase

FUZZY_CACHE_SIZE = 20_000  # linked capitalised spans kept per process (the Linker has its own LRU too)
MATCH_PRIORITY = {"cashtag": 0, "name": 1, "ticker": 2, "fuzzy": 3, "feed_hint": 4}
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:[.\-][A-Za-z]{1,2})?)(?![\w])")
_BARE = re.compile(r"(?<![\w$@/.\-&])#?([A-Z]{1,5}(?:[.\-][A-Z])?)(?![\w&/]|[.\-][A-Za-z0-9])")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_URL = re.compile(r"https?://\S+|www\.\S+")
_CAPS_SPAN = re.compile(r"\b[A-Z][\w&'.\-]*(?:\s+(?:&\s+)?[A-Z][\w&'.\-]*){0,3}")


@dataclass(frozen=True)
class Company:
    uri: str
    ticker: str
    label: str
    industry_uri: str | None
    industry: str | None
    sector_uri: str | None
    sector: str | None


@dataclass(frozen=True)
class Mention:
    """A linked company in an item: match in cashtag|name|ticker|fuzzy|feed_hint, surface text and span."""

    company: Company
    match: str
    surface: str
    start: int
    end: int
    score: float = 1.0
    detail: str = ""

    def to_row(self) -> dict[str, Any]:
        c = self.company
        return {"entity": c.uri, "ticker": c.ticker, "company": c.label, "industry_uri": c.industry_uri,
                "industry": c.industry, "sector_uri": c.sector_uri, "sector": c.sector, "match": self.match,
                "surface": self.surface, "start": self.start, "end": self.end, "score": round(self.score, 4),
                "detail": self.detail}

    def kg_facts(self) -> list[str]:
        c = self.company
        facts = [f"{c.label} ({c.ticker}) is a schema:Corporation"]
        if c.industry:
            facts.append(f"{c.ticker} kgf:inIndustry {c.industry}")
        if c.sector:
            facts.append(f"{c.ticker} kgf:inSector {c.sector}")
        return facts


class CompanyCatalog:
    """Companies of a finance KG with their tickers and names (plus historical tickers/extra names)."""

    def __init__(self, companies: Iterable[Company], tickers: dict[str, str], names: dict[str, str]) -> None:
        self.companies = {c.uri: c for c in companies}
        self.by_ticker = {t: self.companies[u] for t, u in tickers.items() if u in self.companies}
        self.names = {n: self.companies[u] for n, u in names.items() if u in self.companies}
        self.names_of: dict[str, set[str]] = {}
        for n, c in self.names.items():
            self.names_of.setdefault(c.uri, set()).add(n)

    @classmethod
    def from_graph(cls, graph: KnowledgeGraph, config: FinanceConfig | None = None) -> CompanyCatalog:
        config = config or FinanceConfig()
        g = graph.graph
        ticker_p, sector_p, industry_p = (graph.expand(x) for x in ("kgf:ticker", "kgf:inSector", "kgf:inIndustry"))
        companies, tickers, names = [], {}, {}
        for uri in graph.entities("schema:Corporation"):
            own = sorted(str(t) for t in g.objects(uri, ticker_p))
            ind = next(iter(g.objects(uri, industry_p)), None)
            sec = next(iter(g.objects(uri, sector_p)), None)
            main = str(uri).rsplit("/", 1)[-1]  # the issuer's primary ticker (class A)
            companies.append(Company(str(uri), main, graph.label(uri), str(ind) if ind else None,
                                     graph.label(ind) if ind else None, str(sec) if sec else None,
                                     graph.label(sec) if sec else None))
            for t in own:
                tickers[t.upper()] = str(uri)
                tickers[t.upper().replace(".", "-")] = str(uri)
            for name in graph.labels(uri):
                bare = name.lstrip("$")
                if bare.upper() == bare and bare.replace(".", "").replace("-", "").isalnum() and len(bare) <= 6:
                    tickers.setdefault(bare.upper(), str(uri))  # ticker-like alias ("GOOG", "BRK-B")
                elif "(" not in name and len(name) >= 3:
                    names[name] = str(uri)
        by_t = {t: u for t, u in tickers.items()}
        for old, new in config.historical_tickers.items():
            if new.upper() in by_t:
                tickers[old.upper()] = by_t[new.upper()]
        for name, t in config.extra_names.items():
            if t.upper() in by_t:
                names[name] = by_t[t.upper()]
        return cls(companies, tickers, names)


class CompanyLinker:
    """Find the companies an item mentions (see the module docstring)."""

    def __init__(self, catalog: CompanyCatalog, rules: RuleBase | dict[str, AmbiguousTicker] | None = None,
                 config: FinanceConfig | None = None, linker: Any = None) -> None:
        self.catalog = catalog
        self.config = config or FinanceConfig()
        self.ambiguous = ambiguous_tickers(rules) if isinstance(rules, RuleBase) else dict(rules or {})
        for t in self.config.extra_ambiguous:
            company = catalog.by_ticker.get(t)
            if company is not None and t not in self.ambiguous:
                self.ambiguous[t] = AmbiguousTicker(id=f"finance.config.ambiguous.{t.lower()}", ticker=t,
                                                    company=company.label, note="FinanceConfig.extra_ambiguous")
        self.linker = linker if self.config.fuzzy_names else None
        self.weak = set(self.config.weak_names)
        # a trie, not a longest-first alternation: ~10x faster over the ~600 S&P names, same matches
        self._names = (re.compile(rf"(?<![\w&])(?:{trie_pattern(catalog.names)})(?![\w&])")
                       if catalog.names else None)
        # span -> (uri, match, score), least recently used first; bounded so a feed with ever new names
        # (millions of posts) does not grow the process
        self._fuzzy_cache: OrderedDict[str, tuple[str | None, str, float]] = OrderedDict()

    def link(self, text: str, hint: str | None = None) -> list[Mention]:
        """Mentions in ``text`` (one per company, best evidence kept), sorted by position."""
        found: list[Mention] = []
        masked = _URL.sub(lambda m: " " * len(m.group()), text)
        tags = {}
        for m in _CASHTAG.finditer(masked):
            if masked[m.end():m.end() + 1] == "…" or masked[m.end():m.end() + 3] == "...":
                continue  # truncated by a retweet: "$C…" may have been $CAT
            t = m.group(1).upper()
            c = self.catalog.by_ticker.get(t)
            if c is not None:
                tags[c.uri] = t
                found.append(Mention(c, "cashtag", m.group(), m.start(), m.end(), 1.0, f"cashtag {m.group()}"))
        name_hits: dict[str, tuple[int, int, str]] = {}
        weak_hits: list[tuple[Company, int, int, str]] = []
        if self._names is not None:
            for m in self._names.finditer(masked):
                c = self.catalog.names[m.group()]
                if m.group() in self.weak:
                    weak_hits.append((c, m.start(), m.end(), m.group()))
                else:
                    name_hits.setdefault(c.uri, (m.start(), m.end(), m.group()))
        hinted = self.catalog.by_ticker.get(hint.upper()) if hint and self.config.ticker_hint != "ignore" else None
        tickers_seen: dict[str, tuple[int, int, str]] = {}
        caps_text = _mostly_upper(masked)
        for m in _BARE.finditer(masked):
            t = m.group(1)
            c = self.catalog.by_ticker.get(t)
            if c is None or caps_text:
                continue
            rule = self.ambiguous.get(t)
            why = ""
            if rule is not None:
                if "company_name" in rule.requires and c.uri in name_hits:
                    why = " (ambiguous; company name present)"
                elif "cashtag" in rule.requires and c.uri in tags:
                    why = " (ambiguous; cashtag present)"
                elif hinted is not None and hinted.uri == c.uri:
                    why = " (ambiguous; feed ticker column agrees)"
                else:
                    continue
            tickers_seen.setdefault(c.uri, (m.start(), m.end(), m.group()))
            found.append(Mention(c, "ticker", m.group(), m.start(), m.end(), 1.0, f"ticker {t}{why}"))
        for uri, (s, e, surf) in name_hits.items():
            found.append(Mention(self.catalog.companies[uri], "name", surf, s, e, 1.0, f"KG name '{surf}'"))
        for c, s, e, surf in weak_hits:  # a common-word name counts only with the company's ticker present
            if c.uri in tags or c.uri in tickers_seen or (hinted is not None and hinted.uri == c.uri):
                found.append(Mention(c, "name", surf, s, e, 1.0, f"KG name '{surf}' (common word; ticker present)"))
        if self.linker is not None:
            found += self._fuzzy(masked, found)
        found = self._best_per_company(found)
        if hinted is not None and self.config.ticker_hint in ("fallback", "always"):
            c = hinted
            if (self.config.ticker_hint == "always" or not found) and all(
                    f.company.uri != c.uri for f in found):
                found.append(Mention(c, "feed_hint", hint, 0, 0, 0.5, f"feed ticker column '{hint}' (not in text)"))
        return sorted(found, key=lambda m: (m.start, MATCH_PRIORITY[m.match]))

    def _fuzzy(self, text: str, found: list[Mention]) -> list[Mention]:
        """Capitalised spans not yet linked, through the Linker (cached per span)."""
        taken = [(m.start, m.end) for m in found]
        out = []
        for m in _CAPS_SPAN.finditer(text):
            span = m.group().rstrip(".'")
            if len(span) < 4 or span in self.weak or any(s < m.end() and m.start() < e for s, e in taken):
                continue
            uri, match, score = self._fuzzy_link(span)
            c = self.catalog.companies.get(uri) if uri else None
            if c is None or (match not in ("exact", "normalized") and score < self.config.fuzzy_threshold):
                continue
            out.append(Mention(c, "fuzzy", span, m.start(), m.start() + len(span), score,
                               f"linker {match} '{span}' -> {c.label} ({score:.2f})"))
        return out

    def _fuzzy_link(self, span: str) -> tuple[str | None, str, float]:
        cache = self._fuzzy_cache
        hit = cache.get(span)
        if hit is not None:
            cache.move_to_end(span)
            return hit
        res = self.linker.link(span, types=["https://schema.org/Corporation"])
        hit = cache[span] = (res.uri, res.match, float(res.score))
        if len(cache) > FUZZY_CACHE_SIZE:
            cache.popitem(last=False)
        return hit

    @staticmethod
    def _best_per_company(mentions: list[Mention]) -> list[Mention]:
        best: dict[str, Mention] = {}
        for m in mentions:
            cur = best.get(m.company.uri)
            if cur is None or (MATCH_PRIORITY[m.match], m.start) < (MATCH_PRIORITY[cur.match], cur.start):
                best[m.company.uri] = m
        return list(best.values())


def _mostly_upper(text: str) -> bool:
    if text.isascii():  # most feeds: count letters with two C-level scans, not per character in Python
        n_upper = len(_UPPER.findall(text))
        n_letters = n_upper + len(_LOWER.findall(text))
    else:
        letters = [ch for ch in text if ch.isalpha()]
        n_upper, n_letters = sum(ch.isupper() for ch in letters), len(letters)
    return n_letters >= 12 and n_upper / n_letters > 0.6


def mention_dict(m: Mention) -> dict[str, Any]:
    return asdict(m)


def neighbourhood(graph: KnowledgeGraph, uri: str, limit: int = 50) -> list[dict[str, str]]:
    """The KG neighbours of an entity as rows (direction, predicate, neighbour label, neighbour URI or value)."""
    rows = []
    for nb in graph.neighbors(uri)[:limit]:
        node = str(nb.node)
        is_uri = node.startswith("http")
        rows.append({"direction": nb.direction, "predicate": graph.curie(nb.predicate),
                     "neighbour": graph.label(nb.node) if is_uri else node, "uri": node if is_uri else ""})
    return rows
