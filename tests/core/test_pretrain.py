"""Continued MLM pretraining on a tiny random BERT: masking, packing, readers, training, resume."""
from __future__ import annotations

import gzip
import json
import random

import pytest
import torch
from safetensors.torch import load_file

from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.models import load_base, load_tokenizer
from kgfusion.core.pretrain import (
    CHECKPOINT,
    PretrainConfig,
    WholeWordMasker,
    build_mlm_model,
    pack_blocks,
    pack_corpus,
    pretrain,
    read_corpus,
    step_generator,
)

PHRASES = ["the company profit rose", "sales increased", "net loss fell", "breast cancer patient",
           "denies pain and fever", "xyz kq stock market", "shares fell zq"]


def make_corpus(path, n: int = 240, seed: int = 0):
    rng = random.Random(seed)
    path.write_text("\n".join(" ".join(rng.choice(PHRASES) for _ in range(rng.randint(2, 6)))
                              for _ in range(n)) + "\n", encoding="utf-8")
    return path


def tiny_config(base: str, **kw) -> PretrainConfig:
    settings = dict(base=base, max_length=32, batch_size=16, lr=5e-3, max_steps=40, save_every=10, log_every=5,
                    eval_fraction=0.1, eval_max_blocks=8, seed=3)
    return PretrainConfig(**(settings | kw))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt")


