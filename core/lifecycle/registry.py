"""Model version registry: a plain versioned directory per bundle name.

    <root>/<name>/registry.json   every version of <name> and its event history (written atomically,
                                  under <root>/<name>/.registry.lock so two writers never lose an update)
    <root>/<name>/v<N>/           version N's kgfusion bundle (copied in atomically, checksums verified)

Why not MLflow's model registry: it is a heavy install (server, SQLAlchemy, alembic, ...) that CI would
pay on every run, and the registry only needs a few records per model; plain JSON beside the bundles
is readable, diffable and copies with the folder. A name's shipped bundle (``data/models/<name>``,
``Registry(shipped=...)``) is its implicit version 0: the apps load it while no version is promoted.

A version records its number, parent (a version number, or ``parent_source``: the path of the bundle
it came from, e.g. the shipped one, for the first), sha256 of its training data files, the recipe,
metrics on every split evaluated (``{split: {metric: value}}``), created (UTC), created_by, status
(registered | promoted | superseded | rolled back) and events (registered / promoted / rolled back /
restored: by whom, when, why). ``promotions`` is the stack of promoted versions: ``rollback`` pops it.

``kgfusion model update`` (apps/model/update_cli.py) calls ``register`` (it returns the new version
number) then, when the forgetting gate allows it, ``promote``; ``register_update`` does both in one call.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from kgfusion.core.bundle import read_manifest, verify_bundle
from kgfusion.core.errors import KgfusionError
from kgfusion.core.fileio import atomic_write_json, default_dir_mode, sha256_file

FORMAT = "kgfusion-registry"
FORMAT_VERSION = 1
REGISTRY_FILE = "registry.json"
LOCK_FILE = ".registry.lock"
ENV = "KGFUSION_REGISTRY"  # apps: registry root (apps/common.registry_root)
LOCK_TIMEOUT_S = 30.0
_VERSION_DIR = re.compile(r"^v(\d+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# A metrics.json key "<split>_<one of these>" names a split (dev_accuracy, phrasebank50_macro_f1, devel_f1).
SPLIT_METRICS = ("macro_f1", "f1", "accuracy", "ndcg_at_10", "recall_at_10")
HEADLINE_KEYS = SPLIT_METRICS  # the metric shown for a split, in order of preference
HEADLINE_SPLITS = 3  # splits in a one-line headline
OTHER = "other"  # metrics.json numbers of no split (train_seconds, onnx_int8_mb): kept, not in the headline

Status = Literal["registered", "promoted", "superseded", "rolled back"]


class RegistryError(KgfusionError):
    """Unknown name or version, nothing to roll back to, a locked or corrupt registry.json."""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Event:
    action: Literal["registered", "promoted", "rolled back", "restored"]
    by: str
    at: str
    reason: str = ""


@dataclass
class Version:
    version: int
    parent: int | None
    parent_source: str  # path of the bundle the first version came from (e.g. the shipped one), else ""
    source: str  # where the bundle was registered from
    data: dict[str, str]  # training data file -> sha256
    recipe: dict[str, Any]
    metrics: dict[str, dict[str, Any]]  # split -> metrics
    created: str
    created_by: str
    status: Status = "registered"
    events: list[Event] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Version:
        return cls(**{**d, "events": [Event(**e) for e in d.get("events", [])]})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> str:
        """One metric per split, e.g. "dev macro_f1 0.812, test macro_f1 0.801" (the first few splits)."""
        parts = []
        for split, m in self.metrics.items():
            nums = {k: v for k, v in (m or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)}
            key = next((k for k in HEADLINE_KEYS if k in nums), None if split == OTHER else next(iter(nums), None))
            if key is not None:
                parts.append(f"{split} {key} {nums[key]:.3f}")
        more = len(parts) - HEADLINE_SPLITS
        return ", ".join(parts[:HEADLINE_SPLITS]) + (f", +{more} more" if more > 0 else "")


@dataclass(frozen=True)
class Resolved:
    """What an app loads: the bundle ``path``, its registry ``name`` and ``version`` (None: not a registry
    version, e.g. the shipped bundle or a path outside the registry)."""

    path: Path
    name: str
    version: int | None = None

    @property
    def label(self) -> str:
        """``name@vN`` for a registry version, else the name (shown in outputs and evidence)."""
        return f"{self.name}@v{self.version}" if self.version is not None else self.name


def metrics_from_bundle(bundle_dir: str | Path) -> dict[str, dict[str, float]]:
    """A bundle's flat metrics.json as ``{split: {metric: value}}``.

    The splits are the shortest prefixes P of keys "P_macro_f1" / "P_f1" / "P_accuracy" ...; every number
    whose key starts with one joins it (``phrasebank50_onnx_int8_accuracy`` -> phrasebank50 /
    onnx_int8_accuracy); the rest go under ``other``.
    """
    path = Path(bundle_dir) / "metrics.json"
    try:
        flat = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    nums = {k: v for k, v in (flat.items() if isinstance(flat, dict) else ())
            if isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)}
    prefixes = {k[:-len(m) - 1] for k in nums
                for m in [next((m for m in SPLIT_METRICS if k.endswith(f"_{m}") and len(k) > len(m) + 1), None)] if m}
    # the shortest prefixes: devel_onnx_int8_f1 is a variant of devel's, not a split of its own
    splits = [sp for sp in prefixes if not any(sp.startswith(f"{o}_") for o in prefixes)]
    out: dict[str, dict[str, float]] = {}
    for key, value in nums.items():
        split = next((sp for sp in splits if key.startswith(f"{sp}_")), None)
        out.setdefault(split or OTHER, {})[key[len(split) + 1:] if split else key] = value
    return out


class Registry:
    """Versions of bundles under ``root``; ``shipped`` is the folder of shipped bundles (their v0)."""

    def __init__(self, root: str | Path, shipped: str | Path | None = None,
                 lock_timeout: float = LOCK_TIMEOUT_S) -> None:
        self.root = Path(root)
        self.shipped = Path(shipped) if shipped else None
        self.lock_timeout = lock_timeout

    # -- reading ---------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Names with a registry.json, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / REGISTRY_FILE).is_file())

    def versions(self, name: str) -> list[Version]:
        """Every version of ``name``, oldest first; RegistryError for a name with no versions and no
        shipped bundle."""
        data = self._load(name)
        if not data["versions"] and self.shipped_path(name) is None:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"no model named {name!r} in the registry {self.root} (registered: {known}); "
                                f"register one with `kgfusion model register {name} BUNDLE_DIR --by NAME`")
        return [Version.from_dict(v) for v in data["versions"]]

    def version(self, name: str, version: int) -> Version:
        for v in self.versions(name):
            if v.version == version:
                return v
        have = ", ".join(f"v{v.version}" for v in self.versions(name)) or "none"
        raise RegistryError(f"{name} has no version {version} (versions: {have})")

    def path(self, name: str, version: int) -> Path:
        """Bundle directory of a version; version 0 is the shipped bundle."""
        if version == 0:
            shipped = self.shipped_path(name)
            if shipped is None:
                raise RegistryError(f"{name} has no shipped bundle (v0) in {self.shipped}")
            return shipped
        self.version(name, version)
        return self.root / name / f"v{version}"

    def shipped_path(self, name: str) -> Path | None:
        p = self.shipped / name if self.shipped else None
        return p if p is not None and (p / "bundle.json").is_file() else None

    def promoted_version(self, name: str) -> int | None:
        stack = self._load(name)["promotions"]
        return stack[-1] if stack else None

    def promoted(self, name: str) -> Path | None:
        """The promoted version's bundle directory, or None (nothing promoted: load the shipped bundle)."""
        v = self.promoted_version(name)
        return self.root / name / f"v{v}" if v is not None else None

    def lookup(self, name_or_path: str | Path) -> Resolved:
        """What to load for a name or a bundle path (see ``resolve_promoted``); a bare name with nothing
        promoted and no shipped bundle is a RegistryError."""
        p = Path(name_or_path)
        found = self._promoted_for(p)
        if found is not None:
            return found
        if p.is_dir() or len(p.parts) > 1:
            return Resolved(p, p.name)
        shipped = self.shipped_path(p.name)
        if shipped is None:
            raise RegistryError(f"no bundle {p.name!r}: nothing promoted in {self.root} and no shipped bundle in "
                                f"{self.shipped}")
        return Resolved(shipped, p.name)

    def _promoted_for(self, p: Path) -> Resolved | None:
        """A path inside the registry as itself; else the promoted version of the path's name, or None."""
        inside = self._version_of(p)
        if inside is not None:  # a version directory itself: load exactly that one
            return inside
        if not _valid_name(p.name) or not self._file(p.name).is_file():
            return None
        v = self.promoted_version(p.name)
        return Resolved(self.root / p.name / f"v{v}", p.name, v) if v is not None else None

    def resolve(self, name_or_path: str | Path) -> Path:
        """The bundle directory to load for a name or path: the promoted version when there is one."""
        return self.lookup(name_or_path).path

    def rows(self, name: str) -> list[dict[str, Any]]:
        """One display row per version (CLI table, Models page), oldest first: v0 = the shipped bundle when
        there is one; ``promoted`` marks the one the apps load."""
        versions = self.versions(name)
        promoted = self.promoted_version(name)
        shipped = self.shipped_path(name)
        rows = [{"version": 0, "parent": "", "status": "shipped", "created": "", "by": "", "metrics": "",
                 "promoted": promoted is None, "path": str(shipped)}] if shipped is not None else []
        for v in versions:
            parent = (f"v{v.parent}" if v.parent is not None
                      else f"{Path(v.parent_source).name} (v0)" if v.parent_source else "")
            rows.append({"version": v.version, "parent": parent, "status": v.status, "created": v.created,
                         "by": v.created_by, "metrics": v.headline(), "promoted": v.version == promoted,
                         "path": str(self.root / name / f"v{v.version}")})
        return rows

    # -- writing ---------------------------------------------------------------------------------
    def register(self, name: str, bundle_dir: str | Path, *, parent: int | str | Path | None = None,
                 data_files: Sequence[str | Path] = (), recipe: Mapping[str, Any] | None = None,
                 metrics: Mapping[str, Mapping[str, Any]] | None = None, created_by: str,
                 move: bool = False) -> int:
        """Copy (``move``: move) a bundle into ``<root>/<name>/v<N>`` and record it; returns N = last + 1
        (``version(name, N)`` gives the record).

        ``parent``: a version number of ``name`` (0 = the shipped bundle), a bundle path (recorded as
        ``parent_source``), or None (the promoted version, else the shipped bundle when there is one).
        ``metrics`` default to the bundle's metrics.json grouped by split, ``recipe`` to its recipe.json.
        """
        _check_name(name)
        by = _check_by(created_by)
        src = Path(bundle_dir)
        verify_bundle(src)  # not a bundle / corrupt: fail before anything is written
        data = {str(Path(f)): _hash_data(f) for f in data_files}
        base = self.root / name
        base.mkdir(parents=True, exist_ok=True)
        # Why copy outside the lock: a bundle can be ~100 MB; the lock guards only the number and the JSON.
        tmp = Path(tempfile.mkdtemp(prefix=".incoming.", dir=base))
        try:
            staged = tmp / "bundle"
            if move:
                shutil.move(str(src), staged)
            else:
                shutil.copytree(src, staged)
            verify_bundle(staged)  # the copy matches its manifest
            staged.chmod(default_dir_mode())
            with self._locked(name):
                reg = self._load(name)
                numbers = [v["version"] for v in reg["versions"]]
                parent_version, parent_source = self._parent(name, parent, numbers)
                n = max(numbers, default=0) + 1
                while (base / f"v{n}").exists():  # a directory left by a crash between rename and JSON
                    n += 1
                staged.rename(base / f"v{n}")
                record = Version(
                    version=n, parent=parent_version, parent_source=parent_source, source=str(src.resolve()),
                    data=data, recipe=dict(recipe) if recipe is not None else _bundle_recipe(base / f"v{n}"),
                    metrics={k: dict(v) for k, v in (metrics if metrics is not None
                                                      else metrics_from_bundle(base / f"v{n}")).items()},
                    created=utc_now(), created_by=by,
                    events=[Event("registered", by, utc_now(), f"from {src}")])
                reg["versions"].append(record.to_dict())
                self._save(name, reg)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return record.version

    def promote(self, name: str, version: int, by: str, reason: str = "") -> Version:
        """Make ``version`` the one the apps load; the previously promoted one becomes superseded."""
        by = _check_by(by)
        with self._locked(name):
            reg = self._load(name)
            target = self._record(name, reg, version)
            current = reg["promotions"][-1] if reg["promotions"] else None
            if current == version:
                raise RegistryError(f"{name} v{version} is already promoted")
            verify_bundle(self.root / name / f"v{version}")  # never promote a damaged copy
            if current is not None:
                self._record(name, reg, current)["status"] = "superseded"
            target["status"] = "promoted"
            target["events"].append(asdict(Event("promoted", by, utc_now(), reason)))
            reg["promotions"].append(version)
            self._save(name, reg)
            return Version.from_dict(target)

    def rollback(self, name: str, by: str, to: int | None = None, reason: str = "") -> int:
        """Un-promote the current version; promote ``to`` (default: the previously promoted one, or
        v0 = the shipped bundle after the first promotion). Returns the version now in effect (0: shipped)."""
        by = _check_by(by)
        with self._locked(name):
            reg = self._load(name)
            stack: list[int] = reg["promotions"]
            if not stack:
                raise RegistryError(f"nothing to roll back: no version of {name!r} is promoted "
                                    f"(the apps load the shipped bundle)")
            current = stack[-1]
            if to is None:
                to = stack[-2] if len(stack) > 1 else 0
            if to == current:
                raise RegistryError(f"{name} v{to} is the promoted version; roll back to another one")
            if to == 0:
                if self.shipped_path(name) is None:
                    raise RegistryError(f"nothing to roll back to: v{current} is the only version of {name!r} ever "
                                        f"promoted and there is no shipped bundle; promote another version instead")
            else:
                target = self._record(name, reg, to)
                verify_bundle(self.root / name / f"v{to}")
            note = f"v{current} -> " + (f"v{to}" if to else "v0 (shipped)") + (f": {reason}" if reason else "")
            rolled = self._record(name, reg, current)
            rolled["status"] = "rolled back"
            rolled["events"].append(asdict(Event("rolled back", by, utc_now(), note)))
            stack.pop()
            if to == 0:
                stack.clear()
            else:
                if to in stack:  # back down the stack; anything promoted after ``to`` is undone
                    del stack[len(stack) - stack[::-1].index(to):]
                else:
                    stack.append(to)
                target["status"] = "promoted"
                target["events"].append(asdict(Event("restored", by, utc_now(), note)))
            self._save(name, reg)
            return to

    # -- internals -------------------------------------------------------------------------------
    def _parent(self, name: str, parent: int | str | Path | None, numbers: list[int]) -> tuple[int | None, str]:
        if isinstance(parent, bool):
            raise RegistryError(f"parent must be a version number or a bundle path, not {parent!r}")
        if isinstance(parent, int):
            if parent == 0:
                shipped = self.shipped_path(name)
                if shipped is None:
                    raise RegistryError(f"parent v0: {name} has no shipped bundle in {self.shipped}")
                return None, str(shipped)
            if parent not in numbers:
                raise RegistryError(f"parent v{parent}: {name} has no such version "
                                    f"(versions: {', '.join(f'v{n}' for n in numbers) or 'none'})")
            return parent, ""
        if parent is not None:
            read_manifest(parent)  # a path must be a bundle
            return None, str(Path(parent).resolve())
        # None: what the apps were running, i.e. the promoted version, else the shipped bundle
        stack = self._load(name)["promotions"]
        if stack:
            return stack[-1], ""
        shipped = self.shipped_path(name)
        return None, str(shipped) if shipped else ""

    def _version_of(self, p: Path) -> Resolved | None:
        """Resolved for a path inside the registry (``<root>/<name>/v<N>``), else None."""
        m = _VERSION_DIR.match(p.name)
        if not m:
            return None
        try:
            if p.resolve().parent.parent != self.root.resolve():
                return None
        except OSError:
            return None
        return Resolved(p, p.parent.name, int(m.group(1)))

    def _record(self, name: str, reg: dict[str, Any], version: int) -> dict[str, Any]:
        for v in reg["versions"]:
            if v["version"] == version:
                return v
        have = ", ".join(f"v{v['version']}" for v in reg["versions"]) or "none"
        raise RegistryError(f"{name} has no version {version} (versions: {have})")

    def _file(self, name: str) -> Path:
        return self.root / name / REGISTRY_FILE

    def _load(self, name: str) -> dict[str, Any]:
        _check_name(name)
        path = self._file(name)
        if not path.is_file():
            return {"format": FORMAT, "version": FORMAT_VERSION, "name": name, "promotions": [], "versions": []}
        try:
            reg = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{path}: unreadable ({exc}); restore it from a backup or the v<N>/ folders") from exc
        if not isinstance(reg, dict) or reg.get("format") != FORMAT or not isinstance(reg.get("versions"), list):
            raise RegistryError(f"{path}: not a {FORMAT} file")
        reg.setdefault("promotions", [])
        return reg

    def _save(self, name: str, reg: dict[str, Any]) -> None:
        reg["promoted"] = reg["promotions"][-1] if reg["promotions"] else None  # for people reading the file
        atomic_write_json(self._file(name), reg)

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """Exclusive lock on ``<root>/<name>/.registry.lock`` (flock; released if the process dies)."""
        path = self.root / name / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as fh:
            _acquire(fh, path, self.lock_timeout)
            try:
                yield
            finally:
                _release(fh)


