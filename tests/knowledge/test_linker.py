"""Linker and textnorm: exact -> normalised -> n-gram / embedding -> none, types, ambiguity, aliases."""
from __future__ import annotations

import pytest

from kgfusion.core.errors import ConfigError
from kgfusion.knowledge import vocab
from kgfusion.knowledge.index import EntityIndex, EntityIndexError
from kgfusion.knowledge.linker import Linker
from kgfusion.knowledge.records import EntityRecord
from kgfusion.knowledge.textnorm import name_keys, ngram_similarity, normalize
from tests.mocks import KeywordEncoder as _KeywordEncoder

DISEASE, DRUG = str(vocab.DISEASE), str(vocab.DRUG)

KEYWORDS = {
    "breast": 0, "mammary": 0, "cancer": 1, "carcinoma": 1, "tumour": 1, "lung": 2, "pulmonary": 2,
    "diabetes": 3, "heart": 4, "cardiac": 4, "attack": 5, "infarction": 5, "sclerosis": 6,
    "stenosis": 7, "aspirin": 8, "multiple": 9, "mitral": 10, "valve": 10,
}


class KeywordEncoder(_KeywordEncoder):
    def __init__(self, dim: int = 11) -> None:
        super().__init__(KEYWORDS, dim)


def records() -> list[EntityRecord]:
    return [
        EntityRecord("d:breast", "breast cancer", ("mammary carcinoma",), DISEASE),
        EntityRecord("d:lung", "lung cancer", (), DISEASE),
        EntityRecord("d:diabetes", "diabetes mellitus", ("DM",), DISEASE),
        EntityRecord("d:mi", "myocardial infarction", ("heart attack",), DISEASE),
        EntityRecord("d:ms", "multiple sclerosis", ("MS",), DISEASE),
        EntityRecord("d:mitral", "mitral stenosis", ("MS",), DISEASE),
        EntityRecord("d:tay", "Tay-Sachs disease", (), DISEASE),
        EntityRecord("d:crohn", "Crohn's disease", (), DISEASE),
        EntityRecord("d:ifn", "interferon-γ deficiency", (), DISEASE),
        EntityRecord("x:aspirin", "aspirin", ("ASA",), DRUG),
    ]


def make_linker(threshold: float = 0.5, **kwargs) -> tuple[Linker, KeywordEncoder]:
    enc = KeywordEncoder()
    index = EntityIndex(records(), enc)
    return Linker(index, records(), threshold=threshold, **kwargs), enc


# -- textnorm ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Crohn's disease", "crohn disease"),
        ("Tay-Sachs", "tay sachs"),
        ("Breast Cancers", "breast cancer"),
        ("IFN-γ", "ifn gamma"),
        ("Parkinsons' disease", "parkinson disease"),
        ("ovaries", "ovary"),
        ("Sjögren syndrome", "sjogren syndrome"),
    ],
)
def test_normalize_merges_surface_variants(a: str, b: str) -> None:
    assert normalize(a) == normalize(b)


def test_normalize_keeps_distinct_names_apart() -> None:
    assert normalize("AIDS") != normalize("aid")
    assert normalize("type 1 diabetes") != normalize("type 2 diabetes")
    assert name_keys("Tay-Sachs disease") == ("tay sach disease", "tay sach")
    assert name_keys("disease") == ("disease",)  # nothing left to strip
    assert name_keys("  -- ") == ()


def test_ngram_similarity_range() -> None:
    assert ngram_similarity("diabetes", "Diabetes") == 1.0
    assert ngram_similarity("diabetes", "xyz") == 0.0
    assert 0.5 < ngram_similarity("diabetis melitus", "diabetes mellitus") < 1.0


# -- linker -----------------------------------------------------------------------------------------------
def test_exact_match() -> None:
    linker, _ = make_linker()
    res = linker.link("heart attack")
    assert (res.uri, res.match, res.score, res.ambiguous) == ("d:mi", "exact", 1.0, False)
    assert res.candidates[0].uri == "d:mi"


@pytest.mark.parametrize(
    ("mention", "uri"),
    [("crohn disease", "d:crohn"), ("Tay Sachs", "d:tay"), ("Tay-Sachs syndrome", "d:tay"),
     ("Breast cancers", "d:breast"), ("Interferon gamma deficiency", "d:ifn"), ("LUNG-CANCER", "d:lung")],
)
def test_normalized_match(mention: str, uri: str) -> None:
    linker, _ = make_linker()
    res = linker.link(mention)
    assert (res.uri, res.match) == (uri, "normalized")


def test_ngram_match_for_misspelling() -> None:
    linker, _ = make_linker()
    res = linker.link("diabetis melitus")  # no keyword: embedding cosine is 0 for every entity
    assert (res.uri, res.match) == ("d:diabetes", "ngram")
    assert res.candidates[0].ngram > 0.5 and res.candidates[0].cosine == pytest.approx(0.0)


