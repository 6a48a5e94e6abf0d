"""The clinical extractor on the sample notes (data/notes) for ``kgfusion demo``: counts and examples.

``demo_summary(notes_dir, quick=True)`` extracts every note with the shipped NER bundle (ONNX Runtime int8
when the bundle has ``model.int8.onnx``, else torch int8) and returns counts per label and ConText
attribute, a few example mentions with their KG concept, notes/s and seconds.

quick=True links with the character 3-gram hashing encoder (no model): a clean checkout takes 10-20 s of
CPU (13 s wall on an idle 2-core machine, 50 s at load average 9), about 7 s of it parsing
data/kg/medical.ttl once into its cache (data/kg/index/medical-app/kb.json); later runs take ~9 s. quick=False links with MiniLM
over FAISS, which embeds ~13k concept names on the first run (~5 min, then cached in data/kg/index/).
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from kgfusion.apps.medical.config import MedicalConfig
from kgfusion.apps.medical.extract import ATTRIBUTES, Mention, build_extractor, resolve_bundle
from kgfusion.apps.medical.readers import read_notes
from kgfusion.core.errors import DataError

MAX_EXAMPLES = 7


def demo_backend(bundle_dir: Path) -> str:
    """onnx-int8 when the bundle ships an ONNX int8 model (loads in ~1 s), else torch dynamic int8."""
    return "onnx-int8" if (bundle_dir / "model.int8.onnx").is_file() else "int8"


def demo_summary(notes_dir: str | Path, *, quick: bool, data_dir: str | Path | None = None, predictor=None,
                 encoder=None) -> dict[str, Any]:
    """Extract all notes under ``notes_dir`` and summarise them.

    quick: hashing-encoder linking (fast, no model) instead of MiniLM. ``data_dir`` (default: the repo's
    data/), ``predictor`` and ``encoder`` replace the data folder, the NER model and the MiniLM encoder
    (tests). Returns notes, rejects, mentions, asserted, linked, by_label, by_attribute, examples (dicts
    with note_id, text, label, attributes, section, concept), backend, link_encoder, load_seconds,
    extract_seconds, seconds and notes_per_s.
    """
    from kgfusion.apps.common import repo_data_dir

    started = time.perf_counter()
    data = Path(data_dir) if data_dir else repo_data_dir()
    read = read_notes(notes_dir)
    if not read.notes:
        raise DataError(f"{notes_dir}: no readable notes (rejects: {len(read.rejects)}); add .txt notes there")
    backend = "int8"
    if predictor is None:
        backend = demo_backend(resolve_bundle(MedicalConfig().bundle, data))
    config = MedicalConfig(backend=backend, link_encoder="hashing" if quick else "minilm")
    extractor = build_extractor(config, data, predictor=predictor, encoder=None if quick else encoder)
    loaded = time.perf_counter()
    results, rejects = extractor.extract_many(read.notes)
    done = time.perf_counter()

    mentions = [(r.note_id, m) for r in results for m in r.mentions]
    by_attribute = {a: sum(m.attributes.get(a, False) for _, m in mentions) for a in ATTRIBUTES}
    extract_s = done - loaded
    return {
        "notes": len(results),
        "rejects": len(rejects) + len(read.rejects),
        "mentions": len(mentions),
        "asserted": sum(m.asserted for _, m in mentions),
        "linked": sum(m.concept is not None for _, m in mentions),
        "by_label": dict(sorted(Counter(m.label for _, m in mentions).items())),
        "by_attribute": by_attribute,
        "examples": [_example(nid, m) for nid, m in pick_examples(mentions)],
        "backend": backend if predictor is None else "custom",
        "link_encoder": config.link_encoder,
        "load_seconds": round(loaded - started, 3),
        "extract_seconds": round(extract_s, 3),
        "seconds": round(done - started, 3),
        "notes_per_s": round(len(results) / extract_s, 2) if extract_s > 0 else 0.0,
    }


def pick_examples(mentions: list[tuple[str, Mention]], limit: int = MAX_EXAMPLES) -> list[tuple[str, Mention]]:
    """A linked mention per ConText attribute, then an asserted drug and an asserted disease (text order)."""
    linked = [(nid, m) for nid, m in mentions if m.concept is not None]
    wanted = [lambda m, a=a: m.attributes.get(a, False) for a in ATTRIBUTES]
    wanted += [lambda m: m.asserted and m.label == "Chemical", lambda m: m.asserted and m.label == "Disease"]
    out: list[tuple[str, Mention]] = []
    for test in wanted:
        hit = next(((nid, m) for nid, m in linked if test(m) and all(m is not o for _, o in out)), None)
        if hit is not None:
            out.append(hit)
    return out[:limit]


def _example(note_id: str, m: Mention) -> dict[str, Any]:
    c = m.concept
    return {"note_id": note_id, "text": m.text, "label": m.label,
            "attributes": [a for a in ATTRIBUTES if m.attributes.get(a)], "section": m.section,
            "concept": {"curie": c.curie, "label": c.label, "score": c.score, "match": c.match} if c else None}


def format_summary(summary: dict[str, Any]) -> list[str]:
    """Printable lines for a ``demo_summary`` result."""
    s = summary
    lines = [
        f"{s['notes']} notes, {s['mentions']} mentions ({s['asserted']} asserted, {s['linked']} linked to the KG); "
        f"{s['notes_per_s']:.1f} notes/s ({s['backend']}, {s['link_encoder']} linking), "
        f"{s['seconds']:.1f} s with loading",
        "  by label: " + ", ".join(f"{k} {v}" for k, v in s["by_label"].items()),
        "  ConText: " + ", ".join(f"{k} {v}" for k, v in s["by_attribute"].items()),
    ]
    for ex in s["examples"]:
        c = ex["concept"]
        concept = f"{c['curie']} {c['label']}" if c else "-"
        attrs = ", ".join(ex["attributes"]) or "asserted"
        lines.append(f"  {ex['note_id']}: '{ex['text']}' ({ex['label']}) -> {concept} [{attrs}]")
    return lines
