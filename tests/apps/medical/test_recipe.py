"""A medical NER recipe end to end on a tiny random BERT, a tiny graph and tiny IOB files:
KG gazetteer features + CRF + mention replacement + a 2-seed ensemble distilled into a student,
ONNX int8 export, the shipped bundle keeps only the ONNX model, recipe.json inside."""
from __future__ import annotations

import json
import random

import pytest

from kgfusion.core.recipe import load_recipe, run_recipe
from tests.apps.medical.conftest import make_data_dir

DISEASES = [["breast", "cancer"], ["kidney", "disease"], ["gout"], ["heart", "failure"]]
FILLER = ["the", "patient", "with", "history", "of", "pain", "and", "was", "seen"]


def _iob(path, n, seed):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        for _ in range(rng.randint(3, 7)):
            if rng.random() < 0.3:
                name = rng.choice(DISEASES)
                lines += [f"{w}\t{'B' if i == 0 else 'I'}-Disease" for i, w in enumerate(name)]
            else:
                lines.append(f"{rng.choice(FILLER)}\tO")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def recipe_env(tmp_path, tiny_model_dir):
    data = make_data_dir(tmp_path / "data")
    ncbi = data / "datasets" / "ncbi_disease"
    ncbi.mkdir(parents=True)
    _iob(ncbi / "train.tsv", 80, 1)
    _iob(ncbi / "devel.tsv", 20, 2)
    recipe = {
        "name": "medical-ner-tiny", "trainer": "kgfusion.apps.medical.recipe:train_recipe",
        "description": "tiny", "data": {"dataset": "ncbi", "dev_fraction": 0.2},
        "train": {"task": "token", "base": tiny_model_dir, "method": "full", "epochs": 2, "batch_size": 8,
                  "max_length": 32, "lr": 3e-3, "decoder": "crf", "kg_features": True, "schedule": "cosine",
                  "layer_lr_decay": 0.9},
        "knowledge": {"gazetteer": True, "min_chars": 4},
        "augment": {"mention_replacement": {"rate": 0.5, "copies": 1, "pool": "kg"}},
        "ensemble": {"seeds": [1, 2], "distill": True},
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe), encoding="utf-8")
    return path, data, tmp_path


def test_recipe_builds_a_shippable_onnx_only_bundle(recipe_env):
    from kgfusion.core.bundle import load_bundle, read_manifest
    from kgfusion.core.errors import BundleError
    from kgfusion.core.predict import Predictor

    path, data, tmp = recipe_env
    out = tmp / "bundle"
    res = run_recipe(path, out, data_dir=data, work_dir=tmp / "work", progress=False)
    m = res["metrics"]
    assert {"devel_f1", "devel_onnx_int8_f1", "ensemble_devel_f1", "recipe_seconds"} <= set(m)
    manifest = read_manifest(out)
    assert manifest.name == "bundle"  # named after where it ships, not the teacher/student work dir
    assert "model.safetensors" not in manifest.files and "model.int8.onnx" in manifest.files
    assert {"recipe.json", "gazetteer.tsv.gz", "fusion.safetensors"} <= set(manifest.files)
    assert json.loads((out / "recipe.json").read_text())["name"] == "medical-ner-tiny"
    card = (out / "MODEL_CARD.md").read_text()
    assert "`model.int8.onnx` only" in card and "model.safetensors" not in card  # the card lists what ships
    with pytest.raises(BundleError, match="onnx-int8 backend"):
        load_bundle(out)
    p = Predictor.from_bundle(out, backend="onnx-int8")
    assert p.gazetteer is not None and p.decoder.mode == "crf"
    spans = p.predict_spans(["the patient with breast cancer and gout"])[0]
    assert all(s.label == "Disease" for s in spans)
    # teachers and student are kept in the work dir: a rerun reuses them instead of training again
    work = tmp / "work"
    assert {"seed-1", "seed-2", "student"} <= {d.name for d in work.iterdir()}
    stamp = (work / "student" / "bundle.json").stat().st_mtime
    run_recipe(path, tmp / "bundle2", data_dir=data, work_dir=work, progress=False)
    assert (work / "student" / "bundle.json").stat().st_mtime == stamp


def test_bad_recipes_are_refused(tmp_path):
    from kgfusion.core.errors import ConfigError

    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"name": "x", "trainer": "os:system", "train": {}}))
    with pytest.raises(ConfigError, match="kgfusion.apps"):
        load_recipe(bad)
    bad.write_text(json.dumps({"name": "x", "trainer": "kgfusion.apps.medical.recipe:train_recipe",
                               "train": {"epochz": 3}}))
    with pytest.raises(ConfigError, match=r"r\.json: .*unknown key\(s\) \['epochz'\]"):
        load_recipe(bad)
    bad.write_bytes(b"\xff\xfe{")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_recipe(bad)


