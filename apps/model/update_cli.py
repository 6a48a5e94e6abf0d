"""`kgfusion model update`: a new version of a bundle from new data (and analysts' corrections) that keeps
what the old version knew: replay + an anchor to the old weights, or a new adapter (core/lifecycle/update.py).

The new version is scored on the old held-out split and on the new data's held-out split; it is promoted
in the registry only when the old-task score fell by at most --max-drop points (exit code 1 otherwise,
unless --force)."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import click

from kgfusion.apps.common import emit, json_option
from kgfusion.core.lifecycle.update import DEFAULT_METHOD, METHODS, UpdateConfig

DEFAULTS = UpdateConfig()  # the CLI's defaults are the config's, so the measured best lives in one place


def _old_rows(bundle: Path, task: str, old_data: str | None, fmt: str, text_col: str, label_col: str):
    """(replay pool, old dev, old held-out): the bundle's own recorded splits, or --old-data split here."""
    from kgfusion.core.jobs import DataSpec, bundle_split, load_splits

    if old_data:
        splits, _, _ = load_splits(task, DataSpec(path=old_data, fmt=fmt, text_col=text_col, label_col=label_col))
        return list(splits.train), list(splits.dev), list(splits.test), old_data
    try:
        return (bundle_split(bundle, "train", task), bundle_split(bundle, "dev", task),
                bundle_split(bundle, "test", task), "the bundle's training file")
    except Exception as exc:  # noqa: BLE001 - any failure to find the old data has the same fix
        raise click.ClickException(f"{exc}; pass --old-data FILE (the old version's training data)") from exc


def _corrections_rows(db: str, domain: str, field: str, task: str, work: Path) -> list:
    """Corrections exported as training rows (core/lifecycle/corrections.py) and read back with core's reader."""
    from kgfusion.core.jobs import DataSpec, read_examples
    from kgfusion.core.lifecycle import corrections

    out = work / ("corrections.conll" if task == "token" else "corrections.csv")
    corrections.export_training_data(db, domain=domain, field=field, out=out)  # type: ignore[attr-defined]
    rows, _ = read_examples(task, DataSpec(path=str(out)))
    return rows


@click.command("update")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="New labelled data (CSV/JSONL text,label; CoNLL for NER), split 80/10/10 here.")
@click.option("--corrections", "corrections_db", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A corrections DuckDB (finance --db or medical corrections): its corrections join the new data.")
@click.option("--domain", type=click.Choice(["finance", "medical"]), default="finance", show_default=True)
@click.option("--field", "corr_field", default="sentiment", show_default=True,
              help="Which corrections to learn: sentiment, topic or ner.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="The new version's bundle.")
@click.option("--method", type=click.Choice(list(METHODS)), default=DEFAULT_METHOD, show_default=True)
@click.option("--replay", type=int, default=DEFAULTS.replay, show_default=True, help="Old training rows mixed in.")
@click.option("--reg-weight", type=float, default=DEFAULTS.reg_weight, show_default=True, help="L2-SP / EWC strength.")
@click.option("--epochs", type=int, default=DEFAULTS.epochs, show_default=True)
@click.option("--lr", type=float, default=None, help="Default 3e-5 (5e-4 for --method adapter).")
@click.option("--old-data", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The old version's training data (default: the file its data.json records).")
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "jsonl", "phrasebank"]), default="auto")
@click.option("--text-col", default="text", show_default=True)
@click.option("--label-col", default="label", show_default=True)
@click.option("--max-drop", type=float, default=DEFAULTS.max_drop_points, show_default=True,
              help="Refuse to promote when old-task accuracy falls by more points than this.")
