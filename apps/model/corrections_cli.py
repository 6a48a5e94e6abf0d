"""`kgfusion model corrections export | list`: analysts' corrections as training data (core.lifecycle).

The corrections DuckDB is the finance monitor database (finance corrections live next to the items) or the
medical corrections file given to `kgfusion medical correct --db`.
"""
from __future__ import annotations

import click

from kgfusion.apps.common import emit, json_option, one_line_errors

DOMAIN = click.Choice(["finance", "medical"])


@click.group("corrections")
def corrections() -> None:
    """Analysts' corrections: list them, export them as training data."""


@corrections.command("export")
@click.option("--db", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Corrections DuckDB (the finance monitor --db, or the medical corrections --db).")
@click.option("--domain", type=DOMAIN, required=True)
@click.option("--field", "what", type=click.Choice(["sentiment", "topic", "ner"]), required=True,
              help="finance: sentiment or topic (text,label CSV/TSV/JSONL); medical: ner (CoNLL token<TAB>tag).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Training file: .csv/.tsv/.jsonl for sentiment/topic, .conll/.tsv/.iob for ner (written atomically).")
@json_option
@one_line_errors
def export(db: str, domain: str, what: str, out: str, as_json: bool) -> None:
    """Write the newest correction per item (per span for ner) as training data core's readers read."""
    from kgfusion.core.lifecycle.corrections import export_training_data

    result = export_training_data(db, domain=domain, field=what, out=out)
    unit = "sentences" if what == "ner" else "rows"
    labels = ", ".join(f"{k} {v}" for k, v in result.labels.items())
    text = (f"{result.rows} {unit} from {result.items} corrected {'notes' if what == 'ner' else 'items'} written "
            f"to {out} ({result.fmt}); " + ("entities" if what == "ner" else "labels") + f": {labels or 'none'}")
    if result.without_prediction:
        text += (f"\n{result.without_prediction} notes have no stored prediction: only their corrected mentions "
                 "are tagged")
    text += "".join(f"\nskipped: {s}" for s in result.skipped)
    emit(result.to_dict(), as_json, text)


@corrections.command("list")
@click.option("--db", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--domain", type=DOMAIN, default=None)
@click.option("--item", "item_id", default=None, help="Only this item / note id.")
@click.option("--field", "what", default=None, help="Only this field (sentiment, topic, mention, missed_mention, "
              "concept, attribute:negated, ...).")
@click.option("--who", default=None, help="Only corrections by this name.")
@click.option("--latest", is_flag=True, help="Only the newest correction per item, field and span (what export uses).")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="Rows to print (newest last).")
@json_option
@one_line_errors
def list_(db: str, domain: str | None, item_id: str | None, what: str | None, who: str | None, latest: bool,
          limit: int, as_json: bool) -> None:
    """Corrections oldest first: id, time, who, item, field, span, model value -> corrected value, model."""
    from kgfusion.core.lifecycle.corrections import CorrectionStore

    with CorrectionStore(db, read_only=True) as store:
        rows = store.select(domain, item_id, what, who)
        if latest:
            keys = {c.key: c for c in rows}
            rows = sorted(keys.values(), key=lambda c: (c.created, c.correction_id or 0))
        counts = store.counts()
    shown = rows[-limit:]
    lines = [f"{len(rows)} corrections" + (f" (last {len(shown)})" if len(shown) < len(rows) else "")
             + (f"; by field: {', '.join(f'{k} {v}' for k, v in counts.items())}" if counts else "")]
    for c in shown:
        span = f" [{c.span}]" if c.span else ""
        lines.append(f"  {c.correction_id:>5} {c.created:%Y-%m-%d %H:%M:%S} {c.who[:16]:<16} {c.domain:<7} "
                     f"{c.item_id[:20]:<20} {c.field}{span}: {_short(c.old_value)} -> {_short(c.new_value)}"
                     + (f"  ({' '.join(filter(None, (c.model, c.model_version)))})" if c.model else ""))
    emit({"total": len(rows), "counts": counts, "corrections": [c.to_dict() for c in shown]}, as_json,
         "\n".join(lines))



def _short(value: str | None, width: int = 40) -> str:
    if value is None:
        return "-"
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"
