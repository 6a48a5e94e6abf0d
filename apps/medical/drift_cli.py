"""`kgfusion medical drift` and `kgfusion medical drift-reference` (apps/medical/drift.py); imports stay lazy."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kgfusion.apps.common import emit, json_option, repo_data_dir
from kgfusion.core.errors import KgfusionError

BACKEND = click.Choice(["fp32", "int8", "onnx-int8"])


def _options(f):
    opts = [
        click.option("--bundle", default=None, help="Model bundle directory or name under data/models/ "
                     "(default: the shipped medical-ner-bc5cdr)."),
        click.option("--backend", type=BACKEND, default="onnx-int8", show_default=True),
        click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Folder holding datasets/ and kg/ (default: data/)."),
        click.option("--max-notes", type=click.IntRange(10, 100_000), default=500, show_default=True,
                     help="Development abstracts in a reference built now (seeded sample)."),
        json_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _setup(ctx: click.Context, bundle: str | None, backend: str, data_dir: str | None):
    """(bundle dir, extractor, data dir); tests inject a predictor / encoder / data_dir through ctx.obj."""
    from kgfusion.apps.medical.config import DEFAULT_BUNDLE, MedicalConfig
    from kgfusion.apps.medical.drift import drift_config
    from kgfusion.apps.medical.extract import build_extractor, resolve_bundle

    overrides = dict((ctx.obj or {}).get("build_kwargs", {}))
    data = Path(data_dir or overrides.pop("data_dir", None) or repo_data_dir())
    overrides.pop("data_dir", None)
    path = resolve_bundle(bundle or DEFAULT_BUNDLE, data)
    config = drift_config(MedicalConfig(bundle=str(path), backend=backend))
    return path, build_extractor(config, data, **overrides), data


@click.command("drift")
@click.option("--notes", "source", required=True, type=click.Path(exists=True),
              help="The notes to check: a .txt note, a folder of notes, or a CSV/JSONL with a note column.")
@click.option("--reference", type=click.Path(dir_okay=False), default=None,
              help="Reference JSON (`medical drift-reference`; default: the one cached beside the bundle, built "
                   "from the development abstracts when missing).")
@click.option("--text-col", default="", help="Note column of a CSV/JSONL (default: text, note, ...).")
@click.option("--id-col", default="", help="Id column of a CSV/JSONL (default: note_id, id, ...).")
@_options
@click.pass_context
def drift(ctx, source, reference, text_col, id_col, bundle, backend, data_dir, max_notes, as_json):
    """Entity rate (mentions per 1,000 characters) and mention confidence of the --notes against
    the training reference (PSI, KS test), with a drift verdict and its reasons."""
    from kgfusion.apps.medical.drift import (
        MEDICAL_THRESHOLDS,
        check,
        format_report,
        load_or_build_reference,
        run_extractor,
    )
    from kgfusion.apps.medical.readers import read_notes

    try:
        read = read_notes(source, text_col=text_col, id_col=id_col)
        if not read.notes:
            raise KgfusionError(f"{source}: no usable note ({len(read.rejects)} rejected)")
        path, extractor, data = _setup(ctx, bundle, backend, data_dir)
        ref, where = load_or_build_reference(path, reference, extractor, data, max_notes=max_notes)
        values = run_extractor(extractor, read.notes)
    except KgfusionError as exc:
        raise click.ClickException(str(exc)) from exc
    values["rejected"] += len(read.rejects)
    fig = check(ref, values, MEDICAL_THRESHOLDS)
    result: dict[str, Any] = {"reference": {"source": where, "n": ref.n, "meta": ref.meta},
                              "thresholds": MEDICAL_THRESHOLDS.to_dict(), "figures": fig.to_dict(),
                              "batch": {k: values[k] for k in ("notes", "mentions", "chars", "overall_rate", "rejected")},
                              "verdict": "no verdict" if fig.drifted is None else "DRIFT" if fig.drifted else "ok"}
    emit(result, as_json, format_report(fig, ref, values, MEDICAL_THRESHOLDS, where))


@click.command("drift-reference")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Reference JSON to write (default: <bundle>.drift-reference.json beside the bundle).")
@_options
@click.pass_context
def drift_reference(ctx, out_file, bundle, backend, data_dir, max_notes, as_json):
    """Build the drift reference of a NER bundle from the development abstracts of its data set."""
    from kgfusion.apps.medical.drift import (
        build_reference,
        bundle_dataset,
        bundle_hash,
        cached_reference_path,
        reference_notes,
    )

    try:
        path, extractor, data = _setup(ctx, bundle, backend, data_dir)
        dataset = bundle_dataset(path)
        ref = build_reference(extractor, reference_notes(dataset, data, max_notes),
                              {"bundle": path.name, "bundle_sha256": bundle_hash(path), "dataset": dataset,
                               "split": f"{dataset} development"})
    except KgfusionError as exc:
        raise click.ClickException(str(exc)) from exc
    out = ref.save(out_file or cached_reference_path(path))
    m = ref.meta
    emit({"reference": str(out), "n": ref.n, "labels": ref.labels, "meta": m}, as_json,
         f"drift reference written: {out}\n  {m['notes']} notes, {m['mentions']} mentions, entity rate "
         f"{m['overall_rate']:.2f} per 1,000 characters; labels "
         + ", ".join(f"{k} {v:.2f}" for k, v in ref.labels.items()))
