"""ML-signal and decision agents, train/backtest commands: causality, model store use, one policy path."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.graph import MlSignal, RegimeReport, SymbolError
from agents.graph.nodes.decision import decide_symbol, decision_template
from agents.graph.nodes.ml_signal import ml_facts, ml_template
from agents.runtime.runner import Runner
from agents.services import ml as _ml
from agents.services.context import AppContext, RunRequest
from agents.services.regime import analyse_regimes, consensus_path, regime_report
from analytics import DataQualityWarning, PolicyParams, target_weights
from signals import ModelNotFoundError, StaleModelError

warnings.filterwarnings("ignore", category=DataQualityWarning)

#: Yearly refits keep the walk-forward quick in tests; the procedure is the same.
FAST = "[ml]\nrefit_every = 252\n"


@pytest.fixture
def fast_config(tmp_path):
    path = tmp_path / "fast.toml"
    path.write_text(FAST)
    return path


def _store(settings, as_of):
    return AppContext(settings, Secrets.from_env({})).bars({"source": "builtin", "as_of": as_of})


def test_consensus_path_ends_at_the_agents_consensus():
    store = _store(load_settings(), "2008-12-31")
    an = analyse_regimes(store, "SP500", "garch")
    idx = store.get("SP500", "MT").frame.index
    path = consensus_path(an, idx)
    assert path.iloc[-1] == regime_report(an)["consensus"]["family"]
    assert set(path.unique()) <= {"risk_on", "risk_off", "mixed", "unavailable"}
    assert path.iloc[0] == "unavailable"  # no timeframe has a regime on the first bar


@pytest.fixture(scope="module")
def datasets():
    settings = load_settings()
    early = _ml.build_dataset(_store(settings, "2007-06-29"), "SP500", settings)
    late = _ml.build_dataset(_store(settings, "2007-12-31"), "SP500", settings)
    return settings, early, late


def test_dataset_is_prefix_invariant_end_to_end(datasets):
    """Features, regime family and vol computed as of June 2007 equal those computed as of
    December 2007 on the shared bars: nothing in the ML inputs reads later data."""
    settings, early, late = datasets
    n = len(early.bars)
    pd.testing.assert_frame_equal(early.features, late.features.iloc[:n])
    pd.testing.assert_series_equal(early.regime_family, late.regime_family.iloc[:n])
    assert early.features["regime_risk_off"].notna().sum() > 1000
    # labels are known h bars later: equal wherever the early data could know them
    h = settings.ml.horizon
    pd.testing.assert_series_equal(early.labels.iloc[: n - h], late.labels.iloc[: n - h])
    assert early.labels.iloc[n - h :].isna().all()


def test_train_store_infer_and_refuse_look_ahead(fast_config, tmp_path):
    settings = load_settings(fast_config)
    store = _store(settings, "2006-12-29")
    stored = _ml.train_model(store, "SP500", settings)
    meta = stored.metadata
    assert stored.version == "v0001" and meta["train_end"].startswith("2006-12-29")
    assert meta["source"] == "builtin" and meta["label"]["horizon"] == 5
    assert 0.3 < meta["out_of_sample"]["auc"] < 0.7 and meta["out_of_sample"]["n"] > 1000
    assert set(meta["policy_params"]) == {"regime", "ml", "combined"}
    assert abs(sum(meta["gain_importance"].values()) - 1) < 1e-9
    assert {"xgboost", "scikit-learn", "pandas"} <= set(meta["library_versions"])
    assert len(meta["data_hash"]) == 64

    sig = _ml.current_signal(store, "SP500", settings)
    assert sig["model_version"] == "v0001" and sig["model_note"] is None  # reused, not retrained
    assert 0 <= sig["p_up"] <= 1 and sig["direction"] == ("up" if sig["p_up"] >= 0.5 else "down")
    assert sig["confidence"] == pytest.approx(abs(sig["p_up"] - 0.5) * 2)
    assert sig["model_age_days"] == 0 and sig["vol_forecast"] > 0

    manual = settings.model_copy(update={"ml": settings.ml.model_copy(update={"auto_train": False})})
    # the 2006 model must not serve an earlier date (it saw later data) ...
    with pytest.raises(ModelNotFoundError, match="trained on data up to 2005"):
        _ml.usable_model(_store(manual, "2005-06-30"), "SP500", manual)
    # ... and is stale half a year later
    with pytest.raises(StaleModelError, match="days old"):
        _ml.usable_model(_store(manual, "2007-06-29"), "SP500", manual)
    # with auto_train the stale model is replaced by a new version
    _, note = _ml.usable_model(_store(settings, "2007-06-29"), "SP500", settings)
    assert "trained a new model" in note
    assert _ml.model_store(settings).versions("SP500") == ["v0001", "v0002"]
    # a damaged newest version is named, and replaced by a new one with auto_train
    (_ml.model_store(settings).load("SP500", "v0002").path / "model.ubj").write_bytes(b"truncated")
    with pytest.raises(ModelNotFoundError, match="model SP500 v0002 cannot be read"):
        _ml.usable_model(_store(manual, "2007-06-29"), "SP500", manual)
    stored, note = _ml.usable_model(_store(settings, "2007-06-29"), "SP500", settings)
    assert stored.version == "v0003" and note.startswith("trained a new model: model SP500 v0002 cannot be read")


def test_training_threads_give_the_same_model(fast_config, tmp_path, monkeypatch):
    """ml.train_threads 1 and 3: walk-forward folds side by side or one after the other, the
    same stored model (metadata but its creation time, predictions, contributions)."""
    import xgboost

    stored = {}
    for threads in (1, 3):
        monkeypatch.setenv("REGIMEDESK_HOME", str(tmp_path / f"home-{threads}"))
        settings = load_settings(fast_config)
        settings = settings.model_copy(update={"ml": settings.ml.model_copy(update={"train_threads": threads})})
        stored[threads] = _ml.train_model(_store(settings, "2006-12-29"), "SP500", settings)
    one, many = stored[1], stored[3]
    m1, m3 = dict(one.metadata), dict(many.metadata)
    m1.pop("created_at"), m3.pop("created_at")
    assert m1 == m3
    x = _ml.build_dataset(_store(settings, "2006-12-29"), "SP500", settings).features
    assert np.array_equal(one.model.predict_proba(x), many.model.predict_proba(x))
    dm = xgboost.DMatrix(x[list(one.model.features)].to_numpy(dtype=float))
    assert np.array_equal(one.model.model.get_booster().predict(dm, pred_contribs=True),
                          many.model.model.get_booster().predict(dm, pred_contribs=True))


def test_decide_symbol_rules():
    regime = RegimeReport({"consensus": {"family": "risk_off"}})
    params = {p: PolicyParams(risk_off_weight=0.5, target_vol=0.1).to_dict() for p in ("regime", "ml", "combined")}
    signal = MlSignal({"p_up": 0.7, "vol_forecast": 0.4, "model_version": "v0003", "policy_params": params})
    d = decide_symbol("regime", regime, signal)
    assert d.target_weight == pytest.approx(0.5 * 0.1 / 0.4) and d.reason is None
    assert d.params == PolicyParams(risk_off_weight=0.5, target_vol=0.1) and d.orders is None
    assert "0.12" in decision_template("X", d.to_state())
    capped = decide_symbol("ml", regime, signal, max_weight=0.2)
    assert capped.target_weight == pytest.approx(0.2)
    none = decide_symbol("combined", SymbolError("boom"), signal)
    assert none.target_weight is None and "regime_family" in none.reason
    nomodel = decide_symbol("regime", regime, SymbolError("no model"))
    assert nomodel.target_weight is None and "no trained model" in nomodel.reason
    assert list(nomodel.to_state()) == ["policy", "inputs", "model_version", "target_weight", "params", "reason"]


def test_graph_decision_uses_the_backtest_policy_function(fast_config):
    """The decision node's target equals analytics.target_weights on the same inputs the
    backtest uses at that bar (regime family path, vol forecast, stored parameters)."""
    settings = load_settings(fast_config)
    with Runner(settings, Secrets.from_env({})) as runner:
        state = runner.start(RunRequest(("SP500",), as_of="2009-03-31")).state
    sig = state["ml_signal"]["SP500"]
    dec = state["decision"]["symbols"]["SP500"]
    assert dec["model_version"] == sig["model_version"] == "v0001"
    ds = _ml.build_dataset(_store(settings, "2009-03-31"), "SP500", settings)
    assert ds.regime_family.iloc[-1] == state["regime"]["SP500"]["consensus"]["family"] == dec["inputs"]["regime_family"]
    assert dec["inputs"]["vol_forecast"] == pytest.approx(ds.vol.iloc[-1])
    params = PolicyParams(**sig["policy_params"][settings.decision.policy])
    expect = target_weights(settings.decision.policy, params, ds.regime_family.to_numpy()[-1:],
                            [sig["p_up"]], ds.vol.to_numpy()[-1:])[0]
    assert dec["target_weight"] == pytest.approx(expect)
    facts = ml_facts(sig)
    assert ml_template(facts).startswith("SP500: P(up over 5 bars)")
    assert state["narratives"]["ml_signal"]["SP500"]["accepted"] is True
    json.dumps(state)


def test_backtest_cli_table_and_json(fast_config, capsys):
    code = main(["--config", str(fast_config), "backtest", "SP500", "--end", "2008-12-31", "--policy", "regime",
                 "--costs-bps", "10"])
    out = capsys.readouterr()
    assert code == 0
    assert "regime  buy-and-hold" in out.out and "Max drawdown" in out.out and "Sharpe" in out.out
    assert "costs 10 bps" in out.out and "policy re-selections" in out.err
    assert main(["--config", str(fast_config), "backtest", "SP500", "--end", "2008-12-31", "--policy", "regime",
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["window"]["end"].startswith("2008-12-31")
    s, h = rep["metrics"]["strategy"], rep["metrics"]["buy_and_hold"]
    assert s["n_bars"] == h["n_bars"] == rep["window"]["bars"]
    assert -1 < h["max_drawdown"] < -0.4  # the 2008 crash is inside the window
    eq = rep["equity"]["buy_and_hold"]
    assert len(eq) == rep["window"]["bars"] + 1
    # the edge's significance is that of the two daily return series the equity curves come from
    from analytics import deflated_sharpe_ratio, sharpe_difference_ci

    r_s = np.diff(rep["equity"]["strategy"]) / np.asarray(rep["equity"]["strategy"][:-1])
    r_h = np.diff(eq) / np.asarray(eq[:-1])
    ci = sharpe_difference_ci(r_s, r_h, reps=1000, seed=0)
    sig = rep["significance"]
    assert sig["sharpe_difference"]["difference"] == pytest.approx(s["sharpe"] - h["sharpe"], abs=1e-9)
    assert sig["sharpe_difference"]["ci_low"] == pytest.approx(ci.ci_low, abs=1e-9)
    assert sig["sharpe_difference"]["ci_high"] == pytest.approx(ci.ci_high, abs=1e-9)
    dsr = deflated_sharpe_ratio(r_s, 54, sig["deflated_sharpe"]["trial_sharpe_variance"])
    assert sig["deflated_sharpe"]["dsr"] == pytest.approx(dsr.dsr, abs=1e-9) and dsr.n_trials == 54
    assert "edge over buy-and-hold: Sharpe" in out.out and "deflated Sharpe ratio" in out.out


def test_backtest_start_and_bad_arguments(fast_config, capsys):
    assert main(["--config", str(fast_config), "backtest", "SP500", "--end", "2006-12-29", "--policy", "regime",
                 "--start", "2005-01-03", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["window"]["start"].startswith("2005-01-03")
    assert main(["backtest", "SP500", "--costs-bps", "-1"]) == 2
    assert "--costs-bps" in capsys.readouterr().err
    assert main(["backtest", "NOPE"]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_train_cli(fast_config, capsys):
    assert main(["--config", str(fast_config), "train", "NASDAQ", "--as-of", "2005-12-30"]) == 0
    out = capsys.readouterr().out
    assert "NASDAQ model v0001 stored" in out and "out of sample" in out and "reliability" in out
    assert "combined" in out and "walk-forward folds" not in out
    assert np.isfinite(float(out.split("AUC ")[1].split()[0]))


def _close(a, b, path=""):
    """Equal JSON values, floats to 1e-9 relative."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), path
    else:
        assert a == b, path


