"""Rebuild the clinical NER bundles (``kgfusion medical train``).

Data: BC5CDR (Chemical + Disease) or NCBI-disease, the IOB2 TSVs of Crichton et al. 2017. Training
uses ``train.tsv`` minus a seeded, stratified ``dev_fraction`` held out for early stopping; the
official ``devel.tsv`` is never seen during training and is the reported evaluation (strict IOB2
entity F1, seqeval). Orchestration only: reading, training, saving and ONNX export are core functions.
"""
from __future__ import annotations

import json
import platform
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kgfusion.core.bundle import (
    ONNX_INT8,
    add_file_to_bundle,
    save_bundle,
    sha256_file,
    strip_torch_weights,
    update_bundle_metadata,
)
from kgfusion.core.data import label_counts, read_conll, split_stratified, write_rejects
from kgfusion.core.errors import DataError
from kgfusion.core.finetune import TrainConfig

DatasetName = Literal["bc5cdr", "ncbi"]
DATASETS: dict[str, str] = {"bc5cdr": "bc5cdr", "ncbi": "ncbi_disease"}

# Published entity F1 on the official *test* splits (BioBERT v1.1 / PubMedBERT), for reference only.
PUBLISHED = {
    "ncbi": {"Disease": {"BioBERT": 0.891, "PubMedBERT": 0.878}},
    "bc5cdr": {"Disease": {"BioBERT": 0.847, "PubMedBERT": 0.856},
               "Chemical": {"BioBERT": 0.929, "PubMedBERT": 0.933}},
}
LICENCES = {
    "bc5cdr": "BioCreative V CDR: public domain mark (BigBIO); IOB files CC BY 4.0 (Crichton et al. 2017)",
    "ncbi": "NCBI-disease: US Government work / CC0 (BigBIO); IOB files CC BY 4.0 (Crichton et al. 2017)",
}


@dataclass
class MedicalData:
    """Where a NER data set lives and how much of train.tsv is held out for early stopping."""

    name: DatasetName
    train_path: str
    devel_path: str
    dev_fraction: float = 0.1
    seed: int = 13

    @classmethod
    def default(cls, name: str, data_dir: str | Path, dev_fraction: float = 0.1, seed: int = 13) -> MedicalData:
        if name not in DATASETS:
            raise DataError(f"unknown data set {name!r}; allowed: {sorted(DATASETS)}")
        d = Path(data_dir) / "datasets" / DATASETS[name]
        return cls(name, str(d / "train.tsv"), str(d / "devel.tsv"), dev_fraction, seed)  # type: ignore[arg-type]


def load_medical_splits(data: MedicalData):
    """(train, early-stopping dev, official devel, rejects) — every row accounted for."""
    for p in (data.train_path, data.devel_path):
        if not Path(p).is_file():
            raise DataError(f"{p}: NER file not found; pass --data-dir pointing at the folder holding datasets/")
    tr = read_conll(data.train_path)
    dv = read_conll(data.devel_path)
    splits = split_stratified(tr.examples, data.dev_fraction, 0.0, data.seed)
    return splits.train, splits.dev, dv.examples, tr.rejects + dv.rejects


def evaluate_devel(predictor, examples) -> dict[str, Any]:
    """Strict entity P/R/F1 (overall and per type) of a Predictor on the official devel examples."""
    from kgfusion.core.jobs import evaluate_predictor

    return evaluate_predictor(predictor, list(examples))


def headline(prefix: str, m: dict[str, Any]) -> dict[str, float]:
    out = {f"{prefix}_f1": round(float(m["f1"]), 4), f"{prefix}_precision": round(float(m["precision"]), 4),
           f"{prefix}_recall": round(float(m["recall"]), 4)}
    for etype, v in m.get("per_type", {}).items():
        out[f"{prefix}_{etype.lower()}_f1"] = round(float(v["f1"]), 4)
    return out


def train_medical(config: TrainConfig, data: MedicalData, out_dir: str | Path, *, progress: bool = True,
                  command: Sequence[str] | None = None, onnx: bool = True) -> dict[str, Any]:
    """Train, evaluate on devel.tsv (fp32, and ONNX int8 when exported), save the bundle."""
    if config.task != "token":
        raise DataError(f"medical NER trains token classifiers; got task={config.task!r}")
    train_set, dev_set, devel_set, rejects = load_medical_splits(data)
    return train_medical_examples(config, data, train_set, dev_set, devel_set, rejects, out_dir,
                                  progress=progress, command=command, onnx=onnx)


