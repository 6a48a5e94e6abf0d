"""KB cache, ConceptLinker (types, codes, facts, corpus aliases), hashing encoder, note readers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kgfusion.apps.medical.linking import (
    ConceptLinker,
    HashingEncoder,
    MedicalKB,
    build_index,
    corpus_aliases,
    curie,
    normalize_xref,
)
from kgfusion.apps.medical.readers import decode_bytes, looks_binary, read_notes
from kgfusion.core.errors import DataError
from kgfusion.knowledge.linker import Linker
from tests.apps.medical.conftest import keyword_encoder


@pytest.fixture
def concept_linker(med_kb):
    index = build_index(med_kb, "minilm", encoder=keyword_encoder())
    return ConceptLinker(Linker(index, med_kb.records, threshold=0.5), med_kb, facts_limit=5)


def test_kb_cache_round_trip_and_rebuild(med_data_dir, tmp_path):
    graph = med_data_dir / "kg" / "medical.ttl"
    kb = MedicalKB.load(graph, tmp_path / "cache")
    assert (tmp_path / "cache" / "kb.json").is_file()
    again = MedicalKB.load(graph, tmp_path / "cache")
    assert [r.uri for r in again.records] == [r.uri for r in kb.records] and again.edges == kb.edges
    (tmp_path / "cache" / "kb.json").write_text("{corrupt")
    assert len(MedicalKB.load(graph, tmp_path / "cache").records) == len(kb.records)
    with pytest.raises(DataError, match="not found"):
        MedicalKB.load(tmp_path / "missing.ttl")


def test_codes_facts_and_curies(med_kb):
    ckd = "http://purl.obolibrary.org/obo/DOID_784"
    assert curie(ckd) == "DOID:784" and curie("https://kgfusion.dev/id/drug/DB00331") == "DRUGBANK:DB00331"
    assert med_kb.codes(ckd) == {"DOID": ["DOID:784"], "ICD10CM": ["N18.9"], "MESH": ["D007676"]}
    chf = [f.text() for f in med_kb.facts("http://purl.obolibrary.org/obo/DOID_6000")]
    assert chf == ["Lisinopril treats congestive heart failure", "Furosemide palliates congestive heart failure"]
    lis = med_kb.facts("https://kgfusion.dev/id/drug/DB00722")
    assert {f.disease_label for f in lis} == {"hypertension", "congestive heart failure"}
    assert normalize_xref("D003924") == "MESH:D003924" and normalize_xref("MIM:125853") == "OMIM:125853"


def test_linker_respects_label_types_and_caches(concept_linker):
    disease, drug, nothing = concept_linker.link([("renal failure", "Disease"), ("aspirin", "Chemical"),
                                                  ("zebra", "Disease")])
    assert disease.curie == "DOID:784" and disease.match in ("embedding", "ngram")
    assert drug.curie == "DRUGBANK:DB00945" and drug.match == "exact" and drug.codes["DRUGBANK"] == ["DB00945"]
    assert nothing is None
    # A drug name asked for as a Disease cannot link to the drug.
    (wrong,) = concept_linker.link([("metformin", "Disease")])
    assert wrong is None or wrong.kg_type != "https://schema.org/Drug"
    calls = len(concept_linker._cache)
    concept_linker.link([("renal failure", "Disease")])
    assert len(concept_linker._cache) == calls
    assert concept_linker.resolve_name("Hypertension") == "http://purl.obolibrary.org/obo/DOID_10763"
    assert concept_linker.resolve_name("metformin", "Disease") is None


def test_corpus_aliases_from_training_files(med_kb, tmp_path, concept_linker):
    d = tmp_path / "datasets" / "ncbi_disease"
    d.mkdir(parents=True)
    (d / "NCBItrainset_corpus.txt").write_text(
        "1|t|x\n1\t0\t5\tkidney insufficiency\tSpecificDisease\tD007676\n"
        "1\t6\t9\tNIDDM\tSpecificDisease\tOMIM:125853\n1\t9\t12\tmixed\tComposite\tD007676|D006973\n")
    aliases = corpus_aliases(med_kb, tmp_path / "datasets")
    assert aliases == {"http://purl.obolibrary.org/obo/DOID_784": ["kidney insufficiency"],
                       "http://purl.obolibrary.org/obo/DOID_9352": ["NIDDM"]}
    concept_linker.add_aliases(aliases)
    (c,) = concept_linker.link([("NIDDM", "Disease")])
    assert c.curie == "DOID:9352" and c.match == "exact"


def test_hashing_encoder_is_normalised_and_similar_for_similar_names():
    enc = HashingEncoder(256)
    v = enc.encode(["chronic kidney disease", "chronic kidney diseases", "aspirin", ""])
    assert v.shape == (4, 256)
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0) and not v[3].any()
    assert v[0] @ v[1] > 0.8 > v[0] @ v[2]


def test_readers_formats_encodings_and_rejects(tmp_path):
    (tmp_path / "a.txt").write_text("Patient denies fever.\n", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("Caf\xe9 au lait spots; na\xefve.".encode("cp1252"))
    (tmp_path / "c.txt").write_text("   \n")
    (tmp_path / "d.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    (tmp_path / "e.pdf").write_bytes(b"%PDF")
    (tmp_path / "notes.csv").write_text('note_id,text\nx1,"Fever, cough."\nx2,\n', encoding="utf-8")
    (tmp_path / "notes.jsonl").write_text(json.dumps({"id": "j1", "note": "Gout."}) + "\n{bad json\n[1]\n"
                                          + json.dumps({"other": 1}) + "\n")
    read = read_notes(tmp_path)
    assert [n.note_id for n in read.notes] == ["a", "b", "x1", "j1"]
    b = read.notes[1]
    assert b.encoding == "cp1252" and b.text.startswith("Café") and "cp1252" in b.warnings[0]
    reasons = {(r.source.rsplit("/", 1)[-1], r.row): r.reason for r in read.rejects}
    assert reasons[("c.txt", 0)] == "empty note"
    assert "binary" in reasons[("d.txt", 0)] and "unsupported" in reasons[("e.pdf", 0)]
    assert reasons[("notes.csv", 3)] == "empty note"
    assert "invalid JSON" in reasons[("notes.jsonl", 2)] and "JSON object" in reasons[("notes.jsonl", 3)]
    assert "no note text" in reasons[("notes.jsonl", 4)]
    assert len(read.notes) + len(read.rejects) == 11  # every input accounted for


def test_reader_errors_and_decoding(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_notes(tmp_path / "missing.txt")
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="no note column"):
        read_notes(tmp_path / "t.csv")
    assert decode_bytes(b"\xef\xbb\xbfhi")[0] == "hi"
    assert decode_bytes(b"\x81\x8d")[1] == "latin-1"  # undefined in cp1252
    assert looks_binary(b"\x00abc") and not looks_binary(b"plain text\n")
