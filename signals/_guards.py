"""Leakage guard: a causal feature is unchanged on a prefix when the data after it is cut off."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from analytics import RegimeDeskError

__all__ = ["LeakageError", "prefix_violations", "assert_prefix_invariant"]


class LeakageError(RegimeDeskError):
    """A feature changed on past bars when future bars were removed: it uses the future."""


def prefix_violations(
    make: Callable[[pd.DataFrame], pd.DataFrame],
    bars: pd.DataFrame,
    cuts: Iterable[int],
    *,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> dict[str, int]:
    """Columns of ``make(bars)`` that differ from ``make(bars.iloc[:cut])`` on the prefix.

    Parameters
    ----------
    make : callable
        Bars in, feature frame (same index) out.
    bars : DataFrame
    cuts : iterable of int
        Prefix lengths to try.
    rtol, atol : float
        Tolerance (NaN equals NaN).

    Returns
    -------
    dict
        ``column -> first cut at which it differed``; empty when every column is causal.
    """
    full = make(bars)
    bad: dict[str, int] = {}
    for cut in cuts:
        part = make(bars.iloc[:cut])
        ref = full.iloc[:cut]
        for col in full.columns:
            if col in bad:
                continue
            if col not in part.columns:
                bad[col] = int(cut)
                continue
            a = part[col].to_numpy(dtype=float)
            b = ref[col].to_numpy(dtype=float)
            if not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
                bad[col] = int(cut)
    return bad


def assert_prefix_invariant(
    make: Callable[[pd.DataFrame], pd.DataFrame], bars: pd.DataFrame, cuts: Iterable[int], **tol: float
) -> None:
    """Raise :class:`LeakageError` naming every column that is not prefix-invariant."""
    bad = prefix_violations(make, bars, cuts, **tol)
    if bad:
        cols = ", ".join(f"{c} (cut {k})" for c, k in sorted(bad.items()))
        raise LeakageError(f"features use data after their timestamp: {cols}")
