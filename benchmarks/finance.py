"""Finance benchmark: sentiment accuracy, end-to-end monitor throughput, linking precision, event study.

    python benchmarks/finance.py                 # all numbers -> benchmarks/results/finance.json
    python benchmarks/finance.py --draw-links    # (re)draw the 200-item linking sample to annotate

Sentiment: the shipped bundle (data/models/finsent-full) with the backend the apps use (``auto``: ONNX int8,
the only model it ships) on the held-out PhraseBank 50-agree test split, its all-agree subset and the
Twitter Financial News test split (`kgfusion finance evaluate`), model alone and fused with the finance
rules; the fp32 figures of a bundle that no longer ships fp32 come from its metrics.json (measured on the
same test sets before the torch weights were stripped). ``macro_f1`` is the PhraseBank 50-agree macro-F1 (model alone).
Throughput: `FinanceMonitor.monitor` end to end (read, score, link, store in DuckDB, series, alerts) on
the first N items of StockNet's raw tweets into a fresh database, for each backend the bundle ships.
Linking precision: share of links marked correct in benchmarks/annotations/finance_links_200.csv
(hand-checked; method in its header). Event study: descriptive next-day returns after company alerts.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from kgfusion.core.fileio import atomic_write_json  # noqa: E402

FEED = ROOT / "data" / "datasets" / "stocknet" / "stocknet_raw_tweets.jsonl.gz"
PRICES = ROOT / "data" / "datasets" / "stocknet" / "stocknet_prices_raw.csv.gz"
BUNDLE = ROOT / "data" / "models" / "finsent-full"
TOPICS_BUNDLE = ROOT / "data" / "models" / "finsent-topics"
ANNOTATIONS = ROOT / "benchmarks" / "annotations" / "finance_links_200.csv"
RESULTS = ROOT / "benchmarks" / "results" / "finance.json"
SAMPLE_SEED = 2026
HEADER = """# Linking precision sample for kgfusion finance (benchmarks/finance.py --draw-links).
# Method: StockNet raw tweets read with apps.finance.ingest (duplicates removed), linked with
# apps.finance.linking.CompanyLinker (default FinanceConfig, packaged finance rules, data/kg/finance.ttl,
# no fuzzy linker); 200 items with at least one link drawn with random.Random(2026); one row per link.
# Annotator: the kgfusion finance helper (one person), reading each tweet. correct=1 when the tweet
# refers to that company (including as an analyst/bank or through its former name/ticker, e.g. $FB ->
# Meta Platforms); correct=0 when the matched string means something else or the company is not
# mentioned (a feed_hint link is correct only when the tweet is about the hinted company).
# Precision = sum(correct) / rows. Columns: item_id, match, surface, ticker, company, correct, note, text.
"""


def draw_links(n: int = 200) -> Path:
    from kgfusion.apps.finance.config import FinanceConfig
    from kgfusion.apps.finance.ingest import read_feed
    from kgfusion.apps.finance.linking import CompanyCatalog, CompanyLinker
    from kgfusion.knowledge.graph import KnowledgeGraph
    from kgfusion.knowledge.rules import load_domain_rules

    cfg = FinanceConfig()
    feed = read_feed(FEED, cfg)
    linker = CompanyLinker(CompanyCatalog.from_graph(KnowledgeGraph.load(ROOT / "data" / "kg" / "finance.ttl"), cfg),
                           load_domain_rules("finance"), cfg)
    linked = [(it, ms) for it in feed.items if (ms := linker.link(it.text, it.ticker_hint))]
    sample = random.Random(SAMPLE_SEED).sample(linked, n)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["item_id", "match", "surface", "ticker", "company", "correct", "note", "text"])
    for it, ms in sample:
        for m in ms:
            w.writerow([it.id, m.match, m.surface, m.company.ticker, m.company.label, "", "",
                        " ".join(it.text.split())])
    ANNOTATIONS.parent.mkdir(parents=True, exist_ok=True)
    ANNOTATIONS.write_text(HEADER + buf.getvalue(), encoding="utf-8")
    print(f"{len(linked)} of {len(feed.items)} items linked; wrote {n} items to {ANNOTATIONS}")
    return ANNOTATIONS


def link_precision(path: Path = ANNOTATIONS) -> dict[str, float]:
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    done = [r for r in rows if r["correct"].strip() in ("0", "1")]
    if not done:
        return {"link_precision": float("nan"), "links_annotated": 0}
    out = {"link_precision": round(sum(int(r["correct"]) for r in done) / len(done), 4),
           "links_annotated": len(done), "items_annotated": len({r["item_id"] for r in done})}
    for kind in sorted({r["match"] for r in done}):
        sub = [r for r in done if r["match"] == kind]
        out[f"link_precision_{kind}"] = round(sum(int(r["correct"]) for r in sub) / len(sub), 4)
        out[f"links_{kind}"] = len(sub)
    return out


def relink_precision(path: Path = ANNOTATIONS) -> dict[str, float]:
    """Precision of the *current* linker on the annotated items: its links judged by the annotation file.

    Links the current linker makes that the file does not judge are counted as ``links_unjudged``.
    """
    from kgfusion.apps.finance.config import FinanceConfig
    from kgfusion.apps.finance.linking import CompanyCatalog, CompanyLinker
    from kgfusion.knowledge.graph import KnowledgeGraph
    from kgfusion.knowledge.rules import load_domain_rules

    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    gold = {(r["item_id"], r["ticker"]): r["correct"] for r in rows if r["correct"] in ("0", "1")}
    texts = {}
    from kgfusion.apps.finance.ingest import read_feed

    wanted = {r["item_id"] for r in rows}
    cfg = FinanceConfig()
    for it in read_feed(FEED, cfg).items:
        if it.id in wanted:
            texts[it.id] = it
    linker = CompanyLinker(CompanyCatalog.from_graph(KnowledgeGraph.load(ROOT / "data" / "kg" / "finance.ttl"), cfg),
                           load_domain_rules("finance"), cfg)
    judged, correct, unjudged = 0, 0, 0
    for iid, it in texts.items():
        for m in linker.link(it.text, it.ticker_hint):
            key = (iid, m.company.ticker)
            if key in gold:
                judged += 1
                correct += gold[key] == "1"
            else:
                unjudged += 1
    return {"link_precision_current": round(correct / judged, 4) if judged else float("nan"),
            "links_current_judged": judged, "links_current_unjudged": unjudged}


def topic_quality(bundle: Path = TOPICS_BUNDLE) -> dict[str, object]:
    """Topic accuracy / macro-F1 on the bundle's held-out topic test split (own seeded split of the topic train
    file, texts of the sentiment sets left out): fused with the n-gram head (what the apps use) and model only."""
    from kgfusion.apps.finance.lexical_head import bundle_split_spec
    from kgfusion.apps.finance.topics import TOPIC_HEAD
    from kgfusion.apps.finance.train import (
        FinanceData,
        evaluate_finsent,
        load_finance_splits,
        load_topic_splits,
    )
    from kgfusion.core.bundle import resolve_backend
    from kgfusion.core.jobs import evaluate_predictor
    from kgfusion.core.predict import Predictor

    spec = bundle_split_spec(bundle)
    fdata = FinanceData.default(ROOT / "data")
    fdata.dev, fdata.test, fdata.seed = spec["dev"], spec["test"], spec["seed"]
    topics = load_topic_splits(fdata, load_finance_splits(fdata))
    backend = resolve_backend(bundle, "auto")
    out: dict[str, object] = {"topic_bundle": bundle.name, "topic_backend": backend, "topic_test_n": len(topics.test)}
    for key, lexical in (("", True), ("model_only_", False)):
        m = evaluate_predictor(Predictor.from_bundle(bundle, backend=backend, lexical=lexical), topics.test,
                               head=TOPIC_HEAD)
        out[f"topic_{key}accuracy"] = round(m["accuracy"], 4)
        out[f"topic_{key}macro_f1"] = round(m["macro_f1"], 4)
    out["topic_note"] = ("topic_accuracy / topic_macro_f1: the topic head fused with the bundle's n-gram head "
                         "(lexical_topic.npz), as the apps score; topic_model_only_*: the encoder's topic head alone")
    sentiment = evaluate_finsent(bundle, FinanceData.default(ROOT / "data"), backend=backend, with_rules=False)
    out.update({f"topics_bundle_{name}_accuracy": m["accuracy"] for name, m in sentiment["model"].items()})
    return out


def monitor_speed(backend: str, limit: int, bundle: Path = BUNDLE) -> tuple[dict[str, float], object, str]:
    from kgfusion.apps.finance.pipeline import FinanceMonitor

    work = Path(tempfile.mkdtemp(prefix="kgf-finance-bench-"))
    db = work / f"{backend}.duckdb"
    t0 = time.perf_counter()
    mon = FinanceMonitor.from_paths(bundle, backend=backend, progress=False)
    load = time.perf_counter() - t0
    s = mon.monitor(FEED, db, limit=limit)
    return ({"items": s.items, "seconds": s.seconds, "items_per_s": round(s.items / s.seconds, 1),
             "score_link_store_items_per_s": s.items_per_s, "load_seconds": round(load, 1),
             "stages": s.stage_seconds, "alerts": s.alerts, "rejected": s.rejected, "linked_items": s.linked_items},
            mon, str(db))


def monitor_from_db(backend: str, db: str) -> tuple[dict[str, float], object, str]:
    """The same numbers as monitor_speed, read back from a finished run's summary in its database."""
    from kgfusion.apps.finance.pipeline import FinanceMonitor
    from kgfusion.apps.finance.store import FinanceStore

    with FinanceStore(db, read_only=True) as store:
        run = store.runs().iloc[-1]
    summary = json.loads(run["summary"])
    if run["backend"] != backend:
        sys.exit(f"{db}: written with backend {run['backend']}, not {backend}")
    mon = FinanceMonitor.from_paths(BUNDLE, backend=backend, progress=False)
    return ({"items": summary["items"], "seconds": summary["seconds"],
             "items_per_s": round(summary["items"] / summary["seconds"], 1),
             "score_link_store_items_per_s": summary["items_per_s"], "load_seconds": None,
             "stages": summary["stage_seconds"], "alerts": summary["alerts"], "rejected": summary["rejected"],
             "linked_items": summary["linked_items"], "run_id": run["run_id"], "finished": str(run["finished"])},
            mon, db)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draw-links", action="store_true", help="Draw the linking sample and exit.")
    ap.add_argument("--monitor-items", type=int, default=0,
                    help="Items of the StockNet feed to monitor (0 = the whole feed, ~96k items).")
    ap.add_argument("--backends", default="onnx-int8,int8,fp32",
                    help="Monitor backends to time, comma-separated; the first is the headline.")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-topics", action="store_true", help="No topic bundle quality or monitor figures.")
    ap.add_argument("--from-dbs", default="",
                    help="backend=PATH,...: read the monitor numbers from finished runs' databases "
                         "(e.g. after the report step failed) instead of monitoring again")
    args = ap.parse_args()
    if args.draw_links:
        draw_links()
        return
    import torch

    torch.set_num_threads(2)
    from kgfusion.apps.finance.train import FinanceData, evaluate_finsent

    res: dict[str, object] = {}
    t0 = time.perf_counter()
    from kgfusion.core.bundle import available_backends, resolve_backend

    shipped = available_backends(BUNDLE)
    app_backend = resolve_backend(BUNDLE, "auto")
    res["sentiment_backend"] = app_backend
    ev = evaluate_finsent(BUNDLE, FinanceData.default(ROOT / "data"), backend=app_backend, with_rules=True)
    for kind in ("model", "fused"):
        prefix = "" if kind == "model" else "fused_"
        for name, m in ev[kind].items():
            res[f"{prefix}{name}_accuracy"] = m["accuracy"]
            res[f"{prefix}{name}_macro_f1"] = m["macro_f1"]
            res[f"{prefix}{name}_n"] = m["n"]
    res["macro_f1"] = res["phrasebank50_macro_f1"]
    res["finbert_published_accuracy"] = {"phrasebank50": 0.86, "phrasebank_allagree": 0.97}
    if app_backend == "onnx-int8":
        for name, m in ev["model"].items():
            res[f"onnx_int8_{name}_accuracy"] = m["accuracy"]
    elif "onnx-int8" in shipped:
        onnx = evaluate_finsent(BUNDLE, FinanceData.default(ROOT / "data"), backend="onnx-int8", with_rules=False)
        for name, m in onnx["model"].items():
            res[f"onnx_int8_{name}_accuracy"] = m["accuracy"]
    if "fp32" in shipped:
        fp32 = ev if app_backend == "fp32" else evaluate_finsent(BUNDLE, FinanceData.default(ROOT / "data"),
                                                                 backend="fp32", with_rules=False)
        res.update({f"fp32_{name}_accuracy": m["accuracy"] for name, m in fp32["model"].items()})
    else:  # measured by the recipe on the same test sets before the torch weights were stripped
        bundle_metrics = json.loads((BUNDLE / "metrics.json").read_text(encoding="utf-8"))
        res.update({f"fp32_{name}_accuracy": bundle_metrics[f"{name}_accuracy"] for name in ev["model"]
                    if f"{name}_accuracy" in bundle_metrics})
        res["fp32_source"] = "bundle metrics.json (fp32 before stripping)"
    res.update({f"{name}_minus_fp32_points": round(100 * (res[f"{name}_accuracy"] - res[f"fp32_{name}_accuracy"]), 2)
                for name in ev["model"] if f"fp32_{name}_accuracy" in res})
    res["eval_seconds"] = round(time.perf_counter() - t0, 1)
    if not args.skip_topics:
        res.update(topic_quality())
    res.update(link_precision())
    res.update(relink_precision())
    res["link_precision_note"] = (
        "link_precision: all links of the 200 items as drawn (linker at drawing time: feed ticker used as a "
        "fallback link). link_precision_current: the shipped linker re-run on the same items, judged by the same "
        "file; its changes (feed ticker only confirms, truncated cashtags skipped, NI ambiguous) were made "
        "after reading this sample, so it is optimistic")
    if not args.skip_speed:
        backends = [b.strip() for b in args.backends.split(",") if b.strip() in shipped]
        details, first = {}, None
        reuse = dict(pair.split("=", 1) for pair in args.from_dbs.split(",") if pair)
        for backend in backends:
            if backend in reuse:
                details[backend], m, d = monitor_from_db(backend, reuse[backend])
            else:
                details[backend], m, d = monitor_speed(backend, args.monitor_items or None)
            print(f"monitor {backend}: {details[backend]['items_per_s']} items/s over {details[backend]['items']} items")
            if first is None:
                first, mon, db = backend, m, d
                if not args.skip_topics:  # right after the headline run, same backend and feed: the ratio
                    from kgfusion.core.bundle import available_backends as shipped_by

                    if backend in shipped_by(TOPICS_BUNDLE):
                        topic_run, _, _ = monitor_speed(backend, args.monitor_items or None, TOPICS_BUNDLE)
                        res["monitor_items_per_s_with_topics"] = topic_run["items_per_s"]
                        res["monitor_with_topics_details"] = topic_run
                        print(f"monitor {backend} with topics: {topic_run['items_per_s']} items/s")
        res["monitor_backend"] = first
        res["monitor_items_per_s"] = details[first]["items_per_s"]
        for backend, d in details.items():
            res[f"monitor_items_per_s_{backend.replace('-', '_')}"] = d["items_per_s"]
        if "fp32" in details:
            res["monitor_speedup_vs_fp32"] = round(details[first]["items_per_s"] / details["fp32"]["items_per_s"], 2)
        res["monitor_items_measured"] = details[first]["items"]
        scope = f"first {args.monitor_items} items" if args.monitor_items else "the whole feed"
        res["monitor_note"] = (f"{scope} of StockNet's raw tweets (96,337 items after de-duplication), end to end "
                               "(read, score, link, store in a fresh DuckDB file, series and alerts), 2 CPU cores")
        res["monitor_details"] = details
        if "monitor_items_per_s_with_topics" in res:
            res["monitor_topics_vs_sentiment_only"] = round(res["monitor_items_per_s_with_topics"]
                                                            / res["monitor_items_per_s"], 3)
        from kgfusion.apps.finance.eventstudy import next_day_returns, read_prices, summarize

        alerts = mon.alerts(db, level="company")
        events = next_day_returns(alerts, read_prices(PRICES),
                                  lambda t: (c.uri if (c := mon.catalog.by_ticker.get(t)) else None))
        res["event_study"] = summarize(events) | {"company_alerts": len(alerts)}
    # LoRA vs full fine-tune and the other recipes: benchmarks/results/training.json (benchmarks/training.py)
    atomic_write_json(RESULTS, json.loads(json.dumps(res, default=str)))
    keys = ["sentiment_backend", "phrasebank50_accuracy", "phrasebank50_minus_fp32_points",
            "phrasebank_allagree_minus_fp32_points", "twitter_minus_fp32_points", "phrasebank_allagree_accuracy", "twitter_accuracy", "macro_f1",
            "twitter_macro_f1", "fused_phrasebank50_accuracy", "fused_twitter_accuracy", "link_precision",
            "link_precision_current",
            "onnx_int8_phrasebank50_accuracy", "monitor_backend",
            "monitor_items_per_s", "monitor_items_per_s_int8", "monitor_items_per_s_fp32", "monitor_speedup_vs_fp32",
            "monitor_items_measured", "monitor_items_per_s_with_topics", "monitor_topics_vs_sentiment_only",
            "topic_accuracy", "topic_macro_f1", "topic_model_only_accuracy", "topic_model_only_macro_f1",
            "topics_bundle_phrasebank50_accuracy", "topics_bundle_phrasebank_allagree_accuracy",
            "topics_bundle_twitter_accuracy"]
    print(f"{'metric':<34} value")
    for k in keys:
        if k in res:
            print(f"{k:<34} {res[k]}")
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
