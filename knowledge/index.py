"""EntityIndex: FAISS inner-product search over the embedded labels and aliases of KG entities.

Every name (label or alias) gets one vector; a name-id -> entity-id map turns name hits into
entity hits. The encoder must return L2-normalised float32 rows, so inner product is cosine
similarity in -1..1. Index kinds: exact ``IndexFlatIP`` ("flat"), ``IndexHNSWFlat`` with inner
product ("hnsw", approximate, fast for large sets) and ``IndexIVFFlat`` ("ivf"); "auto" picks flat
below ``auto_threshold`` names and HNSW above.

Type filtering over-fetches: FAISS returns name hits of every type, so ``search`` asks for
``overfetch * k`` names, deduplicates to entities (best-scoring name wins), drops entities of other
types, and doubles the fetch until ``k`` entities remain or the whole index has been seen.

Queries run FAISS on ``search_threads`` OpenMP threads (default 1; None = FAISS's default): a
query batch is small next to the cost of OpenMP's spinning workers on a busy machine (measured: 363
queries over 13.6k names, 2 cores shared with a training job: 0.09 s on 1 thread, 0.25-0.44 s on
2), and servers and batch engines parallelise above the index anyway.

On disk (``save``/``load``): ``index.faiss`` (faiss.write_index), ``ids.json`` (entities and the
name -> entity map) and ``manifest.json`` (encoder name, dim, counts, kind, SHA-256 checksums), the
manifest written last. No pickle anywhere.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kgfusion.core.errors import ConfigError, KgfusionError
from kgfusion.core.fileio import atomic_write_bytes, sha256_file
from kgfusion.knowledge.records import EntityRecord

IndexKind = Literal["auto", "flat", "hnsw", "ivf"]
KINDS = ("auto", "flat", "hnsw", "ivf")
FORMAT_VERSION = 1
INDEX_FILE, IDS_FILE, MANIFEST_FILE = "index.faiss", "ids.json", "manifest.json"


class EntityIndexError(KgfusionError):
    """An entity index on disk is missing, corrupt, or does not fit the encoder it is loaded with."""


@dataclass(frozen=True)
class Candidate:
    """One retrieved entity: its URI, the name that matched best, the cosine score (-1..1), its type."""

    uri: str
    name: str
    score: float
    type: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def encoder_name(encoder: Any) -> str:
    """A stable name for an encoder, stored in the manifest: ``.name`` if it has one, else its class."""
    return str(getattr(encoder, "name", None) or type(encoder).__name__)


def _faiss():
    import faiss

    return faiss


class EntityIndex:
    """Nearest-name search over KG entities (see module docstring for kinds and the type filter)."""

    def __init__(
        self,
        records: Iterable[EntityRecord],
        encoder: Any,
        kind: IndexKind = "auto",
        *,
        ef_search: int = 128,
        ef_construction: int = 200,
        hnsw_m: int = 32,
        nlist: int | None = None,
        nprobe: int = 16,
        auto_threshold: int = 50_000,
        overfetch: int = 4,
        batch_size: int = 128,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        search_threads: int | None = 1,
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"EntityIndex kind={kind!r} is not one of {KINDS}.")
        for label, value in (("ef_search", ef_search), ("hnsw_m", hnsw_m), ("nprobe", nprobe), ("overfetch", overfetch)):
            if value < 1:
                raise ConfigError(f"EntityIndex {label}={value} must be >= 1.")
        if search_threads is not None and search_threads < 1:
            raise ConfigError(f"EntityIndex search_threads={search_threads} must be >= 1 or None.")
        self.encoder = encoder
        self.encoder_name = name or encoder_name(encoder)
        self.dim = int(encoder.dim)
        self.params: dict[str, Any] = {
            "ef_search": ef_search, "ef_construction": ef_construction, "hnsw_m": hnsw_m,
            "nlist": nlist, "nprobe": nprobe, "auto_threshold": auto_threshold, "overfetch": overfetch,
        }
        self.batch_size = batch_size
        self.search_threads = search_threads
        self.metadata: dict[str, Any] = dict(metadata or {})
        # Entity table (uri, label, type, aliases, xrefs) and the name table.
        self.records: list[EntityRecord] = []
        self._entity_of_uri: dict[str, int] = {}
        self.names: list[str] = []
        self.name_entity: list[int] = []
        self._names_of_entity: dict[int, list[int]] = {}
        names, owners = self._register(records)
        if not self.records:
            raise EntityIndexError("EntityIndex needs at least one entity record with a non-empty label.")
        vectors = self._encode(names)
        self.kind: str = self._resolve_kind(kind, len(names))
        self.index = self._build(vectors)
        self._append_names(names, owners)

    # -- construction -------------------------------------------------------------------------------------
    def _register(self, records: Iterable[EntityRecord]) -> tuple[list[str], list[int]]:
        """Add records to the entity table; return their (new) names and owning entity ids."""
        names: list[str] = []
        owners: list[int] = []
        for rec in records:
            if not rec.label.strip():
                continue
            if rec.uri in self._entity_of_uri:
                raise EntityIndexError(f"Duplicate entity URI {rec.uri!r} in the records given to EntityIndex.")
            eid = len(self.records)
            self.records.append(rec)
            self._entity_of_uri[rec.uri] = eid
            for n in rec.names():
                if n.strip():
                    names.append(n)
                    owners.append(eid)
        return names, owners

    def _append_names(self, names: Sequence[str], owners: Sequence[int]) -> None:
        for n, eid in zip(names, owners, strict=True):
            self._names_of_entity.setdefault(eid, []).append(len(self.names))
            self.names.append(n)
            self.name_entity.append(eid)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        vecs = np.asarray(self.encoder.encode(list(texts), batch_size=self.batch_size), dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape != (len(texts), self.dim):
            raise EntityIndexError(
                f"Encoder {self.encoder_name} returned shape {vecs.shape}, expected ({len(texts)}, {self.dim})."
            )
        return np.ascontiguousarray(vecs)

    def _resolve_kind(self, kind: str, n: int) -> str:
        if kind == "auto":
            return "hnsw" if n >= self.params["auto_threshold"] else "flat"
        return kind

    def _build(self, vectors: np.ndarray):
        faiss = _faiss()
        p = self.params
        if self.kind == "flat":
            index = faiss.IndexFlatIP(self.dim)
        elif self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, int(p["hnsw_m"]), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(p["ef_construction"])
        else:  # ivf: needs training data; nlist ~ 4 sqrt(n), at least 39 points per list for k-means
            n = len(vectors)
            nlist = int(p["nlist"] or max(1, min(int(4 * np.sqrt(n)), n // 39)))
            p["nlist"] = nlist
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.make_direct_map()  # so reconstruct() works for ambiguity scoring
        self._apply_search_params(index)
        if len(vectors):
            index.add(vectors)
        return index

    def _apply_search_params(self, index) -> None:
        if self.kind == "hnsw":
            index.hnsw.efSearch = int(self.params["ef_search"])
        elif self.kind == "ivf":
            index.nprobe = min(int(self.params["nprobe"]), index.nlist)

    def set_search_params(self, *, ef_search: int | None = None, nprobe: int | None = None,
                          search_threads: int | None | Literal["keep"] = "keep") -> None:
        """Change efSearch (HNSW), nprobe (IVF) or the query threads (None = FAISS default) without rebuilding."""
        if search_threads != "keep":
            if search_threads is not None and int(search_threads) < 1:
                raise ConfigError(f"EntityIndex search_threads={search_threads} must be >= 1 or None.")
            self.search_threads = None if search_threads is None else int(search_threads)
        if ef_search is not None:
            self.params["ef_search"] = int(ef_search)
        if nprobe is not None:
            self.params["nprobe"] = int(nprobe)
        self._apply_search_params(self.index)

    def vectors(self) -> np.ndarray:
        """All name vectors in name-id order (reconstructed from the FAISS index)."""
        if not len(self.names):
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(self.index.reconstruct_n(0, len(self.names)), dtype=np.float32)

    def rebuild(self, kind: IndexKind, **params: Any) -> EntityIndex:
        """A copy of this index with another FAISS structure / parameters, reusing the stored vectors."""
        if kind not in KINDS:
            raise ConfigError(f"EntityIndex kind={kind!r} is not one of {KINDS}.")
        unknown = set(params) - set(self.params)
        if unknown:
            raise ConfigError(f"Unknown EntityIndex parameters {sorted(unknown)}; allowed: {sorted(self.params)}.")
        clone = object.__new__(EntityIndex)
        clone.__dict__.update(self.__dict__)
        clone.params = {**self.params, **params}
        clone.records, clone.names, clone.name_entity = list(self.records), list(self.names), list(self.name_entity)
        clone._entity_of_uri = dict(self._entity_of_uri)
        clone._names_of_entity = {k: list(v) for k, v in self._names_of_entity.items()}
        clone.kind = clone._resolve_kind(kind, len(self.names))
        clone.index = clone._build(self.vectors())
        return clone

    # -- runtime additions --------------------------------------------------------------------------------
    def add_aliases(self, aliases: Mapping[str, Iterable[str]]) -> int:
        """Embed and add new names for existing entities (uri -> names); returns how many were new.

        Names the entity already has are skipped. The entity's record gains the aliases too, so a
        saved index keeps them.
        """
        new_names: list[str] = []
        owners: list[int] = []
        for uri, names in aliases.items():
            eid = self._entity_of_uri.get(uri)
            if eid is None:
                raise EntityIndexError(f"Cannot add aliases to {uri!r}: it is not an entity of this index.")
            rec = self.records[eid]
            known = set(rec.names())
            fresh = [n for n in dict.fromkeys(names) if n.strip() and n not in known]
            if not fresh:
                continue
            self.records[eid] = EntityRecord(rec.uri, rec.label, (*rec.aliases, *fresh), rec.type, rec.xrefs)
            new_names.extend(fresh)
            owners.extend([eid] * len(fresh))
        if new_names:
            self.index.add(self._encode(new_names))
            self._append_names(new_names, owners)
        return len(new_names)

    # -- queries ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    @property
    def name_count(self) -> int:
        return len(self.names)

    def record(self, uri: str) -> EntityRecord | None:
        eid = self._entity_of_uri.get(uri)
        return None if eid is None else self.records[eid]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode query texts in one batch (shape (n, dim))."""
        return self._encode(texts)

    def search(self, query_texts: Sequence[str], k: int = 10, types: Iterable[str] | None = None) -> list[list[Candidate]]:
        """Top-k entities per query, best first; one Candidate per entity (its best-matching name)."""
        return self.search_vectors(self._encode(list(query_texts)), k=k, types=types)

    def search_vectors(
        self, vectors: np.ndarray, k: int = 10, types: Iterable[str] | None = None
    ) -> list[list[Candidate]]:
        """As ``search``, for query vectors that are already encoded (shape (n, dim))."""
        if k < 1:
            raise ConfigError(f"k={k} must be >= 1.")
        vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim))
        wanted = set(types) if types else None
        total = len(self.names)
        results: list[list[Candidate] | None] = [None] * len(vectors)
        pending = list(range(len(vectors)))
        fetch = min(total, max(k * int(self.params["overfetch"]), k))
        while pending:
            scores, ids = self._faiss_search(vectors[pending], fetch)
            still: list[int] = []
            for row, qi in enumerate(pending):
                cands = self._collect(scores[row], ids[row], k, wanted)
                if len(cands) < k and fetch < total:
                    still.append(qi)  # too few entities of the wanted types: fetch more
                else:
                    results[qi] = cands
            pending = still
            fetch = min(total, fetch * 2)
        return [r or [] for r in results]

    def _faiss_search(self, vectors: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        if self.search_threads is None:
            return self.index.search(vectors, fetch)
        faiss = _faiss()
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(int(self.search_threads))
        try:
            return self.index.search(vectors, fetch)
        finally:
            faiss.omp_set_num_threads(before)

    def _collect(self, scores: np.ndarray, ids: np.ndarray, k: int, wanted: set[str] | None) -> list[Candidate]:
        seen: set[int] = set()
        out: list[Candidate] = []
        for score, nid in zip(scores, ids, strict=True):
            if nid < 0:
                continue
            eid = self.name_entity[nid]
            if eid in seen:
                continue  # FAISS returns names best-first, so the first name of an entity is its best
            seen.add(eid)
            rec = self.records[eid]
            if wanted is not None and rec.type not in wanted:
                continue
            out.append(Candidate(rec.uri, self.names[nid], float(score), rec.type))
            if len(out) == k:
                break
        return out

    def name_vector(self, uri: str, name: str) -> np.ndarray | None:
        """The stored vector of one of an entity's names (None when the entity or the name is not indexed)."""
        eid = self._entity_of_uri.get(uri)
        if eid is None:
            return None
        for nid in self._names_of_entity.get(eid, ()):
            if self.names[nid] == name:
                return np.asarray(self.index.reconstruct(int(nid)), dtype=np.float32)
        return None

    def score_entities(
        self, vector: np.ndarray, uris: Iterable[str], exclude: Collection[str] = ()
    ) -> dict[str, Candidate]:
        """Exact cosine of one query vector to the best name of each given entity (unknown URIs skipped).

        Names in ``exclude`` are left out unless an entity has no other name (used to disambiguate a
        shared alias by the entities' *other* names).
        """
        vector = np.asarray(vector, dtype=np.float32).reshape(self.dim)
        out: dict[str, Candidate] = {}
        for uri in uris:
            eid = self._entity_of_uri.get(uri)
            if eid is None:
                continue
            nids = self._names_of_entity.get(eid, [])
            nids = [n for n in nids if self.names[n] not in exclude] or nids
            vecs = np.stack([self.index.reconstruct(int(n)) for n in nids])
            sims = vecs @ vector
            best = int(np.argmax(sims))
            rec = self.records[eid]
            out[uri] = Candidate(uri, self.names[nids[best]], float(sims[best]), rec.type)
        return out

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write index.faiss, ids.json and (last) manifest.json into ``directory``; return it."""
        faiss = _faiss()
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST_FILE).unlink(missing_ok=True)  # a half-written directory then fails to load
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{INDEX_FILE}.", suffix=".tmp")
        os.close(fd)
        try:
            faiss.write_index(self.index, tmp)
            os.replace(tmp, out / INDEX_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        ids = {
            "entities": [
                {"uri": r.uri, "label": r.label, "aliases": list(r.aliases), "type": r.type, "xrefs": list(r.xrefs)}
                for r in self.records
            ],
            "names": self.names,
            "name_entity": self.name_entity,
        }
        atomic_write_bytes(out / IDS_FILE, json.dumps(ids, ensure_ascii=False).encode("utf-8"))
        manifest = {
            "format_version": FORMAT_VERSION,
            "encoder": self.encoder_name,
            "dim": self.dim,
            "count": len(self.names),
            "entities": len(self.records),
            "kind": self.kind,
            "params": self.params,
            "metadata": self.metadata,
            "checksum": {INDEX_FILE: sha256_file(out / INDEX_FILE), IDS_FILE: sha256_file(out / IDS_FILE)},
        }
        atomic_write_bytes(out / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
        return out

    @staticmethod
    def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
        """The manifest of a saved index (raises EntityIndexError when absent or unreadable)."""
        path = Path(directory) / MANIFEST_FILE
        if not path.is_file():
            raise EntityIndexError(f"{path} not found: {directory} is not a saved EntityIndex (save() it first).")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EntityIndexError(f"{path} is not valid JSON ({exc}); delete {directory} and rebuild.") from exc
        if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
            raise EntityIndexError(
                f"{path}: unsupported format_version {manifest.get('format_version') if isinstance(manifest, dict) else None!r} "
                f"(expected {FORMAT_VERSION}); delete {directory} and rebuild."
            )
        return manifest

    @classmethod
    def load(cls, directory: str | os.PathLike[str], encoder: Any, *, name: str | None = None) -> EntityIndex:
        """Load a saved index for use with ``encoder``; checks checksums, encoder name, dim and counts."""
        faiss = _faiss()
        root = Path(directory)
        manifest = cls.read_manifest(root)
        fix = f"delete {root} and rebuild the index"
        for fname in (INDEX_FILE, IDS_FILE):
            path = root / fname
            if not path.is_file():
                raise EntityIndexError(f"{path} is missing; {fix}.")
            expected = manifest.get("checksum", {}).get(fname)
            if expected != sha256_file(path):
                raise EntityIndexError(f"{path} does not match the checksum in {root / MANIFEST_FILE} (corrupt?); {fix}.")
        enc_name = name or encoder_name(encoder)
        if manifest.get("encoder") != enc_name:
            raise EntityIndexError(
                f"{root} was built with encoder {manifest.get('encoder')!r}, not {enc_name!r}; {fix} with this encoder."
            )
        if int(manifest.get("dim", -1)) != int(encoder.dim):
            raise EntityIndexError(
                f"{root} holds {manifest.get('dim')}-d vectors but the encoder gives {encoder.dim}-d; {fix}."
            )
        try:
            ids = json.loads((root / IDS_FILE).read_text(encoding="utf-8"))
            index = faiss.read_index(str(root / INDEX_FILE))
        except (OSError, ValueError, RuntimeError) as exc:
            raise EntityIndexError(f"Cannot read {root}: {exc}; {fix}.") from exc
        names, owners, entities = ids.get("names"), ids.get("name_entity"), ids.get("entities")
        if not isinstance(names, list) or not isinstance(owners, list) or not isinstance(entities, list):
            raise EntityIndexError(f"{root / IDS_FILE} lacks names/name_entity/entities lists; {fix}.")
        count = int(manifest.get("count", -1))
        if not (index.ntotal == len(names) == len(owners) == count) or index.d != int(encoder.dim):
            raise EntityIndexError(
                f"{root}: counts disagree (faiss {index.ntotal} vectors of dim {index.d}, {len(names)} names, "
                f"{len(owners)} name ids, manifest count {count}); {fix}."
            )
        if len(entities) != int(manifest.get("entities", -1)) or any(not 0 <= o < len(entities) for o in owners):
            raise EntityIndexError(f"{root / IDS_FILE}: entity table does not match the manifest; {fix}.")
        self = object.__new__(cls)
        self.encoder, self.encoder_name, self.dim = encoder, enc_name, int(encoder.dim)
        self.params = dict(manifest.get("params", {}))
        self.batch_size = 128
        self.search_threads = 1
        self.metadata = dict(manifest.get("metadata", {}))
        self.kind = str(manifest.get("kind"))
        self.records = [
            EntityRecord(e["uri"], e["label"], tuple(e.get("aliases", ())), e.get("type", ""), tuple(e.get("xrefs", ())))
            for e in entities
        ]
        self._entity_of_uri = {r.uri: i for i, r in enumerate(self.records)}
        self.names, self.name_entity, self._names_of_entity = [], [], {}
        self._append_names(names, owners)
        if self.kind == "ivf":
            index.make_direct_map()
        self.index = index
        self._apply_search_params(index)
        return self
