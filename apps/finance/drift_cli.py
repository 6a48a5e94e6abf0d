"""`kgfusion finance drift-reference` and the body of `kgfusion finance alerts --drift` (apps/finance/drift.py).

Kept apart from cli.py so the alerts command only gains a flag; imports stay lazy (``--help`` loads no
pandas or model).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kgfusion.apps.common import emit, json_option, repo_data_dir
from kgfusion.apps.finance.config import DEFAULT_BUNDLE_NAME

SPLIT = click.Choice(["dev", "train", "test"])


def _bundle(bundle: str | None) -> Path:
    return Path(bundle) if bundle else repo_data_dir() / "models" / DEFAULT_BUNDLE_NAME


@click.command("drift-reference")
@click.option("--bundle", type=click.Path(file_okay=False), default=None,
              help=f"Sentiment bundle (default: data/models/{DEFAULT_BUNDLE_NAME}).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Reference JSON to write (default: <bundle>.drift-reference.json beside the bundle, the file "
                   "`alerts --drift` uses when --reference is not given).")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder holding datasets/ with the bundle's training data (default: data/).")
@click.option("--split", type=SPLIT, default="dev", show_default=True,
              help="Training data split to predict (dev: same distribution as train, not fitted on).")
@click.option("--backend", type=click.Choice(["auto", "fp32", "int8", "onnx-int8"]), default="auto",
              show_default=True)
@click.option("--encoder", default="minilm", show_default=True,
              help="Text embedder of the centroid: minilm, a local model directory, hashing (no model) or none.")
@click.option("--max-items", type=click.IntRange(10, 1_000_000), default=2000, show_default=True,
              help="Texts sampled (seeded) from the split.")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True),
              help="Extra finance rule files/dirs, as given to `monitor`.")
@json_option
def drift_reference(bundle, out_file, data_dir, split, backend, encoder, max_items, rule_paths, as_json):
    """Build the drift reference of a bundle: its fused predictions (label, confidence) and text-embedding
    centroid on a sample of its training data."""
    from kgfusion.apps.finance.drift import build_bundle_reference, cached_reference_path, describe_reference

    path = _bundle(bundle)
    ref = build_bundle_reference(path, data_dir=data_dir, split=split, backend=backend,
                                 encoder=None if encoder == "none" else encoder, rule_paths=rule_paths,
                                 max_items=max_items)
    out = ref.save(out_file or cached_reference_path(path))
    shares = ", ".join(f"{k} {v:.2f}" for k, v in ref.labels.items())
    conf = ref.confidences
    text = (f"drift reference written: {out}\n  {describe_reference(ref)}\n  labels: {shares}\n"
            f"  mean confidence {sum(conf) / max(len(conf), 1):.3f}"
            + (f"; centroid spread {ref.spread['spread']:.5f} at {int(ref.spread['sample_size'])} items"
               if ref.spread else "; no embedding centroid"))
    emit({"reference": str(out), "n": ref.n, "labels": ref.labels, "meta": ref.meta, "spread": ref.spread},
         as_json, text)


def drift_report(db: str, reference: str | None, bundle: str | None, out: str | None, as_json: bool,
                 recompute: bool = False) -> None:
    """Per-day drift figures of ``db`` (computing and storing the days not stored yet) and the drift alerts."""
    from kgfusion.apps.finance.drift import format_report, load_or_build_reference, records, update_drift
    from kgfusion.core.lifecycle.drift import DriftThresholds

    ref, source = load_or_build_reference(_bundle(bundle) if not reference else None, reference)
    thresholds = DriftThresholds()
    table = update_drift(db, ref, thresholds=thresholds, recompute=recompute)
    if out:
        from kgfusion.apps.finance.cli import write_table

        write_table(table, out)
    rows = records(table)
    result: dict[str, Any] = {"reference": {"source": source, "n": ref.n, "fingerprint": ref.fingerprint,
                                            "meta": ref.meta},
                              "thresholds": thresholds.to_dict(), "computed": int(table.attrs.get("computed", 0)),
                              "days": rows, "alerts": [r for r in rows if r["verdict"] == "DRIFT"]}
    text = (format_report(table, ref, thresholds, source)
            + f"\n({result['computed']} day(s) computed now, the rest read from the drift table of {db})")
    emit(result, as_json, text)
