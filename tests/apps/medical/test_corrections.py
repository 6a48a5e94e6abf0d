"""`kgfusion medical correct`: wrong / missed mentions, attributes and concepts of a note in a corrections
DuckDB, the prediction snapshot kept as it was, export -> read_conll. Keyword predictor and encoder."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from kgfusion.apps.medical.cli import group
from kgfusion.apps.medical.export import write_jsonl
from kgfusion.apps.model.corrections_cli import corrections as corrections_group
from kgfusion.core.data import read_conll
from kgfusion.core.lifecycle.corrections import CorrectionStore
from tests.apps.medical.conftest import KeywordPredictor, keyword_encoder
from tests.apps.medical.test_extract import NOTE


@pytest.fixture
def setup(med_data_dir, make_extractor, tmp_path, monkeypatch):
    monkeypatch.setenv("KGFUSION_DATA", str(med_data_dir))
    note = tmp_path / "n1.txt"
    note.write_text(NOTE, encoding="utf-8")
    result = make_extractor().extract(NOTE, "n1")
    obj = {"build_kwargs": {"data_dir": med_data_dir, "predictor": KeywordPredictor(), "encoder": keyword_encoder()}}
    return note, tmp_path / "corr.duckdb", result, obj


def span(phrase: str, nth: int = 0) -> str:
    m = [x for x in re.finditer(re.escape(phrase), NOTE)][nth]
    return f"{m.start()}:{m.end()}"


def correct(setup, *args, obj=True):
    note, db, _, kwargs = setup
    return CliRunner().invoke(group, ["correct", "--db", str(db), "--note-file", str(note), *args],
                              obj=kwargs if obj else None)


def one_line_error(res, *words):
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    [line] = [ln for ln in res.output.splitlines() if ln.startswith("Error")]
    for w in words:
        assert w in line, line
    return line


def entities(path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for ex in read_conll(path).examples:
        for tok, tag in zip(ex.tokens, ex.tags):
            if tag.startswith("B-"):
                out.append((tok, tag[2:]))
            elif tag.startswith("I-"):
                out[-1] = (f"{out[-1][0]} {tok}", out[-1][1])
    return out


def test_corrections_round_trip_to_conll(setup, tmp_path):
    _, db, result, _ = setup
    predicted = {(m.start, m.end): m for m in result.mentions}
    fever = next(m for m in result.mentions if m.text == "fever")
    assert span("imaging") not in {f"{s}:{e}" for s, e in predicted}
    res = correct(setup, "--who", "dr b", "--wrong", f"{fever.start}:{fever.end}", "--add", f"{span('imaging')}:disease",
                  "--attribute", span("chest pain") + ":negated=false", "--concept", span("hypertension") + ":DOID:10763")
    assert res.exit_code == 0, res.output
    assert "mention 'fever' Disease marked wrong" in res.output and "'imaging' Disease added" in res.output
    with CorrectionStore(db, read_only=True) as store:
        stored = store.select("medical", "n1")
        snapshot = store.prediction("medical", "n1", NOTE)
    assert [c.field for c in stored] == ["mention", "missed_mention", "attribute:negated", "concept"]
    chest = predicted[tuple(int(x) for x in span("chest pain").split(":"))]
    assert stored[2].old_value == str(chest.attributes["negated"]).lower() and stored[2].new_value == "false"
    assert {(m["start"], m["end"], m["label"]) for m in snapshot["mentions"]} == {
        (m.start, m.end, m.label) for m in result.mentions}  # the prediction, as the model made it
    # a later correction of the same span wins: imaging was not a mention after all
    assert correct(setup, "--who", "dr c", "--wrong", span("imaging")).exit_code == 0
    out = tmp_path / "ner.conll"
    res = CliRunner().invoke(corrections_group, ["export", "--db", str(db), "--domain", "medical", "--field", "ner",
                                                 "--out", str(out)])
    assert res.exit_code == 0, res.output
    expected = sorted((NOTE[m.start:m.end], m.label) for m in result.mentions if m is not fever)
    got = sorted(entities(out))
    assert [(" ".join(re.findall(r"\w+|[^\w\s]", t)), lab) for t, lab in expected] == got
    assert res.output.startswith(f"{len(read_conll(out).examples)} sentences from 1 corrected notes")
    with CorrectionStore(db, read_only=True) as store:
        assert store.prediction("medical", "n1", NOTE) == snapshot  # still untouched


def test_relabel_in_one_call_and_predictions_from_extract_jsonl(setup, tmp_path):
    _, db, result, _ = setup
    jsonl = write_jsonl([result], tmp_path / "out.jsonl")
    metformin = span("metformin")
    res = correct(setup, "--who", "dr b", "--predictions", str(jsonl), "--bundle", "no-such-bundle",
                  "--wrong", metformin, "--add", f"{metformin}:Disease", obj=False)  # no extractor may run
    assert res.exit_code == 0, res.output
    out = tmp_path / "ner.tsv"
    CliRunner().invoke(corrections_group, ["export", "--db", str(db), "--domain", "medical", "--field", "ner",
                                           "--out", str(out)])
    assert ("metformin", "Disease") in entities(out) and ("metformin", "Chemical") not in entities(out)


def test_cli_errors_are_one_line(setup, tmp_path):
    note, db, result, _ = setup
    fever = next(m for m in result.mentions if m.text == "fever")
    one_line_error(correct(setup, "--who", "a", "--wrong", span("Mother")), "is not a mention of note 'n1'", "'breast cancer'")
    one_line_error(correct(setup, "--who", "a", "--add", span("imaging") + ":Organ"), "not one of Disease, Chemical")
    one_line_error(correct(setup, "--who", "a", "--add", f"{fever.start}:{fever.end + 3}:Disease"),
                   "overlaps the mention", f"--wrong {fever.start}:{fever.end}")
    one_line_error(correct(setup, "--who", "a", "--attribute", f"{fever.start}:{fever.end}:sad=true"), "negated")
    one_line_error(correct(setup, "--who", "a", "--attribute", f"{fever.start}:{fever.end}:negated"), "negated=true")
    one_line_error(correct(setup, "--who", "a", "--concept", f"{fever.start}:{fever.end}:fever"), "DOID:784")
    one_line_error(correct(setup, "--who", "a", "--wrong", "5:99999"), "past the text")
    one_line_error(correct(setup, "--who", "a", "--wrong", "x"), "START:END")
    one_line_error(correct(setup, "--wrong", f"{fever.start}:{fever.end}"), "--who")
    one_line_error(correct(setup, "--who", "  ", "--wrong", f"{fever.start}:{fever.end}"), "--who")
    one_line_error(correct(setup, "--who", "a"), "--wrong", "--add")
    assert not db.exists() or CorrectionStore(db, read_only=True).select() == []
    assert correct(setup, "--who", "a", "--wrong", f"{fever.start}:{fever.end}").exit_code == 0
    note.write_text(NOTE + "Addendum.\n", encoding="utf-8")  # same id, changed text: offsets would shift
    one_line_error(correct(setup, "--who", "a", "--add", f"{len(NOTE)}:{len(NOTE) + 8}:Disease"),
                   "different text", "--note-id")
    res = correct(setup, "--who", "a", "--note-id", "n1-v2", "--add", f"{len(NOTE)}:{len(NOTE) + 8}:Disease",
                  "--json")
    assert res.exit_code == 0 and json.loads(res.output)["corrections"][0]["item_id"] == "n1-v2"


@pytest.mark.parametrize("data, words", [(b"\x89PNG\r\n\x1a\n\x00\x00", "binary"), (b"{not json\n", "invalid JSON"),
                                         (b"", "no note 'n1'")])
def test_bad_predictions_and_notes_are_one_line_errors(setup, tmp_path, data, words):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(data)
    one_line_error(correct(setup, "--who", "a", "--add", "0:7:Disease", "--predictions", str(bad)), str(bad), words)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    res = CliRunner().invoke(group, ["correct", "--db", str(tmp_path / "c.duckdb"), "--note-file", str(empty),
                                     "--who", "a", "--add", "0:1:Disease"])
    one_line_error(res, "not a usable note (empty note)")
