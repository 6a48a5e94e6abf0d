"""Rebuild the shipped finance sentiment bundle (``kgfusion finance train``).

Data: Financial PhraseBank 50-agree (seeded stratified train/dev/test; the all-agree sentences of the
held-out test are reported as their own subset) plus Twitter Financial News (0 -> negative,
1 -> positive, 2 -> neutral; its own seeded split). Training rows are both train parts; early stopping
uses both dev parts. Orchestration only: reading, splitting, training and saving are core functions.

Topics (issue 15): Twitter Financial News *topic* (``load_topic_splits``: 20 topic names from its
labels.csv, its only split -- train.csv -- cut into our own seeded, stratified train/dev/test). With a
``TopicSplits`` the bundle gets a second head (core/multitask.py): one encoder, a sentiment head (the
primary one: ``predict_proba`` stays sentiment) and a topic head, trained jointly.
"""
from __future__ import annotations

import csv
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
    Reject,
    TextExample,
    deduplicate,
    label_counts,
    read_phrasebank,
    read_text_classification,
    rejects_csv,
    split_stratified,
)
from kgfusion.core.errors import DataError
from kgfusion.core.finetune import TrainConfig

TWITTER_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}
FINBERT_PUBLISHED = {"phrasebank50_accuracy": 0.86, "phrasebank_allagree_accuracy": 0.97}
LABELS = ("negative", "neutral", "positive")
SENTIMENT_HEAD, TOPIC_HEAD = "sentiment", "topic"
TOPIC_DIR = "twitter_financial_news_topic"


@dataclass
class FinanceData:
    """Paths and split settings of the two training sets (fractions per set, one seed)."""

    phrasebank: str
    phrasebank_allagree: str
    twitter: str
    dev: float = 0.1
    test: float = 0.1
    seed: int = 13
    topics: str = ""  # Twitter Financial News topic tweets (train.csv: text,label id); read only for a topic head
    topic_labels: str = ""  # its labels.csv (id,name): the 20 topic names

    @classmethod
    def default(cls, data_dir: str | Path) -> FinanceData:
        d = Path(data_dir) / "datasets"
        return cls(str(d / "financial_phrasebank" / "Sentences_50Agree.txt"),
                   str(d / "financial_phrasebank" / "Sentences_AllAgree.txt"),
                   str(d / "twitter_financial_news" / "sent_train.csv"),
                   topics=str(d / TOPIC_DIR / "train.csv"), topic_labels=str(d / TOPIC_DIR / "labels.csv"))


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


@dataclass
class TopicSplits:
    """The topic data set: its topic names and our seeded, stratified train/dev/test of its train.csv."""

    labels: list[str]
    train: list[TextExample]
    dev: list[TextExample]
    test: list[TextExample]
    rows: dict[str, list[int]] = field(default_factory=dict)  # split -> source rows (dev, test)
    rejects: list[Reject] = field(default_factory=list)
    notes: str = ""

    def sizes(self) -> dict[str, int]:
        return {"topic_train": len(self.train), "topic_dev": len(self.dev), "topic_test": len(self.test)}


def read_topic_names(path: str | Path) -> list[str]:
    """The topic names of labels.csv (header ``id,name``; ids 0..n-1 in order, names unique): index = label id."""
    from kgfusion.core.textfile import UTF8_HINT, read_text

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: topic labels file not found (labels.csv beside the topic train.csv, "
                        f"see data/datasets/{TOPIC_DIR})")
    rows = list(csv.reader(read_text(path, "utf-8", hint=UTF8_HINT).splitlines()))
    if not rows or [c.strip() for c in rows[0]] != ["id", "name"]:
        raise DataError(f"{path}: expected the header 'id,name', found {rows[0] if rows else 'an empty file'}")
    names: list[str] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or row[0].strip() != str(len(names)) or not row[1].strip():
            raise DataError(f"{path}: line {lineno}: expected '{len(names)},<topic name>' (ids 0..n-1 in order), "
                            f"got {','.join(row)!r}")
        if row[1].strip() in names:
            raise DataError(f"{path}: line {lineno}: topic name {row[1].strip()!r} appears twice")
        names.append(row[1].strip())
    if len(names) < 2:
        raise DataError(f"{path}: {len(names)} topic(s); a topic head needs at least 2")
    return names


