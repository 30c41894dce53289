"""Report charts as PNG bytes, drawn with matplotlib's object-oriented API.

Every function builds its own :class:`matplotlib.figure.Figure` on a
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` and never touches ``pyplot`` or the
global ``rcParams``, so charts can be drawn from several threads and without a display. All
charts share one look (font sizes, colours, grid) and are 7 inches wide at 150 dpi, the text
width of a :func:`integrations.render_pdf` page, so they embed at 100 % without rescaling
the text.

Inputs are validated at the boundary: sequences that must line up with ``dates`` raise
``ValueError`` naming the argument when their lengths differ; empty input raises
``ValueError``. NaN values are gaps (lines break, points are skipped).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, PercentFormatter

__all__ = [
    "price_regime_chart",
    "equity_drawdown_chart",
    "reliability_chart",
    "importance_chart",
    "var_backtest_chart",
    "monthly_returns_heatmap",
    "rolling_performance_chart",
    "exposure_chart",
    "CHART_WIDTH_INCHES",
    "CHART_DPI",
]

#: Width of every chart, in inches (the text width of a report page).
CHART_WIDTH_INCHES = 7.0
#: Resolution of the PNG output.
CHART_DPI = 150

_TITLE_SIZE = 10
_LABEL_SIZE = 8
_TICK_SIZE = 7.5
_LEGEND_SIZE = 7.5

_INK = "#1A1A1A"
_NAVY = "#1F3A5F"
_ORANGE = "#D9822B"
_GREY = "#8A8F98"
_RED = "#C0392B"
_GRID = "#D5DBE1"

_SHADE = {
    "risk_off": ("#F6CFCB", "risk-off regime"),
    "risk_on": ("#D3EBD3", "risk-on regime"),
    None: ("#E9EBEE", "no regime / other"),
}


# --------------------------------------------------------------------------- shared helpers


def _new_figure(height: float, nrows: int = 1, height_ratios: Sequence[float] | None = None,
                sharex: bool = True) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(CHART_WIDTH_INCHES, height), dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.set_facecolor("white")
    if nrows == 1:
        axes = [fig.add_subplot(1, 1, 1)]
    else:
        gs = fig.add_gridspec(nrows, 1, height_ratios=height_ratios)
        axes = [fig.add_subplot(gs[0, 0])]
        for k in range(1, nrows):
            axes.append(fig.add_subplot(gs[k, 0], sharex=axes[0] if sharex else None))
    for ax in axes:
        _style_axes(ax)
    return fig, axes


def _style_axes(ax: Axes) -> None:
    ax.set_facecolor("white")
    ax.grid(True, color=_GRID, linewidth=0.5, linestyle="-")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9AA3AD")
        ax.spines[side].set_linewidth(0.6)
    ax.tick_params(labelsize=_TICK_SIZE, colors="#333333", width=0.6, length=3)
    ax.xaxis.label.set_size(_LABEL_SIZE)
    ax.yaxis.label.set_size(_LABEL_SIZE)


def _title(ax: Axes, title: str) -> None:
    if title:
        ax.set_title(title, fontsize=_TITLE_SIZE, color=_INK, loc="left", fontweight="bold",
                     pad=6)


def _legend(ax: Axes, **kw: Any) -> None:
    defaults: dict[str, Any] = {
        "fontsize": _LEGEND_SIZE,
        "frameon": True,
        "framealpha": 0.9,
        "edgecolor": "#CCCCCC",
        "loc": "upper left",
    }
    defaults.update(kw)
    legend = ax.legend(**defaults)
    legend.get_frame().set_linewidth(0.5)


def _to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=CHART_DPI, facecolor="white",
                metadata={"Software": None})
    return buffer.getvalue()


def _dates(dates: Any) -> pd.DatetimeIndex:
    try:
        index = pd.DatetimeIndex(dates)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"dates must be convertible to a DatetimeIndex: {exc}") from exc
    if len(index) == 0:
        raise ValueError("dates is empty")
    if index.hasnans:
        raise ValueError("dates contains NaT")
    if not index.is_monotonic_increasing:
        raise ValueError("dates must be sorted in increasing order")
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index


def _floats(values: Any, name: str, n: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(
            [np.nan if v is None else v for v in values], dtype=float
        ).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of numbers: {exc}") from exc
    if n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} values but dates has {n}")
    return arr


def _format_dates(ax: Axes, index: pd.DatetimeIndex) -> None:
    span_days = (index[-1] - index[0]).days if len(index) > 1 else 0
    if span_days > 2 * 365:
        years = span_days / 365.25
        step = next(b for b in (1, 2, 5, 10, 20, 50, 100) if years / b <= 10)
        ax.xaxis.set_major_locator(mdates.YearLocator(base=step))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    elif span_days > 45:
        months = span_days / 30.4
        step = next(b for b in (1, 2, 3, 6, 12) if months / b <= 10)
        ax.xaxis.set_major_locator(mdates.MonthLocator(interval=step))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
    else:
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=8))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %Y"))
    if len(index) > 1:
        ax.set_xlim(index[0], index[-1])


def _log_axis(ax: Axes, *series: np.ndarray) -> None:
    ax.set_yscale("log")
    values = np.concatenate([s[np.isfinite(s)] for s in series])
    decades = math.log10(values.max() / values.min()) if values.size else 1.0
    # Enough labelled ticks whether the series spans half a decade or five.
    if decades < 1.0:
        subs: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)
    elif decades < 2.0:
        subs = (1.0, 2.0, 3.0, 5.0)
    elif decades < 4.0:
        subs = (1.0, 2.0, 5.0)
    else:
        subs = (1.0,)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    # Plain numbers instead of 10^k: report readers are not physicists.
    ax.yaxis.set_major_formatter(FuncFormatter(_plain_number))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _plain_number(value: float, _pos: int | None = None) -> str:
    if value <= 0 or not math.isfinite(value):
        return ""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2g}"


def _check_log_series(values: np.ndarray, name: str) -> None:
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError(f"{name} has no finite values")
    if (values[finite] <= 0).any():
        raise ValueError(f"{name} must be positive (it is drawn on a log scale)")


# --------------------------------------------------------------------------- charts


def _family_key(value: object) -> str | None:
    if isinstance(value, str) and value in ("risk_off", "risk_on"):
        return value
    return None


def _family_keys(family: Sequence[object], n: int) -> list[str | None]:
    families = list(family)
    if len(families) != n:
        raise ValueError(f"family has {len(families)} values but dates has {n}")
    return [_family_key(f) for f in families]


def _shade_regimes(axes: Sequence[Axes], index: pd.DatetimeIndex,
                   keys: Sequence[str | None]) -> list[Any]:
    """Shade contiguous regime runs behind every axis; returns one legend handle per family."""
    n = len(index)
    # Each run reaches the next bar so adjacent runs touch.
    x = mdates.date2num(index.to_pydatetime())
    if n > 1:
        edges = np.append(x, x[-1] + (x[-1] - x[-2]))
    else:
        edges = np.array([x[0] - 0.5, x[0] + 0.5])
    runs: dict[str | None, list[tuple[float, float]]] = {}
    start = 0
    for i in range(1, n + 1):
        if i == n or keys[i] != keys[start]:
            runs.setdefault(keys[start], []).append(
                (edges[start], edges[i] - edges[start])
            )
            start = i
    handles: list[Any] = []
    for key in ("risk_off", "risk_on", None):
        if key not in runs:
            continue
        colour, label = _SHADE[key]
        for target in axes:
            target.broken_barh(runs[key], (0, 1), facecolors=colour, edgecolors="none",
                               transform=target.get_xaxis_transform(), zorder=0)
        handles.append(Patch(facecolor=colour, edgecolor="none", label=label))
    return handles


def price_regime_chart(
    dates: pd.DatetimeIndex,
    close: Sequence[float],
    family: Sequence[str | None],
    *,
    risk_off_probability: Sequence[float] | None = None,
    title: str = "",
) -> bytes:
    """Closing price on a log scale over a background shaded by regime.

    Parameters
    ----------
    dates : pandas.DatetimeIndex, shape (n,)
        Bar dates, increasing; timezone-aware dates are shown in UTC.
    close : sequence of float, shape (n,)
        Closing prices, positive; NaN is a gap in the line.
    family : sequence of str or None, shape (n,)
        Regime family per bar: ``"risk_off"`` is shaded light red, ``"risk_on"`` light
        green, anything else (``None``, NaN, other labels) light grey.
    risk_off_probability : sequence of float, shape (n,), optional
        When given, a lower panel shows it on 0..1 with a line at 0.5; NaN is a gap.
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi.

    Raises
    ------
    ValueError
        If ``dates`` is empty or unsorted, a sequence's length differs from ``dates`` (the
        message names it), ``close`` has no finite value or a non-positive one.
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

    if prob is None:
        fig, axes = _new_figure(3.4)
    else:
        fig, axes = _new_figure(4.4, nrows=2, height_ratios=(3, 1))
    ax = axes[0]
    handles = _shade_regimes(axes, index, keys)

    (line,) = ax.plot(index, prices, color=_NAVY, linewidth=0.9, label="close", zorder=3)
    _log_axis(ax, prices)
    ax.set_ylabel("close (log scale)")
    _title(ax, title)
    _legend(ax, handles=[line, *handles], ncols=min(4, 1 + len(handles)))

    if prob is not None:
        pax = axes[1]
        pax.plot(index, prob, color=_RED, linewidth=0.8, zorder=3)
        pax.axhline(0.5, color=_INK, linewidth=0.6, linestyle="--", zorder=2)
        pax.set_ylim(0, 1)
        pax.set_yticks([0, 0.5, 1])
        pax.set_ylabel("P(risk-off)")
        ax.tick_params(labelbottom=False)
        _format_dates(pax, index)
    else:
        _format_dates(ax, index)
    return _to_png(fig)


