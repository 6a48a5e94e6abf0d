"""Model bundles: one directory holding everything needed to serve and audit a trained model.

    bundle.json        manifest: format version, task, method, base model, labels, max_length,
                       sha256 of every file below (checked at load)
    model.safetensors  full fine-tune weights            | adapter_model.safetensors + adapter_config.json (LoRA + head)
    tokenizer files    tokenizer.json, vocab.txt, ...
    train_config.json  the TrainConfig used
    metrics.json       dev/test metrics (flat numbers at top level + details)
    MODEL_CARD.md      data, split, metrics, licence, intended use
    [model.int8.onnx]  optional ONNX Runtime int8 export (``kgfusion model quantize --onnx``)
    [fusion.safetensors, gazetteer.tsv.gz]  CRF scores / gazetteer features of a FusedTokenModel
    [multi-task]       a MultiTaskModel (core/multitask.py): manifest ``labels`` are the primary head's,
                       ``extra.heads`` lists every head with its labels (primary first), ``extra.primary_head``
    [recipe.json]      the recipe that rebuilds the bundle (``kgfusion model train --recipe``)

A full fine-tune is 91 MB in fp32, over the 25 MB a shipped bundle may take: ``strip_torch_weights``
keeps only its ONNX int8 model (manifest ``extra.weights = "onnx-int8"``); such a bundle serves with the
onnx-int8 backend and its recipe rebuilds the fp32 weights.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from kgfusion.core.errors import BundleError, ConfigError
from kgfusion.core.fileio import atomic_directory, atomic_write_json, atomic_write_text, sha256_file

FORMAT = "kgfusion-bundle"
VERSION = 1
MANIFEST = "bundle.json"
ONNX_INT8 = "model.int8.onnx"
ONNX_ONLY = "onnx-int8"  # manifest extra["weights"]: torch weights stripped, the ONNX int8 model serves
TORCH_WEIGHTS = ("model.safetensors", "adapter_model.safetensors")


@dataclass
class Manifest:
    task: Literal["sequence", "token"]
    method: Literal["full", "lora"]
    base: str
    labels: list[str]
    max_length: int
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    name: str = ""
    created: str = ""
    format: str = FORMAT
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def save_bundle(
    out_dir: str | Path,
    model,
    tokenizer,
    *,
    task: Literal["sequence", "token"],
    method: Literal["full", "lora"],
    base: str,
    labels: list[str],
    max_length: int,
    name: str = "",
    train_config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    model_card: str = "",
    extra_files: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle atomically: built in a temp dir beside ``out_dir``, then swapped in."""
    from kgfusion.core.models import base_reference

    out = Path(out_dir)
    extra = dict(extra or {})
    if task == "token":
        extra.setdefault("decoder", (train_config or {}).get("decoder", "argmax"))
    if hasattr(model, "fusion_info"):  # FusedTokenModel: CRF and/or gazetteer features
        extra["fusion"] = model.fusion_info()
    from kgfusion.core.multitask import multitask_info

    heads = multitask_info(model)  # MultiTaskModel (plain or under peft): its heads and the primary one
    if heads is not None:
        if task != "sequence" or list(labels) != heads["heads"][heads["primary_head"]]:
            raise BundleError(f"a multi-task bundle is task='sequence' with the primary head's labels "
                              f"{heads['heads'][heads['primary_head']]}; got task={task!r}, labels={list(labels)}")
        extra |= heads
    with atomic_directory(out) as tmp:
        # LoRA: peft writes the adapter plus modules_to_save (the head); full: the whole model.
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / "README.md").unlink(missing_ok=True)  # peft's template card; MODEL_CARD.md is ours
        tokenizer.save_pretrained(tmp)
        if train_config is not None:
            atomic_write_json(tmp / "train_config.json", train_config)
        atomic_write_json(tmp / "metrics.json", metrics or {})
        if model_card:
            atomic_write_text(tmp / "MODEL_CARD.md", model_card)
        for rel, text in (extra_files or {}).items():
            atomic_write_text(tmp / rel, text)
        _write_manifest(tmp, Manifest(
            task=task, method=method, base=base_reference(base) if method == "lora" else base,
            labels=list(labels), max_length=max_length, name=name or out.name,
            created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), extra=extra,
        ))
    return out


