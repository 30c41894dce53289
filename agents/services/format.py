"""Number formatting shared by every front door and the report, and the JSON sanitiser."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["METRIC_ROWS", "format_metric", "format_value", "is_missing", "to_jsonable"]

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


def to_jsonable(value: Any) -> Any:
    """Convert results to plain JSON types: NaN/inf become null, times ISO strings."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (datetime, date)):  # pandas.Timestamp is a datetime
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return to_jsonable(value.to_dict())
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, Iterable):
        return [to_jsonable(v) for v in value]
    return str(value)
