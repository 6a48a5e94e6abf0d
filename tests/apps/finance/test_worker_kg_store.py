"""A Ray worker has no click context: the monitor's worker source carries the driver's --kg-store."""
from __future__ import annotations

import shutil

import pytest


def test_worker_source_reads_the_graph_where_the_driver_does(tiny_bundle, tmp_path):
    pytest.importorskip("pyoxigraph")
    from kgfusion.apps.finance.batch import ModelSource
    from kgfusion.apps.finance.pipeline import FinanceMonitor

    store_dir = tmp_path / "kg"
    mon = FinanceMonitor.from_paths(tiny_bundle, backend="fp32", kg_store=f"oxigraph:{store_dir}", progress=False)
    kwargs = mon.source.to_kwargs()
    assert kwargs["kg_store"] == f"oxigraph:{store_dir}"
    shutil.rmtree(store_dir)
    worker = ModelSource(**kwargs).load()  # what batch.monitor_worker does on each Ray actor
    assert (store_dir / "kgfusion-kg-store.json").is_file()  # it rebuilt the store, not an in-memory graph
    assert len(worker.catalog.companies) == len(mon.catalog.companies) > 0

    plain = FinanceMonitor.from_paths(tiny_bundle, backend="fp32", progress=False)
    assert plain.source.to_kwargs()["kg_store"] == "memory"
