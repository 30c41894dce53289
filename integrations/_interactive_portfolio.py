"""Portfolio report charts as interactive Plotly figures, the twins of :mod:`integrations._portfolio_charts`.

Each function takes exactly the arguments of the same-named PNG function, validates them the
same way (same errors, same messages) and returns a Plotly figure as plain JSON values,
``{"data": [...], "layout": {...}}``, built with the helpers of :mod:`integrations._interactive`
(ISO dates, 6 significant digits, NaN as ``null``). Colours and ordering follow the PNG charts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex

from integrations._charts import _INK, _NAVY, _RED, _dates
from integrations._interactive import _axis, _iso, _layout, _line, _values
from integrations._portfolio_charts import _SERIES_COLOURS, _drawdown_pct, _risk_shares, _series

__all__ = ["weights_area_chart", "risk_contribution_chart", "drawdown_comparison_chart"]

Spec = dict[str, Any]

_WEIGHT_BAR = "#B8C4D6"


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[k:k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:g})"


def weights_area_chart(
    dates: Any,
    weights: Mapping[str, Sequence[float]],
    *,
    title: str = "",
) -> Spec:
    """Weights held over time as a stacked area in percent, one band per asset, with the gross line.

    Returns
    -------
    dict
        Plotly figure (see :func:`integrations.weights_area_chart` for the parameters).

    Raises
    ------
    ValueError
        As :func:`integrations.weights_area_chart`.
    """
    index = _dates(dates)
    series = _series(weights, "weights", len(index))
    stack = {name: np.clip(np.nan_to_num(v, nan=0.0), 0.0, None) for name, v in series.items()}
    cmap = colormaps["tab20"] if len(series) > 10 else colormaps["tab10"]
    x = _iso(index)
    data: list[Spec] = []
    for k, (name, values) in enumerate(stack.items()):
        colour = to_hex(cmap(k % cmap.N))
        data.append({"type": "scatter", "mode": "lines", "x": x, "y": _values(values, 100), "name": name,
                     "stackgroup": "weights", "line": {"color": colour, "width": 0}, "fillcolor": colour,
                     "hovertemplate": "%{y:.1f}%"})
    gross = np.sum(list(stack.values()), axis=0) * 100
    data.append(_line(x, _values(gross), "gross", _INK, 1.0, hovertemplate="%{y:.1f}%"))
    top = max(100.0, float(gross.max())) * 1.04
    layout = _layout(title, 380, xaxis=_axis(type="date"),
                     yaxis=_axis(range=[0, top], ticksuffix="%", title={"text": "weight held"}))
    return {"data": data, "layout": layout}


def risk_contribution_chart(
    symbols: Sequence[str],
    weights: Sequence[float],
    contributions: Sequence[float],
    *,
    total: float | None = None,
    title: str = "",
) -> Spec:
    """Grouped horizontal bars: each asset's share of the gross weight and of the risk, in percent.

    Largest contribution on top; a negative contribution (a hedge) is red.

    Returns
    -------
    dict
        Plotly figure (see :func:`integrations.risk_contribution_chart` for the parameters).

    Raises
    ------
    ValueError
        As :func:`integrations.risk_contribution_chart`.
    """
    # Plotly draws the first category lowest, so the largest contribution (last) ends on top.
    names, c, w_share, c_share, order, label = _risk_shares(symbols, weights, contributions, total)
    k = len(names)
    y = [names[i] for i in order]
    data = [
        {"type": "bar", "orientation": "h", "x": _values(w_share[order], 100), "y": y,
         "name": "share of gross weight", "marker": {"color": _WEIGHT_BAR},
         "hovertemplate": "%{y}: %{x:.2f}% of the gross weight<extra></extra>"},
        {"type": "bar", "orientation": "h", "x": _values(c_share[order], 100), "y": y, "name": label,
         "marker": {"color": [_RED if v < 0 else _NAVY for v in c[order]]},
         "hovertemplate": "%{y}: %{x:.2f}% of the risk<extra></extra>"},
    ]
    layout = _layout(title, min(100 + 36 * k, 900), hovermode="closest", barmode="group",
                     legend={"orientation": "h", "x": 0, "y": -0.12, "xanchor": "left", "yanchor": "top",
                             "traceorder": "reversed"},
                     xaxis=_axis(ticksuffix="%", title={"text": "percent"}), yaxis=_axis(type="category"))
    return {"data": data, "layout": layout}


def drawdown_comparison_chart(
    dates: Any,
    equities: Mapping[str, Sequence[float]],
    *,
    title: str = "",
) -> Spec:
    """Drawdown lines of several equity curves in percent, the first one filled.

    Returns
    -------
    dict
        Plotly figure (see :func:`integrations.drawdown_comparison_chart` for the parameters).

    Raises
    ------
    ValueError
        As :func:`integrations.drawdown_comparison_chart`.
    """
    index = _dates(dates)
    series = _series(equities, "equities", len(index))
    x = _iso(index)
    data: list[Spec] = []
    low = 0.0
    for k, (label, eq) in enumerate(series.items()):
        dd = _drawdown_pct(eq)
        colour = _SERIES_COLOURS[k % len(_SERIES_COLOURS)]
        extra: Spec = {"fill": "tozeroy", "fillcolor": _rgba(colour, 0.25)} if k == 0 else {}
        data.append(_line(x, _values(dd), label, colour, 1.4 if k == 0 else 1.1,
                          hovertemplate="%{y:.2f}%", **extra))
        finite = dd[np.isfinite(dd)]
        if finite.size:
            low = min(low, float(finite.min()))
    layout = _layout(title, 340, xaxis=_axis(type="date"),
                     yaxis=_axis(range=[low * 1.05 - 1, 1], ticksuffix="%", title={"text": "drawdown"}))
    return {"data": data, "layout": layout}
