"""Classifier: planted signal is found out of sample, model selection stays in the window,
metrics agree with scikit-learn, contributions add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from analytics import InsufficientDataError
from signals import (
    ModelConfig,
    PurgedWalkForwardSplit,
    fit_classifier,
    prediction_contributions,
    reliability_table,
    signal_metrics,
    walk_forward_predict,
)

FAST = ModelConfig(max_trees=150, early_stopping_rounds=20)


def planted(n: int, seed: int, strength: float = 1.5) -> tuple[pd.DataFrame, pd.Series]:
    """``signal`` sets P(y=1) = expit(strength * signal); two noise columns (one with NaN)."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2012-01-02", periods=n, tz="UTC")
    X = pd.DataFrame(
        {
            "noise_a": rng.standard_normal(n),
            "signal": rng.standard_normal(n),
            "noise_b": rng.standard_normal(n),
        },
        index=idx,
    )
    X.iloc[:30, 2] = np.nan  # XGBoost handles missing values natively
    y = pd.Series((rng.random(n) < expit(strength * X["signal"])).astype(float), index=idx)
    y.iloc[-1] = np.nan  # the last label is unknown, as with a 1-bar horizon
    return X, y


@pytest.fixture(scope="module")
def data():
    return planted(1200, seed=1)


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return fit_classifier(X.iloc[:700], y.iloc[:700], horizon=3, config=FAST)


def test_walk_forward_finds_the_planted_signal(data):
    X, y = data
    sp = PurgedWalkForwardSplit(min_train=400, test_size=200, horizon=1, embargo=1)
    seen = []
    res = walk_forward_predict(X, y, sp, FAST, progress=lambda k, total: seen.append((k, total)))
    assert seen == [(k, 4) for k in range(1, 5)]
    p = res.probability
    assert p.iloc[:400].isna().all() and p.iloc[400:].notna().all()
    assert len(res.folds) == 4 and all("skipped" not in f for f in res.folds)
    assert list(res.fold_starts) == [X.index[s] for s in (400, 600, 800, 1000)]
    for f in res.folds:
        assert f["train_end"] < f["test_start"]
        assert 1 <= f["n_trees"] <= FAST.max_trees and f["max_depth"] in FAST.depths
    m = res.metrics
    assert m.n == 1200 - 400 - 1  # scored where the label is known
    # the oracle AUC of expit(1.5 x) is ~0.80; a fitted model gets most of it
    oracle = roc_auc_score(y.iloc[400:-1], X["signal"].iloc[400:-1])
    assert m.auc > 0.72 and m.auc <= oracle + 0.02
    assert m.brier < m.brier_climatology - 0.03
    assert m.auc == pytest.approx(roc_auc_score(y.iloc[400:-1], p.iloc[400:-1]))


def test_walk_forward_without_signal_is_near_chance():
    X, y = planted(1200, seed=2, strength=0.0)
    sp = PurgedWalkForwardSplit(min_train=400, test_size=200, horizon=1, embargo=1)
    res = walk_forward_predict(X, y, sp, FAST)
    assert abs(res.metrics.auc - 0.5) < 0.06


def test_walk_forward_records_skipped_folds_and_checks_index(data):
    X, y = data
    y2 = y.copy()
    y2.iloc[:400] = 1.0  # the first fold (train rows 0..397) holds one class only
    sp = PurgedWalkForwardSplit(min_train=400, test_size=200, horizon=1, embargo=1)
    res = walk_forward_predict(X, y2, sp, FAST)
    assert "one class" in res.folds[0]["skipped"]
    assert res.probability.iloc[400:600].isna().all()
    assert res.probability.iloc[600:].notna().all()
    with pytest.raises(ValueError, match="share one index"):
        walk_forward_predict(X, y.iloc[1:], sp, FAST)


def test_early_stopping_and_tree_count(fitted, data):
    assert 1 <= fitted.n_trees <= FAST.max_trees
    assert fitted.max_depth in FAST.depths
    # the final model holds exactly the chosen trees
    assert len(fitted.model.get_booster().get_dump()) == fitted.n_trees
    # on pure noise early stopping cuts the model short of max_trees
    X, y = planted(600, seed=9, strength=0.0)
    cfg = ModelConfig(max_trees=300, early_stopping_rounds=10)
    noise = fit_classifier(X, y, horizon=1, config=cfg)
    assert noise.n_trees < 300


def test_validation_rows_are_the_end_of_the_window(fitted, data):
    X, y = data
    Xw, yw = X.iloc[:700], y.iloc[:700]
    n_labelled = int(yw.notna().sum())
    assert fitted.n_train + 3 + fitted.n_validation == n_labelled == 700
    assert fitted.n_validation == round(0.2 * 700)
    # the reported validation loss is that of the final model on the last n_validation rows
    tail = slice(700 - fitted.n_validation, 700)
    p = fitted.predict_proba(Xw.iloc[tail])
    assert fitted.validation_logloss == pytest.approx(log_loss(yw.iloc[tail], p), abs=1e-5)
    # ... and not on the rows just before them
    before = slice(700 - 2 * fitted.n_validation, 700 - fitted.n_validation)
    other = log_loss(yw.iloc[before], fitted.predict_proba(Xw.iloc[before]))
    assert abs(other - fitted.validation_logloss) > 1e-3


