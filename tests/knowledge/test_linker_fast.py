"""Linker fast path: string matches before embedding, the result cache, batching, int8 query encoders."""
from __future__ import annotations

import numpy as np
import pytest

from kgfusion.core.errors import ConfigError
from kgfusion.knowledge import vocab
from kgfusion.knowledge.index import EntityIndex
from kgfusion.knowledge.linker import Linker
from kgfusion.knowledge.records import EntityRecord
from tests.knowledge.test_linker import KeywordEncoder, records

DISEASE, DRUG = str(vocab.DISEASE), str(vocab.DRUG)

# exact, normalised, ambiguous exact, n-gram, embedding, none, a drug, repeats and case variants
MENTIONS = ["heart attack", "crohn disease", "MS", "diabetis melitus", "pulmonary tumour", "banana bread",
            "ASA", "Breast cancers", "heart attack", "Tay Sachs", "lung cancer", "LUNG-CANCER", "aspirin"]


def make(**kwargs) -> tuple[Linker, KeywordEncoder]:
    enc = KeywordEncoder()
    return Linker(EntityIndex(records(), enc), records(), **kwargs), enc


def summary(res, candidates: bool = True) -> tuple:
    head = (res.mention, res.uri, res.label, round(res.score, 5), res.match, res.ambiguous)
    if not candidates:
        return head
    return head + tuple((c.uri, c.name, round(c.score, 5), round(c.cosine, 5), round(c.ngram, 5)) for c in res.candidates)


@pytest.mark.parametrize("types", [None, [DISEASE], [DRUG]])
def test_string_first_links_the_same_concepts_as_encoding_every_mention(types) -> None:
    fast, fast_enc = make(threshold=0.5)
    ref, _ = make(threshold=0.5, string_first=False, cache_size=0)
    got, want = fast.link_many(MENTIONS, types=types), ref.link_many(MENTIONS, types=types)
    assert [summary(r, False) for r in got] == [summary(r, False) for r in want]
    for g, w in zip(got, want, strict=True):
        if g.match == "exact":  # the stored vector of the name *is* the mention's vector: nothing changes
            assert summary(g) == summary(w)
        else:
            assert {c.uri for c in g.candidates} <= {c.uri for c in w.candidates} | {g.uri}


def test_string_matches_are_not_encoded() -> None:
    linker, enc = make()
    enc.calls.clear()
    res = linker.link_many(["heart attack", "Breast cancers", "crohn disease", "Tay Sachs"])
    assert [r.match for r in res] == ["exact", "normalized", "normalized", "normalized"]
    assert enc.calls == []  # no embedding at all
    assert res[0].candidates[0].cosine == pytest.approx(1.0)


def test_ambiguous_normalised_match_still_uses_the_mention_embedding() -> None:
    enc = KeywordEncoder()
    recs = [EntityRecord("d:a", "mitral valve", ("Foo-Bar",), DISEASE), EntityRecord("d:b", "lung cancer", ("foo bar",), DISEASE)]
    linker = Linker(EntityIndex(recs, enc), recs)
    enc.calls.clear()
    res = linker.link("FOO BAR lung")  # no exact name; "foo bar lung" normalises to no key either
    assert res.match in ("embedding", "ngram", "none")
    enc.calls.clear()
    res = linker.link("Foo bar")  # normalised hit on both entities: ambiguous, settled by embedding
    assert res.ambiguous and res.match == "normalized" and enc.calls == [1]


def test_cache_hit_returns_equal_results_without_encoding() -> None:
    linker, enc = make()
    first = linker.link_many(MENTIONS)
    calls = list(enc.calls)
    again = linker.link_many(MENTIONS)
    assert enc.calls == calls  # every mention came from the cache
    assert [r.to_dict() for r in again] == [r.to_dict() for r in first]
    again[0].candidates.clear()  # callers own their results: the cache keeps its copy
    assert linker.link("heart attack").candidates
    assert enc.calls == calls
    # another k or types is another key; a repeat inside one call is linked once
    linker.link_many(["pulmonary tumour"], k=3)
    assert enc.calls == [*calls, 1]
    linker.link_many(["cardiac infarction", "cardiac infarction", "cardiac infarction"])
    assert enc.calls == [*calls, 1, 1]


def test_cache_is_invalidated_by_new_names_and_settings() -> None:
    linker, enc = make(threshold=0.5)
    assert linker.link("sugar sickness").match == "none"
    linker.add_aliases({"d:diabetes": ["sugar sickness"]}, embed=False)
    assert (linker.link("sugar sickness").uri, linker.link("sugar sickness").match) == ("d:diabetes", "exact")
    linker.threshold = 2.0  # a setting changed after construction: old results must not be served
    assert linker.link("pulmonary tumour").match == "none"


def test_cache_is_bounded_and_can_be_off() -> None:
    linker, enc = make(cache_size=2)
    linker.link_many(["pulmonary tumour", "cardiac infarction", "banana bread", "lung carcinoma"])
    assert len(linker._cache) == 2
    off, enc = make(cache_size=0)
    off.link("pulmonary tumour")
    off.link("pulmonary tumour")
    assert enc.calls[-2:] == [1, 1] and not off._cache
    with pytest.raises(ConfigError, match="cache_size"):
        make(cache_size=-1)


