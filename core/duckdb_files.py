"""Opening DuckDB files the same way everywhere: one import error message, one memory cap.

DuckDB's default buffer pool is 80 % of RAM, so a monitor's resident memory grew with its store (it caches
what it reads and writes). ``connect`` caps it at ``KGFUSION_DUCKDB_MEMORY_LIMIT`` (default 512MB; any
DuckDB size such as "2GB"); past the cap DuckDB spills to a temporary directory beside the file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kgfusion.core.errors import ConfigError, DataError, KgfusionError

MEMORY_LIMIT_ENV = "KGFUSION_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "512MB"


def duckdb_module() -> Any:
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise KgfusionError("duckdb is not installed: pip install duckdb") from exc
    return duckdb


def memory_limit() -> str:
    return os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT


def connect(path: str | Path, *, read_only: bool = False, what: str = "DuckDB file") -> Any:
    """A connection to ``path`` (or ":memory:") with the memory cap; a one-line DataError when the file is
    locked by another writer or unreadable, a ConfigError for a bad cap."""
    duckdb = duckdb_module()
    limit = memory_limit()
    try:
        con = duckdb.connect(str(path), read_only=read_only, config={"memory_limit": limit})
    except duckdb.Error as exc:
        if "memory must" in str(exc).lower():  # DuckDB's parser error for a size it cannot read
            raise ConfigError(f"{MEMORY_LIMIT_ENV}={limit!r} is not a DuckDB memory size; use e.g. 512MB or "
                              "2GB") from exc
        raise DataError(f"{path}: cannot open the {what} ({exc}); is another process writing it?") from exc
    # DuckDB draws a progress bar on stdout for queries over 2 s, which corrupts a command's --json output
    con.execute("SET enable_progress_bar = false")
    return con
