"""Continued pretraining: masked-language-model training of a base encoder on unlabelled in-domain text.

Domain- and task-adaptive pretraining (as BioBERT, FinBERT and DAPT/TAPT did at larger scale), sized for a
CPU. ``pretrain(config, corpus_paths, out_dir)`` reads the corpus (plain text lines, JSONL with a ``text``
field, PubTator title/abstract files; ``.gz`` allowed), packs it into ``max_length`` blocks
(FULL-SENTENCES: documents joined with [SEP], a document never split unless it is longer than a block),
trains BertForMaskedLM with whole-word masking (80% [MASK], 10% random token, 10% unchanged) and writes

- ``out_dir``: the *encoder* (BertModel weights, config, tokenizer) in ``save_pretrained`` layout, so
  ``load_base(out_dir, task=...)`` and ``TrainConfig(base=out_dir)`` start from it;
- ``out_dir/checkpoint/last.pt``: model with MLM head, optimizer, scheduler, RNG and data position,
  every ``save_every`` steps and at the end (atomic; read back with ``weights_only=True``); rerunning
  the same call resumes there;
- ``out_dir/pretrain_log.json`` (step, train loss, held-out MLM loss) and ``out_dir/PRETRAIN.md``.

The base models here (all-MiniLM-L6-v2) ship no MLM head: the transform layer is freshly initialised and
the decoder is tied to the input word embeddings; the encoder weights are checked to have loaded.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import logging
import math
import random
import re
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from kgfusion.core.config import ConfigBase, check_range
from kgfusion.core.errors import ConfigError, DataError, ModelNotFoundError
from kgfusion.core.fileio import atomic_write, atomic_write_json, atomic_write_text, sha256_file

log = logging.getLogger(__name__)

CorpusFormat = Literal["text", "jsonl", "pubtator"]
CHECKPOINT = Path("checkpoint") / "last.pt"
LOG_FILE = "pretrain_log.json"
CARD_FILE = "PRETRAIN.md"
CHECKPOINT_FORMAT = 1
# Settings that may change between a run and its resumption: they do not change data, model or masks.
RESUMABLE_CHANGES = ("epochs", "max_steps", "save_every", "eval_every", "log_every")
_PUBTATOR = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$")


@dataclass
class PretrainConfig(ConfigBase):
    """MLM settings. ``max_steps`` > 0 overrides ``epochs``; ``eval_every`` 0 = every ``save_every`` steps."""

    base: str = "minilm"
    max_length: int = 128
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    epochs: int = 1
    max_steps: int = 0
    warmup_ratio: float = 0.06
    schedule: Literal["linear", "cosine"] = "linear"
    mlm_probability: float = 0.15
    whole_word_mask: bool = True
    seed: int = 13
    save_every: int = 200
    eval_every: int = 0
    log_every: int = 10
    eval_fraction: float = 0.02  # of the documents, held out for the MLM loss curve
    eval_max_blocks: int = 128
    grad_clip: float = 1.0

    def validate(self) -> None:
        check_range(self, "max_length", 8, 4096)
        check_range(self, "batch_size", 1, 4096)
        check_range(self, "lr", 0, 1, lo_open=True)
        check_range(self, "weight_decay", 0, 1)
        check_range(self, "epochs", 1, 1000)
        check_range(self, "max_steps", 0, None)
        check_range(self, "warmup_ratio", 0, 1)
        check_range(self, "mlm_probability", 0, 1, lo_open=True)
        check_range(self, "save_every", 1, None)
        check_range(self, "eval_every", 0, None)
        check_range(self, "log_every", 1, None)
        check_range(self, "eval_fraction", 0, 0.5)
        check_range(self, "eval_max_blocks", 1, None)
        check_range(self, "grad_clip", 0, None, lo_open=True)
        if self.mlm_probability >= 1:
            raise ConfigError(f"PretrainConfig.mlm_probability={self.mlm_probability!r}; allowed range (0, 1)")

    @property
    def eval_interval(self) -> int:
        return self.eval_every or self.save_every


# ---------------------------------------------------------------------------------------------- corpus


@dataclass
class CorpusFile:
    """One corpus file read into documents (a line, a JSONL row's text, a PubTator title + abstract)."""

    path: str
    format: CorpusFormat
    documents: list[str]
    lines: int
    skipped: int = 0  # blank lines / JSONL rows without text
    sha256: str = ""

    @property
    def words(self) -> int:
        return sum(len(d.split()) for d in self.documents)

    def summary(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "sha256": self.sha256, "lines": self.lines,
                "documents": len(self.documents), "words": self.words, "skipped": self.skipped}


def _open_utf8(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _lines(path: Path) -> Iterator[str]:
    """Lines without their ending; decoding and gzip failures become a DataError naming the file."""
    try:
        with _open_utf8(path) as fh:
            for line in fh:
                yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start}); re-save the file as "
                        "UTF-8") from exc
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc}); re-compress it or pass the plain "
                        "file") from exc


