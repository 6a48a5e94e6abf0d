"""KnowledgeGraph: an rdflib Graph with Turtle I/O, read-only SPARQL, entity records and a networkx view."""
from __future__ import annotations

import gzip
import os
import re
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal as TypingLiteral

import networkx as nx
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, XSD
from rdflib.plugins.parsers.notation3 import BadSyntax
from rdflib.term import Node

from kgfusion.core.errors import KgfusionError
from kgfusion.core.textfile import NotTextError, brief, decode
from kgfusion.knowledge.records import EntityRecord
from kgfusion.knowledge.sparql import (
    DEFAULT_MAX_ROWS,
    DEFAULT_TIMEOUT_S,
    QueryRows,
    SparqlError,
    check_limits,
    evaluate,
    parse_read_only,
    run_bounded,
)
from kgfusion.knowledge.vocab import ALL_PREFIXES, KGF, bind_prefixes

Direction = TypingLiteral["out", "in", "both"]
Hop = tuple[str, str, str]
StoreKind = TypingLiteral["memory", "oxigraph"]
STORE_KINDS: tuple[str, ...] = ("memory", "oxigraph")

# A curated non-indication says "not a treatment": no evidence of relatedness, so no networkx edge.
NETWORK_EXCLUDED = frozenset({RDF.type, KGF.nonIndication})
_PREDICATE_NAMES = {str(RDFS.subClassOf): "is a", str(RDF.type): "type"}
# Conservative Turtle/SPARQL local name: no '/', '#', no trailing '.'; %XX escapes allowed.
_LOCAL = re.compile(r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:[A-Za-z0-9_.\-]|%[0-9A-Fa-f]{2})*(?<!\.)")
_TURTLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class GraphError(KgfusionError):
    """A graph file is missing or malformed, or a node/prefix is unknown."""


@dataclass(frozen=True)
class KgStore:
    """Where a loaded graph lives: ``memory`` (rdflib, parsed from the Turtle on every load) or
    ``oxigraph`` (an on-disk Oxigraph store in ``directory``, built once and reused; extra ``store``).

    ``KgStore.parse("oxigraph:/var/kg")`` reads the CLI form ``memory`` | ``oxigraph:DIR``.
    """

    kind: StoreKind = "memory"
    directory: Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in STORE_KINDS:
            raise GraphError(f"Unknown knowledge-graph store {self.kind!r}: use one of {', '.join(STORE_KINDS)}.")
        if self.kind == "oxigraph" and not self.directory:
            raise GraphError("The oxigraph store needs a directory: oxigraph:DIR (e.g. oxigraph:~/.cache/kgfusion/kg).")
        if self.kind == "memory" and self.directory is not None:
            raise GraphError(f"The memory store takes no directory (got {self.directory}); use oxigraph:DIR.")
        if self.directory is not None:
            object.__setattr__(self, "directory", Path(self.directory).expanduser())

    @classmethod
    def parse(cls, text: str | KgStore | None) -> KgStore:
        """``None``/"" or "memory" -> memory; "oxigraph:DIR" -> oxigraph in DIR."""
        if isinstance(text, KgStore):
            return text
        value = (text or "memory").strip()
        kind, sep, directory = value.partition(":")
        if kind not in STORE_KINDS:
            raise GraphError(f"Unknown knowledge-graph store {value!r}: use memory or oxigraph:DIR.")
        return cls(kind, Path(directory) if sep and directory else None)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.kind if self.directory is None else f"{self.kind}:{self.directory}"


class Neighbor(tuple):
    """``(predicate, node)`` pair; ``.direction`` is "out" (uri -> node) or "in" (node -> uri)."""

    direction: str

    def __new__(cls, predicate: URIRef, node: Node, direction: str) -> Neighbor:
        self = super().__new__(cls, (predicate, node))
        self.direction = direction
        return self

    @property
    def predicate(self) -> URIRef:
        return self[0]

    @property
    def node(self) -> Node:
        return self[1]

    def __repr__(self) -> str:
        return f"Neighbor({self[0]!r}, {self[1]!r}, direction={self.direction!r})"


