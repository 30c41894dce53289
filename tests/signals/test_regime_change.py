"""Regime-change forecasts (signals._regime_change): labels, the transition-matrix baseline and
the walk-forward model against it, on hand-made paths and simulated Markov chains with known
switching probabilities."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from analytics import diebold_mariano
from signals import (
    PurgedWalkForwardSplit,
    assert_prefix_invariant,
    baseline_change_probability,
    change_labels,
    family_stay_probability,
    regime_age,
    reliability_table,
    walk_forward_change,
)

H = 21
SPLIT = PurgedWalkForwardSplit(min_train=1000, test_size=250, horizon=H, embargo=5)


def _index(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2000-01-03", periods=n, freq="B", tz="UTC")


def _chain(leave: np.ndarray, rng: np.random.Generator, start: int = 0) -> np.ndarray:
    """Two-state chain: at bar t the state flips to the other with probability leave[t, s_t]."""
    n = leave.shape[0]
    s = np.empty(n, dtype=int)
    s[0] = start
    u = rng.random(n)
    for t in range(1, n):
        s[t] = 1 - s[t - 1] if u[t] < leave[t - 1, s[t - 1]] else s[t - 1]
    return s


def _family(s: np.ndarray, index: pd.DatetimeIndex) -> pd.Series:
    return pd.Series(np.where(s == 0, "risk_on", "risk_off").astype(object), index=index)


# --------------------------------------------------------------------------------------------
# labels and regime age on hand-made paths
# --------------------------------------------------------------------------------------------


def test_change_labels_hand_made_path():
    fam = pd.Series(list("aaabbaaaa"), index=_index(9))
    # t: 0 1 2 3 4 5 6 7 8 ; family changes at bars 3 and 5
    # h=2: t=0 sees 1,2 (a,a) -> 0; t=1 sees 2,3 -> 1; t=2 sees 3,4 -> 1; t=3 sees 4,5 -> 1;
    # t=4 sees 5,6 -> 1; t=5 sees 6,7 -> 0; t=6 sees 7,8 -> 0; t=7, 8 incomplete -> NaN
    got = change_labels(fam, 2).to_numpy()
    np.testing.assert_array_equal(got, [0, 1, 1, 1, 1, 0, 0, np.nan, np.nan])
    # h=1: a change exactly at the next bar
    np.testing.assert_array_equal(change_labels(fam, 1).to_numpy(), [0, 0, 1, 0, 1, 0, 0, 0, np.nan])


def test_change_labels_missing_family_and_short_series():
    fam = pd.Series(["a", "a", None, "a", "a", "b", "unavailable", "b", "b", "b"], index=_index(10))
    got = change_labels(fam, 2).to_numpy()
    # windows t..t+2 touching bar 2 (t=0,1,2) or bar 6 (t=4,5,6) are unknown, even t=4 whose
    # window holds the a->b change at bar 5: a missing bar makes the window incomplete.
    np.testing.assert_array_equal(got, [np.nan, np.nan, np.nan, 1, np.nan, np.nan, np.nan, 0, np.nan, np.nan])
    assert change_labels(pd.Series(["a", "b"], index=_index(2)), 2).isna().all()
    with pytest.raises(ValueError):
        change_labels(fam, 0)


def test_regime_age_hand_made_path():
    fam = pd.Series(["a", "a", "b", "b", "b", None, "b", "a"], index=_index(8))
    np.testing.assert_array_equal(regime_age(fam).to_numpy(), [0, 1, 0, 1, 2, np.nan, 0, 0])


# --------------------------------------------------------------------------------------------
# the baseline
# --------------------------------------------------------------------------------------------


def test_family_stay_probability_sums_the_current_family():
    a0 = np.array([[0.90, 0.06, 0.04], [0.10, 0.70, 0.20], [0.05, 0.15, 0.80]])
    a1 = np.array([[0.80, 0.15, 0.05], [0.30, 0.60, 0.10], [0.02, 0.08, 0.90]])
    fams = [("risk_on", "risk_on", "risk_off"), ("risk_on", "risk_off", "risk_off")]
    fit_index = np.array([0, 0, 1, 1, 1])
    states = np.array([0, 2, 0, 1, 2])
    got = family_stay_probability([a0, a1], fit_index, states, fams)
    np.testing.assert_allclose(got, [0.96, 0.80, 0.80, 0.70, 0.98])
    diag = family_stay_probability([a0, a1], fit_index, states)
    np.testing.assert_allclose(diag, [0.90, 0.80, 0.80, 0.60, 0.90])
    with pytest.raises(ValueError):
        family_stay_probability([a0, a1], np.array([0, 2]), np.array([0, 0]))


@cache
def _markov_case(n: int = 60_000, seed: int = 1):
    p_stay = np.array([0.98, 0.95])
    rng = np.random.default_rng(seed)
    s = _chain(np.broadcast_to(1 - p_stay, (n, 2)), rng)
    idx = _index(n)
    stay = pd.Series(p_stay[s], index=idx)
    return s, _family(s, idx), stay, p_stay


def test_baseline_on_a_markov_chain_is_the_analytic_probability_and_calibrated():
    s, fam, stay, p_stay = _markov_case()
    base = baseline_change_probability(stay, H)
    exact = 1.0 - p_stay**H  # P(leave within 21 bars) of a 2-state chain
    np.testing.assert_allclose(base.to_numpy(), exact[s], rtol=0, atol=1e-15)
    assert exact[0] == pytest.approx(0.34574, abs=1e-5) and exact[1] == pytest.approx(0.65944, abs=1e-5)
    y = change_labels(fam, H)
    ok = y.notna().to_numpy()
    for state in (0, 1):
        m = ok & (s == state)
        # about 60 000 / (21 + 30) independent windows: standard error of a frequency ~0.007
        assert y.to_numpy()[m].mean() == pytest.approx(exact[state], abs=0.025)
    b, yy = base.to_numpy()[ok], y.to_numpy()[ok]
    brier = np.mean((b - yy) ** 2)
    assert brier == pytest.approx(np.mean(b * (1 - b)), abs=0.01)  # calibrated: E[(p - y)^2] = p(1 - p)
    # the state-blind forecast (the chain's average change rate) scores worse
    pooled = np.full_like(b, yy.mean())
    assert brier < np.mean((pooled - yy) ** 2) - 0.01
    for row in reliability_table(b, yy):
        assert row["observed_frequency"] == pytest.approx(row["mean_forecast"], abs=0.025)


# --------------------------------------------------------------------------------------------
# the walk-forward model
# --------------------------------------------------------------------------------------------


@cache
def _covariate_case(n: int = 6000, seed: int = 3):
    """Switching probability depends on an observed persistent covariate x."""
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = 0.0
    e = rng.standard_normal(n)
    for t in range(1, n):
        x[t] = 0.97 * x[t - 1] + np.sqrt(1 - 0.97**2) * e[t]
    leave = 1.0 / (1.0 + np.exp(-(-4.0 + 1.5 * x)))
    s = _chain(np.column_stack([leave, leave]), rng)
    idx = _index(n)
    fam = _family(s, idx)
    # the baseline a fitted transition matrix gives: the average leaving rate, blind to x
    switches = np.count_nonzero(s[1:] != s[:-1]) / (n - 1)
    stay = pd.Series(1.0 - switches, index=idx)
    stay.iloc[:300] = np.nan  # no transition matrix before the first regime fit
    feats = pd.DataFrame({"x": x, "noise": rng.standard_normal(n)}, index=idx)
    return feats, fam, stay


def test_model_beats_the_baseline_when_switching_depends_on_a_covariate():
    feats, fam, stay = _covariate_case()
    res = walk_forward_change(feats, fam, stay, H, SPLIT)
    assert res.n > 3500
    assert res.skill > 0.1
    assert res.brier_model < res.brier_baseline
    assert res.dm is not None and res.dm.statistic < 0 and res.dm.p_value < 1e-3
    assert res.beats_baseline_next
    assert all(f["c"] in (0.001, 0.01, 0.1, 1.0) for f in res.folds)  # the penalty chosen per fold
    flags = [f["beats_baseline"] for f in res.folds]
    assert flags[0] is False  # nothing known before the first fold
    assert all(flags[3:])
    # the scores are those of the returned series on the scored bars
    m = res.scored.to_numpy()
    y = res.labels.to_numpy()[m]
    em, eb = (res.probability.to_numpy()[m] - y) ** 2, (res.baseline.to_numpy()[m] - y) ** 2
    assert res.brier_model == pytest.approx(em.mean(), rel=1e-12)
    assert res.brier_baseline == pytest.approx(eb.mean(), rel=1e-12)
    assert res.dm.statistic == pytest.approx(diebold_mariano(em, eb, H).statistic, rel=1e-12)
    gated = np.where(res.beats_baseline.to_numpy()[m], em, eb).mean()
    assert res.brier_gated == pytest.approx(gated, rel=1e-12)
    assert res.brier_gated < res.brier_baseline
    # no forecast where the baseline is unknown, none before the first fold
    assert res.probability.iloc[:SPLIT.min_train].isna().all()


def test_model_does_not_beat_an_exact_baseline():
    s, fam, stay, _ = _markov_case(n=6000, seed=5)
    rng = np.random.default_rng(7)
    feats = pd.DataFrame(rng.standard_normal((len(s), 3)), index=fam.index, columns=["a", "b", "c"])
    res = walk_forward_change(feats, fam, stay, H, SPLIT)
    assert res.n > 4000
    assert res.skill < 0.02
    assert not res.beats_baseline_next
    assert not any(f["beats_baseline"] for f in res.folds)
    assert res.brier_gated == pytest.approx(res.brier_baseline, rel=1e-12)


def test_walk_forward_predictions_are_prefix_invariant():
    feats, fam, stay = _covariate_case()
    frame = feats.assign(family=fam, stay=stay).iloc[:3200]

    def make(df: pd.DataFrame) -> pd.DataFrame:
        res = walk_forward_change(df[["x", "noise"]], df["family"], df["stay"], H, SPLIT)
        return pd.DataFrame({"p": res.probability, "beats": res.beats_baseline.astype(float),
                             "baseline": res.baseline})

    assert_prefix_invariant(make, frame, [1600, 2400, 2777], rtol=1e-7, atol=1e-9)


def test_walk_forward_change_checks_its_inputs():
    feats, fam, stay = _covariate_case()
    with pytest.raises(ValueError, match="splitter.horizon"):
        walk_forward_change(feats, fam, stay, H, PurgedWalkForwardSplit(horizon=5))
    with pytest.raises(ValueError, match="one index"):
        walk_forward_change(feats.iloc[1:], fam, stay, H, SPLIT)
    with pytest.raises(ValueError, match="cs"):
        walk_forward_change(feats, fam, stay, H, SPLIT, cs=(0.0,))
    with pytest.raises(ValueError, match="alpha"):
        walk_forward_change(feats, fam, stay, H, SPLIT, alpha=1.5)


def test_a_single_penalty_is_used_as_given_and_a_heavy_one_shrinks_to_the_base_rate():
    feats, fam, stay = _covariate_case()
    res = walk_forward_change(feats, fam, stay, H, SPLIT, cs=(1e-8,))
    assert {f["c"] for f in res.folds} == {1e-8}
    # with (almost) every coefficient shrunk to zero, each fold forecasts its training change rate
    y = res.labels.to_numpy()
    for _tr, te in SPLIT.split(feats):
        rows = np.arange(te[0] - H - SPLIT.embargo)
        rate = np.nanmean(y[rows][stay.notna().to_numpy()[rows]])
        np.testing.assert_allclose(res.probability.to_numpy()[te], rate, atol=1e-4)
