"""Persistent knowledge graphs: Turtle loaded once into an on-disk Oxigraph store, reused while it is unchanged.

One store directory serves many graphs, one slot per set of source files::

    DIR/kgfusion-kg-store.json        marker: refuses to write into a directory that is not ours
    DIR/<stem>-<key>/manifest.json    fingerprint of the sources (path, size, mtime, sha256), triples
    DIR/<stem>-<key>/store-<fp>/      the Oxigraph (RocksDB) store; never written once published
    DIR/<stem>-<key>/.lock            held (flock) while a process builds the slot

A later open whose sources have the same size and mtime reuses the store without reading them; a
changed size or mtime re-hashes them and rebuilds only if the content changed. Published stores are
opened read-only, so several processes can share one directory; a build writes a fresh
``store-<fp>`` folder beside the old one and switches the manifest atomically.

``OxigraphKnowledgeGraph`` is a KnowledgeGraph over that store: the rdflib API (``graph``) reads
through a small read-only rdflib Store, and ``query`` runs on Oxigraph's own SPARQL engine behind the
same read-only guard, time limit and row cap as the in-memory graph.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.namespace import XSD
from rdflib.store import Store
from rdflib.term import Node

from kgfusion.core.errors import missing_extra
from kgfusion.knowledge.graph import GraphError, KnowledgeGraph, _local_name
from kgfusion.knowledge.records import EntityRecord
from kgfusion.knowledge.sparql import (
    DEFAULT_MAX_ROWS,
    DEFAULT_TIMEOUT_S,
    QueryRows,
    SparqlError,
    check_limits,
    parse_read_only,
    run_bounded,
)
from kgfusion.knowledge.vocab import ALL_PREFIXES

try:  # POSIX advisory locks; without them (Windows) concurrent first builds are not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

MARKER = "kgfusion-kg-store.json"
FORMAT_VERSION = 1
DEFAULT_LOCK_TIMEOUT_S = 600.0
_RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


_PYOXIGRAPH: Any = None


def _ox() -> Any:
    """pyoxigraph, imported on first use (the optional extra ``store``)."""
    global _PYOXIGRAPH
    if _PYOXIGRAPH is None:
        try:
            import pyoxigraph
        except ImportError as exc:
            raise missing_extra("pyoxigraph", "store") from exc
        _PYOXIGRAPH = pyoxigraph
    return _PYOXIGRAPH


@dataclass(frozen=True)
class StoreInfo:
    """Where a graph's store lives and how this open got it.

    ``reused`` is True when an existing store matched the sources (nothing was parsed), False when this
    call built it; ``build_seconds`` is the time of the build that made the store (recorded in the
    manifest); ``fingerprint`` is the sha256 digest over the sources that names the store folder.
    """

    directory: Path
    slot: Path
    store_path: Path
    fingerprint: str
    triples: int
    reused: bool
    build_seconds: float


# ---------------------------------------------------------------- fingerprints


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_entry(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def fingerprint(sources: Sequence[Path]) -> list[dict[str, Any]]:
    """Per source: resolved path, size, mtime_ns and sha256 of the bytes on disk."""
    return [{**_stat_entry(p), "sha256": _sha256(p)} for p in sources]


def _digest(entries: Sequence[Mapping[str, Any]]) -> str:
    """What the store's content depends on: the source paths (their base IRIs) and bytes."""
    text = json.dumps([[e["path"], e["sha256"]] for e in entries])
    return hashlib.sha256(f"v{FORMAT_VERSION}:{text}".encode()).hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or unreadable (our own files: rebuilt then)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- directory layout


def _check_directory(directory: Path, create: bool) -> None:
    """``directory`` is a kgfusion store (marker present), or new/empty and then made one when ``create``."""
    marker = directory / MARKER
    if directory.exists() and not directory.is_dir():
        raise GraphError(f"--kg-store directory {directory} is a file; give a directory (new or empty).")
    if marker.is_file():
        data = _read_json(marker)
        if not isinstance(data, dict) or data.get("kind") != "kgfusion-kg-store":
            raise GraphError(f"{marker} is corrupt; delete {directory} (kgfusion rebuilds it from the Turtle).")
        if data.get("version") != FORMAT_VERSION:
            raise GraphError(f"{directory} is a kgfusion store of format version {data.get('version')}, this "
                             f"kgfusion reads version {FORMAT_VERSION}; delete it to rebuild it.")
        return
    if directory.is_dir() and any(directory.iterdir()):
        raise GraphError(f"{directory} is not a kgfusion knowledge-graph store (no {MARKER}) and is not empty; "
                         "give a new or empty directory for --kg-store.")
    if not create:
        raise GraphError(f"{directory} is not a kgfusion knowledge-graph store yet.")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write_json(marker, {"kind": "kgfusion-kg-store", "version": FORMAT_VERSION})
    except OSError as exc:
        raise GraphError(f"Cannot create the knowledge-graph store {directory}: {exc.strerror or exc}.") from exc


