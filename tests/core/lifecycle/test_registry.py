"""Model version registry: register -> versions -> promote -> resolve -> rollback on hand-made bundles (no
model), the lock against two writers, and a broken registry.json reported, not skipped."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kgfusion.core.errors import BundleError
from kgfusion.core.fileio import sha256_file
from kgfusion.core.lifecycle.registry import (
    REGISTRY_FILE,
    Registry,
    RegistryError,
    metrics_from_bundle,
    register_update,
    resolve_promoted,
)


def fake_bundle(path: Path, metrics: dict | None = None, weights: bytes = b"w") -> Path:
    """A bundle a registry accepts (manifest with checksums); no loadable model inside."""
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(weights)
    (path / "metrics.json").write_text(json.dumps(metrics or {"dev_macro_f1": 0.5, "test_accuracy": 0.6}))
    (path / "MODEL_CARD.md").write_text(f"# {path.name}\n")
    files = {p.name: sha256_file(p) for p in sorted(path.iterdir())}
    (path / "bundle.json").write_text(json.dumps({
        "format": "kgfusion-bundle", "version": 1, "task": "sequence", "method": "full", "base": "tiny",
        "labels": ["negative", "neutral", "positive"], "max_length": 16, "files": files, "name": path.name,
        "created": "2026-01-01T00:00:00Z", "extra": {}}))
    return path


@pytest.fixture
def setup(tmp_path):
    shipped = tmp_path / "models"
    fake_bundle(shipped / "finsent")
    return Registry(tmp_path / "registry", shipped), tmp_path


def test_register_promote_resolve_rollback(setup):
    reg, tmp = setup
    data = tmp / "train.csv"
    data.write_text("text,label\nprofit rose,positive\n")
    assert reg.versions("finsent") == [] and reg.promoted("finsent") is None
    assert reg.resolve(reg.shipped / "finsent") == reg.shipped / "finsent"  # v0: the shipped bundle

    assert reg.register("finsent", fake_bundle(tmp / "a"), data_files=[data], recipe={"method": "rehearsal"},
                        created_by="ana") == 1
    v1 = reg.version("finsent", 1)
    assert (v1.version, v1.parent, v1.parent_source) == (1, None, str(reg.shipped / "finsent"))
    assert v1.data == {str(data): sha256_file(data)} and v1.recipe == {"method": "rehearsal"}
    assert v1.metrics == {"dev": {"macro_f1": 0.5}, "test": {"accuracy": 0.6}}  # from metrics.json by split
    assert v1.created.endswith("Z") and v1.created_by == "ana" and v1.status == "registered"
    assert [e.action for e in v1.events] == ["registered"]
    assert (reg.root / "finsent" / "v1" / "bundle.json").is_file() and (tmp / "a").is_dir()  # copied
    assert reg.promoted("finsent") is None  # registering does not promote

    reg.promote("finsent", 1, "ana", "beats v0 on twitter")
    v2 = reg.version("finsent", reg.register("finsent", fake_bundle(tmp / "b", {"dev_macro_f1": 0.7}),
                                             metrics={"old": {"accuracy": 0.8}, "new": {"accuracy": 0.9}},
                                             created_by="bo", move=True))
    assert v2.parent == 1 and not (tmp / "b").exists()  # default parent: the promoted version; moved
    assert v2.metrics == {"old": {"accuracy": 0.8}, "new": {"accuracy": 0.9}}
    assert v2.headline() == "new accuracy 0.900, old accuracy 0.800"  # splits in registry.json (sorted) order
    reg.promote("finsent", 2, "bo")
    v2_path = reg.root / "finsent" / "v2"
    assert reg.promoted("finsent") == v2_path
    assert reg.resolve("finsent") == v2_path and reg.resolve(reg.shipped / "finsent") == v2_path
    assert [v.status for v in reg.versions("finsent")] == ["superseded", "promoted"]

    assert reg.rollback("finsent", "cy", reason="complaints") == 1
    assert reg.resolve(reg.shipped / "finsent") == reg.root / "finsent" / "v1"
    v1, v2 = reg.versions("finsent")
    assert (v1.status, v2.status) == ("promoted", "rolled back")
    assert [(e.action, e.by) for e in v2.events] == [("registered", "bo"), ("promoted", "bo"), ("rolled back", "cy")]
    assert v2.events[-1].reason == "v2 -> v1: complaints" and v1.events[-1].action == "restored"

    assert reg.rollback("finsent", "cy") == 0  # after the first promotion: back to the shipped bundle
    assert reg.promoted("finsent") is None and reg.resolve(reg.shipped / "finsent") == reg.shipped / "finsent"
    with pytest.raises(RegistryError, match="nothing to roll back: no version of 'finsent' is promoted"):
        reg.rollback("finsent", "cy")

    saved = json.loads((reg.root / "finsent" / REGISTRY_FILE).read_text())
    assert saved["promoted"] is None and [v["version"] for v in saved["versions"]] == [1, 2]


def test_rollback_to_and_without_a_shipped_bundle(tmp_path):
    reg = Registry(tmp_path / "registry")  # no shipped bundles
    for i in range(3):
        reg.register("ner", fake_bundle(tmp_path / f"b{i}", weights=bytes([i])), created_by="ana")
    reg.promote("ner", 1, "ana")
    with pytest.raises(RegistryError, match="nothing to roll back to: v1 is the only version"):
        reg.rollback("ner", "ana")
    reg.promote("ner", 2, "ana")
    reg.promote("ner", 3, "ana")
    assert reg.rollback("ner", "ana", to=1) == 1  # skips v2: the stack goes back to v1
    assert reg.promoted_version("ner") == 1
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        reg.rollback("ner", "ana")
    with pytest.raises(RegistryError, match="ner has no version 9 \\(versions: v1, v2, v3\\)"):
        reg.promote("ner", 9, "ana")
    with pytest.raises(RegistryError, match="already promoted"):
        reg.promote("ner", 1, "ana")
    with pytest.raises(RegistryError, match="--by"):
        reg.promote("ner", 2, " ")


def test_bad_inputs_are_clear_errors(setup):
    reg, tmp = setup
    with pytest.raises(RegistryError, match="no model named 'nope'"):
        reg.versions("nope")
    (tmp / "empty").mkdir()
    with pytest.raises(BundleError, match="not a kgfusion bundle"):
        reg.register("finsent", tmp / "empty", created_by="ana")
    bundle = fake_bundle(tmp / "c")
    (bundle / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="checksum mismatch"):
        reg.register("finsent", bundle, created_by="ana")
    with pytest.raises(RegistryError, match="bad model name"):
        reg.register("../x", fake_bundle(tmp / "d"), created_by="ana")
    with pytest.raises(RegistryError, match="parent v4"):
        reg.register("finsent", tmp / "d", parent=4, created_by="ana")
    with pytest.raises(RegistryError, match="training data file not found"):
        reg.register("finsent", tmp / "d", data_files=[tmp / "missing.csv"], created_by="ana")
    assert reg.versions("finsent") == [] and not list((reg.root / "finsent").glob("v*"))  # nothing half-written
    (reg.root / "finsent" / REGISTRY_FILE).write_text("{broken")
    with pytest.raises(RegistryError, match="registry.json: unreadable"):
        resolve_promoted(reg.shipped / "finsent", reg.root)


def test_parent_as_a_path_and_version_dirs_resolve_to_themselves(setup):
    reg, tmp = setup
    other = fake_bundle(tmp / "elsewhere" / "teacher")
    v = reg.version("finsent", reg.register("finsent", fake_bundle(tmp / "e"), parent=other, created_by="ana"))
    assert v.parent is None and v.parent_source == str(other.resolve())
    reg.promote("finsent", 1, "ana")
    v1 = reg.root / "finsent" / "v1"
    assert resolve_promoted(v1, reg.root).label == "finsent@v1"
    assert resolve_promoted(tmp / "elsewhere" / "unregistered", reg.root).label == "unregistered"
    found = resolve_promoted(tmp / "anywhere" / "finsent", reg.root)  # by directory name
    assert (found.path, found.version, found.label) == (v1, 1, "finsent@v1")


def test_register_update_registers_and_promotes(setup):
    reg, tmp = setup
    v = register_update(reg.root, "finsent", fake_bundle(tmp / "u"), parent=0, metrics={"old": {"accuracy": 0.9}},
                        created_by="update", promote=True, shipped=reg.shipped)
    assert v.status == "promoted" and v.events[-1].reason == "model update"
    assert reg.promoted("finsent") == reg.root / "finsent" / "v1"
    assert metrics_from_bundle(tmp / "nothing") == {}


def test_concurrent_writers_get_distinct_versions_and_lose_nothing(setup):
    reg, tmp = setup
    bundles = [fake_bundle(tmp / f"p{i}", weights=bytes([i])) for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        made = list(pool.map(lambda b: Registry(reg.root, reg.shipped).register("finsent", b, created_by="t"),
                             bundles))
    assert sorted(made) == [1, 2, 3, 4, 5, 6]
    assert [v.version for v in reg.versions("finsent")] == [1, 2, 3, 4, 5, 6]
    assert not list((reg.root / "finsent").glob(".incoming.*"))


def test_a_held_lock_blocks_a_second_writer(setup):
    reg, tmp = setup
    reg.register("finsent", fake_bundle(tmp / "l"), created_by="ana")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with reg._locked("finsent"):
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(RegistryError, match="locked by another writer"):
            Registry(reg.root, reg.shipped, lock_timeout=0.2).promote("finsent", 1, "bo")
    finally:
        release.set()
        t.join()
    assert reg.promote("finsent", 1, "bo").status == "promoted"  # free again


def test_bundle_metrics_by_split_and_the_recipe_it_ships(tmp_path):
    bundle = fake_bundle(tmp_path / "m", {
        "dev_accuracy": 0.8, "dev_macro_f1": 0.7, "phrasebank_allagree_accuracy": 0.9,
        "phrasebank_allagree_onnx_int8_accuracy": 0.89, "devel_f1": 0.6, "devel_argmax_disease_f1": 0.5,
        "train_seconds": 12.0, "kg_features": True, "details": {"dev": {"n": 3}}})
    assert metrics_from_bundle(bundle) == {
        "dev": {"accuracy": 0.8, "macro_f1": 0.7},
        "phrasebank_allagree": {"accuracy": 0.9, "onnx_int8_accuracy": 0.89},
        "devel": {"f1": 0.6, "argmax_disease_f1": 0.5},
        "other": {"train_seconds": 12.0}}
    (bundle / "recipe.json").write_text(json.dumps({"task": "sequence", "method": "full"}))
    reg = Registry(tmp_path / "registry")
    v = reg.version("m", reg.register("m", bundle, created_by="ana"))  # recipe.json: not in the manifest, still valid
    assert v.recipe == {"task": "sequence", "method": "full"}
    assert v.headline() == "dev macro_f1 0.700, devel f1 0.600, phrasebank_allagree accuracy 0.900"
