"""Read-only guard for user SPARQL: only SELECT/ASK/CONSTRUCT/DESCRIBE, no updates, no remote data."""
from __future__ import annotations

import re
from collections.abc import Mapping

from pyparsing import ParseBaseException
from rdflib.plugins.sparql import prepareQuery
from rdflib.plugins.sparql.sparql import Query

from kgfusion.core.errors import KgfusionError

READ_FORMS = ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
# Update operations, plus clauses that would make rdflib fetch remote data (SERVICE, FROM <url>).
FORBIDDEN = ("INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "SERVICE", "FROM")

# Parts of a query whose text must not be read as keywords: comments, strings, IRIs, variables, names.
_OPAQUE = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
    r"|<[^<>\"{}|^`\\\s]*>"
    r"|#[^\n]*"
    r"|[?$]\w+"
    r"|[\w.-]*:[\w.%-]*"
)
_WORD = re.compile(r"[A-Za-z]+")
_FORM_NAMES = {"SelectQuery": "SELECT", "AskQuery": "ASK", "ConstructQuery": "CONSTRUCT", "DescribeQuery": "DESCRIBE"}


class SparqlError(KgfusionError):
    """A SPARQL query is malformed or is not read-only."""


def _keywords(query: str) -> list[str]:
    """Upper-cased bare words of the query outside comments, strings, IRIs, variables and prefixed names."""
    return [w.upper() for w in _WORD.findall(_OPAQUE.sub(" ", query))]


def parse_read_only(query: str, namespaces: Mapping[str, object] | None = None) -> tuple[str, Query]:
    """Check ``query`` is a read-only SPARQL query and parse it; returns (form, prepared query).

    Raises SparqlError naming the forbidden keyword, or the line/column of a parse problem.
    """
    if not isinstance(query, str) or not query.strip():
        raise SparqlError("Empty SPARQL query: write a SELECT, ASK, CONSTRUCT or DESCRIBE query.")
    bad = sorted({w for w in _keywords(query) if w in FORBIDDEN})
    if bad:
        raise SparqlError(
            f"SPARQL query uses {', '.join(bad)}: only read-only {'/'.join(READ_FORMS)} queries are allowed "
            "(no updates, SERVICE calls or FROM clauses that fetch remote data)."
        )
    try:
        prepared = prepareQuery(query, initNs=dict(namespaces or {}))
    except ParseBaseException as exc:
        raise SparqlError(
            f"Malformed SPARQL at line {exc.lineno}, column {exc.col}: {exc.msg} (near {exc.line.strip()!r})"
        ) from exc
    except Exception as exc:  # rdflib raises plain Exceptions for e.g. an unknown prefix
        raise SparqlError(f"Malformed SPARQL: {exc}") from exc
    form = _FORM_NAMES.get(prepared.algebra.name)
    if form is None:
        raise SparqlError(f"Unsupported SPARQL query form {prepared.algebra.name!r}: use {'/'.join(READ_FORMS)}.")
    return form, prepared


def check_read_only(query: str, namespaces: Mapping[str, object] | None = None) -> str:
    """Return the query form ("SELECT", "ASK", "CONSTRUCT" or "DESCRIBE") of a valid read-only query.

    Raises SparqlError for updates (INSERT/DELETE/LOAD/CLEAR/DROP/CREATE/ADD/MOVE/COPY), SERVICE and FROM
    clauses, and for malformed SPARQL (the message names line and column). ``namespaces`` are prefixes
    the query may use without declaring them.
    """
    return parse_read_only(query, namespaces)[0]
