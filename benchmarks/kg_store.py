"""Knowledge-graph store benchmark: rdflib in memory vs a persistent Oxigraph store (``--kg-store``).

On the medical graph (data/kg/medical.ttl), each configuration runs in its own fresh Python process so
load times are cold and memory is that process's own:

- memory:          KnowledgeGraph.load(ttl) parses the Turtle with rdflib (every run pays this)
- oxigraph build:  the first ``--kg-store oxigraph:DIR`` run (empty DIR): Turtle -> on-disk store
- oxigraph reuse:  a later run: the fingerprint matches, the store is opened read-only

Per configuration: load seconds, resident memory after loading (VmRSS, MB; and the import-only
baseline), and the latency of the example queries of knowledge/SCHEMA.md and the Knowledge page
(median of ``--repeats`` after one warm-up), both as users run them (``timeout_s`` = 5 s: a forked,
killable worker per query) and in-process (``timeout_s=None``). The answers of both backends are
compared (sorted rows). Writes benchmarks/results/kg_store.json and prints a table.

Run: python benchmarks/kg_store.py            (about 1 minute on 2 CPU cores)
     python benchmarks/kg_store.py --graph data/kg/movies.ttl --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The medical example queries (knowledge/SCHEMA.md; apps/ui/kgview.py) plus one aggregate.
QUERIES: dict[str, str] = {
    "drugs_for_t2d": """SELECT ?drug ?name WHERE {
  ?drug kgf:treats ?d ; rdfs:label ?name . ?d rdfs:label "type 2 diabetes mellitus" .
} ORDER BY ?name""",
    "mesh_to_disease": 'SELECT ?disease ?label WHERE { ?disease kgf:xref "MESH:D003924" ; rdfs:label ?label }',
    "symptoms": "SELECT ?symptom WHERE { obo:DOID_0050012 kgf:hasSymptom/rdfs:label ?symptom }",
    "ancestors": "SELECT ?ancestor WHERE { obo:DOID_9352 rdfs:subClassOf+ ?a . ?a rdfs:label ?ancestor }",
    "breast_cancer_drugs": "SELECT ?drug ?name WHERE { ?drug kgf:treats obo:DOID_1612 ; rdfs:label ?name } "
                           "ORDER BY ?name",
    "ask_treats": "ASK { drug:DB00331 kgf:treats obo:DOID_9352 }",
    "most_treated_diseases": "SELECT ?d (COUNT(?x) AS ?n) WHERE { ?x kgf:treats ?d } GROUP BY ?d "
                             "ORDER BY DESC(?n) ?d LIMIT 10",
}


def _rss_mb() -> float:
    """Current resident set size of this process (Linux /proc; else the peak from getrusage)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed_queries(kg, repeats: int, timeout_s: float | None) -> tuple[dict[str, float], dict[str, list]]:
    """Median ms per query (after one warm-up run) and the sorted rows of each."""
    latencies, answers = {}, {}
    for name, sparql in QUERIES.items():
        rows = kg.query(sparql, timeout_s=timeout_s)  # warm-up (page cache, lazily built structures)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            kg.query(sparql, timeout_s=timeout_s)
            times.append((time.perf_counter() - t0) * 1000)
        latencies[name] = round(statistics.median(times), 2)
        answers[name] = sorted(json.dumps(r, sort_keys=True) for r in rows)
    return latencies, answers


