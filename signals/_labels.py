"""Direction labels over a forward horizon, aligned so no label overlaps its features' window.

The label stamped at bar ``t`` describes the path over bars ``t+1 .. t+h`` (close to close),
while the features stamped at ``t`` use bars up to ``t``: the two windows never overlap.
Because labels reach ``h`` bars into the future, a training sample at ``t`` is only usable
once bar ``t + h`` has closed; :class:`~signals.PurgedWalkForwardSplit` purges training
samples whose label window reaches into the test fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["LabelConfig", "make_labels"]


@dataclass(frozen=True)
class LabelConfig:
    """How labels are made.

    Parameters
    ----------
    horizon : int, default 5
        Bars ahead.
    method : {'direction', 'triple_barrier'}, default 'direction'
        ``direction``: 1 when ``close[t+h] > close[t]``, else 0. ``triple_barrier``: 1 when
        the close first rises ``barrier * sigma_t * sqrt(h)`` above ``close[t]`` within ``h``
        bars, 0 when it first falls that far below; if neither barrier is touched the
        vertical barrier decides by the sign of the ``h``-bar return. ``sigma_t`` is the
        trailing ``vol_window`` standard deviation of log returns at ``t``.
    barrier : float, default 1.0
    vol_window : int, default 63
    """

    horizon: int = 5
    method: Literal["direction", "triple_barrier"] = "direction"
    barrier: float = 1.0
    vol_window: int = 63

    def __post_init__(self) -> None:
        if not 1 <= self.horizon <= 252:
            raise ValueError(f"horizon must be between 1 and 252 bars, got {self.horizon!r}")
        if self.method not in ("direction", "triple_barrier"):
            raise ValueError(f"method must be direction or triple_barrier, not {self.method!r}")
        if not (np.isfinite(self.barrier) and self.barrier > 0):
            raise ValueError(f"barrier must be > 0, got {self.barrier!r}")
        if self.vol_window < 5:
            raise ValueError(f"vol_window must be >= 5, got {self.vol_window!r}")


def make_labels(close: pd.Series, config: LabelConfig | None = None) -> pd.Series:
    """Binary up/down labels; NaN where the horizon runs past the data (or sigma is unknown).

    Parameters
    ----------
    close : Series
        Positive, finite closes indexed by bar.
    config : LabelConfig, optional

    Returns
    -------
    Series
        Float 1.0 (up), 0.0 (down) or NaN, named ``label``.
    """
    cfg = config or LabelConfig()
    c = close.to_numpy(dtype=float)
    if not (np.isfinite(c).all() and (c > 0).all()):
        raise ValueError("close must be finite and positive")
    n, h = c.size, cfg.horizon
    lab = np.full(n, np.nan)
    if n <= h:
        return pd.Series(lab, index=close.index, name="label")
    logc = np.log(c)
    fwd = logc[h:] - logc[:-h]  # h-bar return from t, for t in [0, n-h)
    lab[: n - h] = (fwd > 0).astype(float)
    if cfg.method == "triple_barrier":
        sigma = pd.Series(logc).diff().rolling(cfg.vol_window).std().to_numpy()
        width = cfg.barrier * sigma * np.sqrt(h)
        # path[t, k] = log return from t to t+k+1, k < h
        idx = np.arange(n - h)[:, None] + np.arange(1, h + 1)[None, :]
        path = logc[idx] - logc[: n - h, None]
        w = width[: n - h, None]
        up = path >= w
        down = path <= -w
        first_up = np.where(up.any(axis=1), up.argmax(axis=1), h)
        first_down = np.where(down.any(axis=1), down.argmax(axis=1), h)
        decided = np.where(first_up < first_down, 1.0, np.where(first_down < first_up, 0.0, lab[: n - h]))
        lab[: n - h] = np.where(np.isfinite(width[: n - h]), decided, np.nan)
    return pd.Series(lab, index=close.index, name="label")
