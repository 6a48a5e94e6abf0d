"""Multi-task sequence classification: one shared encoder, one classification head per task.

``MultiTaskModel`` wraps a Hugging Face encoder (``AutoModel``, e.g. all-MiniLM-L6-v2) and holds one
``Linear`` head per task over the pooled [CLS] output (BERT pooler + dropout, as
``BertForSequenceClassification``), e.g. ``{"sentiment": [3 labels], "topic": [20 labels]}``. One forward
pass gives every head's logits: ``out.head_logits[name]``; ``out.logits`` is the primary head's, so code
written for a single-head classifier (training loops, ``Predictor.predict_proba``) keeps working.

Training (core/finetune.py, ``TrainConfig.heads``) takes examples each labelled for one head
(``TextExample.head``); batches mix heads and every head's loss uses only its own rows.

Persistence: full fine-tunes save ``config.json`` (the encoder's) + ``model.safetensors`` (encoder and
heads, metadata listing the heads and their labels); LoRA bundles save peft's adapter with the heads as
``modules_to_save``. The bundle manifest's ``extra`` holds ``heads`` (name -> labels, primary first) and
``primary_head``; ``load_bundle`` rebuilds the model from those. ONNX export (core/quantize.py) writes one
output per head, ``logits_<name>``, primary first.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kgfusion.core.errors import BundleError, ConfigError

HEAD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MULTITASK_FORMAT = "kgfusion-multitask"
WEIGHTS = "model.safetensors"
ONNX_OUTPUT_PREFIX = "logits_"


def check_heads(heads: Mapping[str, Sequence[str]], owner: str = "heads", *, allow_empty_labels: bool = False) -> None:
    """ConfigError naming the bad head: names are lower-case identifiers, labels unique non-empty strings."""
    if not isinstance(heads, Mapping):
        raise ConfigError(f"{owner} must map head names to label lists, e.g. "
                          f"{{\"sentiment\": [\"negative\", \"neutral\", \"positive\"]}}; got {type(heads).__name__}")
    if len(heads) < 2:
        raise ConfigError(f"{owner} names {len(heads)} head(s) {sorted(heads)}; multi-task training needs at least "
                          "two (leave heads empty for one classifier)")
    for name, labels in heads.items():
        if not isinstance(name, str) or not HEAD_NAME.fullmatch(name) or name == "mean":
            raise ConfigError(f"{owner}: head name {name!r} must be a lower-case identifier matching "
                              f"{HEAD_NAME.pattern}, not 'mean' (it names ONNX outputs, metric keys and select_on)")
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise ConfigError(f"{owner}[{name!r}] must be a list of label names, got {labels!r}")
        if not labels and allow_empty_labels:
            continue
        bad = [lab for lab in labels if not isinstance(lab, str) or not lab.strip()]
        if bad:
            raise ConfigError(f"{owner}[{name!r}]: labels must be non-empty strings, got {bad[:3]}")
        if len(labels) < 2:
            raise ConfigError(f"{owner}[{name!r}] has {len(labels)} label(s) {list(labels)}; a head needs at least 2")
        dupes = sorted({lab for lab in labels if list(labels).count(lab) > 1})
        if dupes:
            raise ConfigError(f"{owner}[{name!r}]: duplicate label(s) {dupes}")


def ordered_heads(heads: Mapping[str, Sequence[str]], primary: str = "") -> dict[str, list[str]]:
    """Heads as name -> labels with the primary head first (default: the first given)."""
    names = list(heads)
    primary = primary or names[0]
    if primary not in heads:
        raise ConfigError(f"primary_head={primary!r} is not one of the heads {names}")
    return {primary: list(heads[primary])} | {n: list(heads[n]) for n in names if n != primary}


@dataclass
class MultiTaskOutput:
    logits: torch.Tensor  # the primary head's
    head_logits: dict[str, torch.Tensor]


class MultiTaskModel(torch.nn.Module):
    """A shared encoder and one classification head per task (see the module docstring)."""

    def __init__(self, encoder, heads: Mapping[str, Sequence[str]], primary: str = "") -> None:
        super().__init__()
        check_heads(heads, "MultiTaskModel heads")
        self.encoder = encoder
        self.head_labels: dict[str, list[str]] = ordered_heads(heads, primary)
        self.primary_head = next(iter(self.head_labels))
        cfg = encoder.config
        p = getattr(cfg, "classifier_dropout", None)
        self.dropout = torch.nn.Dropout(p if p is not None else getattr(cfg, "hidden_dropout_prob", 0.1))
        hidden = cfg.hidden_size
        # "classifiers": names contain "classifier", so layer-wise LR and head_lr_scale treat them as heads
        self.classifiers = torch.nn.ModuleDict({n: torch.nn.Linear(hidden, len(labs))
                                                for n, labs in self.head_labels.items()})
        std = float(getattr(cfg, "initializer_range", 0.02))
        for head in self.classifiers.values():  # as transformers initialises a fresh classifier
            torch.nn.init.normal_(head.weight, std=std)
            torch.nn.init.zeros_(head.bias)

    @property
    def config(self):
        return self.encoder.config

    @property
    def head_names(self) -> list[str]:
        return list(self.head_labels)

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def heads_info(self) -> dict[str, Any]:
        """What the bundle manifest records (``extra``): the heads with their labels, the primary head."""
        return {"heads": {n: list(labs) for n, labs in self.head_labels.items()}, "primary_head": self.primary_head}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, return_dict: bool = True, **_: Any) -> MultiTaskOutput:
        kwargs: dict[str, Any] = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(input_ids=input_ids, return_dict=True, **kwargs)
        pooled = out.pooler_output if getattr(out, "pooler_output", None) is not None else out.last_hidden_state[:, 0]
        pooled = self.dropout(pooled)
        logits = {n: head(pooled) for n, head in self.classifiers.items()}
        return MultiTaskOutput(logits=logits[self.primary_head], head_logits=logits)

    # -- persistence ------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path, safe_serialization: bool = True) -> None:
        """config.json (the encoder's) + model.safetensors (every weight; metadata: the heads)."""
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.encoder.config.save_pretrained(out)
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in self.state_dict().items()}
        save_file(tensors, str(out / WEIGHTS), metadata={"format": MULTITASK_FORMAT,
                                                         "heads": json.dumps(self.head_labels),
                                                         "primary_head": self.primary_head})

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, heads: Mapping[str, Sequence[str]], primary: str) -> MultiTaskModel:
        """Rebuild a full fine-tune saved by ``save_pretrained``; the file's heads must match ``heads``."""
        from safetensors import safe_open
        from transformers import AutoConfig, AutoModel

        model_dir = Path(model_dir)
        weights = model_dir / WEIGHTS
        with safe_open(str(weights), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open is not a dict
        if meta.get("format") != MULTITASK_FORMAT:
            raise BundleError(f"{weights}: not a multi-task model file (format {meta.get('format')!r}); rebuild the bundle")
        stored = json.loads(meta.get("heads", "{}"))
        if {k: list(v) for k, v in stored.items()} != {k: list(v) for k, v in heads.items()}:
            raise BundleError(f"{weights}: holds heads {stored}, the manifest lists {dict(heads)}; rebuild the bundle")
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=False)
        model = cls(AutoModel.from_config(config), heads, primary)
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        if missing or unexpected:
            raise BundleError(f"{weights}: weights do not fit the model (missing {sorted(missing)[:3]}, unexpected "
                              f"{sorted(unexpected)[:3]}); rebuild the bundle")
        return model.eval()