def _write_manifest(bundle_dir: Path, manifest: Manifest) -> None:
    manifest.files = {
        p.relative_to(bundle_dir).as_posix(): sha256_file(p)
        for p in sorted(bundle_dir.rglob("*"))
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    }
    atomic_write_json(bundle_dir / MANIFEST, manifest.to_dict())


def add_file_to_bundle(bundle_dir: str | Path, src: str | Path, rel_name: str) -> Path:
    """Copy a file (e.g. an ONNX export) into a bundle and re-hash the manifest."""
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    dest = bundle_dir / rel_name
    shutil.copyfile(src, dest)
    _write_manifest(bundle_dir, manifest)
    return dest


def update_bundle_metadata(bundle_dir: str | Path, metrics: dict[str, Any] | None = None,
                           model_card: str | None = None, name: str | None = None) -> None:
    """Rewrite metrics.json / MODEL_CARD.md (and the manifest's name) and re-hash the manifest."""
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    if name is not None:  # a bundle copied from a teacher's work dir is named after its final place
        manifest.name = name
    if metrics is not None:
        atomic_write_json(bundle_dir / "metrics.json", metrics)
    if model_card is not None:
        atomic_write_text(bundle_dir / "MODEL_CARD.md", model_card)
    _write_manifest(bundle_dir, manifest)


def read_manifest(bundle_dir: str | Path) -> Manifest:
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: bundle directory not found")
    if not path.is_file():
        raise BundleError(f"{path}: missing; {bundle_dir} is not a kgfusion bundle (train one with `kgfusion model train`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: unreadable manifest ({exc}); rebuild the bundle") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(f"{path}: not a {FORMAT} manifest")
    if data.get("version") != VERSION:
        raise BundleError(f"{path}: bundle version {data.get('version')} is not supported (this kgfusion reads {VERSION}); rebuild it")
    files = data.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise BundleError(f"{path}: 'files' must map relative paths to sha256 strings; rebuild the bundle")
    try:
        return Manifest(**data)
    except TypeError as exc:
        raise BundleError(f"{path}: malformed manifest ({exc}); rebuild the bundle") from exc


def verify_bundle(bundle_dir: str | Path) -> Manifest:
    """Check every file the manifest lists exists and matches its sha256."""
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    for rel, digest in manifest.files.items():
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise BundleError(f"{bundle_dir / MANIFEST}: file entry {rel!r} points outside the bundle; rebuild it")
        p = bundle_dir / rel
        if not p.is_file():
            raise BundleError(f"{p}: missing from bundle {bundle_dir}; rebuild it (see MODEL_CARD.md for the command)")
        if sha256_file(p) != digest:
            raise BundleError(f"{p}: checksum mismatch (corrupt or modified); rebuild the bundle or restore the file")
    weights = "adapter_model.safetensors" if manifest.method == "lora" else "model.safetensors"
    if onnx_only(manifest):
        weights = ONNX_INT8
    if weights not in manifest.files:
        raise BundleError(f"{bundle_dir}: manifest lists no {weights}; rebuild the bundle")
    return manifest


def onnx_only(manifest: Manifest) -> bool:
    return isinstance(manifest.extra, dict) and manifest.extra.get("weights") == ONNX_ONLY


def available_backends(bundle_dir: str | Path) -> list[str]:
    """The Predictor backends a bundle can serve, best first for apps: onnx-int8 when it has the ONNX
    model, fp32 and int8 unless its torch weights were stripped."""
    manifest = read_manifest(bundle_dir)
    out = ["onnx-int8"] if ONNX_INT8 in manifest.files else []
    return out + ([] if onnx_only(manifest) else ["fp32", "int8"])