def worker(mode: str, graph: Path, store_dir: Path | None, repeats: int) -> dict:
    """One configuration in this (fresh) process; returns its measurements."""
    rss_start = _rss_mb()
    from kgfusion.knowledge.graph import KnowledgeGraph

    if mode == "import":
        import kgfusion.knowledge.oxigraph_store  # noqa: F401

        return {"rss_mb": round(_rss_mb(), 1), "rss_python_mb": round(rss_start, 1)}
    rss_import = _rss_mb()
    store = "memory" if mode == "memory" else f"oxigraph:{store_dir}"
    t0 = time.perf_counter()
    kg = KnowledgeGraph.load(graph, store=store)
    load_s = time.perf_counter() - t0
    out = {"mode": mode, "load_s": round(load_s, 3), "rss_import_mb": round(rss_import, 1),
           "rss_loaded_mb": round(_rss_mb(), 1), "triples": len(kg)}
    info = getattr(kg, "store_info", None)
    if info is not None:
        out["reused"] = info.reused
        out["store_disk_mb"] = round(sum(f.stat().st_size for f in info.store_path.rglob("*") if f.is_file()) / 1e6,
                                     2)
    t0 = time.perf_counter()
    kg.lookup("type 2 diabetes mellitus")
    out["lookup_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    out["query_ms"], answers = _timed_queries(kg, repeats, timeout_s=5.0)
    out["query_inproc_ms"], _ = _timed_queries(kg, repeats, timeout_s=None)
    out["answers"] = answers
    out["rss_after_queries_mb"] = round(_rss_mb(), 1)
    return out


def _spawn(mode: str, graph: Path, store_dir: Path | None, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--graph", str(graph), "--repeats", str(repeats)]
    if store_dir is not None:
        cmd += ["--store-dir", str(store_dir)]
    done = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, default=ROOT / "data" / "kg" / "medical.ttl")
    parser.add_argument("--repeats", type=int, default=7, help="Timed runs per query (median reported).")
    parser.add_argument("--out", type=Path, default=None, help="Results JSON [benchmarks/results/kg_store.json]")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.graph, args.store_dir, args.repeats)))
        return

    graph = args.graph.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="kg-store-bench-"))
    try:
        base = _spawn("import", graph, None, args.repeats)
        memory = _spawn("memory", graph, None, args.repeats)
        build = _spawn("oxigraph", graph, tmp / "store", args.repeats)
        reuse = _spawn("oxigraph", graph, tmp / "store", args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if build.get("reused") or not reuse.get("reused"):
        raise SystemExit(f"unexpected store state: first run reused={build.get('reused')}, "
                         f"second run reused={reuse.get('reused')}")
    match = {q: memory["answers"][q] == reuse["answers"][q] == build["answers"][q] for q in QUERIES}

    def delta(run: dict) -> float:  # memory the loaded graph adds over importing the code
        return round(run["rss_loaded_mb"] - run["rss_import_mb"], 1)

    result = {
        "graph": str(graph.relative_to(ROOT) if graph.is_relative_to(ROOT) else graph),
        "graph_mb": round(graph.stat().st_size / 1e6, 2),
        "triples": memory["triples"],
        "repeats": args.repeats,
        "memory_load_s": memory["load_s"],
        "oxigraph_build_s": build["load_s"],
        "oxigraph_reuse_s": reuse["load_s"],
        "reuse_speedup_vs_memory": round(memory["load_s"] / max(reuse["load_s"], 1e-6), 1),
        "store_disk_mb": reuse.get("store_disk_mb"),
        "rss_import_only_mb": base["rss_mb"],
        "memory_rss_mb": memory["rss_loaded_mb"],
        "oxigraph_rss_mb": reuse["rss_loaded_mb"],
        "memory_graph_rss_mb": delta(memory),
        "oxigraph_graph_rss_mb": delta(reuse),
        "memory_lookup_ms": memory["lookup_ms"],
        "oxigraph_lookup_ms": reuse["lookup_ms"],
        "memory_query_ms": memory["query_ms"],
        "oxigraph_query_ms": reuse["query_ms"],
        "memory_query_inproc_ms": memory["query_inproc_ms"],
        "oxigraph_query_inproc_ms": reuse["query_inproc_ms"],
        "memory_query_ms_total": round(sum(memory["query_ms"].values()), 1),
        "oxigraph_query_ms_total": round(sum(reuse["query_ms"].values()), 1),
        "answers_match": all(match.values()),
        "answers_match_per_query": match,
        "rows_per_query": {q: len(memory["answers"][q]) for q in QUERIES},
        "query_note": "query_ms: as users run them (5 s limit: a forked worker per query); "
                      "query_inproc_ms: timeout_s=None, evaluated in-process",
        "cpu_count": os.cpu_count(),
    }
    out = args.out or Path(os.environ.get("KGFUSION_RESULTS", ROOT / "benchmarks" / "results")) / "kg_store.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")

    print(f"{result['graph']}: {result['triples']:,} triples, {result['graph_mb']} MB Turtle; "
          f"store on disk {result['store_disk_mb']} MB")
    print(f"{'':28}{'rdflib memory':>16}{'oxigraph build':>16}{'oxigraph reuse':>16}")
    print(f"{'load (s)':28}{memory['load_s']:>16.3f}{build['load_s']:>16.3f}{reuse['load_s']:>16.3f}")
    print(f"{'RSS after load (MB)':28}{memory['rss_loaded_mb']:>16.1f}{build['rss_loaded_mb']:>16.1f}"
          f"{reuse['rss_loaded_mb']:>16.1f}")
    print(f"{'  of which the graph (MB)':28}{delta(memory):>16.1f}{delta(build):>16.1f}{delta(reuse):>16.1f}")
    print(f"{'lookup (ms)':28}{memory['lookup_ms']:>16.1f}{build['lookup_ms']:>16.1f}{reuse['lookup_ms']:>16.1f}")
    print(f"query latency, median ms (5 s limit / in-process){'':4}rows  match")
    for q in QUERIES:
        cells = [f"{r['query_ms'][q]:.1f}/{r['query_inproc_ms'][q]:.1f}" for r in (memory, build, reuse)]
        print(f"  {q:26}{cells[0]:>16}{cells[1]:>16}{cells[2]:>16}{result['rows_per_query'][q]:>6}  "
              f"{'yes' if match[q] else 'NO'}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
