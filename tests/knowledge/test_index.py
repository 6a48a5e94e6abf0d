"""EntityIndex: search, dedup, type filter, HNSW/IVF vs flat, save/load and its failure modes."""
from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from kgfusion.core.errors import ConfigError
from kgfusion.knowledge import vocab
from kgfusion.knowledge.index import Candidate, EntityIndex, EntityIndexError
from kgfusion.knowledge.records import EntityRecord
from tests.mocks import KeywordEncoder as _KeywordEncoder

DISEASE, DRUG = str(vocab.DISEASE), str(vocab.DRUG)

# Each dimension is one keyword group, so cosine similarities are predictable by hand.
KEYWORDS = {
    "breast": 0, "mammary": 0, "cancer": 1, "carcinoma": 1, "tumour": 1, "lung": 2, "pulmonary": 2,
    "diabetes": 3, "heart": 4, "cardiac": 4, "attack": 5, "infarction": 5, "sclerosis": 6,
    "stenosis": 7, "aspirin": 8, "multiple": 9, "mitral": 10, "sachs": 11,
}


class KeywordEncoder(_KeywordEncoder):
    def __init__(self, dim: int = 12) -> None:
        super().__init__(KEYWORDS, dim)


def records() -> list[EntityRecord]:
    return [
        EntityRecord("d:breast", "breast cancer", ("mammary carcinoma",), DISEASE, ("MESH:D001943",)),
        EntityRecord("d:lung", "lung cancer", (), DISEASE),
        EntityRecord("d:diabetes", "diabetes mellitus", ("DM",), DISEASE),
        EntityRecord("d:mi", "myocardial infarction", ("heart attack",), DISEASE),
        EntityRecord("d:ms", "multiple sclerosis", ("MS",), DISEASE),
        EntityRecord("d:mitral", "mitral stenosis", ("MS",), DISEASE),
        EntityRecord("d:tay", "Tay-Sachs disease", (), DISEASE),
        EntityRecord("x:aspirin", "aspirin", ("ASA",), DRUG),
        EntityRecord("x:cancerdrug", "cancer aspirin", (), DRUG),
    ]


def uris(cands: list[Candidate]) -> list[str]:
    return [c.uri for c in cands]


def test_search_dedups_entities_and_keeps_best_name() -> None:
    index = EntityIndex(records(), KeywordEncoder())
    assert index.kind == "flat" and len(index) == 9 and index.name_count == 15
    [cands] = index.search(["mammary tumour"], k=3)
    assert cands[0].uri == "d:breast"
    assert cands[0].name == "mammary carcinoma" and cands[0].score == pytest.approx(1.0, abs=1e-6)
    assert len(set(uris(cands))) == len(cands) == 3  # one row per entity
    assert all(a.score >= b.score for a, b in zip(cands, cands[1:], strict=False))


def test_type_filter_overfetches_until_k_of_the_type() -> None:
    index = EntityIndex(records(), KeywordEncoder(), overfetch=1)
    [unfiltered] = index.search(["aspirin"], k=1)
    assert unfiltered[0].uri == "x:aspirin"
    [diseases] = index.search(["aspirin"], k=3, types=[DISEASE])
    assert len(diseases) == 3 and all(c.type == DISEASE for c in diseases)
    [drugs] = index.search(["cancer"], k=5, types=[DRUG])
    assert uris(drugs)[0] == "x:cancerdrug" and set(uris(drugs)) == {"x:cancerdrug", "x:aspirin"}


class RandomEncoder:
    """Dense mock: a seeded Gaussian vector per text (crc32), L2-normalised; HNSW needs dense data."""

    name = "random-mock"
    dim = 32

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim) for t in texts]
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_hnsw_and_ivf_agree_with_flat() -> None:
    recs = [EntityRecord(f"e:{i}", f"entity {i}", (f"alias {i}",), DISEASE if i % 2 else DRUG) for i in range(300)]
    enc = RandomEncoder()
    flat = EntityIndex(recs, enc, kind="flat")
    hnsw = flat.rebuild("hnsw", ef_search=64, hnsw_m=16)
    ivf = EntityIndex(recs, enc, kind="ivf", nprobe=64)
    assert hnsw.kind == "hnsw" and ivf.kind == "ivf" and hnsw.index.hnsw.efSearch == 64
    queries = [f"entity {i}" for i in range(0, 300, 7)] + [f"query {i}" for i in range(20)]
    for other in (hnsw, ivf):
        for types in (None, [DISEASE]):
            for a, b in zip(flat.search(queries, k=5, types=types), other.search(queries, k=5, types=types), strict=True):
                assert uris(a) == uris(b)
                assert [c.score for c in a] == pytest.approx([c.score for c in b], abs=1e-5)


