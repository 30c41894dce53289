"""Multi-timeframe regimes: unavailable timeframes, consensus and conflicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analytics._regime_common import REGIME_FAMILIES
from analytics._regime_mtf import (
    DEFAULT_TIMEFRAME_SPECS,
    TIMEFRAMES,
    RegimeConflict,
    TimeframeRegime,
    TimeframeSpec,
    multi_timeframe_regimes,
    regime_consensus,
)


def _tf(tf: str, label: str, p: float = 0.9) -> TimeframeRegime:
    fam = REGIME_FAMILIES[label]
    other = "risk_off" if fam == "risk_on" else "risk_on"
    return TimeframeRegime(
        timeframe=tf, available=True, label=label, family=fam, probability=p,
        family_probabilities={fam: p, other: 1 - p}, as_of=pd.Timestamp("2020-01-03", tz="UTC"),
    )


# -- pure consensus ----------------------------------------------------------------------


def test_consensus_majority_agreement_and_conflicts():
    out = regime_consensus({"LT": _tf("LT", "bull"), "MT": _tf("MT", "calm", 0.7), "ST": _tf("ST", "bear")})
    assert out.consensus_family == "risk_on"
    assert out.consensus_label == "bull"  # tie bull/calm -> the longer timeframe's label
    assert out.agreement == pytest.approx(2 / 3)
    assert out.conflicts == (RegimeConflict("LT", "bull", "ST", "bear"), RegimeConflict("MT", "calm", "ST", "bear"))
    assert out.n_available == 3
    assert out["US"].label == "unavailable" and not out["US"].available
    assert out["US"].reason
    # mean P(risk_on) over available timeframes: (0.9 + 0.7 + 0.1) / 3
    assert out.consensus_probability == pytest.approx((0.9 + 0.7 + 0.1) / 3)
    assert [t.timeframe for t in out.timeframes] == list(TIMEFRAMES)


def test_consensus_weights_and_ties():
    base = {"LT": _tf("LT", "bull"), "MT": _tf("MT", "calm"), "ST": _tf("ST", "bear")}
    heavy = regime_consensus(base, weights={"ST": 3.0})
    assert heavy.consensus_family == "risk_off"
    assert heavy.consensus_label == "bear"
    assert heavy.agreement == pytest.approx(0.6)
    tie = regime_consensus({"MT": _tf("MT", "calm"), "ST": _tf("ST", "high_volatility")})
    assert tie.consensus_family == "mixed" and tie.consensus_label == "mixed"
    assert tie.agreement == 0.5 and math.isnan(tie.consensus_probability)
    assert len(tie.conflicts) == 1


def test_consensus_nothing_available():
    out = regime_consensus({"US": None})
    assert out.consensus_family == "unavailable" and out.consensus_label == "unavailable"
    assert out.n_available == 0 and out.conflicts == ()
    assert math.isnan(out.agreement)
    json.dumps(out.summary())
    assert out.summary()["agreement"] is None


def test_consensus_validation():
    with pytest.raises(ValueError, match="unknown timeframe"):
        regime_consensus({"HT": None})
    with pytest.raises(TypeError, match="RegimeResult"):
        regime_consensus({"MT": "bull"})
    with pytest.raises(TypeError, match="mapping"):
        regime_consensus([("MT", None)])
    with pytest.raises(ValueError, match="weights"):
        regime_consensus({"MT": _tf("MT", "bull")}, weights={"MT": -1.0})
    with pytest.raises(ValueError, match="describes timeframe"):
        regime_consensus({"MT": _tf("ST", "bull")})


# -- end to end on the S&P 500 -----------------------------------------------------------


@pytest.fixture(scope="module")
def sp500_close() -> pd.Series:
    from arch.data import sp500

    close = sp500.load()["Adj Close"]
    close.index = close.index.tz_localize("America/New_York")
    return close


def _weekly_closed(close: pd.Series) -> pd.Series:
    """W-FRI closes of completed weeks only (the week containing the last bar is kept only
    if that bar is its Friday)."""
    weekly = close.resample("W-FRI").last().dropna()
    last = close.index[-1]
    if weekly.index[-1] > last.normalize():
        weekly = weekly.iloc[:-1]
    return weekly


def _logret(x: pd.Series) -> pd.Series:
    return np.log(x).diff().dropna()


def test_weekly_resample_keeps_closed_weeks_only(sp500_close):
    cut = sp500_close[:"2008-12-31"]  # a Wednesday: that week is not closed
    w = _weekly_closed(cut)
    assert w.index[-1] == pd.Timestamp("2008-12-26", tz="America/New_York")
    assert (w.index.day_of_week == 4).all()


def test_crisis_all_timeframes_risk_off(sp500_close):
    cut = sp500_close[:"2008-12-31"]
    daily = _logret(cut)
    out = multi_timeframe_regimes(
        {"LT": _logret(_weekly_closed(cut)), "MT": daily["2003-01-01":], "ST": daily["2006-06-01":], "US": None},
        method="garch",
    )
    for tf in ("LT", "MT", "ST"):
        assert out[tf].available, out[tf].reason
        assert out[tf].family == "risk_off"
        assert out[tf].result is not None and out[tf].result.dates[-1] <= cut.index[-1]
    assert out["US"].label == "unavailable"
    assert out.consensus_family == "risk_off"
    assert out.agreement == 1.0 and out.conflicts == ()
    s = out.summary()
    json.dumps(s)
    assert s["timeframes"]["US"]["available"] is False
    assert s["timeframes"]["MT"]["method"] == "garch"


def test_calm_period_and_insufficient_history(sp500_close):
    cut = sp500_close[:"2006-06-30"]
    daily = _logret(cut)
    out = multi_timeframe_regimes(
        {"MT": daily["2002-06-01":], "ST": daily[-100:]},  # ST: 100 bars < min_train 252
        method="garch",
    )
    assert out["MT"].family == "risk_on"
    assert not out["ST"].available and "min_train" in out["ST"].reason
    assert out["LT"].reason == "no data for this timeframe"
    assert out.consensus_family == "risk_on" and out.n_available == 1


def test_bad_arguments_are_not_swallowed(sp500_close):
    daily = _logret(sp500_close[:"2004-12-31"])
    with pytest.raises(ValueError, match="timezone-aware"):
        multi_timeframe_regimes({"MT": daily.tz_localize(None)}, method="garch")
    with pytest.raises(ValueError, match="unknown timeframe"):
        multi_timeframe_regimes({"D1": daily}, method="garch")
    with pytest.raises(TypeError, match="TimeframeSpec"):
        multi_timeframe_regimes({"MT": daily}, method="garch", specs={"MT": {"min_train": 10}})
    with pytest.raises(ValueError, match="method"):
        multi_timeframe_regimes({"MT": daily}, method="nope")


def test_custom_spec_is_used(sp500_close):
    daily = _logret(sp500_close[:"2004-12-31"])
    spec = TimeframeSpec(min_train=300, refit_every=63, max_train=None, periods_per_year=252.0)
    out = multi_timeframe_regimes({"MT": daily}, method="garch", specs={"MT": spec})
    assert out["MT"].result.min_train == 300
    assert len(out["MT"].result.dates) == len(daily) - 300
    assert DEFAULT_TIMEFRAME_SPECS["MT"].min_train == 504


def test_intraday_us_timeframe_with_default_spec():
    """Five sessions of 5-minute bars (78 a day): enough for the US spec (234-bar first window)."""
    rng = np.random.default_rng(5)
    days = pd.bdate_range("2024-03-04", periods=5)
    idx = pd.DatetimeIndex(
        [d + pd.Timedelta(hours=9, minutes=35) + pd.Timedelta(minutes=5 * i) for d in days for i in range(78)]
    ).tz_localize("America/New_York")
    vol = np.where(np.arange(len(idx)) < 300, 0.0006, 0.0025)  # turbulence in the last session
    us = pd.Series(vol * rng.standard_normal(len(idx)), index=idx)
    out = multi_timeframe_regimes({"US": us}, method="hmm")
    assert out["US"].available
    assert out["US"].result.periods_per_year == 252 * 78
    assert out["US"].family == "risk_off"
    assert out.n_available == 1 and out["MT"].label == "unavailable"
