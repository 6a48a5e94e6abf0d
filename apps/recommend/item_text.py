"""Item text, item embeddings and contrastive fine-tuning of the encoder on co-consumed pairs.

Item text = "Title (year). Genres: a, b. Tags: x, y" (at most ``max_tags`` tags, most used first).
Embeddings come from core's Embedder (mean pooled, L2-normalised, so inner product = cosine).

Fine-tuning: pairs of items a user consumed one after the other (time order, from the training
history only) are positives; the other items of the batch are negatives (MultipleNegativesRanking:
cross-entropy over scaled cosine similarities, both directions). LoRA on the attention query/value
projections (or full fine-tuning) for a few hundred steps; the adapter is saved as safetensors with
peft (``adapter_model.safetensors`` + ``adapter_config.json``) and merged back for inference.
"""
from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from kgfusion.core.errors import ConfigError, DataError, ModelNotFoundError


def item_text(title: str, genres: Sequence[str], tags: Sequence[str] = (), max_tags: int = 8) -> str:
    """One line describing an item, e.g. "Heat (1995). Genres: Action, Crime. Tags: heist"."""
    parts = [title.strip() + "."]
    if genres:
        parts.append("Genres: " + ", ".join(genres) + ".")
    if tags and max_tags > 0:
        parts.append("Tags: " + ", ".join(list(tags)[:max_tags]) + ".")
    return " ".join(parts)


def item_texts(items: pd.DataFrame, tags: Mapping[int, Sequence[str]] | None = None, max_tags: int = 8) -> list[str]:
    """Texts for a catalogue frame (item_id, title, genres) in row order; ``tags`` maps item_id -> tags."""
    tags = tags or {}
    return [item_text(str(t), list(g), tags.get(int(i), ()), max_tags)
            for i, t, g in zip(items["item_id"], items["title"], items["genres"], strict=True)]


def cooccurrence_pairs(history: pd.DataFrame, max_pairs: int = 20000, window: int = 2, seed: int = 13
                       ) -> list[tuple[int, int]]:
    """(movieId, movieId) pairs consumed within ``window`` positions of each other by one user.

    Time order per user (timestamp, movieId); pairs are deduplicated (unordered), shuffled with ``seed``
    and cut to ``max_pairs``. Only pass training history here, never a target.
    """
    if window < 1:
        raise ConfigError(f"window={window} must be >= 1")
    ordered = history.sort_values(["userId", "timestamp", "movieId"], kind="mergesort")
    pairs: set[tuple[int, int]] = set()
    for _, items in ordered.groupby("userId", sort=True)["movieId"]:
        seq = items.to_numpy()
        for gap in range(1, window + 1):
            for a, b in zip(seq[:-gap], seq[gap:], strict=True):
                if a != b:
                    pairs.add((int(min(a, b)), int(max(a, b))))
    out = sorted(pairs)
    random.Random(seed).shuffle(out)
    return out[:max_pairs]


@dataclass(frozen=True)
class TuneConfig:
    """Contrastive tuning settings: steps >= 1, batch_size >= 2, scale (inverse temperature) > 0."""

    base: str = "minilm"
    method: Literal["lora", "full"] = "lora"
    steps: int = 200
    batch_size: int = 32
    learning_rate: float = 2e-4
    scale: float = 20.0
    max_length: int = 64
    lora_r: int = 8
    lora_alpha: int = 16
    seed: int = 13

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise ConfigError(f"method={self.method!r} is not one of lora, full")
        if self.steps < 1 or self.batch_size < 2 or self.scale <= 0:
            raise ConfigError(f"need steps >= 1, batch_size >= 2, scale > 0; got {self.steps}, "
                              f"{self.batch_size}, {self.scale}")


def _pool(model, enc):
    import torch

    hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _batches(pairs: Sequence[tuple[int, int]], batch_size: int, steps: int, seed: int):
    """Batches of pairs with no item twice in a batch (a repeated item would be a false negative).

    A pass over the shuffled pairs that cannot fill a batch (few distinct items) yields what it has
    (>= 2 pairs); a pass yielding nothing ends the generator.
    """
    rng = random.Random(seed)
    order = list(pairs)
    made = 0
    while made < steps:
        rng.shuffle(order)
        batch: list[tuple[int, int]] = []
        used: set[int] = set()
        made_this_pass = 0
        for a, b in order:
            if a in used or b in used:
                continue
            batch.append((a, b))
            used.update((a, b))
            if len(batch) == batch_size:
                yield batch
                made += 1
                made_this_pass += 1
                if made == steps:
                    return
                batch, used = [], set()
        if len(batch) >= 2:
            yield batch
            made += 1
            made_this_pass += 1
        if made_this_pass == 0:
            return