def train_medical_examples(config: TrainConfig, data: MedicalData, train_set, dev_set, devel_set, rejects,
                           out_dir: str | Path, *, progress: bool = True, command: Sequence[str] | None = None,
                           onnx: bool = True, gazetteer=None, soft_targets=None, checkpoint_dir=None,
                           recipe=None, train_word_features=None) -> dict[str, Any]:
    """Train on given examples (a recipe may add joint data or augmented copies), evaluate on devel
    (fp32 with the configured decoder, and ONNX int8 when exported), save the bundle."""
    from kgfusion.core.finetune import train
    from kgfusion.core.predict import Predictor

    result = train(config, train_set, dev_set, progress=progress, gazetteer=gazetteer,
                   soft_targets=soft_targets, checkpoint_dir=checkpoint_dir,
                   train_word_features=train_word_features)
    predictor = Predictor(result.model, result.tokenizer, result.labels, "token",
                          max_length=max(config.max_length, 128), decoder=config.decoder)
    devel = evaluate_devel(predictor, devel_set)
    metrics: dict[str, Any] = {
        **headline("devel", devel),
        "dev_f1": round(float(result.dev_metrics.get("f1", 0.0)), 4),
        "train_seconds": round(result.seconds, 1),
        "train_steps": result.steps,
        "method": config.method,
        "decoder": config.decoder,
        "kg_features": config.kg_features,
        "dataset": data.name,
        "published_test_f1": PUBLISHED[data.name],
        "details": {"devel": devel, "dev": result.dev_metrics, "history": result.history},
    }
    # the same weights under the other decoder, for the ablation (argmax vs constrained Viterbi)
    other = "argmax" if config.decoder != "argmax" else "viterbi"
    alt = Predictor(result.model, result.tokenizer, result.labels, "token",
                    max_length=max(config.max_length, 128), decoder=other)
    metrics.update(headline(f"devel_{other}", evaluate_devel(alt, devel_set)))
    data_info = {
        "dataset": data.name,
        "train": {"path": data.train_path, "sha256": sha256_file(Path(data.train_path))},
        "devel": {"path": data.devel_path, "sha256": sha256_file(Path(data.devel_path))},
        "split": {"dev_fraction": data.dev_fraction, "seed": data.seed,
                  "sizes": {"train": len(train_set), "dev": len(dev_set), "devel": len(devel_set)}},
        "label_counts": {"train": label_counts(train_set), "dev": label_counts(dev_set),
                         "devel": label_counts(devel_set)},
        "rejected_rows": len(rejects),
        "licence": LICENCES[data.name],
    }
    if recipe is not None:
        data_info["recipe"] = recipe.name
    cmd = " ".join(shlex.quote(c) for c in (command or sys.argv))
    name = Path(out_dir).name
    out = save_bundle(out_dir, result.model, result.tokenizer, task="token", method=config.method, base=config.base,
                      labels=result.labels, max_length=config.max_length, name=name,
                      train_config=config.to_dict(), metrics=metrics,
                      model_card=model_card(name, config, data_info, metrics, cmd),
                      extra_files={"split.json": json.dumps({"dev": sorted(e.row for e in dev_set)}),
                                   "data.json": json.dumps(data_info, indent=2)})
    if rejects:
        write_rejects(rejects, out / "rejects.csv")
    onnx_note = add_onnx(out, devel_set) if onnx else "skipped"
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {"bundle": str(out), "metrics": {k: v for k, v in metrics.items() if k != "details"},
            "onnx": onnx_note}


def add_onnx(bundle_dir: str | Path, devel_examples=None, *, strip: bool = False) -> str:
    """Export model.int8.onnx into a trained bundle, score it on devel and refresh metrics + model card
    (also repairs a bundle whose export was interrupted). ``strip``: then drop the torch weights, so the
    bundle ships the ONNX model only (a full fine-tune under 25 MB), and say so in the card."""
    from kgfusion.core.predict import Predictor

    out = Path(bundle_dir)
    note = export_onnx_int8(out)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    data_info = json.loads((out / "data.json").read_text(encoding="utf-8"))
    config = TrainConfig.from_dict(json.loads((out / "train_config.json").read_text(encoding="utf-8")))
    if devel_examples is None:
        devel_examples = read_conll(data_info["devel"]["path"]).examples
    q = Predictor.from_bundle(out, backend="onnx-int8")
    metrics.update(headline("devel_onnx_int8", evaluate_devel(q, devel_examples)))
    metrics["onnx_int8_mb"] = round((out / ONNX_INT8).stat().st_size / 1e6, 2)
    command = (out / "MODEL_CARD.md").read_text(encoding="utf-8").rsplit("```", 2)[-2].strip()
    if strip:
        strip_torch_weights(out)
    update_bundle_metadata(out, metrics=metrics, model_card=model_card(out.name, config, data_info, metrics, command,
                                                                      onnx_only=strip))
    return note


