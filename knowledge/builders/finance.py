"""Finance graph from the S&P 500 constituents table (data/datasets/sp500/constituents.csv).

One company node per issuer (CIK): share classes such as GOOGL/GOOG become one ``company:GOOGL`` node
(Class A ticker first) carrying every ticker. Sectors and sub-industries are nodes of their own.

News topics (issue 15): the 20 topics of Twitter Financial News topic (``TOPIC_GROUPS``) as SKOS concepts
``kgfid:topic/<slug>`` (``a skos:Concept, kgf:Topic``; ``skos:prefLabel`` the topic name -- no ``rdfs:label``,
so the topic "Financials" never shadows the sector of that name in label look-ups -- ``skos:broader`` its
group), the groups macro / company-specific / markets / general as
``kgfid:topic-group/<slug>`` (``a skos:Concept, kgf:TopicGroup``), all ``skos:inScheme`` one
``kgfid:topic-scheme/finance-news``, so alerts roll topics up like companies roll up to sectors. When the data
set's labels.csv is there, its topic names must be exactly the ones of ``TOPIC_GROUPS``.
"""
from __future__ import annotations

import re
from pathlib import Path

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, XSD

from kgfusion.core.errors import DataError
from kgfusion.knowledge.builders import read_table, slug
from kgfusion.knowledge.graph import KnowledgeGraph
from kgfusion.knowledge.vocab import COMPANY, ID_PREFIXES, INDUSTRY, KGF, KGFID, SECTOR

TOPIC = KGF.Topic
TOPIC_GROUP = KGF.TopicGroup
TOPIC_SCHEME = KGFID["topic-scheme/finance-news"]
TOPIC_LABELS_FILE = Path("twitter_financial_news_topic") / "labels.csv"
# Topic group -> the Twitter Financial News topics under it (the data set's 20 labels, each in one group).
TOPIC_GROUPS: dict[str, tuple[str, ...]] = {
    "macro": ("Fed | Central Banks", "Macro", "Treasuries | Corporate Debt", "Currencies", "Energy | Oil",
              "Gold | Metals | Materials", "Politics"),
    "company-specific": ("Earnings", "Dividend", "M&A | Investments", "IPO", "Personnel Change",
                         "Company | Product News", "Legal | Regulation", "Analyst Update"),
    "markets": ("Markets", "Stock Movement", "Stock Commentary", "Financials"),
    "general": ("General News | Opinion",),
}

COLUMNS = ("Symbol", "Security", "GICS Sector", "GICS Sub-Industry", "Headquarters Location", "Date added", "CIK",
           "Founded")
_CLASS = re.compile(r"\s*\(Class ([A-Z])\)\s*$")
_SUFFIX = re.compile(
    r"(?:,?\s+(?:Inc\.?|Incorporated|Corp\.?|Corporation|Co\.?|Company|Companies|Ltd\.?|Limited|plc|PLC|"
    r"Holdings?|Group|N\.V\.|S\.A\.|AG|SE|LLC|L\.P\.)|\s*&)$"
)

# Generic words a legal-suffix strip can leave behind ("News Corp" -> "News"): never aliases on their own.
_GENERIC = frozenset({"american", "first", "general", "global", "international", "national", "news", "united"})


def company_names(security: str) -> tuple[str, list[str]]:
    """(label, aliases) for a Security name: class suffix dropped, "(The)"/"(Eli)" moved to the front,
    legal suffixes (Inc., Corp., Co., Ltd., plc, Holdings, Group, ...) and a leading "The " stripped.

    >>> company_names("Coca-Cola Company (The)")
    ('Coca-Cola Company (The)', ['The Coca-Cola Company', 'Coca-Cola'])
    """
    label = _CLASS.sub("", security).strip()
    natural = label
    m = re.fullmatch(r"(.+?)\s*\(([^()]+)\)", label)
    if m:
        natural = f"{m.group(2)} {m.group(1)}"
    short = re.sub(r"^The\s+", "", natural)
    while True:
        shorter = _SUFFIX.sub("", short).strip()
        if shorter == short or len(shorter) < 2:
            break
        short = shorter
    names = (natural, short) if short.lower() not in _GENERIC else (natural,)
    aliases = [n for n in dict.fromkeys(names) if n != label]
    return label, aliases


def _share_class(security: str) -> str:
    """"A" for "Alphabet Inc. (Class A)", "" when the name carries no class."""
    m = _CLASS.search(security)
    return m.group(1) if m else ""


def _ticker_aliases(ticker: str) -> list[str]:
    variants = [ticker, ticker.replace(".", "-")] if "." in ticker else [ticker]
    return [a for v in variants for a in (v, f"${v}")]


