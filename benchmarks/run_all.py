"""Regenerate every benchmark JSON, then the results table in README.md.

    python benchmarks/run_all.py                 # everything, one benchmark at a time (~1.5-2 h on 2 cores)
    python benchmarks/run_all.py --only finance  # one or more by name (comma-separated)
    python benchmarks/run_all.py --table-only    # just rebuild the README table from the JSON files

Benchmarks run one after another: on a 2-core machine two torch jobs at once stall each other's OpenMP
threads and both numbers become meaningless. The README table sits between the two marker comments.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"

# name -> (script and arguments, rough minutes on an idle 2-core box)
BENCHMARKS: dict[str, tuple[list[str], int]] = {
    "core_speed": (["core_speed.py", "--student-epochs", "2"], 20),
    "entity_linking": (["entity_linking.py"], 10),
    "finance": (["finance.py", "--backends", "int8,fp32"], 45),
    "medical": (["medical.py"], 5),
    "recommend": (["recommend.py"], 25),
    "recommend_scoring": (["recommend_scoring.py"], 5),
    "kg_store": (["kg_store.py"], 1),
    "serve": (["serve.py"], 16),
    "batch_invariance": (["batch_invariance.py"], 1),
}


def run(names: list[str]) -> dict[str, float]:
    """Run the named benchmarks in order; returns seconds per benchmark. Stops at the first failure."""
    seconds = {}
    for name in names:
        args, minutes = BENCHMARKS[name]
        print(f"== {name} (about {minutes} min): python benchmarks/{' '.join(args)}", flush=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / args[0]), *args[1:]], cwd=ROOT, check=True)
        seconds[name] = round(time.perf_counter() - t0, 1)
    return seconds


def _load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _fmt(value, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


Row = tuple[str, str, str, str, str]  # area, metric, ours, anchor, source


def table_rows() -> list[Row]:
    """(area, metric, this machine, published anchor or same-run baseline, JSON file) for the README."""
    core, link, fin = _load("core_speed"), _load("entity_linking"), _load("finance")
    med, rec = _load("medical"), _load("recommend")
    rows: list[Row] = [
        ("sentiment", "PhraseBank 50-agree accuracy (own held-out split)", _fmt(fin.get("phrasebank50_accuracy")),
         "FinBERT 0.86 (paper)", "finance"),
        ("sentiment", "PhraseBank all-agree accuracy", _fmt(fin.get("phrasebank_allagree_accuracy")),
         "FinBERT 0.97 (paper)", "finance"),
        ("sentiment", "Twitter financial news accuracy / macro-F1",
         f"{_fmt(fin.get('twitter_accuracy'))} / {_fmt(fin.get('twitter_macro_f1'))}", "-", "finance"),
        ("sentiment", "shipped ONNX int8 vs fp32, PhraseBank 50-agree (points)",
         _fmt(fin.get("phrasebank50_minus_fp32_points"), "+.2f"),
         f"fp32 {_fmt(fin.get('fp32_phrasebank50_accuracy'))}", "finance"),
        ("core", "ONNX int8 Predictor vs transformers pipeline (items/s ratio)",
         f"{_fmt(core.get('speedup_vs_pipeline'), '.1f')}x", "1.0x, same run", "core_speed"),
        ("core", "accuracy change of ONNX int8 (points)", _fmt(-core["accuracy_drop_points"], "+.2f")
         if "accuracy_drop_points" in core else "n/a", "target: drop <= 1 point", "core_speed"),
        ("finance", "monitor end to end, items/s (the app's backend vs fp32, whole StockNet feed)",
         f"{_fmt(fin.get('monitor_items_per_s'), '.1f')} ({fin.get('monitor_backend', 'n/a')})",
         f"fp32 {_fmt(fin.get('monitor_items_per_s_fp32'), '.1f')}" if "monitor_items_per_s_fp32" in fin
         else "fp32 not shipped", "finance"),
        ("finance", "company linking precision (200 hand-checked tweets)", _fmt(fin.get("link_precision")), "-",
         "finance"),
        ("medical", "BC5CDR devel entity F1 (Chemical / Disease)",
         f"{_fmt(med.get('bc5cdr_devel_f1'))} ({_fmt(med.get('bc5cdr_devel_chemical_f1'))} / "
         f"{_fmt(med.get('bc5cdr_devel_disease_f1'))})", "BioBERT test 0.929 / 0.847", "medical"),
        ("medical", "NCBI-disease devel entity F1, model / fused with gazetteer",
         f"{_fmt(med.get('ncbi_devel_f1'))} / {_fmt(med.get('fused_ncbi_devel_f1'))}",
         "BioBERT 0.891, PubMedBERT 0.878 (test)", "medical"),
        ("medical", "concept linking accuracy (correctly found NCBI devel mentions)",
         _fmt(med.get("ncbi_devel_linking_accuracy")), "-", "medical"),
        ("medical", f"ConText attribute accuracy ({med.get('context_sentences', '?')} sentences we wrote)",
         _fmt(med.get("context_accuracy")), "-", "medical"),
        # the shipped full fine-tunes carry only their ONNX int8 model, so fp32 is timed only when it ships
        ("medical", "notes/s, ONNX int8 (~900-char notes, NER + ConText + linking)",
         _fmt(med.get("notes_per_s_onnx_int8", med.get("notes_per_s_int8")), ".1f"),
         f"fp32 {_fmt(med.get('notes_per_s_fp32'), '.1f')}" if "notes_per_s_fp32" in med else "-", "medical"),
        ("linking", "NCBI devel recall@1 / @10 (Disease Ontology, FAISS)",
         f"{_fmt(link.get('recall_at_1'))} / {_fmt(link.get('recall_at_10'))}", "-", "entity_linking"),
        ("recommend", "NDCG@10 on the validation protocol (kgfusion vs best baseline)",
         _fmt(rec.get("ndcg_at_10"), ".4f"),
         f"{rec.get('best_baseline', 'baseline')} {_fmt(rec.get('best_baseline_ndcg_at_10'), '.4f')}", "recommend"),
        ("recommend", "catalogue coverage (kgfusion vs item-kNN)", _fmt(rec.get("coverage")),
         f"item-kNN {_fmt(rec.get('itemknn_coverage'))}", "recommend"),
        ("recommend", "batch scoring users/s (local vs Ray, 610 users, k=10)",
         _fmt(rec.get("users_per_s_local"), ".1f"), f"Ray {_fmt(rec.get('users_per_s_ray'), '.1f')}", "recommend"),
    ]
    kgs = _load("kg_store")
    rows.append(("knowledge graph", "medical graph: load s / graph RSS MB, Oxigraph store reused (--kg-store)",
                 f"{_fmt(kgs.get('oxigraph_reuse_s'))} / {_fmt(kgs.get('oxigraph_graph_rss_mb'), '.0f')}",
                 f"rdflib in memory {_fmt(kgs.get('memory_load_s'))} / {_fmt(kgs.get('memory_graph_rss_mb'), '.0f')}",
                 "kg_store"))
    srv = _load("serve")
    if srv:
        rows.append(("serve", f"finance items/s, 32 clients x {srv.get('items_per_request', '?')} items per request "
                     "(micro-batching) vs the offline pipeline, same run",
                     f"{_fmt(srv.get('items_per_s_32'), '.1f')} ({_fmt(srv.get('ratio_32_vs_offline'), '.2f')}x)",
                     f"offline {_fmt(srv.get('offline_items_per_s'), '.1f')}; no batching "
                     f"{_fmt(srv.get('items_per_s_32_no_batching'), '.1f')}", "serve"))
    inv = _load("batch_invariance")
    moved = inv.get("per_head", {}).get("sentiment", {}).get("batched_vs_shuffled")
    if moved:  # dynamic int8 activation scales are per batch: an item's label can depend on its neighbours
        per_token = inv.get("modes", {}).get("per-token", {}).get("per_head", {}).get("sentiment", {})
        fixed = per_token.get("batched_vs_shuffled", {}).get("label_flips")
        rows.append(("core", "sentiment labels that change when the same tweets are batched in another order",
                     f"{moved['label_flips']} of {moved['items']}",
                     f"per-token int8: {fixed} ({_fmt(inv.get('per_token_speed_ratio'), '.2f')}x items/s)"
                     if fixed is not None else "0 for a batch-invariant backend", "batch_invariance"))
    return rows


def render_table(rows: list[Row]) -> str:
    lines = ["| area | metric | kgfusion here | anchor | results file |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {m} | {o} | {r} | `benchmarks/results/{s}.json` |" for a, m, o, r, s in rows]
    return "\n".join(lines)


def update_readme(table: str, readme: Path = README, write: Callable[[Path, str], object] | None = None) -> bool:
    """Replace the text between the markers; returns False (and changes nothing) when they are missing."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{table}\n{END}{tail}"
    if write is None:
        from kgfusion.core.fileio import atomic_write_text

        write = atomic_write_text
    write(readme, new)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    ap.add_argument("--table-only", action="store_true", help="do not run anything; rebuild the README table")
    args = ap.parse_args()
    if not args.table_only:
        names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            sys.exit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
        for name, secs in run(names).items():
            print(f"{name}: {secs:.0f} s")
    table = render_table(table_rows())
    print(table)
    if not update_readme(table):
        sys.exit(f"{README}: markers {START} / {END} not found; add them where the table belongs")
    print(f"updated {README}")


if __name__ == "__main__":
    main()