def _drawdown(equity: np.ndarray) -> np.ndarray:
    peak = pd.Series(equity).cummax().to_numpy()  # skips NaN, unlike np.maximum.accumulate
    return equity / peak - 1.0


def _rebase(values: np.ndarray) -> np.ndarray:
    first = values[np.isfinite(values)][0]
    return values / first


def equity_drawdown_chart(
    dates: pd.DatetimeIndex,
    strategy: Sequence[float],
    benchmark: Sequence[float],
    *,
    strategy_label: str = "strategy",
    benchmark_label: str = "buy and hold",
    family: Sequence[str | None] | None = None,
    title: str = "",
) -> bytes:
    """Equity curves (rebased to 1, log scale) above their drawdowns in percent.

    Parameters
    ----------
    dates : pandas.DatetimeIndex, shape (n,)
        Dates, increasing.
    strategy, benchmark : sequence of float, shape (n,)
        Equity (or price) levels, positive; each is divided by its first finite value. NaN
        is a gap.
    strategy_label, benchmark_label : str
        Legend entries.
    family : sequence of str or None, shape (n,), optional
        Regime family per bar; when given, both panels are shaded as in
        :func:`price_regime_chart`.
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi.

    Raises
    ------
    ValueError
        If ``dates`` is empty or unsorted, a series' length differs from ``dates``, has no
        finite value or a non-positive one.
    """
    index = _dates(dates)
    n = len(index)
    strat = _floats(strategy, "strategy", n)
    bench = _floats(benchmark, "benchmark", n)
    _check_log_series(strat, "strategy")
    _check_log_series(bench, "benchmark")
    strat, bench = _rebase(strat), _rebase(bench)
    keys = None if family is None else _family_keys(family, n)

    fig, (ax, dax) = _new_figure(4.4, nrows=2, height_ratios=(2.2, 1))
    shades = [] if keys is None else _shade_regimes((ax, dax), index, keys)
    ax.plot(index, bench, color=_GREY, linewidth=0.9, label=benchmark_label, zorder=2)
    ax.plot(index, strat, color=_NAVY, linewidth=1.0, label=strategy_label, zorder=3)
    ax.axhline(1.0, color="#9AA3AD", linewidth=0.6, zorder=1)
    _log_axis(ax, strat, bench)
    ax.set_ylabel("growth of 1 (log scale)")
    _title(ax, title)
    lines, _ = ax.get_legend_handles_labels()
    _legend(ax, handles=[*lines, *shades], ncols=1 if not shades else min(3, len(lines) + len(shades)))
    ax.tick_params(labelbottom=False)

    dd_s = _drawdown(strat) * 100
    dd_b = _drawdown(bench) * 100
    dax.fill_between(index, dd_s, 0, where=np.isfinite(dd_s), color=_NAVY, alpha=0.25,
                     linewidth=0, label=strategy_label, zorder=2)
    dax.plot(index, dd_s, color=_NAVY, linewidth=0.6, zorder=3)
    dax.plot(index, dd_b, color=_GREY, linewidth=0.8, label=benchmark_label, zorder=3)
    dax.yaxis.set_major_formatter(PercentFormatter())
    dax.set_ylabel("drawdown")
    low = np.nanmin(np.concatenate([dd_s, dd_b]))
    dax.set_ylim(min(low * 1.08, -1.0), 0.5)
    _format_dates(dax, index)
    return _to_png(fig)


