"""`kgfusion medical correct`: record a clinician's corrections of one note (apps/medical/corrections.py).

Kept apart from cli.py so the medical group only gains one registration line; imports stay lazy.
"""
from __future__ import annotations

import click

from kgfusion.apps.common import emit, json_option
from kgfusion.core.errors import KgfusionError


@click.command("correct")
@click.option("--db", required=True, type=click.Path(dir_okay=False),
              help="Corrections DuckDB (created if missing), e.g. corrections.duckdb.")
@click.option("--note-file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The plain-text note the corrections are about (offsets index its text).")
@click.option("--who", required=True, help="Your name, stored with every correction.")
@click.option("--wrong", multiple=True, metavar="START:END", help="A predicted mention that is not one.")
@click.option("--add", multiple=True, metavar="START:END:LABEL", help="A missed mention, e.g. 12:20:Disease.")
@click.option("--attribute", multiple=True, metavar="START:END:NAME=true|false",
              help="Fix a ConText attribute (negated, possible, historical, family, hypothetical), e.g. 12:20:negated=true.")
@click.option("--concept", multiple=True, metavar="START:END:ID", help="Fix the linked concept, e.g. 12:20:DOID:784.")
@click.option("--note-id", default=None, help="Note id (default: the file name without extension, as `extract` names it).")
@click.option("--predictions", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The `medical extract --out` JSONL holding this note's mentions (else the extractor runs on the note).")
@click.option("--bundle", default=None, help="Model bundle directory or name under data/models/ (labels, model version).")
@click.option("--backend", type=click.Choice(["fp32", "int8", "onnx-int8"]), default="onnx-int8", show_default=True)
@click.option("--link-encoder", type=click.Choice(["minilm", "hashing"]), default="minilm", show_default=True)
@json_option
@click.pass_context
def correct(ctx, db, note_file, who, wrong, add, attribute, concept, note_id, predictions, bundle, backend, link_encoder,
            as_json):
    """Correct the mentions of one note: --wrong START:END, --add START:END:LABEL, --attribute
    START:END:negated=true, --concept START:END:ID (each may repeat; --wrong runs before --add, so
    `--wrong 5:9 --add 5:9:Chemical` relabels). The note's prediction is kept as it was; a newer
    correction of the same span wins on export (`kgfusion model corrections export --domain medical`)."""
    from kgfusion.apps.medical.corrections import (
        Edits,
        PredictedNote,
        bundle_labels,
        correct_note,
        describe,
        predictions_from_jsonl,
        read_note,
    )

    edits = Edits(wrong, add, attribute, concept)
    if not edits:
        raise click.UsageError("give at least one of --wrong, --add, --attribute, --concept")
    try:
        labels, model, version = bundle_labels(bundle)
        nid, text = read_note(note_file, note_id)
        if predictions:
            note = PredictedNote(nid, text, predictions_from_jsonl(predictions, nid, text), model, version)
        else:
            note = PredictedNote.from_result(_extract(ctx, nid, text, bundle, backend, link_encoder), model, version)
        stored = correct_note(db, note, edits, who=who, labels=labels)
    except KgfusionError as exc:
        raise click.ClickException(str(exc)) from exc
    emit({"corrections": [c.to_dict() for c in stored]}, as_json,
         "\n".join(describe(c) for c in stored) + f"\nstored in {db} (by {stored[0].who}; model {model}"
         + (f" {version}" if version else "") + ")")


def _extract(ctx: click.Context, note_id: str, text: str, bundle, backend: str, link_encoder: str):
    """The note's mentions now, from the extractor (tests inject a predictor / encoder via ctx.obj)."""
    from kgfusion.apps.medical.config import DEFAULT_BUNDLE, MedicalConfig
    from kgfusion.apps.medical.extract import build_extractor

    overrides = (ctx.obj or {}).get("build_kwargs", {})
    config = MedicalConfig(bundle=bundle or DEFAULT_BUNDLE, backend=backend, link_encoder=link_encoder)
    return build_extractor(config, **overrides).extract(text, note_id)