@pytest.fixture(scope="module")
def trained(tiny_model_dir, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "out"
    result = pretrain(tiny_config(tiny_model_dir), [corpus], out, progress=False, command=["kgfusion", "x"])
    return out, result


def test_whole_word_masking_masks_whole_words_and_about_15_percent(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    docs = [" ".join(random.Random(i).choice(["xyz", "kq", "profit", "rose", "zqx", "the"]) for _ in range(20))
            for i in range(60)]
    packed = pack_corpus(docs, tok, 64, seed=0)
    masker = WholeWordMasker(tok, 0.15)
    inputs, attention, labels = masker(packed.train, packed.train_lengths, step_generator(0, 0))
    candidate, word = masker.word_starts(packed.train, packed.train_lengths)
    chosen_words = total_words = 0
    for row in range(len(labels)):
        n = int(word[row].max()) + 1
        for w in range(n):
            at = word[row] == w
            picked = labels[row][at] != -100
            assert picked.all() or not picked.any(), "a word was partly masked"
            chosen_words += int(picked.all())
        total_words += n
        assert (labels[row][~candidate[row]] == -100).all()  # never [CLS]/[SEP]/[PAD]
    assert 0.12 <= chosen_words / total_words <= 0.18
    masked = labels != -100
    assert 0.7 <= (inputs[masked] == tok.mask_token_id).float().mean() <= 0.9
    assert attention.sum() == packed.train_lengths.sum()
    # "xyz" is x ##y ##z: one word of three tokens
    ids = tok("xyz", add_special_tokens=False)["input_ids"]
    assert len(ids) == 3
    block = torch.tensor([[tok.cls_token_id, *ids, tok.sep_token_id]])
    _, w = masker.word_starts(block, torch.tensor([5]))
    assert w.tolist() == [[-1, 0, 0, 0, -1]]
    _, w = WholeWordMasker(tok, whole_word=False).word_starts(block, torch.tensor([5]))
    assert w.tolist() == [[-1, 0, 1, 2, -1]]


def test_packing_is_full_sentences_and_deterministic(tiny_model_dir):
    ids, lengths = pack_blocks([[5, 6], [7, 8, 9], [10] * 7, [11]], max_length=8, cls_id=1, sep_id=2, pad_id=0)
    rows = [r[:n].tolist() for r, n in zip(ids, lengths)]
    # [7,8,9] fits beside [5,6] (2+1+3 = 6 slots); the 7-token doc is longer than a block: it is split
    assert rows == [[1, 5, 6, 2, 7, 8, 9, 2], [1, 10, 10, 10, 10, 10, 10, 2], [1, 10, 2, 11, 2]]
    assert ids.shape == (3, 8) and ids[2, 5:].tolist() == [0, 0, 0]
    tok = load_tokenizer(tiny_model_dir)
    docs = [" ".join(PHRASES[j % len(PHRASES)] for j in range(i % 5 + 1)) for i in range(50)]
    a = pack_corpus(docs, tok, 32, seed=1, eval_fraction=0.1)
    b = pack_corpus(docs, tok, 32, seed=1, eval_fraction=0.1)
    c = pack_corpus(docs, tok, 32, seed=2, eval_fraction=0.1)
    assert torch.equal(a.train, b.train) and torch.equal(a.heldout, b.heldout)
    assert not torch.equal(a.train, c.train)
    assert a.documents == {"train": 45, "heldout": 5}
    assert (a.train[:, 0] == tok.cls_token_id).all()
    n_doc_tokens = sum(len(t) for t in tok(docs, add_special_tokens=False)["input_ids"])
    n_block_tokens = int(a.train_lengths.sum() + a.heldout_lengths.sum())
    assert n_block_tokens > n_doc_tokens  # every token kept, plus [CLS]/[SEP]s


def test_readers_text_jsonl_gz_pubtator_and_bad_files(tmp_path):
    (tmp_path / "a.txt").write_text("one doc\n\n  two   doc \n", encoding="utf-8")
    f = read_corpus(tmp_path / "a.txt")
    assert (f.format, f.documents, f.lines, f.skipped, len(f.sha256)) == ("text", ["one doc", "two doc"], 3, 1, 64)
    with gzip.open(tmp_path / "t.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write('{"text": "tweet $AAPL up"}\n{"id": 1}\n{"text": "line\\nbreak"}\n')
    f = read_corpus(tmp_path / "t.jsonl.gz")
    assert (f.format, f.documents, f.skipped) == ("jsonl", ["tweet $AAPL up", "line break"], 1)
    (tmp_path / "p.txt").write_text("11|t|A title.\n11|a|An abstract.\n11\t0\t1\tA\tDisease\tD1\n\n"
                                    "12|t|Second.\n12|a|Text.\n", encoding="utf-8")
    f = read_corpus(tmp_path / "p.txt")
    assert (f.format, f.documents) == ("pubtator", ["A title. An abstract.", "Second. Text."])
    (tmp_path / "latin.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{oops\n', encoding="utf-8")
    for name, words in (("latin.txt", "not valid UTF-8"), ("empty.txt", "no text found"),
                        ("bad.jsonl", "line 2 is not valid JSON"), ("missing.txt", "not found")):
        with pytest.raises(DataError, match=words) as err:
            read_corpus(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)


def test_mlm_model_loads_the_encoder_and_ties_a_fresh_head(tiny_model_dir):
    mlm = build_mlm_model(tiny_model_dir, seed=0)
    assert mlm.head == "fresh"
    base = load_file(f"{tiny_model_dir}/model.safetensors")
    emb = mlm.model.get_input_embeddings().weight
    assert torch.equal(emb, base["embeddings.word_embeddings.weight"])
    assert mlm.model.get_output_embeddings().weight.data_ptr() == emb.data_ptr()


def test_loss_falls_and_the_output_is_a_base_model(trained, tiny_model_dir):
    out, result = trained
    assert result["finished"] and result["steps"] == 40
    assert result["eval_loss_last"] < result["eval_loss_first"] - 0.5
    assert result["train_loss_last"] < result["train_loss_first"]
    model, _ = load_base(out, task="token", labels=["O", "B-Disease", "I-Disease"])
    assert type(model).__name__ == "BertForTokenClassification"
    new, old = load_file(out / "model.safetensors"), load_file(f"{tiny_model_dir}/model.safetensors")
    assert not any(k.startswith(("bert.", "cls.")) for k in new)
    assert not torch.equal(new["encoder.layer.0.attention.self.query.weight"],
                           old["encoder.layer.0.attention.self.query.weight"])
    assert torch.equal(new["pooler.dense.weight"], old["pooler.dense.weight"])  # unused by MLM: kept
    log = json.loads((out / "pretrain_log.json").read_text())
    assert log["log"][0] == {"step": 0, "eval_loss": pytest.approx(result["eval_loss_first"]), "seconds": 0.0}
    assert [e["step"] for e in log["log"] if "eval_loss" in e] == [0, 10, 20, 30, 40]
    card = (out / "PRETRAIN.md").read_text()
    assert result["corpus"][0]["sha256"] in card and "| 240 |" in card and "kgfusion x" in card
    payload = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
    assert payload["step"] == 40 and any(k.startswith("cls.predictions") for k in payload["model"])


def test_resume_continues_and_matches_an_uninterrupted_run(trained, tiny_model_dir, corpus, tmp_path):
    full_out, full = trained
    config = tiny_config(tiny_model_dir)
    part = pretrain(config, [corpus], tmp_path / "r", progress=False, stop_after=13)
    assert (part["steps"], part["finished"], part["encoder_files"]) == (13, False, [])
    rest = pretrain(config, [corpus], tmp_path / "r", progress=False)
    assert (rest["resumed_from_step"], rest["steps"], rest["steps_this_run"]) == (13, 40, 27)
    a, b = load_file(tmp_path / "r" / "model.safetensors"), load_file(full_out / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # a bigger step budget on rerun: continues from the last step (schedule re-planned)
    short = pretrain(tiny_config(tiny_model_dir, max_steps=20), [corpus], tmp_path / "s", progress=False)
    assert short["steps"] == 20
    longer = pretrain(config, [corpus], tmp_path / "s", progress=False)
    assert (longer["resumed_from_step"], longer["steps"], longer["schedule_replanned"]) == (20, full["steps"], True)


def test_resume_refuses_other_settings_or_corpus(trained, tiny_model_dir, corpus, tmp_path):
    out, _ = trained
    with pytest.raises(ConfigError, match="lr differ") as err:
        pretrain(tiny_config(tiny_model_dir, lr=1e-3), [corpus], out, progress=False)
    assert str(out / CHECKPOINT) in str(err.value)
    other = make_corpus(tmp_path / "other.txt", seed=9)
    with pytest.raises(ConfigError, match="another corpus"):
        pretrain(tiny_config(tiny_model_dir), [other], out, progress=False)


def test_config_checks():
    with pytest.raises(ConfigError, match="mlm_probability"):
        PretrainConfig(mlm_probability=1.0)
    with pytest.raises(ConfigError, match="schedule"):
        PretrainConfig(schedule="step")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no corpus files"):
        pretrain(PretrainConfig(), [], "/nonexistent", progress=False)


@pytest.mark.slow
def test_real_minilm_loads_into_an_mlm_model_with_a_tied_fresh_head():
    from kgfusion.core.models import resolve_base

    mlm = build_mlm_model("minilm", seed=0)
    base = load_file(str(resolve_base("minilm") / "model.safetensors"))
    assert mlm.head == "fresh"
    assert torch.equal(mlm.model.get_input_embeddings().weight, base["embeddings.word_embeddings.weight"])
    assert torch.equal(mlm.model.bert.encoder.layer[5].output.dense.weight, base["encoder.layer.5.output.dense.weight"])
    assert mlm.model.get_output_embeddings().weight.data_ptr() == mlm.model.get_input_embeddings().weight.data_ptr()
