"""Parts of the training recipe (issue 12) on tiny models: structured decoding, CRF, gazetteer features,
schedules and layer-wise LR decay, adversaries, soft targets, checkpoint/resume."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from kgfusion.core.bundle import load_bundle, save_bundle
from kgfusion.core.decoding import CRF, IOB2Decoder, gather_words, iob2_constraints, viterbi, word_positions
from kgfusion.core.errors import ConfigError
from kgfusion.core.features import TokenGazetteer, split_words
from kgfusion.core.finetune import TrainConfig, _param_groups, build_model, train
from kgfusion.core.predict import Predictor

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


def _legal(tags: list[str]) -> bool:
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            return False
        prev = t
    return True


def _brute_force(scores, trans, start, end):
    best, arg = -np.inf, None
    for path in itertools.product(range(scores.shape[1]), repeat=scores.shape[0]):
        s = start[path[0]] + scores[0, path[0]] + end[path[-1]]
        s += sum(trans[a, b] + scores[t + 1, b] for t, (a, b) in enumerate(zip(path, path[1:])))
        if s > best:
            best, arg = s, list(path)
    return arg


def test_viterbi_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores, trans = rng.normal(size=(4, 3)), rng.normal(size=(3, 3))
        start, end = rng.normal(size=3), rng.normal(size=3)
        assert viterbi(scores, trans, start, end) == _brute_force(scores, trans, start, end)


def test_constraints_forbid_i_after_o_and_other_types():
    start, trans = iob2_constraints(LABELS)
    assert not start[LABELS.index("I-Disease")] and start[LABELS.index("B-Disease")]
    i_dis = LABELS.index("I-Disease")
    assert trans[LABELS.index("B-Disease"), i_dis] and trans[i_dis, i_dis]
    assert not trans[LABELS.index("O"), i_dis] and not trans[LABELS.index("B-Chemical"), i_dis]


def test_constrained_viterbi_always_legal_where_argmax_is_not():
    rng = np.random.default_rng(1)
    argmax, vit = IOB2Decoder(LABELS, "argmax"), IOB2Decoder(LABELS, "viterbi")
    illegal_argmax = 0
    for _ in range(200):
        logits = rng.normal(size=(6, len(LABELS))) * 3
        illegal_argmax += not _legal([LABELS[i] for i in argmax.decode(logits)])
        assert _legal([LABELS[i] for i in vit.decode(logits)])
    assert illegal_argmax > 20  # the test data really exercises the constraint


def test_viterbi_repairs_a_dangling_inside_tag():
    # word 2 prefers I-Disease after an O: the legal best path is B-Disease there (or O), never O I-
    logp = np.log(np.array([[0.9, 0.02, 0.02, 0.04, 0.02], [0.1, 0.02, 0.02, 0.36, 0.5]]))
    assert [LABELS[i] for i in IOB2Decoder(LABELS, "argmax").decode(logp)] == ["O", "I-Disease"]
    assert [LABELS[i] for i in IOB2Decoder(LABELS, "viterbi").decode(logp)] == ["O", "B-Disease"]


def test_crf_nll_matches_brute_force_partition():
    torch.manual_seed(0)
    labels = ["O", "B-X", "I-X"]
    crf = CRF(labels)
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start.normal_()
        crf.end.normal_()
    emissions = torch.randn(1, 3, 3)
    tags = torch.tensor([[1, 2, 0]])
    nll = crf.nll(emissions, tags, torch.ones(1, 3, dtype=torch.bool))
    trans, start = (crf.transitions + crf.trans_mask).detach(), (crf.start + crf.start_mask).detach()

    def score(path):
        s = start[path[0]] + emissions[0, 0, path[0]] + crf.end[path[-1]]
        for t in range(1, 3):
            s = s + trans[path[t - 1], path[t]] + emissions[0, t, path[t]]
        return s

    log_z = torch.logsumexp(torch.stack([score(p) for p in itertools.product(range(3), repeat=3)]), 0)
    assert float(nll.detach()) == pytest.approx(float(log_z - score([1, 2, 0]).detach()), abs=1e-4)


def test_crf_masking_ignores_padding():
    crf = CRF(LABELS)
    em = torch.randn(2, 4, len(LABELS))
    tags = torch.tensor([[0, 3, 4, 0], [3, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    both = crf.nll(em, tags, mask)
    first = crf.nll(em[:1], tags[:1], mask[:1])
    second = crf.nll(em[1:, :2], tags[1:, :2], mask[1:, :2])
    assert float(both) == pytest.approx((float(first) + float(second)) / 2, abs=1e-4)


def test_word_positions_gather_first_subtokens():
    labels = torch.tensor([[-100, 0, -100, 3, -100], [-100, 4, -100, -100, -100]])
    index, mask = word_positions(labels)
    assert index.tolist() == [[1, 3], [1, 0]] and mask.tolist() == [[True, True], [True, False]]
    assert gather_words(labels, index).tolist() == [[0, 3], [4, -100]]


# -- gazetteer features -------------------------------------------------------------------------

def test_gazetteer_longest_match_plural_and_words(tmp_path):
    gaz = TokenGazetteer([("colon cancer", "Disease"), ("cancer", "Disease"), ("aspirin", "Chemical"),
                          ("non-Hodgkin lymphoma", "Disease")])
    assert split_words("non-Hodgkin lymphoma") == ["non", "-", "hodgkin", "lymphoma"]
    names = gaz.feature_names()
    feats = gaz.word_features(["Colon", "cancers", "and", "Aspirin", "non", "-", "Hodgkin", "lymphomas"])
    assert [names[f] for f in feats] == ["B-Disease", "I-Disease", "O", "B-Chemical",
                                         "B-Disease", "I-Disease", "I-Disease", "I-Disease"]
    again = TokenGazetteer.load(gaz.save(tmp_path / "g.tsv.gz"))
    assert again.types == gaz.types and again.word_features(["colon", "cancer"]) == gaz.word_features(["colon", "cancer"])


def _gazetteer():
    return TokenGazetteer([("breast cancer", "Disease"), ("colon cancer", "Disease"), ("aspirin", "Chemical")])


@pytest.fixture(scope="module")
def fused_result(tiny_model_dir):
    from tests.conftest import make_ner_examples

    exs = make_ner_examples(80, seed=3)
    cfg = TrainConfig(task="token", base=tiny_model_dir, method="full", epochs=3, batch_size=8, max_length=32,
                      lr=3e-3, decoder="crf", kg_features=True, head_lr_scale=5.0, seed=0)
    return train(cfg, exs[:60], exs[60:], progress=False, gazetteer=_gazetteer()), exs[60:]


NOTES = ["the patient with breast cancer and pain", "history of colon cancer", "aspirin and the pain " * 30]


def test_fused_model_learns_and_round_trips(fused_result, tmp_path):
    res, dev = fused_result
    assert res.dev_metrics["f1"] > 0.5
    assert float(res.model.feature_embedding.weight.abs().sum()) > 0  # the feature table was trained
    assert float(res.model.crf.transitions.abs().sum()) > 0
    before = Predictor(res.model, res.tokenizer, res.labels, "token", decoder="crf").predict_spans(NOTES)
    path = save_bundle(tmp_path / "fused", res.model, res.tokenizer, task="token", method="full",
                       base=res.config.base, labels=res.labels, max_length=32, train_config=res.config.to_dict())
    assert {"fusion.safetensors", "gazetteer.tsv.gz"} <= set(load_bundle(path).manifest.files)
    after = Predictor.from_bundle(path).predict_spans(NOTES)
    assert [[(s.start, s.end, s.label) for s in x] for x in before] == \
        [[(s.start, s.end, s.label) for s in x] for x in after]
    for a, b in zip(before, after):
        assert [s.score for s in a] == pytest.approx([s.score for s in b], abs=1e-5)
    assert any(s.text == "breast cancer" for s in after[0])


def test_fused_model_exports_to_onnx_with_features(fused_result, tmp_path):
    pytest.importorskip("onnxruntime")
    from kgfusion.core.bundle import ONNX_INT8, add_file_to_bundle
    from kgfusion.core.quantize import export_onnx

    res, _ = fused_result
    path = save_bundle(tmp_path / "fused", res.model, res.tokenizer, task="token", method="full",
                       base=res.config.base, labels=res.labels, max_length=32, train_config=res.config.to_dict())
    onnx = export_onnx(load_bundle(path).model, res.tokenizer, tmp_path / "m.onnx", task="token")
    add_file_to_bundle(path, onnx, ONNX_INT8)  # fp32 graph under the int8 name: exact comparison
    fp32 = Predictor.from_bundle(path).predict_spans(NOTES)
    ort = Predictor.from_bundle(path, backend="onnx-int8").predict_spans(NOTES)
    assert [[(s.start, s.end, s.label) for s in x] for x in fp32] == [[(s.start, s.end, s.label) for s in x] for x in ort]
    features_used = Predictor.from_bundle(path, backend="onnx-int8")
    assert features_used.gazetteer is not None and features_used.decoder.mode == "crf"


def test_kg_features_need_a_gazetteer(tiny_model_dir, ner_examples):
    cfg = TrainConfig(task="token", base=tiny_model_dir, method="full", epochs=1, kg_features=True)
    with pytest.raises(ConfigError, match="gazetteer"):
        train(cfg, ner_examples[:40], ner_examples[40:], progress=False)
    with pytest.raises(ConfigError, match="token tasks only"):
        TrainConfig(task="sequence", decoder="viterbi")


# -- optimisation -------------------------------------------------------------------------------

def test_layer_wise_lr_decay_orders_the_groups(tiny_model_dir):
    cfg = TrainConfig(base=tiny_model_dir, method="full", lr=1e-3, layer_lr_decay=0.5, head_lr_scale=10.0)
    model, _ = build_model(cfg, ["a", "b"])
    lr_of = {}
    for group in _param_groups(model, cfg):
        for p in group["params"]:
            lr_of[id(p)] = group["lr"]
    named = dict(model.named_parameters())
    emb = lr_of[id(named["bert.embeddings.word_embeddings.weight"])]
    l0 = lr_of[id(named["bert.encoder.layer.0.attention.self.query.weight"])]
    l1 = lr_of[id(named["bert.encoder.layer.1.attention.self.query.weight"])]
    head = lr_of[id(named["classifier.weight"])]
    assert emb < l0 < l1 < head
    assert l1 == pytest.approx(1e-3 * 0.5) and l0 == pytest.approx(1e-3 * 0.25) and head == pytest.approx(1e-2)


def test_cosine_schedule_shape():
    from kgfusion.core.optim import cosine_schedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = cosine_schedule(opt, 2, 12)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] < lrs[2] == pytest.approx(1.0) and lrs[7] == pytest.approx(0.5, abs=0.01) and lrs[-1] < 0.05


@pytest.mark.parametrize("adversarial", ["fgm", "pgd"])
def test_adversarial_training_runs_and_changes_the_model(tiny_model_dir, sentiment_examples, adversarial):
    base = dict(base=tiny_model_dir, method="full", epochs=1, batch_size=8, max_length=16, lr=1e-3, seed=0)
    plain = train(TrainConfig(**base), sentiment_examples[:40], sentiment_examples[40:], progress=False)
    adv = train(TrainConfig(**base, adversarial=adversarial, adv_epsilon=1.0, pgd_steps=2),
                sentiment_examples[:40], sentiment_examples[40:], progress=False)
    assert plain.history[0]["train_loss"] != adv.history[0]["train_loss"] or \
        any(not torch.equal(a, b) for a, b in zip(plain.model.parameters(), adv.model.parameters()))


def test_soft_targets_pull_towards_the_teacher(tiny_model_dir, sentiment_examples):
    exs = sentiment_examples[:60]
    base = dict(base=tiny_model_dir, method="full", epochs=3, batch_size=8, max_length=16, lr=3e-3, seed=0,
                labels=("negative", "neutral", "positive"), soft_weight=1.0)
    # A teacher that always says "neutral": trained on it alone, the student predicts neutral.
    soft = [np.array([0.0, 1.0, 0.0])] * len(exs)
    res = train(TrainConfig(**base), exs, sentiment_examples[60:], progress=False, soft_targets=soft)
    preds = Predictor(res.model, res.tokenizer, res.labels, "sequence").predict([e.text for e in exs])
    assert sum(p.label == "neutral" for p in preds) > 0.9 * len(exs)


def test_checkpoint_resume_continues_after_the_last_epoch(tiny_model_dir, sentiment_examples, tmp_path):
    cfg = TrainConfig(base=tiny_model_dir, method="full", epochs=3, batch_size=8, max_length=16, lr=1e-3,
                      patience=5, seed=0)
    full = train(cfg, sentiment_examples[:60], sentiment_examples[60:], progress=False)
    ckpt = tmp_path / "ckpt"
    seen: list[int] = []

    def stop_after_two(record):
        seen.append(record["epoch"])
        if record["epoch"] == 2:
            raise KeyboardInterrupt  # a killed run

    with pytest.raises(KeyboardInterrupt):
        train(cfg, sentiment_examples[:60], sentiment_examples[60:], progress=False, on_epoch=stop_after_two,
              checkpoint_dir=ckpt)
    assert (ckpt / "last.pt").is_file() and seen == [1, 2]
    # epoch 2's checkpoint is written after on_epoch: the rerun resumes after epoch 1 and finishes 2 and 3
    resumed = train(cfg, sentiment_examples[:60], sentiment_examples[60:], progress=False, checkpoint_dir=ckpt)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3] and resumed.steps == full.steps
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in full.history]
    other = TrainConfig(**(cfg.to_dict() | {"lr": 2e-3, "labels": ()}))
    with pytest.raises(ConfigError, match="another training config"):
        train(other, sentiment_examples[:60], sentiment_examples[60:], progress=False, checkpoint_dir=ckpt)


def test_recipe_card_appends_the_recipe_and_the_tasks_ablation_once(tiny_bundle, tmp_path):
    import json
    import shutil

    from kgfusion.core.bundle import update_bundle_metadata
    from kgfusion.core.recipe import Recipe, add_recipe_card

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    update_bundle_metadata(bundle, model_card="# b\n\nA model.\n")
    results = tmp_path / "training.json"
    results.write_text(json.dumps({"tasks": {"ncbi": {"full-long": {"devel_f1": 0.8338, "train_seconds": 2773.4},
                                                      "lora-short": {"devel_f1": 0.7271}},
                                             "finance": {"x": {"twitter_accuracy": 0.9}}}}), encoding="utf-8")
    recipe = Recipe.from_dict({"name": "ncbi-full-long", "trainer": "kgfusion.apps.medical.recipe:train_recipe",
                               "description": "full fine-tune", "train": {"task": "token", "epochs": 20}})
    for _ in range(2):  # rebuilding a card replaces its recipe section instead of stacking a second one
        add_recipe_card(bundle, recipe, "ncbi", ("devel_f1", "twitter_accuracy"), results_file=results)
    card = (bundle / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert card.startswith("# b\n\nA model.\n") and card.count("## Recipe") == 1
    assert '"epochs": 20' in card and "kgfusion model train --recipe data/recipes/ncbi-full-long.json" in card
    assert "| full-long | 0.8338 | 2773.4 |" in card and "| lora-short | 0.7271 |" in card
    assert "twitter_accuracy" not in card  # another task's columns and rows stay out


def test_every_shipped_recipe_file_loads_and_names_an_app_trainer():
    from pathlib import Path

    from kgfusion.core.recipe import load_recipe

    root = Path(__file__).resolve().parents[2] / "data" / "recipes"
    files = sorted(root.rglob("*.json"))
    assert len(files) >= 10
    for path in files:
        recipe = load_recipe(path)
        assert callable(recipe.trainer_function()), path
        assert recipe.train_config(labels=["O", "B-Disease", "I-Disease"]).epochs >= 1, path