def export_onnx_int8(bundle_dir: str | Path) -> str:
    """Add model.int8.onnx (int8 weights and embeddings, < 25 MB for MiniLM) to a token bundle."""
    from kgfusion.core.bundle import load_bundle
    from kgfusion.core.quantize import export_onnx, quantize_onnx_int8

    loaded = load_bundle(bundle_dir)
    with tempfile.TemporaryDirectory(dir=Path(bundle_dir).parent) as work:
        fp32 = export_onnx(loaded.model, loaded.tokenizer, Path(work) / "model.onnx", task="token")
        q = quantize_onnx_int8(fp32, Path(work) / ONNX_INT8, quantize_embeddings=True)
        add_file_to_bundle(bundle_dir, q, ONNX_INT8)
    return f"written: {ONNX_INT8}"


def evaluate_medical(bundle_dir: str | Path, devel_path: str | Path, backend: str = "fp32") -> dict[str, Any]:
    """Strict entity F1 of a bundle on an IOB2 file (default: the official devel split)."""
    from kgfusion.core.predict import Predictor

    if not Path(devel_path).is_file():
        raise DataError(f"{devel_path}: IOB2 file not found")
    predictor = Predictor.from_bundle(bundle_dir, backend=backend)  # type: ignore[arg-type]
    res = read_conll(devel_path)
    m = evaluate_devel(predictor, res.examples)
    return {"bundle": str(bundle_dir), "file": str(devel_path), "backend": backend, **headline("devel", m),
            "per_type": m.get("per_type", {}), "rejected_rows": len(res.rejects)}


def model_card(name: str, config: TrainConfig, data: dict[str, Any], metrics: dict[str, Any], command: str,
               onnx_only: bool = False) -> str:
    from kgfusion.core.jobs import method_text, metric_text

    def f(key: str) -> str:
        return metric_text(metrics, key)

    method = method_text(config)
    ds = data["dataset"]
    sizes = data["split"]["sizes"]
    rows = []
    for etype, pub in PUBLISHED[ds].items():
        rows.append(f"| {etype} | {f('devel_' + etype.lower() + '_f1')} | "
                    f"{f('devel_onnx_int8_' + etype.lower() + '_f1')} | {pub['BioBERT']:.3f} | {pub['PubMedBERT']:.3f} |")
    table = "\n".join(rows)
    weights = ("LoRA adapter + head (`adapter_model.safetensors`; the base comes from the pip package)"
               if config.method == "lora" else "full weights (`model.safetensors`)")
    files = (f"{weights} and `{ONNX_INT8}` ({metrics['onnx_int8_mb']} MB, int8 weights and embeddings, ONNX Runtime)"
             if "onnx_int8_mb" in metrics else f"{weights}; no ONNX export (use the fp32 / int8 backends)")
    if onnx_only:
        files = (f"`{ONNX_INT8}` only ({metrics['onnx_int8_mb']} MB, int8 weights and embeddings, ONNX Runtime; "
                 "load with backend onnx-int8); the fp32 weights are not shipped (the recipe rebuilds them)")
    return f"""# {name}

Clinical/biomedical named-entity recogniser for kgfusion's `medical` app ({', '.join(PUBLISHED[ds])}).

- Base: {config.base} (all-MiniLM-L6-v2: a general-domain 6-layer, 384-d sentence encoder) — {method}
- Training: {config.epochs} epochs max, batch {config.batch_size}, lr {config.learning_rate}, max_length \
{config.max_length}, seed {config.seed}, early stopping on the held-out part of train.tsv (patience \
{config.patience}); {metrics.get('train_steps')} steps in {metrics.get('train_seconds')} s on {platform.machine()} CPU
- Files: {files}

## Data
- `{data['train']['path']}` minus a seeded stratified {data['split']['dev_fraction']:.0%} early-stopping part
  (seed {data['split']['seed']}): train {sizes['train']}, dev {sizes['dev']} sentences (dev rows in split.json).
- Reported evaluation: the official devel split `{data['devel']['path']}` ({sizes['devel']} sentences), never
  used for training or early stopping.
- Licence: {data['licence']}.

## Entity F1 (strict IOB2, seqeval) on devel
Overall: fp32 P {f('devel_precision')} R {f('devel_recall')} F1 {f('devel_f1')}; ONNX int8 F1 {f('devel_onnx_int8_f1')}

| type | fp32 | ONNX int8 | BioBERT (test) | PubMedBERT (test) |
|---|---|---|---|---|
{table}

Published numbers are on the official *test* split with 110M-parameter in-domain encoders
(BioBERT, PubMedBERT); ours is a 22M general-domain MiniLM on the devel split, so expect lower and
read them as a reference point, not a like-for-like comparison.

## Intended use and limits
Finding disease and drug/chemical mentions in English clinical notes and abstracts as one signal beside
the knowledge-graph gazetteer, ConText rules and the entity linker in `kgfusion medical`. Trained on
PubMed abstracts, not clinical notes: abbreviations, misspellings and note shorthand are weaker.
Not a medical device; mentions must be reviewed before clinical use.

## Rebuild
```
{command}
```
"""