def test_validation_counts_labelled_rows_only(data):
    X, y = data
    y2 = y.iloc[:400].copy()
    y2.iloc[:50] = np.nan  # e.g. labels needing a volatility warm-up
    y2.iloc[-5:] = np.nan
    fm = fit_classifier(X.iloc[:400], y2, horizon=5, config=FAST)
    assert fm.n_train + 5 + fm.n_validation == 345
    assert fm.n_validation == max(20, round(0.2 * 345))


def test_insufficient_data(data):
    X, y = data
    fit_classifier(X.iloc[:100], y.iloc[:100], horizon=1, config=FAST)  # 100 rows: enough
    with pytest.raises(InsufficientDataError, match="at least 100"):
        fit_classifier(X.iloc[:99], y.iloc[:99], horizon=1, config=FAST)
    y_nan = y.iloc[:150].copy()
    y_nan.iloc[::3] = np.nan  # 100 labelled rows of 150
    with pytest.raises(InsufficientDataError, match="got 99"):
        y_short = y_nan.copy()
        y_short.iloc[1] = np.nan
        fit_classifier(X.iloc[:150], y_short, horizon=1, config=FAST)
    with pytest.raises(InsufficientDataError, match="one class"):
        fit_classifier(X.iloc[:300], pd.Series(1.0, index=X.index[:300]), horizon=1, config=FAST)
    y_tail = y.iloc[:300].copy()
    y_tail.iloc[-60:] = 0.0  # the validation part holds one class only
    with pytest.raises(InsufficientDataError, match="one class"):
        fit_classifier(X.iloc[:300], y_tail, horizon=1, config=FAST)
    with pytest.raises(InsufficientDataError, match="too short"):
        fit_classifier(X.iloc[:100], y.iloc[:100], horizon=40, config=FAST)


def test_predict_proba_by_column_name(fitted, data):
    X = data[0].iloc[700:760]
    p = fitted.predict_proba(X)
    assert p.shape == (60,) and ((p > 0) & (p < 1)).all()
    np.testing.assert_array_equal(fitted.predict_proba(X[X.columns[::-1]]), p)
    with pytest.raises(ValueError, match="missing: signal"):
        fitted.predict_proba(X.drop(columns="signal"))
    # the planted column drives the forecast
    assert np.corrcoef(p, X["signal"])[0, 1] > 0.8


def test_contributions_sum_to_log_odds(fitted, data):
    X = data[0].iloc[700:900]
    c = prediction_contributions(fitted, X)
    assert list(c.columns) == ["noise_a", "signal", "noise_b", "bias"]
    assert c.index.equals(X.index)
    np.testing.assert_allclose(c.sum(axis=1), logit(fitted.predict_proba(X)), atol=1e-4)
    assert c["signal"].abs().mean() > 2 * max(c["noise_a"].abs().mean(), c["noise_b"].abs().mean())


def test_gain_importance(fitted):
    g = fitted.gain_importance()
    assert list(g) == ["noise_a", "signal", "noise_b"]
    assert sum(g.values()) == pytest.approx(1.0)
    assert all(v >= 0 for v in g.values())
    assert g["signal"] > 0.5


# --- metrics -------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(20, 400))
def test_signal_metrics_match_sklearn(seed, n):
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    y = (rng.random(n) < p).astype(float)
    y[:2] = [0.0, 1.0]  # both classes present
    m = signal_metrics(p, y)
    assert m.n == n
    assert m.base_rate == pytest.approx(y.mean())
    assert m.auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m.log_loss == pytest.approx(log_loss(y, p), abs=1e-12)
    assert m.brier_climatology == pytest.approx(brier_score_loss(y, np.full(n, y.mean())))
    assert m.accuracy == pytest.approx(np.mean((p > 0.5) == (y == 1)))
    assert sum(r["count"] for r in m.reliability) == n
    d = m.to_dict()
    assert d["auc"] == m.auc and isinstance(d["reliability"], list)


def test_signal_metrics_drops_non_finite_and_checks_input():
    rng = np.random.default_rng(0)
    p = rng.random(60)
    y = (rng.random(60) < 0.5).astype(float)
    p2, y2 = p.copy(), y.copy()
    p2[5] = np.nan
    y2[7] = np.nan
    keep = np.ones(60, bool)
    keep[[5, 7]] = False
    m = signal_metrics(p2, y2)
    assert m.n == 58
    assert m.auc == pytest.approx(roc_auc_score(y[keep], p[keep]))
    with pytest.raises(InsufficientDataError, match="at least 20"):
        signal_metrics(p[:19], y[:19])
    with pytest.raises(InsufficientDataError, match="one class"):
        signal_metrics(p, np.ones(60))


