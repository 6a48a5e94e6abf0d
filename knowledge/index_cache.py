"""An EntityIndex cached beside its graph: reused while it matches, rebuilt when anything changed.

The index for a graph lives in a cache directory (the apps use data/kg/index/<graph>/ for
data/kg/<graph>.ttl). It is rebuilt when the graph file's SHA-256, the encoder or the index kind
changes, or when the cache fails to load (corrupt, other dimension). Every app that links mentions
(kg link, medical, the Knowledge page) shares this one cache policy.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kgfusion.core.errors import KgfusionError
from kgfusion.core.fileio import sha256_file
from kgfusion.knowledge.index import EntityIndex, EntityIndexError

log = logging.getLogger(__name__)


def default_encoder() -> Any:
    """The retrieval encoder: the packaged MiniLM (loaded lazily; it takes a few seconds)."""
    from kgfusion.core.embed import Embedder

    return Embedder("minilm")


def int8_query_encoder(encoder: Any, cache_dir: str | Path | None, backend: str = "onnx") -> Any | None:
    """An int8 copy of an fp32 ``Embedder`` for ``Linker(query_encoder=...)`` (ONNX graph kept in
    ``cache_dir``), or None when ``encoder`` is not one or onnxruntime is missing (link with fp32 then).

    On the NCBI devel mentions the linker's fast path with it ran ~5-7x the fp32 fast path at the
    same recall@1 (benchmarks/entity_linking.py --mode speed).
    """
    import importlib.util

    from kgfusion.core.embed import Embedder

    if not isinstance(encoder, Embedder) or encoder.backend != "fp32":
        return None
    if backend == "onnx" and not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")):
        log.info("No int8 query encoder: install kgfusion[onnx]; queries use the fp32 encoder.")
        return None
    return encoder.quantized(backend, cache_dir=cache_dir)  # type: ignore[arg-type]


def index_dir_for(graph_path: str | Path) -> Path:
    """Where the index of ``graph_path`` is cached: ``<graph dir>/index/<graph stem>``."""
    path = Path(graph_path)
    return path.parent / "index" / path.name.removesuffix(".gz").removesuffix(".ttl")


def load_or_build_index(graph_path: Path, cache_dir: Path, encoder: Any, kind: str = "auto",
                        rebuild: bool = False) -> EntityIndex:
    """The cached index when it matches the graph checksum, encoder and kind; else build and save one."""
    graph_path, cache_dir = Path(graph_path), Path(cache_dir)
    checksum = sha256_file(graph_path)
    if not rebuild and (cache_dir / "manifest.json").is_file():
        try:
            index = EntityIndex.load(cache_dir, encoder)
            if index.metadata.get("graph_sha256") == checksum and kind in ("auto", index.kind):
                return index
            log.info("Graph %s changed since the index in %s was built; rebuilding.", graph_path, cache_dir)
        except EntityIndexError as exc:
            log.warning("Rebuilding the entity index: %s", exc)
    from kgfusion.knowledge.graph import KnowledgeGraph

    records = KnowledgeGraph.load(graph_path).entity_records()
    if not records:
        raise KgfusionError(f"{graph_path} has no typed entities with labels to link to; check the graph.")
    index = EntityIndex(records, encoder, kind=kind,  # type: ignore[arg-type]
                        metadata={"graph": graph_path.name, "graph_sha256": checksum})
    index.save(cache_dir)
    return index
