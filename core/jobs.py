"""End-to-end jobs over files: train a bundle from a labelled file, evaluate a bundle on a file.

These are what ``kgfusion model train|evaluate`` call; apps reuse them with their own data.
"""
from __future__ import annotations

import json
import platform
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kgfusion.core.bundle import save_bundle, sha256_file
from kgfusion.core.data import (
    Reject,
    TextExample,
    TokenExample,
    deduplicate,
    label_counts,
    read_conll,
    read_text_classification,
    split_stratified,
    write_rejects,
)
from kgfusion.core.errors import DataError
from kgfusion.core.evaluate import classification_metrics, entity_metrics
from kgfusion.core.finetune import TrainConfig, train
from kgfusion.core.textfile import brief

SplitName = Literal["train", "dev", "test", "all"]


@dataclass
class DataSpec:
    """Where labelled data comes from and how it is split (recorded in the bundle)."""

    path: str
    fmt: str = "auto"
    text_col: str = "text"
    label_col: str = "label"
    label_map: dict[str, str] | None = None
    dev: float = 0.1
    test: float = 0.1
    seed: int = 13
    licence: str = "see the data set's LICENSE file"
    description: str = ""
    extra_train: list[str] = field(default_factory=list)  # more files, train split only


def read_examples(task: str, spec: DataSpec, path: str | None = None) -> tuple[list, list[Reject]]:
    """Read one file of the spec; token files are CoNLL, text files by format."""
    p = path or spec.path
    if task == "token":
        res = read_conll(p)
        return res.examples, res.rejects
    res = read_text_classification(p, spec.text_col, spec.label_col, spec.fmt, spec.label_map)
    return res.examples, res.rejects


def load_splits(task: str, spec: DataSpec):
    """Read, de-duplicate (text tasks) and split; returns (splits, rejects, duplicate summary)."""
    examples, rejects = read_examples(task, spec)
    dup_note = ""
    if task == "sequence":
        examples, report, dup_rejects = deduplicate(examples)
        rejects += [Reject(spec.path, r.row, r.reason) for r in dup_rejects]
        dup_note = report.summary()
    splits = split_stratified(examples, spec.dev, spec.test, spec.seed)
    return splits, rejects, dup_note


def train_bundle(config: TrainConfig, spec: DataSpec, out_dir: str | Path, name: str = "",
                 progress: bool = True, command: Sequence[str] | None = None) -> dict[str, Any]:
    """Train on ``spec`` and write a bundle with metrics.json, MODEL_CARD.md, split.json and rejects."""
    splits, rejects, dup_note = load_splits(config.task, spec)
    train_set = list(splits.train)
    for extra in spec.extra_train:
        ex, rj = read_examples(config.task, spec, extra)
        train_set += ex
        rejects += rj
    result = train(config, train_set, splits.dev, progress=progress)
    test_metrics = _evaluate_model(config.task, result.model, result.tokenizer, result.labels,
                                   splits.test, config.max_length) if splits.test else {}
    metrics = {
        "dev_accuracy": result.dev_metrics.get("accuracy"),
        "dev_macro_f1": result.dev_metrics.get("macro_f1"),
        "dev_f1": result.dev_metrics.get("f1"),
        "test_accuracy": test_metrics.get("accuracy"),
        "test_macro_f1": test_metrics.get("macro_f1"),
        "test_f1": test_metrics.get("f1"),
        "train_seconds": round(result.seconds, 1),
        "train_steps": result.steps,
        "details": {"dev": result.dev_metrics, "test": test_metrics, "history": result.history},
    }
    metrics = {k: v for k, v in metrics.items() if v is not None}
    data_info = {
        "path": spec.path,
        "sha256": sha256_file(Path(spec.path)),
        "extra_train": spec.extra_train,
        "split": {"dev": spec.dev, "test": spec.test, "seed": spec.seed, **splits.sizes()},
        "label_counts": {"train": label_counts(train_set), "dev": label_counts(splits.dev),
                         "test": label_counts(splits.test)},
        "rejected_rows": len(rejects),
        "duplicates": dup_note,
        "licence": spec.licence,
    }
    split_rows = {"dev": sorted(e.row for e in splits.dev), "test": sorted(e.row for e in splits.test)}
    cmd = " ".join(shlex.quote(c) for c in (command or sys.argv))
    card = model_card(name or Path(out_dir).name, config, result.labels, data_info, metrics, spec, cmd)
    out = save_bundle(
        out_dir, result.model, result.tokenizer, task=config.task, method=config.method, base=config.base,
        labels=result.labels, max_length=config.max_length, name=name, train_config=config.to_dict(),
        metrics=metrics, model_card=card,
        extra_files={"split.json": json.dumps(split_rows), "data.json": json.dumps(data_info, indent=2)},
    )
    if rejects:
        write_rejects(rejects, out / "rejects.csv")
    return {"bundle": str(out), "metrics": metrics, "data": data_info, "rejects": len(rejects)}


