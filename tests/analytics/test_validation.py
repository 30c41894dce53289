"""Every validation rule with a broken fixture, under each policy."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analytics import DataQualityWarning, DataValidationError
from analytics.validation import ValidationPolicy, validate_bars


def _bars(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    idx = pd.bdate_range("2020-01-01", periods=n, tz="UTC", name="timestamp")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame(
        {"open": close * 0.999, "high": close * 1.01, "low": close * 0.98, "close": close, "volume": np.full(n, 1e6)},
        index=idx,
    )


def _run(frame, **policies):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return validate_bars(frame, ValidationPolicy(policies=policies), raise_on_error=False)


def test_clean_bars_have_no_issues():
    clean, report = validate_bars(_bars())
    assert report.ok and not report.issues
    assert len(clean) == 40


def test_order_rule_reports_row_and_sorts():
    b = _bars()
    b = pd.concat([b.iloc[:10], b.iloc[[12]], b.iloc[10:12], b.iloc[13:]])
    clean, report = _run(b)
    assert [(i.rule, i.row) for i in report.issues] == [("order", 11)]
    assert clean.index.is_monotonic_increasing and len(clean) == 40
    _, rep = _run(b, order="error")
    assert not rep.ok


def test_duplicate_rule_keeps_last():
    b = _bars()
    dup = b.iloc[[5]].copy()
    dup["close"] = dup["close"] * 1.001
    dup["high"] = dup["close"] * 1.01
    b = pd.concat([b.iloc[:6], dup, b.iloc[6:]])
    clean, report = _run(b)
    assert [(i.rule, i.row) for i in report.issues] == [("duplicate", 5)]
    assert clean["close"].iloc[5] == dup["close"].iloc[0]
    assert len(clean) == 40


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rule(bad):
    b = _bars()
    b.iloc[7, b.columns.get_loc("close")] = bad
    clean, report = _run(b)
    assert [(i.rule, i.row) for i in report.issues] == [("non_finite", 7)]
    assert len(clean) == 39 and np.isfinite(clean.to_numpy()).all()


def test_non_positive_rule_defaults_to_error():
    b = _bars()
    b.iloc[3, b.columns.get_loc("low")] = 0.0
    with pytest.raises(DataValidationError, match="non_positive at row 3"):
        validate_bars(b)
    clean, report = _run(b, non_positive="repair")
    assert report.ok and len(clean) == 39


def test_high_low_rule_widens_bar():
    b = _bars()
    b.iloc[4, b.columns.get_loc("high")] = b["close"].iloc[4] * 0.95
    b.iloc[9, b.columns.get_loc("low")] = b["open"].iloc[9] * 1.05
    clean, report = _run(b)
    assert [(i.rule, i.row) for i in report.issues] == [("high_low", 4), ("high_low", 9)]
    assert (clean["high"] >= clean[["open", "close"]].max(axis=1)).all()
    assert (clean["low"] <= clean[["open", "close"]].min(axis=1)).all()
    _, rep = _run(b, high_low="error")
    assert len(rep.errors) == 2


def test_volume_rule():
    b = _bars()
    b.iloc[11, b.columns.get_loc("volume")] = -5
    _, report = _run(b)
    assert [(i.rule, i.row, i.action) for i in report.issues] == [("volume", 11, "error")]
    clean, rep = _run(b, volume="repair")
    assert rep.ok and len(clean) == 39


def test_gap_rule():
    b = _bars()
    b = b.drop(b.index[15:25])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        _, report = validate_bars(b, ValidationPolicy(max_gap=pd.Timedelta(days=7)), raise_on_error=False)
    assert [(i.rule, i.row, i.action) for i in report.issues] == [("gap", 15, "flagged")]
    with pytest.raises(DataValidationError, match="gap"):
        validate_bars(b, ValidationPolicy(policies={"gap": "error"}, max_gap=pd.Timedelta(days=7)))


def test_jump_rule_flags_single_bar_move():
    b = _bars(80)
    for col in ("open", "high", "low", "close"):
        b.iloc[60:, b.columns.get_loc(col)] *= 1.5
    with pytest.warns(DataQualityWarning):
        _, report = validate_bars(b, ValidationPolicy(jump_z=8))
    assert [(i.rule, i.row) for i in report.issues] == [("jump", 60)]


def test_policy_rejects_unknown_rule_and_unrepairable():
    with pytest.raises(ValueError, match="unknown rule"):
        ValidationPolicy(policies={"nope": "error"})
    with pytest.raises(ValueError, match="cannot be repaired"):
        ValidationPolicy(policies={"gap": "repair"})


def test_empty_and_malformed_input():
    clean, report = validate_bars(_bars().iloc[:0])
    assert clean.empty and report.ok
    with pytest.raises(DataValidationError, match="missing columns"):
        validate_bars(_bars().drop(columns="volume"))
    with pytest.raises(DataValidationError, match="tz-aware"):
        validate_bars(_bars().tz_localize(None))


def test_error_message_names_rule_row_and_timestamp():
    b = _bars()
    b.iloc[2, b.columns.get_loc("close")] = -1
    with pytest.raises(DataValidationError) as info:
        validate_bars(b)
    assert "row 2" in str(info.value) and "2020-01-03" in str(info.value)
    assert info.value.report.errors[0].rule == "non_positive"