def tune_encoder(texts: Mapping[int, str], pairs: Sequence[tuple[int, int]], config: TuneConfig,
                 progress: bool = False):
    """Fine-tune ``config.base`` on co-consumed pairs; returns (model, tokenizer, stats).

    ``texts`` maps movieId -> item text; pairs whose items have no text are skipped. The returned model
    is a peft model for LoRA (save with ``save_encoder``), a plain encoder for full tuning.
    """
    import torch

    from kgfusion.core.models import load_base

    usable = [(a, b) for a, b in pairs if a in texts and b in texts]
    if len(usable) < config.batch_size:
        raise DataError(f"only {len(usable)} co-consumed pairs with item text; need >= batch_size "
                        f"{config.batch_size}; use more history or a smaller batch")
    torch.manual_seed(config.seed)
    model, tokenizer = load_base(config.base, task="embedding")
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                 lora_dropout=0.0, target_modules=["query", "value"]))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=config.learning_rate)
    labels = torch.arange(config.batch_size)
    losses: list[float] = []
    t0 = time.perf_counter()

    def enc(ids: Sequence[int]):
        return tokenizer([texts[i] for i in ids], padding=True, truncation=True,
                         max_length=config.max_length, return_tensors="pt")

    for step, batch in enumerate(_batches(usable, config.batch_size, config.steps, config.seed), start=1):
        a = _pool(model, enc([p[0] for p in batch]))
        b = _pool(model, enc([p[1] for p in batch]))
        sims = a @ b.T * config.scale
        lab = labels[: len(batch)]
        loss = (torch.nn.functional.cross_entropy(sims, lab) + torch.nn.functional.cross_entropy(sims.T, lab)) / 2
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(float(loss.detach()))
        if progress and (step % 25 == 0 or step == config.steps):
            print(f"  tune step {step}/{config.steps} loss {np.mean(losses[-25:]):.3f} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)
    model.eval()
    stats = {"steps": len(losses), "pairs": len(usable), "loss_first": losses[0] if losses else float("nan"),
             "loss_last25": float(np.mean(losses[-25:])) if losses else float("nan"),
             "tune_s": time.perf_counter() - t0}
    return model, tokenizer, stats


def save_encoder(model, tokenizer, out_dir: str | Path, config: TuneConfig, stats: Mapping[str, float]) -> Path:
    """Save the tuned encoder (safetensors: LoRA adapter or full weights) + tokenizer + tune.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    (out / "README.md").unlink(missing_ok=True)  # peft's template card
    tokenizer.save_pretrained(out)
    (out / "tune.json").write_text(json.dumps({"config": asdict(config), "stats": dict(stats)}, indent=2,
                                              sort_keys=True) + "\n", encoding="utf-8")
    return out


def load_encoder(encoder_dir: str | Path, max_length: int = 64):
    """An Embedder over a saved tuned encoder (LoRA merged into its base for speed)."""
    from kgfusion.core.embed import Embedder

    path = Path(encoder_dir)
    meta = path / "tune.json"
    if not meta.is_file():
        raise ModelNotFoundError(f"{meta}: missing; {path} is not a tuned item encoder (see item_text.save_encoder)")
    config = TuneConfig(**json.loads(meta.read_text(encoding="utf-8"))["config"])
    if config.method == "lora":
        from peft import PeftModel

        from kgfusion.core.models import load_base

        base, tokenizer = load_base(config.base, task="embedding")
        model = PeftModel.from_pretrained(base, path).merge_and_unload()
    else:
        from transformers import AutoModel, AutoTokenizer

        model = AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    return Embedder(model=model, tokenizer=tokenizer, max_length=max_length)


def merged_embedder(model, tokenizer, max_length: int = 64):
    """An Embedder over an in-memory tuned model (a peft model is merged into a copy of its base)."""
    import copy

    from kgfusion.core.embed import Embedder

    if hasattr(model, "merge_and_unload"):
        model = copy.deepcopy(model).merge_and_unload()
    return Embedder(model=model, tokenizer=tokenizer, max_length=max_length)


def embed_items(encoder, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(len(texts), dim) float32 unit rows from any encoder with ``encode(texts, batch_size)``."""
    vectors = np.asarray(encoder.encode(list(texts), batch_size=batch_size), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
