"""`kgfusion medical train | evaluate | extract`: clinical NER over notes, with KG concepts and ConText."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from kgfusion.apps.common import (
    bundle_variant,
    chosen_kg_store,
    emit,
    engine_option,
    json_option,
    kg_store_option,
    model_variant_option,
    pretrain_corpus_command,
    repo_data_dir,
    restart_option,
    shard_size_option,
)
from kgfusion.apps.medical.drift_cli import drift as drift_command
from kgfusion.apps.medical.drift_cli import drift_reference as drift_reference_command
from kgfusion.core.errors import KgfusionError

BACKEND = click.Choice(["fp32", "int8", "onnx-int8"])
POLICY = click.Choice(["union", "prefer_model", "prefer_gazetteer"])

group = click.Group("medical", help="Clinical notes -> coded mentions (disease, drug) with ConText and KG links.")


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@group.command()
@click.option("--dataset", type=click.Choice(["bc5cdr", "ncbi"]), default="bc5cdr", show_default=True,
              help="bc5cdr: Chemical + Disease (the shipped model); ncbi: Disease only.")
@click.option("--method", type=click.Choice(["lora", "full"]), default="lora", show_default=True)
@click.option("--epochs", type=int, default=2, show_default=True)
@click.option("--lr", type=float, default=None, help="Default: 1e-3 LoRA, 5e-5 full.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--max-length", type=int, default=128, show_default=True)
@click.option("--dev-fraction", type=float, default=0.1, show_default=True,
              help="Share of train.tsv held out for early stopping (devel.tsv is the reported evaluation).")
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--max-steps", type=int, default=0, help="Stop after N steps (0 = no limit; for smoke runs).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Bundle directory; default data/models/medical-ner-<dataset>.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder holding datasets/ (default: the repo's data/).")
@click.option("--base", default="minilm", show_default=True, help="'minilm' or a local HF model directory.")
@click.option("--no-onnx", is_flag=True, help="Skip the ONNX int8 export.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def train(dataset, method, epochs, lr, batch_size, max_length, dev_fraction, seed, max_steps, out_dir, data_dir,
          base, no_onnx, quiet, as_json):
    """Train the NER model on BC5CDR or NCBI-disease and write a bundle (+ ONNX int8, metrics, card)."""
    from kgfusion.apps.medical.train import MedicalData, train_medical
    from kgfusion.core.finetune import TrainConfig

    data_root = Path(data_dir) if data_dir else repo_data_dir()
    out = out_dir or str(data_root / "models" / f"medical-ner-{dataset}")
    words = ["kgfusion", "medical", "train", "--dataset", dataset, "--method", method, "--epochs", str(epochs)]
    if lr is not None:
        words += ["--lr", str(lr)]
    if max_steps:
        words += ["--max-steps", str(max_steps)]
    try:
        config = TrainConfig(task="token", method=method, base=base, epochs=epochs, batch_size=batch_size, lr=lr,
                             max_length=max_length, seed=seed, max_steps=max_steps)
        data = MedicalData.default(dataset, data_root, dev_fraction=dev_fraction, seed=seed)
        result = train_medical(config, data, out, progress=not quiet and not as_json, command=words,
                               onnx=not no_onnx)
    except KgfusionError as exc:
        raise _fail(exc) from exc
    m = result["metrics"]
    text = (f"bundle written: {result['bundle']} (onnx: {result['onnx']})\n"
            + "  ".join(f"{k}={v}" for k, v in sorted(m.items()) if k.startswith("devel") or k == "dev_f1"))
    emit(result, as_json, text)


@group.command()
@click.argument("bundle", required=False)
@click.option("--dataset", type=click.Choice(["bc5cdr", "ncbi"]), default="bc5cdr", show_default=True)
@click.option("--file", "iob_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="An IOB2 TSV to score instead of the data set's devel.tsv.")
@click.option("--backend", type=BACKEND, default=None,
              help="Default: fp32 when the bundle has torch weights, else onnx-int8 (what it ships).")
@json_option
def evaluate(bundle, dataset, iob_file, backend, as_json):
    """Strict entity P/R/F1 of BUNDLE (default: the shipped model) on a data set's devel split.

    Scores are named after what was scored: devel_f1, devel_precision, devel_recall, devel_<type>_f1 on
    the devel split; f1, precision, recall, <type>_f1 (and file) for --file.
    """
    from kgfusion.apps.medical.config import DEFAULT_BUNDLE
    from kgfusion.apps.medical.extract import resolve_bundle
    from kgfusion.apps.medical.train import DATASETS, PUBLISHED, evaluate_medical

    data = repo_data_dir()
    try:
        path = resolve_bundle(bundle or DEFAULT_BUNDLE, data)
        target = iob_file or str(data / "datasets" / DATASETS[dataset] / "devel.tsv")
        if backend is None:
            from kgfusion.core.bundle import available_backends

            backend = "fp32" if "fp32" in available_backends(path) else "onnx-int8"
        metrics = evaluate_medical(path, target, backend)
    except KgfusionError as exc:
        raise _fail(exc) from exc
    if iob_file:  # not the devel split: plain names (f1, precision, recall, <type>_f1) next to "file"
        metrics = {k.removeprefix("devel_"): v for k, v in metrics.items()}
        published: dict = {}
    else:
        published = metrics["published_test_f1"] = PUBLISHED[dataset]
    prefix = "" if iob_file else "devel_"
    lines = [f"{path.name} on {target} ({backend}): P {metrics[prefix + 'precision']:.4f} "
             f"R {metrics[prefix + 'recall']:.4f} F1 {metrics[prefix + 'f1']:.4f}"]
    for etype, v in metrics["per_type"].items():
        pub = published.get(etype, {})
        ref = ", ".join(f"{k} {x:.3f}" for k, x in pub.items())
        lines.append(f"  {etype:<10} F1 {v['f1']:.4f} (support {v['support']})" + (f"   published test: {ref}" if ref else ""))
    emit(metrics, as_json, "\n".join(lines))


def _default_rejects(out_path: str) -> str:
    return str(Path(out_path).with_suffix("")) + ".rejects.csv"


def _no_notes(source: str, rejects, target: str) -> KgfusionError:
    """The one-line error of a SOURCE without a usable note; its rejects are written first."""
    from kgfusion.core.data import write_rejects

    if not rejects:
        return KgfusionError(f"{source}: 0 notes extracted, 0 rejected; the file has no data rows")
    write_rejects(rejects, target)
    first = rejects[0]
    where = f"{first.source} row {first.row}" if first.row else first.source
    return KgfusionError(f"0 notes extracted, {len(rejects)} rejected -> {target} (first: {where}: {first.reason})")


def summarize(results, rejects, seconds: float) -> dict[str, Any]:
    """Counts for the command's report: notes, mentions per label, assertion, linking, rejects, speed."""
    from kgfusion.apps.medical.batch import summarize_notes

    return summarize_notes((r.to_dict(include_text=False) for r in results), len(rejects), seconds)


