"""`kgfusion model pretrain`, `kgfusion medical|finance pretrain-corpus` and the medical/finance corpus builders, on tiny fake data."""
from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

from kgfusion.apps.cli import cli
from kgfusion.apps.finance.corpus import build_finance_corpus
from kgfusion.apps.finance.train import FinanceData, load_finance_splits
from kgfusion.apps.medical.corpus import build_medical_corpus, sentence_key, split_sentences
from tests.conftest import make_sentiment_examples

DEV_SENTENCE = "Mutations in BRCA1 cause breast cancer."


def _pubtator(docs: list[tuple[str, str, str]]) -> str:
    return "".join(f"{pmid}|t|{t}\n{pmid}|a|{a}\n{pmid}\t0\t4\tword\tDisease\tD000001\n\n" for pmid, t, a in docs)


def make_data_dir(root):
    """The data/datasets layout with a few lines per file, dev/test text planted in the training sources."""
    d = root / "datasets"
    for sub in ("ncbi_disease", "bc5cdr", "disease_ontology/requested", "financial_phrasebank",
                "twitter_financial_news", "stocknet"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "ncbi_disease" / "NCBItrainset_corpus.txt").write_text(_pubtator([
        ("100", "Colon cancer in families.", f"We studied 20 families. {DEV_SENTENCE} The risk was high."),
        ("200", "A dev document.", "It must not appear."),
    ]), encoding="utf-8")
    (d / "ncbi_disease" / "NCBIdevelopset_corpus.txt").write_text(_pubtator([("200", "A dev document.", "x.")]),
                                                                  encoding="utf-8")
    (d / "ncbi_disease" / "devel.tsv").write_text(
        "".join(f"{t}\tO\n" for t in ["Mutations", "in", "BRCA1", "cause", "breast", "cancer", "."]) + "\n", encoding="utf-8")
    (d / "bc5cdr" / "CDR_TrainingSet.PubTator.txt").write_text(_pubtator([
        ("300", "Aspirin and pain.", "Aspirin relieved pain in 22-oxacalcitriol treated rats."),
    ]), encoding="utf-8")
    (d / "bc5cdr" / "CDR_DevelopmentSet.PubTator.txt").write_text(_pubtator([("400", "Other.", "Text.")]),
                                                                  encoding="utf-8")
    (d / "bc5cdr" / "devel.tsv").write_text("Aspirin\tB-Chemical\nrelieved\tO\npain\tO\nin\tO\n22\tB-Chemical\n"
                                            "-\tI-Chemical\noxacalcitriol\tI-Chemical\ntreated\tO\nrats\tO\n.\tO\n",
                                            encoding="utf-8")
    do = d / "disease_ontology"
    (do / "HumanDO.tsv").write_text('id\tlabel\tsubClassOf\n"DOID:162"\t"cancer"\t"disease"\n'
                                    '"DOID:1612"\t"breast cancer"\t"cancer"\n', encoding="utf-8")
    (do / "requested" / "disease-symptom.tsv").write_text(
        "disease_id\tdisease_label\tsymptom_id\tsymptom_label\nDOID:1612\tbreast cancer\tSYMP:1\tbreast lump\n",
        encoding="utf-8")
    (do / "DO-subClassOf-anonymous.tsv").write_text(
        "ID\tLABEL\tSubClass Of [ANON]\nDOID:1612\tbreast cancer\t'has material basis in' some 'BRCA1 mutation'\n",
        encoding="utf-8")
    pb = make_sentiment_examples(20, seed=1)
    lines = [f"{e.text} {i}@{e.label}" for i, e in enumerate(pb)]
    (d / "financial_phrasebank" / "Sentences_50Agree.txt").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (d / "financial_phrasebank" / "Sentences_AllAgree.txt").write_bytes(("\n".join(lines[::2]) + "\n").encode("latin-1"))
    codes = {"negative": "0", "positive": "1", "neutral": "2"}
    tw = make_sentiment_examples(20, seed=2)
    (d / "twitter_financial_news" / "sent_train.csv").write_text(
        "text,label\n" + "\n".join(f"tweet {e.text} {i},{codes[e.label]}" for i, e in enumerate(tw)) + "\n")
    splits = load_finance_splits(FinanceData.default(root))
    dev_text, test_text = splits.dev[0].text, splits.tests["twitter"][0].text
    tweets = [{"text": "$AAPL to the moon"}, {"text": "$AAPL  to the MOON"}, {"text": dev_text.upper()},
              {"text": f"  {test_text} "}, {"text": "$MSFT earnings beat"}, {"id": 5}]
    with gzip.open(d / "stocknet" / "stocknet_raw_tweets.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(t) + "\n" for t in tweets))
    return root, splits


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("data"))


