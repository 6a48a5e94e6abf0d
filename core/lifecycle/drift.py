"""Drift statistics: how far a batch of model outputs (a day of a feed, a set of notes) sits from the
training reference. numpy only (scipy.stats costs seconds of import time).

- PSI (population stability index) = sum over bins of (a - e) * ln(a / e), shares clipped to ``EPS`` so an
  empty bin stays finite; categorical (labels; a label the reference never saw is its own bin) or for a
  continuous variable binned on the reference's deciles. Usual reading: < 0.1 stable, 0.1-0.2 moderate,
  > 0.2 a real shift. PSI is biased upwards at small volumes (about bins / n under no change; an empty
  bin alone adds ~0.7), so a PSI counts only above the larger of the threshold and its noise level: the
  99th percentile of the PSI between samples of the batch's and the reference's sizes drawn from the
  reference's own bin shares (``psi_noise``, simulated).
- Two-sample Kolmogorov-Smirnov: D = max |F_a - F_b| with the asymptotic p-value Q_KS(lambda) of the
  Kolmogorov series, lambda = (sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) * D, ne = n_a n_b / (n_a + n_b) (Stephens'
  small-sample correction, as in Numerical Recipes). Ties (discrete confidences) make it conservative.
- Embedding centroid: cosine distance between the batch's mean embedding and the reference's. Distance
  alone has no scale, so the reference keeps its own sampling spread: the 99th percentile of the distance
  of bootstrap centroids of ``m0`` reference items to the full centroid. 1 - cos grows with the centroid's
  noise variance, which falls as 1/m, so at a batch of m items the spread is scaled by
  m0 * (1/m + 1/n_ref) (both centroids are noisy); the verdict uses distance / spread.

``compare`` judges every statistic with enough items (``DriftThresholds.min_items``) and says which one
passed which threshold; with too few items for any statistic the verdict is None (no verdict).
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgfusion.core.config import ConfigBase, check_range
from kgfusion.core.errors import DataError
from kgfusion.core.fileio import atomic_write_json

EPS = 1e-4  # share given to an empty bin (PSI); 1e-4 is the common choice: finite, still large for a new bin
FORMAT = "kgfusion-drift-reference"
VERSION = 1
MAX_VALUES = 5000  # values kept per continuous variable in a reference (enough for deciles and KS)
SPREAD_SAMPLE = 256  # bootstrap sample size m0 of the centroid spread
SPREAD_QUANTILE = 0.99
DECIMALS = 6  # reference samples are stored rounded; batches are rounded alike so ties stay ties at bin edges
CONFIDENCE = "confidence"


# ------------------------------------------------------------------------------------------ statistics
def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, eps: float = EPS) -> float:
    """PSI of two aligned count or share vectors (each normalised to sum 1; shares clipped to ``eps``)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1 or len(e) == 0:
        raise ValueError(f"psi needs two vectors of the same length, got {e.shape} and {a.shape}")
    if e.sum() <= 0 or a.sum() <= 0:
        raise ValueError("psi needs non-empty distributions (both sums > 0)")
    e = np.clip(e / e.sum(), eps, None)
    a = np.clip(a / a.sum(), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def label_shares(labels: Sequence[str]) -> dict[str, float]:
    """Share of each label, sorted by label."""
    counts = Counter(str(x) for x in labels)
    total = sum(counts.values())
    return {k: counts[k] / total for k in sorted(counts)} if total else {}


def categorical_psi(reference: Mapping[str, float], labels: Sequence[str], eps: float = EPS) -> float:
    """PSI of ``labels`` against the reference shares; labels outside the reference get share 0 there."""
    current = label_shares(labels)
    keys = sorted(set(reference) | set(current))
    return psi([reference.get(k, 0.0) for k in keys], [current.get(k, 0.0) for k in keys], eps)


def psi_noise(shares: Sequence[float] | np.ndarray, n: int, n_ref: int, quantile: float = 0.99,
              rounds: int = 400, seed: int = 0, eps: float = EPS) -> float:
    """The PSI that sampling noise alone reaches (its ``quantile``) between a reference of ``n_ref`` items
    and a batch of ``n``, both drawn from ``shares``: simulated, so empty bins and point masses count."""
    e = np.asarray(shares, dtype=np.float64)
    e = e / e.sum()
    rng = np.random.default_rng(seed)
    ref = rng.multinomial(max(int(n_ref), 1), e, size=rounds).astype(np.float64)
    cur = rng.multinomial(max(int(n), 1), e, size=rounds).astype(np.float64)
    ref = np.clip(ref / ref.sum(axis=1, keepdims=True), eps, None)
    cur = np.clip(cur / cur.sum(axis=1, keepdims=True), eps, None)
    return float(np.quantile(np.sum((cur - ref) * np.log(cur / ref), axis=1), quantile))


def quantile_edges(reference: Sequence[float] | np.ndarray, bins: int = 10) -> np.ndarray:
    """Interior bin edges at the reference's quantiles (deciles for 10 bins); repeated values collapse."""
    ref = _finite(reference)
    if len(ref) == 0:
        raise ValueError("quantile_edges needs at least one finite reference value")
    return np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def binned_counts(values: Sequence[float] | np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in the len(edges) + 1 bins (-inf, e0), [e0, e1), ..., [e_last, inf)."""
    idx = np.searchsorted(edges, _finite(values), side="right")
    return np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)


def continuous_psi(reference: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                   bins: int = 10, eps: float = EPS) -> float:
    """PSI of ``values`` binned on the reference's quantiles (equal-mass bins for the reference)."""
    edges = quantile_edges(reference, bins)
    return psi(binned_counts(reference, edges), binned_counts(values, edges), eps)


def kolmogorov_sf(lam: float) -> float:
    """Q_KS(lambda) = 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 lambda^2), the Kolmogorov distribution's tail.

    For small lambda the alternating series converges slowly, so there the equivalent theta-function form
    1 - sqrt(2 pi) / lambda * sum_{k>=1} exp(-(2k-1)^2 pi^2 / (8 lambda^2)) is used (both need < 10 terms).
    """
    if not lam > 0:
        return 1.0
    if lam < 1.18:
        y = math.exp(-math.pi ** 2 / (8.0 * lam * lam))
        cdf = math.sqrt(2.0 * math.pi) / lam * sum(y ** ((2 * k - 1) ** 2) for k in range(1, 11))
        return float(min(1.0, max(0.0, 1.0 - cdf)))
    total = 2.0 * sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam) for k in range(1, 11))
    return float(min(1.0, max(0.0, total)))


