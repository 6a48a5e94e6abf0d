"""Drift statistics: hand-computed PSI / KS cases, and shifted vs unshifted synthetic batches (labels,
confidences and embeddings each on their own)."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.lifecycle.drift import (
    EPS,
    DriftFigures,
    DriftReference,
    DriftThresholds,
    categorical_psi,
    compare,
    continuous_psi,
    cosine_distance,
    kolmogorov_sf,
    ks_2samp,
    psi,
    psi_noise,
    quantile_edges,
    spread_at,
)

LABELS = np.array(["negative", "neutral", "positive"])


# ------------------------------------------------------------------------------- hand-computed cases
def test_psi_matches_the_formula_on_small_cases():
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * math.log(1.8) + 0.4 * math.log(5.0))
    assert psi([10, 10], [10, 10]) == 0.0  # counts are normalised; identical -> 0
    # an empty bin gets share EPS instead of log(0)
    assert psi([1.0, 0.0], [0.5, 0.5]) == pytest.approx((0.5 - 1) * math.log(0.5) + (0.5 - EPS) * math.log(0.5 / EPS))
    with pytest.raises(ValueError):
        psi([1, 2], [1, 2, 3])


def test_categorical_psi_counts_an_unseen_label_as_its_own_bin():
    assert categorical_psi({"a": 0.5, "b": 0.5}, ["a"] * 9 + ["b"]) == pytest.approx(psi([0.5, 0.5], [0.9, 0.1]))
    assert categorical_psi({"a": 1.0}, ["a", "b"]) == pytest.approx(psi([1.0, 0.0], [0.5, 0.5]))


def test_continuous_psi_bins_on_the_reference_quantiles():
    assert list(quantile_edges([1, 2, 3, 4], bins=2)) == [2.5]
    # reference [1,2 | 3,4] -> 2/2; values [1,1,1 | 4] -> 3/1
    assert continuous_psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2) == pytest.approx(0.25 * math.log(1.5) + 0.25 * math.log(2))
    # repeated reference values collapse their edges instead of making empty bins
    assert list(quantile_edges([0.9] * 10 + [1.0] * 10, bins=10)) == [0.9, 0.95, 1.0]


def test_psi_noise_level_follows_chi_square_and_volume():
    # n * PSI ~ chi-square with bins - 1 degrees of freedom under no change: 99th percentile of chi2(9) = 21.67
    assert psi_noise([0.1] * 10, 1000, 10**7, rounds=4000) == pytest.approx(21.67 / 1000, rel=0.15)
    assert psi_noise([0.5, 0.3, 0.2], 20, 3000) > psi_noise([0.5, 0.3, 0.2], 200, 3000) > psi_noise(
        [0.5, 0.3, 0.2], 2000, 3000)
    assert psi_noise([1.0, 0.0], 50, 50) == 0.0  # a label the reference never had cannot appear by chance


def test_kolmogorov_series_at_known_points():
    assert kolmogorov_sf(1.0) == pytest.approx(0.2699996716, abs=1e-8)
    assert kolmogorov_sf(1.3581) == pytest.approx(0.05, abs=2e-4)  # the 5 % critical value
    assert kolmogorov_sf(1.6276) == pytest.approx(0.01, abs=1e-4)  # the 1 % critical value
    assert kolmogorov_sf(0.0) == 1.0 and kolmogorov_sf(0.05) == pytest.approx(1.0)
    assert kolmogorov_sf(5.0) < 1e-20
    # the two forms of the series agree where they switch (lambda = 1.18)
    assert kolmogorov_sf(1.1799999) == pytest.approx(kolmogorov_sf(1.18), abs=1e-6)
    special = pytest.importorskip("scipy.special")  # tests may use scipy; the module never does
    for lam in (0.3, 0.7, 1.0, 1.2, 1.5, 2.0, 3.0):
        assert kolmogorov_sf(lam) == pytest.approx(float(special.kolmogorov(lam)), abs=1e-10)


def test_ks_statistic_and_p_value_by_hand():
    d, p = ks_2samp([1, 2, 3, 4], [3, 4, 5, 6])
    assert d == 0.5
    lam = (math.sqrt(2) + 0.12 + 0.11 / math.sqrt(2)) * 0.5  # ne = 4*4/8 = 2
    assert p == pytest.approx(kolmogorov_sf(lam))
    assert ks_2samp([1, 2, 3], [4, 5, 6])[0] == 1.0
    assert ks_2samp([1, 1, 2], [1, 1, 2]) == (0.0, 1.0)  # ties: identical samples
    with pytest.raises(ValueError):
        ks_2samp([], [1.0])


def test_cosine_distance():
    assert cosine_distance([1, 0], [1, 0]) == pytest.approx(0.0)
    assert cosine_distance([1, 0], [0, 2]) == pytest.approx(1.0)
    assert cosine_distance([1, 0], [-1, 0]) == pytest.approx(2.0)
    assert cosine_distance([0, 0], [1, 0]) == 1.0


def test_spread_scales_with_the_batch_size():
    spread = {"sample_size": 100, "n": 1000, "spread": 0.01, "quantile": 0.99, "mean": 0.005}
    assert spread_at(spread, 100) == pytest.approx(0.01 * 100 * (1 / 100 + 1 / 1000))
    assert spread_at(spread, 25) > spread_at(spread, 100) > spread_at(spread, 400)


# ----------------------------------------------------------------------------------- synthetic batches
def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def world():
    """A reference of 3000 items and, per part, one batch from the same distribution and one shifted."""
    rng = np.random.default_rng(7)
    dim = 32
    mu = unit(rng.normal(size=dim))
    other = unit(rng.normal(size=dim))

    def embed(n: int, centre: np.ndarray) -> np.ndarray:
        return unit(centre + 0.6 * rng.normal(size=(n, dim)) / math.sqrt(dim) * 4)

    ref = DriftReference.build(rng.choice(LABELS, 3000, p=[0.3, 0.5, 0.2]), rng.beta(5, 2, 3000),
                               embed(3000, mu), meta={"model": "synthetic"})
    same = {"labels": list(rng.choice(LABELS, 400, p=[0.3, 0.5, 0.2])), "confidences": rng.beta(5, 2, 400),
            "embeddings": embed(200, mu)}
    shifted = {"labels": list(rng.choice(LABELS, 400, p=[0.7, 0.2, 0.1])), "confidences": rng.beta(2, 2, 400),
               "embeddings": embed(200, unit(mu + 0.5 * other))}
    return ref, same, shifted


@pytest.mark.parametrize("part", ["labels", "confidences", "embeddings"])
def test_each_statistic_fires_on_shifted_data_only(world, part):
    ref, same, shifted = world
    calm = compare(ref, **{part: same[part]})
    moved = compare(ref, **{part: shifted[part]})
    assert calm.drifted is False and calm.reasons == []
    assert moved.drifted is True and moved.reasons
    word = {"labels": "label PSI", "confidences": "confidence", "embeddings": "embedding centroid"}[part]
    assert all(word in r for r in moved.reasons)


def test_all_parts_together_and_the_figures(world):
    ref, same, shifted = world
    calm = compare(ref, **same)
    assert calm.drifted is False
    assert calm.label_psi < 0.05 and calm.variable().psi < 0.1 and calm.variable().ks_p > 0.01
    assert calm.centroid_ratio < 1.5 and calm.embedded == 200 and calm.n == 400
    moved = compare(ref, **shifted)
    assert moved.drifted is True
    kinds = " ".join(moved.reasons)
    assert "label PSI" in kinds and "confidence PSI" in kinds and "confidence KS" in kinds and "centroid" in kinds
    assert moved.variable().mean < moved.variable().reference_mean
    assert sum(moved.label_shares.values()) == pytest.approx(1.0)


def test_too_few_items_give_no_verdict(world):
    ref, _, shifted = world
    fig = compare(ref, shifted["labels"][:10], shifted["confidences"][:10])
    assert fig.drifted is None and fig.reasons == [] and fig.label_psi is not None
    assert any("fewer than the 50" in n for n in fig.notes)
    few = DriftThresholds(min_items=5, psi_noise=False)
    assert compare(ref, shifted["labels"][:10], thresholds=few).drifted is True


def test_thresholds_are_configurable_and_checked(world):
    ref, same, _ = world
    assert compare(ref, same["labels"], thresholds=DriftThresholds(psi=1e-9, psi_noise=False)).drifted is True
    assert compare(ref, same["labels"], thresholds=DriftThresholds(psi=1e-9)).drifted is False  # noise level
    with pytest.raises(ConfigError, match="psi"):
        DriftThresholds(psi=0)
    with pytest.raises(ConfigError, match="unknown key"):
        DriftThresholds.from_dict({"pvalue": 0.1})
    assert "PSI > 0.2" in DriftThresholds().describe()


def test_missing_reference_parts_and_other_encoders_are_notes(world):
    _, same, _ = world
    ref = DriftReference.build(confidences=[0.5, 0.6, 0.7] * 30)
    fig = compare(ref, same["labels"], same["confidences"], same["embeddings"])
    assert fig.label_psi is None and fig.centroid_distance is None
    assert any("no label distribution" in n for n in fig.notes) and any("no embedding" in n for n in fig.notes)
    full, _, _ = world
    fig = compare(full, embeddings=np.ones((60, 8)))
    assert fig.centroid_distance is None and any("dimension 8" in n for n in fig.notes)


# ------------------------------------------------------------------------------------------- files
def test_reference_round_trips_through_json(world, tmp_path):
    ref, same, _ = world
    path = ref.save(tmp_path / "ref.json")
    back = DriftReference.load(path)
    assert back.n == ref.n and back.labels == ref.labels and back.spread == ref.spread
    assert len(back.confidences) == 3000 and back.meta == {"model": "synthetic"}
    assert back.fingerprint == ref.fingerprint
    assert compare(back, **same).to_dict() == compare(ref, **same).to_dict()
    fig = compare(back, **same)
    assert DriftFigures.from_dict(json.loads(json.dumps(fig.to_dict()))) == fig


def test_reference_caps_its_samples():
    ref = DriftReference.build(confidences=np.linspace(0, 1, 12_000), max_values=5000)
    assert len(ref.confidences) == 5000 and ref.n == 12_000


def test_bad_reference_files_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="drift reference not found"):
        DriftReference.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable drift reference"):
        DriftReference.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"n": 3}))
    with pytest.raises(DataError, match="not a kgfusion drift reference"):
        DriftReference.load(tmp_path / "y.json")
    with pytest.raises(DataError, match="needs items"):
        DriftReference.build()


def test_the_module_imports_without_scipy():
    code = ("import sys; import kgfusion.core.lifecycle.drift; "
            "print(any(m == 'scipy' or m.startswith('scipy.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
