"""Finance batch work on the core batch engine (core/batch_engine.py), local or on Ray.

``finance score`` streams the feed in shards; with ``--out`` the finished shards are kept in
``<out>.shards/`` (a rerun resumes, other settings are refused unless ``--restart``) and streamed into
``--out`` at the end. ``finance monitor`` scores shards the same way and the driver stores each finished
shard (FinanceMonitor.monitor: DuckDB stays single-writer; items already stored are skipped on a rerun).

Ray workers load the same monitor as the driver from a :class:`ModelSource` (paths and settings only),
once per worker.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kgfusion.apps.finance.ingest import Item
from kgfusion.core import batch_engine as be
from kgfusion.core.errors import ConfigError
from kgfusion.core.fileio import sha256_file

MANIFEST_VERSION = 1
OUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


@dataclass(frozen=True)
class ModelSource:
    """What a worker needs to load the driver's monitor: ``FinanceMonitor.from_paths`` arguments."""

    bundle: str
    backend: str = "auto"
    config: dict[str, Any] = field(default_factory=dict)
    kg_path: str | None = None
    rule_paths: tuple[str, ...] = ()
    kg_store: str | None = None  # memory | oxigraph:DIR, as the driver read it (a worker has no --kg-store)

    def load(self):
        from kgfusion.apps.finance.config import FinanceConfig
        from kgfusion.apps.finance.pipeline import FinanceMonitor

        return FinanceMonitor.from_paths(self.bundle, backend=self.backend, config=FinanceConfig.from_dict(self.config),
                                         kg_path=self.kg_path, rule_paths=list(self.rule_paths), progress=False,
                                         kg_store=self.kg_store)

    def to_kwargs(self) -> dict[str, Any]:
        return asdict(self)


def monitor_worker(source: dict[str, Any], run_id: str) -> Callable[[list[Item]], tuple[pd.DataFrame, pd.DataFrame]]:
    """Engine worker of ``monitor``: (rows, mentions) of a shard of items (FinanceMonitor.score_items)."""
    mon = ModelSource(**source).load()
    return lambda items: mon.score_items(items, run_id=run_id)


def score_worker(source: dict[str, Any]) -> Callable[[list[Item]], pd.DataFrame]:
    """Engine worker of ``score --out``: the scored shard as it is written to the file."""
    mon = ModelSource(**source).load()
    return lambda items: table_frame(mon.score(items))


def table_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Nested values (lists, dicts) as JSON text, as written to CSV/Parquet/JSONL (cli.write_table)."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, (list, dict))).any():
            frame[col] = frame[col].map(lambda v: json.dumps(v, default=str) if isinstance(v, (list, dict)) else v)
    return frame


def out_format(path: str | Path) -> str:
    fmt = OUT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: use a .csv, .parquet or .jsonl file")
    return fmt


def describe(i: int, items: Sequence[Item]) -> str:
    return f"shard {i + 1} (rows {items[0].row}..{items[-1].row})"


@dataclass
class ScoreRun:
    """What ``score_feed`` did: the frame (without --out), counts for the summary and engine stats."""

    frame: pd.DataFrame | None
    scored: int = 0
    kept: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    topics: dict[str, int] = field(default_factory=dict)
    stats: be.RunStats | None = None


def _counts(counter: Counter) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))}


def score_feed(mon, shards: Iterable[list[Item]], *, source: ModelSource | None, feed_path: str | Path,
               out: str | Path | None = None, topics: Sequence[str] = (), engine: be.Engine = "local",
               shard_size: int, restart: bool = False, settings: dict[str, Any] | None = None,
               progress: bool = False) -> ScoreRun:
    """Score the item shards with ``mon`` (local) or workers loading ``source`` (Ray).

    ``topics``: keep only items of these topics in the output (all items are scored). With ``out`` the
    shards go through a resumable ShardStore and are streamed into ``out``; else the frame is returned.
    """
    be.check_engine(engine)
    if engine == "ray" and source is None:
        raise ConfigError("engine='ray' needs the model's paths (FinanceMonitor.from_paths) so the workers "
                          "can load it; use engine='local'")
    worker = be.WorkerSpec("kgfusion.apps.finance.batch:score_worker", {"source": source.to_kwargs() if source else {}})
    labels, topic_counts = Counter(), Counter()
    wanted = set(topics)

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        if wanted:
            frame = frame[frame["topic"].isin(wanted)].reset_index(drop=True)
        labels.update(frame["label"].tolist())
        topic_counts.update(frame["topic"].dropna().astype(str).tolist())
        return frame

    run = ScoreRun(None)
    if out is None:
        parts: list[pd.DataFrame] = []
        run.stats = be.run_shards(shards, be.WorkerSpec("kgfusion.apps.finance.batch:frame_worker",
                                                        {"source": source.to_kwargs() if source else {}}),
                                  engine=engine, on_result=lambda i, rows, frame: parts.append(frame),
                                  local_fn=mon.score, describe=describe, progress=progress, desc="score", unit="item")
        frame = pd.concat(parts, ignore_index=True) if parts else mon.score([])
        run.scored = len(frame)
        run.frame = keep(frame)
    else:
        fmt = out_format(out)
        manifest = {"version": MANIFEST_VERSION, "input": str(Path(feed_path).resolve()),
                    "input_sha256": sha256_file(feed_path), "shard_size": shard_size, "settings": settings or {}}
        store = be.ShardStore(out, manifest, phrases={"input_sha256": "the feed file changed"})
        store.open(restart)
        try:
            run.stats = be.run_shards(
                shards, worker, engine=engine, store=store,
                done=lambda i, items: store.is_done(i, "id", [it.id for it in items]),
                local_fn=lambda items: table_frame(mon.score(items)), describe=describe, progress=progress,
                desc="score", unit="item")
            n = run.stats.shards
            be.write_frames(out, map(keep, store.frames(n)), schema=store.schema(n) if n else None, fmt=fmt,
                            date_format="iso")
        finally:
            store.close()
        store.remove()
        run.scored = run.stats.rows
    run.kept = sum(labels.values())
    run.labels, run.topics = _counts(labels), _counts(topic_counts)
    return run


def frame_worker(source: dict[str, Any]) -> Callable[[list[Item]], pd.DataFrame]:
    """Engine worker of ``score`` without --out: the scored frame (tickers as lists)."""
    mon = ModelSource(**source).load()
    return mon.score


def model_settings(source: ModelSource, fingerprint_of: Callable[[str], str]) -> dict[str, Any]:
    """The model part of a score manifest: what decides the scores (bundle content, backend, KG, rules)."""
    return {"bundle": source.bundle, "bundle_fingerprint": fingerprint_of(source.bundle), "backend": source.backend,
            "config": source.config, "kg": source.kg_path, "rules": list(source.rule_paths)}