@settings(max_examples=50, deadline=None)
@given(
    p=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200),
    bins=st.integers(1, 20),
)
def test_reliability_table(p, bins):
    p = np.asarray(p)
    y = (p > 0.3).astype(float)
    rows = reliability_table(p, y, bins=bins)
    assert sum(r["count"] for r in rows) == p.size
    width = 1.0 / bins
    for r in rows:
        assert r["count"] > 0
        assert r["bin_high"] == pytest.approx(r["bin_low"] + width)
        assert r["bin_low"] - 1e-12 <= r["mean_forecast"] <= r["bin_high"] + 1e-12
        assert 0.0 <= r["observed_frequency"] <= 1.0
    lows = [r["bin_low"] for r in rows]
    assert lows == sorted(set(lows))


def test_reliability_table_values():
    p = np.array([0.05, 0.15, 0.12, 0.95, 1.0, 0.0])
    y = np.array([0, 1, 0, 1, 1, 0])
    rows = reliability_table(p, y, bins=10)
    assert [(r["bin_low"], r["count"]) for r in rows] == [(0.0, 2), (0.1, 2), (0.9, 2)]
    assert rows[0]["mean_forecast"] == pytest.approx(0.025)
    assert rows[1]["observed_frequency"] == pytest.approx(0.5)
    assert rows[2]["mean_forecast"] == pytest.approx(0.975)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"depths": ()},
        {"depths": (0,)},
        {"depths": (13,)},
        {"learning_rate": 0.0},
        {"learning_rate": 1.5},
        {"max_trees": 0},
        {"early_stopping_rounds": 0},
        {"validation_fraction": 0.01},
        {"validation_fraction": 0.6},
    ],
)
def test_model_config_validation(kwargs):
    with pytest.raises(ValueError):
        ModelConfig(**kwargs)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), strength=st.sampled_from([0.0, 0.5, 1.5]), n=st.integers(300, 700))
def test_final_model_equals_a_fresh_fit_of_the_chosen_trees(seed, strength, n):
    """The final model is the early-stopped fit cut to its chosen trees; it must be what
    training that many trees again gives: the same predictions, contributions and gains,
    also after a save and load."""
    import xgboost

    from signals._model import _xgb

    X, y = planted(n, seed=seed, strength=strength)
    fm = fit_classifier(X, y, horizon=2, config=FAST)
    keep = y.notna().to_numpy()
    Xv, yv = X.to_numpy(dtype=float)[keep], y.to_numpy(dtype=float)[keep].astype(int)
    refit = _xgb(FAST, fm.max_depth, fm.n_trees, early=False)
    refit.fit(Xv[:fm.n_train], yv[:fm.n_train], verbose=False)
    dm = xgboost.DMatrix(X.to_numpy(dtype=float))
    assert np.array_equal(fm.model.predict_proba(X.to_numpy(dtype=float)), refit.predict_proba(X.to_numpy(dtype=float)))
    assert np.array_equal(fm.model.get_booster().predict(dm, pred_contribs=True),
                          refit.get_booster().predict(dm, pred_contribs=True))
    assert fm.model.get_booster().get_score(importance_type="total_gain") == \
        refit.get_booster().get_score(importance_type="total_gain")
    assert fm.model.get_params()["n_estimators"] == fm.n_trees == refit.get_booster().num_boosted_rounds()


@pytest.mark.parametrize("workers", [2, 3])
def test_folds_fitted_side_by_side_give_the_same_result(data, workers):
    """workers > 1 fits the folds in threads: the same probabilities, folds and metrics as
    one after the other, a skipped fold included; a cache filled by either serves the other;
    progress still counts every fold once, up to the total."""
    X, y = data
    y2 = y.copy()
    y2.iloc[:400] = 1.0  # the first fold is skipped (one class)
    sp = PurgedWalkForwardSplit(min_train=400, test_size=100, horizon=1, embargo=1)
    one = walk_forward_predict(X, y2, sp, FAST)
    seen, cache = [], {}
    many = walk_forward_predict(X, y2, sp, FAST, progress=lambda k, total: seen.append((k, total)),
                                fit_cache=cache, workers=workers)
    pd.testing.assert_series_equal(one.probability, many.probability, check_exact=True)
    assert one.folds == many.folds and one.metrics == many.metrics
    assert "skipped" in many.folds[0] and len(many.folds) == 8
    assert seen == [(k, 8) for k in range(1, 9)]
    seen.clear()
    again = walk_forward_predict(X, y2, sp, FAST, progress=lambda k, total: seen.append((k, total)),
                                 fit_cache=cache, workers=workers)  # every fold read back
    assert again.folds == one.folds and seen == [(8, 8)]
    with pytest.raises(ValueError, match="workers"):
        walk_forward_predict(X, y2, sp, FAST, workers=0)