def test_newest_bar_signal_equals_the_recomputed_one_bar_by_bar(fast_config):
    """The default path (newest bar's features, finished regime blocks kept in memory) and the
    audit path (every feature row rebuilt) agree on every bar of a month that crosses an ML
    refit, a GARCH refit and regime refits, in one process with one fit cache."""
    settings = load_settings(fast_config)
    with Runner(settings, Secrets.from_env({})) as runner:
        ctx = runner.ctx
        from agents.services.regime import run_regimes

        days = pd.bdate_range("2012-11-20", "2013-01-10")
        for day in days:
            req = RunRequest(("SP500",), as_of=str(day.date())).to_dict()
            store = ctx.bars(req)
            an = run_regimes(ctx, req, "SP500")
            fast = _ml.current_signal(store, "SP500", settings, analysis=an, fit_cache=ctx.fit_cache())
            full = _ml.current_signal(store, "SP500", settings, analysis=an, fit_cache=ctx.fit_cache(),
                                      recompute=True)
            fast.pop("model_note"), full.pop("model_note")  # which call trained a model, not what it computed
            _close(fast, full, str(day.date()))
            ctx.release(req)


def test_run_recompute_flag_gives_the_same_run(fast_config, capsys):
    states = {}
    for flag in ((), ("--recompute",)):
        assert main(["--config", str(fast_config), "run", "SP500", "--as-of", "2010-06-30", "--json", *flag]) == 0
        states[bool(flag)] = json.loads(capsys.readouterr().out)
    assert states[True]["request"]["recompute"] is True and states[False]["request"]["recompute"] is False
    assert states[False]["ml_signal"]["SP500"].pop("model_note").startswith("trained a new model")
    assert states[True]["ml_signal"]["SP500"].pop("model_note") is None  # the first run stored it
    for key in ("ml_signal", "regime", "statistics"):
        _close(states[False][key], states[True][key], key)
    dec = [s["decision"]["symbols"]["SP500"] for s in (states[False], states[True])]
    _close(dec[0], dec[1], "decision")


