"""Clinical NER benchmark: model, fusion, linking, ConText and speed, in one run on this machine.

- ``bc5cdr_devel_f1`` / ``ncbi_devel_f1``: strict IOB2 entity F1 (seqeval) on the official devel splits
  (never used for training or early stopping). NCBI uses the NCBI bundle when one is given / found,
  else the BC5CDR model's Disease spans (recorded in ``ncbi_model``).
- ``fused_ncbi_devel_f1``: the same NCBI sentences through the ClinicalExtractor: model + KG gazetteer
  (diseases only, no symptoms: NCBI does not annotate symptoms) + in-text abbreviation definitions, policy
  union (the app default, fixed before looking at devel); other policies are reported beside it.
- ``ncbi_devel_linking_accuracy``: the 100 NCBI devel abstracts (title + abstract) through the extractor;
  among found Disease mentions whose offsets equal a gold mention's and whose gold MeSH/OMIM ids map to
  some DO concept, the share whose concept's xrefs contain a gold id.
- ``context_accuracy``: benchmarks/annotations/context_sentences.tsv (168 hand-written sentences): share
  of sentences whose five ConText attributes all equal the gold ones, plus per-attribute F1;
  ``context_accuracy_first100`` is the same on the original rows 1-100. ``--only context`` runs just this
  part (rules only, no model, about a second) and updates the context keys of the existing results file.
- ``notes_per_s_<backend>``: data/notes/*.txt end to end (model, gazetteer, abbreviations, ConText,
  linking), fp32 / int8 / onnx-int8 in the same run, best of ``--repeats``.

    python benchmarks/medical.py [--bundle data/models/medical-ner-bc5cdr] [--ncbi-bundle DIR]
                                 [--link-encoder minilm|hashing] [--backend onnx-int8] [--only context]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from kgfusion.apps.medical.config import MedicalConfig  # noqa: E402
from kgfusion.apps.medical.extract import ClinicalExtractor, build_extractor  # noqa: E402
from kgfusion.apps.medical.linking import normalize_xref  # noqa: E402
from kgfusion.apps.medical.readers import NoteInput, read_notes  # noqa: E402
from kgfusion.apps.medical.train import PUBLISHED, evaluate_devel  # noqa: E402
from kgfusion.core.bundle import available_backends  # noqa: E402
from kgfusion.core.data import read_conll  # noqa: E402
from kgfusion.core.evaluate import entity_metrics  # noqa: E402
from kgfusion.core.fileio import atomic_write_json  # noqa: E402
from kgfusion.core.predict import Predictor  # noqa: E402

ATTRS = ("negated", "possible", "historical", "family", "hypothetical")


class LabelFilter:
    """A Predictor view that keeps only spans of some labels (BC5CDR model -> NCBI Disease)."""

    task = "token"

    def __init__(self, predictor, keep: set[str]) -> None:
        self.predictor, self.keep, self.labels = predictor, keep, predictor.labels

    def predict_spans(self, texts):
        return [[s for s in spans if s.label in self.keep] for spans in self.predictor.predict_spans(texts)]


def sentence_texts(examples):
    """Tokens joined by single spaces, with each token's character span (as core.jobs does)."""
    texts, word_spans = [], []
    for e in examples:
        pos, spans = 0, []
        for tok in e.tokens:
            spans.append((pos, pos + len(tok)))
            pos += len(tok) + 1
        texts.append(" ".join(e.tokens))
        word_spans.append(spans)
    return texts, word_spans


def spans_to_tags(word_spans, spans) -> list[str]:
    tags = ["O"] * len(word_spans)
    for s, e, label in spans:
        inside = [i for i, (a, b) in enumerate(word_spans) if a >= s and b <= e]
        for k, i in enumerate(inside):
            tags[i] = ("B-" if k == 0 else "I-") + label
    return tags


