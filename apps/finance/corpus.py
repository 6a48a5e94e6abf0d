"""Unlabelled in-domain text for continued MLM pretraining (``kgfusion finance pretrain-corpus``).

Sources (under ``<data_dir>/datasets``): StockNet tweets (stocknet/stocknet_raw_tweets.jsonl.gz, field
``text``) and the *training* texts of Financial PhraseBank 50-agree and Twitter Financial News, split exactly
as ``kgfusion finance train`` splits them (``load_finance_splits``). Dev and test texts of both sets are
never written: a StockNet (or training) text equal to one of them, compared lower-cased with whitespace
collapsed, is excluded. Lines are de-duplicated the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kgfusion.apps.finance.train import FinanceData, load_finance_splits
from kgfusion.core.errors import DataError
from kgfusion.core.pretrain import CorpusBuild, clean_line, read_corpus

STOCKNET = Path("stocknet") / "stocknet_raw_tweets.jsonl.gz"


def normalise(text: str) -> str:
    """Lower case, whitespace collapsed: how texts are compared for exclusion and de-duplication."""
    return " ".join(text.lower().split())


def build_finance_corpus(data_dir: str | Path, data: FinanceData | None = None,
                         stocknet: str | Path | None = None) -> CorpusBuild:
    """StockNet tweets + PhraseBank/Twitter training texts, without any dev/test text, de-duplicated.

    ``data``: the labelled sets and their split settings (default ``FinanceData.default(data_dir)``, the
    split ``kgfusion finance train`` uses); ``stocknet``: the tweets file (default under ``data_dir``).
    """
    data = data or FinanceData.default(data_dir)
    stocknet_path = Path(stocknet) if stocknet else Path(data_dir) / "datasets" / STOCKNET
    if not stocknet_path.is_file():
        raise DataError(f"{stocknet_path}: StockNet tweets not found; pass --data-dir pointing at the folder "
                        "holding datasets/")
    splits = load_finance_splits(data)
    held_out = {normalise(e.text) for e in splits.dev}
    for examples in splits.tests.values():
        held_out |= {normalise(e.text) for e in examples}
    tweets = read_corpus(stocknet_path, "jsonl")
    lines: list[str] = []
    seen: set[str] = set()
    excluded: dict[str, int] = {"stocknet: equal to a dev/test text": 0, "stocknet: duplicate": 0,
                                "labelled train: equal to a dev/test text": 0, "labelled train: duplicate": 0,
                                "stocknet: rows without text": tweets.skipped}
    kept = {"stocknet": 0, "labelled_train": 0}
    for source, texts in (("stocknet", tweets.documents), ("labelled train", [e.text for e in splits.train])):
        for text in texts:
            key = normalise(text)
            if not key:
                continue
            if key in held_out:
                excluded[f"{source}: equal to a dev/test text"] += 1
            elif key in seen:
                excluded[f"{source}: duplicate"] += 1
            else:
                seen.add(key)
                lines.append(clean_line(text))
                kept[source.replace(" ", "_")] += 1
    stats: dict[str, Any] = {
        "domain": "finance",
        "sources": {
            str(stocknet_path): {"rows": tweets.lines, "texts": len(tweets.documents), "kept": kept["stocknet"]},
            "phrasebank50 + twitter_financial_news train split": {
                "texts": len(splits.train), "kept": kept["labelled_train"],
                "split": {"dev": data.dev, "test": data.test, "seed": data.seed, "sizes": splits.sizes()}},
        },
        "held_out_texts": len(held_out),
        "excluded": excluded,
        "documents": len(lines),
    }
    return CorpusBuild(lines, stats)