def read_topic_tweets(path: str | Path, names: Sequence[str]):
    """Topic tweets (``text,label`` with label ids of labels.csv) as TextExample(label=topic name, head='topic');
    rows with an empty text, an empty or unknown label id go to ``rejects`` with the reason."""
    if not Path(path).is_file():
        raise DataError(f"{path}: topic training file not found (see data/datasets/{TOPIC_DIR})")
    res = read_text_classification(path, label_map={str(i): name for i, name in enumerate(names)})
    res.examples = [TextExample(e.text, e.label, e.row, TOPIC_HEAD) for e in res.examples]
    return res


def sentiment_texts(splits: FinanceSplits) -> set[str]:
    """Every text of the sentiment sets (all splits), normalised: kept out of the topic splits."""
    return {_norm(e.text) for part in (splits.train, splits.dev, *splits.tests.values()) for e in part}


def load_topic_splits(data: FinanceData, sentiment: FinanceSplits | None = None) -> TopicSplits:
    """Read the topic set, drop repeated texts (and, with ``sentiment``, texts that are in a sentiment set:
    no text is in two splits of the joint training), split seeded and stratified by topic with the
    fractions and seed of ``data``. Every dropped row is in ``rejects`` with its reason."""
    if not data.topics or not data.topic_labels:
        raise DataError("no topic data: FinanceData.topics / topic_labels are empty (FinanceData.default(data_dir) "
                        f"points them at datasets/{TOPIC_DIR})")
    names = read_topic_names(data.topic_labels)
    read = read_topic_tweets(data.topics, names)
    kept, dup_report, dup_rejects = deduplicate(read.examples)
    rejects = list(read.rejects) + [Reject(data.topics, r.row, r.reason) for r in dup_rejects]
    overlap = sentiment_texts(sentiment) if sentiment is not None else set()
    examples = []
    for e in kept:
        if _norm(e.text) in overlap:
            rejects.append(Reject(data.topics, e.row, "same text as a row of the sentiment data sets: kept out so "
                                                      "no text is in two splits", e.text[:200]))
        else:
            examples.append(e)
    if not examples:
        raise DataError(f"{data.topics}: no usable topic rows ({len(rejects)} rejected)")
    split = split_stratified(examples, data.dev, data.test, data.seed)
    rows = {"dev": sorted(e.row for e in split.dev), "test": sorted(e.row for e in split.test)}
    notes = (f"{dup_report.summary()}; {len(read.rejects)} rows rejected at reading; "
             f"{len(rejects) - len(read.rejects) - len(dup_rejects)} rows equal to a sentiment text removed")
    return TopicSplits(names, split.train, split.dev, split.test, rows, sorted(rejects, key=lambda r: r.row), notes)


def as_head(examples: Sequence[TextExample], head: str) -> list[TextExample]:
    """Rows labelled for ``head``; rows that already name a head keep it."""
    return [e if e.head else TextExample(e.text, e.label, e.row, head) for e in examples]


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


def topic_config(config: TrainConfig, topics: TopicSplits) -> TrainConfig:
    """``config`` with the sentiment (primary) and topic heads, unless it names its heads itself."""
    if config.heads:
        missing = {SENTIMENT_HEAD, TOPIC_HEAD} - set(config.heads)
        if missing or config.primary_head != SENTIMENT_HEAD:
            raise DataError(f"TrainConfig.heads {list(config.heads)} (primary {config.primary_head!r}) must hold "
                            f"{SENTIMENT_HEAD!r} as the primary head and {TOPIC_HEAD!r}")
        return config
    return TrainConfig.from_dict(config.to_dict() | {
        "labels": list(LABELS), "heads": {SENTIMENT_HEAD: list(LABELS), TOPIC_HEAD: list(topics.labels)},
        "primary_head": SENTIMENT_HEAD})