def fused_f1(extractor: ClinicalExtractor, examples, label: str = "Disease") -> dict:
    texts, word_spans = sentence_texts(examples)
    notes = [NoteInput(f"s{i}", t) for i, t in enumerate(texts)]
    results, rejects = extractor.extract_many(notes)
    assert not rejects, rejects[:3]
    pred = [spans_to_tags(ws, [(m.start, m.end, m.label) for m in r.mentions if m.label == label])
            for ws, r in zip(word_spans, results)]
    m = entity_metrics([list(e.tags) for e in examples], pred)
    sources = Counter("+".join(x.sources) for r in results for x in r.mentions if x.label == label)
    return {"f1": m["f1"], "precision": m["precision"], "recall": m["recall"], "sources": dict(sources)}


def read_ncbi_docs(path: Path):
    """(pmid, text, [(start, end, mention, gold ids)]) per document of an NCBI release file."""
    docs: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "|t|" in line[:20] or "|a|" in line[:20]:
            pmid, kind, body = line.split("|", 2)
            d = docs.setdefault(pmid, {"t": "", "a": "", "m": []})
            d[kind] = body
            continue
        parts = line.split("\t")
        if len(parts) == 6 and parts[0].isdigit():
            ids = {normalize_xref(x) for part in parts[5].split("+") for x in part.split("|") if x.strip()}
            docs[parts[0]]["m"].append((int(parts[1]), int(parts[2]), parts[3], ids))
    return [(pmid, d["t"] + " " + d["a"], d["m"]) for pmid, d in docs.items()]


def linking_accuracy(extractor: ClinicalExtractor, docs) -> dict:
    kb = extractor.linker.kb
    known = {x for r in kb.records for x in r.xrefs}
    results, _ = extractor.extract_many([NoteInput(pmid, text) for pmid, text, _ in docs])
    found = covered = correct = gold_total = 0
    matches = Counter()
    for (_, text, gold), res in zip(docs, results):
        by_span = {(m.start, m.end): m for m in res.mentions if m.label == "Disease"}
        for s, e, mention, ids in gold:
            assert text[s:e] == mention, (text[s:e], mention)
            gold_total += 1
            m = by_span.get((s, e))
            if m is None:
                continue
            found += 1
            if not ids & known:
                continue
            covered += 1
            c = m.concept
            xrefs = set()
            if c is not None:
                xrefs = {f"MESH:{x}" for x in c.codes.get("MESH", [])} | {f"OMIM:{x}" for x in c.codes.get("OMIM", [])}
                matches[c.match] += 1
            else:
                matches["none"] += 1
            correct += bool(xrefs & ids)
    return {"accuracy": correct / covered if covered else 0.0, "covered_found_mentions": covered,
            "found_mentions": found, "gold_mentions": gold_total, "match_kinds": dict(matches)}