def _acquire(fh: Any, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.name == "nt":  # pragma: no cover - Windows
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise RegistryError(f"{path}: the registry is locked by another writer (waited {timeout:.0f} s); "
                                    "retry when it has finished") from exc
            time.sleep(0.05)


def _release(fh: Any) -> None:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _valid_name(name: str) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name)) and not _VERSION_DIR.match(name)


def _check_name(name: str) -> None:
    if not _valid_name(name):
        raise RegistryError(f"bad model name {name!r}: use letters, digits, '.', '_' or '-' (e.g. finsent-full)")


def _check_by(by: str) -> str:
    if not isinstance(by, str) or not by.strip():
        raise RegistryError("say who is acting (--by NAME): every registry event records it")
    return by.strip()


def _bundle_recipe(bundle_dir: Path) -> dict[str, Any]:
    """The recipe a bundle ships (recipe.json, the one `kgfusion model train --recipe` rebuilds it from)."""
    try:
        recipe = json.loads((bundle_dir / "recipe.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return recipe if isinstance(recipe, dict) else {}


def _hash_data(path: str | Path) -> str:
    p = Path(path)
    if not p.is_file():
        raise RegistryError(f"training data file not found: {p}")
    return sha256_file(p)


def resolve_promoted(bundle: str | Path, root: str | Path, shipped: str | Path | None = None) -> Resolved:
    """What the apps load for ``bundle``: when its directory name has a promoted version under ``root``,
    that version; a path inside the registry (``<root>/<name>/v<N>``) as given; otherwise ``bundle``.

    A broken registry.json is an error (RegistryError), never silently skipped.
    """
    p = Path(bundle)
    return Registry(root, shipped)._promoted_for(p) or Resolved(p, p.name)


def register_update(root: str | Path, name: str, bundle_dir: str | Path, *, parent: int | str | Path | None,
                    metrics: Mapping[str, Mapping[str, Any]] | None, data_files: Sequence[str | Path] = (),
                    recipe: Mapping[str, Any] | None = None, created_by: str, promote: bool = False,
                    reason: str = "", shipped: str | Path | None = None, move: bool = False) -> Version:
    """What ``kgfusion model update`` calls: register the new bundle, then promote it when ``promote``
    (the update's forgetting check has passed or was forced)."""
    reg = Registry(root, shipped)
    n = reg.register(name, bundle_dir, parent=parent, data_files=data_files, recipe=recipe, metrics=metrics,
                     created_by=created_by, move=move)
    return reg.promote(name, n, created_by, reason or "model update") if promote else reg.version(name, n)
