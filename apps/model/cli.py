"""`kgfusion model train | evaluate | quantize | compress | predict | search | info`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from kgfusion.apps.common import emit, json_option
from kgfusion.core.commands import rebuild_command

BACKEND = click.Choice(["fp32", "int8", "onnx-int8"])


@click.group("model")
def group() -> None:
    """Train, pretrain, evaluate, quantize and compress small transformer encoders."""


def _train_recipe(recipe_path: str, out_dir: str | None, *, progress: bool, as_json: bool) -> None:
    from kgfusion.core.errors import KgfusionError
    from kgfusion.core.recipe import run_recipe

    try:
        result = run_recipe(recipe_path, out_dir=out_dir, progress=progress)
    except KgfusionError as exc:
        raise click.ClickException(str(exc)) from exc
    metrics = result.get("metrics", {})
    shown = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float) and
                      k.startswith(("devel_", "phrasebank", "twitter", "dev_", "test_")))
    emit(result, as_json, f"bundle written: {result['bundle']}\n{shown}")


def _label_map(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    try:
        pairs = [p.split("=", 1) for p in value.split(",")]
        return {k.strip(): v.strip() for k, v in pairs}
    except ValueError as exc:
        raise click.BadParameter("use FROM=TO pairs separated by commas, e.g. 0=negative,1=positive") from exc


@group.command()
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Labelled file: CSV/JSONL (text,label), PhraseBank .txt, or CoNLL TSV for --task token.")
@click.option("--recipe", "recipe_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Train what a recipe file describes (data/recipes/*.json: data, schedule, decoder, knowledge, "
                   "ensemble) instead of --data and the options below.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Bundle directory to write (required with --data; with --recipe default data/models/<name>).")
@click.option("--task", type=click.Choice(["sequence", "token"]), default="sequence", show_default=True)
@click.option("--method", type=click.Choice(["lora", "full"]), default="lora", show_default=True)
@click.option("--base", default="minilm", show_default=True, help="'minilm' or a local HF model directory.")
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "jsonl", "phrasebank"]), default="auto")
@click.option("--text-col", default="text", show_default=True)
@click.option("--label-col", default="label", show_default=True)
@click.option("--label-map", default=None, help="Rename labels, e.g. 0=negative,1=positive,2=neutral.")
@click.option("--extra-train", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="More labelled files added to the training split only.")
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=None, help="Default: 5e-5 full, 1e-3 LoRA.")
@click.option("--max-length", type=int, default=64, show_default=True)
@click.option("--lora-r", type=int, default=8, show_default=True)
@click.option("--class-weights", type=click.Choice(["none", "balanced"]), default="none", show_default=True)
@click.option("--fgm", "fgm_epsilon", type=float, default=0.0, help="FGM adversarial epsilon (0 = off).")
@click.option("--patience", type=int, default=2, show_default=True)
@click.option("--max-steps", type=int, default=0, help="Stop after N steps (0 = no limit).")
@click.option("--dev", type=float, default=0.1, show_default=True, help="Dev fraction.")
@click.option("--test", type=float, default=0.1, show_default=True, help="Held-out test fraction.")
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--name", default="", help="Bundle name for the model card.")
@click.option("--licence", default="see the data set's LICENSE file", help="Data licence for the model card.")
@click.option("--description", default="", help="One paragraph for the model card.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def train(data_path, recipe_path, out_dir, task, method, base, fmt, text_col, label_col, label_map, extra_train, epochs,
          batch_size, lr, max_length, lora_r, class_weights, fgm_epsilon, patience, max_steps, dev, test, seed,
          name, licence, description, quiet, as_json):
    """Fine-tune a classifier on a labelled file and write a bundle (weights, metrics, model card).

    With --recipe, the recipe's app trainer does it (e.g. data/recipes/ablations/ncbi/full-long.json).
    """
    from kgfusion.core.finetune import TrainConfig
    from kgfusion.core.jobs import DataSpec, train_bundle

    if recipe_path:
        ctx = click.get_current_context()
        given = [p.opts[-1] for p in ctx.command.params if isinstance(p, click.Option) and p.name not in
                 ("recipe_path", "out_dir", "quiet", "as_json")
                 and ctx.get_parameter_source(p.name) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise click.UsageError(f"--recipe sets the data and training options itself; drop {', '.join(given)} "
                                   "(or edit the recipe file)")
        _train_recipe(recipe_path, out_dir, progress=not quiet and not as_json, as_json=as_json)
        return
    if not data_path or not out_dir:
        raise click.UsageError("give --data FILE and --out DIR (or --recipe FILE)")

    config = TrainConfig(task=task, method=method, base=base, epochs=epochs, batch_size=batch_size, lr=lr,
                         max_length=max_length, lora_r=lora_r, class_weights=class_weights,
                         fgm_epsilon=fgm_epsilon, patience=patience, max_steps=max_steps, seed=seed)
    spec = DataSpec(path=data_path, fmt=fmt, text_col=text_col, label_col=label_col,
                    label_map=_label_map(label_map), dev=dev, test=test, seed=seed, licence=licence,
                    description=description, extra_train=list(extra_train))
    result = train_bundle(config, spec, out_dir, name=name, progress=not quiet and not as_json,
                          command=rebuild_command(click.get_current_context()))
    m = result["metrics"]
    text = (f"bundle written: {result['bundle']}\n"
            + "  ".join(f"{k}={v:.4f}" for k, v in m.items() if k.startswith(("dev_", "test_")))
            + f"\nsplit: {result['data']['split']}; rejected rows: {result['rejects']}")
    emit({k: v for k, v in result.items() if k != "metrics"} | {"metrics": {k: v for k, v in m.items() if k != "details"}},
         as_json, text)


@group.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Labelled file; default: the bundle's training file.")
@click.option("--split", type=click.Choice(["test", "dev", "train", "all"]), default="test", show_default=True,
              help="Rows recorded at training time; 'all' for any other file.")
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "jsonl", "phrasebank"]), default="auto")
@click.option("--text-col", default="text")
@click.option("--label-col", default="label")
@click.option("--label-map", default=None)
@click.option("--backend", type=BACKEND, default="fp32", show_default=True)
@json_option
def evaluate(bundle, data_path, split, fmt, text_col, label_col, label_map, backend, as_json):
    """Evaluate a bundle: accuracy/macro-F1 or entity P/R/F1, per-class table, confusion matrix."""
    from kgfusion.core.evaluate import format_report
    from kgfusion.core.jobs import DataSpec, evaluate_bundle

    spec = (DataSpec(path=data_path, fmt=fmt, text_col=text_col, label_col=label_col, label_map=_label_map(label_map))
            if data_path else None)
    metrics = evaluate_bundle(bundle, spec, split=split, backend=backend)
    emit(metrics, as_json, format_report(metrics, f"{Path(bundle).name} on {split} ({backend})"))


@group.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.argument("texts", nargs=-1)
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False),
              help="A text file, one item per line (instead of TEXTS).")
@click.option("--backend", type=BACKEND, default="fp32", show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@json_option
def predict(bundle, texts, input_path, backend, batch_size, as_json):
    """Predict labels (or entity spans) for TEXTS or the lines of --input."""
    from kgfusion.core.errors import KgfusionError
    from kgfusion.core.predict import Predictor
    from kgfusion.core.textfile import brief, read_text

    items = list(texts)
    if input_path:
        try:
            lines = read_text(input_path, "utf-8", hint="save it as UTF-8 text, one item per line").splitlines()
        except KgfusionError as exc:
            raise click.ClickException(str(exc)) from exc
        items += [line for line in lines if line.strip()]
        if not items:
            raise click.ClickException(f"{input_path} holds no text (blank lines only); write one item per line")
    if not items:
        raise click.UsageError("give TEXTS or --input FILE")
    predictor = Predictor.from_bundle(bundle, backend=backend, batch_size=batch_size)
    if predictor.task == "sequence":
        preds = predictor.predict(items)
        rows = [{"text": t, "label": p.label, "score": round(p.score, 4), "probs": p.probs} for t, p in zip(items, preds)]
        text = "\n".join(f"{r['label']:<10} {r['score']:.3f}  {brief(r['text'], 120)[1:-1]}" for r in rows)
    else:
        spans = predictor.predict_spans(items)
        rows = [{"text": t, "spans": [s.to_dict() for s in ss]} for t, ss in zip(items, spans)]
        text = "\n".join(
            f"{brief(r['text'], 120)[1:-1]}\n" + "\n".join(f"  [{s['start']}:{s['end']}] {s['label']:<10} {s['score']:.3f} {brief(s['text'], 80)[1:-1]}"
                                         for s in r["spans"])
            for r in rows
        )
    emit(rows, as_json, text)


@group.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@json_option
def info(bundle, as_json):
    """Show a bundle's manifest, size, files and headline metrics; verifies checksums."""
    from kgfusion.core.bundle import verify_bundle

    manifest = verify_bundle(bundle)
    path = Path(bundle)
    size_mb = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
    metrics = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").is_file() else {}
    headline = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    obj = {"manifest": manifest.to_dict(), "size_mb": round(size_mb, 2), "metrics": headline, "verified": True}
    text = "\n".join([
        f"{manifest.name}: {manifest.task} classification, {manifest.method} on {manifest.base}",
        f"labels: {', '.join(manifest.labels)}",
        f"size: {size_mb:.2f} MB in {len(manifest.files)} files (checksums verified)",
        "metrics: " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in headline.items()),
    ])
    emit(obj, as_json, text)


