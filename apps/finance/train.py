"""Rebuild the shipped finance sentiment bundle (``kgfusion finance train``).

Data: Financial PhraseBank 50-agree (seeded stratified train/dev/test; the all-agree sentences of the
held-out test are reported as their own subset) plus Twitter Financial News (0 -> negative,
1 -> positive, 2 -> neutral; its own seeded split). Training rows are both train parts; early stopping
uses both dev parts. Orchestration only: reading, splitting, training and saving are core functions.
"""
from __future__ import annotations

import json
import platform
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgfusion.apps.finance import rule_kinds as _rule_kinds  # noqa: F401 - registers ambiguous_ticker for the finance rules
from kgfusion.core.bundle import ONNX_INT8, add_file_to_bundle, save_bundle, sha256_file
from kgfusion.core.data import (
    TextExample,
    deduplicate,
    label_counts,
    read_phrasebank,
    read_text_classification,
    split_stratified,
)
from kgfusion.core.errors import DataError
from kgfusion.core.finetune import TrainConfig

TWITTER_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}
FINBERT_PUBLISHED = {"phrasebank50_accuracy": 0.86, "phrasebank_allagree_accuracy": 0.97}
LABELS = ("negative", "neutral", "positive")


@dataclass
class FinanceData:
    """Paths and split settings of the two training sets (fractions per set, one seed)."""

    phrasebank: str
    phrasebank_allagree: str
    twitter: str
    dev: float = 0.1
    test: float = 0.1
    seed: int = 13

    @classmethod
    def default(cls, data_dir: str | Path) -> FinanceData:
        d = Path(data_dir) / "datasets"
        return cls(str(d / "financial_phrasebank" / "Sentences_50Agree.txt"),
                   str(d / "financial_phrasebank" / "Sentences_AllAgree.txt"),
                   str(d / "twitter_financial_news" / "sent_train.csv"))


@dataclass
class FinanceSplits:
    train: list[TextExample]
    dev: list[TextExample]
    tests: dict[str, list[TextExample]] = field(default_factory=dict)  # name -> held-out examples
    rows: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # set -> split -> source rows
    notes: dict[str, str] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "dev": len(self.dev)} | {k: len(v) for k, v in self.tests.items()}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def load_finance_splits(data: FinanceData) -> FinanceSplits:
    """Read, de-duplicate and split both sets; the all-agree test subset is matched by normalised text."""
    for p in (data.phrasebank, data.phrasebank_allagree, data.twitter):
        if not Path(p).is_file():
            raise DataError(f"{p}: training file not found; pass its path (see `kgfusion finance train --help`)")
    pb, pb_dup_report, _ = deduplicate(read_phrasebank(data.phrasebank).examples)
    pb_split = split_stratified(pb, data.dev, data.test, data.seed)
    allagree = {_norm(e.text) for e in read_phrasebank(data.phrasebank_allagree).examples}
    tw_read = read_text_classification(data.twitter, label_map=TWITTER_LABELS)
    tw, tw_dup_report, _ = deduplicate(tw_read.examples)
    tw_split = split_stratified(tw, data.dev, data.test, data.seed)
    tests = {
        "phrasebank50": pb_split.test,
        "phrasebank_allagree": [e for e in pb_split.test if _norm(e.text) in allagree],
        "twitter": tw_split.test,
    }
    rows = {
        "phrasebank50": {"dev": sorted(e.row for e in pb_split.dev), "test": sorted(e.row for e in pb_split.test)},
        "twitter": {"dev": sorted(e.row for e in tw_split.dev), "test": sorted(e.row for e in tw_split.test)},
    }
    notes = {"phrasebank50": pb_dup_report.summary(), "twitter": tw_dup_report.summary()
             + f"; {len(tw_read.rejects)} rows rejected at reading"}
    return FinanceSplits(pb_split.train + tw_split.train, pb_split.dev + tw_split.dev, tests, rows, notes)


def evaluate_tests(predictor, tests: dict[str, Sequence[TextExample]]) -> dict[str, dict[str, Any]]:
    """Accuracy / macro-F1 (and per-class report) of a Predictor on each held-out set."""
    from kgfusion.core.jobs import evaluate_predictor

    return {name: evaluate_predictor(predictor, list(exs)) for name, exs in tests.items() if exs}