def resolve_backend(bundle_dir: str | Path, backend: str) -> str:
    """``auto``: the best backend the bundle ships (``available_backends``' first); any other name is
    checked against what the bundle ships, so an ONNX-only bundle asked for fp32 is a clear error."""
    available = available_backends(bundle_dir)
    if backend == "auto":
        if not available:
            raise BundleError(f"{bundle_dir}: ships no model weights a backend can load; rebuild the bundle")
        return available[0]
    if backend not in available:
        raise BundleError(f"{bundle_dir}: backend {backend!r} is not in this bundle (it ships {available}); "
                          f"use --backend {available[0]} or auto")
    return backend


def strip_torch_weights(bundle_dir: str | Path) -> Path:
    """Drop the torch weights of a bundle that holds model.int8.onnx (to ship it under 25 MB)."""
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    if ONNX_INT8 not in manifest.files:
        raise BundleError(f"{bundle_dir}: no {ONNX_INT8} to serve from; export it before stripping the weights")
    for name in TORCH_WEIGHTS:
        (bundle_dir / name).unlink(missing_ok=True)
    manifest.extra = {**(manifest.extra or {}), "weights": ONNX_ONLY}
    _write_manifest(bundle_dir, manifest)
    return bundle_dir


@dataclass
class LoadedBundle:
    model: Any
    tokenizer: Any
    manifest: Manifest
    path: Path

    @property
    def labels(self) -> list[str]:
        return self.manifest.labels

    @property
    def task(self) -> str:
        return self.manifest.task

    @property
    def heads(self) -> dict[str, list[str]]:
        """Multi-task bundles: head -> labels (primary first); empty for a single-head bundle."""
        from kgfusion.core.multitask import manifest_heads

        multi = manifest_heads(self.manifest.extra)
        return multi[0] if multi else {}

    def metrics(self) -> dict[str, Any]:
        return json.loads((self.path / "metrics.json").read_text(encoding="utf-8"))


def load_bundle(bundle_dir: str | Path, merge_lora: bool = True, verify: bool = True) -> LoadedBundle:
    """Load a bundle (safetensors only). LoRA adapters are merged into the base for fast inference."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )
    from transformers.utils import logging as hf_logging

    bundle_dir = Path(bundle_dir)
    manifest = verify_bundle(bundle_dir) if verify else read_manifest(bundle_dir)
    if onnx_only(manifest):
        raise BundleError(
            f"{bundle_dir} ships only its ONNX int8 model ({ONNX_INT8}; the fp32 weights are over the 25 MB "
            "bundle budget): use the onnx-int8 backend, or rebuild the weights with "
            f"`kgfusion model train --recipe data/recipes/{manifest.name}.json`")
    tokenizer = AutoTokenizer.from_pretrained(bundle_dir, trust_remote_code=False)
    hf_logging.disable_progress_bar()
    from kgfusion.core.multitask import load_multitask, manifest_heads

    try:
        multi = manifest_heads(manifest.extra)
    except ConfigError as exc:
        raise BundleError(f"{bundle_dir / MANIFEST}: {exc}; rebuild the bundle") from exc
    try:
        if multi is not None:
            model = load_multitask(bundle_dir, manifest.method, manifest.base, multi[0], multi[1], merge_lora)
        elif manifest.method == "lora":
            from peft import PeftModel

            from kgfusion.core.models import load_base

            base, _ = load_base(manifest.base, task=manifest.task, labels=manifest.labels)
            model = PeftModel.from_pretrained(base, bundle_dir)
            if merge_lora:
                model = model.merge_and_unload()
        else:
            cls = AutoModelForSequenceClassification if manifest.task == "sequence" else AutoModelForTokenClassification
            model = cls.from_pretrained(bundle_dir, use_safetensors=True, trust_remote_code=False)
        fusion = manifest.extra.get("fusion") if isinstance(manifest.extra, dict) else None
        if fusion and manifest.task == "token":
            from kgfusion.core.tokenmodel import wrap_loaded

            model = wrap_loaded(model, bundle_dir, manifest.labels, fusion)
    except BundleError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise BundleError(f"{bundle_dir}: could not load weights ({exc}); rebuild the bundle") from exc
    model.eval()
    return LoadedBundle(model=model, tokenizer=tokenizer, manifest=manifest, path=bundle_dir)
