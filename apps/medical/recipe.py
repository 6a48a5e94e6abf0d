"""Train a clinical NER bundle from a recipe (data/recipes/medical-*.json; ``kgfusion model train --recipe``).

Recipe sections this trainer reads (all optional except ``train``)::

    "data":      {"dataset": "ncbi" | "bc5cdr", "dev_fraction": 0.1, "seed": 13,
                  "extra_train": [{"dataset": "bc5cdr", "types": ["Disease"]}]}   # joint data, same labels
    "knowledge": {"gazetteer": true, "min_chars": 4,     # KG names as token features (kg_features)
                  "corpus_mentions": true, "folds": 5}   # + training mentions, cross-fold for training
    "augment":   {"mention_replacement": {"rate": 0.3, "copies": 1, "pool": "kg" | "train"}}
    "ensemble":  {"seeds": [13, 14, 15], "distill": true}  # teachers by seed, then one distilled student
    "base":      {"pretrained": "runs/pretrain/medical", "command": "kgfusion model pretrain ..."}

Evaluation is always the official devel split, which no step of the recipe sees (early stopping uses
a seeded part of train.tsv; the gazetteer holds only knowledge-graph names, no corpus mentions).
With ``corpus_mentions`` the gazetteer also holds the gold mentions of the training sentences; a
training sentence sees only the mentions of the *other* folds (contiguous blocks, close to whole
abstracts), so the feature is as reliable in training as it will be on new text.
The bundle keeps recipe.json; a full fine-tune ships only its ONNX int8 model (``ship: true``).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from kgfusion.apps.common import results_dir
from kgfusion.apps.medical.train import (
    MedicalData,
    add_onnx,
    evaluate_devel,
    headline,
    load_medical_splits,
)
from kgfusion.core.data import TokenExample, read_conll
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.recipe import RECIPE_FILE, Recipe, add_recipe_card

log = logging.getLogger(__name__)
# the columns of the ablation table in the model card
ABLATION_KEYS = ("devel_f1", "devel_precision", "devel_recall", "devel_chemical_f1", "devel_disease_f1",
                 "devel_argmax_f1", "devel_viterbi_f1", "devel_onnx_int8_f1")


def kg_gazetteer(data_dir: Path, min_chars: int = 4, types: tuple[str, ...] = ("Disease", "Chemical")):
    """Disease and drug names of data/kg/medical.ttl as a core TokenGazetteer (no corpus mentions)."""
    from kgfusion.apps.medical.gazetteer import Gazetteer
    from kgfusion.apps.medical.linking import MedicalKB
    from kgfusion.core.features import TokenGazetteer

    graph = data_dir / "kg" / "medical.ttl"
    kb = MedicalKB.load(graph, graph.parent / "index" / "medical-app")
    app_gaz = Gazetteer.from_records(kb.records, min_chars=min_chars, symptoms=False, plurals=False)
    return TokenGazetteer(((e.name, e.label) for e in app_gaz.entries), types=list(types))


def kg_name_pool(data_dir: Path, types: tuple[str, ...]) -> dict[str, list[tuple[str, ...]]]:
    """KG names per NER type, split into words as the CoNLL files are, for mention replacement."""
    from kgfusion.core.features import split_words

    gaz = kg_gazetteer(data_dir, types=types)
    pool: dict[str, set[tuple[str, ...]]] = {}
    for words, etype in gaz.table.items():
        pool.setdefault(etype, set()).add(tuple(split_words(" ".join(words))))
    return {k: sorted(v) for k, v in pool.items()}


def cross_fold_features(gazetteer, rows: list[TokenExample], folds: int):
    """(gazetteer + every training mention, per-row word features from KG + other folds' mentions)."""
    from kgfusion.core.augment import entity_spans

    if folds < 2:
        raise ConfigError(f"knowledge.folds={folds}; use at least 2")
    size = -(-len(rows) // folds)
    fold_mentions: list[set[tuple[str, str]]] = []
    for k in range(folds):
        names = set()
        for e in rows[k * size : (k + 1) * size]:
            for s, t, etype in entity_spans(e.tags):
                names.add((" ".join(e.tokens[s:t]), etype))
        fold_mentions.append(names)
    full = gazetteer.extended(sorted(set().union(*fold_mentions)))
    features: list[list[int]] = []
    for k in range(folds):
        others = sorted(set().union(*(m for j, m in enumerate(fold_mentions) if j != k)))
        fold_gaz = gazetteer.extended(others)
        features += [fold_gaz.word_features(list(e.tokens)) for e in rows[k * size : (k + 1) * size]]
    return full, features


def _extra_examples(spec: dict[str, Any], data_dir: Path, keep_labels: set[str]) -> list[TokenExample]:
    """Another corpus's train.tsv mapped onto this model's types (other types become O)."""
    from kgfusion.apps.medical.train import DATASETS

    name = spec.get("dataset")
    if name not in DATASETS:
        raise ConfigError(f"extra_train dataset {name!r}; allowed: {sorted(DATASETS)}")
    types = set(spec.get("types") or [])
    res = read_conll(data_dir / "datasets" / DATASETS[name] / "train.tsv")
    out = []
    for e in res.examples:
        tags = tuple(t if t != "O" and t[2:] in types and t in keep_labels else "O" for t in e.tags)
        out.append(TokenExample(e.tokens, tags, 10_000_000 + e.row))
    return out


def _labels_for(dataset: str) -> tuple[str, ...]:
    types = ("Disease",) if dataset == "ncbi" else ("Chemical", "Disease")
    return ("O",) + tuple(f"{p}-{t}" for t in types for p in ("B", "I"))


def train_recipe(recipe: Recipe, out_dir: str | Path | None = None, *, recipe_path: str = "",
                 data_dir: str | Path | None = None, work_dir: str | Path | None = None, progress: bool = True,
                 onnx: bool = True, ship: bool | None = None, max_steps: int = 0) -> dict[str, Any]:
    """Train (teachers, then a distilled student when the recipe asks), evaluate on devel, write the bundle."""
    from kgfusion.apps.common import repo_data_dir
    from kgfusion.apps.medical.train import train_medical_examples

    data = Path(data_dir) if data_dir else repo_data_dir()
    spec = recipe.data
    dataset = spec.get("dataset", "ncbi")
    mdata = MedicalData.default(dataset, data, spec.get("dev_fraction", 0.1), spec.get("seed", 13))
    train_set, dev_set, devel_set, rejects = load_medical_splits(mdata)
    labels = _labels_for(dataset)
    base_dir = recipe.base.get("pretrained")
    overrides: dict[str, Any] = {"labels": list(labels), "task": "token"}
    if base_dir:
        if not Path(base_dir).is_dir():
            raise DataError(f"recipe {recipe.name}: pretrained base {base_dir} not found; build it with: "
                            f"{recipe.base.get('command', 'kgfusion model pretrain ...')}")
        overrides["base"] = str(base_dir)
    if max_steps:
        overrides["max_steps"] = max_steps
    config = recipe.train_config(**overrides)
    extra: list[TokenExample] = []
    for item in spec.get("extra_train", []):
        extra += _extra_examples(item, data, set(labels))
    train_rows = list(train_set) + extra
    gazetteer = None
    if config.kg_features:
        gazetteer = kg_gazetteer(data, int(recipe.knowledge.get("min_chars", 4)),
                                 tuple(t[2:] for t in labels if t.startswith("B-")) if
                                 recipe.knowledge.get("own_types_only") else ("Disease", "Chemical"))
    aug = recipe.augment.get("mention_replacement")
    if aug:
        from kgfusion.core.augment import mention_pool, mention_replacement

        types = tuple(t[2:] for t in labels if t.startswith("B-"))
        pool = kg_name_pool(data, types) if aug.get("pool", "kg") == "kg" else mention_pool(train_rows)
        train_rows = mention_replacement(train_rows, pool, rate=float(aug.get("rate", 0.3)),
                                         copies=int(aug.get("copies", 1)), seed=config.seed)
    train_word_features = None
    if gazetteer is not None and recipe.knowledge.get("corpus_mentions"):
        gazetteer, train_word_features = cross_fold_features(gazetteer, train_rows,
                                                             int(recipe.knowledge.get("folds", 5)))
    work = Path(work_dir) if work_dir else Path("runs") / "recipes" / recipe.name
    seeds = list(recipe.ensemble.get("seeds") or [config.seed])
    started = time.perf_counter()
    teachers = []
    if recipe.student:  # a fast variant: the fp32 teacher's soft labels train a fewer-layer copy of it
        teachers.append(_student_teacher(recipe))
        overrides["base"] = str(_student_base(teachers[0], int(recipe.student.get("layers", 3)), work))
        seeds = []
    for seed in seeds:
        cfg = recipe.train_config(**overrides, seed=seed)
        out = work / f"seed-{seed}"
        if (out / "bundle.json").is_file():
            teachers.append(out)
            continue
        train_medical_examples(cfg, mdata, train_rows, dev_set, devel_set, rejects, out, progress=progress,
                               gazetteer=gazetteer, checkpoint_dir=work / f"ckpt-seed-{seed}", onnx=False,
                               train_word_features=train_word_features,
                               recipe=recipe, command=_command(recipe_path))
        teachers.append(out)
    report: dict[str, Any] = {"teachers": {}}
    if recipe.student.get("transfer"):  # more text for the student to learn the teacher from
        transfer = transfer_rows(recipe, data, teachers[0])
        report["transfer_rows"] = len(transfer)
        train_rows = train_rows + transfer
        if train_word_features is not None and gazetteer is not None:
            # these texts are not training text: their features come from the full gazetteer, as at run time
            train_word_features = train_word_features + [gazetteer.word_features(list(e.tokens)) for e in transfer]
    final = teachers[0]
    if len(teachers) > 1 or recipe.ensemble.get("distill"):
        from kgfusion.core.ensemble import EnsemblePredictor, soft_targets
        from kgfusion.core.predict import Predictor

        members = [Predictor.from_bundle(t) for t in teachers]
        for t, m in zip(teachers, members):
            report["teachers"][t.name] = headline("devel", evaluate_devel(m, devel_set))
        ens = EnsemblePredictor(members, decoder="viterbi")
        report["ensemble"] = headline("devel", evaluate_devel(ens, devel_set))
        if recipe.ensemble.get("distill", True):
            soft = soft_targets(ens, train_rows)
            cfg = recipe.train_config(**overrides, soft_weight=float(recipe.ensemble.get("soft_weight", 0.5)))
            student = work / "student"
            if not (student / "bundle.json").is_file():
                train_medical_examples(cfg, mdata, train_rows, dev_set, devel_set, rejects, student,
                                       progress=progress, gazetteer=gazetteer, soft_targets=soft,
                                       train_word_features=train_word_features,
                                       checkpoint_dir=work / "ckpt-student", onnx=False, recipe=recipe,
                                       command=_command(recipe_path))
            final = student
    seconds = time.perf_counter() - started
    target = Path(out_dir) if out_dir else data / "models" / recipe.name
    return finish_bundle(final, target, recipe, devel_set, report, seconds, onnx=onnx,
                         ship=ship if ship is not None else bool(recipe.data.get("ship", True)))


def transfer_rows(recipe: Recipe, data_dir: Path, teacher: Path) -> list[TokenExample]:
    """The training texts of ``recipe.student["transfer"]``'s corpora (train.tsv only: never a devel or
    test text), tagged by the teacher's own decoding. The student then learns the teacher on more text
    than the labelled set; the soft targets come from the teacher too, the gold tags stay gold."""
    from kgfusion.apps.medical.train import DATASETS
    from kgfusion.core.jobs import predict_word_tags
    from kgfusion.core.predict import Predictor

    names = list(recipe.student.get("transfer") or [])
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise ConfigError(f"recipe {recipe.name}: student.transfer datasets {unknown}; allowed: {sorted(DATASETS)}")
    token_lists: list[list[str]] = []
    for name in names:
        token_lists += [list(e.tokens) for e in read_conll(data_dir / "datasets" / DATASETS[name] / "train.tsv").examples]
    predictor = Predictor.from_bundle(teacher)
    tags = predict_word_tags(predictor, token_lists)
    return [TokenExample(tuple(toks), tuple(t), 20_000_000 + i) for i, (toks, t) in enumerate(zip(token_lists, tags))]


def _student_teacher(recipe: Recipe) -> Path:
    teacher = Path(recipe.student.get("teacher", ""))
    if not (teacher / "bundle.json").is_file() or not (teacher / "model.safetensors").is_file():
        raise DataError(f"recipe {recipe.name}: fp32 teacher {teacher} not found; build it with: kgfusion model train "
                        f"--recipe {recipe.student.get('teacher_recipe', 'data/recipes/<teacher>.json')}")
    if not recipe.ensemble.get("distill"):
        raise ConfigError(f"recipe {recipe.name}: a student recipe needs ensemble.distill = true (the teacher's "
                          "soft labels are what it learns from)")
    return teacher


def _student_base(teacher: Path, layers: int, work: Path) -> Path:
    """A base-model directory holding ``layers`` evenly spaced layers of the fine-tuned teacher's encoder
    (and its classifier), so the student starts from what the teacher learnt rather than from MiniLM."""
    import shutil

    from kgfusion.core.bundle import load_bundle
    from kgfusion.core.compress import make_student
    from kgfusion.core.tokenmodel import FUSION_FILE

    out = work / f"base-{layers}L"
    if not (out / "config.json").is_file():
        loaded = load_bundle(teacher)
        hf_model = getattr(loaded.model, "hf_model", loaded.model)  # FusedTokenModel wraps the HF model
        student = make_student(hf_model, layers)
        student.save_pretrained(out)
        loaded.tokenizer.save_pretrained(out)
    fusion = teacher / FUSION_FILE
    if fusion.is_file() and not (out / FUSION_FILE).is_file():
        # the teacher's KG feature embeddings and CRF transitions: the student starts from them too
        # (core.finetune loads them when the shapes match)
        shutil.copyfile(fusion, out / FUSION_FILE)
    return out


def finish_bundle(src: Path, target: Path, recipe: Recipe, devel_set, report: dict[str, Any], seconds: float,
                  *, onnx: bool, ship: bool) -> dict[str, Any]:
    """Copy the chosen model to ``target``, add ONNX int8 (scored on devel), the recipe and the ablation
    report; a shipped full fine-tune keeps only the ONNX model."""
    import shutil

    from kgfusion.core.bundle import read_manifest, update_bundle_metadata
    from kgfusion.core.fileio import atomic_directory

    with atomic_directory(target) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        (tmp / RECIPE_FILE).write_text(json.dumps(recipe.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    metrics = json.loads((target / "metrics.json").read_text(encoding="utf-8"))
    metrics["recipe"] = recipe.name
    metrics["recipe_seconds"] = round(seconds, 1)
    if report.get("teachers"):
        metrics["details"]["ensemble"] = report
        metrics["ensemble_devel_f1"] = report["ensemble"]["devel_f1"]
    update_bundle_metadata(target, metrics=metrics, name=target.name)
    if onnx:
        add_onnx(target, devel_set, strip=ship and read_manifest(target).method == "full")
    add_recipe_card(target, recipe, str(recipe.data.get("dataset", "")), ABLATION_KEYS,
                    results_dir() / "training.json")
    final = json.loads((target / "metrics.json").read_text(encoding="utf-8"))
    return {"bundle": str(target), "metrics": {k: v for k, v in final.items() if k != "details"}}


def _command(recipe_path: str) -> list[str]:
    return ["kgfusion", "model", "train", "--recipe", recipe_path or "data/recipes/<name>.json"]

