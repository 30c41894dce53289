"""Shared plumbing for the statistics modules: validation, reason codes, result helpers."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from analytics.errors import InsufficientDataError
from analytics.serialise import json_safe

# Reason codes attached to every rolling output position. "ok" means the value is a number.
REASON_OK = "ok"
REASON_WARMUP = "warmup"  # fewer than `window` observations available so far
REASON_NON_FINITE = "non_finite"  # the window holds a NaN or +-inf
REASON_CONSTANT = "constant"  # the window is constant: the statistic is undefined
REASON_SINGULAR = "singular"  # the regression / ratio is degenerate (collinear, zero variance)
REASON_DTYPE = "<U10"

# Rolling work is done in blocks of windows so that batched design matrices stay small
# (a block of 256 windows of 1,000 bars with 25 regressors is ~50 MB).
BLOCK_CELLS = 2_000_000


def as_float_1d(x: Any, name: str) -> tuple[np.ndarray, Any]:
    """Return ``(float64 1-D copy, pandas index or None)``; bad shapes/types raise."""
    index = getattr(x, "index", None)
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic containers
        raise TypeError(f"{name} must be array-like of numbers") from exc
    if arr.dtype == object:
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must contain numbers, got dtype object") from exc
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must contain numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real-valued")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return np.array(arr, dtype=np.float64, copy=True), index


def require_finite(x: np.ndarray, name: str) -> None:
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise InsufficientDataError(
            f"{name} contains {bad} NaN/inf value(s) out of {x.size}; "
            "drop or fill them before testing (a gap changes the time structure)"
        )


def require_length(x: np.ndarray, minimum: int, name: str, what: str) -> None:
    if x.size < minimum:
        raise InsufficientDataError(
            f"{name} has {x.size} observation(s); {what} needs at least {minimum}"
        )


def require_not_constant(x: np.ndarray, name: str) -> None:
    if x.size and np.all(x == x[0]):
        raise InsufficientDataError(f"{name} is constant; the statistic is undefined")


def check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_float(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not low < v < high:
        raise ValueError(f"{name} must lie strictly between {low} and {high}, got {value}")
    return v


def check_choice(value: Any, name: str, options: tuple[Any, ...]) -> Any:
    if value not in options:
        raise ValueError(f"{name} must be one of {options!r}, got {value!r}")
    return value


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def readonly(a: Any, dtype: Any = None) -> np.ndarray:
    out = np.array(a, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


def frozen_mapping(d: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({k: float(v) for k, v in d.items()})


class ResultMixin:
    """``to_dict()`` for frozen results: plain JSON-serialisable values (NaN -> None)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: json_safe(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.name != "index"
        }


class RollingResultMixin(ResultMixin):
    """``to_frame()`` for rolling results: one column per per-bar array field."""

    _not_per_bar: tuple[str, ...] = ("scales",)

    def to_frame(self) -> Any:
        import pandas as pd

        cols: dict[str, Any] = {}
        n = len(self.reason)  # type: ignore[attr-defined]
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name in self._not_per_bar:
                continue
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray) and v.shape[:1] == (n,):
                if v.ndim == 1:
                    cols[f.name] = v
                else:
                    labels = self._column_labels(f.name, v.shape[1])
                    for j, lab in enumerate(labels):
                        cols[lab] = v[:, j]
        index = getattr(self, "index", None)
        return pd.DataFrame(cols, index=index)

    def _column_labels(self, field: str, k: int) -> list[str]:
        return [f"{field}_{j}" for j in range(k)]


def window_reasons(x: np.ndarray, window: int, *, constant_check: bool = True) -> np.ndarray:
    """Reason code per output position for windows of ``x`` ending at that position.

    Returns an array of length ``len(x)``: "warmup" before the first full window,
    "non_finite" when the window holds NaN/inf, "constant" when every value is equal,
    otherwise "ok".
    """
    n = x.size
    reason = np.full(n, REASON_WARMUP, dtype=REASON_DTYPE)
    if n < window:
        return reason
    finite = np.isfinite(x)
    # Count of non-finite values per window via cumulative sums (exact in integers).
    bad = np.concatenate([[0], np.cumsum(~finite)])
    nbad = bad[window:] - bad[:-window]
    tail = reason[window - 1 :]
    tail[:] = REASON_OK
    tail[nbad > 0] = REASON_NON_FINITE
    if constant_check:
        ok = nbad == 0
        if ok.any():
            views = sliding_window_view(x, window)
            # Constant <=> max == min; NaN windows are already flagged, compare only ok ones.
            const = np.zeros(nbad.size, dtype=bool)
            idx = np.flatnonzero(ok)
            for start in range(0, idx.size, max(1, BLOCK_CELLS // window)):
                sl = idx[start : start + max(1, BLOCK_CELLS // window)]
                v = views[sl]
                const[sl] = v.max(axis=1) == v.min(axis=1)
            tail[const] = REASON_CONSTANT
    return reason


def blocks(indices: np.ndarray, cells_per_item: int) -> list[np.ndarray]:
    """Split ``indices`` into chunks whose batched arrays stay below BLOCK_CELLS cells."""
    step = max(1, BLOCK_CELLS // max(1, cells_per_item))
    return [indices[i : i + step] for i in range(0, indices.size, step)]
