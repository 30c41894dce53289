"""Report charts as interactive Plotly figures, the twins of :mod:`integrations._charts`.

Each function takes exactly the arguments of the same-named function in
:mod:`integrations._charts`, validates them the same way (same errors, same messages) and
returns a Plotly figure as plain JSON values: ``{"data": [...], "layout": {...}}``, ready for
``Plotly.newPlot`` in a browser. Nothing here imports plotly: the HTML renderer ships
``plotly.min.js`` from the installed ``plotly`` package, so a report works offline.

Dates are ISO strings, numbers are rounded to 6 significant digits and NaN becomes ``null``
(a gap), so the JSON stays small and valid. Colours, labels and panels follow the PNG charts,
so a chart reads the same in the PDF and in the browser; the browser adds zoom, pan, hover
values and legend toggles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from integrations._charts import (
    _GREY,
    _INK,
    _MONTHS,
    _NAVY,
    _ORANGE,
    _RED,
    _SHADE,
    _check_log_series,
    _dates,
    _drawdown,
    _family_keys,
    _floats,
    _maybe_float,
    _month_grid,
    _rebase,
    _reliability_bins,
)

__all__ = [
    "price_regime_chart",
    "equity_drawdown_chart",
    "reliability_chart",
    "importance_chart",
    "var_backtest_chart",
    "monthly_returns_heatmap",
    "rolling_performance_chart",
    "exposure_chart",
]

Spec = dict[str, Any]

_FONT = {"family": "Helvetica, Arial, sans-serif", "size": 11, "color": _INK}
_AXIS_LINE = "#9AA3AD"
_GRID = "#E3E7EC"


# --------------------------------------------------------------------------- shared helpers


def _values(values: np.ndarray, scale: float = 1.0) -> list[float | None]:
    """Plain floats with 6 significant digits; non-finite values become None (a gap)."""
    return [float(f"{v * scale:.6g}") if math.isfinite(v) else None for v in values.tolist()]


def _iso(index: pd.DatetimeIndex) -> list[str]:
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    daily = bool((index == index.normalize()).all())
    return list(index.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"))


def _line(x: list[str], y: list[float | None], name: str, colour: str, width: float = 1.4,
          yaxis: str = "y", **extra: Any) -> Spec:
    return {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": name, "yaxis": yaxis,
            "line": {"color": colour, "width": width}, **extra}


def _axis(**extra: Any) -> Spec:
    return {"gridcolor": _GRID, "zerolinecolor": _AXIS_LINE, "linecolor": _AXIS_LINE,
            "automargin": True, **extra}


def _layout(title: str, height: int, **extra: Any) -> Spec:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 13, "color": _NAVY}},
        "height": height,
        "font": _FONT,
        "margin": {"l": 60, "r": 20, "t": 44 if title else 16, "b": 40},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "hovermode": "x unified",
        "legend": {"orientation": "h", "x": 0, "y": -0.12, "xanchor": "left", "yanchor": "top"},
        **extra,
    }


def _panels(top: tuple[float, float], bottom: tuple[float, float], *, top_axis: Spec,
            bottom_axis: Spec) -> Spec:
    """A shared date axis under two stacked value axes (``y`` on top, ``y2`` below)."""
    return {
        "xaxis": _axis(type="date", anchor="y2"),
        "yaxis": _axis(domain=list(top), **top_axis),
        "yaxis2": _axis(domain=list(bottom), **bottom_axis),
    }


def _regime_shapes(index: pd.DatetimeIndex, keys: Sequence[str | None]) -> tuple[list[Spec], list[Spec]]:
    """Background rectangles for each run of one regime family, and one legend entry per family.

    As in the PNG charts, a run reaches the next bar's date so adjacent runs touch, and the last
    run reaches one bar interval past the last bar.
    """
    n = len(index)
    step = index[-1] - index[-2] if n > 1 else pd.Timedelta(days=1)
    edges = _iso(index.append(pd.DatetimeIndex([index[-1] + step])))
    shapes: list[Spec] = []
    seen: list[str | None] = []
    start = 0
    for i in range(1, n + 1):
        if i == n or keys[i] != keys[start]:
            colour, _ = _SHADE[keys[start]]
            shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": edges[start], "x1": edges[i],
                           "y0": 0, "y1": 1, "fillcolor": colour, "line": {"width": 0}, "layer": "below"})
            if keys[start] not in seen:
                seen.append(keys[start])
            start = i
    legend = [{"type": "scatter", "mode": "markers", "x": [None], "y": [None], "name": _SHADE[key][1],
               "marker": {"symbol": "square", "size": 12, "color": _SHADE[key][0]}, "hoverinfo": "skip"}
              for key in ("risk_off", "risk_on", None) if key in seen]
    return shapes, legend


# --------------------------------------------------------------------------- charts


def price_regime_chart(
    dates: pd.DatetimeIndex,
    close: Sequence[float],
    family: Sequence[str | None],
    *,
    risk_off_probability: Sequence[float] | None = None,
    title: str = "",
) -> Spec:
    """Closing price on a log axis over a background shaded by regime (see :func:`integrations.price_regime_chart`).

    Returns
    -------
    dict
        Plotly figure; with ``risk_off_probability`` a lower panel shows it on 0..1 with a line at 0.5.
    """
    index = _dates(dates)
    n = len(index)
    prices = _floats(close, "close", n)
    _check_log_series(prices, "close")
    keys = _family_keys(family, n)
    prob = None
    if risk_off_probability is not None:
        prob = _floats(risk_off_probability, "risk_off_probability", n)
        finite = prob[np.isfinite(prob)]
        if ((finite < 0) | (finite > 1)).any():
            raise ValueError("risk_off_probability must lie in [0, 1]")
    x = _iso(index)
    shapes, legend = _regime_shapes(index, keys)
    data = [_line(x, _values(prices), "close", _NAVY)]
    if prob is None:
        layout = _layout(title, 380, xaxis=_axis(type="date"), yaxis=_axis(type="log", title={"text": "close"}))
    else:
        data.append(_line(x, _values(prob), "P(risk-off)", _RED, 1.0, yaxis="y2"))
        layout = _layout(title, 480, **_panels((0.3, 1.0), (0.0, 0.22),
                                               top_axis={"type": "log", "title": {"text": "close"}},
                                               bottom_axis={"range": [0, 1], "title": {"text": "P(risk-off)"}}))
        shapes.append({"type": "line", "xref": "paper", "yref": "y2", "x0": 0, "x1": 1, "y0": 0.5, "y1": 0.5,
                       "line": {"color": _INK, "width": 0.8, "dash": "dash"}})
    layout["shapes"] = shapes
    return {"data": data + legend, "layout": layout}


def equity_drawdown_chart(
    dates: pd.DatetimeIndex,
    strategy: Sequence[float],
    benchmark: Sequence[float],
    *,
    strategy_label: str = "strategy",
    benchmark_label: str = "buy and hold",
    family: Sequence[str | None] | None = None,
    title: str = "",
) -> Spec:
    """Equity curves rebased to 1 (log axis) above their drawdowns in percent.

    Returns
    -------
    dict
        Plotly figure (see :func:`integrations.equity_drawdown_chart`).
    """
    index = _dates(dates)
    n = len(index)
    strat = _floats(strategy, "strategy", n)
    bench = _floats(benchmark, "benchmark", n)
    _check_log_series(strat, "strategy")
    _check_log_series(bench, "benchmark")
    strat, bench = _rebase(strat), _rebase(bench)
    keys = None if family is None else _family_keys(family, n)
    x = _iso(index)
    shapes, legend = ([], []) if keys is None else _regime_shapes(index, keys)
    data = [
        _line(x, _values(bench), benchmark_label, _GREY, 1.2),
        _line(x, _values(strat), strategy_label, _NAVY, 1.5),
        _line(x, _values(_drawdown(bench), 100), f"{benchmark_label} drawdown", _GREY, 1.0, yaxis="y2"),
        _line(x, _values(_drawdown(strat), 100), f"{strategy_label} drawdown", _NAVY, 0.8, yaxis="y2",
              fill="tozeroy", fillcolor="rgba(31,58,95,0.25)"),
    ]
    layout = _layout(title, 500, **_panels((0.36, 1.0), (0.0, 0.3),
                                           top_axis={"type": "log", "title": {"text": "growth of 1"}},
                                           bottom_axis={"title": {"text": "drawdown"}, "ticksuffix": "%"}))
    layout["shapes"] = shapes
    return {"data": data + legend, "layout": layout}


def reliability_chart(rows: Sequence[Mapping[str, float]], *, title: str = "") -> Spec:
    """Reliability diagram: observed frequency against mean forecast, counts below.

    Returns
    -------
    dict
        Plotly figure (see :func:`integrations.reliability_chart`).
    """
    low, high, mean, observed, count = _reliability_bins(rows)
    ok = (count > 0) & np.isfinite(mean) & np.isfinite(observed)
    bins = np.isfinite(low) & np.isfinite(high) & (high > low)
    data: list[Spec] = [
        {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "perfect calibration",
         "line": {"color": _GREY, "dash": "dash", "width": 1}, "hoverinfo": "skip"},
        {"type": "bar", "x": _values((low[bins] + high[bins]) / 2), "y": _values(count[bins]),
         "width": _values((high - low)[bins]), "name": "forecasts per bin", "yaxis": "y2", "xaxis": "x",
         "marker": {"color": "rgba(31,58,95,0.35)"}},
    ]
    if ok.any():
        sizes = 6 + 18 * np.sqrt(count[ok] / count[ok].max())
        data.insert(1, {"type": "scatter", "mode": "lines+markers", "x": _values(mean[ok]),
                        "y": _values(observed[ok]), "name": "observed (marker size ~ count)",
                        "line": {"color": _NAVY, "width": 1.2},
                        "marker": {"color": _NAVY, "size": _values(sizes), "line": {"color": "white", "width": 1}},
                        "customdata": _values(count[ok]),
                        "hovertemplate": "forecast %{x:.3f}<br>observed %{y:.3f}<br>%{customdata} forecasts"})
    layout = _layout(title, 460, hovermode="closest",
                     xaxis=_axis(range=[0, 1], anchor="y2", title={"text": "mean forecast probability"}),
                     yaxis=_axis(range=[0, 1], domain=[0.3, 1.0], title={"text": "observed frequency"}),
                     yaxis2=_axis(domain=[0.0, 0.22], title={"text": "count"}))
    if not ok.any():
        layout["annotations"] = [{"text": "no populated bins", "xref": "paper", "yref": "paper", "x": 0.5,
                                  "y": 0.65, "showarrow": False, "font": {"color": _GREY}}]
    return {"data": data, "layout": layout}


def importance_chart(importance: Mapping[str, float], *, top: int = 12, title: str = "") -> Spec:
    """Horizontal bars of the largest feature importances, largest at the top.

    Returns
    -------
    dict
        Plotly figure (see :func:`integrations.importance_chart`).
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    if not importance:
        raise ValueError("importance is empty")
    items = [(str(k), _maybe_float(v)) for k, v in importance.items()]
    items = [(k, v) for k, v in items if math.isfinite(v)]
    if not items:
        raise ValueError("importance has no finite values")
    items.sort(key=lambda kv: (-abs(kv[1]), kv[0]))
    items = items[:top][::-1]
    values = np.array([v for _, v in items])
    data = [{"type": "bar", "orientation": "h", "x": _values(values), "y": [k for k, _ in items],
             "marker": {"color": [_NAVY if v >= 0 else _ORANGE for v in values]}, "name": "importance",
             "hovertemplate": "%{y}: %{x:.4g}<extra></extra>"}]
    layout = _layout(title, 90 + 26 * len(items), hovermode="closest", showlegend=False,
                     xaxis=_axis(title={"text": "importance"}), yaxis=_axis())
    return {"data": data, "layout": layout}


