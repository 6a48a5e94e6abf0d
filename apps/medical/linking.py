"""Link clinical mentions to the medical KG and attach codes and facts.

- ``MedicalKB``: the parts of data/kg/medical.ttl the app needs at run time — disease / symptom / drug
  records (labels, aliases, xrefs) and the drug->disease ``kgf:treats`` / ``kgf:palliates`` edges —
  cached as JSON beside the entity index (keyed by the graph's SHA-256), so a run does not re-parse the
  Turtle file (~15 s).
- ``ConceptLinker``: the knowledge.linker.Linker over a FAISS EntityIndex (MiniLM, cached with
  knowledge.index_cache) or over a character-n-gram hashing encoder (no model, builds in a second);
  results are restricted to the KG types of the mention's label, cached per (text, label), and turned
  into ``Concept`` objects with DOID / MeSH / OMIM / ICD-10-CM / DrugBank codes and KG facts.
- corpus aliases: gold mentions of the NCBI-disease and BC5CDR *training* files whose MeSH / OMIM ids
  map to exactly one DO concept through its xrefs become extra names of that concept (exact and
  normalised matching only, no re-embedding). Devel files are never used.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgfusion.apps.medical.config import LABEL_TYPES
from kgfusion.core.errors import DataError
from kgfusion.core.fileio import atomic_write_text, sha256_file
from kgfusion.knowledge.fusion import Evidence
from kgfusion.knowledge.hashing import HashingEncoder  # noqa: F401  (re-exported: the medical index falls back to it)
from kgfusion.knowledge.records import EntityRecord
from kgfusion.knowledge.textnorm import name_keys, normalize_xref

if TYPE_CHECKING:
    from kgfusion.knowledge.graph import KgStore

KB_VERSION = 1
OBO = "http://purl.obolibrary.org/obo/"
DRUG_NS = "https://kgfusion.dev/id/drug/"
KGF = "https://kgfusion.dev/ns#"
FACT_PREDICATES = {f"{KGF}treats": "treats", f"{KGF}palliates": "palliates"}
ROOT_CONCEPTS = frozenset({OBO + "DOID_4"})  # "disease": too generic to count as a concept
CODE_SYSTEMS = ("DOID", "SYMP", "ICD10CM", "MESH", "OMIM", "DRUGBANK")


def curie(uri: str) -> str:
    """obo:DOID_784 -> DOID:784; drug:DB00945 -> DRUGBANK:DB00945; other URIs unchanged."""
    if uri.startswith(OBO):
        return uri[len(OBO):].replace("_", ":", 1)
    if uri.startswith(DRUG_NS):
        return "DRUGBANK:" + uri[len(DRUG_NS):]
    return uri


@dataclass(frozen=True)
class Fact:
    """A KG edge drug -[predicate]-> disease, with labels."""

    predicate: str
    drug: str
    drug_label: str
    disease: str
    disease_label: str

    def text(self) -> str:
        return f"{self.drug_label} {self.predicate} {self.disease_label}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Concept:
    """The KG concept of a mention: URI, CURIE, label, type, link score (0..1) and match kind, codes
    per system (DOID, SYMP, ICD10CM, MESH, OMIM, DRUGBANK), KG facts and the runner-up candidates."""

    uri: str
    curie: str
    label: str
    kg_type: str
    score: float
    match: str
    codes: dict[str, list[str]] = field(default_factory=dict)
    facts: list[Fact] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: bool = False
    linked_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["facts"] = [f.to_dict() for f in self.facts]
        return out


# ------------------------------------------------------------------------------------------ KB


@dataclass
class MedicalKB:
    """Records (disease, symptom, drug) and drug->disease fact edges of the medical graph."""

    records: list[EntityRecord]
    edges: list[tuple[str, str, str]]  # (drug uri, predicate short name, disease uri)
    graph_sha256: str = ""

    def __post_init__(self) -> None:
        self.by_uri = {r.uri: r for r in self.records}
        self._out: dict[str, list[tuple[str, str]]] = {}
        self._in: dict[str, list[tuple[str, str]]] = {}
        for s, p, o in self.edges:
            self._out.setdefault(s, []).append((p, o))
            self._in.setdefault(o, []).append((p, s))
        self._xref: dict[str, list[str]] = {}
        for r in self.records:
            for x in r.xrefs:
                self._xref.setdefault(x, []).append(r.uri)

    @classmethod
    def from_graph(cls, graph, graph_sha256: str = "") -> MedicalKB:
        """From a KnowledgeGraph: every typed disease/symptom/drug record and the treats/palliates edges."""
        types = [t for ts in LABEL_TYPES.values() for t in ts]
        records = graph.entity_records(types=types)
        from rdflib import URIRef

        edges = []
        for pred, short in FACT_PREDICATES.items():
            for s, o in graph.graph.subject_objects(URIRef(pred)):
                edges.append((str(s), short, str(o)))
        return cls(records, sorted(edges), graph_sha256)

    def to_json(self) -> str:
        return json.dumps({"version": KB_VERSION, "graph_sha256": self.graph_sha256,
                           "records": [asdict(r) for r in self.records], "edges": self.edges}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> MedicalKB:
        data = json.loads(text)
        if data.get("version") != KB_VERSION:
            raise DataError(f"KB cache version {data.get('version')} is not {KB_VERSION}")
        recs = [EntityRecord(r["uri"], r["label"], tuple(r["aliases"]), r["type"], tuple(r["xrefs"]))
                for r in data["records"]]
        return cls(recs, [tuple(e) for e in data["edges"]], data.get("graph_sha256", ""))  # type: ignore[misc]

    @classmethod
    def load(cls, graph_path: str | Path, cache_dir: str | Path | None = None,
             kg_store: KgStore | str | None = None) -> MedicalKB:
        """The cached KB when its graph checksum matches, else read the graph (from ``kg_store``: memory |
        oxigraph:DIR; None: the command's --kg-store) and write the cache."""
        graph_path = Path(graph_path)
        if not graph_path.is_file():
            raise DataError(f"{graph_path}: medical graph not found; build it with `kgfusion kg build medical`")
        sha = sha256_file(graph_path)
        cache = Path(cache_dir) / "kb.json" if cache_dir else None
        if cache is not None and cache.is_file():
            try:
                kb = cls.from_json(cache.read_text(encoding="utf-8"))
                if kb.graph_sha256 == sha:
                    return kb
            except (DataError, json.JSONDecodeError, KeyError, TypeError):
                pass  # stale or corrupt cache: rebuild below
        from kgfusion.apps.common import load_kg

        kb = cls.from_graph(load_kg(graph_path, kg_store), sha)
        if cache is not None:
            atomic_write_text(cache, kb.to_json())
        return kb

    # -- lookups ----------------------------------------------------------------------------------
    def label(self, uri: str) -> str:
        rec = self.by_uri.get(uri)
        return rec.label if rec else uri

    def uris_for_xref(self, xref: str) -> list[str]:
        return self._xref.get(xref, [])

    def codes(self, uri: str) -> dict[str, list[str]]:
        """Codes per system from the xrefs (DrugBank ids also from the drug URI)."""
        rec = self.by_uri.get(uri)
        out: dict[str, list[str]] = {}
        for x in rec.xrefs if rec else ():
            system, _, code = x.partition(":")
            if system in CODE_SYSTEMS and code:
                out.setdefault(system, []).append(x if system in ("DOID", "SYMP") else code)  # OBO codes read "DOID:n"
        if uri.startswith(DRUG_NS) and "DRUGBANK" not in out:
            out["DRUGBANK"] = [uri[len(DRUG_NS):]]
        if uri.startswith(OBO + "DOID_") and "DOID" not in out:
            out["DOID"] = ["DOID:" + uri.rsplit("_", 1)[1]]
        return {k: sorted(set(v)) for k, v in sorted(out.items())}

    def facts(self, uri: str, limit: int = 8) -> list[Fact]:
        """Drugs that treat / palliate a disease, or diseases a drug treats / palliates (treats first)."""
        if uri in self._out:
            pairs = [(p, uri, o) for p, o in self._out[uri]]
        else:
            pairs = [(p, s, uri) for p, s in self._in.get(uri, [])]
        pairs.sort(key=lambda t: (t[0] != "treats", self.label(t[1]).lower(), self.label(t[2]).lower()))
        return [Fact(p, d, self.label(d), x, self.label(x)) for p, d, x in pairs[:limit]]


class NameTable:
    """Exact (case-insensitive) and normalised name -> URIs over KB records, for cheap look-ups."""

    def __init__(self, records: Iterable[EntityRecord]) -> None:
        self._exact: dict[str, set[str]] = {}
        self._norm: dict[str, set[str]] = {}
        for r in records:
            self.add(r.uri, r.names())

    def add(self, uri: str, names: Iterable[str]) -> None:
        for n in names:
            self._exact.setdefault(n.lower(), set()).add(uri)
            keys = name_keys(n)
            if keys:
                self._norm.setdefault(keys[0], set()).add(uri)

    def lookup(self, name: str) -> list[str]:
        """URIs whose name equals ``name`` (case-insensitive), else whose normalised key equals its key."""
        hit = self._exact.get(name.lower())
        if hit:
            return sorted(hit)
        keys = name_keys(name)
        return sorted(self._norm.get(keys[0], ())) if keys else []


# ---------------------------------------------------------------------------- encoders / index


def corpus_aliases(kb: MedicalKB, datasets_dir: str | Path) -> dict[str, list[str]]:
    """uri -> gold mention texts from the NCBI-disease and BC5CDR *training* files (see module doc)."""
    d = Path(datasets_dir)
    files = [d / "ncbi_disease" / "NCBItrainset_corpus.txt", d / "bc5cdr" / "CDR_TrainingSet.PubTator.txt"]
    out: dict[str, set[str]] = {}
    for path in files:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) < 6 or not parts[0].isdigit() or not parts[1].isdigit():
                continue
            mention, ids = parts[3].strip(), parts[5].strip()
            if "+" in ids or "|" in ids or not mention or ids == "-1":
                continue
            uris = kb.uris_for_xref(normalize_xref(ids))
            if len(uris) == 1:
                out.setdefault(uris[0], set()).add(mention)
    return {u: sorted(v) for u, v in sorted(out.items())}