def detect_corpus_format(path: str | Path) -> CorpusFormat:
    """JSONL by name (.jsonl/.ndjson/.json, optionally .gz); PubTator when the first text line is ``id|t|``."""
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    for line in _lines(path):
        if line.strip():
            return "pubtator" if _PUBTATOR.match(line) else "text"
    return "text"


def iter_pubtator(path: str | Path) -> Iterator[tuple[str, str, str]]:
    """(document id, title, abstract) of a PubTator file; entity and relation lines are ignored."""
    path = Path(path)
    current: dict[str, str] = {}
    doc_id = ""
    for line in _lines(path):
        m = _PUBTATOR.match(line)
        if not m:
            continue
        if m.group(1) != doc_id:
            if doc_id:
                yield doc_id, current.get("t", ""), current.get("a", "")
            doc_id, current = m.group(1), {}
        current[m.group(2)] = m.group(3).strip()
    if doc_id:
        yield doc_id, current.get("t", ""), current.get("a", "")


def clean_line(text: str) -> str:
    """Collapse all whitespace (newlines, tabs) to single spaces: one document per corpus line."""
    return " ".join(text.split())


def read_corpus(path: str | Path, fmt: CorpusFormat | None = None, text_field: str = "text") -> CorpusFile:
    """Read one corpus file; DataError naming the file when it is missing, not UTF-8, bad JSON or empty."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: corpus file not found; pass an existing text, JSONL or PubTator file")
    fmt = fmt or detect_corpus_format(path)
    docs: list[str] = []
    lines = skipped = 0
    if fmt == "pubtator":
        lines = sum(1 for _ in _lines(path))
        for _, title, abstract in iter_pubtator(path):
            text = clean_line(f"{title} {abstract}")
            if text:
                docs.append(text)
            else:
                skipped += 1
    else:
        for lineno, line in enumerate(_lines(path), start=1):
            lines = lineno
            text: Any = line
            if fmt == "jsonl" and line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {lineno} is not valid JSON ({exc.msg}); write one JSON object "
                                    f"with a {text_field!r} field per line") from exc
                text = row.get(text_field) if isinstance(row, dict) else None
            text = clean_line(text) if isinstance(text, str) else ""
            if text:
                docs.append(text)
            else:
                skipped += 1
    if not docs:
        raise DataError(f"{path}: no text found ({lines} lines, format {fmt}); pass a file with one document per "
                        f"line, JSONL rows with a {text_field!r} field, or PubTator title/abstract lines")
    return CorpusFile(str(path), fmt, docs, lines, skipped, sha256_file(path))


@dataclass
class CorpusBuild:
    """What a domain corpus builder produced: one document per line and its counts (sources, exclusions)."""

    lines: list[str]
    stats: dict[str, Any] = field(default_factory=dict)


def stats_path(corpus_path: str | Path) -> Path:
    """Where a corpus builder records its counts: ``<corpus file>.stats.json``."""
    p = Path(corpus_path)
    return p.with_name(p.name + ".stats.json")


def write_corpus(path: str | Path, lines: Sequence[str], stats: dict[str, Any]) -> dict[str, Any]:
    """Write one document per line (UTF-8, atomic) and the builder's counts beside it; returns the stats."""
    path = Path(path)
    body = "".join(clean_line(t) + "\n" for t in lines if clean_line(t))
    if not body:
        raise DataError(f"{path}: the corpus builder produced no text; check the input data sets")
    if path.suffix == ".gz":
        atomic_write(path, lambda tmp: tmp.write_bytes(gzip.compress(body.encode("utf-8"), mtime=0)))
    else:
        atomic_write_text(path, body)
    stats = dict(stats) | {"file": str(path), "sha256": sha256_file(path), "lines": body.count("\n"),
                           "words": len(body.split())}
    atomic_write_json(stats_path(path), stats)
    return stats


