"""Number formatting shared by every front door and the report (JSON: ``analytics.json_safe``)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["METRIC_ROWS", "finite_or_none", "format_metric", "format_value", "is_missing"]

#: Performance metrics shown by ``backtest`` and the report: (key, label, kind).
METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("volatility", "Volatility", "pct"),
    ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_duration", "Max DD duration (bars)", "int"),
    ("calmar", "Calmar", "num"),
    ("hit_rate", "Hit rate", "pct"),
    ("profit_factor", "Profit factor", "num"),
    ("turnover", "Turnover (per year)", "num"),
    ("exposure", "Exposure", "pct"),
)


def is_missing(v: Any) -> bool:
    """True for a value shown as 'n/a': None, NaN or an infinity."""
    return v is None or (isinstance(v, float) and not math.isfinite(v))


def finite_or_none(v: Any) -> float | None:
    """``float(v)``, or None when it is not a finite number (for JSON: no NaN, no infinity)."""
    if v is None:
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def format_value(v: Any, spec: str = ".2f") -> str:
    """``format(v, spec)``, or 'n/a' when :func:`is_missing`."""
    return "n/a" if is_missing(v) else format(v, spec)


def format_metric(v: Any, kind: str) -> str:
    """One metric value for display: ``kind`` is pct, int or num; missing values are 'n/a'."""
    if is_missing(v):
        return "n/a"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "int":
        return str(int(v))
    return f"{v:.2f}"