def test_volatility_command_scores_every_forecast_on_the_same_folds(fast_config, capsys):
    from signals import VOL_MODELS, walk_forward_vol

    args = ["--config", str(fast_config), "volatility", "SP500", "--as-of", "2010-12-31", "--horizon", "21"]
    assert main([*args, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["horizon"] == 21 and rep["window"]["end"] <= "2010-12-31"
    assert set(rep["models"]) == {*VOL_MODELS, "chosen"}
    assert rep["models"]["har"]["dm_qlike"] is None and rep["next_choice"] in VOL_MODELS
    # the same numbers as the library on the same bars, folds and features
    settings = load_settings(str(fast_config))
    from agents.services.ml import build_dataset

    ds = build_dataset(_store(settings, "2010-12-31"), "SP500", settings)
    ml = settings.ml
    res = walk_forward_vol(ds.bars, 21, min_train=ml.min_train, test_size=ml.refit_every, embargo=ml.embargo,
                           max_train=ml.max_train or None, regime_risk_off=ds.features["regime_risk_off"])
    for name, score in res.scores.items():
        assert rep["models"][name]["qlike"] == pytest.approx(score.qlike, rel=1e-12)
        assert rep["models"][name]["n"] == score.n
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "QLIKE" in out and "next pick: " in out
    assert main([*args[:-1], "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--horizon must be between 1 and 63" in err[0]
