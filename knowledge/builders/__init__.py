"""Build the domain knowledge graphs (finance, medical, movies) from the open data sets in data/datasets.

Each builder is deterministic and idempotent: the same input files give a byte-identical Turtle file.
``build(domain, datasets_dir, out_dir)`` writes ``<out_dir>/<domain>.ttl`` atomically.
"""
from __future__ import annotations

import csv
import importlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from kgfusion.core.errors import ConfigError, DataError
from kgfusion.knowledge.graph import KnowledgeGraph, write_turtle

log = logging.getLogger(__name__)

DOMAINS = ("finance", "medical", "movies")
# Turtle files above this size are written gzip-compressed (.ttl.gz) to keep the repository small.
MAX_PLAIN_BYTES = 25 * 1024 * 1024


def read_table(path: Path, required: Sequence[str], delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV/TSV as dicts of stripped strings; DataError if the file or a column is missing."""
    if not path.is_file():
        raise DataError(f"Data file not found: {path}. Copy the data set there or pass --datasets DIR.")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError(f"{path}: missing column(s) {missing}; found {header}. Use the upstream file layout.")
            return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc}); re-save the file as UTF-8.") from exc
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV near line {exc.args}: fix the quoting.") from exc


def slug(text: str) -> str:
    """URI-safe lowercase slug: "Information Technology" -> "information-technology"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def uri_part(text: str) -> str:
    """Percent-encode text for use after ``kgfid:<kind>/`` ("based on a book" -> "based%20on%20a%20book")."""
    return quote(text, safe="-._~")


def _builder(domain: str) -> Callable[[Path], KnowledgeGraph]:
    if domain not in DOMAINS:
        raise ConfigError(f"Unknown knowledge-graph domain {domain!r}; choose one of {', '.join(DOMAINS)}.")
    module = importlib.import_module(f"kgfusion.knowledge.builders.{domain}")
    return getattr(module, f"build_{domain}_graph")


def build_graph(domain: str, datasets_dir: str | Path) -> KnowledgeGraph:
    """Build one domain graph in memory (``kg.build_report`` holds the row counts)."""
    return _builder(domain)(Path(datasets_dir))


def output_path(domain: str, out_dir: str | Path) -> Path:
    """The file a domain graph lives in: ``<out_dir>/<domain>.ttl`` or ``.ttl.gz`` if that one exists."""
    plain = Path(out_dir) / f"{domain}.ttl"
    gz = plain.with_name(plain.name + ".gz")
    return gz if gz.is_file() and not plain.is_file() else plain


@dataclass(frozen=True)
class BuildResult:
    """What one build wrote: the file, its size, the builder's row counts, graph stats and the time taken."""

    domain: str
    path: Path
    bytes: int
    seconds: float
    report: dict[str, int]
    stats: dict[str, object]


def build_with_report(domain: str, datasets_dir: str | Path, out_dir: str | Path) -> BuildResult:
    """Build ``domain``, write it atomically to ``out_dir`` and return what happened.

    Graphs larger than 25 MB are written as ``<domain>.ttl.gz``; a stale file of the other form is removed.
    """
    start = time.perf_counter()
    kg = build_graph(domain, datasets_dir)
    text = kg.to_turtle()
    plain = Path(out_dir) / f"{domain}.ttl"
    gz = plain.with_name(plain.name + ".gz")
    target, stale = (gz, plain) if len(text.encode("utf-8")) > MAX_PLAIN_BYTES else (plain, gz)
    write_turtle(target, text)
    stale.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    log.info("built %s: %d triples -> %s in %.1f s", domain, len(kg), target, seconds)
    return BuildResult(domain, target, target.stat().st_size, seconds, dict(kg.build_report), kg.stats())


def build(domain: str, datasets_dir: str | Path, out_dir: str | Path) -> Path:
    """Build ``domain`` from ``datasets_dir`` and write ``<out_dir>/<domain>.ttl``; returns the path."""
    return build_with_report(domain, datasets_dir, out_dir).path