def _evaluate_model(task, model, tokenizer, labels, examples, max_length) -> dict[str, Any]:
    from kgfusion.core.predict import Predictor

    predictor = Predictor(model, tokenizer, labels, task, max_length=max(max_length, 128))
    return evaluate_predictor(predictor, examples)


def evaluate_predictor(predictor, examples: Sequence[TextExample] | Sequence[TokenExample],
                       head: str | None = None) -> dict[str, Any]:
    """Metrics of a Predictor on examples (texts: accuracy/macro-F1; tokens: entity P/R/F1); ``head``:
    that head of a multi-task model (default: the primary head)."""
    if predictor.task == "sequence":
        texts = [e.text for e in examples]
        if head is None:
            labels, preds = predictor.labels, [p.label for p in predictor.predict(texts)]
        else:
            heads = getattr(predictor, "heads", {})
            if head not in heads:
                raise DataError(f"the model has no head {head!r}; its heads: {sorted(heads)}")
            labels = heads[head]
            preds = [labels[int(i)] for i in predictor.predict_heads(texts)[head].argmax(axis=1)] if texts else []
        unknown = sorted({e.label for e in examples} - set(labels))
        if unknown:
            raise DataError(f"gold labels {unknown} are not among the model's labels {labels}")
        return classification_metrics([e.label for e in examples], preds, labels)
    pred_tags = predict_word_tags(predictor, [list(e.tokens) for e in examples])
    return entity_metrics([list(e.tags) for e in examples], pred_tags)


def predict_word_tags(predictor, token_lists: Sequence[Sequence[str]]) -> list[list[str]]:
    """IOB2 tags per word of pre-tokenised texts (words joined by spaces, as in evaluation), decoded the way
    the predictor decodes (its CRF/Viterbi); a teacher labels unlabelled text with this."""
    texts, word_spans = [], []
    for tokens in token_lists:
        text, spans, pos = "", [], 0
        for tok in tokens:
            spans.append((pos, pos + len(tok)))
            text += tok + " "
            pos += len(tok) + 1
        texts.append(text.rstrip())
        word_spans.append(spans)
    pred_spans = predictor.predict_spans(texts)
    return [_spans_to_tags(ws, ps) for ws, ps in zip(word_spans, pred_spans)]


def _spans_to_tags(word_spans: list[tuple[int, int]], spans) -> list[str]:
    tags = ["O"] * len(word_spans)
    for sp in spans:
        inside = [i for i, (s, e) in enumerate(word_spans) if s >= sp.start and e <= sp.end]
        for k, i in enumerate(inside):
            tags[i] = ("B-" if k == 0 else "I-") + sp.label
    return tags


def evaluate_bundle(bundle_dir: str | Path, spec: DataSpec | None = None, split: SplitName = "test",
                    backend: str = "fp32") -> dict[str, Any]:
    """Evaluate a bundle on a file; ``split`` picks rows recorded at training (default: held-out test)."""
    from kgfusion.core.predict import Predictor

    bundle_dir = Path(bundle_dir)
    predictor = Predictor.from_bundle(bundle_dir, backend=backend)  # type: ignore[arg-type]
    data_info = bundle_data_info(bundle_dir)
    if spec is None:
        if not data_info:
            raise DataError(f"{bundle_dir} records no training data; pass --data")
        spec = DataSpec(path=str(_find_data_file(data_info["path"], bundle_dir)))
    examples = select_split(bundle_dir, spec, predictor.task, split, data_info)
    if predictor.task == "sequence":
        foreign = [e for e in examples if e.label not in predictor.labels]
        if foreign:  # name the file and the first row: the user has to map or drop them
            raise DataError(f"{spec.path}: row {foreign[0].row}: gold label {brief(foreign[0].label)} is not one of "
                            f"the model's labels {predictor.labels} ({len(foreign)} such rows); map it with "
                            "--label-map FROM=TO or remove those rows")
    metrics = evaluate_predictor(predictor, examples)
    metrics["split"] = split
    metrics["backend"] = backend
    return metrics


def select_split(bundle_dir: Path, spec: DataSpec, task: str, split: SplitName,
                 data_info: dict[str, Any] | None = None) -> list:
    """Examples of ``spec`` in the bundle's recorded ``split`` (rows in split.json); 'all' = every row."""
    examples, _ = read_examples(task, spec)
    if split == "all":
        return examples
    data_info = data_info if data_info is not None else bundle_data_info(bundle_dir)
    split_file = bundle_dir / "split.json"
    if not split_file.is_file() or sha256_file(Path(spec.path)) != data_info.get("sha256"):
        raise DataError(f"split={split!r} needs the bundle's own training file ({data_info.get('path')}); "
                        "use --split all for another file")
    rows = json.loads(split_file.read_text())
    if split == "train":
        # Duplicates removed before splitting must stay out of train too, as at training time.
        held = set(rows["dev"]) | set(rows["test"])
        kept, _, _ = deduplicate(examples) if task == "sequence" else (examples, None, None)
        return [e for e in kept if e.row not in held]
    wanted = set(rows[split])
    return [e for e in examples if e.row in wanted]