@group.command()
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--task", type=click.Choice(["sequence", "token"]), default="sequence", show_default=True)
@click.option("--method", type=click.Choice(["lora", "full"]), default="lora", show_default=True)
@click.option("--base", default="minilm", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "jsonl", "phrasebank"]), default="auto")
@click.option("--text-col", default="text")
@click.option("--label-col", default="label")
@click.option("--trials", type=int, default=8, show_default=True)
@click.option("--epochs", type=int, default=1, show_default=True)
@click.option("--max-steps", type=int, default=0, help="Cap each trial (0 = no cap).")
@click.option("--max-length", type=int, default=64, show_default=True)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--save-config", type=click.Path(dir_okay=False), help="Write the best TrainConfig as JSON.")
@json_option
def search(data_path, task, method, base, fmt, text_col, label_col, trials, epochs, max_steps, max_length, seed,
           save_config, as_json):
    """Hyperparameter search (Optuna) on the dev split; prints every trial and the best settings."""
    from kgfusion.core.fileio import atomic_write_text
    from kgfusion.core.finetune import TrainConfig
    from kgfusion.core.hpo import search as run_search
    from kgfusion.core.jobs import DataSpec, load_splits

    spec = DataSpec(path=data_path, fmt=fmt, text_col=text_col, label_col=label_col, seed=seed)
    splits, _, _ = load_splits(task, spec)
    config = TrainConfig(task=task, method=method, base=base, epochs=epochs, max_steps=max_steps,
                         max_length=max_length, seed=seed)
    result = run_search(config, splits.train, splits.dev, n_trials=trials, seed=seed)
    if save_config:
        atomic_write_text(save_config, result.best_config.to_json() + "\n")
    obj = {"best_params": result.best_params, "best_value": result.best_value, "metric": result.metric,
           "trials": result.trials}
    emit(obj, as_json, result.table() + f"\nbest {result.metric}={result.best_value:.4f} with {result.best_params}")