def build_multitask_model(base: str, heads: Mapping[str, Sequence[str]], primary: str = ""):
    """(MultiTaskModel with fresh heads over the base encoder, tokenizer)."""
    from kgfusion.core.models import load_base

    encoder, tokenizer = load_base(base, task="embedding")
    return MultiTaskModel(encoder, heads, primary), tokenizer


def multitask_info(model) -> dict[str, Any] | None:
    """The heads of a (possibly peft-wrapped) MultiTaskModel, or None for other models."""
    info = getattr(model, "heads_info", None)
    return info() if callable(info) else None


def manifest_heads(extra: Any) -> tuple[dict[str, list[str]], str] | None:
    """(heads, primary head) recorded in a bundle manifest's ``extra``, or None for a single-head bundle."""
    if not isinstance(extra, dict) or not extra.get("heads"):
        return None
    heads = extra["heads"]
    check_heads(heads, "bundle.json extra.heads")
    primary = extra.get("primary_head") or next(iter(heads))
    return ordered_heads(heads, primary), primary


def load_multitask(bundle_dir: str | Path, method: str, base: str, heads: Mapping[str, Sequence[str]],
                   primary: str, merge_lora: bool = True):
    """The MultiTaskModel of a bundle: full weights, or the base encoder + the LoRA adapter and heads."""
    bundle_dir = Path(bundle_dir)
    if method != "lora":
        return MultiTaskModel.from_pretrained(bundle_dir, heads, primary)
    from peft import PeftModel

    from kgfusion.core.models import load_base

    encoder, _ = load_base(base, task="embedding")
    model = PeftModel.from_pretrained(MultiTaskModel(encoder, heads, primary), bundle_dir)
    return model.merge_and_unload() if merge_lora else model


def onnx_output_names(model) -> list[str] | None:
    """``logits_<head>`` for every head of a MultiTaskModel (primary first), None for a single head."""
    info = multitask_info(model)
    return None if info is None else [ONNX_OUTPUT_PREFIX + n for n in info["heads"]]
