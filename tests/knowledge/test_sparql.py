from __future__ import annotations

import pytest

from kgfusion.core.errors import KgfusionError
from kgfusion.knowledge.sparql import FORBIDDEN, SparqlError, check_read_only
from kgfusion.knowledge.vocab import ALL_PREFIXES


@pytest.mark.parametrize(
    ("query", "form"),
    [
        ("SELECT ?s WHERE { ?s ?p ?o } LIMIT 3", "SELECT"),
        ("ask { ?s ?p ?o }", "ASK"),
        ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "CONSTRUCT"),
        ("DESCRIBE <https://kgfusion.dev/id/company/AAPL>", "DESCRIBE"),
        ("PREFIX ex: <http://example.org/>\nSELECT * WHERE { ?s ex:p ?o }", "SELECT"),
    ],
)
def test_read_only_forms(query: str, form: str) -> None:
    assert check_read_only(query) == form


@pytest.mark.parametrize(
    "query",
    [
        "INSERT DATA { <http://a> <http://b> <http://c> }",
        "DELETE WHERE { ?s ?p ?o }",
        "delete data { <http://a> <http://b> <http://c> }",
        "LOAD <http://example.org/data.ttl>",
        "CLEAR ALL",
        "DROP GRAPH <http://g>",
        "CREATE GRAPH <http://g>",
        "ADD DEFAULT TO <http://g>",
        "MOVE DEFAULT TO <http://g>",
        "COPY DEFAULT TO <http://g>",
        "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
        "SELECT * FROM <http://example.org/remote.ttl> WHERE { ?s ?p ?o }",
        "WITH <http://g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
    ],
)
def test_updates_and_remote_access_are_rejected(query: str) -> None:
    with pytest.raises(SparqlError, match="read-only") as info:
        check_read_only(query)
    assert any(word in str(info.value) for word in FORBIDDEN)
    assert isinstance(info.value, KgfusionError)


def test_keywords_inside_strings_iris_comments_and_names_are_fine() -> None:
    query = (
        'SELECT ?delete WHERE {  # insert nothing, drop nothing\n'
        '  ?delete rdfs:label "DELETE me" ;\n'
        '          kgf:add <http://example.org/load/clear> .\n'
        "  FILTER(?delete != 'copy')\n"
        "}"
    )
    assert check_read_only(query, ALL_PREFIXES) == "SELECT"


def test_malformed_query_names_line_and_column() -> None:
    with pytest.raises(SparqlError, match=r"Malformed SPARQL at line 2, column \d+"):
        check_read_only("SELECT ?s\nWHERE { ?s ?p }")


def test_unknown_prefix_and_empty_query() -> None:
    with pytest.raises(SparqlError, match="prefix"):
        check_read_only("SELECT ?s WHERE { ?s nosuch:p ?o }")
    with pytest.raises(SparqlError, match="Empty"):
        check_read_only("   ")


def test_project_prefixes_can_be_passed() -> None:
    query = "SELECT ?c WHERE { ?c kgf:inSector sector:energy ; a schema:Corporation }"
    with pytest.raises(SparqlError):
        check_read_only(query)
    assert check_read_only(query, ALL_PREFIXES) == "SELECT"