# --------------------------------------------------------------------------------------------- packing


@dataclass
class PackedCorpus:
    """Token blocks (N, max_length) with their true lengths, for training and the held-out slice."""

    train: torch.Tensor
    train_lengths: torch.Tensor
    heldout: torch.Tensor
    heldout_lengths: torch.Tensor
    documents: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)


def tokenize_documents(documents: Sequence[str], tokenizer, chunk: int = 2000) -> list[list[int]]:
    """Token ids of each document, without special tokens and without truncation."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "sequence longer than the model maximum" is expected: we pack
    try:
        out: list[list[int]] = []
        for i in range(0, len(documents), chunk):
            out += tokenizer(list(documents[i:i + chunk]), add_special_tokens=False, truncation=False,
                             return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        return out
    finally:
        hf_logging.set_verbosity(verbosity)


def pack_blocks(docs: Sequence[Sequence[int]], max_length: int, cls_id: int, sep_id: int,
                pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """FULL-SENTENCES packing: blocks ``[CLS] doc [SEP] doc ... [SEP]`` of at most ``max_length`` tokens.

    Documents follow each other in order; one that does not fit the rest of a block starts the next block,
    unless it is longer than a whole block, in which case it fills the block and continues in the next.
    Returns (ids (N, max_length) int32 padded with ``pad_id``, lengths (N,)).
    """
    cap = max_length - 2
    blocks: list[list[int]] = []
    cur: list[int] = []

    def flush() -> None:
        nonlocal cur
        if cur:
            blocks.append(cur)
        cur = []

    for toks in docs:
        toks = list(toks)
        if not toks:
            continue
        need = len(toks) + (1 if cur else 0)
        if need <= cap - len(cur):
            cur += ([sep_id] if cur else []) + toks
            continue
        if len(toks) <= cap:
            flush()
            cur = toks
            continue
        if cur and cap - len(cur) >= 2:  # a long document starts in the current block
            room = cap - len(cur) - 1
            cur += [sep_id] + toks[:room]
            toks = toks[room:]
        flush()
        while len(toks) > cap:
            blocks.append(toks[:cap])
            toks = toks[cap:]
        cur = toks
    flush()
    ids = torch.full((len(blocks), max_length), pad_id, dtype=torch.int32)
    lengths = torch.zeros(len(blocks), dtype=torch.int32)
    for i, b in enumerate(blocks):
        row = [cls_id] + b + [sep_id]
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.int32)
        lengths[i] = len(row)
    return ids, lengths


def pack_corpus(documents: Sequence[str], tokenizer, max_length: int, seed: int, eval_fraction: float = 0.0,
                eval_max_blocks: int = 128) -> PackedCorpus:
    """Shuffle documents (seeded), hold out a slice of them for the loss curve, pack both parts into blocks.

    The held-out slice takes ``eval_fraction`` of the documents, fewer when ``eval_max_blocks`` blocks are
    already filled; the same documents, seed and tokenizer always give the same blocks.
    """
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    token_lists = tokenize_documents([documents[i] for i in order], tokenizer)
    n_eval = round(eval_fraction * len(documents)) if eval_fraction > 0 and len(documents) > 1 else 0
    n_eval = min(n_eval, len(documents) - 1)
    budget, taken, used = eval_max_blocks * (max_length - 2), 0, 0
    while taken < n_eval and used < budget:
        used += len(token_lists[taken]) + 1
        taken += 1
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if cls_id is None or sep_id is None:
        raise ModelNotFoundError(f"tokenizer of {getattr(tokenizer, 'name_or_path', '?')} has no [CLS]/[SEP] "
                                 "token; use a BERT-like base model")
    heldout, heldout_len = pack_blocks(token_lists[:taken], max_length, cls_id, sep_id, pad_id)
    heldout, heldout_len = heldout[:eval_max_blocks], heldout_len[:eval_max_blocks]
    train, train_len = pack_blocks(token_lists[taken:], max_length, cls_id, sep_id, pad_id)
    if len(train) == 0:
        raise DataError("the corpus gave no training blocks; pass more text")
    return PackedCorpus(train, train_len, heldout, heldout_len,
                        documents={"train": len(documents) - taken, "heldout": taken},
                        tokens={"train": int(train_len.sum()), "heldout": int(heldout_len.sum())})


# --------------------------------------------------------------------------------------------- masking


class WholeWordMasker:
    """Masks whole words: a word is a token plus its ``##`` continuation pieces (BERT WordPiece).

    Per block ``round(p * words)`` words (at least one) are chosen; every token of a chosen word becomes
    [MASK] (80%), a random non-special token (10%) or stays (10%). Labels are -100 except at chosen tokens.
    With ``whole_word=False`` every token is its own word.
    """

    def __init__(self, tokenizer, probability: float = 0.15, whole_word: bool = True) -> None:
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        special = set(tokenizer.all_special_ids)
        self.probability = probability
        self.whole_word = whole_word
        self.mask_id = tokenizer.mask_token_id
        if self.mask_id is None:
            raise ModelNotFoundError(f"tokenizer of {getattr(tokenizer, 'name_or_path', '?')} has no [MASK] "
                                     "token; use a BERT-like base model")
        self.continuation = torch.tensor([str(t).startswith("##") for t in vocab] + [False])
        self.special = torch.zeros(len(vocab) + 1, dtype=torch.bool)
        self.special[[i for i in special if i < len(vocab)]] = True
        self.special[-1] = True  # ids outside the tokenizer's vocabulary
        self.random_ids = torch.tensor([i for i in range(len(vocab)) if i not in special], dtype=torch.long)

    def word_starts(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(candidate (B, T) bool, word index (B, T), -1 outside words) for a batch of blocks."""
        ids = ids.long().clamp(max=len(self.continuation) - 1)
        inside = torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
        candidate = inside & ~self.special[ids]
        if self.whole_word:
            prev = torch.zeros_like(candidate)
            prev[:, 1:] = candidate[:, :-1]
            start = candidate & ~(self.continuation[ids] & prev)
        else:
            start = candidate
        word = torch.cumsum(start.long(), dim=1) - 1
        return candidate, torch.where(candidate, word, torch.full_like(word, -1))

    def __call__(self, ids: torch.Tensor, lengths: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(masked input ids (B, T) long, attention mask, labels) for blocks ``ids`` (B, T)."""
        ids = ids.long()
        candidate, word = self.word_starts(ids, lengths)
        chosen = torch.zeros_like(candidate)
        for row in range(ids.shape[0]):
            n_words = int(word[row].max()) + 1
            if n_words <= 0:
                continue
            k = min(n_words, max(1, round(self.probability * n_words)))
            picked = torch.zeros(n_words, dtype=torch.bool)
            picked[torch.randperm(n_words, generator=generator)[:k]] = True
            chosen[row] = candidate[row] & picked[word[row].clamp(min=0)]
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        roll = torch.rand(ids.shape, generator=generator)
        inputs = ids.clone()
        inputs[chosen & (roll < 0.8)] = self.mask_id
        swap = chosen & (roll >= 0.8) & (roll < 0.9)
        picks = torch.randint(len(self.random_ids), (int(swap.sum()),), generator=generator)
        inputs[swap] = self.random_ids[picks]
        attention = (torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).long()
        return inputs, attention, labels


def step_generator(seed: int, step: int) -> torch.Generator:
    """The masking RNG of one training step: a function of (seed, step), so a resumed run masks the same."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


# ----------------------------------------------------------------------------------------------- model


@dataclass
class MLMModel:
    """BertForMaskedLM-like model, its tokenizer and the base encoder (kept for its pooler when saving)."""

    model: Any
    tokenizer: Any
    encoder: Any
    head: Literal["loaded", "fresh"]
    base_path: Path


def build_mlm_model(base: str, seed: int) -> MLMModel:
    """Load ``base`` into an MLM model: encoder weights from the base, head from it or freshly initialised.

    A BertModel checkpoint (keys without the ``bert.`` prefix, no ``cls.predictions.*``) loads into
    BertForMaskedLM's encoder; the missing head gets a new transform layer and a decoder tied to the word
    embeddings. Raises ModelNotFoundError when the encoder weights did not load or the decoder is not tied.
    """
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from kgfusion.core.models import refuse_remote_code, resolve_base

    path = resolve_base(base)
    refuse_remote_code(path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the missing-head and unused-pooler reports are expected here
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        encoder = AutoModel.from_pretrained(path, trust_remote_code=False)
        torch.manual_seed(seed)  # the fresh head's initialisation
        model, info = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=False, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    prefix = model.base_model_prefix
    missing = sorted(info.get("missing_keys", []))
    head_missing = [k for k in missing if not k.startswith(f"{prefix}.")]
    encoder_missing = [k for k in missing if k.startswith(f"{prefix}.")]
    if encoder_missing:
        raise ModelNotFoundError(f"{path}: encoder weights {encoder_missing[:3]} did not load into the MLM model; "
                                 "pass a BERT-like model saved with save_pretrained")
    loaded = model.base_model.state_dict()
    for name, value in encoder.state_dict().items():
        if name in loaded and not torch.equal(loaded[name], value):
            raise ModelNotFoundError(f"{path}: encoder weight {name} differs between the base and the MLM model; "
                                     "the base checkpoint did not load. Pass a BERT-like model directory")
    if not torch.equal(model.get_input_embeddings().weight, encoder.get_input_embeddings().weight):
        raise ModelNotFoundError(f"{path}: word embeddings did not load into the MLM model")
    head: Literal["loaded", "fresh"] = "fresh" if head_missing else "loaded"
    if head == "fresh":
        model.tie_weights()
        out_emb, in_emb = model.get_output_embeddings(), model.get_input_embeddings()
        if out_emb is None or out_emb.weight.data_ptr() != in_emb.weight.data_ptr():
            raise ModelNotFoundError(f"{path}: the new MLM decoder is not tied to the word embeddings "
                                     "(tie_word_embeddings is off in config.json); set it to true")
    model.train()
    return MLMModel(model, tokenizer, encoder, head, path)


def mlm_loss(model, inputs: torch.Tensor, attention: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the masked tokens; for BERT the vocabulary head runs on those tokens only."""
    head = getattr(model, "cls", None)
    if head is None:  # other architectures: the model's own loss over every position
        return model(input_ids=inputs, attention_mask=attention, labels=labels).loss
    hidden = model.base_model(input_ids=inputs, attention_mask=attention).last_hidden_state
    picked = labels != -100
    logits = head(hidden[picked])
    return torch.nn.functional.cross_entropy(logits.float(), labels[picked])


def _param_groups(model, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():  # tied weights appear once
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _schedule(optim, config: PretrainConfig, total: int):
    from kgfusion.core.optim import cosine_schedule, linear_schedule

    warmup = int(total * config.warmup_ratio)
    return (cosine_schedule if config.schedule == "cosine" else linear_schedule)(optim, warmup, total)


@torch.no_grad()
def heldout_loss(model, batches: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> float:
    """Token-weighted MLM loss over fixed, pre-masked held-out batches (nan when there are none)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for inputs, attention, labels in batches:
        n = int((labels != -100).sum())
        if n:
            total += float(mlm_loss(model, inputs, attention, labels)) * n
            count += n
    model.train(was_training)
    return total / count if count else float("nan")


# ------------------------------------------------------------------------------------------- training


def _comparable(config: PretrainConfig) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_CHANGES}


def _load_checkpoint(path: Path, config: PretrainConfig, corpus: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise DataError(f"{path}: unreadable checkpoint ({exc}); delete it to start over") from exc
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path}: checkpoint format {payload.get('format')!r}, expected {CHECKPOINT_FORMAT}; "
                        "delete it to start over")
    saved = json.loads(payload["config"])
    changed = sorted(k for k, v in _comparable(PretrainConfig.from_dict(saved)).items()
                     if _comparable(config)[k] != v)
    if changed:
        raise ConfigError(f"{path}: checkpoint of other settings ({', '.join(changed)} differ); rerun with the "
                          "same settings, or use another --out / delete the checkpoint to start over")
    if [c["sha256"] for c in payload["corpus"]] != [c["sha256"] for c in corpus]:
        raise ConfigError(f"{path}: checkpoint of another corpus (file list or contents differ); rerun with the "
                          "same corpus files, or use another --out / delete the checkpoint to start over")
    return payload


def _save_checkpoint(path: Path, model, optim, sched, state: dict[str, Any]) -> None:
    """Model (with MLM head), optimizer, scheduler, torch RNG and position; only tensors and plain data."""
    payload = {"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optim": optim.state_dict(),
               "sched": sched.state_dict(), "rng_torch": torch.get_rng_state(), **state}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def save_encoder(mlm: MLMModel, out_dir: Path) -> list[str]:
    """Write the trained encoder (with the base's pooler) and the tokenizer into ``out_dir``, file by file
    atomically (each file is replaced whole). Returns the file names."""
    encoder = mlm.encoder
    result = encoder.load_state_dict(mlm.model.base_model.state_dict(), strict=False)
    if result.unexpected_keys or any(not k.startswith("pooler.") for k in result.missing_keys):
        raise ModelNotFoundError(f"the trained encoder does not fit {type(encoder).__name__}: missing "
                                 f"{result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    with tempfile.TemporaryDirectory(prefix=".encoder.", dir=out_dir) as tmp:
        encoder.save_pretrained(tmp)
        mlm.tokenizer.save_pretrained(tmp)
        for p in sorted(Path(tmp).iterdir()):
            if p.is_file():
                atomic_write(out_dir / p.name, lambda dst, src=p: shutil.copyfile(src, dst))
                names.append(p.name)
    return names


def pretrain(config: PretrainConfig, corpus_paths: Sequence[str | Path], out_dir: str | Path, *,
             progress: bool = True, stop_after: int = 0, command: Sequence[str] | None = None,
             on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or resume) MLM training and write the encoder, the loss log and PRETRAIN.md into ``out_dir``.

    ``stop_after`` > 0: run at most that many steps in this call, then checkpoint and return (a rerun goes
    on). ``command``: the command line recorded in PRETRAIN.md. Returns a summary dict (steps, losses,
    blocks, seconds per step, paths).
    """
    from tqdm.auto import tqdm

    if not corpus_paths:
        raise DataError("no corpus files given; pass at least one text, JSONL or PubTator file")
    out = Path(out_dir)
    files = [read_corpus(p) for p in corpus_paths]
    corpus = [f.summary() for f in files]
    ckpt_path = out / CHECKPOINT
    resumed = _load_checkpoint(ckpt_path, config, corpus)

    mlm = build_mlm_model(config.base, config.seed)
    model, tokenizer = mlm.model, mlm.tokenizer
    packed = pack_corpus([d for f in files for d in f.documents], tokenizer, config.max_length, config.seed,
                         config.eval_fraction, config.eval_max_blocks)
    masker = WholeWordMasker(tokenizer, config.mlm_probability, config.whole_word_mask)
    n_train = len(packed.train)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total = config.max_steps or steps_per_epoch * config.epochs
    eval_gen = torch.Generator().manual_seed(config.seed + 7)  # one fixed masking of the held-out slice
    eval_batches = [masker(packed.heldout[i:i + config.batch_size], packed.heldout_lengths[i:i + config.batch_size],
                           eval_gen) for i in range(0, len(packed.heldout), config.batch_size)]

    optim = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)
    sched = _schedule(optim, config, total)
    step, spent, entries, resumes, replanned = 0, 0.0, [], 0, False
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        if mlm.head == "fresh":
            model.tie_weights()
        optim.load_state_dict(resumed["optim"])
        sched.load_state_dict(resumed["sched"])
        torch.set_rng_state(resumed["rng_torch"])
        step, spent, entries = int(resumed["step"]), float(resumed["seconds"]), list(resumed["log"])
        resumes = int(resumed.get("resumes", 0)) + 1
        replanned = int(resumed["total_steps"]) != total
        if replanned:
            log.info("step budget changed from %s to %s: the LR schedule is re-planned from step %d",
                     resumed["total_steps"], total, step)
        log.info("resumed from %s at step %d of %d", ckpt_path, step, total)
    start_step = step
    if not entries and eval_batches:  # the starting point of the held-out curve
        entries.append({"step": 0, "eval_loss": heldout_loss(model, eval_batches), "seconds": 0.0})

    def state() -> dict[str, Any]:
        return {"config": config.to_json(), "corpus": corpus, "step": step, "total_steps": total,
                "epoch": step // steps_per_epoch, "position": step % steps_per_epoch, "log": entries,
                "seconds": spent + (time.perf_counter() - started), "resumes": resumes, "head": mlm.head}

    def write_log() -> None:
        atomic_write_json(out / LOG_FILE, {"config": config.to_dict(), "total_steps": total, "step": step,
                                           "steps_per_epoch": steps_per_epoch, "log": entries})

    started = time.perf_counter()
    end = total if not stop_after else min(total, step + stop_after)
    perm_epoch, perm = -1, torch.empty(0, dtype=torch.long)
    window: list[float] = []
    bar = tqdm(total=total, initial=min(step, total), disable=not progress, desc="pretrain MLM", unit="step")
    try:
        model.train()
        while step < end:
            epoch, pos = divmod(step, steps_per_epoch)
            if epoch != perm_epoch:  # block order of an epoch: a function of (seed, epoch)
                perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(config.seed + 31 * epoch))
                perm_epoch = epoch
            idx = perm[pos * config.batch_size:(pos + 1) * config.batch_size]
            inputs, attention, labels = masker(packed.train[idx], packed.train_lengths[idx],
                                               step_generator(config.seed, step))
            loss = mlm_loss(model, inputs, attention, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            step += 1
            window.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{sum(window[-20:]) / len(window[-20:]):.3f}")
            at_eval = step % config.eval_interval == 0 or step in (total, end)
            if step % config.log_every == 0 or at_eval or step == end:
                entry: dict[str, Any] = {"step": step, "train_loss": sum(window) / len(window),
                                         "lr": float(sched.get_last_lr()[0]),
                                         "seconds": round(spent + time.perf_counter() - started, 1)}
                if at_eval and eval_batches:
                    entry["eval_loss"] = heldout_loss(model, eval_batches)
                entries.append(entry)
                window = []
                if on_log:
                    on_log(entry)
            if step % config.save_every == 0 or step == end:
                _save_checkpoint(ckpt_path, model, optim, sched, state())
                write_log()
    finally:
        bar.close()
    seconds = spent + time.perf_counter() - started
    run_steps = step - start_step
    this_run = time.perf_counter() - started
    write_log()
    finished = step >= total
    encoder_files = save_encoder(mlm, out) if finished else []
    summary = _summary(config, files, packed, entries, step, total, steps_per_epoch, seconds, mlm, resumes,
                       replanned, start_step, run_steps, this_run, finished, out)
    summary["encoder_files"] = encoder_files
    atomic_write_text(out / CARD_FILE, pretrain_card(summary, command))
    return summary


def _summary(config, files, packed, entries, step, total, steps_per_epoch, seconds, mlm, resumes, replanned,
             start_step, run_steps, this_run, finished, out) -> dict[str, Any]:
    evals = [(e["step"], e["eval_loss"]) for e in entries if "eval_loss" in e]
    trains = [e["train_loss"] for e in entries if "train_loss" in e]
    builds = {}
    for f in files:
        sp = stats_path(f.path)
        if sp.is_file():
            with contextlib.suppress(OSError, ValueError):
                builds[f.path] = json.loads(sp.read_text(encoding="utf-8"))
    return {
        "out_dir": str(out), "finished": finished, "steps": step, "total_steps": total,
        "steps_per_epoch": steps_per_epoch, "epochs_done": round(step / steps_per_epoch, 2),
        "resumed_from_step": start_step if resumes else None, "resumes": resumes, "schedule_replanned": replanned,
        "steps_this_run": run_steps,
        "seconds_per_step": round(this_run / run_steps, 3) if run_steps else None,
        "seconds": round(seconds, 1), "head": mlm.head, "base": config.base,
        "blocks": {"train": len(packed.train), "heldout": len(packed.heldout)},
        "documents": packed.documents, "tokens": packed.tokens,
        "eval_loss_first": evals[0][1] if evals else None, "eval_loss_last": evals[-1][1] if evals else None,
        "eval_loss_best": min(v for _, v in evals) if evals else None,
        "train_loss_first": trains[0] if trains else None, "train_loss_last": trains[-1] if trains else None,
        "eval_curve": evals, "corpus": [f.summary() for f in files], "corpus_builds": builds,
        "config": config.to_dict(), "log_file": str(out / LOG_FILE), "checkpoint": str(out / CHECKPOINT),
    }


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, float) else ("-" if x is None else str(x))


def pretrain_card(summary: dict[str, Any], command: Sequence[str] | None = None) -> str:
    """PRETRAIN.md: corpus (sha256, lines), corpus build counts, settings, loss summary, the command."""
    import shlex

    s = summary
    lines = [f"# Continued MLM pretraining: {Path(s['out_dir']).name}", "",
             f"Base `{s['base']}` trained with masked-language modelling "
             f"({'whole-word' if s['config']['whole_word_mask'] else 'token'} masking, "
             f"p={s['config']['mlm_probability']}) on the corpus below; MLM head {s['head']} "
             "(a fresh head has a new transform layer and a decoder tied to the word embeddings).",
             f"Status: {'finished' if s['finished'] else 'stopped early; rerun the command to continue'} at step "
             f"{s['steps']} of {s['total_steps']} ({s['epochs_done']} epochs of {s['steps_per_epoch']} steps).", "",
             "This folder is a base model: `load_base(DIR, task=...)`, `TrainConfig(base=DIR)` or "
             "`kgfusion model train --base DIR`. `checkpoint/last.pt` (with the MLM head and optimizer) is only "
             "needed to resume; delete it to save space.", "", "## Corpus", "",
             "| file | format | sha256 | lines | documents | words | skipped |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {c['path']} | {c['format']} | `{c['sha256']}` | {c['lines']} | {c['documents']} | {c['words']} | "
              f"{c['skipped']} |" for c in s["corpus"]]
    lines += ["", f"Blocks of {s['config']['max_length']} tokens: {s['blocks']['train']} train, "
              f"{s['blocks']['heldout']} held out ({s['documents'].get('heldout', 0)} documents, seeded); "
              f"{s['tokens'].get('train', 0)} train and {s['tokens'].get('heldout', 0)} held-out tokens "
              "(with [CLS]/[SEP])."]
    for path, build in s["corpus_builds"].items():
        lines += ["", f"### How `{path}` was built", "", "```json", json.dumps(build, indent=2, sort_keys=True),
                  "```"]
    lines += ["", "## Settings", "", "```json", json.dumps(s["config"], indent=2, sort_keys=True), "```", "",
              "## Loss", "",
              f"- held-out MLM loss: first {_fmt(s['eval_loss_first'])}, last {_fmt(s['eval_loss_last'])}, "
              f"best {_fmt(s['eval_loss_best'])}",
              f"- train loss: first logged {_fmt(s['train_loss_first'])}, last logged {_fmt(s['train_loss_last'])}",
              f"- {s['steps']} steps in {s['seconds']} s; last run {s['steps_this_run']} steps at "
              f"{_fmt(s['seconds_per_step'])} s/step; resumes: {s['resumes']}"
              + ("; step budget changed on resume (LR schedule re-planned)" if s["schedule_replanned"] else ""),
              "", "| step | held-out loss |", "|---|---|"]
    lines += [f"| {st} | {v:.4f} |" for st, v in s["eval_curve"]]
    lines += ["", f"Full curve: `{LOG_FILE}`.", "", "## Command", "", "```",
              shlex.join(command) if command else "(library call: kgfusion.core.pretrain.pretrain)", "```", ""]
    return "\n".join(lines)