def train_finsent_examples(config: TrainConfig, data: FinanceData, splits: FinanceSplits, out_dir: str | Path, *,
                           train_rows: Sequence[TextExample] | None = None, progress: bool = True,
                           command: Sequence[str] | None = None, onnx: bool = True, soft_targets=None,
                           example_weights=None, checkpoint_dir=None, recipe=None,
                           topics: TopicSplits | None = None) -> dict[str, Any]:
    """Train on ``train_rows`` (default: the splits' train part; a recipe adds augmented copies), evaluate
    on the held-out sets (fp32, and ONNX int8 when exported), save the bundle.

    ``topics``: train a topic head next to sentiment (one encoder, two heads); ``train_rows`` then holds
    rows of both heads (a row without a head is a sentiment row; default: both train parts), dev is both
    dev parts, and the topic test split is scored as ``topic_accuracy`` / ``topic_macro_f1``."""
    from kgfusion.core.finetune import train
    from kgfusion.core.jobs import evaluate_predictor
    from kgfusion.core.predict import Predictor

    if not config.labels:
        config = TrainConfig.from_dict(config.to_dict() | {"labels": list(LABELS)})
    dev = splits.dev
    if topics is not None:
        config = topic_config(config, topics)
        rows = as_head(train_rows if train_rows is not None else splits.train + topics.train, SENTIMENT_HEAD)
        dev = as_head(splits.dev, SENTIMENT_HEAD) + topics.dev
    else:
        rows = list(train_rows) if train_rows is not None else splits.train
    result = train(config, rows, dev, progress=progress, soft_targets=soft_targets,
                   example_weights=example_weights, checkpoint_dir=checkpoint_dir)
    predictor = Predictor(result.model, result.tokenizer, result.labels, "sequence", max_length=128)
    tests = evaluate_tests(predictor, splits.tests)
    dev_metrics = result.dev_metrics.get("heads", {}).get(SENTIMENT_HEAD, result.dev_metrics)
    metrics: dict[str, Any] = {
        **headline(tests),
        "dev_accuracy": dev_metrics.get("accuracy"),  # sentiment dev, as for the sentiment-only bundle
        "dev_macro_f1": dev_metrics.get("macro_f1"),
        "train_seconds": round(result.seconds, 1),
        "train_steps": result.steps,
        "method": config.method,
        "finbert_published": FINBERT_PUBLISHED,
        "details": {"dev": result.dev_metrics, "tests": tests, "history": result.history},
    }
    files = ["phrasebank", "phrasebank_allagree", "twitter"]
    data_info: dict[str, Any] = {
        "split": {"fractions": {"dev": data.dev, "test": data.test}, "seed": data.seed,
                  "sizes": splits.sizes() | {"train": len(rows)}},
        "label_counts": {"train": label_counts(e for e in rows if e.head != TOPIC_HEAD),
                         "dev": label_counts(splits.dev)},
        "duplicates": splits.notes,
        "licence": "PhraseBank CC BY-NC-SA 3.0 (non-commercial); Twitter Financial News MIT",
    }
    split_rows: dict[str, Any] = dict(splits.rows)
    extra_files: dict[str, str] = {}
    if topics is not None:
        topic_test = evaluate_predictor(predictor, topics.test, head=TOPIC_HEAD)
        topic_dev = result.dev_metrics["heads"][TOPIC_HEAD]
        metrics |= headline({TOPIC_HEAD: topic_test}) | {
            "dev_topic_accuracy": topic_dev["accuracy"], "dev_topic_macro_f1": topic_dev["macro_f1"],
            "dev_selected_macro_f1": result.dev_metrics["macro_f1"], "heads": list(result.heads)}
        metrics["details"]["topic_test"] = topic_test
        files += ["topics", "topic_labels"]
        data_info["split"]["sizes"] |= topics.sizes() | {
            "train": sum(e.head == SENTIMENT_HEAD for e in rows), "topic_train": sum(e.head == TOPIC_HEAD for e in rows)}
        data_info["label_counts"] |= {"topic_train": label_counts(e for e in rows if e.head == TOPIC_HEAD),
                                      "topic_dev": label_counts(topics.dev), "topic_test": label_counts(topics.test)}
        data_info["duplicates"] = {**splits.notes, "topics": topics.notes}
        data_info["topic_rejected_rows"] = len(topics.rejects)
        data_info["topics"] = list(topics.labels)
        data_info["licence"] += " (sentiment and topic)"
        split_rows["twitter_topic"] = topics.rows
        if topics.rejects:
            extra_files["rejects.csv"] = rejects_csv(topics.rejects)
    data_info = {"files": {k: {"path": getattr(data, k), "sha256": sha256_file(Path(getattr(data, k)))}
                           for k in files}} | data_info
    if recipe is not None:
        data_info["recipe"] = recipe.name
    cmd = " ".join(shlex.quote(c) for c in (command or sys.argv))
    card = model_card(Path(out_dir).name, config, data_info, metrics, cmd)
    out = save_bundle(out_dir, result.model, result.tokenizer, task="sequence", method=config.method,
                      base=config.base, labels=result.labels, max_length=config.max_length,
                      name=Path(out_dir).name, train_config=config.to_dict(), metrics=metrics, model_card=card,
                      extra_files={"split.json": json.dumps(split_rows), "data.json": json.dumps(data_info, indent=2)}
                      | extra_files)
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
    topic = "topic_accuracy" in metrics
    n_topics = len(data.get("topics", []))
    what = (f"Three-class financial sentiment (negative / neutral / positive) and {n_topics} financial topics from "
            "one forward pass:\none encoder with two heads (sentiment is the primary head), for kgfusion's finance "
            "monitor." if topic else
            "Three-class financial sentiment (negative / neutral / positive) for kgfusion's finance monitor.")
    topic_data = f"""
- Twitter Financial News Topic (train file; {n_topics} topics from its labels.csv), own seeded stratified
  split with the same fractions and seed (its official validation split is not used); texts that also occur
  in the sentiment sets are left out (rejects.csv). Topic sizes: train {sizes.get('topic_train')}, dev \
{sizes.get('topic_dev')}, test {sizes.get('topic_test')}.""" if topic else ""
    topic_rows = f"""
| Twitter Financial News Topic (topic head) | {f('topic_accuracy')} | {f('topic_macro_f1')} | \
FinBERT-tone fine-tuned: 0.911 (other split) |
| dev topic | {f('dev_topic_accuracy')} | {f('dev_topic_macro_f1')} | |""" if topic else ""
    stopping = ("dev macro-F1 (" + ("mean of the sentiment and topic heads" if config.select_on == "mean"
                                    else f"{config.select_on} head") + ")") if topic else "dev macro-F1"
    held_out = {k: v for k, v in sizes.items() if k not in ("train", "dev", "topic_train", "topic_dev", "topic_test")}
    return f"""# {name}

{what}

- Base: {config.base} ({method})
- Training: {config.epochs} epochs max, batch {config.batch_size}, lr {config.learning_rate}, max_length \
{config.max_length}, seed {config.seed}, early stopping on {stopping} (patience {config.patience}); \
{metrics.get('train_steps')} steps in {metrics.get('train_seconds')} s on {platform.machine()} CPU

## Data
- Financial PhraseBank v1.0, 50-agree (Malo et al. 2014), de-duplicated, seeded stratified split
  (dev {s['dev']:.0%}, test {s['test']:.0%}, seed {data['split']['seed']}); all-agree subset of its test split
  reported.
- Twitter Financial News Sentiment (train file; 0=Bearish->negative, 1=Bullish->positive, 2=Neutral->neutral),
  own seeded split with the same fractions.{topic_data}
- Sizes: train {sizes['train']}, dev {sizes['dev']}; held-out tests: \
{', '.join(f'{k} {v}' for k, v in held_out.items())}
- Licences: {data['licence']}. The PhraseBank licence makes this bundle non-commercial.

## Held-out metrics
| test set | accuracy | macro-F1 | FinBERT (Araci 2019) accuracy |
|---|---|---|---|
| PhraseBank 50-agree | {f('phrasebank50_accuracy')} | {f('phrasebank50_macro_f1')} | 0.86 |
| PhraseBank all-agree subset | {f('phrasebank_allagree_accuracy')} | {f('phrasebank_allagree_macro_f1')} | 0.97 |
| Twitter Financial News | {f('twitter_accuracy')} | {f('twitter_macro_f1')} | n/a |
| dev (both sets) | {f('dev_accuracy')} | {f('dev_macro_f1')} | |{topic_rows}

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
    report the model's metrics, plus the model fused with the finance rules (``with_rules``). A bundle
    with a topic head also reports ``model.topic`` on its topic test split."""
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
    if TOPIC_HEAD in predictor.heads:
        from kgfusion.core.jobs import evaluate_predictor

        topics = load_topic_splits(data, splits)
        recorded_topic = rows.get("twitter_topic") if recorded.is_file() else None
        if recorded_topic and sorted(e.row for e in topics.test) != recorded_topic["test"]:
            raise DataError(f"{bundle_dir}: the topic test split differs from split.json (other data files?); "
                            "pass the --data-dir the bundle was trained on")
        result["model"][TOPIC_HEAD] = _short(evaluate_predictor(predictor, topics.test, head=TOPIC_HEAD))
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
