"""SPARQL guard properties: updates, SERVICE and FROM are always refused however they are spelled;
read-only queries that mention those words only in strings, comments, IRIs or names are accepted."""
from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kgfusion.knowledge.sparql import FORBIDDEN, READ_FORMS, SparqlError, check_read_only, parse_read_only
from tests.property.strategies import examples

SETTINGS = settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])

UPDATE_WORDS = ("INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH", "DATA", "WHERE",
                "GRAPH", "DEFAULT", "ALL", "TO", "SILENT", "NAMED", "INTO", "SERVICE", "FROM")


@st.composite
def spelled(draw, word: str) -> str:
    """A keyword in random letter case."""
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.lower() if f else c.upper() for c, f in zip(word, flips))


# Whitespace and comments SPARQL allows between tokens.
gaps = st.lists(st.sampled_from([" ", "\t", "\n", "\r\n", "  ", " # insert a comment\n", " #SELECT\n"]),
                min_size=1, max_size=3).map("".join)
prologues = st.lists(st.sampled_from(["PREFIX ex: <http://example.org/> ", "BASE <http://example.org/base/> ",
                                      "PREFIX select: <http://example.org/select#> ", "# a SELECT comment\n"]),
                     max_size=3).map("".join)

UPDATE_TEMPLATES = [
    "INSERT DATA {{ <http://a> <http://b> {lit} }}",
    "DELETE DATA {{ <http://a> <http://b> {lit} }}",
    "DELETE WHERE {{ ?s ?p {lit} }}",
    "DELETE {{ ?s ?p ?o }} INSERT {{ ?s ?p {lit} }} WHERE {{ ?s ?p ?o }}",
    "WITH <http://g> DELETE {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o }}",
    "INSERT {{ GRAPH <http://g> {{ ?s ?p ?o }} }} WHERE {{ ?s ?p {lit} }}",
    "LOAD <http://example.org/data.ttl>",
    "LOAD SILENT <http://example.org/data.ttl> INTO GRAPH <http://g>",
    "CLEAR ALL", "CLEAR DEFAULT", "CLEAR SILENT GRAPH <http://g>",
    "DROP ALL", "DROP NAMED", "DROP GRAPH <http://g>",
    "CREATE GRAPH <http://g>", "CREATE SILENT GRAPH <http://g>",
    "ADD DEFAULT TO <http://g>", "MOVE <http://a> TO DEFAULT", "COPY SILENT DEFAULT TO GRAPH <http://g>",
    "SELECT * WHERE {{ SERVICE <http://example.org/sparql> {{ ?s ?p {lit} }} }}",
    "SELECT * WHERE {{ SERVICE SILENT <http://example.org/sparql> {{ ?s ?p ?o }} }}",
    "SELECT * FROM <http://example.org/remote.ttl> WHERE {{ ?s ?p {lit} }}",
    "SELECT * FROM NAMED <http://example.org/remote.ttl> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
    "ASK FROM <http://example.org/x.ttl> {{ ?s ?p ?o }}",
    "CONSTRUCT {{ ?s ?p ?o }} FROM <http://example.org/x.ttl> WHERE {{ ?s ?p ?o }}",
]
# Literals that themselves mention the read forms and the forbidden words.
literals = st.sampled_from(['"SELECT"', "'ASK me'", '"""CONSTRUCT\nSELECT"""', '"x"', "42", "<http://select.example/>"])


@st.composite
def update_queries(draw) -> str:
    template = draw(st.sampled_from(UPDATE_TEMPLATES)).format(lit=draw(literals))
    out = []
    for token in template.split(" "):
        word = token.upper()
        if word.isalpha() and word in UPDATE_WORDS + READ_FORMS:
            token = draw(spelled(token))
        out.append(token)
    body = "".join(t + draw(gaps) for t in out)
    extra = draw(st.sampled_from(["", " ;\nSELECT * WHERE { ?s ?p ?o }", " ; CLEAR ALL"]))
    return draw(prologues) + body + extra