def bundle_data_info(bundle_dir: Path) -> dict[str, Any]:
    path = Path(bundle_dir) / "data.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def bundle_split(bundle_dir: str | Path, split: SplitName, task: str) -> list:
    """The recorded split of a bundle's own training file (for benchmarks, distillation)."""
    bundle_dir = Path(bundle_dir)
    info = bundle_data_info(bundle_dir)
    if not info:
        raise DataError(f"{bundle_dir} records no training data (data.json)")
    spec = DataSpec(path=str(_find_data_file(info["path"], bundle_dir)))
    return select_split(bundle_dir, spec, task, split, info)


def _find_data_file(recorded: str, bundle_dir: Path) -> Path:
    """The recorded training file, relative to the cwd or to the repo holding the bundle's data/ dir."""
    path = Path(recorded)
    candidates = [path] + [parent / path for parent in bundle_dir.resolve().parents]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(f"the bundle's training file {recorded} was not found; pass --data")


def metric_text(metrics: dict[str, Any], key: str) -> str:
    """A metric as 4 decimals for model cards, or "n/a" when it was not measured."""
    v = metrics.get(key)
    return f"{v:.4f}" if isinstance(v, float) else "n/a"


def method_text(config: TrainConfig) -> str:
    """How the encoder was adapted, for model cards: LoRA rank and targets, or full fine-tuning."""
    text = (f"LoRA r={config.lora_r} on {','.join(config.lora_targets)} + full classifier head"
            if config.method == "lora" else "full fine-tune")
    parts = [f"{config.schedule} schedule"]
    if config.layer_lr_decay < 1:
        parts.append(f"layer-wise LR decay {config.layer_lr_decay}")
    if config.task == "token" and config.decoder != "argmax":
        parts.append("CRF layer" if config.decoder == "crf" else "constrained Viterbi decoding")
    if config.kg_features:
        parts.append("knowledge-graph gazetteer features in the input embeddings")
    if config.adversary != "none":
        parts.append(f"{config.adversary.upper()} adversarial training (epsilon {config.epsilon})")
    return text + "; " + ", ".join(parts)


def model_card(name: str, config: TrainConfig, labels: list[str], data: dict[str, Any],
               metrics: dict[str, Any], spec: DataSpec, command: str) -> str:
    def fmt(key: str) -> str:
        return metric_text(metrics, key)

    primary = "accuracy / macro-F1" if config.task == "sequence" else "entity F1 (strict IOB2)"
    dev_line = (f"| dev | {fmt('dev_accuracy')} | {fmt('dev_macro_f1')} |" if config.task == "sequence"
                else f"| dev | {fmt('dev_f1')} | |")
    test_line = (f"| test (held out) | {fmt('test_accuracy')} | {fmt('test_macro_f1')} |" if config.task == "sequence"
                 else f"| test (held out) | {fmt('test_f1')} | |")
    return f"""# {name}

{spec.description or 'A kgfusion model bundle.'}

- Task: {config.task} classification; labels: {', '.join(labels)}
- Base: {config.base} ({method_text(config)})
- Training: {config.epochs} epochs max, batch {config.batch_size}, lr {config.learning_rate}, max_length {config.max_length}, seed {config.seed}, early stopping patience {config.patience}; {metrics.get('train_steps')} steps in {metrics.get('train_seconds')} s on {platform.machine()} CPU

## Data
- File: `{data['path']}` (sha256 {data['sha256'][:16]}…){'; extra training files: ' + ', '.join(data['extra_train']) if data['extra_train'] else ''}
- Split: seeded stratified, dev {spec.dev:.0%}, test {spec.test:.0%}, seed {spec.seed} → train {data['split']['train']}, dev {data['split']['dev']}, test {data['split']['test']} (row numbers in split.json)
- De-duplication: {data['duplicates'] or 'n/a'}; rejected rows: {data['rejected_rows']} (see rejects.csv)
- Licence of the data: {data['licence']}

## Metrics ({primary})
| split | {'accuracy | macro-F1' if config.task == 'sequence' else 'F1 |'} |
|---|---|---|
{dev_line}
{test_line}

Full per-class report and confusion matrix: metrics.json.

## Intended use and limits
Scoring text of the kind it was trained on, as one signal among rules and knowledge-graph facts in
kgfusion. Not validated for other domains or languages; its errors are not independent of the
annotators' disagreements. Check the data licence before commercial use.

## Rebuild
```
{command}
```
"""