def build_finance_graph(datasets_dir: str | Path) -> KnowledgeGraph:
    """Companies, sectors and sub-industries from ``<datasets_dir>/sp500/constituents.csv``; the news topics."""
    path = Path(datasets_dir) / "sp500" / "constituents.csv"
    rows = read_table(path, COLUMNS)
    kg = KnowledgeGraph()
    g = kg.graph
    report = {"rows": len(rows), "rows_rejected": 0, "companies": 0, "share_class_rows_merged": 0}

    issuers: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if not (row["Symbol"] and row["Security"] and row["GICS Sector"] and row["GICS Sub-Industry"]):
            report["rows_rejected"] += 1  # no ticker/name/classification: nothing to link to
            continue
        issuers.setdefault(row["CIK"] or f"ticker:{row['Symbol']}", []).append(row)

    industry_sectors: dict[URIRef, set[URIRef]] = {}
    for group in issuers.values():
        # Class A (or the unclassed line) first, then by ticker: GOOGL before GOOG.
        group.sort(key=lambda r: (_share_class(r["Security"]), r["Symbol"]))
        main = group[0]
        report["companies"] += 1
        report["share_class_rows_merged"] += len(group) - 1
        node = KGFID[f"company/{main['Symbol']}"]
        label, aliases = company_names(main["Security"])
        g.add((node, RDF.type, COMPANY))
        g.add((node, RDFS.label, Literal(label)))
        for row in group:
            g.add((node, KGF.ticker, Literal(row["Symbol"])))
            names = [*_ticker_aliases(row["Symbol"]), *company_names(row["Security"])[1]]
            if row["Security"] != label:
                names.append(row["Security"])
            aliases.extend(names)
        for alias in dict.fromkeys(aliases):
            if alias != label:
                g.add((node, SKOS.altLabel, Literal(alias)))
        if main["CIK"].isdigit():
            cik = main["CIK"].zfill(10)
            g.add((node, KGF.cik, Literal(cik)))
            g.add((node, KGF.xref, Literal(f"CIK:{cik}")))
        if main["Headquarters Location"]:
            g.add((node, KGF.headquarters, Literal(main["Headquarters Location"])))
        if main["Founded"]:
            g.add((node, KGF.founded, Literal(main["Founded"])))
            year = re.match(r"\d{4}", main["Founded"])
            if year:
                g.add((node, KGF.foundedYear, Literal(int(year.group(0)))))
        dates = sorted(r["Date added"] for r in group if re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["Date added"]))
        if dates:  # earliest listing of any share class
            g.add((node, KGF.dateAdded, Literal(dates[0], datatype=XSD.date)))

        sector = KGFID[f"sector/{slug(main['GICS Sector'])}"]
        industry = KGFID[f"industry/{slug(main['GICS Sub-Industry'])}"]
        g.add((sector, RDF.type, SECTOR))
        g.add((sector, RDFS.label, Literal(main["GICS Sector"])))
        g.add((industry, RDF.type, INDUSTRY))
        g.add((industry, RDFS.label, Literal(main["GICS Sub-Industry"])))
        g.add((industry, KGF.industryInSector, sector))
        g.add((node, KGF.inSector, sector))
        g.add((node, KGF.inIndustry, industry))
        industry_sectors.setdefault(industry, set()).add(sector)

    report |= add_topics(kg, datasets_dir)
    report["sectors"] = len(set(g.subjects(RDF.type, SECTOR)))
    report["industries"] = len(industry_sectors)
    # GICS puts each sub-industry in exactly one sector; more than one means the table is inconsistent.
    report["industries_in_several_sectors"] = sum(len(s) > 1 for s in industry_sectors.values())
    kg.build_report = report
    return kg


def topic_uri(label: str) -> URIRef:
    """``topic:<slug>`` (= kgfid:topic/<slug>): "Fed | Central Banks" -> topic:fed-central-banks."""
    return ID_PREFIXES["topic"][slug(label)]


def topic_group_uri(group: str) -> URIRef:
    """``topic-group:<slug>`` (= kgfid:topic-group/<slug>): "macro" -> topic-group:macro."""
    return ID_PREFIXES["topic-group"][slug(group)]


def check_topic_labels(datasets_dir: str | Path) -> None:
    """DataError unless ``<datasets_dir>/twitter_financial_news_topic/labels.csv`` (when present) names exactly
    the topics of TOPIC_GROUPS."""
    path = Path(datasets_dir) / TOPIC_LABELS_FILE
    if not path.is_file():
        return
    names = {r["name"] for r in read_table(path, ("id", "name")) if r["name"]}
    known = {t for topics in TOPIC_GROUPS.values() for t in topics}
    if names != known:
        raise DataError(f"{path}: topics {sorted(names - known)} have no group and {sorted(known - names)} are "
                        "missing; give every topic a group in knowledge/builders/finance.py TOPIC_GROUPS")


def add_topics(kg: KnowledgeGraph, datasets_dir: str | Path) -> dict[str, int]:
    """Add the news topics and their groups (see the module docstring); returns the counts for the build report."""
    check_topic_labels(datasets_dir)
    g = kg.graph
    g.add((TOPIC_SCHEME, RDF.type, SKOS.ConceptScheme))
    g.add((TOPIC_SCHEME, RDFS.label, Literal("Finance news topics")))
    for group, topics in TOPIC_GROUPS.items():
        gnode = topic_group_uri(group)
        for t in (SKOS.Concept, TOPIC_GROUP):
            g.add((gnode, RDF.type, t))
        g.add((gnode, SKOS.prefLabel, Literal(group)))
        g.add((gnode, SKOS.inScheme, TOPIC_SCHEME))
        g.add((gnode, SKOS.topConceptOf, TOPIC_SCHEME))
        for label in topics:
            node = topic_uri(label)
            for t in (SKOS.Concept, TOPIC):
                g.add((node, RDF.type, t))
            g.add((node, SKOS.prefLabel, Literal(label)))
            g.add((node, SKOS.broader, gnode))
            g.add((node, SKOS.inScheme, TOPIC_SCHEME))
    return {"topics": sum(len(t) for t in TOPIC_GROUPS.values()), "topic_groups": len(TOPIC_GROUPS)}