@group.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--onnx/--no-onnx", "with_onnx", default=True, show_default=True,
              help="Also export ONNX and quantize it to int8 (stored in the bundle as model.int8.onnx).")
@click.option("--split", type=click.Choice(["test", "dev"]), default="dev", show_default=True,
              help="Recorded split of the bundle's training file to measure on.")
@json_option
def quantize(bundle, with_onnx, split, as_json):
    """Quantize a bundle (torch dynamic int8, ONNX Runtime int8); report size, speed and metric change."""
    import tempfile

    from kgfusion.core.bundle import ONNX_INT8, add_file_to_bundle, load_bundle
    from kgfusion.core.jobs import bundle_split
    from kgfusion.core.measure import format_rows, measure_predictor
    from kgfusion.core.predict import Predictor
    from kgfusion.core.quantize import export_onnx, model_size_mb, quantize_onnx_int8

    loaded = load_bundle(bundle)
    examples = bundle_split(bundle, split, loaded.task)
    fp32 = Predictor(loaded.model, loaded.tokenizer, loaded.labels, loaded.task)
    int8 = Predictor(loaded.model, loaded.tokenizer, loaded.labels, loaded.task, backend="int8")
    rows = [measure_predictor("fp32", fp32, examples, model_size_mb(loaded.model)),
            measure_predictor("int8 (torch dynamic)", int8, examples, model_size_mb(int8.model))]
    if with_onnx:
        with tempfile.TemporaryDirectory() as tmp:
            fp32_onnx = export_onnx(loaded.model, loaded.tokenizer, Path(tmp) / "model.onnx", task=loaded.task)
            int8_onnx = quantize_onnx_int8(fp32_onnx, Path(tmp) / ONNX_INT8, quantize_embeddings=True)
            add_file_to_bundle(bundle, int8_onnx, ONNX_INT8)
        onnx = Predictor.from_bundle(bundle, backend="onnx-int8")
        rows.append(measure_predictor("onnx-int8 (ORT)", onnx, examples, model_size_mb(Path(bundle) / ONNX_INT8)))
    emit({"split": split, "rows": rows}, as_json, f"{Path(bundle).name} on its {split} split\n"
         + format_rows(rows, baseline="fp32"))


