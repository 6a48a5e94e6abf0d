"""Entity-linking benchmark: NCBI-disease DEVEL mentions -> Disease Ontology concepts with real MiniLM.

A prediction is correct when the predicted DOID's xrefs contain any gold id of the mention (MeSH
"D…"/"C…"/"MESH:…", OMIM "OMIM:n"; "|" alternatives and "+" composite parts all count). Metrics are
over *covered* mentions (some gold id is an xref of some DO concept); ``coverage`` is that share.
The linker runs with threshold -1 (always links) so recall measures ranking, not abstention.

Configurations: {no train aliases, NCBI TRAIN mentions added as aliases of the DO concepts their
gold ids map to} x {exact flat index, HNSW}. HNSW efSearch is the smallest of a grid whose top-10
overlap with the exact index is >= 0.99. Writes benchmarks/results/entity_linking.json (flat
metric -> number; the top-level recall/qps keys are the best configuration, printed as "config").

Linker speed (``--mode speed``, also part of the default ``--mode all``): every NCBI devel mention,
repeats included, through one ``Linker.link_many`` call on the flat index with the TRAIN aliases, as
a user runs it (threshold -1, default combine). Three linkers, each with a cold result cache:
the reference path (every mention encoded by the fp32 MiniLM, ``string_first=False``, no cache),
the fast path with the fp32 encoder, and the fast path with an int8 query encoder (ONNX Runtime;
``--int8-backend torch`` for torch dynamic int8). Build times (index, aliases, int8 encoder) are
reported apart from linking. The ``linker_*`` keys are merged into entity_linking.json and into
benchmarks/results/scale.json (other keys of those files are left alone).

Run: python benchmarks/entity_linking.py   (about 2-4 minutes on 2 CPU cores)
     python benchmarks/entity_linking.py --mode speed --cache /tmp/el-index   (speed only)
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from kgfusion.knowledge.textnorm import normalize_xref  # noqa: E402

HNSW_M = 32
EF_GRID = (64, 128, 256, 512)


@dataclass(frozen=True)
class Mention:
    pmid: str
    text: str
    cls: str
    gold: frozenset[str]  # normalised ids, all alternatives and composite parts
    composite: bool


def read_ncbi(path: Path) -> list[Mention]:
    """Mention lines of an NCBI-disease release file: PMID, start, end, text, class, concept ids."""
    mentions: list[Mention] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if len(parts) != 6 or not parts[0].isdigit():
            continue  # title/abstract lines and blank separators
        raw = parts[5].strip()
        if not raw:
            raise SystemExit(f"{path}:{lineno}: mention {parts[3]!r} has no concept id")
        ids = frozenset(normalize_xref(x) for part in raw.split("+") for x in part.split("|") if x.strip())
        mentions.append(Mention(parts[0], parts[3], parts[4], ids, "+" in raw))
    return mentions


def load_disease_records(graph_path: Path, datasets: Path):
    from kgfusion.knowledge import vocab

    if graph_path.is_file():
        from kgfusion.knowledge.graph import KnowledgeGraph

        kg, source = KnowledgeGraph.load(graph_path), str(graph_path)
    else:
        from kgfusion.knowledge.builders.medical import build_medical_graph

        kg, source = build_medical_graph(datasets), f"build_medical_graph({datasets})"
    return kg.entity_records(types=[vocab.DISEASE]), source


def evaluate(linker, mentions: list[Mention], xrefs_of: dict[str, set[str]], k: int = 10) -> dict[str, float]:
    t0 = time.perf_counter()
    results = linker.link_many([m.text for m in mentions], k=k)
    elapsed = time.perf_counter() - t0
    hit1 = hit10 = 0
    kinds = Counter()
    for m, r in zip(mentions, results, strict=True):
        kinds[r.match] += 1
        hit1 += bool(r.uri and xrefs_of.get(r.uri, set()) & m.gold)
        hit10 += any(xrefs_of.get(c.uri, set()) & m.gold for c in r.candidates[:k])
    n = len(mentions)
    out = {"recall_at_1": hit1 / n, "recall_at_10": hit10 / n, "queries_per_s": n / elapsed}
    out.update({f"share_{kind}": kinds[kind] / n for kind in ("exact", "normalized", "ngram", "embedding")})
    return out


def hnsw_overlap(flat, hnsw, vectors: np.ndarray, k: int = 10) -> float:
    a = flat.search_vectors(vectors, k=k)
    b = hnsw.search_vectors(vectors, k=k)
    return float(np.mean([len({c.uri for c in x} & {c.uri for c in y}) / max(1, len(x)) for x, y in zip(a, b, strict=True)]))


def tune_hnsw(flat, vectors: np.ndarray):
    """HNSW copy of ``flat`` with the smallest efSearch in EF_GRID reaching >= 0.99 top-10 overlap."""
    t0 = time.perf_counter()
    hnsw = flat.rebuild("hnsw", hnsw_m=HNSW_M, ef_construction=200)
    build_s = time.perf_counter() - t0
    overlap = 0.0
    for ef in EF_GRID:
        hnsw.set_search_params(ef_search=ef)
        overlap = hnsw_overlap(flat, hnsw, vectors)
        print(f"    HNSW M={HNSW_M} efSearch={ef}: top-10 overlap with exact {overlap:.4f}", flush=True)
        if overlap >= 0.99:
            break
    return hnsw, overlap, int(hnsw.params["ef_search"]), build_s


def train_aliases(train: list[Mention], uris_of_xref: dict[str, set[str]]) -> dict[str, list[str]]:
    """DO uri -> NCBI TRAIN mention texts whose gold ids map to it (composite mentions skipped)."""
    aliases: dict[str, list[str]] = {}
    for m in train:
        if m.composite:
            continue  # "breast and ovarian cancer" names two concepts: no alias for either
        for gid in m.gold:
            for uri in uris_of_xref.get(gid, ()):
                aliases.setdefault(uri, []).append(m.text)
    return {u: list(dict.fromkeys(v)) for u, v in aliases.items()}


def merge_json(path: Path, updates: dict[str, float], drop_other: bool = False,
               keep_prefix: tuple[str, ...] = ()) -> None:
    """Read ``path`` (if any), update only ``updates``' keys, write atomically (core.fileio.update_json locks
    it against other writers). ``drop_other``: keep only old keys starting with one of ``keep_prefix``."""
    from kgfusion.core.fileio import update_json

    def change(current: dict) -> dict:
        if drop_other:
            current = {k: v for k, v in current.items() if keep_prefix and k.startswith(keep_prefix)}
        return current | {k: round(float(v), 6) for k, v in updates.items()}

    try:
        update_json(path, change)
    except ValueError as exc:
        raise SystemExit(f"{path} is not valid JSON ({exc}); fix or delete it, then re-run.") from exc


def int8_encoder(encoder, backend: str, onnx_cache: Path | None, threads: int | None):
    """The int8 query encoder and its build (or cache load) time in seconds."""
    t0 = time.perf_counter()
    int8 = encoder.quantized(backend, cache_dir=onnx_cache, num_threads=threads)
    build_s = time.perf_counter() - t0
    for enc in (encoder, int8):
        enc.encode(["warm up the encoder"])  # first-call allocations are not linking work
    return int8, build_s


def int8_recall_no_aliases(flat, encoder, int8, devel: list[Mention], xrefs_of: dict[str, set[str]]) -> dict[str, float]:
    """Recall@1 of the fast path, fp32 vs int8 queries, on the index *without* TRAIN aliases, where most
    mentions need an embedding (the hard case for the int8 encoder)."""
    from kgfusion.knowledge.linker import Linker

    known = {x for xs in xrefs_of.values() for x in xs}
    covered = [m for m in devel if m.gold & known]
    out: dict[str, float] = {}
    for label, query_encoder in (("fp32", encoder), ("int8", int8)):
        results = Linker(flat, threshold=-1.0, query_encoder=query_encoder).link_many([m.text for m in covered])
        hit1 = sum(bool(r.uri and xrefs_of.get(r.uri, set()) & m.gold) for m, r in zip(covered, results, strict=True))
        out[f"linker_no_train_aliases_{label}_recall_at_1"] = hit1 / max(1, len(covered))
    out["linker_no_train_aliases_int8_drop_points"] = 100 * (out["linker_no_train_aliases_fp32_recall_at_1"]
                                                             - out["linker_no_train_aliases_int8_recall_at_1"])
    print(f"no TRAIN aliases, fast path: R@1 fp32 {out['linker_no_train_aliases_fp32_recall_at_1']:.4f}, "
          f"int8 {out['linker_no_train_aliases_int8_recall_at_1']:.4f}", flush=True)
    return out


def linker_speed(flat, encoder, int8, devel: list[Mention], xrefs_of: dict[str, set[str]], *,
                 backend: str) -> dict[str, float]:
    """Mentions/s and recall@1 of one ``link_many`` call over all devel mentions: reference vs fast paths."""
    from kgfusion.knowledge.linker import Linker
    from kgfusion.knowledge.textnorm import char_ngrams, normalize

    texts = [m.text for m in devel]
    known = {x for xs in xrefs_of.values() for x in xs}
    covered = [i for i, m in enumerate(devel) if m.gold & known]  # recall over covered mentions, as above
    out: dict[str, float] = {"linker_mentions": len(texts),
                             "linker_unique_mentions": len(set(texts)), "linker_covered_mentions": len(covered)}
    # The reference is the linker before the fast path (legacy_link_many), at the index's batch size.
    runs = (("reference_fp32", encoder, dict(string_first=False, cache_size=0, batch_size=flat.batch_size)),
            ("fast_fp32", None, {}), (f"fast_int8_{backend}", int8, {}))
    print(f"\nlinker speed: {len(texts)} devel mentions ({len(set(texts))} unique) in one link_many call")
    for label, query_encoder, kwargs in runs:
        normalize.cache_clear()  # textnorm's LRU caches would favour later runs
        char_ngrams.cache_clear()
        counted = _CountingEncoder(query_encoder or encoder)
        linker = Linker(flat, threshold=-1.0, query_encoder=counted, **kwargs)
        link = linker.link_many if label != "reference_fp32" else partial(legacy_link_many, linker)
        t0 = time.perf_counter()
        results = link(texts)
        elapsed = time.perf_counter() - t0
        encoded = counted.encoded
        t0 = time.perf_counter()
        link(texts)
        warm = time.perf_counter() - t0
        hit1 = sum(bool(results[i].uri and xrefs_of.get(results[i].uri, set()) & devel[i].gold) for i in covered)
        out[f"linker_{label}_mentions_per_s"] = len(texts) / elapsed
        out[f"linker_{label}_warm_mentions_per_s"] = len(texts) / warm
        out[f"linker_{label}_recall_at_1"] = hit1 / max(1, len(covered))
        out[f"linker_{label}_encoded"] = encoded
        print(f"  {label:<22} {len(texts) / elapsed:>8.1f} mentions/s (cached repeat call {len(texts) / warm:>9.1f}/s)"
              f"  R@1 {hit1 / max(1, len(covered)):.4f}  encoded {encoded}", flush=True)
    fast = f"fast_int8_{backend}"
    out.update({
        "linker_mentions_per_s": out[f"linker_{fast}_mentions_per_s"],
        "linker_recall_at_1": out[f"linker_{fast}_recall_at_1"],
        "linker_fp32_mentions_per_s": out["linker_reference_fp32_mentions_per_s"],
        "linker_fp32_recall_at_1": out["linker_reference_fp32_recall_at_1"],
        "linker_recall_at_1_drop_points": 100 * (out["linker_reference_fp32_recall_at_1"] - out[f"linker_{fast}_recall_at_1"]),
        "linker_speedup_vs_fp32": out[f"linker_{fast}_mentions_per_s"] / out["linker_reference_fp32_mentions_per_s"],
    })
    return out


def legacy_link_many(linker, texts: list[str], k: int = 10):
    """``Linker.link_many`` as it was before the fast path: every mention encoded (repeats too), one
    FAISS search, each mention scored by ``_link_one`` (which finds its string matches itself)."""
    from kgfusion.knowledge.linker import LinkResult

    live = [i for i, m in enumerate(texts) if m.strip()]
    results = [LinkResult(m, None, None, 0.0, "none") for m in texts]
    vectors = linker._encode([texts[i] for i in live])
    retrieved = linker.index.search_vectors(vectors, k=max(k, linker.fetch_k))
    for row, i in enumerate(live):
        results[i] = linker._link_one(texts[i], vectors[row], retrieved[row], None, k)
    return results


class _CountingEncoder:
    """Wraps a query encoder to count the texts it encodes (how many mentions needed an embedding)."""

    def __init__(self, inner) -> None:
        self.inner, self.dim, self.encoded = inner, inner.dim, 0

    def encode(self, texts, batch_size: int = 64):
        self.encoded += len(texts)
        return self.inner.encode(texts, batch_size=batch_size)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=ROOT / "data" / "datasets")
    ap.add_argument("--graph", type=Path, default=ROOT / "data" / "kg" / "medical.ttl")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "entity_linking.json")
    ap.add_argument("--limit", type=int, default=0, help="Use only the first N devel mentions (smoke runs).")
    ap.add_argument("--cache", type=Path, default=None,
                    help="Reuse/save the flat name index here (skips re-embedding the DO names on re-runs).")
    ap.add_argument("--errors", type=Path, default=None, help="Write the wrong no-alias top-1 links here (TSV).")
    ap.add_argument("--mode", choices=("all", "quality", "speed"), default="all",
                    help="quality: recall of the configurations; speed: linker mentions/s; all: both.")
    ap.add_argument("--int8-backend", choices=("onnx", "torch"), default="onnx", help="Query encoder of the fast path.")
    ap.add_argument("--onnx-cache", type=Path, default=None,
                    help="Keep the int8 ONNX query encoder here (default: beside --cache, else rebuilt).")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: torch's).")
    ap.add_argument("--scale-out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    args = ap.parse_args(argv)

    from kgfusion.core.embed import Embedder
    from kgfusion.knowledge.index import EntityIndex
    from kgfusion.knowledge.linker import Linker

    ncbi = args.datasets / "ncbi_disease"
    devel = read_ncbi(ncbi / "NCBIdevelopset_corpus.txt")
    train = read_ncbi(ncbi / "NCBItrainset_corpus.txt")
    if args.limit:
        devel = devel[: args.limit]
    records, source = load_disease_records(args.graph, args.datasets)
    xrefs_of = {r.uri: {normalize_xref(x) for x in r.xrefs} for r in records}
    uris_of_xref: dict[str, set[str]] = {}
    for uri, xs in xrefs_of.items():
        for x in xs:
            uris_of_xref.setdefault(x, set()).add(uri)
    covered = [m for m in devel if any(g in uris_of_xref for g in m.gold)]
    print(f"graph: {source}; {len(records)} DO diseases; devel mentions {len(devel)}, covered {len(covered)} "
          f"({len(covered) / len(devel):.1%}); train mentions {len(train)}", flush=True)

    encoder = Embedder("minilm")
    t0 = time.perf_counter()
    flat = None
    if args.cache and (args.cache / "manifest.json").is_file():
        flat = EntityIndex.load(args.cache, encoder)
        if flat.name_count != sum(len(r.names()) for r in records) or flat.kind != "flat":
            flat = None  # another graph or kind: rebuild
    if flat is None:
        flat = EntityIndex(records, encoder, kind="flat", batch_size=256)
        if args.cache:
            flat.save(args.cache)
        built = True
    else:
        built = False
    index_build_s = time.perf_counter() - t0
    # A load from --cache is not a build: it gets its own key and the last real build time is kept.
    build_key = "index_build_s" if built else "index_load_s"
    print(f"{'embedded' if built else 'loaded'} {flat.name_count} names of {len(flat)} entities in "
          f"{index_build_s:.1f} s", flush=True)

    metrics: dict[str, float] = {
        "devel_mentions": len(devel), "covered_mentions": len(covered), "coverage": len(covered) / len(devel),
        "do_concepts": len(records), build_key: index_build_s,
    }
    speed: dict[str, float] = {}
    if args.mode in ("all", "speed"):
        onnx_cache = args.onnx_cache or (args.cache.with_name(args.cache.name + "-onnx") if args.cache else None)
        int8, int8_build_s = int8_encoder(encoder, args.int8_backend, onnx_cache, args.threads)
        speed = {f"linker_{build_key}": index_build_s, "linker_int8_encoder_build_s": int8_build_s}
        speed.update(int8_recall_no_aliases(flat, encoder, int8, devel, xrefs_of))
    if args.mode == "speed":
        t0 = time.perf_counter()
        speed["linker_train_aliases_added"] = Linker(flat).add_aliases(train_aliases(train, uris_of_xref))
        speed["linker_alias_build_s"] = time.perf_counter() - t0
        speed.update(linker_speed(flat, encoder, int8, devel, xrefs_of, backend=args.int8_backend))
        write_speed(args, speed)
        return 0
    rows: list[tuple[str, dict[str, float]]] = []
    query_vecs = flat.encode([m.text for m in covered])

    # Combination of cosine and n-gram similarity: chosen on the no-alias flat run.
    best_combine: tuple[str, float] = ("max", 0.5)
    best_r1 = -1.0
    for combine, weight in (("max", 0.5), ("weighted", 0.3), ("weighted", 0.5)):
        res = evaluate(Linker(flat, threshold=-1.0, combine=combine, ngram_weight=weight), covered, xrefs_of)
        print(f"  combine={combine} ngram_weight={weight}: R@1 {res['recall_at_1']:.4f} R@10 {res['recall_at_10']:.4f}")
        metrics[f"recall_at_1_no_train_aliases_{combine}{'' if combine == 'max' else f'_{weight}'}"] = res["recall_at_1"]
        if res["recall_at_1"] > best_r1:
            best_r1, best_combine = res["recall_at_1"], (combine, weight)
    combine, weight = best_combine
    if args.errors:
        results = Linker(flat, threshold=-1.0, combine=combine, ngram_weight=weight).link_many([m.text for m in covered])
        with open(args.errors, "w", encoding="utf-8") as fh:
            for m, r in zip(covered, results, strict=True):
                if not (r.uri and xrefs_of.get(r.uri, set()) & m.gold):
                    golds = sorted({flat.record(u).label for g in m.gold for u in uris_of_xref.get(g, ())})
                    fh.write(f"{m.text}\t{r.match}\t{r.label}\t{r.score:.3f}\t{' | '.join(golds)}\n")

    for aliases_label in ("no_train_aliases", "train_aliases"):
        if aliases_label == "train_aliases":
            added = Linker(flat).add_aliases(train_aliases(train, uris_of_xref))  # embeds and adds to flat
            metrics["train_aliases_added"] = added
            print(f"added {added} NCBI TRAIN mentions as aliases ({flat.name_count} names)", flush=True)
        hnsw, overlap, ef, hnsw_build_s = tune_hnsw(flat, query_vecs)
        metrics[f"hnsw_recall_vs_exact_{aliases_label}"] = overlap
        metrics[f"hnsw_ef_search_{aliases_label}"] = ef
        metrics[f"hnsw_build_s_{aliases_label}"] = hnsw_build_s
        for kind, index in (("flat", flat), ("hnsw", hnsw)):
            res = evaluate(Linker(index, threshold=-1.0, combine=combine, ngram_weight=weight), covered, xrefs_of)
            rows.append((f"{aliases_label}/{kind}", res))
            for key, value in res.items():
                metrics[f"{key}_{aliases_label}_{kind}"] = value

    # Best configuration: highest recall@1, then throughput.
    name, best = max(rows, key=lambda r: (round(r[1]["recall_at_1"], 6), r[1]["queries_per_s"]))
    aliases_label = name.split("/")[0]
    metrics.update({
        "recall_at_1": best["recall_at_1"], "recall_at_10": best["recall_at_10"], "queries_per_s": best["queries_per_s"],
        "hnsw_recall_vs_exact": metrics[f"hnsw_recall_vs_exact_{aliases_label}"],
        "recall_at_1_no_train_aliases": metrics["recall_at_1_no_train_aliases_flat"],
        "recall_at_10_no_train_aliases": metrics["recall_at_10_no_train_aliases_flat"],
        "recall_at_1_train_aliases": metrics["recall_at_1_train_aliases_flat"],
        "recall_at_10_train_aliases": metrics["recall_at_10_train_aliases_flat"],
    })

    print(f"\n{'configuration':<26}{'R@1':>8}{'R@10':>8}{'q/s':>9}{'exact':>8}{'norm':>7}{'ngram':>7}{'emb':>7}")
    for label, res in rows:
        print(f"{label:<26}{res['recall_at_1']:>8.4f}{res['recall_at_10']:>8.4f}{res['queries_per_s']:>9.1f}"
              f"{res['share_exact']:>8.3f}{res['share_normalized']:>7.3f}{res['share_ngram']:>7.3f}{res['share_embedding']:>7.3f}")
    print(f"\ncoverage {metrics['coverage']:.4f}; hnsw_recall_vs_exact {metrics['hnsw_recall_vs_exact']:.4f}")
    print(f"config: {name} (encoder minilm, combine={combine}"
          f"{'' if combine == 'max' else f', ngram_weight={weight}'}, threshold=-1, HNSW M={HNSW_M} "
          f"efSearch={int(metrics[f'hnsw_ef_search_{aliases_label}'])})")

    if not args.limit:  # quality keys replace the old ones; linker_* keys of a speed-only run survive
        merge_json(args.out, metrics, drop_other=True,
                   keep_prefix=("linker_",) if built else ("linker_", "index_build_s"))
        print(f"wrote {args.out}")
    if args.mode == "all":  # flat now holds the TRAIN aliases, as in the speed-only mode
        speed["linker_train_aliases_added"] = metrics["train_aliases_added"]
        speed.update(linker_speed(flat, encoder, int8, devel, xrefs_of, backend=args.int8_backend))
        write_speed(args, speed)
    return 0


SCALE_KEYS = ("linker_mentions_per_s", "linker_recall_at_1", "linker_fp32_mentions_per_s",
              "linker_fp32_recall_at_1", "linker_speedup_vs_fp32", "linker_recall_at_1_drop_points")


def write_speed(args, speed: dict[str, float]) -> None:
    print(f"linker: {speed['linker_mentions_per_s']:.1f} mentions/s (reference fp32 "
          f"{speed['linker_fp32_mentions_per_s']:.1f}/s, x{speed['linker_speedup_vs_fp32']:.2f}); R@1 "
          f"{speed['linker_recall_at_1']:.4f} vs {speed['linker_fp32_recall_at_1']:.4f}", flush=True)
    if args.limit:
        return
    merge_json(args.out, speed)
    merge_json(args.scale_out, {k: speed[k] for k in SCALE_KEYS})
    print(f"merged linker_* keys into {args.out} and {args.scale_out}")


if __name__ == "__main__":
    sys.exit(main())