@SETTINGS
@given(update_queries())
@example("INSERT DATA { <http://a> <http://b> 'c' }")
@example("select * where { service <http://example.org/sparql> { ?s ?p ?o } }")
@example("SELECT * WHERE { # c\r\nSERVICE <http://example.org/sparql> { ?s ?p ?o } }")
def test_updates_service_and_from_are_always_refused(query):
    try:
        form = check_read_only(query)
    except SparqlError:
        return
    raise AssertionError(f"guard accepted {query!r} as {form}")


# -------------------------------------------------------------------- read-only queries stay usable


def _string_with(words: list[str], quote: str) -> str:
    text = " ".join(words)
    return {'"': f'"{text}"', "'": f"'{text}'", '"""': f'"""{text}\n{text}"""', "'''": f"'''{text}'''"}[quote]


forbidden_words = st.lists(st.sampled_from(FORBIDDEN).flatmap(spelled), min_size=1, max_size=4)
quotes = st.sampled_from(['"', "'", '"""', "'''"])


@st.composite
def read_queries(draw) -> tuple[str, str]:
    """(query, form): the forbidden words appear only in a string, a comment, an IRI or a variable name."""
    lit = _string_with(draw(forbidden_words), draw(quotes))
    comment = "# " + " ".join(draw(forbidden_words)) + "\n"
    iri = "<http://example.org/" + "/".join(w.lower() for w in draw(forbidden_words)) + ">"
    var = "?" + draw(st.sampled_from(FORBIDDEN)).lower()
    form = draw(st.sampled_from(["SELECT", "ASK", "CONSTRUCT"]))
    where = f"{{ {comment}{var} {iri} {lit} . FILTER({var} != {lit}) }}"
    query = {"SELECT": f"SELECT {var} WHERE {where}", "ASK": f"ASK {where}",
             "CONSTRUCT": f"CONSTRUCT {{ {var} {iri} {lit} }} WHERE {where}"}[form]
    head = draw(spelled(form))
    return draw(prologues) + head + query[len(form):], form


@SETTINGS
@given(read_queries())
@example(('SELECT ?delete WHERE { ?delete <http://x/drop> "INSERT DATA { }" }', "SELECT"))
def test_forbidden_words_inside_literals_comments_and_iris_are_accepted(case):
    query, form = case
    assert check_read_only(query) == form


def _algebra_nodes(node) -> list[str]:
    """Names of every algebra node (CompValue) in a prepared query."""
    names, stack = [], [node]
    while stack:
        cur = stack.pop()
        if hasattr(cur, "name") and isinstance(getattr(cur, "name", None), str):
            names.append(cur.name)
        if isinstance(cur, dict):
            stack.extend(cur.values())
        elif isinstance(cur, (list, tuple)):
            stack.extend(cur)
    return names


TOKENS = ["SELECT", "ASK", "CONSTRUCT", "DESCRIBE", "*", "?s", "?p", "?o", "WHERE", "{", "}", ".", "<http://a>",
          "SERVICE", "service", "FROM", "NAMED", "INSERT", "DELETE", "DATA", "LOAD", "'x'", '"SERVICE"', "#", "\n",
          "GRAPH", "FILTER(", ")", "LIMIT", "1", ";", "PREFIX", "ex:", "ex:a", "BIND(", "AS", "VALUES", "OPTIONAL",
          "UNION", "SeRvIcE", "\r", "\\"]


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25).map(" ".join))
@example("SELECT * WHERE { ?s ?p ?o }")
def test_token_soup_is_refused_or_has_no_remote_access(query):
    """Whatever the guard accepts parses to a query with no SERVICE node and no FROM dataset."""
    try:
        form, prepared = parse_read_only(query)
    except SparqlError:
        return
    assert form in READ_FORMS
    assert "ServiceGraphPattern" not in _algebra_nodes(prepared.algebra)
    assert prepared.algebra.get("datasetClause") is None
