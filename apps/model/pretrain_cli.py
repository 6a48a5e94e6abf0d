"""`kgfusion model pretrain`: continued MLM pretraining of a base encoder on in-domain text.

The corpora come from the domain apps (`kgfusion medical pretrain-corpus`, `kgfusion finance pretrain-corpus`):
the generic model app knows no domain.
"""
from __future__ import annotations

from pathlib import Path

import click

from kgfusion.apps.common import emit, json_option


def _command_line(ctx: click.Context, corpus: tuple[str, ...]) -> list[str]:
    """The command for PRETRAIN.md: every corpus file as --corpus, non-default options, no --stop-after."""
    from kgfusion.core.commands import rebuild_command

    ctx.params["corpus"] = corpus
    words = rebuild_command(ctx)
    if "--stop-after" in words:
        i = words.index("--stop-after")
        del words[i:i + 2]
    return words


@click.command("pretrain")
@click.argument("more_corpus", nargs=-1, type=click.Path(exists=True, dir_okay=False), metavar="[FILES]...")
@click.option("--corpus", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Unlabelled text: one document per line (.txt, .gz ok), JSONL with a 'text' field, or PubTator. "
                   "Repeat, or list more files after the options.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Base-model directory to write (rerun the same command to resume).")
@click.option("--base", default="minilm", show_default=True, help="'minilm' or a local BERT-like model directory.")
@click.option("--max-length", type=int, default=128, show_default=True, help="Tokens per packed block.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--epochs", type=int, default=1, show_default=True)
@click.option("--max-steps", type=int, default=0, show_default=True, help="Step budget; overrides --epochs (0 = off).")
@click.option("--warmup-ratio", type=float, default=0.06, show_default=True)
@click.option("--schedule", type=click.Choice(["linear", "cosine"]), default="linear", show_default=True)
@click.option("--mlm-probability", type=float, default=0.15, show_default=True)
@click.option("--whole-word-mask/--token-mask", default=True, show_default=True)
@click.option("--save-every", type=int, default=200, show_default=True, help="Checkpoint every N steps.")
@click.option("--eval-every", type=int, default=0, help="Held-out loss every N steps (0 = at each checkpoint).")
@click.option("--eval-fraction", type=float, default=0.02, show_default=True, help="Documents held out for the loss curve.")
@click.option("--eval-max-blocks", type=int, default=128, show_default=True)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--stop-after", type=int, default=0, help="Run at most N steps now, checkpoint and stop (rerun to go on).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def pretrain(more_corpus, corpus, out_dir, base, max_length, batch_size, lr, epochs, max_steps, warmup_ratio,
             schedule, mlm_probability, whole_word_mask, save_every, eval_every, eval_fraction, eval_max_blocks, seed,
             stop_after, quiet, as_json):
    """Continue masked-language-model pretraining (whole-word masking) of a base encoder on in-domain text.

    Writes a base-model directory (`kgfusion model train --base OUT`), OUT/pretrain_log.json and OUT/PRETRAIN.md.
    """
    from kgfusion.core.pretrain import PretrainConfig
    from kgfusion.core.pretrain import pretrain as run_pretrain

    files = tuple(corpus) + tuple(more_corpus)
    if not files:
        raise click.UsageError("pass at least one corpus file: --corpus FILE (see kgfusion medical|finance pretrain-corpus)")
    config = PretrainConfig(base=base, max_length=max_length, batch_size=batch_size, lr=lr, epochs=epochs,
                            max_steps=max_steps, warmup_ratio=warmup_ratio, schedule=schedule,
                            mlm_probability=mlm_probability, whole_word_mask=whole_word_mask, seed=seed,
                            save_every=save_every, eval_every=eval_every, eval_fraction=eval_fraction,
                            eval_max_blocks=eval_max_blocks)
    command = _command_line(click.get_current_context(), files)
    result = run_pretrain(config, files, out_dir, progress=not quiet and not as_json, stop_after=stop_after,
                          command=command)
    curve = "  ".join(f"{step}:{loss:.3f}" for step, loss in result["eval_curve"])
    status = "finished" if result["finished"] else "stopped (rerun the same command to continue)"
    resumed = (f"; resumed from step {result['resumed_from_step']}" if result["resumed_from_step"] is not None
               else "")
    text = "\n".join([
        f"{status} at step {result['steps']}/{result['total_steps']}{resumed}; "
        f"{result['seconds_per_step'] or '-'} s/step this run",
        f"blocks of {max_length} tokens: {result['blocks']['train']} train, {result['blocks']['heldout']} held out",
        f"held-out MLM loss by step: {curve}",
        f"base model written: {result['out_dir']}" if result["finished"] else f"checkpoint: {result['checkpoint']}",
        f"log: {result['log_file']}; card: {Path(result['out_dir']) / 'PRETRAIN.md'}",
    ])
    obj = {k: v for k, v in result.items() if k not in ("corpus_builds",)}
    emit(obj, as_json, text)
