"""User SPARQL, guarded and bounded: read-only forms only, then evaluation under a time limit and a row cap.

The guard (``parse_read_only``) refuses updates, SERVICE and FROM before anything is evaluated.
``run_bounded`` then evaluates in a forked worker process that is killed when the time limit passes:
rdflib evaluates SPARQL in pure Python with no way to cancel it, and killing the worker is the only
thing that stops every kind of runaway query (cross joins, joins of materialised sub-queries, paths)
and gives the CPU back at once. The fork inherits the graph (copy-on-write), so nothing is loaded
twice; it costs ~10 ms per query. Without ``os.fork`` (Windows) the query runs in-process and the
deadline is checked each time evaluation pulls triples from the graph (stops BGP joins and paths).
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import select
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, TypeVar

from pyparsing import ParseBaseException
from rdflib import Graph
from rdflib.plugins.sparql import prepareQuery
from rdflib.plugins.sparql.sparql import Query
from rdflib.term import Node

from kgfusion.core.errors import KgfusionError
from kgfusion.core.textfile import brief

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_ROWS = 10_000
MAX_QUERY_CHARS = 100_000  # the parser is slow on huge inputs; no hand-written query is this long

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
    """A SPARQL query is malformed, is not read-only or failed during evaluation."""


class QueryTimeout(SparqlError):
    """A query ran past its time limit and was stopped (its worker process killed)."""

    def __init__(self, timeout_s: float, option: str = "--timeout") -> None:
        self.timeout_s = timeout_s
        super().__init__(f"query stopped after {timeout_s:g} s (limit {option}); add LIMIT or narrow the pattern")


class QueryRows(list):
    """Result rows (a list of dicts) that know whether the row cap cut them.

    ``truncated`` is True when the query had more rows than ``max_rows`` and only the first
    ``max_rows`` were kept; ``note`` is then the sentence to show the user (else "").
    """

    def __init__(self, rows: Iterable[dict[str, str]] = (), truncated: bool = False,
                 max_rows: int | None = None) -> None:
        super().__init__(rows)
        self.truncated = truncated
        self.max_rows = max_rows

    @property
    def note(self) -> str:
        return truncation_note(self.max_rows) if self.truncated and self.max_rows else ""


def truncation_note(max_rows: int, option: str = "--max-rows") -> str:
    """What to tell the user when the row cap cut a result."""
    return f"result truncated at {max_rows:,} rows (limit {option}); add LIMIT or narrow the pattern"


def check_limits(timeout_s: float | None, max_rows: int | None) -> None:
    """Raise SparqlError unless ``timeout_s`` is None or > 0 and ``max_rows`` is None or >= 1."""
    if timeout_s is not None and not timeout_s > 0:  # also refuses NaN
        raise SparqlError(f"Time limit must be > 0 seconds (or None for no limit), got {timeout_s}.")
    if max_rows is not None and max_rows < 1:
        raise SparqlError(f"Row cap must be >= 1 (or None for no cap), got {max_rows}.")


def _keywords(query: str) -> list[str]:
    """Upper-cased bare words of the query outside comments, strings, IRIs, variables and prefixed names."""
    return [w.upper() for w in _WORD.findall(_OPAQUE.sub(" ", query))]


def parse_read_only(query: str, namespaces: Mapping[str, object] | None = None) -> tuple[str, Query]:
    """Check ``query`` is a read-only SPARQL query and parse it; returns (form, prepared query).

    Raises SparqlError naming the forbidden keyword, or the line/column of a parse problem.
    """
    if not isinstance(query, str) or not query.strip():
        raise SparqlError("Empty SPARQL query: write a SELECT, ASK, CONSTRUCT or DESCRIBE query.")
    if len(query) > MAX_QUERY_CHARS:
        raise SparqlError(f"SPARQL query is {len(query):,} characters long, over the limit of {MAX_QUERY_CHARS:,}; "
                          "write a shorter query (use VALUES or FILTER with a few terms, not a pasted data dump).")
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
            f"Malformed SPARQL at line {exc.lineno}, column {exc.col}: {exc.msg} (near {brief(exc.line.strip())})"
        ) from exc
    except Exception as exc:  # rdflib raises plain Exceptions for e.g. an unknown prefix
        raise SparqlError(f"Malformed SPARQL: {brief(exc, 200)[1:-1]}") from exc
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


# ---------------------------------------------------------------- evaluation


def evaluate(
    graph: Graph, form: str, prepared: Query, bindings: Mapping[str, Node] | None = None, cap: int | None = None
) -> tuple[list[dict[str, str]], bool]:
    """Evaluate a prepared read-only query; returns (rows, more) with at most ``cap`` rows.

    SELECT solutions are pulled lazily, so no more than ``cap`` + 1 are ever produced; ``more`` says a
    further row existed. CONSTRUCT/DESCRIBE rows are the sorted triples (rdflib builds that graph whole).
    Rows map variable names to strings (unbound variables left out). Raises SparqlError.
    """
    try:
        result = graph.query(prepared, initBindings=dict(bindings or {}))
        if form == "ASK":
            return [{"ask": "true" if result.askAnswer else "false"}], False
        if form == "SELECT":
            names = [str(v) for v in result.vars or []]
            rows: list[dict[str, str]] = []
            for row in result:
                if cap is not None and len(rows) >= cap:
                    return rows, True
                rows.append({n: str(v) for n, v in zip(names, row, strict=False) if v is not None})
            return rows, False
        triples = sorted(result.graph) if result.graph is not None else []
    except SparqlError:
        raise
    except Exception as exc:  # evaluation errors surface as many rdflib/python types
        raise SparqlError(f"SPARQL evaluation failed: {exc}") from exc
    more = cap is not None and len(triples) > cap
    rows = [{"subject": str(s), "predicate": str(p), "object": str(o)} for s, p, o in triples[:cap]]
    return rows, more


def run_bounded(work: Callable[[Graph], T], graph: Graph, timeout_s: float | None) -> T:
    """``work(graph)`` stopped after ``timeout_s`` seconds (None: no limit, runs in-process).

    With ``os.fork`` the work runs in a child process that inherits ``graph``; its result (JSON-able:
    tuples come back as lists) comes back through a pipe as JSON and the child is killed (SIGKILL) and reaped when the time runs out.
    Raises QueryTimeout on time-out, SparqlError if the worker fails or dies.
    """
    check_limits(timeout_s, None)
    if timeout_s is None:
        return work(graph)
    if not hasattr(os, "fork"):
        return _run_cooperative(work, graph, timeout_s)
    return _run_forked(work, graph, timeout_s)


def _run_forked(work: Callable[[Graph], T], graph: Graph, timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except BaseException:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:  # the worker: never returns into the caller's code
        status = 1
        try:
            os.close(read_fd)
            # Keep the collector off the inherited objects: a collection would write to every one of
            # them and copy the parent's whole heap page by page.
            gc.freeze()
            try:
                blob = json.dumps(["ok", work(graph)]).encode("utf-8")
            except SparqlError as exc:
                blob = json.dumps(["error", str(exc)]).encode("utf-8")
            except BaseException as exc:
                blob = json.dumps(["error", f"SPARQL evaluation failed: {type(exc).__name__}: {exc}"]).encode("utf-8")
            with os.fdopen(write_fd, "wb") as out:
                out.write(blob)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        data = _read_result(read_fd, deadline)
        if data is None:
            raise QueryTimeout(timeout_s)
    except BaseException:  # the time-out, or e.g. KeyboardInterrupt while waiting: stop the worker now
        _kill(pid)
        raise
    finally:
        os.close(read_fd)
    # The worker has answered and is exiting; reap it in the background rather than wait the few ms
    # the kernel takes to tear its address space down.
    try:
        threading.Thread(target=_reap, args=(pid,), name=f"kgfusion-sparql-reap-{pid}", daemon=True).start()
    except RuntimeError:  # no new threads at interpreter shutdown
        _reap(pid)
    try:
        status, value = json.loads(data)
    except ValueError as exc:  # nothing or a partial answer: the worker was killed (out of memory?)
        raise SparqlError("SPARQL worker process died before answering (out of memory?); "
                          "add LIMIT or narrow the pattern") from exc
    if status == "error":
        raise SparqlError(value)
    return value


def _read_result(fd: int, deadline: float) -> bytes | None:
    """All bytes the worker writes, or None if none arrive before ``deadline``.

    The worker writes only once it is done, so the deadline applies to the first byte; the rest is read
    to end of file however long the transfer takes.
    """
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], min(remaining, 60.0))  # select refuses huge timeouts
        if ready:
            break
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # already reaped (the host application ignores SIGCHLD)
        os.waitpid(pid, 0)


class _DeadlineGraph(Graph):
    """A view of a plain Graph (same store and identifier) whose ``triples`` raise past a deadline."""

    def __init__(self, base: Graph, deadline: float, timeout_s: float) -> None:
        super().__init__(store=base.store, identifier=base.identifier, namespace_manager=base.namespace_manager)
        self._deadline, self._timeout_s = deadline, timeout_s

    def triples(self, triple: Any) -> Generator[Any, None, None]:  # type: ignore[override]
        deadline = self._deadline
        if time.monotonic() > deadline:
            raise QueryTimeout(self._timeout_s)
        for i, t in enumerate(super().triples(triple), 1):
            if not i & 1023 and time.monotonic() > deadline:
                raise QueryTimeout(self._timeout_s)
            yield t


def _run_cooperative(work: Callable[[Graph], T], graph: Graph, timeout_s: float) -> T:
    """In-process fallback: the deadline is checked whenever evaluation pulls triples from the store."""
    deadline = time.monotonic() + timeout_s
    return work(_DeadlineGraph(graph, deadline, timeout_s) if type(graph) is Graph else graph)
