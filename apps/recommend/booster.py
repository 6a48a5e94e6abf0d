"""Predict-only LightGBM booster over LightGBM's C API (ctypes), for scoring.

``import lightgbm`` imports scikit-learn and, through it, scipy.stats: about 2.7 s of a 4 s model load
on this machine, paid again by every Ray actor, for code scoring never uses. The shared library inside
the lightgbm wheel has a small, stable C API (``LGBM_BoosterLoadModelFromString``,
``LGBM_BoosterPredictForMat``), so scoring calls it directly. Same library, same model text, same
default prediction parameters as ``lightgbm.Booster.predict``: the scores are identical.
Training still uses the lightgbm package.
"""
from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path

import numpy as np

from kgfusion.core.errors import BundleError

_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64
_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL
_LIB: ctypes.CDLL | None = None


def _library() -> ctypes.CDLL:
    """lib_lightgbm from the installed wheel, found without importing the package."""
    global _LIB
    if _LIB is None:
        spec = importlib.util.find_spec("lightgbm")
        if spec is None or not spec.submodule_search_locations:
            raise BundleError("lightgbm is not installed (a core dependency of kgfusion): pip install 'lightgbm>=4.0'")
        candidates = [Path(p) / "lib" / name for p in spec.submodule_search_locations
                      for name in ("lib_lightgbm.so", "lib_lightgbm.dylib", "lib_lightgbm.dll")]
        found = [p for p in candidates if p.is_file()]
        if not found:
            raise BundleError(f"lightgbm is installed but its library is not in {candidates[0].parent}; "
                              "reinstall it: pip install --force-reinstall lightgbm")
        lib = ctypes.cdll.LoadLibrary(str(found[0]))
        lib.LGBM_GetLastError.restype = ctypes.c_char_p
        _LIB = lib
    return _LIB


def _check(code: int) -> None:
    if code != 0:
        raise BundleError(f"LightGBM: {_library().LGBM_GetLastError().decode('utf-8', 'replace')}")


class NativeBooster:
    """``NativeBooster(model_text).predict(x)``: raw scores of a LightGBM model, one per row of ``x``."""

    def __init__(self, model_text: str) -> None:
        lib = _library()
        self._text = model_text
        self._handle = ctypes.c_void_p()
        iterations = ctypes.c_int(0)
        _check(lib.LGBM_BoosterLoadModelFromString(ctypes.c_char_p(model_text.encode("utf-8")),
                                                   ctypes.byref(iterations), ctypes.byref(self._handle)))
        self.num_iterations = iterations.value
        features = ctypes.c_int(0)
        _check(lib.LGBM_BoosterGetNumFeature(self._handle, ctypes.byref(features)))
        self.num_features = features.value

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise BundleError(f"ranker expects {self.num_features} features per row, got shape {x.shape}")
        out = np.empty(len(x), dtype=np.float64)
        if len(x) == 0:
            return out
        written = ctypes.c_int64(0)
        _check(_library().LGBM_BoosterPredictForMat(
            self._handle, x.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(_DTYPE_FLOAT64),
            ctypes.c_int32(x.shape[0]), ctypes.c_int32(x.shape[1]), ctypes.c_int(1),  # row-major
            ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(-1),  # all iterations
            ctypes.c_char_p(b""), ctypes.byref(written), out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
        if written.value != len(x):
            raise BundleError(f"LightGBM returned {written.value} scores for {len(x)} rows")
        return out

    def model_to_string(self) -> str:
        return self._text

    def __reduce__(self):  # a ctypes handle does not pickle; the model text does
        return NativeBooster, (self._text,)

    def __del__(self) -> None:
        if getattr(self, "_handle", None) and _LIB is not None:
            _LIB.LGBM_BoosterFree(self._handle)
            self._handle = None
