"""`kgfusion recommend train | evaluate | score`: movie recommendations with explanations, in batch."""
from __future__ import annotations

from pathlib import Path

import click

from kgfusion.apps.common import DomainGroup, emit, json_option, repo_data_dir


@click.group("recommend", cls=DomainGroup)
def group() -> None:
    """Movie recommendations (MovieLens): train, evaluate against baselines, batch-score users."""


def default_model() -> Path:
    return repo_data_dir() / "models" / "recommender-movielens"


# ------------------------------------------------------------------------------------------- score
@group.command()
@click.option("--users", default="all", show_default=True,
              help="'all' (the model's known users) or a CSV/TXT file with a user_id column or one id per line.")
@click.option("--k", type=click.IntRange(min=1), default=10, show_default=True, help="Recommendations per user.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .parquet, .csv or .jsonl (written atomically at the end).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="In-process, or on Ray (extra: distributed): a local Ray instance, or the cluster at "
                   "$RAY_ADDRESS; each worker loads the model once.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Recommender model directory (default: data/models/recommender-movielens).")
@click.option("--shard-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Users per shard; finished shards are kept in <out>.shards/ until the run completes.")
@click.option("--restart", is_flag=True, help="Discard finished shards of an earlier run instead of resuming.")
@click.option("--keep-shards", is_flag=True, help="Keep <out>.shards/ after the final file is written.")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False), default=None,
              help="Rejected user rows CSV (default: <out>.rejects.csv when there are rejects).")
@click.option("--loader", default="kgfusion.apps.recommend.recommender:load_recommender", show_default=True,
              envvar="KGFUSION_RECOMMEND_LOADER",
              help="module:function that loads a model directory into an object with recommend_frame(users, k).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def score(users, k, out, engine, model_dir, shard_size, restart, keep_shards, rejects_path, loader, quiet, as_json):
    """Top-K movies per user with score and explanation, written to --out; a rerun resumes by shard."""
    from kgfusion.apps.recommend.batch import score_users

    model = Path(model_dir) if model_dir else default_model()
    summary = score_users(model, users, k=k, out=out, engine=engine, shard_size=shard_size, loader=loader,
                          progress=not (quiet or as_json), restart=restart, rejects_path=rejects_path,
                          keep_shards=keep_shards)
    s = summary
    text = (f"{s['users']} users scored ({s['rows']} rows, {s['cold_start_users']} cold start) -> {s['out']}\n"
            f"shards: {s['shards_done']} scored, {s['shards_skipped']} resumed of {s['shards']}; "
            f"{s['users_per_s']:.1f} users/s ({s['engine']}, {s['seconds']:.1f} s)\n"
            f"{s['rejects']} rejected" + (f" -> {s['rejects_path']}" if s["rejects_path"] else ""))
    emit(summary, as_json, text)


# train / evaluate live with the model code; the group works without them.
try:
    from kgfusion.apps.recommend.model_cli import evaluate, train
except ModuleNotFoundError as exc:
    if exc.name != "kgfusion.apps.recommend.model_cli":  # a broken import inside model_cli must not hide
        raise
else:
    group.add_command(train)
    group.add_command(evaluate)
