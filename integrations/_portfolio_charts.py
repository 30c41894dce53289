"""Portfolio report charts as PNG bytes: held weights, risk contributions, drawdowns compared.

The same look as :mod:`integrations._charts` (7 inches wide at 150 dpi, object-oriented
matplotlib, no ``pyplot``), whose shared helpers these functions use. Their Plotly twins, for
the HTML report, are in :mod:`integrations._interactive_portfolio`.

Inputs are validated at the boundary: empty input, or series whose length differs from
``dates`` (or from ``symbols``), raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.ticker import PercentFormatter

from integrations._charts import (
    _GREY,
    _INK,
    _NAVY,
    _ORANGE,
    _RED,
    _dates,
    _floats,
    _format_dates,
    _legend,
    _new_figure,
    _title,
    _to_png,
)

__all__ = ["weights_area_chart", "risk_contribution_chart", "drawdown_comparison_chart"]

#: Line colours of :func:`drawdown_comparison_chart`, in the order of its series.
_SERIES_COLOURS = (_NAVY, _ORANGE, _GREY, "#2E8B57", "#7B4F9E")


def _series(values: Mapping[str, Any], name: str, n: int) -> dict[str, np.ndarray]:
    if not isinstance(values, Mapping) or not values:
        raise ValueError(f"{name} must be a non-empty mapping of label -> values")
    return {str(k): _floats(v, f"{name}[{k!r}]", n) for k, v in values.items()}


def _risk_shares(symbols: Sequence[str], weights: Any, contributions: Any, total: float | None):
    """Validated inputs of the risk-contribution charts (PNG and Plotly): ``(names, contributions,
    weight shares, risk shares, order with the largest contribution last, the risk legend)``."""
    names = [str(s) for s in symbols]
    k = len(names)
    if k == 0:
        raise ValueError("symbols is empty")
    w = _floats(weights, "weights")
    c = _floats(contributions, "contributions")
    for arr, name in ((w, "weights"), (c, "contributions")):
        if arr.size != k:
            raise ValueError(f"{name} has {arr.size} values but symbols has {k}")
    order = np.argsort(np.nan_to_num(c, nan=-np.inf), kind="stable")
    gross = float(np.nansum(np.abs(w)))
    risk = float(np.nansum(c))
    w_share = np.abs(w) / gross if gross > 0 else np.full(k, np.nan)
    c_share = c / risk if risk != 0 else np.full(k, np.nan)
    label = "share of risk" + (f" (total {total * 100:.2f}% of equity)"
                               if total is not None and np.isfinite(total) else "")
    return names, c, w_share, c_share, order, label


def _drawdown_pct(equity: np.ndarray) -> np.ndarray:
    """Fall from the running peak in percent (NaN stays NaN)."""
    peak = np.fmax.accumulate(np.where(np.isfinite(equity), equity, np.nan))
    return (equity / peak - 1.0) * 100


def weights_area_chart(
    dates: Any,
    weights: Mapping[str, Sequence[float]],
    *,
    title: str = "",
) -> bytes:
    """Weights held over time as a stacked area, one band per asset; the top is the gross.

    Parameters
    ----------
    dates : pandas.DatetimeIndex, shape (n,)
        Dates, increasing (e.g. the weekly samples of a daily backtest).
    weights : mapping of str to sequence of float, shape (n,) each
        Asset -> its weight held at each date (fraction of equity, long-only). Missing values
        count as 0; negative weights are drawn as 0 (the area stacks long positions).
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi.

    Raises
    ------
    ValueError
        If ``dates`` is empty or unsorted, ``weights`` is empty, or a series' length differs
        from ``dates``.
    """
    index = _dates(dates)
    series = _series(weights, "weights", len(index))
    stack = np.vstack([np.clip(np.nan_to_num(v, nan=0.0), 0.0, None) for v in series.values()]) * 100
    cmap = colormaps["tab20"] if len(series) > 10 else colormaps["tab10"]
    colours = [cmap(k % cmap.N) for k in range(len(series))]

    fig, (ax,) = _new_figure(3.6)
    ax.stackplot(index, stack, labels=list(series), colors=colours, linewidth=0.0, alpha=0.9)
    gross = stack.sum(axis=0)
    ax.plot(index, gross, color=_INK, linewidth=0.6, label="gross")
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_ylabel("weight held")
    ax.set_ylim(0, max(100.0, float(gross.max()) if gross.size else 100.0) * 1.04)
    _title(ax, title)
    ncols = min(len(series) + 1, 7)
    _legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=ncols, frameon=False)
    _format_dates(ax, index)
    return _to_png(fig)


def risk_contribution_chart(
    symbols: Sequence[str],
    weights: Sequence[float],
    contributions: Sequence[float],
    *,
    total: float | None = None,
    title: str = "",
) -> bytes:
    """Each asset's share of the capital against its share of the portfolio's risk.

    Two horizontal bars per asset, largest contribution on top: ``|weight| / sum |weights|``
    and ``contribution / sum contributions`` (e.g. component VaR over the VaR), in percent,
    so an asset that takes more risk than capital shows a longer dark bar. A negative
    contribution (a hedge) is drawn in red to the left of zero.

    Parameters
    ----------
    symbols : sequence of str, shape (k,)
        Asset names.
    weights : sequence of float, shape (k,)
        Weights, fractions of equity.
    contributions : sequence of float, shape (k,)
        Risk contributions, fractions of equity (they sum to the portfolio's figure for an
        Euler decomposition such as component VaR).
    total : float, optional
        The portfolio's figure, shown in the legend.
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi.

    Raises
    ------
    ValueError
        If ``symbols`` is empty or a length differs from ``symbols``.
    """
    names, c, w_share, c_share, order, label = _risk_shares(symbols, weights, contributions, total)
    k = len(names)
    y = np.arange(k, dtype=float)

    fig, (ax,) = _new_figure(min(1.2 + 0.32 * k, 8.0))
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    h = 0.38
    ax.barh(y + h / 2, w_share[order] * 100, height=h, color="#B8C4D6", label="share of gross weight")
    colours = [_RED if v < 0 else _NAVY for v in c[order]]
    ax.barh(y - h / 2, c_share[order] * 100, height=h, color=colours, label=label)
    ax.axvline(0, color="#9AA3AD", linewidth=0.6)
    ax.set_yticks(y, [names[i] for i in order])
    ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_xlabel("percent")
    _title(ax, title)
    _legend(ax, loc="lower right")
    return _to_png(fig)


def drawdown_comparison_chart(
    dates: Any,
    equities: Mapping[str, Sequence[float]],
    *,
    title: str = "",
) -> bytes:
    """Drawdowns of several equity curves over the same dates, the first one filled.

    Parameters
    ----------
    dates : pandas.DatetimeIndex, shape (n,)
        Dates, increasing.
    equities : mapping of str to sequence of float, shape (n,) each
        Label -> equity curve (any positive scale). The drawdown at a date is
        ``equity / running maximum - 1``; NaN values are gaps.
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi.

    Raises
    ------
    ValueError
        If ``dates`` is empty or unsorted, ``equities`` is empty, or a length differs from
        ``dates``.
    """
    index = _dates(dates)
    series = _series(equities, "equities", len(index))

    fig, (ax,) = _new_figure(3.0)
    low = 0.0
    for k, (label, eq) in enumerate(series.items()):
        dd = _drawdown_pct(eq)
        colour = _SERIES_COLOURS[k % len(_SERIES_COLOURS)]
        if k == 0:
            ax.fill_between(index, dd, 0, color=colour, alpha=0.25, linewidth=0)
        ax.plot(index, dd, color=colour, linewidth=1.0 if k == 0 else 0.8, label=label, zorder=3 + (k == 0))
        finite = dd[np.isfinite(dd)]
        if finite.size:
            low = min(low, float(finite.min()))
    ax.axhline(0, color="#9AA3AD", linewidth=0.6)
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_ylabel("drawdown")
    ax.set_ylim(low * 1.05 - 1, 1)
    _title(ax, title)
    _legend(ax, loc="lower left")
    _format_dates(ax, index)
    return _to_png(fig)
