"""Train the finance sentiment bundle from a recipe (data/recipes/finsent*.json; ``kgfusion model train --recipe``).

Recipe sections this trainer reads (all optional except ``train``)::

    "data":     {"dev": 0.1, "test": 0.1, "seed": 13,
                 "agreement": "soft" | "weight" | "none",  # PhraseBank agreement levels (50/66/75/100 %)
                 "heads": ["sentiment", "topic"],          # + a topic head (Twitter Financial News topic)
                 "head_weights": {"topic": 1.0},           # loss weight per head (default 1.0)
                 "select_on": "mean" | "sentiment" | "topic"}  # early stopping: mean dev macro-F1 or one head
    "augment":  {"term_swap": {"rate": 1.0, "copies": 1}}  # company names/tickers from the finance KG
    "ensemble": {"seeds": [13, 14, 15], "distill": true, "soft_weight": 0.5}
    "base":     {"pretrained": "runs/pretrain/finance", "command": "kgfusion model pretrain ..."}

Agreement: every PhraseBank 50-agree sentence belongs to the strictest agreement file that holds it;
``soft`` trains towards a distribution with that share on the gold label (the rest spread over the
other classes), ``weight`` weights its loss by the share. Twitter rows count as fully agreed.
The held-out test sets are those of ``load_finance_splits`` (seeded); nothing in the recipe sees them.

Heads: ``["sentiment"]`` (default) trains the sentiment classifier; ``["sentiment", "topic"]`` trains one
encoder with a sentiment head (primary) and a topic head on the sentiment rows and the topic tweets
(``load_topic_splits``: own seeded split, texts of the sentiment sets left out); the bundle's metrics add
``topic_accuracy`` / ``topic_macro_f1`` on the topic test split (and their ONNX int8 values). Augmentation
and agreement weights apply to the sentiment rows; soft labels and ensembles are sentiment-only for now.
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from kgfusion.apps.common import results_dir
from kgfusion.apps.finance.train import (
    LABELS,
    SENTIMENT_HEAD,
    TOPIC_HEAD,
    FinanceData,
    TopicSplits,
    as_head,
    evaluate_tests,
    headline,
    load_finance_splits,
    load_topic_splits,
    train_finsent_examples,
)
from kgfusion.core.data import TextExample, read_phrasebank
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.recipe import RECIPE_FILE, Recipe, add_recipe_card

# the columns of the ablation table in the model card
ABLATION_KEYS = ("phrasebank50_accuracy", "phrasebank_allagree_accuracy", "twitter_accuracy",
                 "phrasebank50_onnx_int8_accuracy", "twitter_onnx_int8_accuracy", "topic_accuracy", "topic_macro_f1",
                 "topic_onnx_int8_accuracy")
HEADS = (SENTIMENT_HEAD, TOPIC_HEAD)
AGREEMENT_FILES = {"Sentences_AllAgree.txt": 1.0, "Sentences_75Agree.txt": 0.75, "Sentences_66Agree.txt": 0.66,
                   "Sentences_50Agree.txt": 0.5}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def agreement_levels(phrasebank_dir: Path) -> dict[str, float]:
    """Normalised sentence -> the strictest agreement level whose file holds it."""
    level: dict[str, float] = {}
    for name, share in sorted(AGREEMENT_FILES.items(), key=lambda kv: kv[1]):
        path = phrasebank_dir / name
        if not path.is_file():
            raise DataError(f"{path}: PhraseBank agreement file not found (all four ship in data/datasets)")
        for e in read_phrasebank(path).examples:
            level[_norm(e.text)] = share
    return level


def agreement_targets(rows: list[TextExample], levels: dict[str, float], mode: str) -> tuple[list | None, list | None]:
    """(soft targets, example weights) for ``mode`` soft | weight | none; unknown texts count as agreed."""
    if mode == "none":
        return None, None
    shares = [levels.get(_norm(e.text), 1.0) for e in rows]
    if mode == "weight":
        return None, shares
    if mode != "soft":
        raise ConfigError(f"data.agreement={mode!r}; allowed: ['soft', 'weight', 'none']")
    soft = []
    for e, a in zip(rows, shares):
        vec = np.full(len(LABELS), (1.0 - a) / (len(LABELS) - 1), dtype=np.float32)
        vec[LABELS.index(e.label)] = a
        soft.append(vec)
    return soft, None


def kg_company_terms(data_dir: Path) -> list[str]:
    """Company names and short names of the finance KG (labels and word-like aliases, no tickers)."""
    from kgfusion.knowledge.graph import KnowledgeGraph

    graph = KnowledgeGraph.load(data_dir / "kg" / "finance.ttl")
    terms: set[str] = set()
    for rec in graph.entity_records(types=["https://schema.org/Corporation"]):
        for name in rec.names():
            if len(name) >= 4 and not name.startswith("$") and not re.fullmatch(r"[A-Z.]{1,5}", name):
                terms.add(name)
    return sorted(terms)


def recipe_heads(recipe: Recipe) -> list[str]:
    """The heads a finance recipe trains (``data.heads``), checked: sentiment first, then optionally topic."""
    heads = recipe.data.get("heads", [SENTIMENT_HEAD])
    if (not isinstance(heads, list) or not heads or heads[0] != SENTIMENT_HEAD or len(set(heads)) != len(heads)
            or any(h not in HEADS for h in heads)):
        raise ConfigError(f"recipe {recipe.name}: data.heads={heads!r}; allowed: [{SENTIMENT_HEAD!r}] or "
                          f"[{SENTIMENT_HEAD!r}, {TOPIC_HEAD!r}] (sentiment is the primary head)")
    if len(heads) == 1:
        for key in ("head_weights", "select_on"):
            if key in recipe.data:
                raise ConfigError(f"recipe {recipe.name}: data.{key} needs data.heads with {TOPIC_HEAD!r}")
        return heads
    if recipe.data.get("agreement", "none") == "soft":
        raise ConfigError(f"recipe {recipe.name}: data.agreement='soft' is not supported with the topic head yet; "
                          "use 'weight' or 'none'")
    if len(recipe.ensemble.get("seeds") or []) > 1 or recipe.ensemble.get("distill"):
        raise ConfigError(f"recipe {recipe.name}: ensembles are sentiment-only for now; drop 'ensemble' or the "
                          "topic head")
    return heads


def train_recipe(recipe: Recipe, out_dir: str | Path | None = None, *, recipe_path: str = "",
                 data_dir: str | Path | None = None, work_dir: str | Path | None = None, progress: bool = True,
                 onnx: bool = True, ship: bool | None = None, max_steps: int = 0) -> dict[str, Any]:
    """Teachers by seed (optionally distilled into one student), held-out evaluation, the bundle."""
    from kgfusion.apps.common import repo_data_dir

    data_root = Path(data_dir) if data_dir else repo_data_dir()
    spec = recipe.data
    fdata = FinanceData.default(data_root)
    fdata.dev, fdata.test, fdata.seed = spec.get("dev", 0.1), spec.get("test", 0.1), spec.get("seed", 13)
    splits = load_finance_splits(fdata)
    overrides: dict[str, Any] = {"labels": list(LABELS), "task": "sequence"}
    topics: TopicSplits | None = None
    if TOPIC_HEAD in recipe_heads(recipe):
        topics = load_topic_splits(fdata, splits)
        overrides |= {"heads": {SENTIMENT_HEAD: list(LABELS), TOPIC_HEAD: topics.labels},
                      "primary_head": SENTIMENT_HEAD, "head_weights": dict(spec.get("head_weights", {})),
                      "select_on": spec.get("select_on", "mean")}
    base_dir = recipe.base.get("pretrained")
    if base_dir:
        if not Path(base_dir).is_dir():
            raise DataError(f"recipe {recipe.name}: pretrained base {base_dir} not found; build it with: "
                            f"{recipe.base.get('command', 'kgfusion model pretrain ...')}")
        overrides["base"] = str(base_dir)
    if max_steps:
        overrides["max_steps"] = max_steps
    config = recipe.train_config(**overrides)
    rows = list(splits.train)
    swap = recipe.augment.get("term_swap")
    if swap:
        from kgfusion.core.augment import term_swap

        rows = term_swap(rows, kg_company_terms(data_root), rate=float(swap.get("rate", 1.0)),
                         copies=int(swap.get("copies", 1)), seed=config.seed)
    levels = agreement_levels(Path(fdata.phrasebank).parent)
    soft, weights = agreement_targets(rows, levels, spec.get("agreement", "none"))
    if topics is not None:  # sentiment rows (augmented) first, then the topic tweets at full weight
        rows = as_head(rows, SENTIMENT_HEAD) + topics.train
        weights = None if weights is None else list(weights) + [1.0] * len(topics.train)
    work = Path(work_dir) if work_dir else Path("runs") / "recipes" / recipe.name
    seeds = list(recipe.ensemble.get("seeds") or [config.seed])
    started = time.perf_counter()
    teachers = []
    for seed in seeds:
        out = work / f"seed-{seed}"
        if not (out / "bundle.json").is_file():
            train_finsent_examples(recipe.train_config(**overrides, seed=seed), fdata, splits, out, train_rows=rows,
                                   progress=progress, onnx=False, soft_targets=soft, example_weights=weights,
                                   checkpoint_dir=work / f"ckpt-seed-{seed}", recipe=recipe,
                                   command=_command(recipe_path), topics=topics)
        teachers.append(out)
    report: dict[str, Any] = {}
    final = teachers[0]
    if len(teachers) > 1 or recipe.ensemble.get("distill"):
        from kgfusion.core.ensemble import EnsemblePredictor, soft_targets
        from kgfusion.core.predict import Predictor

        members = [Predictor.from_bundle(t) for t in teachers]
        report["teachers"] = {t.name: headline(evaluate_tests(m, splits.tests)) for t, m in zip(teachers, members)}
        ens = EnsemblePredictor(members)
        report["ensemble"] = headline(evaluate_tests(ens, splits.tests))
        if recipe.ensemble.get("distill", True):
            teacher_soft = soft_targets(ens, rows)
            student = work / "student"
            if not (student / "bundle.json").is_file():
                cfg = recipe.train_config(**overrides, soft_weight=float(recipe.ensemble.get("soft_weight", 0.5)))
                train_finsent_examples(cfg, fdata, splits, student, train_rows=rows, progress=progress, onnx=False,
                                       soft_targets=teacher_soft, example_weights=weights,
                                       checkpoint_dir=work / "ckpt-student", recipe=recipe,
                                       command=_command(recipe_path))
            final = student
    target = Path(out_dir) if out_dir else data_root / "models" / recipe.name
    result = finish_bundle(final, target, recipe, splits, report, time.perf_counter() - started, onnx=onnx,
                           ship=ship if ship is not None else bool(spec.get("ship", True)), topics=topics)
    if topics is not None and spec.get("lexical_topic"):  # the topic n-gram head fused into the topic head
        from kgfusion.apps.finance.lexical_head import build_topic_lexical_head

        result["topic_lexical"] = build_topic_lexical_head(target, data_root)
    return result


def finish_bundle(src: Path, target: Path, recipe: Recipe, splits, report: dict[str, Any], seconds: float, *,
                  onnx: bool, ship: bool, topics: TopicSplits | None = None) -> dict[str, Any]:
    """Copy the chosen model to ``target``; ONNX int8 (int8 embeddings, < 25 MB; one output per head)
    scored on the held-out sets (and the topic test split); recipe.json and the ensemble report; a
    shipped full fine-tune keeps only the ONNX model."""
    import shutil

    from kgfusion.core.bundle import (
        ONNX_INT8,
        add_file_to_bundle,
        load_bundle,
        read_manifest,
        strip_torch_weights,
        update_bundle_metadata,
    )
    from kgfusion.core.fileio import atomic_directory
    from kgfusion.core.predict import Predictor
    from kgfusion.core.quantize import export_onnx, quantize_onnx_int8

    with atomic_directory(target) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        (tmp / RECIPE_FILE).write_text(json.dumps(recipe.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    metrics = json.loads((target / "metrics.json").read_text(encoding="utf-8"))
    metrics["recipe"] = recipe.name
    metrics["recipe_seconds"] = round(seconds, 1)
    if report:
        metrics["details"]["ensemble"] = report
        metrics |= {f"ensemble_{k}": v for k, v in report["ensemble"].items()}
    if onnx:
        loaded = load_bundle(target)
        with tempfile.TemporaryDirectory(dir=target.parent) as work:
            fp32 = export_onnx(loaded.model, loaded.tokenizer, Path(work) / "model.onnx", task="sequence")
            q = quantize_onnx_int8(fp32, Path(work) / ONNX_INT8, quantize_embeddings=True)
            add_file_to_bundle(target, q, ONNX_INT8)
        quantized = Predictor.from_bundle(target, backend="onnx-int8")
        onnx_tests = evaluate_tests(quantized, splits.tests)
        if topics is not None:
            from kgfusion.core.jobs import evaluate_predictor

            onnx_tests[TOPIC_HEAD] = evaluate_predictor(quantized, topics.test, head=TOPIC_HEAD)
        metrics |= {k.replace("_accuracy", "_onnx_int8_accuracy").replace("_macro_f1", "_onnx_int8_macro_f1"): v
                    for k, v in headline(onnx_tests).items()}
        metrics["onnx_int8_mb"] = round((target / ONNX_INT8).stat().st_size / 1e6, 2)
    update_bundle_metadata(target, metrics=metrics, name=target.name)
    if ship and onnx and read_manifest(target).method == "full":
        strip_torch_weights(target)
    add_recipe_card(target, recipe, "finance", ABLATION_KEYS, results_dir() / "training.json")
    return {"bundle": str(target), "metrics": {k: v for k, v in metrics.items() if k != "details"}}


def _command(recipe_path: str) -> list[str]:
    return ["kgfusion", "model", "train", "--recipe", recipe_path or "data/recipes/<name>.json"]
