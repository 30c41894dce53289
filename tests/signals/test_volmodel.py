"""Walk-forward volatility forecasts: baselines on the same folds, known truth, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics._volforecast import (
    GarchParams,
    diebold_mariano,
    fit_garch,
    fit_har,
    garch_cumulative_variance,
    garch_variance,
    har_regressors,
    qlike,
    realised_variance_target,
)
from analytics.errors import InsufficientDataError
from signals._guards import LeakageError, assert_prefix_invariant, prefix_violations
from signals._split import PurgedWalkForwardSplit
from signals._volmodel import VOL_MODELS, walk_forward_vol
from tests.signals._bars import random_walk_bars

H = 5
MIN_TRAIN, TEST_SIZE, EMBARGO = 1000, 250, 5


def garch_bars(n: int, seed: int, omega: float = 0.02, alpha: float = 0.08, beta: float = 0.9):
    """Bars whose log returns x 100 follow a zero-mean GARCH(1,1), and the true ``s2_{t+1|t}`` per bar."""
    rng = np.random.default_rng(seed)
    s2 = omega / (1 - alpha - beta)
    r = np.empty(n - 1)
    nxt = np.empty(n)
    nxt[0] = s2
    for t in range(n - 1):
        r[t] = np.sqrt(s2) * rng.standard_normal()
        s2 = omega + alpha * r[t] ** 2 + beta * s2
        nxt[t + 1] = s2
    r /= 100.0
    close = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * np.exp(np.abs(0.002 * rng.standard_normal(n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(0.002 * rng.standard_normal(n)))
    volume = np.exp(13.0 + 0.3 * rng.standard_normal(n))
    index = pd.bdate_range("2005-01-03", periods=n, tz="UTC", name="time")
    bars = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)
    return bars, nxt / 1e4


@pytest.fixture(scope="module")
def sim():
    bars, true_next = garch_bars(3000, seed=0)
    res = walk_forward_vol(bars, H, min_train=MIN_TRAIN, test_size=TEST_SIZE, embargo=EMBARGO)
    return bars, true_next, res


def test_truth_beats_all_and_garch_beats_ewma(sim):
    bars, true_next, res = sim
    f = res.forecasts
    s = f["scored"].to_numpy()
    rv = f["realised"].to_numpy()
    truth = garch_cumulative_variance(true_next, GarchParams(0.0, 0.02e-4, 0.08, 0.9, 0.0, 0), H)
    true_q = float(np.mean(qlike(truth[s], rv[s])))
    q = {m: res.scores[m].qlike for m in (*VOL_MODELS, "chosen")}
    assert q["garch"] < q["ewma"]
    assert all(true_q < v for v in q.values()), (true_q, q)
    # The stated margins (issue 27 acceptance; measured on seeds 0-2: chosen +0.002..+0.011,
    # XGBoost +0.050..+0.063 above the true model's QLIKE): the walk-forward choice is within 0.02
    # of the truth, the XGBoost model within 0.08.
    assert q["chosen"] - true_q < 0.02 and q["xgboost"] - true_q < 0.08, (true_q, q)
    # the scored bars are the test folds' bars with a complete future: 8 folds from bar 1000
    assert res.scores["har"].n == int(s.sum()) == 3000 - MIN_TRAIN - H
    assert all(sc.n == res.scores["har"].n for sc in res.scores.values())
    # GARCH fitted on every fold is near the truth (alpha 0.08, beta 0.9)
    for fold in res.folds:
        _, _, alpha, beta = fold["garch_params"]
        assert abs(alpha - 0.08) < 0.05 and abs(beta - 0.9) < 0.07


def test_baselines_are_fitted_on_each_folds_training_rows_only(sim):
    bars, _, res = sim
    r = np.log(bars["close"]).diff()
    rv = realised_variance_target(r, H).to_numpy()
    har = har_regressors(r)
    splits = list(PurgedWalkForwardSplit(MIN_TRAIN, TEST_SIZE, H, EMBARGO).split(bars))
    assert len(splits) == len(res.folds) == 8
    for k in (0, 5):
        tr, te = splits[k]
        assert tr[-1] + H + EMBARGO < te[0]
        assert res.folds[k]["test_start"] == bars.index[te[0]] and res.folds[k]["train_end"] == bars.index[tr[-1]]
        hm = fit_har(har.iloc[tr], rv[tr])
        np.testing.assert_allclose(res.forecasts["har"].to_numpy()[te], np.maximum(
            hm.params[0] + har.iloc[te].to_numpy() @ np.asarray(hm.params[1:]), hm.floor), rtol=1e-12)
        ra = r.to_numpy()
        a, b = max(tr[0], 1), tr[-1] + H  # the returns the training rows and their targets read
        gp = fit_garch(ra[a:b + 1])
        one = garch_variance(ra[a:te[-1] + 1], gp)
        expected = garch_cumulative_variance(one, gp, H)[te - a] + H * gp.mu**2
        np.testing.assert_allclose(res.forecasts["garch"].to_numpy()[te], expected, rtol=1e-10)
        assert res.folds[k]["garch_params"] == pytest.approx((gp.mu, gp.omega, gp.alpha, gp.beta), rel=1e-12)
    # outside the test folds there is no forecast
    assert res.forecasts[list(VOL_MODELS)].iloc[:MIN_TRAIN].isna().all().all()


def test_scores_and_dm_against_har(sim):
    _, _, res = sim
    f = res.forecasts
    s = f["scored"].to_numpy()
    rv = f["realised"].to_numpy()[s]
    ref = qlike(f["har"].to_numpy()[s], rv)
    for m in ("garch", "ewma", "xgboost", "chosen"):
        loss = qlike(f[m].to_numpy()[s], rv)
        assert res.scores[m].qlike == pytest.approx(loss.mean(), rel=1e-12)
        dm = diebold_mariano(loss, ref, H)
        assert res.scores[m].dm_qlike == dm
        m_log = (np.log(f[m].to_numpy()[s]) - np.log(rv)) ** 2
        assert res.scores[m].mse_log == pytest.approx(m_log.mean(), rel=1e-12)
    assert res.scores["har"].dm_qlike is None and res.scores["har"].dm_mse_log is None
    table = res.table()
    assert list(table.index) == [*VOL_MODELS, "chosen"]
    assert table.loc["garch", "p_qlike"] == pytest.approx(res.scores["garch"].dm_qlike.p_value)


def test_winner_by_fold_is_chosen_on_earlier_realised_losses(sim):
    bars, _, res = sim
    f = res.forecasts
    assert res.winner_by_fold[0] == "har"
    s = f["scored"].to_numpy()
    rv = f["realised"].to_numpy()
    pos = np.arange(len(f))
    losses = {m: qlike(f[m].to_numpy(), rv) for m in VOL_MODELS}
    for k, fold in enumerate(res.folds):
        start = bars.index.get_loc(fold["test_start"])
        known = s & (pos + H <= start)  # only targets fully realised at the fold's first bar
        if k:
            assert known.any() and not (s & (pos + H > start) & (pos < start) & known).any()
            best = min(VOL_MODELS, key=lambda m: losses[m][known].mean())
            assert res.winner_by_fold[k] == best
        fold_rows = f["fold"].to_numpy() == k
        np.testing.assert_array_equal(f["chosen"].to_numpy()[fold_rows],
                                      f[res.winner_by_fold[k]].to_numpy()[fold_rows])
    best_all = min(VOL_MODELS, key=lambda m: losses[m][s].mean())
    assert res.next_choice == best_all
    assert len(set(res.winner_by_fold)) >= 2  # the choice moved with the evidence on this series


def test_forecasts_are_prefix_invariant():
    bars = random_walk_bars(1150, seed=3)

    def make(b: pd.DataFrame) -> pd.DataFrame:
        res = walk_forward_vol(b, H, min_train=600, test_size=120, embargo=3)
        return res.forecasts[[*VOL_MODELS, "chosen", "fold"]]

    assert_prefix_invariant(make, bars, [780, 1000])


def test_the_leakage_guard_catches_the_target():
    # the realised column looks ahead by construction: the guard must flag it (the check can fail)
    bars = random_walk_bars(800, seed=4)

    def make(b: pd.DataFrame) -> pd.DataFrame:
        return walk_forward_vol(b, H, min_train=600, test_size=100, embargo=3).forecasts[["realised", "har"]]

    assert prefix_violations(make, bars, [750]) == {"realised": 750}
    with pytest.raises(LeakageError):
        assert_prefix_invariant(make, bars, [750])


def test_bad_arguments_and_too_little_data():
    bars = random_walk_bars(300, seed=5)
    with pytest.raises(ValueError):
        walk_forward_vol(bars, 0)
    with pytest.raises(InsufficientDataError):
        walk_forward_vol(bars, H, min_train=100, test_size=500)  # one fold, 90 training rows
