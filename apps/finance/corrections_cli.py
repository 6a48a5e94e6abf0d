"""`kgfusion finance correct`: record analysts' corrections of items' sentiment / topic (apps/finance/corrections.py).

Kept apart from cli.py so the finance group only gains one registration line; imports stay lazy.
"""
from __future__ import annotations

import click

from kgfusion.apps.common import emit, json_option


@click.command("correct")
@click.option("--db", required=True, type=click.Path(dir_okay=False),
              help="The finance monitor DuckDB (`kgfusion finance monitor FEED --db DB`); corrections are stored in it.")
@click.option("--item", "item_id", default=None, help="Id of the item to correct (items.id).")
@click.option("--label", default=None, help="The right sentiment: negative, neutral or positive (the bundle's labels).")
@click.option("--topic", default=None, help="The right topic (a topic of the bundle's topic head or of the database).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Import many: a CSV with item_id (or id) and label (or sentiment) and/or topic columns, optional "
                   "who; bad rows go to CSV.rejects.csv with the reason.")
@click.option("--who", required=True, help="Your name, stored with every correction.")
@click.option("--bundle", type=click.Path(file_okay=False), default=None,
              help="Bundle whose labels and topics to allow (default: the one that scored the items, under data/models/).")
@json_option
def correct(db, item_id, label, topic, csv_path, who, bundle, as_json):
    """Correct an item's sentiment (and topic): `--item ID --label negative [--topic 'Earnings']`, or many
    with `--csv FILE`. The model's prediction stays in the items table; a new correction of the same item
    is a new row and the newest wins when corrections are exported (`kgfusion model corrections export`)."""
    from kgfusion.apps.finance.corrections import correct_item, import_corrections

    if bool(item_id) == bool(csv_path):
        raise click.UsageError("give either --item ID (with --label and/or --topic) or --csv FILE")
    if csv_path:
        if label or topic:
            raise click.UsageError("--label/--topic go with --item; a --csv file has label/topic columns")
        result = import_corrections(db, csv_path, who=who, bundle=bundle)
        emit({"imported": len(result.added), "rows": result.rows, "rejected": len(result.rejects),
              "rejects_path": str(result.rejects_path) if result.rejects_path else None,
              "corrections": [c.to_dict() for c in result.added]}, as_json, result.summary())
        return
    stored = correct_item(db, item_id, who=who, label=label, topic=topic, bundle=bundle)
    lines = [f"correction {c.correction_id} stored in {db}: item {c.item_id} {c.field} {c.old_value or '-'} -> "
             f"{c.new_value} (by {c.who}; model {c.model or '?'}"
             + (f" {c.model_version}" if c.model_version else "") + ")" for c in stored]
    emit({"corrections": [c.to_dict() for c in stored]}, as_json,
         "\n".join(lines) + "\nthe model's prediction stays in the items table")