def test_auto_switches_to_hnsw_past_threshold() -> None:
    assert EntityIndex(records(), KeywordEncoder(), auto_threshold=5).kind == "hnsw"
    assert EntityIndex(records(), KeywordEncoder(), auto_threshold=500).kind == "flat"


def test_bad_config_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="kind"):
        EntityIndex(records(), KeywordEncoder(), kind="annoy")  # type: ignore[arg-type]
    with pytest.raises(EntityIndexError, match="Duplicate"):
        EntityIndex(records() + records()[:1], KeywordEncoder())


def test_add_aliases_without_rebuild() -> None:
    enc = KeywordEncoder()
    index = EntityIndex(records(), enc)
    before = index.name_count
    assert index.add_aliases({"d:lung": ["pulmonary tumour", "lung cancer"]}) == 1  # known name skipped
    assert index.name_count == before + 1
    [cands] = index.search(["pulmonary tumour"], k=1)
    assert cands[0].uri == "d:lung" and cands[0].name == "pulmonary tumour"
    with pytest.raises(EntityIndexError, match="not an entity"):
        index.add_aliases({"d:nope": ["x"]})


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_round_trip_gives_identical_results(tmp_path, kind) -> None:
    enc = KeywordEncoder()
    recs = records() + [EntityRecord(f"d:e{i}", f"e{i} lung cancer", (), DISEASE) for i in range(50)]
    index = EntityIndex(recs, enc, kind=kind, metadata={"source": "unit"})
    index.add_aliases({"d:breast": ["breast tumour"]})
    index.save(tmp_path / "idx")
    loaded = EntityIndex.load(tmp_path / "idx", enc)
    assert loaded.kind == kind and loaded.metadata == {"source": "unit"}
    assert loaded.record("d:breast") == index.record("d:breast")
    queries = ["breast tumour", "aspirin", "multiple sclerosis", "lung"]
    assert loaded.search(queries, k=5, types=[DISEASE]) == index.search(queries, k=5, types=[DISEASE])
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["count"] == index.name_count and manifest["dim"] == 12 and manifest["encoder"] == "keyword-mock"


def test_load_rejects_corrupt_or_mismatched_index(tmp_path) -> None:
    enc = KeywordEncoder()
    EntityIndex(records(), enc).save(tmp_path / "idx")

    class OtherDim(KeywordEncoder):
        name = "keyword-mock"

    with pytest.raises(EntityIndexError, match="13-d|12-d"):
        EntityIndex.load(tmp_path / "idx", OtherDim(dim=13))

    class OtherName(KeywordEncoder):
        name = "another-model"

    with pytest.raises(EntityIndexError, match="another-model"):
        EntityIndex.load(tmp_path / "idx", OtherName())

    ids = tmp_path / "idx" / "ids.json"
    ids.write_text(ids.read_text().replace("breast cancer", "breast cancre"))
    with pytest.raises(EntityIndexError, match="checksum"):
        EntityIndex.load(tmp_path / "idx", enc)

    with pytest.raises(EntityIndexError, match="not a saved EntityIndex"):
        EntityIndex.load(tmp_path / "missing", enc)


def test_load_rejects_count_mismatch_even_with_fresh_checksums(tmp_path) -> None:
    """A hand-edited manifest (count off by one) fails on the count check, not silently."""
    enc = KeywordEncoder()
    EntityIndex(records(), enc).save(tmp_path / "idx")
    path = tmp_path / "idx" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["count"] += 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(EntityIndexError, match="counts disagree"):
        EntityIndex.load(tmp_path / "idx", enc)