@group.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write the student as a new bundle.")
@click.option("--layers", type=int, default=3, show_default=True, help="Student encoder layers.")
@click.option("--prune", "prune_amount", type=float, default=0.0, help="Also report magnitude pruning of the teacher at this sparsity.")
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--split", type=click.Choice(["test", "dev"]), default="dev", show_default=True)
@click.option("--quiet", is_flag=True)
@json_option
def compress(bundle, out_dir, layers, prune_amount, epochs, lr, split, quiet, as_json):
    """Distil a smaller student (and optionally prune); report size, speed and metric change."""
    import copy

    from kgfusion.core.bundle import load_bundle, save_bundle
    from kgfusion.core.compress import distill, magnitude_prune, make_student
    from kgfusion.core.jobs import bundle_split
    from kgfusion.core.measure import format_rows, measure_predictor
    from kgfusion.core.predict import Predictor
    from kgfusion.core.quantize import model_size_mb

    loaded = load_bundle(bundle)
    if loaded.task != "sequence":
        raise click.UsageError("compress distils sequence classifiers; token models: use core.compress.distill")
    train_set = bundle_split(bundle, "train", loaded.task)
    examples = bundle_split(bundle, split, loaded.task)
    label_ids = {lab: i for i, lab in enumerate(loaded.labels)}
    teacher = loaded.model
    rows = [measure_predictor("teacher fp32", Predictor(teacher, loaded.tokenizer, loaded.labels, "sequence"),
                              examples, model_size_mb(teacher))]
    if prune_amount:
        pruned = copy.deepcopy(teacher)
        report = magnitude_prune(pruned, prune_amount)
        rows.append(measure_predictor(f"pruned {report.get('sparsity', prune_amount):.0%}",
                                      Predictor(pruned, loaded.tokenizer, loaded.labels, "sequence"), examples,
                                      model_size_mb(pruned)))
    student = make_student(teacher, layers)
    max_length = loaded.manifest.max_length
    distill(teacher, student, loaded.tokenizer, [e.text for e in train_set], [label_ids[e.label] for e in train_set],
            epochs=epochs, lr=lr, max_length=max_length, progress=not quiet and not as_json)
    s_fp32 = Predictor(student, loaded.tokenizer, loaded.labels, "sequence")
    s_int8 = Predictor(student, loaded.tokenizer, loaded.labels, "sequence", backend="int8")
    rows += [measure_predictor(f"student {layers}L fp32", s_fp32, examples, model_size_mb(student)),
             measure_predictor(f"student {layers}L int8", s_int8, examples, model_size_mb(s_int8.model))]
    if out_dir:
        save_bundle(out_dir, student, loaded.tokenizer, task="sequence", method="full", base=str(bundle),
                    labels=loaded.labels, max_length=max_length, name=Path(out_dir).name,
                    metrics={"rows": rows}, extra_files={"data.json": (Path(bundle) / "data.json").read_text(),
                                                         "split.json": (Path(bundle) / "split.json").read_text()},
                    model_card=f"# {Path(out_dir).name}\n\nA {layers}-layer student distilled from `{bundle}`.\n")
    emit({"split": split, "rows": rows}, as_json, format_rows(rows, baseline="teacher fp32"))


from kgfusion.apps.model import pretrain_cli  # noqa: E402  (continued MLM pretraining, issue 12)

group.add_command(pretrain_cli.pretrain)

from kgfusion.apps.model import corrections_cli  # noqa: E402  (analysts' corrections, issue 16)

group.add_command(corrections_cli.corrections)

from kgfusion.apps.model import registry_cli  # noqa: E402  (model versions: versions/promote/rollback/register, issue 16)

for _command in registry_cli.COMMANDS:
    group.add_command(_command)

from kgfusion.apps.model import update_cli  # noqa: E402  (continual updates without forgetting, issue 16)

group.add_command(update_cli.update)