def build_index(kb: MedicalKB, encoder_kind: str, graph_path: str | Path | None = None,
                cache_dir: str | Path | None = None, encoder: Any = None):
    """An EntityIndex over the KB records: MiniLM (cached through knowledge.index_cache) or hashing (in memory)."""
    from kgfusion.knowledge.index import EntityIndex

    if encoder_kind == "hashing" or (encoder is not None and graph_path is None):
        return EntityIndex(kb.records, encoder or HashingEncoder(), kind="flat")
    from kgfusion.knowledge.index_cache import default_encoder, load_or_build_index

    if graph_path is None or cache_dir is None:
        raise DataError("the MiniLM index needs the graph path and its cache directory")
    return load_or_build_index(Path(graph_path), Path(cache_dir), encoder or default_encoder())


def build_drug_index(kb: MedicalKB, encoder: Any, cache_dir: str | Path | None = None):
    """A small index over the drugs only: the type filter of the full index would over-fetch through
    ~12k diseases for every drug mention. Cached in ``cache_dir`` (checked against graph and encoder)."""
    from kgfusion.knowledge.index import EntityIndex, EntityIndexError, encoder_name

    drugs = [r for r in kb.records if r.type in LABEL_TYPES["Chemical"]]
    if not drugs:
        raise DataError("the medical graph has no schema:Drug records to link drug mentions to")
    cache = Path(cache_dir) if cache_dir else None
    if cache is not None and (cache / "manifest.json").is_file():
        try:
            index = EntityIndex.load(cache, encoder)
            if index.metadata.get("graph_sha256") == kb.graph_sha256 and index.encoder_name == encoder_name(encoder):
                return index
        except EntityIndexError:
            pass  # stale or corrupt: rebuild
    index = EntityIndex(drugs, encoder, kind="flat", metadata={"graph_sha256": kb.graph_sha256, "subset": "drugs"})
    if cache is not None:
        index.save(cache)
    return index