def var_backtest_chart(
    dates: pd.DatetimeIndex,
    returns: Sequence[float],
    var: Sequence[float],
    *,
    title: str = "",
) -> Spec:
    """Daily returns against the negative VaR forecast, exceedances marked.

    Returns
    -------
    dict
        Plotly figure (see :func:`integrations.var_backtest_chart`); the legend gives the
        exceedance count and rate.
    """
    index = _dates(dates)
    n = len(index)
    ret = _floats(returns, "returns", n)
    forecast = _floats(var, "var", n)
    both = np.isfinite(ret) & np.isfinite(forecast)
    hits = both & (ret < -forecast)
    n_forecasts, n_hits = int(both.sum()), int(hits.sum())
    rate = f" ({n_hits / n_forecasts:.1%})" if n_forecasts else ""
    x = _iso(index)
    hx = [d for d, h in zip(x, hits, strict=True) if h]
    data = [
        {"type": "bar", "x": x, "y": _values(ret, 100), "name": "daily return",
         "marker": {"color": _GREY, "line": {"width": 0}}, "hovertemplate": "%{y:.2f}%"},
        _line(x, _values(-forecast, 100), "- VaR forecast", _NAVY, 1.2, hovertemplate="%{y:.2f}%"),
        {"type": "scatter", "mode": "markers", "x": hx, "y": _values(ret[hits], 100),
         "name": f"exceedances: {n_hits} of {n_forecasts}{rate}", "marker": {"color": _RED, "size": 6},
         "hovertemplate": "%{y:.2f}%"},
    ]
    layout = _layout(title, 380, bargap=0, xaxis=_axis(type="date"),
                     yaxis=_axis(title={"text": "daily return"}, ticksuffix="%"))
    return {"data": data, "layout": layout}