@click.option("--force", is_flag=True, help="Promote even when the old task got worse than --max-drop.")
@click.option("--by", "who", default="", help="Your name, recorded with the version.")
@click.option("--no-register", is_flag=True, help="Write the bundle only; no registry version.")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True)
@click.option("--quiet", is_flag=True)
@json_option
def update(bundle, data_path, corrections_db, domain, corr_field, out_dir, method, replay, reg_weight, epochs, lr,
           old_data, fmt, text_col, label_col, max_drop, force, who, no_register, seed, quiet, as_json):
    """Train a new version of BUNDLE on --data / --corrections without forgetting the old task."""
    import tempfile

    from kgfusion.core.errors import KgfusionError
    from kgfusion.core.jobs import DataSpec, load_splits
    from kgfusion.core.lifecycle.update import (
        UpdateConfig,
        accuracy_of,
        forgetting_gate,
        headline,
        load_trainable,
        update_model,
    )

    if not data_path and not corrections_db:
        raise click.UsageError("give --data FILE and/or --corrections DB")
    bundle = Path(bundle)
    try:
        model, tok, labels, task, manifest = load_trainable(bundle)
        old_train, old_dev, old_test, old_source = _old_rows(bundle, task, old_data, fmt, text_col, label_col)
        new_train, new_dev, new_test = [], [], []
        if data_path:
            splits, _, _ = load_splits(task, DataSpec(path=data_path, fmt=fmt, text_col=text_col,
                                                      label_col=label_col, seed=seed))
            new_train, new_dev, new_test = list(splits.train), list(splits.dev), list(splits.test)
        with tempfile.TemporaryDirectory() as work:
            if corrections_db:
                fixed = _corrections_rows(corrections_db, domain, corr_field, task, Path(work))
                if not fixed:
                    raise click.ClickException(f"{corrections_db}: no {domain} {corr_field} corrections to learn from")
                rng = random.Random(seed)
                rng.shuffle(fixed)
                n_hold = len(fixed) // 10 if not new_dev else 0  # corrections alone: hold 10% out for dev
                new_dev += fixed[:n_hold]
                new_train += fixed[n_hold:]
        if not new_dev:
            raise click.ClickException("no dev rows for early stopping: give --data with at least 10 rows")
        before_old = accuracy_of(model, tok, labels, task, old_test)
        before_new = accuracy_of(model, tok, labels, task, new_test) if new_test else None
        cfg = UpdateConfig(method=method, replay=replay, reg_weight=reg_weight, epochs=epochs, lr=lr, seed=seed,
                           max_length=manifest.max_length, max_drop_points=max_drop)
        result = update_model((model, tok, labels, task), new_train, new_dev, old_train, old_dev, cfg,
                              progress=not quiet and not as_json)
        after_old = accuracy_of(result.model, tok, labels, task, old_test)
        after_new = accuracy_of(result.model, tok, labels, task, new_test) if new_test else None
    except KgfusionError as exc:
        raise click.ClickException(str(exc)) from exc
    verdict = forgetting_gate(headline(before_old), headline(after_old), max_drop, forced=force)
    metrics = {"old_heldout_before": _short(before_old), "old_heldout": _short(after_old),
               "new_heldout_before": _short(before_new), "new_heldout": _short(after_new),
               "old_drop_points": verdict.drop_points, "promote": verdict.promote, "method": method,
               "train_rows": result.train_rows, "replayed": result.replayed, "seconds": round(result.seconds, 1),
               "history": result.history, "parent": str(bundle), "old_data": old_source}
    out = _save_version(Path(out_dir), bundle, result, manifest, metrics, data_path, corrections_db, cfg)
    try:
        registry_note = "" if no_register else _register(bundle, out, metrics, data_path, cfg, who, verdict.promote)
    except KgfusionError as exc:
        raise click.ClickException(f"{out} was written but not registered: {exc}") from exc
    lines = [f"new version written: {out} ({method}, {result.train_rows} rows of which {result.replayed} replayed, "
             f"{result.seconds:.0f} s)",
             f"old held-out ({old_source}): {headline(before_old):.4f} -> {headline(after_old):.4f}",
             (f"new held-out: {headline(before_new):.4f} -> {headline(after_new):.4f}" if after_new else
              "new held-out: none (corrections only)"), verdict.message + registry_note]
    emit(metrics | {"bundle": str(out), "message": verdict.message}, as_json, "\n".join(lines))
    if not verdict.promote:
        raise SystemExit(1)


def _short(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if metrics is None:
        return None
    return {k: metrics[k] for k in ("accuracy", "macro_f1", "f1", "precision", "recall", "n") if k in metrics}


def _save_version(out: Path, parent: Path, result, manifest, metrics: dict[str, Any], data_path: str | None,
                  corrections_db: str | None, cfg) -> Path:
    """The new version as an ordinary bundle; data.json keeps the parent's (the old task stays guarded by the
    next update) plus this update's data."""
    from kgfusion.core.bundle import save_bundle
    from kgfusion.core.fileio import sha256_file

    info = json.loads((parent / "data.json").read_text()) if (parent / "data.json").is_file() else {}
    info.setdefault("updates", []).append({
        "parent": parent.name, "data": data_path, "sha256": sha256_file(Path(data_path)) if data_path else None,
        "corrections": corrections_db, "method": cfg.method, "replay": cfg.replay})
    extra = {"data.json": json.dumps(info, indent=2)}
    if (parent / "split.json").is_file():
        extra["split.json"] = (parent / "split.json").read_text()
    old, new = metrics["old_heldout"], metrics["new_heldout"]
    card = (f"# {out.name}\n\nA continual update of `{parent.name}` ({cfg.method}, replay {cfg.replay}, anchor "
            f"weight {cfg.reg_weight}, {cfg.epochs} epochs) on {data_path or 'analysts corrections'}.\n\n"
            f"- old held-out: {json.dumps(metrics['old_heldout_before'])} -> {json.dumps(old)}\n"
            f"- new held-out: {json.dumps(metrics['new_heldout_before'])} -> {json.dumps(new)}\n"
            f"- promoted: {metrics['promote']} (old-task drop {metrics['old_drop_points']} points)\n")
    return save_bundle(out, result.model, result.tokenizer, task=result.task, method="full", base=manifest.base,
                       labels=result.labels, max_length=manifest.max_length, name=out.name,
                       metrics=metrics, model_card=card, extra_files=extra,
                       train_config={"update": cfg.to_dict()})


def _register(parent: Path, out: Path, metrics: dict[str, Any], data_path: str | None, cfg, who: str,
              promote: bool) -> str:
    """Register the new version under the parent's name; promote it when the gate allowed it."""
    from kgfusion.apps.common import registry_root
    from kgfusion.core.lifecycle.registry import Registry

    reg = Registry(registry_root())
    name = _registry_name(parent, reg)
    version = reg.register(name, out, parent=_parent_version(parent, reg, name),
                           data_files=[data_path] if data_path else [], recipe={"update": cfg.to_dict()},
                           metrics={"old_heldout": metrics["old_heldout"], "new_heldout": metrics["new_heldout"]},
                           created_by=who or "unknown")
    if promote:
        reg.promote(name, version, by=who or "unknown", reason="model update passed the forgetting gate")
        return f"; registered and promoted as {name} v{version}"
    return f"; registered as {name} v{version} (not promoted)"


def _registry_name(parent: Path, reg) -> str:
    """A registry version's bundle lives in ROOT/NAME/vN: its name is NAME; any other bundle is its dir name."""
    try:
        rel = parent.resolve().relative_to(Path(reg.root).resolve())
        return rel.parts[0]
    except ValueError:
        return parent.name


def _parent_version(parent: Path, reg, name: str):
    part = parent.name
    return int(part[1:]) if part.startswith("v") and part[1:].isdigit() and _registry_name(parent, reg) == name \
        and parent.parent.name == name else str(parent)
