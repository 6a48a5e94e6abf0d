"""Medical extractor drift: a batch of notes against the training reference (core/lifecycle/drift.py).

Figures: the entity rate (mentions per 1,000 characters of a note; PSI and KS over the notes), the mention
confidence (the fused score of every mention; PSI and KS over the mentions) and the mention labels
(Disease / Chemical shares; PSI). Overall batch rates (all mentions / all characters) are reported too.

Reference: the extractor run over the development abstracts (title + abstract) of the bundle's data set
(``data.json`` "dataset": bc5cdr -> CDR_DevelopmentSet.PubTator.txt, ncbi -> NCBIdevelopset_corpus.txt),
at most ``REFERENCE_NOTES`` of them, seeded -- text of the training distribution the model was not fitted
on. It is cached beside the bundle as ``<bundle>.drift-reference.json`` (rebuilt when bundle.json
changes) or given as a file. Both sides run the same extractor settings with concept linking off:
linking sets concepts only, never which mentions exist or their scores, so it would cost time for
nothing (abbreviations still resolve through the exact name table).

Thresholds: ``MEDICAL_THRESHOLDS`` -- the core defaults with ``min_items`` 20 (notes come in smaller
batches than a feed's day: 20 notes for the rate, 20 mentions for confidence and labels).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from kgfusion.apps.medical.config import MedicalConfig
from kgfusion.apps.medical.readers import NoteInput
from kgfusion.core.errors import DataError
from kgfusion.core.lifecycle.drift import (  # noqa: F401 - bundle_hash, cached_reference_path: this module's API
    CONFIDENCE,
    REFERENCE_SUFFIX,
    DriftFigures,
    DriftReference,
    DriftThresholds,
    bundle_hash,
    cached_reference_path,
    compare,
    load_or_build_cached,
)

RATE = "entity_rate"
REFERENCE_NOTES = 500
MEDICAL_THRESHOLDS = DriftThresholds(min_items=20)
DEV_PUBTATOR = {"bc5cdr": ("bc5cdr", "CDR_DevelopmentSet.PubTator.txt"),
                "ncbi": ("ncbi_disease", "NCBIdevelopset_corpus.txt")}


def drift_config(config: MedicalConfig) -> MedicalConfig:
    """``config`` with concept linking off (see the module docstring)."""
    return replace(config, link=False, link_encoder="hashing")


def note_rate(mentions: int, chars: int) -> float:
    return 1000.0 * mentions / max(chars, 1)


def batch_values(results: Sequence[Any]) -> dict[str, Any]:
    """Per-note rates, per-mention confidences and labels, and the batch totals of NoteResults."""
    rates = [note_rate(len(r.mentions), len(r.text)) for r in results]
    mentions = [m for r in results for m in r.mentions]
    chars = sum(len(r.text) for r in results)
    return {"rates": rates, "confidences": [float(m.score) for m in mentions], "labels": [m.label for m in mentions],
            "notes": len(results), "mentions": len(mentions), "chars": chars,
            "overall_rate": note_rate(len(mentions), chars)}


def bundle_dataset(bundle: str | Path) -> str:
    """The data set a bundle was trained on (data.json "dataset"; bc5cdr when it does not say)."""
    info = Path(bundle) / "data.json"
    try:
        name = json.loads(info.read_text(encoding="utf-8")).get("dataset") if info.is_file() else None
    except (ValueError, UnicodeDecodeError):
        name = None
    return name if name in DEV_PUBTATOR else "bc5cdr"


def reference_notes(dataset: str, data_dir: str | Path, max_notes: int = REFERENCE_NOTES,
                    seed: int = 13) -> list[NoteInput]:
    """Up to ``max_notes`` development abstracts (seeded sample) as notes: title, a newline, abstract."""
    from kgfusion.core.pretrain import iter_pubtator

    folder, name = DEV_PUBTATOR[dataset]
    path = Path(data_dir) / "datasets" / folder / name
    if not path.is_file():
        raise DataError(f"{path}: development PubTator file not found; pass --data-dir pointing at the folder "
                        "holding datasets/, or --reference FILE")
    notes = [NoteInput(pmid, f"{title}\n{abstract}".strip(), str(path), i + 1)
             for i, (pmid, title, abstract) in enumerate(iter_pubtator(path)) if (title or abstract).strip()]
    if not notes:
        raise DataError(f"{path}: no documents in the development PubTator file")
    if len(notes) > max_notes:
        rng = np.random.default_rng(seed)
        notes = [notes[i] for i in sorted(rng.choice(len(notes), max_notes, replace=False))]
    return notes


def run_extractor(extractor, notes: Sequence[NoteInput]) -> dict[str, Any]:
    results, rejects = extractor.extract_many(notes)
    if not results:
        raise DataError(f"no note could be processed ({len(rejects)} rejected"
                        + (f"; first: {rejects[0].reason}" if rejects else "") + ")")
    return batch_values(results) | {"rejected": len(rejects)}


def build_reference(extractor, notes: Sequence[NoteInput], meta: dict[str, Any] | None = None) -> DriftReference:
    """The reference of an extractor over training-distribution notes."""
    v = run_extractor(extractor, notes)
    info = dict(meta or {}) | {"app": "medical", "notes": v["notes"], "mentions": v["mentions"], "chars": v["chars"],
                               "overall_rate": v["overall_rate"],
                               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return DriftReference.build(v["labels"], v["confidences"], values={RATE: v["rates"]}, meta=info)


def load_or_build_reference(bundle: Path, reference: str | Path | None, extractor, data_dir: str | Path, *,
                            max_notes: int = REFERENCE_NOTES) -> tuple[DriftReference, str]:
    """(reference, where from): ``reference`` (it must exist), else the cache beside ``bundle`` if it
    matches bundle.json, else built from the development notes and cached."""
    def build() -> DriftReference:
        dataset = bundle_dataset(bundle)
        notes = reference_notes(dataset, data_dir, max_notes)
        return build_reference(extractor, notes, {"bundle": bundle.name, "bundle_sha256": bundle_hash(bundle),
                                                  "dataset": dataset, "split": f"{dataset} development"})

    return load_or_build_cached(bundle, reference, build, "kgfusion medical drift-reference")


def check(reference: DriftReference, values: dict[str, Any],
          thresholds: DriftThresholds | None = None) -> DriftFigures:
    """Figures and verdict of a batch's ``batch_values`` against the reference."""
    return compare(reference, values["labels"], values["confidences"], values={RATE: values["rates"]},
                   thresholds=thresholds or MEDICAL_THRESHOLDS)


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def format_report(fig: DriftFigures, reference: DriftReference, values: dict[str, Any],
                  thresholds: DriftThresholds, source: str = "") -> str:
    """The text of ``kgfusion medical drift``."""
    m = reference.meta
    lines = [f"drift vs {m.get('bundle', 'reference')} ({m.get('split', '?')}: {m.get('notes', '?')} notes, "
             f"{m.get('mentions', '?')} mentions)" + (f" from {source}" if source else ""),
             f"thresholds: {thresholds.describe()} (notes for the rate, mentions for confidence and labels)",
             f"{values['notes']} notes ({values.get('rejected', 0)} rejected), {values['mentions']} mentions; "
             f"entity rate {values['overall_rate']:.2f} per 1,000 characters (reference "
             f"{_fmt(m.get('overall_rate'), '.2f')})"]
    for name, title in ((RATE, "entity rate per note"), (CONFIDENCE, "mention confidence")):
        v = fig.variables.get(name)
        if v is None:
            lines.append(f"{title + ':':<22} -")
            continue
        lines.append(f"{title + ':':<22} PSI {_fmt(v.psi)}  KS D {_fmt(v.ks)} (p {_fmt(v.ks_p, '.2g')})  "
                     f"mean {_fmt(v.mean)} (reference {_fmt(v.reference_mean)})  n={v.n}")
    shares = ", ".join(f"{k} {x:.2f}" for k, x in fig.label_shares.items())
    ref_shares = ", ".join(f"{k} {x:.2f}" for k, x in reference.labels.items())
    lines.append(f"{'mention labels:':<22} PSI {_fmt(fig.label_psi)}  ({shares or '-'}; reference {ref_shares or '-'})")
    if fig.drifted is None:
        lines.append("verdict: no verdict (" + "; ".join(fig.notes) + ")")
    elif fig.drifted:
        lines.append("verdict: DRIFT: " + "; ".join(fig.reasons))
    else:
        lines.append("verdict: ok")
    return "\n".join(lines)
