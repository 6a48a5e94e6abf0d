"""A token classifier with knowledge fused in: gazetteer feature embeddings and/or a CRF on top.

``FusedTokenModel`` wraps a Hugging Face token-classification model (plain or peft/LoRA):

- ``n_features > 0``: a learned embedding of the per-token gazetteer feature (core/features.py) is
  added to the word embeddings before the encoder (zero-initialised, so training starts from the
  plain model);
- ``crf_labels``: a linear-chain CRF (core/decoding.py) whose learned transitions the Predictor uses
  for decoding.

It saves as the inner model's files plus ``fusion.safetensors`` (the feature table and CRF scores) and
a ``fusion`` entry in the bundle manifest's ``extra``; load_bundle rebuilds it from those.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from kgfusion.core.decoding import CRF

FUSION_FILE = "fusion.safetensors"


class FusedTokenModel(torch.nn.Module):
    def __init__(self, hf_model, labels: list[str], n_features: int = 0, crf: bool = False) -> None:
        super().__init__()
        self.hf_model = hf_model
        self.labels = list(labels)
        self.n_features = n_features
        hidden = self.get_input_embeddings().embedding_dim
        self.feature_embedding = torch.nn.Embedding(n_features, hidden) if n_features else None
        if self.feature_embedding is not None:
            torch.nn.init.zeros_(self.feature_embedding.weight)
        self.crf = CRF(labels) if crf else None
        self.gazetteer = None  # core.features.TokenGazetteer, saved with the model when set

    @property
    def config(self):
        return self.hf_model.config

    def get_input_embeddings(self):
        return self.hf_model.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, feature_ids: torch.Tensor | None = None,
                return_dict: bool = True, **_: Any):
        kwargs: dict[str, Any] = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if self.feature_embedding is None:
            out = self.hf_model(input_ids=input_ids, return_dict=True, **kwargs)
        else:
            embeds = self.get_input_embeddings()(input_ids)
            if feature_ids is not None:
                embeds = embeds + self.feature_embedding(feature_ids)
            out = self.hf_model(inputs_embeds=embeds, return_dict=True, **kwargs)
        return SimpleNamespace(logits=out.logits)

    # -- persistence ------------------------------------------------------------------------
    def fusion_info(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "crf": self.crf is not None}

    def fusion_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        if self.feature_embedding is not None:
            out["feature_embedding.weight"] = self.feature_embedding.weight.detach().contiguous()
        if self.crf is not None:
            out |= {f"crf.{k}": v.detach().contiguous() for k, v in
                    (("transitions", self.crf.transitions), ("start", self.crf.start), ("end", self.crf.end))}
        return out

    def save_pretrained(self, out_dir: str | Path, safe_serialization: bool = True) -> None:
        """The inner model's files, fusion.safetensors and (with features) the gazetteer."""
        from safetensors.torch import save_file

        self.hf_model.save_pretrained(out_dir, safe_serialization=safe_serialization)
        save_file(self.fusion_tensors(), str(Path(out_dir) / FUSION_FILE))
        if getattr(self, "gazetteer", None) is not None:
            from kgfusion.core.features import GAZETTEER_FILE

            self.gazetteer.save(Path(out_dir) / GAZETTEER_FILE)

    def load_fusion(self, path: str | Path) -> None:
        from safetensors.torch import load_file

        from kgfusion.core.errors import BundleError

        tensors = load_file(str(path))
        own = self.fusion_tensors()
        if set(tensors) != set(own):
            raise BundleError(f"{path}: holds {sorted(tensors)}, the model expects {sorted(own)}; rebuild the bundle")
        with torch.no_grad():
            for name, value in tensors.items():
                module, _, attr = name.rpartition(".")
                target = getattr(self.feature_embedding if module == "feature_embedding" else self.crf, attr)
                if target.shape != value.shape:
                    raise BundleError(f"{path}: {name} has shape {tuple(value.shape)}, expected "
                                      f"{tuple(target.shape)}; rebuild the bundle")
                target.copy_(value)

    def merge_and_unload(self) -> FusedTokenModel:
        """Merge a LoRA adapter of the inner model into its weights (for fast inference / export)."""
        if hasattr(self.hf_model, "merge_and_unload"):
            self.hf_model = self.hf_model.merge_and_unload()
        return self

    def decoder_scores(self) -> dict[str, Any] | None:
        """The CRF's learned scores for the IOB2 decoder, or None without a CRF."""
        return self.crf.export() if self.crf is not None else None


def load_decoder_scores(bundle_dir: str | Path) -> dict[str, Any] | None:
    """The CRF scores stored in a bundle's fusion.safetensors (for backends without the torch model)."""
    path = Path(bundle_dir) / FUSION_FILE
    if not path.is_file():
        return None
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    if "crf.transitions" not in tensors:
        return None
    return {k: tensors[f"crf.{k}"] for k in ("transitions", "start", "end")}


def load_gazetteer(bundle_dir: str | Path):
    """The bundle's gazetteer (core.features.TokenGazetteer), or None when it has none."""
    from kgfusion.core.features import GAZETTEER_FILE, TokenGazetteer

    path = Path(bundle_dir) / GAZETTEER_FILE
    return TokenGazetteer.load(path) if path.is_file() else None


def wrap_loaded(model, bundle_dir: str | Path, labels: list[str], fusion: dict[str, Any]) -> FusedTokenModel:
    """Rebuild the FusedTokenModel of a bundle around its loaded inner model."""
    fused = FusedTokenModel(model, labels, n_features=int(fusion.get("n_features", 0)), crf=bool(fusion.get("crf")))
    fused.load_fusion(Path(bundle_dir) / FUSION_FILE)
    fused.gazetteer = load_gazetteer(bundle_dir)
    return fused.eval()