def slot_for(directory: Path, sources: Sequence[Path]) -> Path:
    """The sub-directory holding the store of exactly these source files."""
    key = hashlib.sha256("\n".join(str(p) for p in sources).encode()).hexdigest()[:10]
    stem = sources[0].name.removesuffix(".gz").removesuffix(".ttl") if len(sources) == 1 else "multi"
    return directory / f"{stem}-{key}"


@contextlib.contextmanager
def _locked(slot: Path, timeout_s: float) -> Iterator[None]:
    """Hold ``slot/.lock`` exclusively (one builder at a time); GraphError after ``timeout_s`` of waiting."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = slot / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise GraphError(f"{slot} is locked by process {holder}, which is building it; wait for it "
                                     f"to finish (waited {timeout_s:g} s) and run again.") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _manifest_matches_stat(manifest: Any, sources: Sequence[Path], slot: Path) -> bool:
    """The manifest's sources have the same paths, sizes and mtimes as ``sources`` now (no hashing) and
    its store folder exists (a deleted one is rebuilt)."""
    if not isinstance(manifest, dict) or manifest.get("version") != FORMAT_VERSION:
        return False
    if not (slot / str(manifest.get("store", "-"))).is_dir():
        return False
    recorded = manifest.get("sources")
    if not isinstance(recorded, list) or len(recorded) != len(sources):
        return False
    try:
        now = [_stat_entry(p) for p in sources]
    except OSError:
        return False
    return all(isinstance(r, dict) and {k: r.get(k) for k in ("path", "size", "mtime_ns")} == n
               for r, n in zip(recorded, now))


def _open_read_only(store_path: Path) -> Any:
    ox = _ox()
    if not (store_path / "CURRENT").is_file():
        raise GraphError(f"{store_path} is not an Oxigraph store (no CURRENT file); delete {store_path.parent} "
                         "and run again to rebuild it from the Turtle.")
    try:
        return ox.Store.read_only(str(store_path))
    except (OSError, RuntimeError, ValueError) as exc:  # RocksDB reports corruption as RuntimeError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GraphError(f"{store_path}: cannot open the Oxigraph store ({first}); delete {store_path.parent} "
                         "and run again to rebuild it from the Turtle.") from exc


def _bulk_load(store: Any, source: Path) -> None:
    ox = _ox()
    base = source.resolve().as_uri()  # the base IRI the in-memory loader uses, so relative IRIs agree
    try:
        if source.name.endswith(".gz"):
            store.bulk_load(input=gzip.decompress(source.read_bytes()), format=ox.RdfFormat.TURTLE, base_iri=base)
        else:
            store.bulk_load(path=str(source), format=ox.RdfFormat.TURTLE, base_iri=base)
    except SyntaxError as exc:
        raise GraphError(f"{source}: malformed Turtle: {str(exc).splitlines()[0]}. Fix the file or rebuild it.") \
            from exc
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise GraphError(f"{source}: cannot read the graph file ({exc}); rebuild it or re-compress it.") from exc


def _build(slot: Path, sources: Sequence[Path], entries: list[dict[str, Any]], digest: str) -> dict[str, Any]:
    """Load ``sources`` into a fresh store folder, publish it with the manifest, drop older folders."""
    ox = _ox()
    for stale in slot.glob(".build-*"):  # a builder killed mid-way (we hold the lock: nobody else builds)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = slot / f".build-{os.getpid()}-{digest[:12]}"
    start = time.perf_counter()
    try:
        store = ox.Store(str(tmp))
        for source in sources:
            _bulk_load(store, source)
        store.flush()
        store.optimize()  # compact once: the store is only read from now on
        triples = len(store)
        del store  # closes RocksDB before the folder is renamed
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    name = f"store-{digest[:16]}"
    final = slot / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    manifest = {"version": FORMAT_VERSION, "store": name, "sources": entries, "triples": triples,
                "build_seconds": round(time.perf_counter() - start, 3), "built_at": time.time()}
    _write_json(slot / "manifest.json", manifest)
    # Older versions go: a long-running process that still reads one should reopen the graph (it may
    # keep reading the files it already has open, but not the others).
    for old in slot.glob("store-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return manifest


def open_store(sources: Sequence[str | os.PathLike], directory: str | os.PathLike, *,
               lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> tuple[Any, StoreInfo]:
    """The read-only pyoxigraph Store of ``sources`` (Turtle, .ttl or .ttl.gz) in ``directory``.

    Builds it on first use or when a source's content changed; else reuses it. Raises GraphError for
    missing/malformed sources, a directory that is not a kgfusion store, a corrupt store or a build
    lock held past ``lock_timeout_s``; KgfusionError naming the ``store`` extra if pyoxigraph is missing.
    """
    _ox()
    paths = [Path(s).expanduser().resolve() for s in sources]
    if not paths:
        raise GraphError("No Turtle files given for the knowledge-graph store.")
    for p in paths:
        if not p.is_file():
            raise GraphError(f"Knowledge graph file not found: {p} (build it with `kgfusion kg build`).")
    directory = Path(directory).expanduser().resolve()
    slot = slot_for(directory, paths)
    manifest = _read_json(slot / "manifest.json")
    if _manifest_matches_stat(manifest, paths, slot):  # fast path: nothing written, works on a read-only DIR
        _check_directory(directory, create=False)
        return _opened(directory, slot, manifest, reused=True)
    _check_directory(directory, create=True)
    try:
        slot.mkdir(exist_ok=True)
    except OSError as exc:
        raise GraphError(f"Cannot create {slot}: {exc.strerror or exc}.") from exc
    with _locked(slot, lock_timeout_s):
        manifest = _read_json(slot / "manifest.json")  # another process may have built it meanwhile
        if _manifest_matches_stat(manifest, paths, slot):
            return _opened(directory, slot, manifest, reused=True)
        entries = fingerprint(paths)
        digest = _digest(entries)
        if (isinstance(manifest, dict) and manifest.get("version") == FORMAT_VERSION
                and manifest.get("store") == f"store-{digest[:16]}" and (slot / manifest["store"]).is_dir()):
            # Same bytes, new mtime (a touch, a fresh checkout): record the new stat and reuse.
            manifest = {**manifest, "sources": entries}
            _write_json(slot / "manifest.json", manifest)
            return _opened(directory, slot, manifest, reused=True)
        manifest = _build(slot, paths, entries, digest)
        return _opened(directory, slot, manifest, reused=False)


def _opened(directory: Path, slot: Path, manifest: dict[str, Any], reused: bool) -> tuple[Any, StoreInfo]:
    name = str(manifest.get("store", ""))
    if not name.startswith("store-") or "/" in name:
        raise GraphError(f"{slot / 'manifest.json'} is corrupt; delete {slot} to rebuild it from the Turtle.")
    store_path = slot / name
    store = _open_read_only(store_path)
    info = StoreInfo(directory=directory, slot=slot, store_path=store_path, fingerprint=name.removeprefix("store-"),
                     triples=int(manifest.get("triples", -1)), reused=reused,
                     build_seconds=float(manifest.get("build_seconds", 0.0)))
    return store, info


# ---------------------------------------------------------------- rdflib view


def from_ox(term: Any) -> Node:
    """An Oxigraph term as the rdflib term the Turtle parser makes (plain literals carry no xsd:string)."""
    ox = _ox()
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        dt = term.datatype.value
        return Literal(term.value) if dt in (str(XSD.string), _RDF_LANG_STRING) else Literal(term.value,
                                                                                            datatype=URIRef(dt))
    raise GraphError(f"Unsupported RDF term from the Oxigraph store: {term!r}")


def to_ox(term: Node | None) -> Any:
    """An rdflib term (or None, a wildcard) as an Oxigraph term."""
    ox = _ox()
    if term is None:
        return None
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, Literal):
        if term.language:
            return ox.Literal(str(term), language=term.language)
        return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)) if term.datatype else None)
    raise GraphError(f"Cannot use {term!r} in an Oxigraph pattern.")


class ReadOnlyOxigraphStore(Store):
    """A read-only rdflib Store over the default graph of a pyoxigraph Store.

    Pattern matching goes to Oxigraph's indexes; ``add``/``remove`` raise GraphError. The triple count
    is read once (the store never changes once opened).
    """

    context_aware = False
    formula_aware = False
    transaction_aware = False
    graph_aware = False

    def __init__(self, store: Any) -> None:
        super().__init__()
        self._ox_store = store
        self._len: int | None = None
        self._ns: dict[str, URIRef] = {}

    def triples(self, triple_pattern: Any, context: Any = None) -> Iterator[Any]:
        s, p, o = triple_pattern
        if isinstance(s, Literal) or (p is not None and not isinstance(p, URIRef)):
            return  # no triple has a literal subject or a non-IRI predicate (and Oxigraph refuses the pattern)
        default = _ox().DefaultGraph()
        for q in self._ox_store.quads_for_pattern(to_ox(s), to_ox(p), to_ox(o), default):
            yield (from_ox(q.subject), from_ox(q.predicate), from_ox(q.object)), iter((None,))

    def __len__(self, context: Any = None) -> int:
        if self._len is None:
            self._len = int(len(self._ox_store))
        return self._len

    def contexts(self, triple: Any = None) -> Iterator[Any]:
        return iter(())

    def add(self, triple: Any, context: Any, quoted: bool = False) -> None:
        raise GraphError("This knowledge graph is a read-only Oxigraph store; edit the Turtle file instead "
                         "(the store is rebuilt from it on the next open).")

    def addN(self, quads: Any) -> None:  # noqa: N802 (rdflib's name)
        self.add(None, None)

    def remove(self, triple: Any, context: Any = None) -> None:
        self.add(None, None)

    def bind(self, prefix: str, namespace: Any, override: bool = True) -> None:
        if override or prefix not in self._ns:
            self._ns[prefix] = URIRef(namespace)

    def namespace(self, prefix: str) -> URIRef | None:
        return self._ns.get(prefix)

    def prefix(self, namespace: Any) -> str | None:
        return next((p for p, ns in self._ns.items() if ns == URIRef(namespace)), None)

    def namespaces(self) -> Iterator[tuple[str, URIRef]]:
        yield from self._ns.items()


# ---------------------------------------------------------------- the graph


def _evaluate(store: Any, form: str, sparql: str, cap: int | None) -> tuple[list[dict[str, str]], bool]:
    """Oxigraph's evaluation of a guarded query; rows in the in-memory graph's shape (see sparql.evaluate)."""
    try:
        result = store.query(sparql, prefixes={p: str(ns) for p, ns in ALL_PREFIXES.items()})
        if form == "ASK":
            return [{"ask": "true" if bool(result) else "false"}], False
        if form == "SELECT":
            names = [v.value for v in result.variables]
            rows: list[dict[str, str]] = []
            for solution in result:  # lazy: at most cap + 1 solutions are produced
                if cap is not None and len(rows) >= cap:
                    return rows, True
                rows.append({n: solution[i].value for i, n in enumerate(names) if solution[i] is not None})
            return rows, False
        triples = sorted({(from_ox(t.subject), from_ox(t.predicate), from_ox(t.object)) for t in result})
    except SyntaxError as exc:  # text rdflib's parser accepted but Oxigraph's does not
        raise SparqlError(f"Malformed SPARQL (Oxigraph): {str(exc).splitlines()[0]}") from exc
    except SparqlError:
        raise
    except Exception as exc:
        raise SparqlError(f"SPARQL evaluation failed: {exc}") from exc
    more = cap is not None and len(triples) > cap
    return [{"subject": str(s), "predicate": str(p), "object": str(o)} for s, p, o in triples[:cap]], more


class OxigraphKnowledgeGraph(KnowledgeGraph):
    """A KnowledgeGraph read from an on-disk Oxigraph store (read-only); see ``open_graph``.

    ``store`` is the pyoxigraph Store, ``store_info`` says where it lives and whether it was reused.
    """

    def __init__(self, store: Any, info: StoreInfo) -> None:
        super().__init__(Graph(store=ReadOnlyOxigraphStore(store), identifier=DATASET_DEFAULT_GRAPH_ID))
        self.store = store
        self.store_info = info

    def query(
        self,
        sparql: str,
        init_bindings: Mapping[str, Node | str] | None = None,
        limit: int | None = None,
        *,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        max_rows: int | None = DEFAULT_MAX_ROWS,
    ) -> QueryRows:
        """KnowledgeGraph.query, evaluated by Oxigraph: the same guard, limits and row shapes.

        Rows of a query without ORDER BY may come in another order than rdflib's. With
        ``init_bindings`` the query runs on rdflib's engine over this store instead: Oxigraph only
        substitutes projected variables, rdflib binds any variable before evaluation.
        """
        if init_bindings:
            return super().query(sparql, init_bindings, limit, timeout_s=timeout_s, max_rows=max_rows)
        if limit is not None and limit < 1:
            raise SparqlError(f"Row limit must be >= 1, got {limit}.")
        check_limits(timeout_s, max_rows)
        form, _ = parse_read_only(sparql, ALL_PREFIXES)  # the read-only guard runs first, with rdflib's parser
        caps = [c for c in (limit, max_rows) if c is not None]
        cap = min(caps) if caps else None
        # The forked worker inherits the open read-only store; killing it stops Oxigraph too.
        rows, more = run_bounded(lambda store: _evaluate(store, form, sparql, cap),
                                 self.store, timeout_s)  # type: ignore[arg-type]
        capped_by_max_rows = max_rows is not None and (limit is None or max_rows < limit)
        return QueryRows(rows, truncated=more and capped_by_max_rows, max_rows=max_rows)

    def _ask(self, sparql: str) -> Any:
        """Our own fixed queries, straight to Oxigraph (no guard or worker: they are not user input)."""
        return self.store.query(sparql, prefixes={p: str(ns) for p, ns in ALL_PREFIXES.items()})

    def lookup(self, name: str) -> list[URIRef]:
        """KnowledgeGraph.lookup with the label scan done by Oxigraph (only IRI subjects, two columns)."""
        wanted = name.strip().casefold()
        result = self._ask("SELECT ?s ?o WHERE { VALUES ?p { rdfs:label skos:altLabel } ?s ?p ?o FILTER(isIRI(?s)) }")
        return sorted({URIRef(s.value) for s, o in result if o.value.casefold() == wanted})

    def entity_records(self, types: Iterable[str | Node] | None = None) -> list[EntityRecord]:
        """KnowledgeGraph.entity_records from four Oxigraph scans (types, labels, aliases, xrefs)."""
        wanted = None if types is None else {str(self.expand(t)) for t in types}
        typed: dict[str, list[str]] = {}
        for s, t in self._ask("SELECT ?s ?t WHERE { ?s rdf:type ?t FILTER(isIRI(?s) && isIRI(?t)) }"):
            if wanted is None or t.value in wanted:
                typed.setdefault(s.value, []).append(t.value)

        def values(predicate: str) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for s, o in self._ask(f"SELECT ?s ?o WHERE {{ ?s {predicate} ?o FILTER(isIRI(?s)) }}"):
                if s.value in typed:
                    out.setdefault(s.value, []).append(o.value)
            return out

        main, alts, xrefs = values("rdfs:label"), values("skos:altLabel"), values("kgf:xref")
        records = []
        for uri in sorted(typed):
            labels = sorted(main.get(uri, ()))
            names = list(dict.fromkeys(labels + sorted(alts.get(uri, ()))))
            label = labels[0] if labels else _local_name(uri)
            records.append(EntityRecord(uri=uri, label=label, aliases=tuple(n for n in names if n != label),
                                        type=sorted(typed[uri])[0], xrefs=tuple(sorted(xrefs.get(uri, ())))))
        return records

    def stats(self) -> dict[str, object]:
        """KnowledgeGraph.stats, counted by Oxigraph (GROUP BY) instead of a scan in Python."""
        def counts(sparql: str) -> dict[str, int]:
            return {self.curie(from_ox(k)): int(n.value) for k, n in self._ask(sparql)}

        types = counts("SELECT ?t (COUNT(*) AS ?n) WHERE { ?s rdf:type ?t } GROUP BY ?t")
        preds = counts("SELECT ?p (COUNT(*) AS ?n) WHERE { ?s ?p ?o } GROUP BY ?p")
        (entities,) = next(iter(self._ask("SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s rdf:type ?t }")))
        return {"triples": len(self), "entities": int(entities.value),
                "types": dict(sorted(types.items())), "predicates": dict(sorted(preds.items()))}


def open_graph(sources: Sequence[str | os.PathLike] | str | os.PathLike, directory: str | os.PathLike, *,
               lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> OxigraphKnowledgeGraph:
    """An OxigraphKnowledgeGraph of the Turtle file(s) ``sources``, persisted in ``directory``.

    Loads the Turtle once; later calls reuse the store until a file's content changes (see open_store).
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    store, info = open_store(sources, directory, lock_timeout_s=lock_timeout_s)
    return OxigraphKnowledgeGraph(store, info)
