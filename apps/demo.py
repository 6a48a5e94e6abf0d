"""`kgfusion demo`: run the shipped models and knowledge on the shipped data and print the results."""
from __future__ import annotations

import time

import click

from apps.common import repo_data_dir

SENTIMENT_BUNDLE = "models/finsent-phrasebank-lora"
EXAMPLES = [
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007.",
    "The company said it would cut 300 jobs after sales fell sharply.",
    "The annual general meeting will be held on 15 March.",
]


STOCKNET_FEED = "datasets/stocknet/stocknet_raw_tweets.jsonl.gz"


@click.command("demo")
@click.option("--quick", is_flag=True, help="Small slices only (well under a minute).")
@click.option("--feed-items", type=int, default=5000, show_default=True,
              help="StockNet items the finance monitor reads (--quick: 500).")
@click.pass_context
def demo(ctx: click.Context, quick: bool, feed_items: int) -> None:
    """Run the shipped demo end to end and print the results."""
    sentiment_demo(quick)
    finance_demo(ctx, 500 if quick else feed_items)


def finance_demo(ctx: click.Context, limit: int) -> None:
    """The finance monitor on the first ``limit`` StockNet tweets into runs/finance.duckdb (the page's default).

    Re-running adds nothing already stored, so a second demo shows "0 new" and the same alerts.
    """
    from pathlib import Path

    from apps.finance.cli import monitor

    db = Path("runs") / "finance.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    click.secho(f"\n== Finance monitor: first {limit} StockNet tweets (int8) -> {db}", bold=True)
    ctx.invoke(monitor, file=str(repo_data_dir() / STOCKNET_FEED), db=str(db), limit=limit, quiet=True, top=5)


def sentiment_demo(quick: bool) -> None:
    """The shipped PhraseBank sentiment bundle on its held-out split, fp32 and int8."""
    from core.bundle import load_bundle
    from core.evaluate import format_report
    from core.jobs import bundle_split, evaluate_predictor
    from core.predict import Predictor

    data = repo_data_dir()
    bundle = data / SENTIMENT_BUNDLE
    click.secho(f"== Sentiment model: {bundle.name}", bold=True)
    started = time.perf_counter()
    loaded = load_bundle(bundle)
    test = bundle_split(bundle, "test", loaded.task)
    if quick:
        test = test[:120]
    predictors = {backend: Predictor(loaded.model, loaded.tokenizer, loaded.labels, loaded.task, backend=backend)
                  for backend in ("fp32", "int8")}
    for backend, predictor in predictors.items():
        metrics = evaluate_predictor(predictor, test)
        click.echo(format_report(metrics, f"-- held-out PhraseBank test split ({len(test)} sentences), backend {backend}"))
    click.echo("-- predictions (int8)")
    for text, pred in zip(EXAMPLES, predictors["int8"].predict(EXAMPLES)):
        click.echo(f"{pred.label:<9} {pred.score:.2f}  {text}")
    click.echo(f"({time.perf_counter() - started:.1f} s)")