def _colourscale(name: str, steps: int = 11) -> list[list[float | str]]:
    """A matplotlib colour map as a Plotly colour scale, so both renderers use the same colours."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps[name]
    return [[k / (steps - 1), to_hex(cmap(k / (steps - 1)))] for k in range(steps)]


def monthly_returns_heatmap(table: pd.DataFrame, *, title: str = "") -> Spec:
    """Calendar heatmap of monthly returns in percent, one row per year.

    Returns
    -------
    dict
        Plotly figure (see :func:`integrations.monthly_returns_heatmap`): red loss, green gain,
        symmetric around zero; each cell shows its value.
    """
    values, years, limit = _month_grid(table)
    z = [_values(row) for row in values]
    text = [["" if v is None else ("0.0" if f"{v:.1f}" == "-0.0" else f"{v:.1f}") for v in row] for row in z]
    data = [{"type": "heatmap", "z": z, "x": list(_MONTHS), "y": years, "text": text, "texttemplate": "%{text}",
             "textfont": {"size": 10}, "colorscale": _colourscale("RdYlGn"), "zmin": -limit, "zmax": limit, "zmid": 0,
             "showscale": False, "xgap": 1, "ygap": 1, "hoverongaps": False,
             "hovertemplate": "%{x} %{y}: %{z:.2f}%<extra></extra>"}]
    layout = _layout(title, 80 + 24 * len(years), hovermode="closest",
                     xaxis=_axis(side="top", showgrid=False),
                     yaxis=_axis(autorange="reversed", type="category", showgrid=False))
    return {"data": data, "layout": layout}


def rolling_performance_chart(
    dates: pd.DatetimeIndex,
    sharpe: Sequence[float],
    volatility: Sequence[float],
    *,
    benchmark_sharpe: Sequence[float] | None = None,
    benchmark_volatility: Sequence[float] | None = None,
    strategy_label: str = "strategy",
    benchmark_label: str = "buy and hold",
    title: str = "",
) -> Spec:
    """Rolling Sharpe ratio (top panel) and annualised volatility in percent (bottom panel).

    Returns
    -------
    dict
        Plotly figure (see :func:`integrations.rolling_performance_chart`).
    """
    index = _dates(dates)
    n = len(index)
    s_sharpe = _floats(sharpe, "sharpe", n)
    s_vol = _floats(volatility, "volatility", n)
    b_sharpe = None if benchmark_sharpe is None else _floats(benchmark_sharpe, "benchmark_sharpe", n)
    b_vol = None if benchmark_volatility is None else _floats(benchmark_volatility, "benchmark_volatility", n)
    x = _iso(index)
    data = []
    if b_sharpe is not None:
        data.append(_line(x, _values(b_sharpe), f"{benchmark_label} Sharpe", _GREY, 1.0))
    data.append(_line(x, _values(s_sharpe), f"{strategy_label} Sharpe", _NAVY, 1.2))
    if b_vol is not None:
        data.append(_line(x, _values(b_vol, 100), f"{benchmark_label} volatility", _GREY, 1.0, yaxis="y2"))
    data.append(_line(x, _values(s_vol, 100), f"{strategy_label} volatility", _NAVY, 1.2, yaxis="y2"))
    layout = _layout(title, 440, **_panels((0.54, 1.0), (0.0, 0.44),
                                           top_axis={"title": {"text": "Sharpe ratio"}},
                                           bottom_axis={"title": {"text": "volatility (ann.)"}, "ticksuffix": "%",
                                                        "rangemode": "tozero"}))
    return {"data": data, "layout": layout}


def exposure_chart(
    dates: pd.DatetimeIndex,
    weights: Sequence[float],
    *,
    average: Sequence[float] | None = None,
    average_label: str = "trailing average",
    family: Sequence[str | None] | None = None,
    title: str = "",
) -> Spec:
    """Weight held over time as a step line in percent, with its trailing average and regime shading.

    Returns
    -------
    dict
        Plotly figure (see :func:`integrations.exposure_chart`).
    """
    index = _dates(dates)
    n = len(index)
    w = _floats(weights, "weights", n)
    avg = None if average is None else _floats(average, "average", n)
    keys = None if family is None else _family_keys(family, n)
    x = _iso(index)
    shapes, legend = ([], []) if keys is None else _regime_shapes(index, keys)
    held = _line(x, _values(w, 100), "weight held", _NAVY, 1.0)
    held["line"]["shape"] = "hv"  # a step: the weight is held over the whole bar
    data = [held]
    if avg is not None:
        data.append(_line(x, _values(avg, 100), average_label, _ORANGE, 1.5))
    finite = w[np.isfinite(w)]
    low = min(0.0, float(finite.min()) * 100) if finite.size else 0.0
    high = max(100.0, float(finite.max()) * 100) if finite.size else 100.0
    layout = _layout(title, 320, xaxis=_axis(type="date"),
                     yaxis=_axis(range=[low - 5, high + 5], ticksuffix="%", title={"text": "exposure"}))
    layout["shapes"] = shapes
    return {"data": data + legend, "layout": layout}