def _summary_text(s: dict[str, Any], files: dict[str, str]) -> str:
    lines = [f"{s['notes']} notes ({s['rejected']} rejected), {s['mentions']} mentions "
             f"({', '.join(f'{k} {v}' for k, v in sorted(s['by_label'].items()))}) in {s['seconds']} s "
             f"({s['notes_per_s']} notes/s)",
             f"asserted {s['asserted']}; " + ", ".join(f"{k} {v}" for k, v in s["attributes"].items())
             + f"; linked to the KG {s['linked']}/{s['mentions']}",
             "sources: " + ", ".join(f"{k} {v}" for k, v in sorted(s["by_source"].items()))]
    if s["top_asserted_concepts"]:
        lines.append("top asserted concepts: " + ", ".join(f"{c['label']} ({c['curie']}) x{c['mentions']}"
                                                           for c in s["top_asserted_concepts"][:6]))
    lines += [f"wrote {kind}: {path}" for kind, path in files.items()]
    return "\n".join(lines)


@group.command()
@click.argument("source", type=click.Path(exists=True))
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="Results JSONL (one note per line).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, help="Also write one mention per row.")
@click.option("--fhir", "fhir_path", type=click.Path(dir_okay=False), default=None, help="Also write a FHIR R4 Bundle (JSON).")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False), default=None,
              help="Rejected notes CSV (default when any: <out>.rejects.csv).")
@click.option("--bundle", default=None, help="Model bundle directory or name under data/models/.")
@click.option("--backend", type=BACKEND, default="onnx-int8", show_default=True)
@model_variant_option
@kg_store_option
@click.option("--policy", type=POLICY, default="union", show_default=True,
              help="Overlaps of model and gazetteer spans: union keeps the longer.")
@click.option("--link-encoder", type=click.Choice(["minilm", "hashing"]), default="minilm", show_default=True,
              help="Retrieval encoder of the linker (hashing: no model, instant start).")
@click.option("--max-chars", type=click.IntRange(1000, 50_000_000), default=100_000, show_default=True)
@click.option("--oversize", type=click.Choice(["chunk", "reject"]), default="chunk", show_default=True)
@click.option("--text-col", default="", help="Note column of a CSV/JSONL (default: text, note, ...).")
@click.option("--id-col", default="", help="Id column of a CSV/JSONL (default: note_id, id, ...).")
@click.option("--encoding", default="auto", show_default=True,
              help="Text encoding of the notes: auto (UTF-8, UTF-16/32 with a BOM, else cp1252, else latin-1, "
                   "with a warning on the note) or a codec name such as utf-8, latin-1, cp1252.")
