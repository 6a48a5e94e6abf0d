"""Bundle manifest properties: any manifest or file content gives a Manifest or a BundleError, and
verify_bundle catches every changed, missing or escaping file."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kgfusion.core.bundle import FORMAT, MANIFEST, VERSION, read_manifest, verify_bundle
from kgfusion.core.errors import BundleError
from kgfusion.core.fileio import sha256_file
from tests.property.strategies import examples, garbage

SETTINGS = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=8)
FIELDS = {"task": st.sampled_from(["sequence", "token", "x"]), "method": st.sampled_from(["full", "lora", "?"]),
          "base": st.text(max_size=8), "labels": st.lists(st.text(max_size=5), max_size=3), "max_length": st.integers(),
          "files": st.dictionaries(st.sampled_from(["model.safetensors", "adapter_model.safetensors", "a.txt", "../x",
                                                    "/etc/hostname", "sub/b.txt", ".", ""]),
                                   st.text(alphabet="0123456789abcdef", max_size=64), max_size=3)}


@st.composite
def manifests(draw) -> dict:
    doc = {"format": draw(st.sampled_from([FORMAT, FORMAT, "other"])), "version": draw(st.sampled_from([VERSION, 2]))}
    for name, strategy in FIELDS.items():
        if draw(st.booleans()) or name in ("task", "method"):
            doc[name] = draw(strategy if name == "files" else st.one_of(strategy, json_values))
    if draw(st.booleans()):
        doc[draw(st.text(min_size=1, max_size=5))] = draw(json_values)
    return doc


@SETTINGS
@given(doc=manifests())
@example(doc={"format": FORMAT, "version": VERSION, "task": "sequence", "method": "full", "base": "b", "labels": [],
              "max_length": 8, "files": {"../outside.txt": "0" * 64}})  # a path escaping the bundle
def test_any_manifest_reads_or_raises_bundle_error(doc, tmp_path_factory):
    root = tmp_path_factory.mktemp("b")
    bundle = root / "bundle"
    bundle.mkdir()
    (root / "outside.txt").write_text("not part of the bundle")
    (bundle / "a.txt").write_text("a")
    (bundle / MANIFEST).write_text(json.dumps(doc), encoding="utf-8")
    for fn in (read_manifest, verify_bundle):
        try:
            fn(bundle)
        except BundleError as exc:
            assert str(bundle) in str(exc)


def test_manifest_files_must_be_a_mapping(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps({"format": FORMAT, "version": VERSION, "task": "sequence",
                                                 "method": "full", "base": "b", "labels": [], "max_length": 8,
                                                 "files": ["model.safetensors"]}))
    with pytest.raises(BundleError, match="files"):
        verify_bundle(tmp_path)


@SETTINGS
@given(blob=garbage)
def test_garbage_manifest_is_a_bundle_error(blob, tmp_path_factory):
    bundle = tmp_path_factory.mktemp("b")
    (bundle / MANIFEST).write_bytes(blob)
    with pytest.raises(BundleError):
        verify_bundle(bundle)


@SETTINGS
@given(contents=st.dictionaries(st.sampled_from(["model.safetensors", "vocab.txt", "metrics.json", "sub/x.bin"]),
                                st.binary(max_size=64), min_size=1),
       tamper=st.sampled_from(["none", "flip", "delete", "append"]), data=st.data())
def test_verify_detects_any_change(contents, tamper, data, tmp_path_factory):
    bundle = tmp_path_factory.mktemp("b")
    contents = {"model.safetensors": b"weights", **contents}
    for rel, blob in contents.items():
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_bytes(blob)
    files = {rel: sha256_file(bundle / rel) for rel in contents}
    (bundle / MANIFEST).write_text(json.dumps({"format": FORMAT, "version": VERSION, "task": "sequence",
                                               "method": "full", "base": "b", "labels": ["a"], "max_length": 8,
                                               "files": files}))
    assert verify_bundle(bundle).files == files
    if tamper == "none":
        return
    victim = bundle / data.draw(st.sampled_from(sorted(contents)))
    if tamper == "delete":
        victim.unlink()
    elif tamper == "append":
        victim.write_bytes(victim.read_bytes() + b"\x00")
    else:
        blob = victim.read_bytes() or b"\x00"
        victim.write_bytes(bytes([blob[0] ^ 1]) + blob[1:])
    with pytest.raises(BundleError, match=victim.name):
        verify_bundle(bundle)
