"""`kgfusion finance lexical-head`: fit the topic n-gram head of a bundle and fuse it (apps/finance/lexical_head.py)."""
from __future__ import annotations

from pathlib import Path

import click

from kgfusion.apps.common import emit, json_option, repo_data_dir


@click.command("lexical-head")
@click.option("--bundle", type=click.Path(exists=True, file_okay=False), required=True,
              help="A bundle with a topic head, e.g. data/models/finsent-topics (written in place).")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory holding datasets/ (default: the repo's data/).")
@click.option("--word-max", type=int, default=None, help="Word 1-2-gram features (default 10000).")
@click.option("--char-max", type=int, default=None, help="Character 2-5-gram features (default 20000).")
@click.option("--c", "c_grid", type=float, multiple=True,
              help="Regularisation C to try (repeatable; the best on the dev split wins; default 3, 10, 30).")
@json_option
def lexical_head(bundle: str, data_dir: str | None, word_max: int | None, char_max: int | None,
                 c_grid: tuple[float, ...], as_json: bool) -> None:
    """Fit a TF-IDF n-gram topic classifier on the bundle's topic train split, tune its fusion weight on the
    dev split, score model / n-grams / fused on the held-out topic test split, and ship it in the bundle."""
    from kgfusion.apps.finance.lexical_head import build_topic_lexical_head

    settings = {k: v for k, v in {"word_max": word_max, "char_max": char_max,
                                  "C": list(c_grid) or None}.items() if v is not None}
    report = build_topic_lexical_head(Path(bundle), Path(data_dir) if data_dir else repo_data_dir(), settings=settings)
    m, n, f = report["model_only"], report["ngram_only"], report["fused"]
    emit(report, as_json,
         f"{bundle}: lexical_topic.npz ({report['file_kb']} kB, alpha {report['fusion']['alpha']:.2f}, "
         f"tau {report['fusion']['tau']:.2f}, C {report['fusion']['C']:g}) in {report['seconds']} s\n"
         f"held-out topic test ({report['test_n']}): model {m['accuracy']:.4f} / {m['macro_f1']:.4f}, "
         f"n-grams {n['accuracy']:.4f} / {n['macro_f1']:.4f}, fused {f['accuracy']:.4f} / {f['macro_f1']:.4f} "
         "(accuracy / macro-F1)")