def test_cross_fold_features_hide_a_sentences_own_mentions():
    from kgfusion.apps.medical.recipe import cross_fold_features
    from kgfusion.core.data import TokenExample
    from kgfusion.core.features import TokenGazetteer

    rows = [TokenExample(("rare", "zebra", "syndrome", "seen"), ("B-Disease", "I-Disease", "I-Disease", "O"), 1),
            TokenExample(("gout", "again"), ("B-Disease", "O"), 2),
            TokenExample(("gout", "and", "rare", "zebra", "syndrome"), ("B-Disease", "O", "O", "O", "O"), 3),
            TokenExample(("nothing", "here"), ("O", "O"), 4)]
    full, feats = cross_fold_features(TokenGazetteer([], types=["Disease"]), rows, folds=2)
    names = full.feature_names()
    # row 1's mention lives only in fold 0: its own features miss it, row 3 (fold 1) sees it
    assert [names[f] for f in feats[0]] == ["O", "O", "O", "O"]
    assert [names[f] for f in feats[2]] == ["B-Disease", "O", "B-Disease", "I-Disease", "I-Disease"]
    # the shipped gazetteer has every training mention
    assert [names[f] for f in full.word_features(["rare", "zebra", "syndrome"])] == \
        ["B-Disease", "I-Disease", "I-Disease"]


def test_model_train_recipe_cli_trains_the_recipe_and_refuses_mixed_options(recipe_env, monkeypatch):
    from click.testing import CliRunner

    from kgfusion.apps.cli import cli

    path, data, tmp = recipe_env
    recipe = json.loads(path.read_text())
    recipe.pop("ensemble")
    recipe.pop("augment")
    recipe["train"] |= {"epochs": 1, "decoder": "viterbi"}
    path.write_text(json.dumps(recipe), encoding="utf-8")
    monkeypatch.setenv("KGFUSION_DATA", str(data))
    monkeypatch.chdir(tmp)  # the trainer's work dir (teachers, checkpoints) is runs/recipes/<name> under the cwd
    res = CliRunner().invoke(cli, ["model", "train", "--recipe", str(path), "--epochs", "3"])
    assert res.exit_code == 2 and "--recipe sets the data and training options itself; drop --epochs" in res.output
    out = tmp / "cli-bundle"
    res = CliRunner().invoke(cli, ["model", "train", "--recipe", str(path), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["bundle"] == str(out) and 0.0 <= got["metrics"]["devel_f1"] <= 1.0
    assert json.loads((out / "recipe.json").read_text())["train"]["decoder"] == "viterbi"
    assert (tmp / "runs" / "recipes" / "medical-ner-tiny").is_dir()
    res = CliRunner().invoke(cli, ["model", "train", "--out", str(tmp / "x")])
    assert res.exit_code == 2 and "give --data FILE and --out DIR (or --recipe FILE)" in res.output


def test_student_recipe_distils_a_fewer_layer_copy_of_the_fp32_teacher(recipe_env):
    from kgfusion.core.bundle import read_manifest

    path, data, tmp = recipe_env
    teacher_recipe = json.loads(path.read_text())
    teacher_recipe |= {"ensemble": {}, "augment": {}}
    teacher_recipe["train"] |= {"epochs": 1, "layer_lr_decay": 1.0}
    path.write_text(json.dumps(teacher_recipe), encoding="utf-8")
    run_recipe(path, tmp / "teacher-bundle", data_dir=data, work_dir=tmp / "teacher-work", progress=False, onnx=False)
    teacher = tmp / "teacher-work" / "seed-13"
    assert (teacher / "model.safetensors").is_file()  # the fp32 teacher stays in the work dir

    student_recipe = dict(teacher_recipe, name="medical-ner-tiny-fast",
                          student={"teacher": str(teacher), "layers": 1, "transfer": ["ncbi"]},
                          ensemble={"distill": True})
    spath = tmp / "student.json"
    spath.write_text(json.dumps(student_recipe), encoding="utf-8")
    res = run_recipe(spath, tmp / "fast", data_dir=data, work_dir=tmp / "fast-work", progress=False)
    assert json.loads((tmp / "fast-work" / "base-1L" / "config.json").read_text())["num_hidden_layers"] == 1
    details = json.loads((tmp / "fast" / "metrics.json").read_text())["details"]
    assert "seed-13" in details["ensemble"]["teachers"]  # scored the teacher it learnt from
    assert details["ensemble"]["transfer_rows"] == 80  # the transfer corpus' train.tsv sentences, teacher-tagged
    assert "model.int8.onnx" in read_manifest(tmp / "fast").files and res["metrics"]["devel_onnx_int8_f1"] >= 0

    from kgfusion.apps.medical.recipe import transfer_rows
    from kgfusion.core.data import read_conll
    from kgfusion.core.jobs import predict_word_tags
    from kgfusion.core.predict import Predictor
    from kgfusion.core.recipe import Recipe

    rows = transfer_rows(Recipe.from_dict(student_recipe), data, teacher)
    gold = read_conll(data / "datasets" / "ncbi_disease" / "train.tsv").examples
    assert [r.tokens for r in rows] == [g.tokens for g in gold]  # the texts, never devel.tsv's
    assert [list(r.tags) for r in rows] == predict_word_tags(Predictor.from_bundle(teacher), [g.tokens for g in gold])
    from kgfusion.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"student.transfer datasets \['pubmed'\]"):
        transfer_rows(Recipe.from_dict(dict(student_recipe, student={"transfer": ["pubmed"]})), data, teacher)

    missing = dict(student_recipe, student={"teacher": str(tmp / "nowhere")})
    spath.write_text(json.dumps(missing), encoding="utf-8")
    from kgfusion.core.errors import DataError

    with pytest.raises(DataError, match="fp32 teacher .*nowhere not found; build it with"):
        run_recipe(spath, tmp / "fast2", data_dir=data, work_dir=tmp / "fast-work2", progress=False)