def test_medical_corpus_excludes_dev_documents_and_devel_sentences(data_dir):
    root, _ = data_dir
    build = build_medical_corpus(root)
    text = "\n".join(build.lines)
    assert "Colon cancer in families. We studied 20 families. The risk was high." in build.lines
    assert "BRCA1 cause" not in text and "dev document" not in text and "oxacalcitriol" not in text
    assert "Aspirin and pain." in build.lines  # the title stays; only the devel sentence went
    assert ("breast cancer is a cancer. breast cancer has symptom breast lump. "
            "breast cancer has material basis in BRCA1 mutation.") in build.lines
    ex = build.stats["excluded"]
    assert ex["ncbi_disease/NCBItrainset_corpus.txt: PMID in a development set"] == 1
    assert ex["sentences equal to a devel.tsv sentence"] == 2
    assert build.stats["sources"]["disease_ontology"]["do_terms"] == 2


def test_sentence_keys_ignore_case_and_tokenisation():
    assert sentence_key("22-Oxacalcitriol (OCT) works.") == sentence_key("22 - oxacalcitriol ( OCT ) works .")
    assert split_sentences("One is here. Two at 5 mg. Three.") == ["One is here.", "Two at 5 mg.", "Three."]


def test_finance_corpus_excludes_dev_and_test_texts_and_deduplicates(data_dir):
    root, splits = data_dir
    build = build_finance_corpus(root)
    norm = {" ".join(t.lower().split()) for t in build.lines}
    held = {" ".join(e.text.lower().split()) for e in splits.dev + [e for v in splits.tests.values() for e in v]}
    assert not norm & held
    assert {"$aapl to the moon", "$msft earnings beat"} <= norm
    assert {" ".join(e.text.lower().split()) for e in splits.train} <= norm
    ex = build.stats["excluded"]
    assert (ex["stocknet: equal to a dev/test text"], ex["stocknet: duplicate"], ex["stocknet: rows without text"]) \
        == (2, 1, 1)
    assert len(build.lines) == 2 + len(splits.train)


def test_cli_builds_a_corpus_and_pretrains_with_resume(data_dir, tiny_model_dir, tmp_path):
    root, _ = data_dir
    runner = CliRunner()
    corpus = tmp_path / "med.txt"
    res = runner.invoke(cli, ["medical", "pretrain-corpus", "--out", str(corpus),
                              "--data-dir", str(root), "--json"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output)
    assert stats["lines"] == len(corpus.read_text().splitlines()) == 4
    assert json.loads((tmp_path / "med.txt.stats.json").read_text())["sha256"] == stats["sha256"]
    out = tmp_path / "base"
    args = ["model", "pretrain", "--corpus", str(corpus), "--out", str(out), "--base", tiny_model_dir,
            "--max-length", "16", "--batch-size", "2", "--max-steps", "6", "--save-every", "2", "--lr", "0.005",
            "--eval-fraction", "0.25", "--json"]
    res = runner.invoke(cli, [*args, "--stop-after", "3"])
    assert res.exit_code == 0, res.output
    first = json.loads(res.output)
    assert (first["steps"], first["finished"]) == (3, False)
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    second = json.loads(res.output)
    assert (second["resumed_from_step"], second["steps"], second["finished"]) == (3, 6, True)
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    card = (out / "PRETRAIN.md").read_text()
    assert "How `" in card and "sentences equal to a devel.tsv sentence" in card
    assert f"kgfusion model pretrain --corpus {corpus} --out {out}" in card and "--stop-after" not in card
    res = runner.invoke(cli, ["model", "pretrain", str(corpus), "--out", str(out), "--base", tiny_model_dir])
    assert res.exit_code == 1 and "checkpoint of other settings" in res.output  # positional files work too


def test_cli_bad_corpus_file_is_one_line_error(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe not utf-8 \xe9\n")
    res = CliRunner().invoke(cli, ["model", "pretrain", "--corpus", str(bad), "--out", str(tmp_path / "o"),
                                   "--base", tiny_model_dir])
    assert res.exit_code == 1
    assert "bad.txt: not valid UTF-8" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["model", "pretrain", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "at least one corpus file" in res.output