def context_accuracy(engine, path: Path, max_id: int | None = None) -> dict:
    """All-attributes accuracy and per-attribute F1 over the annotated sentences (ids <= ``max_id`` only)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.startswith("id\t") or not line.strip():
            continue
        rid, sentence, target, *flags = line.split("\t")
        if max_id is not None and int(rid) > max_id:
            continue
        rows.append((rid, sentence.replace("\\n", "\n"), target, [f == "1" for f in flags]))
    all_ok, per = 0, {a: Counter() for a in ATTRS}
    errors = []
    for rid, sentence, target, gold in rows:
        s = sentence.index(target)
        (res,) = engine.annotate(sentence, [(s, s + len(target), "DISEASE")])
        pred = [bool(getattr(res, a)) for a in ATTRS]
        all_ok += pred == gold
        if pred != gold:
            errors.append({"id": rid, "gold": [a for a, g in zip(ATTRS, gold) if g],
                           "pred": [a for a, p in zip(ATTRS, pred) if p]})
        for a, g, p in zip(ATTRS, gold, pred):
            per[a]["tp" if g and p else "fp" if p else "fn" if g else "tn"] += 1
    out = {"accuracy": all_ok / len(rows), "n": len(rows), "errors": errors}
    for a, c in per.items():
        p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        out[f"{a}_f1"] = 2 * p * r / (p + r) if p + r else 0.0
    return out


CONTEXT_SENTENCES = ROOT / "benchmarks" / "annotations" / "context_sentences.tsv"


def context_results(engine, details: dict) -> dict:
    """The context_* result keys (all sentences and the original first 100); details go to ``details``."""
    c = context_accuracy(engine, CONTEXT_SENTENCES)
    first = context_accuracy(engine, CONTEXT_SENTENCES, max_id=100)
    out = {"context_accuracy": c["accuracy"], "context_sentences": c["n"],
           "context_accuracy_first100": first["accuracy"]}
    out.update({f"context_{a}_f1": c[f"{a}_f1"] for a in ATTRS})
    details["context"] = c
    print(f"ConText: all-attributes accuracy {c['accuracy']:.4f} on {c['n']} sentences "
          f"({first['accuracy']:.4f} on the first 100); "
          + " ".join(f"{a} F1 {c[f'{a}_f1']:.3f}" for a in ATTRS), flush=True)
    return out


def only_context(out_path: Path) -> int:
    """Re-run the ConText part alone and update its keys in ``out_path`` (other keys kept)."""
    from kgfusion.knowledge.context import ConTextEngine
    from kgfusion.knowledge.rules import load_domain_rules

    old = json.loads(out_path.read_text(encoding="utf-8")) if out_path.is_file() else {}
    details = old.get("details", {})
    keys = context_results(ConTextEngine(load_domain_rules("medical")), details)
    merged = {**old, **{k: round(v, 6) if isinstance(v, float) else v for k, v in keys.items()}, "details": details}
    atomic_write_json(out_path, merged)
    return 0


def speed(extractor: ClinicalExtractor, notes, repeats: int) -> float:
    extractor.extract_many(notes[:2])  # warm-up (sessions, caches of the linker stay warm as in a batch run)
    best = 0.0
    for _ in range(repeats):
        extractor.linker._cache.clear() if extractor.linker else None
        t0 = time.perf_counter()
        results, _ = extractor.extract_many(notes)
        best = max(best, len(results) / (time.perf_counter() - t0))
    return best


def find_ncbi_bundle(arg: str | None) -> Path | None:
    """--ncbi-bundle DIR, "none" (use the BC5CDR model's Disease spans), or the first shipped/run bundle."""
    if arg:
        return None if arg == "none" else Path(arg)
    for cand in (ROOT / "data" / "models" / "medical-ner-ncbi", ROOT / "runs" / "medical" / "ncbi-lora"):
        if (cand / "bundle.json").is_file():
            return cand
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=str(ROOT / "data" / "models" / "medical-ner-bc5cdr"))
    ap.add_argument("--ncbi-bundle", default=None, help='NCBI-trained bundle; "none" = BC5CDR Disease spans.')
    ap.add_argument("--backend", default="onnx-int8", choices=["fp32", "int8", "onnx-int8"])
    ap.add_argument("--link-encoder", default="minilm", choices=["minilm", "hashing"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="First N devel sentences/abstracts only (smoke runs).")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "medical.json")
    ap.add_argument("--only", choices=["context"], default=None,
                    help="Run one part only and update its keys in --out (context: the ConText sentences).")
    args = ap.parse_args(argv)
    if args.only == "context":
        return only_context(args.out)
    data = ROOT / "data"
    lim = (lambda xs: xs[: args.limit]) if args.limit else (lambda xs: xs)
    out: dict = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "backend": args.backend,
                 "link_encoder": args.link_encoder, "published_test_f1": PUBLISHED}
    t_start = time.perf_counter()

    bc_devel = lim(read_conll(data / "datasets" / "bc5cdr" / "devel.tsv").examples)
    ncbi_devel = lim(read_conll(data / "datasets" / "ncbi_disease" / "devel.tsv").examples)
    model = Predictor.from_bundle(args.bundle, backend=args.backend)
    m = evaluate_devel(model, bc_devel)
    out["bc5cdr_devel_f1"] = m["f1"]
    out.update({f"bc5cdr_devel_{k.lower()}_f1": v["f1"] for k, v in m["per_type"].items()})
    print(f"BC5CDR devel ({args.backend}): F1 {m['f1']:.4f} "
          + " ".join(f"{k} {v['f1']:.4f}" for k, v in m["per_type"].items()), flush=True)

    ncbi_path = find_ncbi_bundle(args.ncbi_bundle)
    bc_disease = LabelFilter(model, {"Disease"})
    if ncbi_path is not None:
        ncbi_model = Predictor.from_bundle(ncbi_path, backend="fp32" if not (ncbi_path / "model.int8.onnx").is_file()
                                           else args.backend)
        out["ncbi_model"] = ncbi_path.name
    else:
        ncbi_model = bc_disease
        out["ncbi_model"] = f"{Path(args.bundle).name} (its Disease spans; no NCBI-trained bundle used)"
    m = evaluate_devel(ncbi_model, ncbi_devel)
    out["ncbi_devel_f1"] = m["f1"]
    if ncbi_path is not None:
        out["ncbi_devel_f1_bc5cdr_model"] = evaluate_devel(bc_disease, ncbi_devel)["f1"]
    print(f"NCBI devel ({out['ncbi_model']}): F1 {m['f1']:.4f}", flush=True)

    # Fusion on NCBI: the NCBI model's spans (or the BC5CDR Disease spans) + gazetteer (+ abbreviations).
    base_cfg = dict(backend=args.backend, link_encoder=args.link_encoder, gazetteer_symptoms=False,
                    context=False, link=False)
    t0 = time.perf_counter()
    shared = build_extractor(MedicalConfig(**base_cfg), data, predictor=ncbi_model)
    out["extractor_load_s"] = time.perf_counter() - t0
    variants = {"fused": {}, "fused_prefer_model": {"policy": "prefer_model"},
                "fused_prefer_gazetteer": {"policy": "prefer_gazetteer"}, "fused_no_abbreviations": {"abbreviations": False},
                "model_only": {"gazetteer": False, "abbreviations": False}}
    for name, over in variants.items():
        cfg = MedicalConfig(**(base_cfg | over))
        ex = ClinicalExtractor(cfg, ncbi_model, shared._names, None, shared.gazetteer if cfg.gazetteer else None,
                               shared.abbreviations, model_name="model")
        r = fused_f1(ex, ncbi_devel)
        key = f"{name}_ncbi_devel_f1"
        out[key] = r["f1"]
        out.setdefault("details", {})[key] = r
        print(f"  {key}: {r['f1']:.4f} (P {r['precision']:.4f} R {r['recall']:.4f})", flush=True)

    # Linking on the NCBI devel abstracts through the full extractor (model + gazetteer + linker).
    full = build_extractor(MedicalConfig(backend=args.backend, link_encoder=args.link_encoder,
                                         gazetteer_symptoms=False), data, predictor=ncbi_model)
    docs = lim(read_ncbi_docs(data / "datasets" / "ncbi_disease" / "NCBIdevelopset_corpus.txt"))
    r = linking_accuracy(full, docs)
    out["ncbi_devel_linking_accuracy"] = r["accuracy"]
    out["details"]["ncbi_devel_linking"] = r
    print(f"NCBI devel linking: accuracy {r['accuracy']:.4f} over {r['covered_found_mentions']} found and covered "
          f"mentions (of {r['gold_mentions']} gold)", flush=True)

    out.update(context_results(full.context, out["details"]))

    notes = read_notes(data / "notes").notes
    out["speed_notes"] = len(notes)
    out["speed_chars"] = sum(len(n.text) for n in notes)
    # a shipped full fine-tune keeps only its ONNX int8 model: the torch backends are not there to time
    out["speed_backends"] = available_backends(args.bundle)
    for backend in out["speed_backends"]:
        pred = Predictor.from_bundle(args.bundle, backend=backend)
        ex = build_extractor(MedicalConfig(backend=backend, link_encoder=args.link_encoder), data, predictor=pred)
        ex.model_name = Path(args.bundle).name
        nps = speed(ex, notes, args.repeats)
        out[f"notes_per_s_{backend.replace('-', '_')}"] = nps
        print(f"notes/s {backend}: {nps:.2f}", flush=True)
    out["notes_per_s"] = out["notes_per_s_onnx_int8"]
    out["seconds"] = time.perf_counter() - t_start
    flat = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}
    atomic_write_json(args.out, flat)
    print(json.dumps({k: v for k, v in flat.items() if not isinstance(v, dict)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