def ks_2samp(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(D, asymptotic p-value) of the two-sample Kolmogorov-Smirnov test; ValueError for an empty sample."""
    x, y = np.sort(_finite(a)), np.sort(_finite(b))
    if len(x) == 0 or len(y) == 0:
        raise ValueError("ks_2samp needs two non-empty samples")
    grid = np.concatenate([x, y])
    d = float(np.max(np.abs(np.searchsorted(x, grid, side="right") / len(x)
                            - np.searchsorted(y, grid, side="right") / len(y))))
    ne = len(x) * len(y) / (len(x) + len(y))
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    return d, kolmogorov_sf(lam)


def cosine_distance(u: Sequence[float] | np.ndarray, v: Sequence[float] | np.ndarray) -> float:
    """1 - cos(u, v) in [0, 2]; 1.0 when either vector is zero (no direction to compare)."""
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu == 0.0 or nv == 0.0:
        return 1.0
    return float(1.0 - np.dot(u, v) / (nu * nv))


def centroid_spread(embeddings: np.ndarray, sample_size: int = SPREAD_SAMPLE, rounds: int = 200,
                    seed: int = 0) -> dict[str, float]:
    """The reference's own centroid noise: distances of ``rounds`` bootstrap centroids of ``sample_size``
    items (drawn with replacement) to the full centroid -> {sample_size, n, quantile, spread (that
    quantile), mean}."""
    emb = np.asarray(embeddings, dtype=np.float64)
    n = len(emb)
    m0 = int(max(1, min(sample_size, n)))
    c = emb.mean(axis=0)
    rng = np.random.default_rng(seed)
    dist = np.array([cosine_distance(emb[rng.integers(0, n, m0)].mean(axis=0), c) for _ in range(rounds)])
    return {"sample_size": m0, "n": n, "quantile": SPREAD_QUANTILE,
            "spread": float(np.quantile(dist, SPREAD_QUANTILE)), "mean": float(dist.mean())}


def spread_at(spread: Mapping[str, float], m: int) -> float:
    """The reference spread expected for a batch of ``m`` items: scaled by m0 * (1/m + 1/n_ref)."""
    return float(spread["spread"]) * float(spread["sample_size"]) * (1.0 / max(m, 1) + 1.0 / max(spread["n"], 1))


def _number(v: Any) -> float:
    """A JSON number as read (ints stay ints, so a reloaded reference has the same fingerprint)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{v!r} is not a number")
    return v


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


# ------------------------------------------------------------------------------------------ thresholds
@dataclass
class DriftThresholds(ConfigBase):
    """When a batch counts as drifted (defaults in brackets).

    ``min_items`` [50]: items a statistic needs before it is judged (fewer: reported, no verdict).
    ``psi`` [0.2]: PSI above this, for labels and for each continuous variable (the usual "significant").
    ``ks_pvalue`` [0.01] and ``ks_statistic`` [0.1]: KS p below the first *and* D at least the second
    (at thousands of items any negligible difference is "significant"; D >= 0.1 is a visible one).
    ``centroid_factor`` [1.5]: centroid distance above this many times the reference's 99th-percentile
    spread at the batch's size. ``bins`` [10]: quantile bins of the continuous PSI. ``psi_noise`` [True]:
    a PSI must also exceed its noise level at the batch's volume (False: the plain PSI > ``psi`` rule).
    """

    min_items: int = 50
    psi: float = 0.2
    ks_pvalue: float = 0.01
    ks_statistic: float = 0.1
    centroid_factor: float = 1.5
    bins: int = 10
    psi_noise: bool = True

    def validate(self) -> None:
        check_range(self, "min_items", 1, 10_000_000)
        check_range(self, "psi", 0, 100, lo_open=True)
        check_range(self, "ks_pvalue", 0, 1, lo_open=True)
        check_range(self, "ks_statistic", 0, 1)
        check_range(self, "centroid_factor", 0, 1e6, lo_open=True)
        check_range(self, "bins", 2, 1000)

    def describe(self) -> str:
        return (f"PSI > {self.psi:g}" + (" and above its noise level" if self.psi_noise else "") + f"; KS p < {self.ks_pvalue:g} with D >= {self.ks_statistic:g}; centroid distance > "
                f"{self.centroid_factor:g}x the reference spread; at least {self.min_items} items")


# ------------------------------------------------------------------------------------------- reference
@dataclass
class DriftReference:
    """What a batch is compared with: ``n`` reference items, their label shares, a capped sample of each
    continuous variable (``values``; "confidence" for classifiers), the embedding centroid with its
    bootstrap ``spread`` (or None without embeddings) and free ``meta`` (model, data, encoder, created)."""

    n: int
    labels: dict[str, float] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)
    centroid: list[float] | None = None
    spread: dict[str, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, labels: Sequence[str] | None = None, confidences: Sequence[float] | None = None,
              embeddings: np.ndarray | None = None, *, values: Mapping[str, Sequence[float]] | None = None,
              meta: Mapping[str, Any] | None = None, max_values: int = MAX_VALUES, seed: int = 0) -> DriftReference:
        """A reference from model outputs on training-distribution items; samples over ``max_values`` are
        subsampled (seeded) so the file stays small."""
        labels = [] if labels is None else [str(x) for x in labels]
        variables = dict(values or {})
        if confidences is not None:
            variables[CONFIDENCE] = confidences
        rng = np.random.default_rng(seed)
        kept: dict[str, list[float]] = {}
        for name, vals in variables.items():
            arr = _finite(vals)
            if len(arr) > max_values:
                arr = rng.choice(arr, max_values, replace=False)
            kept[name] = [round(float(v), DECIMALS) for v in arr]
        sizes = [len(labels)] + [len(_finite(v)) for v in variables.values()]
        centroid = spread = None
        if embeddings is not None and len(embeddings):
            emb = np.asarray(embeddings, dtype=np.float64)
            centroid = [round(float(v), 7) for v in emb.mean(axis=0)]
            spread = centroid_spread(emb, seed=seed)
            sizes.append(len(emb))
        n = max(sizes)
        if n == 0:
            raise DataError("a drift reference needs items: no labels, values or embeddings were given")
        return cls(n, label_shares(labels), kept, centroid, spread, dict(meta or {}))

    @property
    def confidences(self) -> list[float]:
        return self.values.get(CONFIDENCE, [])

    @property
    def fingerprint(self) -> str:
        """Short hash of the content: figures computed against another reference are stale."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "drift reference") -> DriftReference:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise DataError(f"{source}: not a kgfusion drift reference (no \"format\": \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise DataError(f"{source}: drift reference version {data.get('version')!r}; this kgfusion reads "
                            f"version {VERSION}: rebuild it")
        try:
            ref = cls(int(data["n"]), {str(k): float(v) for k, v in dict(data.get("labels") or {}).items()},
                      {str(k): [float(x) for x in v] for k, v in dict(data.get("values") or {}).items()},
                      [float(x) for x in data["centroid"]] if data.get("centroid") is not None else None,
                      {str(k): _number(v) for k, v in dict(data["spread"]).items()} if data.get("spread") else None,
                      dict(data.get("meta") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: malformed drift reference ({exc!r}); rebuild it") from exc
        if ref.centroid is not None and ref.spread is None:
            raise DataError(f"{source}: malformed drift reference (a centroid without its spread); rebuild it")
        return ref

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> DriftReference:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: drift reference not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: unreadable drift reference ({exc}); rebuild it") from exc
        return cls.from_dict(data, str(path))


# --------------------------------------------------------------------------------------------- figures
@dataclass
class VariableDrift:
    """A continuous variable of a batch against the reference: PSI, KS D and p, means, items."""

    n: int
    psi: float | None
    ks: float | None
    ks_p: float | None
    mean: float | None
    reference_mean: float | None
    psi_limit: float | None = None  # the PSI threshold at this volume: max(thresholds.psi, psi_noise)


@dataclass
class DriftFigures:
    """The figures of one batch. ``drifted``: True when a statistic passed its threshold (``reasons`` say
    which), False when at least one was judged and none did, None when no statistic had enough items."""

    n: int
    label_psi: float | None = None
    label_psi_limit: float | None = None
    label_shares: dict[str, float] = field(default_factory=dict)
    variables: dict[str, VariableDrift] = field(default_factory=dict)
    centroid_distance: float | None = None
    centroid_spread: float | None = None
    centroid_ratio: float | None = None
    embedded: int = 0
    drifted: bool | None = None
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftFigures:
        d = dict(data)
        d["variables"] = {k: VariableDrift(**v) for k, v in dict(d.get("variables") or {}).items()}
        return cls(**d)

    def variable(self, name: str = CONFIDENCE) -> VariableDrift | None:
        return self.variables.get(name)


def _limit(limit: float, t: DriftThresholds, n: int) -> str:
    return f"{t.psi:g}" if limit <= t.psi else f"{limit:.3g} (the PSI noise level at {n} items)"


def compare(reference: DriftReference, labels: Sequence[str] | None = None,
            confidences: Sequence[float] | None = None, embeddings: np.ndarray | None = None, *,
            values: Mapping[str, Sequence[float]] | None = None,
            thresholds: DriftThresholds | None = None) -> DriftFigures:
    """Figures and verdict of one batch: label PSI, PSI + KS per continuous variable (``confidences`` is
    ``values["confidence"]``), centroid distance vs the reference spread. Parts the reference or the batch
    lack are skipped with a note."""
    t = thresholds or DriftThresholds()
    labels = None if labels is None else [str(x) for x in labels]
    variables = dict(values or {})
    if confidences is not None:
        variables[CONFIDENCE] = confidences
    sizes = [len(labels or [])] + [len(_finite(v)) for v in variables.values()]
    sizes.append(len(embeddings) if embeddings is not None else 0)
    fig = DriftFigures(n=max(sizes))
    judged = False

    def enough(what: str, n: int) -> bool:
        if n < t.min_items:
            fig.notes.append(f"{what}: {n} items, fewer than the {t.min_items} a verdict needs")
            return False
        return True

    if labels is not None and len(labels):
        if not reference.labels:
            fig.notes.append("labels: the reference has no label distribution")
        else:
            fig.label_psi = categorical_psi(reference.labels, labels)
            fig.label_shares = label_shares(labels)
            keys = sorted(set(reference.labels) | set(fig.label_shares))
            fig.label_psi_limit = max(t.psi, psi_noise([reference.labels.get(k, 0.0) for k in keys], len(labels),
                                                       reference.n) if t.psi_noise else 0.0)
            if enough("labels", len(labels)):
                judged = True
                if fig.label_psi > fig.label_psi_limit:
                    fig.reasons.append(f"label PSI {fig.label_psi:.3f} > {_limit(fig.label_psi_limit, t, len(labels))}")
    for name, vals in variables.items():
        arr = np.round(_finite(vals), DECIMALS)
        ref = _finite(reference.values.get(name, []))
        if len(arr) == 0:
            continue
        if len(ref) == 0:
            fig.notes.append(f"{name}: the reference has no {name} sample")
            continue
        edges = quantile_edges(ref, t.bins)
        ref_counts = binned_counts(ref, edges)
        p = psi(ref_counts, binned_counts(arr, edges))
        limit = max(t.psi, psi_noise(ref_counts, len(arr), len(ref)) if t.psi_noise else 0.0)
        d, pval = ks_2samp(ref, arr)
        fig.variables[name] = VariableDrift(len(arr), p, d, pval, float(arr.mean()), float(ref.mean()), limit)
        if enough(name, len(arr)):
            judged = True
            if p > limit:
                fig.reasons.append(f"{name} PSI {p:.3f} > {_limit(limit, t, len(arr))}")
            if pval < t.ks_pvalue and d >= t.ks_statistic:
                fig.reasons.append(f"{name} KS D={d:.3f} p={pval:.2g} < {t.ks_pvalue:g}")
    if embeddings is not None and len(embeddings):
        emb = np.asarray(embeddings, dtype=np.float64)
        fig.embedded = len(emb)
        if reference.centroid is None or reference.spread is None:
            fig.notes.append("embeddings: the reference has no embedding centroid")
        elif emb.shape[1] != len(reference.centroid):
            fig.notes.append(f"embeddings: dimension {emb.shape[1]} differs from the reference's "
                             f"{len(reference.centroid)} (another encoder?); not compared")
        else:
            fig.centroid_distance = cosine_distance(emb.mean(axis=0), reference.centroid)
            fig.centroid_spread = spread_at(reference.spread, len(emb))
            fig.centroid_ratio = (fig.centroid_distance / fig.centroid_spread if fig.centroid_spread > 0
                                  else math.inf if fig.centroid_distance > 1e-12 else 0.0)
            if enough("embeddings", len(emb)):
                judged = True
                if fig.centroid_ratio > t.centroid_factor:
                    fig.reasons.append(f"embedding centroid distance {fig.centroid_distance:.4f} = "
                                       f"{fig.centroid_ratio:.1f}x the reference spread {fig.centroid_spread:.4f} "
                                       f"(> {t.centroid_factor:g}x)")
    fig.drifted = bool(fig.reasons) if judged else None
    return fig


# -- stored figures (a ``drift`` table in a DuckDB file; apps/finance/drift.py writes it) -------------------
def read_drift_table(db: str | Path, columns: Sequence[str] | None = None) -> Any:
    """The per-day figures of ``db``'s ``drift`` table, oldest day first, read-only (no rows without one);
    ``drifted`` as Python True / False / None (no verdict)."""
    import pandas as pd

    from kgfusion.core.duckdb_files import connect

    con = connect(db, read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "drift" not in names:
            return pd.DataFrame(columns=list(columns or ["day", "drifted"]))
        frame = con.execute("SELECT * FROM drift ORDER BY day").df()
        if columns is not None:
            frame = frame.reindex(columns=list(columns))
    finally:
        con.close()
    frame["drifted"] = pd.Series([None if pd.isna(v) else bool(v) for v in frame["drifted"]], dtype=object,
                                 index=frame.index)
    return frame


def drift_alerts(table: Any) -> Any:
    """The drifted days of a figures table, newest first."""
    if table.empty:
        return table
    hit = table[[v is True for v in table["drifted"]]]
    return hit.sort_values("day", ascending=False).reset_index(drop=True)


def verdict(v: bool | None) -> str:
    return "too few items" if v is None else "DRIFT" if v else "ok"


# -- where a bundle's reference lives (both apps: a JSON file beside the bundle, keyed by its manifest) -----
REFERENCE_SUFFIX = ".drift-reference.json"


def bundle_hash(bundle: str | Path) -> str:
    """The sha256 of ``bundle``'s bundle.json ("" without one): a cached reference is valid while it matches."""
    from kgfusion.core.fileio import sha256_file

    manifest = Path(bundle) / "bundle.json"
    return sha256_file(manifest) if manifest.is_file() else ""


def cached_reference_path(bundle: str | Path) -> Path:
    bundle = Path(bundle)
    return bundle.parent / f"{bundle.name}{REFERENCE_SUFFIX}"


def load_or_build_cached(bundle: str | Path | None, reference: str | Path | None,
                         build: Callable[[], DriftReference], command: str) -> tuple[DriftReference, str]:
    """(reference, where it came from): ``reference`` if given (it must exist), else the cache beside
    ``bundle`` when it matches the bundle's manifest, else ``build()`` saved as that cache. ``command``
    names the CLI that writes a reference (for the error message)."""
    if reference:
        path = Path(reference)
        if not path.is_file():
            raise DataError(f"{path}: drift reference not found; build it with `{command} --bundle BUNDLE --out "
                            f"{path}` or leave out --reference to use the bundle's")
        return DriftReference.load(path), str(path)
    if bundle is None:
        raise DataError("no drift reference: pass --reference FILE or --bundle DIR")
    cache = cached_reference_path(bundle)
    if cache.is_file():
        ref = DriftReference.load(cache)
        if ref.meta.get("bundle_sha256") == bundle_hash(bundle):
            return ref, str(cache)
    ref = build()
    ref.save(cache)
    return ref, f"{cache} (built now)"
