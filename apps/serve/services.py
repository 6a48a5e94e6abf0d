"""What the server serves: one service per app, each a model (or graph) plus a batch function.

A service knows its bundle ``name``, ``version`` (the first 12 hex digits of the SHA-256 of the bundle's
manifest, so two servers answering with the same version ran the same model files) and ``backend``, and
turns a flat list of request items into one result per item (``run_batch``), which is what the
MicroBatcher calls with the items of several concurrent requests. ``Services.load`` builds the default
set from the repo's data/ folder (shipped bundles and graphs); tests build services from tiny models.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kgfusion.apps.serve.errors import ApiError

GRAPH_NAMES = ("finance", "medical", "movies")


def bundle_version(bundle_dir: str | Path, manifest: str = "bundle.json") -> str:
    """A content version of a model directory: sha256 of its manifest (which lists every file's checksum)."""
    path = Path(bundle_dir) / manifest
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return "unversioned"


@dataclass
class ModelInfo:
    app: str
    name: str
    version: str
    backend: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "backend": self.backend}


# ----------------------------------------------------------------------------------------- finance
class FinanceService:
    """Sentiment + company linking for feed items (FinanceMonitor.score), one result dict per item."""

    def __init__(self, monitor: Any, info: ModelInfo) -> None:
        self.monitor = monitor
        self.info = info

    @classmethod
    def load(cls, bundle: str | Path | None = None, backend: str = "auto", variant: str = "accurate") -> FinanceService:
        from kgfusion.apps.common import bundle_variant, promoted_bundle, repo_data_dir
        from kgfusion.apps.finance.pipeline import FinanceMonitor

        # the registry's promoted version wins: its name@vN and content version are what /info reports
        chosen = bundle_variant(Path(bundle) if bundle else repo_data_dir() / "models" / _finance_default(), variant)
        resolved = promoted_bundle(chosen)
        monitor = FinanceMonitor.from_paths(resolved.path, backend=backend, progress=False)
        return cls(monitor, ModelInfo("finance", resolved.label, bundle_version(resolved.path), monitor.backend))

    def run_batch(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from kgfusion.apps.finance.ingest import Item, item_id

        rows = []
        for i, it in enumerate(items):
            ts = pd.Timestamp(it["time"]).tz_localize(None) if it.get("time") else None
            rid = it.get("id") or item_id("api", it["text"], ts)
            rows.append(Item(rid, it["text"], ts, "api", it.get("ticker"), i + 1))
        # one scoring + linking pass: the rows and each item's company mentions (linked once)
        frame, mention_frame = self.monitor.score_items(rows)
        mentions: dict[str, list[dict[str, Any]]] = {}
        for m in ([] if mention_frame.empty else mention_frame.to_dict("records")):
            mentions.setdefault(m["item_id"], []).append({
                "ticker": m["ticker"], "company": m["company"], "uri": m["entity"], "industry": m["industry"],
                "sector": m["sector"], "match": m["match"], "span": [m["start_char"], m["end_char"]],
                "score": m["score"]})
        out = []
        for rec, it in zip(frame.to_dict("records"), rows):
            companies = mentions.get(it.id, [])
            out.append({
                "id": rec["id"], "label": rec["label"], "score": float(rec["score"]),
                "confidence": float(rec["confidence"]),
                "probabilities": {lab: float(rec[f"p_{lab}"]) for lab in ("negative", "neutral", "positive")},
                "model_probabilities": json.loads(rec["model_probs"]),
                "companies": companies,
                "sectors": sorted({c["sector"] for c in companies if c.get("sector")}),
                **{k: _plain(rec[k]) for k in ("topic", "topic_prob") if k in rec},
                "evidence": json.loads(rec["evidence"]),
            })
        return out


def _plain(value: Any) -> Any:
    """NaN/None -> None, numpy scalars -> Python (JSON-safe)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value


def _finance_default() -> str:
    from kgfusion.apps.finance.cli import DEFAULT_BUNDLE_NAME

    return DEFAULT_BUNDLE_NAME


# ----------------------------------------------------------------------------------------- medical
class MedicalService:
    """Clinical NER + ConText + concept linking (ClinicalExtractor.extract_notes), one NoteResult per note."""

    def __init__(self, extractor: Any, info: ModelInfo) -> None:
        self.extractor = extractor
        self.info = info

    @classmethod
    def load(cls, variant: str = "accurate") -> MedicalService:
        from kgfusion.apps.common import bundle_variant, promoted_bundle, repo_data_dir
        from kgfusion.apps.medical.config import MedicalConfig
        from kgfusion.apps.medical.extract import build_extractor, resolve_bundle

        config = MedicalConfig()
        config.bundle = str(bundle_variant(config.bundle, variant))
        resolved = promoted_bundle(resolve_bundle(config.bundle, repo_data_dir()))  # as build_extractor loads
        extractor = build_extractor(config)
        backend = getattr(extractor.predictor, "backend", config.backend)
        return cls(extractor, ModelInfo("medical", resolved.label, bundle_version(resolved.path), str(backend)))

    def check(self, text: str, note_id: str) -> None:
        from kgfusion.apps.medical.extract import NoteRejected

        try:
            self.extractor.check(text, note_id)
        except NoteRejected as exc:
            raise ApiError(422, "note_rejected", str(exc), "notes") from exc

    def run_batch(self, notes: list[dict[str, Any]]) -> list[Any]:
        from kgfusion.apps.medical.readers import NoteInput

        return self.extractor.extract_notes([NoteInput(n["id"], n["text"], "api") for n in notes])


# ----------------------------------------------------------------------------------------- recommend
class RecommendService:
    """Top-k lists with explanations (Recommender.recommend_frame); unknown users get cold-start lists."""

    def __init__(self, recommender: Any, info: ModelInfo) -> None:
        self.recommender = recommender
        self.info = info
        self._known = set(int(u) for u in recommender.known_users())

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> RecommendService:
        from kgfusion.apps.recommend.cli import default_model
        from kgfusion.apps.recommend.recommender import load_recommender

        path = Path(model_dir) if model_dir else default_model()
        return cls(load_recommender(path), ModelInfo("recommend", path.name, bundle_version(path, "recommender.json"),
                                                     "lightgbm"))

    def run_batch(self, requests: list[tuple[int, int]]) -> list[list[dict[str, Any]]]:
        """(user, k) pairs -> per pair its ranked items; one ranking call for the batch at its largest k."""
        k_max = max(k for _, k in requests)
        frame = self.recommender.recommend_frame([u for u, _ in requests], k=k_max)
        by_user: dict[int, list[dict[str, Any]]] = {}
        for rec in frame.to_dict("records"):
            by_user.setdefault(int(rec["user_id"]), []).append({
                "rank": int(rec["rank"]), "item_id": int(rec["item_id"]), "title": rec["title"],
                "score": float(rec["score"]), "explanation": rec["explanation"],
                "evidence": json.loads(rec["evidence"]), "cold_start": bool(rec["cold_start"])})
        return [by_user.get(int(u), [])[:k] for u, k in requests]

    def is_known(self, user: int) -> bool:
        return int(user) in self._known


# ----------------------------------------------------------------------------------------- kg
class GraphService:
    """Entity linking and read-only SPARQL over the shipped graphs, each loaded on first use."""

    def __init__(self, graphs: Mapping[str, Path], encoder_factory: Any = None, store: Any = None) -> None:
        from kgfusion.apps.common import chosen_kg_store
        from kgfusion.knowledge.graph import KgStore

        self.graphs = dict(graphs)
        self._encoder_factory = encoder_factory
        self._kgs: dict[str, Any] = {}
        self._linkers: dict[str, Any] = {}
        self._lock = threading.Lock()
        # memory | oxigraph:DIR (a KgStore; None: the command's --kg-store, else $KGFUSION_KG_STORE)
        self.store = KgStore.parse(store) if store is not None else chosen_kg_store()
        self.info = ModelInfo("kg", "kg", _graphs_version(self.graphs),
                              "rdflib" if self.store.kind == "memory" else self.store.kind)

    @classmethod
    def load(cls) -> GraphService:
        from kgfusion.apps.common import repo_data_dir

        kg_dir = repo_data_dir() / "kg"
        return cls({n: kg_dir / f"{n}.ttl" for n in GRAPH_NAMES if (kg_dir / f"{n}.ttl").is_file()})

    def require(self, name: str) -> Path:
        if name not in self.graphs:
            raise ApiError(404, "unknown_graph", f"no graph {name!r}; this server has: {', '.join(self.graphs)}",
                           "graph")
        return self.graphs[name]

    def kg(self, name: str) -> Any:
        from kgfusion.apps.common import load_kg

        path = self.require(name)
        with self._lock:
            if name not in self._kgs:
                self._kgs[name] = load_kg(path, self.store)
            return self._kgs[name]

    def linker(self, name: str) -> Any:
        from kgfusion.knowledge.index_cache import index_dir_for, load_or_build_index
        from kgfusion.knowledge.linker import Linker

        path = self.require(name)
        with self._lock:
            if name not in self._linkers:
                encoder = self._encoder_factory() if self._encoder_factory else _default_encoder()
                cache = path.parent / "index" / name if path.parent.name == "kg" else index_dir_for(path)
                self._linkers[name] = Linker(load_or_build_index(path, cache, encoder))
            return self._linkers[name]


def _default_encoder() -> Any:
    from kgfusion.apps.kg.link import make_encoder

    return make_encoder()


def _graphs_version(graphs: Mapping[str, Path]) -> str:
    h = hashlib.sha256()
    for name in sorted(graphs):
        try:
            st = Path(graphs[name]).stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
        except OSError:
            h.update(name.encode())
    return h.hexdigest()[:12]


# ----------------------------------------------------------------------------------------- the set
@dataclass
class Services:
    """The services one server instance holds (None = that app is not served)."""

    finance: FinanceService | None = None
    medical: MedicalService | None = None
    recommend: RecommendService | None = None
    kg: GraphService | None = None
    errors: dict[str, str] = field(default_factory=dict)  # app -> why it failed to load

    @classmethod
    def load(cls, apps: Sequence[str], *, finance_bundle: str | Path | None = None, finance_backend: str = "auto",
             recommend_model: str | Path | None = None, model_variant: str = "accurate") -> Services:
        """Load each requested app; one that fails is recorded in ``errors`` (readyz says why)."""
        out = cls()
        loaders = {"finance": lambda: FinanceService.load(finance_bundle, finance_backend, model_variant),
                   "medical": lambda: MedicalService.load(model_variant), "recommend": lambda: RecommendService.load(recommend_model)}
        for app in apps:
            try:
                setattr(out, app, loaders[app]())
            except Exception as exc:  # noqa: BLE001 - reported by /readyz, the server still answers others
                out.errors[app] = f"{type(exc).__name__}: {exc}"
        out.kg = GraphService.load()
        return out

    def infos(self) -> list[ModelInfo]:
        return [s.info for s in (self.finance, self.medical, self.recommend, self.kg) if s is not None]