def build_linkers(kb: MedicalKB, encoder_kind: str = "minilm", *, graph_path: str | Path | None = None,
                  index_dir: str | Path | None = None, app_cache: str | Path | None = None, encoder: Any = None,
                  threshold: float = 0.75, int8_queries: bool = False) -> dict[str, Any]:
    """label -> knowledge.linker.Linker: Disease over the full graph index, Chemical over a drug index.

    ``int8_queries``: mentions are encoded by an ONNX int8 copy of the index's MiniLM (cached beside the
    app cache; same recall@1 on the NCBI devel mentions, several times faster), for int8 model backends."""
    from kgfusion.knowledge.index_cache import int8_query_encoder
    from kgfusion.knowledge.linker import Linker

    full = build_index(kb, encoder_kind, graph_path, index_dir, encoder)
    drug_cache = Path(app_cache) / f"drugs-{encoder_kind}" if app_cache and encoder_kind != "hashing" else None
    drugs = build_drug_index(kb, full.encoder, drug_cache)
    query = (int8_query_encoder(full.encoder, Path(app_cache) / "query-int8")
             if int8_queries and app_cache and encoder_kind != "hashing" else None)
    records = kb.records
    return {"Disease": Linker(full, records, threshold=threshold, query_encoder=query),
            "Chemical": Linker(drugs, [r for r in records if r.type in LABEL_TYPES["Chemical"]], threshold=threshold,
                               query_encoder=query)}