@click.option("--no-gazetteer", is_flag=True, help="Model spans only.")
@click.option("--no-text", is_flag=True, help="Leave the note text out of the JSONL.")
@engine_option
@shard_size_option(128, "Notes")
@restart_option
@json_option
@click.pass_context
def extract(ctx, source, out_path, csv_path, fhir_path, rejects_path, bundle, backend, policy, link_encoder,
            max_chars, oversize, text_col, id_col, encoding, no_gazetteer, no_text, engine, shard_size, restart,
            as_json):
    """Extract coded mentions from SOURCE: a .txt note, a folder of notes, or a CSV/JSONL with a note column.

    Rejected notes go to --rejects with file, row and reason; a SOURCE with no usable note is an error (exit 1).
    """
    from itertools import chain, islice

    from kgfusion.apps.medical import batch
    from kgfusion.apps.medical.config import DEFAULT_BUNDLE, MedicalConfig
    from kgfusion.apps.medical.extract import build_extractor
    from kgfusion.core.batch_engine import WorkerSpec
    from kgfusion.core.data import write_rejects

    overrides = (ctx.obj or {}).get("build_kwargs", {})  # tests inject a predictor / encoder here
    try:
        config = MedicalConfig(bundle=str(bundle_variant(bundle or DEFAULT_BUNDLE)), backend=backend, policy=policy,
                               link_encoder=link_encoder, max_chars=max_chars, oversize=oversize,
                               gazetteer=not no_gazetteer)
        stream = batch.NoteStream(Path(source), text_col, id_col, encoding)  # read file by file, in shards
        notes = iter(stream)
        head = list(islice(notes, shard_size))
        if not head:  # nothing to extract: say so before loading the model
            raise _no_notes(source, stream.rejects, rejects_path or _default_rejects(out_path))
        started = time.perf_counter()
        # Ray workers build their own extractor (once each); locally it is built here, once
        extractor = build_extractor(config, **overrides) if engine == "local" else None
        load_s = time.perf_counter() - started
        model_name, fingerprint = batch.model_identity(config.to_dict(), overrides)
        model_name = extractor.model_name if extractor else model_name
        manifest = {"input": str(Path(source).resolve()), "input_sha256": batch.notes_digest(Path(source)),
                    "reader": {"text_col": text_col, "id_col": id_col, "encoding": encoding},
                    "config": config.to_dict(), "include_text": not no_text, "model_fingerprint": fingerprint}
        worker = WorkerSpec("kgfusion.apps.medical.batch:note_worker",
                            {"config": config.to_dict(), "include_text": not no_text,
                             # a Ray worker has no click context: it reads the graph where this command does
                             "build_kwargs": overrides | {"kg_store": str(chosen_kg_store())}})
        run = batch.extract_to_files(
            chain(head, notes), lambda: stream.rejects, out=out_path, csv_path=csv_path, fhir_path=fhir_path,
            worker=worker, manifest=manifest, engine=engine, shard_size=shard_size, restart=restart,
            local_fn=(lambda shard: batch.shard_rows(extractor, shard, not no_text)) if extractor else None)
        seconds = run.stats.seconds
    except KgfusionError as exc:
        raise _fail(exc) from exc
    rejects = run.rejects
    files = {"jsonl": str(out_path)}
    if csv_path:
        files["csv"] = str(csv_path)
    if fhir_path:
        files["fhir"] = fhir_path
    if rejects:
        files["rejects"] = str(write_rejects(rejects, rejects_path or _default_rejects(out_path)))
    summary = run.summary.to_dict(len(rejects), seconds) | {"load_seconds": round(load_s, 2), "files": files,
                                                            "model": model_name}  # name@vN: a registry version
    if run.fhir is not None:
        summary["fhir"] = run.fhir
    emit(summary, as_json, _summary_text(summary, files)
         + f"\n(model {model_name}, KG and index loaded in {load_s:.1f} s)")


def _build_corpus(data_dir: Path):
    from kgfusion.apps.medical.corpus import build_medical_corpus

    return build_medical_corpus(data_dir)


group.add_command(pretrain_corpus_command("medical", _build_corpus))
group.add_command(drift_command)
group.add_command(drift_reference_command)

from kgfusion.apps.medical.corrections_cli import correct  # noqa: E402  (clinicians' corrections, issue 16)

group.add_command(correct)