_RELIABILITY_KEYS = ("bin_low", "bin_high", "mean_forecast", "observed_frequency", "count")


def _maybe_float(value: object) -> float:
    if value is None:
        return math.nan
    return float(value)  # type: ignore[arg-type]


def _reliability_bins(rows: Sequence[Mapping[str, float]]) -> tuple[np.ndarray, ...]:
    """Validated bins as arrays: low, high, mean forecast, observed frequency, count (NaN -> 0)."""
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty")
    parsed = []
    for i, row in enumerate(rows):
        missing = [k for k in _RELIABILITY_KEYS if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks key(s) {missing}")
        try:
            parsed.append({k: _maybe_float(row[k]) for k in _RELIABILITY_KEYS})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"rows[{i}] has a non-numeric value: {exc}") from exc
    low, high, mean, observed, count = (np.array([r[k] for r in parsed]) for k in _RELIABILITY_KEYS)
    return low, high, mean, observed, np.nan_to_num(count, nan=0.0)


def reliability_chart(rows: Sequence[Mapping[str, float]], *, title: str = "") -> bytes:
    """Reliability (calibration) diagram: observed frequency against mean forecast.

    Parameters
    ----------
    rows : sequence of mapping
        One per probability bin, with keys ``bin_low``, ``bin_high``, ``mean_forecast``,
        ``observed_frequency`` and ``count``. Bins with ``count`` 0 or a missing/NaN
        ``mean_forecast`` or ``observed_frequency`` are not plotted as points; counts are
        drawn as bars in a lower panel. Marker area grows with the count.
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi. When no bin is populated the panel says so.

    Raises
    ------
    ValueError
        If ``rows`` is empty or a row lacks a key (the message names the row index).
    """
    low, high, mean, observed, count = _reliability_bins(rows)
    ok = (count > 0) & np.isfinite(mean) & np.isfinite(observed)

    fig, (ax, cax) = _new_figure(4.6, nrows=2, height_ratios=(3, 1))
    ax.plot([0, 1], [0, 1], color=_GREY, linewidth=0.8, linestyle="--",
            label="perfect calibration", zorder=2)
    if ok.any():
        sizes = 12 + 140 * np.sqrt(count[ok] / count[ok].max())
        ax.plot(mean[ok], observed[ok], color=_NAVY, linewidth=0.9, zorder=3)
        ax.scatter(mean[ok], observed[ok], s=sizes, color=_NAVY, alpha=0.85,
                   edgecolors="white", linewidths=0.6, zorder=4,
                   label="observed (marker area ~ count)")
    else:
        ax.text(0.5, 0.5, "no populated bins", ha="center", va="center",
                fontsize=_LABEL_SIZE, color=_GREY, transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed frequency")
    ax.tick_params(labelbottom=False)
    _title(ax, title)
    _legend(ax)

    finite_bins = np.isfinite(low) & np.isfinite(high) & (high > low)
    cax.bar(low[finite_bins], count[finite_bins], width=(high - low)[finite_bins],
            align="edge", color=_NAVY, alpha=0.35, edgecolor="white", linewidth=0.5)
    cax.set_ylabel("count")
    cax.set_xlabel("mean forecast probability")
    cax.set_xlim(0, 1)
    return _to_png(fig)


def importance_chart(importance: Mapping[str, float], *, top: int = 12, title: str = "") -> bytes:
    """Horizontal bar chart of the largest feature importances, largest at the top.

    Parameters
    ----------
    importance : mapping of str to float
        Feature name to importance. NaN entries are dropped; bars are ranked by absolute
        value, so negative (e.g. permutation) importances are shown too.
    top : int, default 12
        Number of bars.
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi; the height grows with the number of bars.

    Raises
    ------
    ValueError
        If ``importance`` is empty or all NaN, or ``top`` < 1.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    if not importance:
        raise ValueError("importance is empty")
    items = []
    for name, value in importance.items():
        v = _maybe_float(value)
        if math.isfinite(v):
            items.append((str(name), v))
    if not items:
        raise ValueError("importance has no finite values")
    items.sort(key=lambda kv: (-abs(kv[1]), kv[0]))
    items = items[:top]
    names = [(n if len(n) <= 38 else n[:35] + "...") for n, _ in items][::-1]
    values = np.array([v for _, v in items][::-1])

    fig, (ax,) = _new_figure(0.9 + 0.24 * len(items))
    colours = [_NAVY if v >= 0 else _ORANGE for v in values]
    ax.barh(np.arange(len(values)), values, color=colours, height=0.65, zorder=3)
    ax.set_yticks(np.arange(len(values)), labels=names)
    ax.grid(False, axis="y")
    ax.axvline(0, color="#9AA3AD", linewidth=0.6)
    ax.set_xlabel("importance")
    ax.margins(y=0.02)
    _title(ax, title)
    return _to_png(fig)


def var_backtest_chart(
    dates: pd.DatetimeIndex,
    returns: Sequence[float],
    var: Sequence[float],
    *,
    title: str = "",
) -> bytes:
    """Daily returns against the negative VaR forecast, with exceedances marked.

    Parameters
    ----------
    dates : pandas.DatetimeIndex, shape (n,)
        Dates, increasing.
    returns : sequence of float, shape (n,)
        Simple returns as fractions (0.01 = 1 %); NaN is skipped.
    var : sequence of float, shape (n,)
        VaR forecast for each date as a positive loss fraction; NaN where there is no
        forecast. An exceedance is ``return < -var``.
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi. The legend gives the exceedance count and rate
        over the dates that have both a return and a forecast.

    Raises
    ------
    ValueError
        If ``dates`` is empty or unsorted, or a length differs from ``dates``.
    """
    index = _dates(dates)
    n = len(index)
    ret = _floats(returns, "returns", n)
    forecast = _floats(var, "var", n)
    both = np.isfinite(ret) & np.isfinite(forecast)
    hits = both & (ret < -forecast)
    n_forecasts = int(both.sum())
    n_hits = int(hits.sum())

    fig, (ax,) = _new_figure(3.4)
    have_ret = np.isfinite(ret)
    ax.vlines(index[have_ret], 0, ret[have_ret] * 100, color=_GREY, linewidth=0.5,
              alpha=0.8, label="daily return", zorder=2)
    ax.plot(index, -forecast * 100, color=_NAVY, linewidth=0.9, label="- VaR forecast",
            zorder=3)
    rate = f" ({n_hits / n_forecasts:.1%})" if n_forecasts else ""
    ax.scatter(index[hits], ret[hits] * 100, s=10, color=_RED, zorder=4, linewidths=0,
               label=f"exceedances: {n_hits} of {n_forecasts}{rate}")
    ax.axhline(0, color="#9AA3AD", linewidth=0.6, zorder=1)
    ax.yaxis.set_major_formatter(PercentFormatter())
    ax.set_ylabel("daily return")
    _title(ax, title)
    # Below the axis: returns fill the whole plot area, so any inside spot hides data.
    _legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=3, frameon=False)
    _format_dates(ax, index)
    return _to_png(fig)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _month_grid(table: pd.DataFrame) -> tuple[np.ndarray, list[str], float]:
    """Validated year x month values in percent (NaN blank), the year labels and the colour limit."""
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise ValueError("table must be a non-empty DataFrame")
    try:
        months = [int(c) for c in table.columns]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"table columns must be month numbers: {exc}") from exc
    if any(not 1 <= m <= 12 for m in months):
        raise ValueError("table columns must be month numbers 1..12")
    grid = table.set_axis(months, axis=1).reindex(columns=range(1, 13)).astype(float)
    values = grid.to_numpy() * 100
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError("table has no finite values")
    # The colour scale is symmetric around zero, clipped at the 95th percentile of |value|.
    return values, [str(y) for y in grid.index], float(np.percentile(np.abs(values[finite]), 95)) or 1.0


def monthly_returns_heatmap(table: pd.DataFrame, *, title: str = "") -> bytes:
    """Calendar heatmap of monthly returns: one row per year, one column per month.

    Parameters
    ----------
    table : pandas.DataFrame
        Index: years; columns: months 1..12 (missing columns are added as empty); values:
        returns as fractions. NaN cells are left blank. This is the shape
        :func:`analytics.monthly_returns` returns.
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi; the height grows with the number of years.
        Each cell shows its return in percent; the colour scale (red loss, green gain) is
        symmetric around zero.

    Raises
    ------
    ValueError
        If ``table`` has no rows, a column outside 1..12 or no finite value.
    """
    values, years, limit = _month_grid(table)
    finite = np.isfinite(values)

    fig, (ax,) = _new_figure(0.9 + 0.24 * len(years))
    ax.grid(False)
    masked = np.ma.masked_invalid(values)
    ax.imshow(masked, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto",
              interpolation="nearest")
    for i, j in zip(*np.nonzero(finite), strict=True):
        v = values[i, j]
        # Dark text on the pale middle of the scale, white on the saturated ends.
        colour = "white" if abs(v) > 0.6 * limit else _INK
        label = f"{v:.1f}"
        ax.text(j, i, "0.0" if label == "-0.0" else label, ha="center", va="center", fontsize=6.5, color=colour)
    ax.set_xticks(range(12), labels=_MONTHS)
    ax.set_yticks(range(len(years)), labels=years)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    _title(ax, title)
    return _to_png(fig)


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
) -> bytes:
    """Rolling Sharpe ratio (upper panel) and rolling annualised volatility (lower panel).

    Parameters
    ----------
    dates : pandas.DatetimeIndex, shape (n,)
        Dates, increasing.
    sharpe, volatility : sequence of float, shape (n,)
        The strategy's rolling Sharpe ratio and volatility (a fraction, 0.2 = 20 %); NaN
        before the first full window is a gap.
    benchmark_sharpe, benchmark_volatility : sequence of float, shape (n,), optional
        The benchmark's, drawn in grey.
    strategy_label, benchmark_label : str
        Legend entries.
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi.

    Raises
    ------
    ValueError
        If ``dates`` is empty or unsorted, or a length differs from ``dates``.
    """
    index = _dates(dates)
    n = len(index)
    s_sharpe = _floats(sharpe, "sharpe", n)
    s_vol = _floats(volatility, "volatility", n)
    b_sharpe = None if benchmark_sharpe is None else _floats(benchmark_sharpe, "benchmark_sharpe", n)
    b_vol = None if benchmark_volatility is None else _floats(benchmark_volatility, "benchmark_volatility", n)

    fig, (ax, vax) = _new_figure(4.0, nrows=2, height_ratios=(1, 1))
    if b_sharpe is not None:
        ax.plot(index, b_sharpe, color=_GREY, linewidth=0.8, label=benchmark_label, zorder=2)
    ax.plot(index, s_sharpe, color=_NAVY, linewidth=0.9, label=strategy_label, zorder=3)
    ax.axhline(0, color="#9AA3AD", linewidth=0.6, zorder=1)
    ax.set_ylabel("Sharpe ratio")
    ax.tick_params(labelbottom=False)
    _title(ax, title)
    _legend(ax, ncols=2)
    if b_vol is not None:
        vax.plot(index, b_vol * 100, color=_GREY, linewidth=0.8, zorder=2)
    vax.plot(index, s_vol * 100, color=_NAVY, linewidth=0.9, zorder=3)
    vax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    vax.set_ylabel("volatility (ann.)")
    vax.set_ylim(bottom=0)
    _format_dates(vax, index)
    return _to_png(fig)


def exposure_chart(
    dates: pd.DatetimeIndex,
    weights: Sequence[float],
    *,
    average: Sequence[float] | None = None,
    average_label: str = "trailing average",
    family: Sequence[str | None] | None = None,
    title: str = "",
) -> bytes:
    """Weight held over time, optionally with its trailing average and regime shading.

    Parameters
    ----------
    dates : pandas.DatetimeIndex, shape (n,)
        Dates, increasing.
    weights : sequence of float, shape (n,)
        Weight held over each bar (1 = fully invested); drawn as a step line in percent.
    average : sequence of float, shape (n,), optional
        A smoothed exposure (e.g. the trailing mean of ``|weight|``), drawn on top.
    average_label : str
        Its legend entry.
    family : sequence of str or None, shape (n,), optional
        Regime family per bar for background shading, as in :func:`price_regime_chart`.
    title : str, default ""
        Chart title.

    Returns
    -------
    bytes
        PNG image, 7 inches wide at 150 dpi.

    Raises
    ------
    ValueError
        If ``dates`` is empty or unsorted, or a length differs from ``dates``.
    """
    index = _dates(dates)
    n = len(index)
    w = _floats(weights, "weights", n)
    avg = None if average is None else _floats(average, "average", n)
    keys = None if family is None else _family_keys(family, n)

    fig, (ax,) = _new_figure(2.6)
    shades = [] if keys is None else _shade_regimes((ax,), index, keys)
    ax.step(index, w * 100, where="post", color=_NAVY, linewidth=0.7, label="weight held", zorder=3)
    if avg is not None:
        ax.plot(index, avg * 100, color=_ORANGE, linewidth=1.1, label=average_label, zorder=4)
    ax.axhline(0, color="#9AA3AD", linewidth=0.6, zorder=1)
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_ylabel("exposure")
    finite = w[np.isfinite(w)]
    low = min(0.0, float(finite.min()) * 100) if finite.size else 0.0
    high = max(100.0, float(finite.max()) * 100) if finite.size else 100.0
    ax.set_ylim(low - 5, high + 5)
    _title(ax, title)
    lines, _ = ax.get_legend_handles_labels()
    # Below the axis: the weight fills the panel from 0 to 100 %.
    _legend(ax, handles=[*lines, *shades], loc="upper center", bbox_to_anchor=(0.5, -0.12),
            ncols=len(lines) + len(shades), frameon=False)
    _format_dates(ax, index)
    return _to_png(fig)