def test_embedding_match_for_synonym() -> None:
    linker, _ = make_linker()
    res = linker.link("pulmonary tumour")  # shares keyword groups, not characters, with "lung cancer"
    assert (res.uri, res.match) == ("d:lung", "embedding")
    assert res.score == pytest.approx(1.0, abs=1e-5)
    assert res.candidates[0].cosine > res.candidates[0].ngram


def test_weighted_combination_ranks_by_both_parts() -> None:
    linker, _ = make_linker(combine="weighted", ngram_weight=0.5, threshold=0.3)
    res = linker.link("pulmonary tumour")
    best = res.candidates[0]
    assert res.uri == "d:lung" and best.score == pytest.approx(0.5 * best.cosine + 0.5 * best.ngram)


def test_below_threshold_is_none() -> None:
    linker, _ = make_linker(threshold=0.5)
    res = linker.link("banana bread")
    assert (res.uri, res.label, res.match) == (None, None, "none")
    assert res.score < 0.5 and res.candidates  # candidates are still reported
    assert linker.link("   ").match == "none"


def test_type_filter_applies_to_every_stage() -> None:
    linker, _ = make_linker()
    assert linker.link("ASA").uri == "x:aspirin"
    res = linker.link("ASA", types=[DISEASE])
    assert res.uri != "x:aspirin" and all(c.type == DISEASE for c in res.candidates)
    res = linker.link("aspirin", types=[DRUG])
    assert res.uri == "x:aspirin" and all(c.type == DRUG for c in res.candidates)


def test_ambiguous_alias_reports_all_and_picks_by_embedding() -> None:
    linker, _ = make_linker()
    res = linker.link("MS")  # no keyword: a tie on embedding, both reported
    assert res.ambiguous and res.match == "exact"
    assert {c.uri for c in res.candidates[:2]} == {"d:ms", "d:mitral"}
    linker.add_aliases({"d:mitral": ["MS valve"]})
    linker.add_aliases({"d:ms": ["MS valve"]})
    res = linker.link("MS valve")  # exact for both; the embedding of "mitral stenosis" is closer
    assert res.ambiguous and res.uri == "d:mitral"
    assert res.candidates[0].cosine > res.candidates[1].cosine


def test_add_aliases_at_runtime() -> None:
    linker, _ = make_linker()
    size = linker.index.name_count
    assert linker.link("sugar sickness").match == "none"
    assert linker.add_aliases({"d:diabetes": ["sugar sickness", "DM"]}) == 1
    assert linker.index.name_count == size + 1
    res = linker.link("Sugar-sickness")
    assert (res.uri, res.match) == ("d:diabetes", "normalized")
    with pytest.raises(EntityIndexError, match="d:nope"):
        linker.add_aliases({"d:nope": ["x"]})


def test_link_many_encodes_once_and_matches_link() -> None:
    linker, enc = make_linker()
    mentions = ["heart attack", "crohn disease", "diabetis melitus", "pulmonary tumour", "banana", ""]
    enc.calls.clear()
    batch = linker.link_many(mentions)
    # one encoder call, and only for the mentions without a string match (those reuse stored vectors)
    assert enc.calls == [3]
    assert [r.match for r in batch] == ["exact", "normalized", "ngram", "embedding", "none", "none"]
    assert [r.uri for r in batch] == [linker.link(m).uri for m in mentions]
    assert all(len(r.candidates) <= 3 for r in linker.link_many(mentions, k=3))


def test_linker_accepts_a_graph_like_source_and_index_records() -> None:
    class FakeGraph:
        def entity_records(self, types=None):
            return records()

    enc = KeywordEncoder()
    index = EntityIndex(records(), enc)
    assert Linker(index, FakeGraph()).link("Tay Sachs").uri == "d:tay"
    assert Linker(index).link("Tay Sachs").uri == "d:tay"
    with pytest.raises(ConfigError, match="combine"):
        Linker(index, combine="min")  # type: ignore[arg-type]


@pytest.mark.slow
def test_real_minilm_links_synonyms_and_round_trips(tmp_path) -> None:
    from kgfusion.core.embed import Embedder

    enc = Embedder("minilm")
    enc.name = "minilm"
    recs = records() + [EntityRecord("d:asthma", "asthma", (), DISEASE), EntityRecord("d:flu", "influenza", (), DISEASE)]
    index = EntityIndex(recs, enc)
    linker = Linker(index, threshold=0.3)
    mentions = ["carcinoma of the breast", "cancer of the lung", "flu", "diabetes"]
    results = linker.link_many(mentions, types=[DISEASE])
    assert [r.uri for r in results] == ["d:breast", "d:lung", "d:flu", "d:diabetes"]
    assert all(r.match in ("ngram", "embedding") for r in results)
    index.save(tmp_path / "idx")
    again = Linker(EntityIndex.load(tmp_path / "idx", enc), threshold=0.3).link_many(mentions, types=[DISEASE])
    assert [(r.uri, round(r.score, 5)) for r in again] == [(r.uri, round(r.score, 5)) for r in results]