def headline(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Flat numbers: <set>_accuracy and <set>_macro_f1 for every test set."""
    out: dict[str, float] = {}
    for name, m in results.items():
        out[f"{name}_accuracy"] = round(float(m["accuracy"]), 4)
        out[f"{name}_macro_f1"] = round(float(m["macro_f1"]), 4)
    return out


def train_finsent(config: TrainConfig, data: FinanceData, out_dir: str | Path, *, progress: bool = True,
                  command: Sequence[str] | None = None, onnx: bool = True) -> dict[str, Any]:
    """Train, evaluate on the three held-out sets, save the bundle (+ ONNX int8 when available)."""
    return train_finsent_examples(config, data, load_finance_splits(data), out_dir, progress=progress,
                                  command=command, onnx=onnx)


def train_finsent_examples(config: TrainConfig, data: FinanceData, splits: FinanceSplits, out_dir: str | Path, *,
                           train_rows: Sequence[TextExample] | None = None, progress: bool = True,
                           command: Sequence[str] | None = None, onnx: bool = True, soft_targets=None,
                           example_weights=None, checkpoint_dir=None, recipe=None) -> dict[str, Any]:
    """Train on ``train_rows`` (default: the splits' train part; a recipe adds augmented copies), evaluate
    on the held-out sets (fp32, and ONNX int8 when exported), save the bundle."""
    from kgfusion.core.finetune import train
    from kgfusion.core.predict import Predictor

    if not config.labels:
        config = TrainConfig.from_dict(config.to_dict() | {"labels": list(LABELS)})
    rows = list(train_rows) if train_rows is not None else splits.train
    result = train(config, rows, splits.dev, progress=progress, soft_targets=soft_targets,
                   example_weights=example_weights, checkpoint_dir=checkpoint_dir)
    predictor = Predictor(result.model, result.tokenizer, result.labels, "sequence", max_length=128)
    tests = evaluate_tests(predictor, splits.tests)
    metrics: dict[str, Any] = {
        **headline(tests),
        "dev_accuracy": result.dev_metrics.get("accuracy"),
        "dev_macro_f1": result.dev_metrics.get("macro_f1"),
        "train_seconds": round(result.seconds, 1),
        "train_steps": result.steps,
        "method": config.method,
        "finbert_published": FINBERT_PUBLISHED,
        "details": {"dev": result.dev_metrics, "tests": tests, "history": result.history},
    }
    data_info = {
        "files": {k: {"path": getattr(data, k), "sha256": sha256_file(Path(getattr(data, k)))}
                  for k in ("phrasebank", "phrasebank_allagree", "twitter")},
        "split": {"fractions": {"dev": data.dev, "test": data.test}, "seed": data.seed,
                  "sizes": splits.sizes() | {"train": len(rows)}},
        "label_counts": {"train": label_counts(rows), "dev": label_counts(splits.dev)},
        "duplicates": splits.notes,
        "licence": "PhraseBank CC BY-NC-SA 3.0 (non-commercial); Twitter Financial News MIT",
    }
    if recipe is not None:
        data_info["recipe"] = recipe.name
    cmd = " ".join(shlex.quote(c) for c in (command or sys.argv))
    card = model_card(Path(out_dir).name, config, data_info, metrics, cmd)
    out = save_bundle(out_dir, result.model, result.tokenizer, task="sequence", method=config.method,
                      base=config.base, labels=result.labels, max_length=config.max_length,
                      name=Path(out_dir).name, train_config=config.to_dict(), metrics=metrics, model_card=card,
                      extra_files={"split.json": json.dumps(splits.rows), "data.json": json.dumps(data_info, indent=2)})
    onnx_note = export_onnx_int8(out) if onnx else "skipped"
    return {"bundle": str(out), "metrics": {k: v for k, v in metrics.items() if k != "details"},
            "data": data_info, "onnx": onnx_note}


def export_onnx_int8(bundle_dir: str | Path) -> str:
    """Add model.int8.onnx to a bundle when core.quantize offers the export; returns a short note."""
    import tempfile

    try:
        from kgfusion.core.quantize import export_onnx, quantize_onnx_int8
    except ImportError as exc:
        return f"skipped: core.quantize has no ONNX export ({exc})"
    from kgfusion.core.bundle import load_bundle

    loaded = load_bundle(bundle_dir)
    with tempfile.TemporaryDirectory(dir=Path(bundle_dir).parent) as work:
        fp32 = export_onnx(loaded.model, loaded.tokenizer, Path(work) / "model.onnx", task="sequence")
        q = quantize_onnx_int8(fp32, Path(work) / ONNX_INT8)
        add_file_to_bundle(bundle_dir, q, ONNX_INT8)
    return f"written: {ONNX_INT8}"


def model_card(name: str, config: TrainConfig, data: dict[str, Any], metrics: dict[str, Any], command: str) -> str:
    from kgfusion.core.jobs import method_text, metric_text

    def f(key: str) -> str:
        return metric_text(metrics, key)

    method = method_text(config)
    s, sizes = data["split"]["fractions"], data["split"]["sizes"]
    return f"""# {name}

Three-class financial sentiment (negative / neutral / positive) for kgfusion's finance monitor.

- Base: {config.base} ({method})
- Training: {config.epochs} epochs max, batch {config.batch_size}, lr {config.learning_rate}, max_length \
{config.max_length}, seed {config.seed}, early stopping on dev macro-F1 (patience {config.patience}); \
{metrics.get('train_steps')} steps in {metrics.get('train_seconds')} s on {platform.machine()} CPU

## Data
- Financial PhraseBank v1.0, 50-agree (Malo et al. 2014), de-duplicated, seeded stratified split
  (dev {s['dev']:.0%}, test {s['test']:.0%}, seed {data['split']['seed']}); all-agree subset of its test split
  reported.
- Twitter Financial News Sentiment (train file; 0=Bearish->negative, 1=Bullish->positive, 2=Neutral->neutral),
  own seeded split with the same fractions.
- Sizes: train {sizes['train']}, dev {sizes['dev']}; held-out tests: \
{', '.join(f'{k} {v}' for k, v in sizes.items() if k not in ('train', 'dev'))}
- Licences: {data['licence']}. The PhraseBank licence makes this bundle non-commercial.

## Held-out metrics
| test set | accuracy | macro-F1 | FinBERT (Araci 2019) accuracy |
|---|---|---|---|
| PhraseBank 50-agree | {f('phrasebank50_accuracy')} | {f('phrasebank50_macro_f1')} | 0.86 |
| PhraseBank all-agree subset | {f('phrasebank_allagree_accuracy')} | {f('phrasebank_allagree_macro_f1')} | 0.97 |
| Twitter Financial News | {f('twitter_accuracy')} | {f('twitter_macro_f1')} | n/a |
| dev (both sets) | {f('dev_accuracy')} | {f('dev_macro_f1')} | |

FinBERT's numbers are from its paper (a 110M-parameter model further pre-trained on financial text, own
split); ours come from a 22M-parameter MiniLM ({method}) and our own seeded split, so they are a
reference point, not a like-for-like comparison.

## Intended use and limits
One signal among lexicon rules and knowledge-graph facts in `kgfusion finance`. Trained on news
sentences and financial tweets in English; sarcasm, emoji-heavy chatter and non-English text are out
of scope. Errors follow the annotators' disagreements (50-agree labels are noisy).

## Rebuild
```
{command}
```
"""


def data_for_bundle(bundle_dir: str | Path, data: FinanceData) -> FinanceData:
    """``data`` with the split fractions and seed the bundle recorded (data.json): its test sets re-created."""
    info_file = Path(bundle_dir) / "data.json"
    split = (json.loads(info_file.read_text()) if info_file.is_file() else {}).get("split", {})
    fractions = split.get("fractions", {})
    data.dev, data.test = fractions.get("dev", data.dev), fractions.get("test", data.test)
    data.seed = split.get("seed", data.seed)
    return data


def evaluate_finsent(bundle_dir: str | Path, data: FinanceData, *, backend: str = "fp32",
                     with_rules: bool = True, config: Any = None) -> dict[str, Any]:
    """Re-create the bundle's held-out test sets (seed from data.json, checked against split.json) and
    report the model's metrics, plus the model fused with the finance rules (``with_rules``)."""
    from kgfusion.apps.finance.scoring import SentimentScorer
    from kgfusion.core.evaluate import classification_metrics
    from kgfusion.core.predict import Predictor
    from kgfusion.knowledge.rules import load_domain_rules

    bundle_dir = Path(bundle_dir)
    splits = load_finance_splits(data_for_bundle(bundle_dir, data))
    recorded = bundle_dir / "split.json"
    if recorded.is_file():
        rows = json.loads(recorded.read_text())
        for name in ("phrasebank50", "twitter"):
            if name in rows and sorted(e.row for e in splits.tests[name]) != rows[name]["test"]:
                raise DataError(f"{bundle_dir}: the {name} test split differs from split.json (other data files?); "
                                "pass the --data-dir the bundle was trained on")
    predictor = Predictor.from_bundle(bundle_dir, backend=backend)  # type: ignore[arg-type]
    result: dict[str, Any] = {"bundle": str(bundle_dir), "backend": backend,
                              "model": {k: _short(v) for k, v in evaluate_tests(predictor, splits.tests).items()},
                              "finbert_published": FINBERT_PUBLISHED}
    if with_rules:
        scorer = SentimentScorer(predictor, load_domain_rules("finance"), config)
        fused = {}
        for name, exs in splits.tests.items():
            preds = [s.label for s in scorer.score([e.text for e in exs])]
            fused[name] = _short(classification_metrics([e.label for e in exs], preds, predictor.labels))
        result["fused"] = fused
    return result


def _short(m: dict[str, Any]) -> dict[str, Any]:
    return {"accuracy": round(float(m["accuracy"]), 4), "macro_f1": round(float(m["macro_f1"]), 4), "n": m["n"],
            "per_class": m.get("per_class")}
