"""`kgfusion demo`: run the shipped models and knowledge on the shipped data and print the results."""
from __future__ import annotations

import time

import click

from kgfusion.apps.common import repo_data_dir, results_dir

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
    started = time.perf_counter()
    sentiment_demo(quick)
    finance_demo(ctx, 500 if quick else feed_items)
    medical_demo()
    recommend_demo(quick)
    click.secho(f"\nDemo finished in {time.perf_counter() - started:.0f} s. Explore the results: kgfusion ui", bold=True)


def medical_demo() -> None:
    """NER + ConText + KG linking on the sample notes written for the repo (data/notes)."""
    from kgfusion.apps.medical.demo import demo_summary, format_summary

    notes = repo_data_dir() / "notes"
    click.secho(f"\n== Clinical notes: {notes} (NER, ConText attributes, Disease Ontology / DrugBank links)", bold=True)
    # character n-gram linking: the MiniLM concept index takes minutes to build the first time
    click.echo("\n".join(format_summary(demo_summary(notes, quick=True))))


def recommend_demo(quick: bool) -> None:
    """The shipped MovieLens recommender: its validation metrics, then top picks with explanations."""
    import json

    from kgfusion.apps.recommend.recommender import evaluate_recommender, load_recommender

    model_dir = repo_data_dir() / "models" / "recommender-movielens"
    click.secho(f"\n== Recommendations: {model_dir.name} (MovieLens small, KG + text + collaborative)", bold=True)
    started = time.perf_counter()
    rec = load_recommender(model_dir)
    if quick:
        metrics = json.loads((model_dir / "metrics.json").read_text())
        source = "as trained (metrics.json)"
    else:
        metrics = evaluate_recommender(model_dir)
        source = f"re-measured now, {metrics['users_per_s']:.0f} users/s"
    click.echo(f"validation (last 20% of each user's ratings), {source}: NDCG@10 {metrics['ndcg_at_10']:.4f}, "
               f"Recall@10 {metrics['recall_at_10']:.4f}, coverage {metrics['coverage']:.4f}")
    baselines = results_dir() / "recommend.json"
    if baselines.is_file():
        b = json.loads(baselines.read_text())
        click.echo(f"best baseline ({b['best_baseline']}) NDCG@10 {b['best_baseline_ndcg_at_10']:.4f}: "
                   f"kgfusion {100 * (metrics['ndcg_at_10'] / b['best_baseline_ndcg_at_10'] - 1):+.1f}%")
    users = rec.known_users()[: 2 if quick else 3] + [-1]  # -1: a user the model has never seen
    frame = rec.recommend_frame(users, k=3)
    for user, rows in frame.groupby("user_id", sort=False):
        label = "new user (cold start)" if rows["cold_start"].iloc[0] else f"user {user}"
        click.echo(f"-- {label}")
        for r in rows.itertuples():
            click.echo(f"  {r.rank}. {r.title} ({r.score:.3f}) - {r.explanation}")
    click.echo(f"({time.perf_counter() - started:.1f} s)")


def finance_demo(ctx: click.Context, limit: int) -> None:
    """The finance monitor on the first ``limit`` StockNet tweets into runs/finance.duckdb (the page's default).

    Re-running adds nothing already stored, so a second demo shows "0 new" and the same alerts.
    """
    from pathlib import Path

    from kgfusion.apps.finance.cli import monitor

    db = Path("runs") / "finance.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    click.secho(f"\n== Finance monitor: first {limit} StockNet tweets (int8) -> {db}", bold=True)
    ctx.invoke(monitor, file=str(repo_data_dir() / STOCKNET_FEED), db=str(db), limit=limit, quiet=True, top=5)


def sentiment_demo(quick: bool) -> None:
    """The sentiment bundle the finance app uses, with the app's default backend next to fp32, on its
    held-out test sets (PhraseBank 50-agree, its all-agree subset, Twitter; --quick: the first 200 of each)."""
    from kgfusion.apps.finance.config import DEFAULT_BACKEND, DEFAULT_BUNDLE_NAME
    from kgfusion.apps.finance.train import FinanceData, data_for_bundle, evaluate_tests, load_finance_splits
    from kgfusion.core.bundle import available_backends, resolve_backend
    from kgfusion.core.predict import Predictor

    data = repo_data_dir()
    bundle = data / "models" / DEFAULT_BUNDLE_NAME
    default = resolve_backend(bundle, DEFAULT_BACKEND)
    # fp32 next to the default when the bundle ships it; a full fine-tune ships only its ONNX int8 model
    backends = tuple(dict.fromkeys(("fp32", default))) if "fp32" in available_backends(bundle) else (default,)
    click.secho(f"== Sentiment model of the finance app: {bundle.name} ({default} by default, "
                + ("next to fp32)" if len(backends) > 1 else "the only model it ships)"), bold=True)
    started = time.perf_counter()
    tests = load_finance_splits(data_for_bundle(bundle, FinanceData.default(data))).tests
    tests = {name: list(exs)[:200] if quick else list(exs) for name, exs in tests.items() if exs}
    predictors = {backend: Predictor.from_bundle(bundle, backend=backend) for backend in backends}
    scores = {backend: evaluate_tests(p, tests) for backend, p in predictors.items()}
    click.echo(f"{'held-out test set':<22} {'n':>5}  " + "  ".join(f"{b + ' acc':>13}" for b in backends)
               + ("  difference" if len(backends) > 1 else ""))
    for name in tests:
        accs = [scores[b][name]["accuracy"] for b in backends]
        diff = f"  {100 * (accs[-1] - accs[0]):+.1f} points" if len(accs) > 1 else ""
        click.echo(f"{name:<22} {len(tests[name]):>5}  " + "  ".join(f"{a:>13.4f}" for a in accs) + diff)
    click.echo(f"-- predictions ({default})")
    for text, pred in zip(EXAMPLES, predictors[default].predict(EXAMPLES)):
        click.echo(f"{pred.label:<9} {pred.score:.2f}  {text}")
    click.echo(f"({time.perf_counter() - started:.1f} s)")