def write_turtle(path: str | os.PathLike, text: str) -> Path:
    """Write Turtle text atomically (temp file + rename); gzip with a fixed header when ``path`` ends in .gz."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _escape(text: str) -> str:
    return "".join(_TURTLE_ESCAPES.get(ch, ch) for ch in text)


def _local_name(uri: str) -> str:
    return re.split(r"[/#]", uri.rstrip("/#"))[-1]


def _humanize(uri: str) -> str:
    """``https://kgfusion.dev/ns#inSector`` -> "in sector"."""
    if uri in _PREDICATE_NAMES:
        return _PREDICATE_NAMES[uri]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", _local_name(uri)).lower()


class KnowledgeGraph:
    """An RDF graph with the project prefixes bound.

    ``graph`` is the underlying rdflib Graph (mutate it freely; the networkx view is rebuilt when the
    triple count changes). ``build_report`` holds a builder's row counts (empty for loaded graphs).
    """

    def __init__(self, graph: Graph | None = None) -> None:
        self.graph = graph if graph is not None else Graph()
        bind_prefixes(self.graph)
        self.build_report: dict[str, int] = {}
        self._nx: nx.MultiDiGraph | None = None
        self._nx_undirected: nx.Graph | None = None
        self._nx_size = -1
        # Longest namespace first, so company:AAPL wins over kgfid:company/AAPL.
        self._namespaces = sorted(((p, str(ns)) for p, ns in ALL_PREFIXES.items()), key=lambda x: -len(x[1]))

    def __len__(self) -> int:
        return len(self.graph)

    # ---------------------------------------------------------------- I/O
    @classmethod
    def load(cls, path: str | os.PathLike, store: KgStore | str | None = None) -> KnowledgeGraph:
        """Read a Turtle file (``.ttl`` or gzip-compressed ``.ttl.gz``).

        ``store`` (a KgStore or its text form, default memory) picks the backend: ``oxigraph:DIR`` loads
        the file once into an on-disk store in DIR and reuses it while the file is unchanged
        (knowledge.oxigraph_store; the result is a read-only OxigraphKnowledgeGraph).
        """
        choice = KgStore.parse(store)
        if choice.kind == "oxigraph":
            from kgfusion.knowledge.oxigraph_store import open_graph  # lazy: pyoxigraph is an extra

            return open_graph(path, choice.directory)  # type: ignore[arg-type]
        path = Path(path)
        if not path.is_file():
            raise GraphError(f"Knowledge graph file not found: {path} (build it with `kgfusion kg build`).")
        try:
            raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        except (OSError, EOFError, zlib.error) as exc:
            raise GraphError(f"{path}: cannot read the graph file ({exc}); rebuild it or re-compress it.") from exc
        try:  # binary data or a byte that is not UTF-8: say so with the offset (core.textfile), never echo it
            text = decode(raw, path, "utf-8", hint="convert it to UTF-8 or rebuild it (kgfusion kg build)")
        except NotTextError as exc:
            raise GraphError(str(exc)) from exc
        graph = Graph()
        try:
            graph.parse(data=text, format="turtle", publicID=path.resolve().as_uri())
        except BadSyntax as exc:
            why = getattr(exc, "_why", str(exc))
            # rdflib's own line counter drifts near the end of input; count newlines up to the error offset.
            source, offset = getattr(exc, "_str", b""), getattr(exc, "_i", None)
            line = source[:offset].count(b"\n") + 1 if offset is not None else getattr(exc, "lines", -1) + 1
            raise GraphError(f"{path}: malformed Turtle at line {line}: {why}. Fix the file or rebuild it.") from exc
        except Exception as exc:  # rdflib raises several unrelated types for bad input
            raise GraphError(f"{path}: malformed Turtle: {brief(exc, 200)[1:-1]}. Fix the file or rebuild it.") \
                from exc
        return cls(graph)

    def save(self, path: str | os.PathLike) -> Path:
        """Write deterministic Turtle (sorted subjects, predicates, objects) atomically; ``.gz`` compresses."""
        return write_turtle(path, self.to_turtle())

    def to_turtle(self) -> str:
        """The graph as Turtle text; the same triples always give the same text."""
        lines = [f"@prefix {p}: <{ns}> ." for p, ns in sorted(ALL_PREFIXES.items())]
        by_subject: dict[str, dict[str, list[str]]] = {}
        rendered: dict[Node, str] = {RDF.type: "a"}  # subjects, predicates and types repeat a lot

        def term(t: Node) -> str:
            if t not in rendered:
                rendered[t] = self._turtle_term(t)
            return rendered[t]

        for s, p, o in self.graph:
            by_subject.setdefault(term(s), {}).setdefault(term(p), []).append(term(o))
        for subject in sorted(by_subject):
            preds = by_subject[subject]
            order = sorted(preds, key=lambda x: (x != "a", x))
            body = " ;\n    ".join(f"{p} {', '.join(sorted(set(preds[p])))}" for p in order)
            lines.append(f"\n{subject} {body} .")
        return "\n".join(lines) + "\n"

    def _turtle_term(self, term: Node) -> str:
        if isinstance(term, URIRef):
            text = str(term)
            for prefix, ns in self._namespaces:
                if text.startswith(ns) and _LOCAL.fullmatch(text[len(ns):]):
                    return f"{prefix}:{text[len(ns):]}"
            return "<" + "".join(f"%{ord(c):02X}" if c in '<>"{}|^`\\ ' else c for c in text) + ">"
        if isinstance(term, Literal):
            lexical = f'"{_escape(str(term))}"'
            if term.language:
                return f"{lexical}@{term.language}"
            if term.datatype is not None and term.datatype != XSD.string:
                if term.datatype == XSD.integer and re.fullmatch(r"[+-]?\d+", str(term)):
                    return str(term)
                return f"{lexical}^^{self._turtle_term(term.datatype)}"
            return lexical
        if isinstance(term, BNode):
            return f"_:{term}"
        raise GraphError(f"Cannot write {term!r} as Turtle.")

    # ---------------------------------------------------------------- names
    def expand(self, name: str | Node) -> URIRef:
        """A full URI, ``<URI>`` or a prefixed name (``company:AAPL``, ``kgfid:company/AAPL``) -> URIRef."""
        if isinstance(name, URIRef):
            return name
        text = str(name).strip()
        if text.startswith("<") and text.endswith(">"):
            return URIRef(text[1:-1])
        if re.match(r"^(https?|urn|file):", text):
            return URIRef(text)
        prefix, sep, local = text.partition(":")
        if sep and prefix in ALL_PREFIXES:
            return URIRef(str(ALL_PREFIXES[prefix]) + local)
        raise GraphError(
            f"Cannot read {text!r} as a URI: use a full URI or a prefixed name with one of the prefixes "
            f"{', '.join(sorted(ALL_PREFIXES))}."
        )

    def curie(self, term: Node | str) -> str:
        """Short display form of a URI (``company:AAPL``); literals and unknown URIs as text."""
        text = str(term)
        if isinstance(term, Literal):
            return text
        for prefix, ns in self._namespaces:
            if text.startswith(ns) and len(text) > len(ns) and not re.search(r"\s", text[len(ns):]):
                return f"{prefix}:{text[len(ns):]}"
        return text

    def lookup(self, name: str) -> list[URIRef]:
        """Entities whose rdfs:label or skos:altLabel equals ``name`` (case-insensitive), sorted."""
        wanted = name.strip().casefold()
        hits = {
            s
            for pred in (RDFS.label, SKOS.altLabel)
            for s, o in self.graph.subject_objects(pred)
            if isinstance(s, URIRef) and str(o).casefold() == wanted
        }
        return sorted(hits)

    # ---------------------------------------------------------------- SPARQL
    def query(
        self,
        sparql: str,
        init_bindings: Mapping[str, Node | str] | None = None,
        limit: int | None = None,
        *,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        max_rows: int | None = DEFAULT_MAX_ROWS,
    ) -> QueryRows:
        """Run a read-only query; rows map variable names to strings (unbound variables are left out).

        SELECT -> one dict per solution; ASK -> ``[{"ask": "true"|"false"}]``; CONSTRUCT/DESCRIBE ->
        sorted ``{"subject", "predicate", "object"}`` rows. ``limit`` (>= 1) caps the rows returned.
        Project prefixes (vocab.ALL_PREFIXES) are pre-bound.

        Evaluation is bounded: it is stopped after ``timeout_s`` seconds (> 0; None = no limit, runs
        in-process) with QueryTimeout, and at most ``max_rows`` rows (>= 1; None = no cap) are
        materialised; when the cap cuts the result the returned QueryRows has ``truncated`` set and a
        ``note`` for the user. Raises SparqlError (QueryTimeout is one) before evaluation for updates,
        SERVICE, FROM and malformed text.
        """
        if limit is not None and limit < 1:
            raise SparqlError(f"Row limit must be >= 1, got {limit}.")
        check_limits(timeout_s, max_rows)
        form, prepared = parse_read_only(sparql, ALL_PREFIXES)  # the read-only guard runs first
        bindings = {str(k).lstrip("?$"): self._binding(v) for k, v in (init_bindings or {}).items()}
        caps = [c for c in (limit, max_rows) if c is not None]
        cap = min(caps) if caps else None
        rows, more = run_bounded(lambda graph: evaluate(graph, form, prepared, bindings, cap), self.graph, timeout_s)
        capped_by_max_rows = max_rows is not None and (limit is None or max_rows < limit)
        return QueryRows(rows, truncated=more and capped_by_max_rows, max_rows=max_rows)

    def _binding(self, value: Node | str) -> Node:
        if isinstance(value, Node):
            return value
        text = str(value)
        prefix, sep, _ = text.partition(":")
        if re.match(r"^(https?|urn|file):", text) or (sep and prefix in ALL_PREFIXES):
            return self.expand(text)
        return Literal(text)

    # ---------------------------------------------------------------- entities
    def entities(self, type_uri: str | Node | None = None) -> list[URIRef]:
        """Typed URI subjects (of ``type_uri`` if given), sorted."""
        obj = None if type_uri is None else self.expand(type_uri)
        return sorted({s for s in self.graph.subjects(RDF.type, obj) if isinstance(s, URIRef)})

    def labels(self, uri: str | Node) -> list[str]:
        """rdfs:label(s) first, then skos:altLabels; sorted within each group, no duplicates."""
        node = self.expand(uri)
        main = sorted(str(o) for o in self.graph.objects(node, RDFS.label))
        alts = sorted(str(o) for o in self.graph.objects(node, SKOS.altLabel))
        return list(dict.fromkeys(main + alts))

    def label(self, uri: str | Node) -> str:
        """The preferred label, or the URI's local name when it has none."""
        node = self.expand(uri)
        labels = sorted(str(o) for o in self.graph.objects(node, RDFS.label))
        return labels[0] if labels else _local_name(str(node))

    def types(self, uri: str | Node) -> list[URIRef]:
        """rdf:type URIs of ``uri``, sorted."""
        return sorted(o for o in self.graph.objects(self.expand(uri), RDF.type) if isinstance(o, URIRef))

    def neighbors(
        self, uri: str | Node, predicate: str | Node | None = None, direction: Direction = "both"
    ) -> list[Neighbor]:
        """``(predicate, node)`` pairs around ``uri``; each has ``.direction`` ("out" then "in"), sorted.

        Outgoing pairs include literals (labels, ids); ``predicate`` restricts to one predicate.
        """
        if direction not in ("out", "in", "both"):
            raise GraphError(f"direction must be 'out', 'in' or 'both', got {direction!r}.")
        node = self.expand(uri)
        pred = None if predicate is None else self.expand(predicate)
        out: list[Neighbor] = []
        if direction in ("out", "both"):
            pairs = sorted(self.graph.predicate_objects(node) if pred is None else
                           ((pred, o) for o in self.graph.objects(node, pred)))
            out += [Neighbor(p, o, "out") for p, o in pairs]
        if direction in ("in", "both"):
            pairs = sorted((p, s) for s, p in self.graph.subject_predicates(node) if pred is None or p == pred)
            out += [Neighbor(p, s, "in") for p, s in pairs]
        return out

    def triples_about(self, uri: str | Node, limit: int | None = 100) -> list[tuple[Node, Node, Node]]:
        """Triples with ``uri`` as subject (sorted), then as object (sorted); at most ``limit``."""
        node = self.expand(uri)
        triples = sorted(self.graph.triples((node, None, None))) + sorted(self.graph.triples((None, None, node)))
        return triples if limit is None else triples[:limit]

    def entity_records(self, types: Iterable[str | Node] | None = None) -> list[EntityRecord]:
        """One EntityRecord per typed URI (restricted to ``types`` if given), sorted by URI.

        label = rdfs:label (or the local name), aliases = skos:altLabels, type = the first matching
        rdf:type, xrefs = kgf:xref literals (sorted).
        """
        wanted = None if types is None else {self.expand(t) for t in types}
        typed: dict[URIRef, list[URIRef]] = {}
        for s, o in self.graph.subject_objects(RDF.type):
            if isinstance(s, URIRef) and isinstance(o, URIRef) and (wanted is None or o in wanted):
                typed.setdefault(s, []).append(o)
        records = []
        for uri in sorted(typed):
            names = self.labels(uri)
            main = sorted(str(o) for o in self.graph.objects(uri, RDFS.label))
            label = main[0] if main else _local_name(str(uri))
            records.append(
                EntityRecord(
                    uri=str(uri),
                    label=label,
                    aliases=tuple(n for n in names if n != label),
                    type=str(sorted(typed[uri])[0]),
                    xrefs=tuple(sorted(str(x) for x in self.graph.objects(uri, KGF.xref))),
                )
            )
        return records

    def stats(self) -> dict[str, object]:
        """Counts: triples, typed entities, entities per type and triples per predicate (CURIE keys)."""
        per_type = Counter(self.graph.objects(None, RDF.type))
        per_pred = Counter(p for _, p, _ in self.graph)
        return {
            "triples": len(self.graph),
            "entities": len(set(self.graph.subjects(RDF.type, None))),
            "types": dict(sorted((self.curie(t), n) for t, n in per_type.items())),
            "predicates": dict(sorted((self.curie(p), n) for p, n in per_pred.items())),
        }

    # ---------------------------------------------------------------- networkx view
    def to_networkx(self) -> nx.MultiDiGraph:
        """Nodes: URIs (str) with ``label`` and ``type`` attrs; edges: URI->URI triples keyed by predicate.

        Literals, rdf:type and kgf:nonIndication are left out. Cached until the triple count changes.
        """
        if self._nx is not None and self._nx_size == len(self.graph):
            return self._nx
        net = nx.MultiDiGraph()
        first_type: dict[str, str] = {}
        for s, o in sorted((str(s), str(o)) for s, o in self.graph.subject_objects(RDF.type) if isinstance(s, URIRef)):
            first_type.setdefault(s, o)
        first_label: dict[str, str] = {}  # one pass instead of a lookup per node
        for s, o in sorted((str(s), str(o)) for s, o in self.graph.subject_objects(RDFS.label)):
            first_label.setdefault(s, o)
        for uri in first_type:
            net.add_node(uri, label=first_label.get(uri) or _local_name(uri), type=first_type[uri])
        edges = sorted(
            (str(s), str(p), str(o))
            for s, p, o in self.graph
            if isinstance(s, URIRef) and isinstance(o, URIRef) and p not in NETWORK_EXCLUDED
        )
        for s, p, o in edges:  # sorted so networkx tie-breaking does not depend on rdflib's hash order
            for n in (s, o):
                if n not in net:
                    net.add_node(n, label=first_label.get(n) or _local_name(n), type=first_type.get(n, ""))
            net.add_edge(s, o, key=p, predicate=p)
        self._nx, self._nx_undirected, self._nx_size = net, nx.Graph(net), len(self.graph)
        return net

    def _undirected(self) -> nx.Graph:
        self.to_networkx()
        if self._nx_undirected is None:  # to_networkx always sets it; keeps type checkers honest
            raise GraphError("The networkx view could not be built.")
        return self._nx_undirected

    def _node(self, uri: str | Node) -> str:
        node = str(self.expand(uri))
        if node not in self.to_networkx():
            raise GraphError(f"{self.curie(node)} is not linked to anything in this graph (no URI-to-URI edges).")
        return node

    def shortest_path(self, a: str | Node, b: str | Node, undirected: bool = True) -> list[Hop]:
        """Hops from ``a`` to ``b`` as real ``(subject, predicate, object)`` triples of URI strings.

        With ``undirected`` a hop may run against its edge (object -> subject along the walk); the
        path is empty when a == b or no path exists. Prefers forward edges, then the smallest predicate.
        """
        src, dst = self._node(a), self._node(b)
        net = self.to_networkx()
        try:
            nodes = nx.shortest_path(self._undirected() if undirected else net, src, dst)
        except nx.NetworkXNoPath:
            return []
        hops: list[Hop] = []
        for u, v in pairwise(nodes):
            if net.has_edge(u, v):
                hops.append((u, min(net[u][v]), v))
            else:
                hops.append((v, min(net[v][u]), u))
        return hops

    def k_hop(self, uri: str | Node, k: int) -> set[str]:
        """URIs within ``k`` (>= 0) undirected hops of ``uri``, excluding ``uri`` itself."""
        if k < 0:
            raise GraphError(f"k must be >= 0, got {k}.")
        node = self._node(uri)
        reached = nx.single_source_shortest_path_length(self._undirected(), node, cutoff=k)
        return set(reached) - {node}

    def personalized_pagerank(
        self,
        seeds: Mapping[str, float] | Iterable[str],
        alpha: float = 0.85,
        top_k: int | None = None,
        types: Iterable[str | Node] | None = None,
        exclude_seeds: bool = False,
    ) -> list[tuple[str, float]]:
        """PageRank on the undirected view restarting at ``seeds`` (weights > 0; unknown seeds ignored).

        Returns ``(uri, score)`` sorted by score desc then URI; scores sum to 1 over all nodes.
        ``types`` keeps nodes of those types; ``top_k`` truncates. Raises GraphError if no seed is known.
        """
        if not 0.0 < alpha < 1.0:
            raise GraphError(f"alpha must be in (0, 1), got {alpha}.")
        weights = dict(seeds.items()) if isinstance(seeds, Mapping) else dict.fromkeys(seeds, 1.0)
        und = self._undirected()
        personalization = {}
        for seed, weight in weights.items():
            key = str(self.expand(seed))
            if key in und and weight > 0:
                personalization[key] = personalization.get(key, 0.0) + float(weight)
        if not personalization:
            raise GraphError(f"None of the seeds {sorted(map(str, weights))[:5]} is linked in this graph.")
        # Starting from the seeds keeps nodes the walk cannot reach at exactly 0.
        scores = nx.pagerank(und, alpha=alpha, personalization=personalization, nstart=personalization)
        keep_types = None if types is None else {str(self.expand(t)) for t in types}
        net = self.to_networkx()
        ranked = sorted(
            (
                (n, float(s))
                for n, s in scores.items()
                if (keep_types is None or net.nodes[n].get("type") in keep_types)
                and not (exclude_seeds and n in personalization)
            ),
            key=lambda x: (-x[1], x[0]),
        )
        return ranked if top_k is None else ranked[:top_k]

    def predicate_label(self, predicate: str | Node) -> str:
        """rdfs:label of a predicate if the graph has one, else its local name in words ("in sector")."""
        node = self.expand(predicate)
        labels = sorted(str(o) for o in self.graph.objects(node, RDFS.label))
        return labels[0] if labels else _humanize(str(node))

    def explain_path(self, path: Iterable[Hop], start: str | Node | None = None) -> str:
        """"Apple Inc. —[in sector]→ Information Technology ←[in sector]— Microsoft" for a list of hops.

        ``start`` is the walk's first node (default: inferred from the first two hops).
        """
        hops = [tuple(map(str, hop)) for hop in path]
        if not hops:
            return ""
        if start is not None:
            start = str(self.expand(start))
        elif len(hops) == 1:
            start = hops[0][0]
        else:
            first, second = hops[0], hops[1]
            start = first[2] if first[0] in (second[0], second[2]) else first[0]
        parts, current = [self.label(start)], start
        for s, p, o in hops:
            name = self.predicate_label(p)
            if s == current:
                parts.append(f"—[{name}]→ {self.label(o)}")
                current = o
            elif o == current:
                parts.append(f"←[{name}]— {self.label(s)}")
                current = s
            else:
                raise GraphError(f"Hops do not form a path: {self.curie(current)} is not in ({s}, {p}, {o}).")
        return " ".join(parts)