def test_batched_results_equal_one_by_one() -> None:
    batched, enc = make(cache_size=0, query_encoder=KeywordEncoder(), batch_size=2)
    together = batched.link_many(MENTIONS, types=[DISEASE])
    single, _ = make(cache_size=0)
    alone = [single.link(m, types=[DISEASE]) for m in MENTIONS]
    assert [r.to_dict() for r in together] == [r.to_dict() for r in alone]
    with pytest.raises(ConfigError, match="12-d"):
        make(query_encoder=KeywordEncoder(dim=12))


# -- int8 query encoders over a tiny random BERT ------------------------------------------------------------
TINY_RECORDS = [
    EntityRecord("d:breast", "breast cancer", (), DISEASE),
    EntityRecord("d:colon", "colon cancer", (), DISEASE),
    EntityRecord("d:fever", "family fever syndrome", (), DISEASE),
    EntityRecord("d:pain", "pain deficiency", (), DISEASE),
    EntityRecord("x:aspirin", "aspirin", (), DRUG),
]
TINY_MENTIONS = ["the breast cancer", "cancer of the colon", "fever syndrome", "pain", "aspirin drug",
                 "breast colon", "history of fever", "deficiency of pain"]


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory):
    from kgfusion.core.embed import Embedder
    from kgfusion.core.models import make_tiny_model_dir

    return Embedder(make_tiny_model_dir(tmp_path_factory.mktemp("tiny-embed")), max_length=32)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_int8_query_encoder_agrees_with_fp32(tiny_embedder, backend, tmp_path) -> None:
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    int8 = tiny_embedder.quantized(backend, cache_dir=tmp_path)  # type: ignore[arg-type]
    assert int8.name == f"{tiny_embedder.name}+int8-{backend}" and int8.dim == tiny_embedder.dim
    ref = tiny_embedder.encode(TINY_MENTIONS)
    got = int8.encode(TINY_MENTIONS, batch_size=3)
    assert got.shape == ref.shape and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert float((got * ref).sum(1).min()) > 0.95
    index = EntityIndex(TINY_RECORDS, tiny_embedder)
    fp32 = Linker(index, threshold=-1.0, cache_size=0).link_many(TINY_MENTIONS)
    fast = Linker(index, threshold=-1.0, query_encoder=int8).link_many(TINY_MENTIONS)
    assert [r.uri for r in fast] == [r.uri for r in fp32]
    assert [r.match for r in fast] == [r.match for r in fp32]


def test_onnx_int8_graph_is_cached_and_rebuilt_when_weights_change(tiny_embedder, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    tiny_embedder.quantized("onnx", cache_dir=tmp_path)
    (graph,) = tmp_path.glob("*.int8.onnx")
    stamp = graph.stat().st_mtime_ns
    tiny_embedder.quantized("onnx", cache_dir=tmp_path)
    assert graph.stat().st_mtime_ns == stamp  # reused
    (tmp_path / graph.name.replace(".onnx", ".json")).write_text("{not json")  # damaged sidecar: rebuilt
    tiny_embedder.quantized("onnx", cache_dir=tmp_path)
    assert graph.stat().st_mtime_ns != stamp
    with pytest.raises(ConfigError, match="backend"):
        tiny_embedder.quantized("fp16")  # type: ignore[arg-type]


def test_onnx_cache_rebuilds_for_other_weights(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from kgfusion.core.embed import Embedder
    from kgfusion.core.models import make_tiny_model_dir

    a = Embedder(make_tiny_model_dir(tmp_path / "a", seed=0), max_length=16)
    b = Embedder(make_tiny_model_dir(tmp_path / "b", seed=1), max_length=16)
    b.name = a.name  # same name, other weights: the fingerprint must still tell them apart
    qa = a.quantized("onnx", cache_dir=tmp_path / "cache").encode(["breast cancer"])
    qb = b.quantized("onnx", cache_dir=tmp_path / "cache").encode(["breast cancer"])
    ref_b = b.encode(["breast cancer"])
    assert float((qb * ref_b).sum()) > 0.95 and not np.allclose(qa, qb)


def test_int8_query_encoder_helper(tiny_embedder, tmp_path) -> None:
    from kgfusion.knowledge.index_cache import int8_query_encoder

    assert int8_query_encoder(KeywordEncoder(), tmp_path) is None  # not an Embedder: fp32 queries
    q = int8_query_encoder(tiny_embedder, tmp_path, backend="torch")
    assert q is not None and q.backend == "torch" and int8_query_encoder(q, tmp_path) is None


def test_onnx_int8_without_cache_dir_leaves_no_file(tiny_embedder, tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    q = tiny_embedder.quantized("onnx")
    assert list(tmp_path.iterdir()) == []  # built in a temporary directory, gone once the session is up
    ref = tiny_embedder.encode(TINY_MENTIONS[:3])
    assert float((q.encode(TINY_MENTIONS[:3]) * ref).sum(1).min()) > 0.95