class ConceptLinker:
    """Mentions -> Concepts through knowledge.linker.Linkers (one per label, or one for all), with
    per-(text, label) caching."""

    def __init__(self, linker, kb: MedicalKB, *, facts_limit: int = 8) -> None:
        self.linkers: dict[str, Any] = linker if isinstance(linker, dict) else dict.fromkeys(LABEL_TYPES, linker)
        self.kb = kb
        self.facts_limit = facts_limit
        self.names = NameTable(kb.records)
        self._cache: dict[tuple[str, str], Concept | None] = {}

    def add_aliases(self, aliases: Mapping[str, Iterable[str]]) -> int:
        """Extra names (string matching only) for KB concepts; unknown URIs are skipped."""
        added = 0
        for linker in {id(x): x for x in self.linkers.values()}.values():
            known = {u: list(n) for u, n in aliases.items() if u in linker.records}
            added += linker.add_aliases(known, embed=False) if known else 0
        for uri, names in aliases.items():
            if uri in self.kb.by_uri:
                self.names.add(uri, names)
        return added

    def resolve_name(self, name: str, label: str | None = None) -> str | None:
        """A URI when ``name`` names exactly one concept (of ``label``'s types) by exact/normalised name."""
        wanted = set(LABEL_TYPES.get(label, ())) if label else None
        uris = [u for u in self.names.lookup(name)
                if wanted is None or self.kb.by_uri.get(u, EntityRecord(u, u)).type in wanted]
        return uris[0] if len(uris) == 1 else None

    def link(self, items: Sequence[tuple[str, str]]) -> list[Concept | None]:
        """(text, label) pairs -> Concept or None (below the threshold / no type for the label)."""
        todo: dict[str, list[str]] = {}
        for text, label in items:
            if (text, label) not in self._cache and label in self.linkers:
                todo.setdefault(label, [])
                if text not in todo[label]:
                    todo[label].append(text)
        for label, texts in todo.items():
            results = self.linkers[label].link_many(texts, types=LABEL_TYPES[label], k=5)
            for text, res in zip(texts, results):
                self._cache[(text, label)] = self._concept(res, text)
        return [self._cache.get((t, lab)) for t, lab in items]

    def _concept(self, res, text: str) -> Concept | None:
        if res.uri is None or res.uri in ROOT_CONCEPTS:
            return None
        rec = self.kb.by_uri.get(res.uri)
        return Concept(
            uri=res.uri, curie=curie(res.uri), label=res.label or res.uri, kg_type=rec.type if rec else "",
            score=round(float(min(1.0, max(0.0, res.score))), 4), match=res.match, codes=self.kb.codes(res.uri),
            facts=self.kb.facts(res.uri, self.facts_limit),
            candidates=[{"uri": c.uri, "label": c.label, "score": round(float(c.score), 4)}
                        for c in res.candidates[1:4]],
            ambiguous=bool(res.ambiguous), linked_text=text,
        )

    def concept_for_uri(self, uri: str, score: float, match: str, text: str) -> Concept | None:
        """A Concept for a URI found another way (gazetteer, abbreviation definition)."""
        rec = self.kb.by_uri.get(uri)
        if rec is None:
            return None
        return Concept(uri=uri, curie=curie(uri), label=rec.label, kg_type=rec.type, score=round(score, 4),
                       match=match, codes=self.kb.codes(uri), facts=self.kb.facts(uri, self.facts_limit),
                       linked_text=text)


def concept_evidence(concept: Concept) -> list[Evidence]:
    """KG evidence of a concept: the link itself and each fact as a triple."""
    ev = [Evidence("kg", concept.curie, f"linked to {concept.label} ({concept.match}, {concept.score:.2f})"
                   + (f" via '{concept.linked_text}'" if concept.linked_text else ""), weight=concept.score)]
    for f in concept.facts:
        ev.append(Evidence("kg", f"{curie(f.drug)} kgf:{f.predicate} {curie(f.disease)}", f.text()))
    return ev
