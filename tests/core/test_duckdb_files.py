"""DuckDB connections: the memory cap applies, a bad cap and an unreadable file give one-line errors."""
from __future__ import annotations

import pytest

from kgfusion.core.duckdb_files import MEMORY_LIMIT_ENV, connect
from kgfusion.core.errors import ConfigError, DataError


def _limit_mib(con) -> float:
    text = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # e.g. "488.2 MiB"
    number, unit = text.split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


def test_default_cap_is_far_below_duckdbs_default(monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    con = connect(":memory:")
    assert 400 < _limit_mib(con) < 600  # 512MB, not 80 % of RAM


def test_cap_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "2GB")
    con = connect(tmp_path / "a.duckdb")
    assert 1800 < _limit_mib(con) < 2000


def test_bad_cap_names_the_variable(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ConfigError, match=f"{MEMORY_LIMIT_ENV}='lots'.*512MB"):
        connect(":memory:")


def test_not_a_database_is_a_data_error(tmp_path):
    bad = tmp_path / "notes.duckdb"
    bad.write_text("not a database\n" * 100)
    with pytest.raises(DataError, match="notes.duckdb: cannot open the DuckDB file"):
        connect(bad)


def test_no_progress_bar_on_stdout():
    # a bar drawn by a slow query would corrupt a command's --json output (seen on a 1M-item monitor run)
    con = connect(":memory:")
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
