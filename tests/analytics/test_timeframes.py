"""The timeframe table: pinned values, what derives from it, and one ``TimeframeSpec`` class."""

from __future__ import annotations

import ast
import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analytics
from analytics import BAR_COLUMNS, PersistenceRule, Timeframe, resample_bars
from analytics import _regime_mtf as mtf
from analytics.timeframes import (
    DEFAULT_TIMEFRAME_SPECS,
    TIMEFRAME_TABLE,
    TIMEFRAMES,
    AnalysisTimeframe,
    TimeframeSpec,
)

ROOT = Path(__file__).resolve().parents[2]

#: The table as it is meant to be; change it here only together with the table (and the docs).
PINNED = {
    "LT": ("long term", "1W", 156, "1D", "weekly",
           TimeframeSpec(104, 4, None, 52.0, PersistenceRule(0.8, 2))),
    "MT": ("medium term", "1D", 252, None, "daily",
           TimeframeSpec(504, 21, None, 252.0, PersistenceRule(0.8, 5))),
    "ST": ("short term", "1D", 63, None, "daily",
           TimeframeSpec(252, 21, 504, 252.0, PersistenceRule(0.8, 5))),
    "US": ("ultra-short", "5Min", 390, None, "intraday",
           TimeframeSpec(234, 78, 780, 19656.0, PersistenceRule(0.8, 6))),
}


def test_the_table_values_are_pinned():
    got = {
        name: (row.meaning, str(row.bar), row.lookback,
               None if row.resampled_from is None else str(row.resampled_from), row.bar_kind, row.spec)
        for name, row in TIMEFRAME_TABLE.items()
    }
    assert got == PINNED
    assert list(TIMEFRAME_TABLE) == ["LT", "MT", "ST", "US"]  # longest first: the order of listings
    assert all(name == row.name for name, row in TIMEFRAME_TABLE.items())
    assert TIMEFRAME_TABLE["US"].spec.periods_per_year == 252 * 78  # 78 five-minute bars a session


def test_names_and_default_specs_derive_from_the_table():
    assert TIMEFRAMES == ("LT", "MT", "ST", "US")
    assert dict(DEFAULT_TIMEFRAME_SPECS) == {name: row.spec for name, row in TIMEFRAME_TABLE.items()}
    # the multi-timeframe module and the package re-export the same objects, not copies
    assert mtf.TimeframeSpec is analytics.TimeframeSpec is TimeframeSpec
    assert mtf.TIMEFRAMES is analytics.TIMEFRAMES is TIMEFRAMES
    assert mtf.DEFAULT_TIMEFRAME_SPECS is analytics.DEFAULT_TIMEFRAME_SPECS is DEFAULT_TIMEFRAME_SPECS
    assert analytics.TIMEFRAME_TABLE is TIMEFRAME_TABLE and analytics.AnalysisTimeframe is AnalysisTimeframe


def test_the_table_cannot_be_changed_in_place():
    with pytest.raises(TypeError):
        TIMEFRAME_TABLE["XX"] = TIMEFRAME_TABLE["LT"]  # type: ignore[index]
    with pytest.raises(TypeError):
        DEFAULT_TIMEFRAME_SPECS["LT"] = TIMEFRAME_TABLE["MT"].spec  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        TIMEFRAME_TABLE["LT"].lookback = 1  # type: ignore[misc]


def test_the_resampling_rule_builds_the_default_bars():
    # LT's weekly bars come from closed daily bars: weeks stamped with their Friday, the
    # partial last week (Mon 2024-01-15 .. Tue 2024-01-16) not emitted.
    lt = TIMEFRAME_TABLE["LT"]
    days = pd.bdate_range("2024-01-01", "2024-01-16", tz="UTC")
    close = np.arange(1.0, len(days) + 1)
    daily = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
                         index=days)
    weekly = resample_bars(daily, lt.resampled_from, lt.bar)
    assert [t.date().isoformat() for t in weekly.index] == ["2024-01-05", "2024-01-12"]
    assert weekly["close"].tolist() == [5.0, 10.0] and weekly["volume"].tolist() == [5.0, 5.0]
    # daily bars cannot be built by resampling (sessions come from the source): MT and ST say so
    minutes = pd.date_range("2024-01-02 14:30", periods=12, freq="5min", tz="UTC")
    intraday = pd.DataFrame({c: 1.0 for c in BAR_COLUMNS}, index=minutes)
    for name in ("MT", "ST"):
        row = TIMEFRAME_TABLE[name]
        assert row.resampled_from is None and row.bar == Timeframe(1, "D")
        with pytest.raises(ValueError, match="sessions come from the data source"):
            resample_bars(intraday, Timeframe(5, "Min"), row.bar)


# -- one TimeframeSpec class in the project ---------------------------------------------------

_SKIP_DIRS = {".venv", "venv", ".git", "build", "dist", "node_modules", "__pycache__"}


def classes_named(root: Path, name: str) -> list[str]:
    """``path:line`` of every ``class <name>`` statement in the ``.py`` files under ``root``."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs
                         if d not in _SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info"))
        for file in sorted(files):
            if not file.endswith(".py"):
                continue
            path = Path(folder) / file
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            found += [f"{path.relative_to(root).as_posix()}:{node.lineno}" for node in ast.walk(tree)
                      if isinstance(node, ast.ClassDef) and node.name == name]
    return found


def test_there_is_one_timeframespec_class_in_the_project():
    assert [where.split(":")[0] for where in classes_named(ROOT, "TimeframeSpec")] == [
        "analytics/timeframes.py"
    ]


def test_the_one_class_scan_can_fail(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("class TimeframeSpec:\n    pass\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text(
        "import x\n\n\ndef f():\n    class TimeframeSpec(x.Base):\n        pass\n"
        "TimeframeSpec_text = 'class TimeframeSpec'\n"
    )
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "c.py").write_text("class TimeframeSpec:\n    pass\n")
    assert classes_named(tmp_path, "TimeframeSpec") == ["pkg/a.py:1", "pkg/sub/b.py:5"]
