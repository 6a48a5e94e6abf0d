"""Click commands ``train`` and ``evaluate`` for the kgfusion recommender (wired into `kgfusion recommend`)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from kgfusion.apps.common import kg_store_option
from kgfusion.apps.recommend.recommender import DEFAULT_KG, DEFAULT_MOVIES, DEFAULT_RATINGS
from kgfusion.core.errors import KgfusionError

_KEYS = ("ndcg_at_10", "recall_at_10", "map_at_10", "coverage", "diversity", "novelty", "users_per_s")


def _show(metrics: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(metrics, indent=2, sort_keys=True, default=str))
        return
    for key in _KEYS:
        if key in metrics:
            click.echo(f"{key:>14}: {float(metrics[key]):.4f}")


@click.command("train")
@click.option("--ratings", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_RATINGS,
              show_default=True, help="MovieLens ratings.csv (userId,movieId,rating,timestamp)")
@click.option("--movies", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_MOVIES,
              show_default=True, help="MovieLens movies.csv (movieId,title,genres)")
@click.option("--kg", "kg", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_KG,
              show_default=True, help="movie knowledge graph (Turtle)")
@kg_store_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="model directory")
@click.option("--encoder", default="minilm", show_default=True,
              help="item text encoder: minilm, a local model directory, or none")
@click.option("--tune/--no-tune", default=True, show_default=True,
              help="contrastively tune the encoder on co-consumed pairs")
@click.option("--quick", is_flag=True, help="few tuning steps and boosting rounds (smoke run)")
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the metrics as JSON")
def train(ratings: Path, movies: Path, kg: Path, out: Path, encoder: str, tune: bool, quick: bool, seed: int,
          as_json: bool) -> None:
    """Fit the recommender, evaluate it on the validation split, and save it to --out."""
    from kgfusion.apps.recommend.recommender import train_recommender

    try:
        metrics = train_recommender(ratings, movies, kg, out, encoder=encoder, tune_encoder=tune, quick=quick,
                                    seed=seed, progress=not as_json)
    except KgfusionError as exc:
        raise click.ClickException(str(exc)) from exc
    _show(metrics, as_json)


@click.command("evaluate")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="model directory written by `train`")
@click.option("--ratings", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_RATINGS,
              show_default=True)
@click.option("--movies", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_MOVIES,
              show_default=True)
@click.option("-k", type=click.IntRange(1, 100), default=10, show_default=True, help="list length")
@click.option("--json", "as_json", is_flag=True, help="print the metrics as JSON")
def evaluate(model_dir: Path, ratings: Path, movies: Path, k: int, as_json: bool) -> None:
    """Re-run the validation protocol with a saved model's ranker, embeddings and rules."""
    from kgfusion.apps.recommend.recommender import evaluate_recommender

    try:
        metrics = evaluate_recommender(model_dir, ratings, movies, k=k)
    except KgfusionError as exc:
        raise click.ClickException(str(exc)) from exc
    _show(metrics, as_json)
