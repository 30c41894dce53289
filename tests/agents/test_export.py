"""Signal export: schema, exact round trip, causality (prefix invariance), one policy path with the
backtest, the risk-gate replay, the CLI end to end and its argument errors, and the generated
algorithm's parser run on the exported file."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.services import ml as _ml
from agents.services.context import AppContext
from agents.services.export import replay_gate, session_times
from analytics import DataQualityWarning, RegimeDeskError
from analytics.risk_gate import RiskLimits
from integrations import (
    COLUMN_SPEC,
    SIGNAL_COLUMNS,
    coerce_signal_frame,
    read_signal_csv,
    write_signal_csv,
)

warnings.filterwarnings("ignore", category=DataQualityWarning)

#: Yearly ML refits keep the walk-forward quick; the procedure is the same.
FAST = "[ml]\nrefit_every = 252\n"
SHORT_END = "2006-06-30"
LONG_END = "2006-12-29"
LONG_START = "2005-01-03"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Two exports through the CLI: SP500 to SHORT_END as a QuantConnect project, and
    SP500 + NASDAQ to LONG_END from LONG_START as a plain CSV."""
    base = tmp_path_factory.mktemp("export")
    cfg = base / "fast.toml"
    cfg.write_text(FAST)
    (base / "home").mkdir()
    # --out DIR/ (a directory that does not exist yet) means DIR/regimedesk_signals.csv
    out = {"config": cfg, "dir": base / "qc", "csv": base / "long" / "regimedesk_signals.csv"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGIMEDESK_HOME", str(base / "home"))
        mp.setenv("REGIMEDESK_CONFIG", str(cfg))
        buf = _Capture()
        with buf:
            code = main(["export", "quantconnect", "SP500", "--end", SHORT_END, "--out", str(out["dir"]), "--json"])
        out["qc_code"], out["qc_json"], out["qc_err"] = code, buf.out, buf.err
        buf = _Capture()
        with buf:
            code = main(["export", "csv", "SP500", "NASDAQ", "--end", LONG_END, "--start", LONG_START,
                         "--out", str(base / "long") + "/"])
        out["csv_code"], out["csv_out"] = code, buf.out
        settings = load_settings(cfg)
        store = AppContext(settings, Secrets.from_env({})).bars({"source": "builtin", "as_of": SHORT_END})
        out["backtest"] = _ml.backtest_policy(store, "SP500", settings, settings.decision.policy)
        out["settings"] = settings
    return out


class _Capture:
    """Collect stdout/stderr written by main() (capsys is function-scoped)."""

    def __enter__(self):
        import io

        self._old = sys.stdout, sys.stderr
        self._o, self._e = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = self._o, self._e
        return self

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self._old
        self.out, self.err = self._o.getvalue(), self._e.getvalue()


@pytest.fixture(scope="module")
def short(exported):
    return read_signal_csv(exported["dir"] / "regimedesk_signals.csv")


@pytest.fixture(scope="module")
def long(exported):
    return read_signal_csv(exported["csv"])


def test_cli_quantconnect_writes_the_project(exported):
    assert exported["qc_code"] == 0
    rep = json.loads(exported["qc_json"])
    assert rep["symbols"] == ["SP500"] and rep["policy"] == "combined" and rep["source"] == "builtin"
    assert rep["last_date"] == SHORT_END and rep["first_date"] == "1999-01-04"
    proj = rep["project"]
    assert proj["tickers"] == {"SP500": "SPY"} and proj["data_source"] == "file"
    assert proj["start"] == rep["first_decision"]["SP500"] and proj["end"] == "2006-07-05"  # three weekdays later
    d = exported["dir"]
    assert {p.name for p in d.iterdir()} == {"main.py", "regimedesk_signals.py", "regimedesk_signals.csv"}
    main_py = (d / "main.py").read_text()
    assert "TimeZones.UTC" in main_py and "market_on_open_order" in main_py and "'SPY'" in main_py
    err = exported["qc_err"]
    assert "walk-forward folds" in err and "risk-gate replay" in err and "Traceback" not in err


def test_schema(short, exported):
    f = short
    assert tuple(f.columns) == SIGNAL_COLUMNS
    floats = [c for c, (k, _) in COLUMN_SPEC.items() if k == "float"]
    assert all(f[c].dtype == np.float64 for c in floats)
    assert all(f[c].dtype == object for c in f.columns if c not in floats)
    for c in ("date", "symbol", "bar_start", "available_at", "close", "policy", "regime_family"):
        assert f[c].notna().all(), c
    assert (f["close"] > 0).all() and f["date"].is_monotonic_increasing and f["date"].is_unique
    for c in [c for c in f.columns if c.endswith("probability") or c.endswith("confidence")] + ["p_up"]:
        v = f[c].dropna()
        assert ((v >= 0) & (v <= 1)).all(), c
    # intraday US is not in the builtin source: its columns are empty
    assert f[[c for c in f.columns if c.startswith("us_")]].isna().all().all()
    assert f["lt_label"].notna().sum() > 1000 and f["mt_character"].notna().sum() > 1000
    assert set(f["lt_label"].dropna()) <= {"calm", "bull", "bear", "high_volatility"}
    assert set(f["regime_family"]) <= {"risk_on", "risk_off", "mixed", "unavailable"}
    assert set(f["mt_character"].dropna()) <= {"trending", "mean_reverting", "random_walk"}
    # weights: empty together, before the policy's first validated decision
    has_t = f["target_weight"].notna()
    assert has_t.equals(f["approved_weight"].notna()) and has_t.equals(f["gate_action"].notna())
    first = f.index[has_t][0]
    assert has_t.iloc[first:].all() and not has_t.iloc[:first].any()
    assert f["date"].iloc[first] == json.loads(exported["qc_json"])["first_decision"]["SP500"]
    assert set(f["gate_action"].dropna()) <= {"approve", "trim", "reject", "hold"}
    limits = exported["settings"].risk
    w = f["approved_weight"].dropna()
    assert (w >= 0).all() and (w <= min(limits.max_position_weight, limits.max_gross_exposure) + 1e-12).all()
    assert (f["target_weight"].dropna() <= exported["settings"].decision.max_weight).all()
    appr = f["gate_action"] == "approve"
    np.testing.assert_array_equal(f.loc[appr, "approved_weight"], f.loc[appr, "target_weight"])
    assert f.loc[f["gate_action"].isin(["trim", "reject"]), "gate_reasons"].notna().all()


def test_timestamps_are_causal(short):
    f = short
    date = pd.to_datetime(f["date"])
    avail = pd.to_datetime(f["available_at"], utc=True)
    start = pd.to_datetime(f["bar_start"], utc=True)
    ny = avail.dt.tz_convert("America/New_York")
    assert (ny.dt.hour == 16).all() and (ny.dt.minute == 0).all()
    assert (ny.dt.tz_localize(None).dt.normalize() == date).all()
    assert ((avail - start) == pd.Timedelta(hours=6, minutes=30)).all()
    # weekly regimes come from weeks closed by that day; daily ones from that day
    lt = f["lt_bar"].notna()
    assert (pd.to_datetime(f.loc[lt, "lt_bar"]) <= date[lt]).all()
    assert (date[lt] - pd.to_datetime(f.loc[lt, "lt_bar"]) < pd.Timedelta(days=7)).all()
    mt = f["mt_bar"].notna()
    assert (f.loc[mt, "mt_bar"] == f.loc[mt, "date"]).all()
    # P(up) comes from a model trained before the bar (purge + embargo)
    p = f["p_up"].notna()
    assert p.equals(f["p_up_trained_through"].notna())
    assert (pd.to_datetime(f.loc[p, "p_up_trained_through"]) < date[p]).all()


def test_round_trip_is_exact(short, exported, tmp_path):
    path = tmp_path / "again.csv"
    write_signal_csv(short, path)
    back = read_signal_csv(path)
    pd.testing.assert_frame_equal(back, short)
    assert path.read_bytes() == (exported["dir"] / "regimedesk_signals.csv").read_bytes()
    write_signal_csv(back, tmp_path / "third.csv")
    assert (tmp_path / "third.csv").read_bytes() == path.read_bytes()


def test_export_up_to_d_is_the_prefix_of_a_longer_export(short, long, exported):
    """Every column of every SP500 row up to SHORT_END is the same whether the data ends
    there or half a year later (and whether NASDAQ is exported alongside)."""
    assert exported["csv_code"] == 0 and "wrote 1,006 rows" in exported["csv_out"]
    a = short[short["date"] >= LONG_START].reset_index(drop=True)
    b = long[(long["symbol"] == "SP500") & (long["date"] <= SHORT_END)].reset_index(drop=True)
    assert len(a) > 300 and a["approved_weight"].notna().all()
    pd.testing.assert_frame_equal(a, b)


def test_multi_symbol_rows_are_in_time_order(long):
    assert set(long["symbol"]) == {"SP500", "NASDAQ"}
    assert long["date"].min() == LONG_START and long["date"].max() == LONG_END
    key = list(zip(long["available_at"], long["symbol"], strict=True))
    assert key == sorted(key)
    assert not long.duplicated(["symbol", "date"]).any()


def test_target_weight_is_the_backtests_path(short, exported):
    """The backtest holds during bar t the target decided at the close of t - 1 (no
    decision = flat): the export's target_weight is that target, bar for bar."""
    held = exported["backtest"]["weights"]
    tw = pd.Series(short["target_weight"].to_numpy(), index=pd.to_datetime(short["date"]).dt.tz_localize("UTC"))
    decided = held.shift(-1).iloc[:-1]
    assert len(decided) > 800 and decided.index[-1] == tw.index[-2]
    np.testing.assert_array_equal(tw.reindex(decided.index).fillna(0.0).to_numpy(), decided.to_numpy())


def test_generated_parser_reproduces_the_exported_csv(exported, short):
    d = exported["dir"]
    spec = importlib.util.spec_from_file_location("regimedesk_signals_under_test", d / "regimedesk_signals.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    lines = (d / "regimedesk_signals.csv").read_text().splitlines()
    assert mod.parse_line(lines[0]) is None and mod.parse_line("") is None
    rows = [mod.parse_line(line) for line in lines[1:]]
    assert len(rows) == len(short)
    for row, (_, want) in zip(rows, short.iterrows(), strict=True):
        for col in SIGNAL_COLUMNS:
            got, exp = row.values[col], want[col]
            if exp is None or (isinstance(exp, float) and math.isnan(exp)):
                assert got is None, col
            else:
                assert got == exp, col
        assert row.available_at == pd.Timestamp(want["available_at"]).tz_convert("UTC").tz_localize(None)
        assert row.bar_start < row.available_at
        assert row.approved_weight == (None if pd.isna(want["approved_weight"]) else want["approved_weight"])
    assert mod.matches_symbol("SP500", "SP500") and mod.matches_symbol("sp500", "SP500.RegimeDeskSignal")
    assert not mod.matches_symbol("SP500", "NASDAQ")


def test_session_times_follow_new_york_dst_and_crypto_days():
    days = pd.DatetimeIndex(["2008-01-02", "2008-07-01"], tz="UTC")
    start, end = session_times("SP500", days)
    assert [t.isoformat() for t in start] == ["2008-01-02T14:30:00+00:00", "2008-07-01T13:30:00+00:00"]
    assert [t.isoformat() for t in end] == ["2008-01-02T21:00:00+00:00", "2008-07-01T20:00:00+00:00"]
    start, end = session_times("BTC/USD", days)
    assert end[0].isoformat() == "2008-01-03T00:00:00+00:00" and start[0] == days[0]


def _bars(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    idx = pd.bdate_range("2010-01-04", periods=n, tz="UTC")
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=idx)


def test_replay_gate_trims_rejects_holds_and_keeps_the_book():
    bars = _bars()
    n = len(bars)
    _, avail = session_times("X", bars.index)
    target = np.full(n, np.nan)
    target[260:266] = [1.0, 1.0, 0.2, 0.2, np.nan, 0.3]
    labels = ["high_volatility"] * 262 + ["calm"] * (n - 262)
    limits = RiskLimits(regime_gross_caps={"high_volatility": 0.5}, var_limit=None, es_limit=None)
    g = replay_gate("X", bars, target, avail, limits, regime_labels=labels)
    assert g.action[260] == "trim" and g.approved[260] == pytest.approx(0.5)
    assert g.reasons[260] == "trim:regime_gross_cap"
    assert g.action[261] == "reject" and g.approved[261] == pytest.approx(0.5)
    assert g.reasons[261] == "limit:regime_gross_cap"
    assert g.action[262] == "approve" and g.approved[262] == 0.2  # reducing is always allowed
    assert g.action[263] == "hold" and g.approved[263] == 0.2
    assert g.action[264] is None and np.isnan(g.approved[264])
    assert g.action[265] == "approve" and g.approved[265] == 0.3  # the book kept 0.2 through the gap
    assert np.isnan(g.approved[:260]).all() and g.action[259] is None
    # a VaR limit rejects buys (with 250+ returns) but never a sale
    target2 = np.full(n, np.nan)
    target2[280:282] = [1.0, 0.0]
    tight = RiskLimits(var_limit=1e-6, es_limit=None)
    g2 = replay_gate("X", bars, target2, avail, tight)
    assert g2.action[280] == "reject" and g2.reasons[280] == "var_limit" and g2.approved[280] == 0.0
    assert g2.action[281] == "hold"
    # too few returns for VaR: the gate fails closed
    target3 = np.full(n, np.nan)
    target3[100] = 0.5
    g3 = replay_gate("X", bars, target3, avail, tight)
    assert g3.action[100] == "reject" and g3.reasons[100].startswith("missing_returns")
    with pytest.raises(ValueError, match="one entry per bar"):
        replay_gate("X", bars, target[:-1], avail, limits)


def test_coerce_rejects_missing_columns():
    with pytest.raises(ValueError, match="missing signal columns"):
        coerce_signal_frame(pd.DataFrame({"date": ["2010-01-04"]}))


def test_export_help_explains_the_options(capsys):
    for argv in (["export", "--help"], ["export", "quantconnect", "--help"], ["export", "csv", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    for text in ("available_at", "--data-source", "--object-store-key", "--data-url", "--ticker", "--start",
                 "--end", "market-on-open", "gate"):
        assert text in out, text


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["export", "csv", "NOPE"], 1, "unknown symbol"),
        (["export", "csv", "SP500", "--end", "2008-13-45"], 2, "--end"),
        (["export", "csv", "SP500", "--start", "someday"], 2, "--start"),
        (["export", "csv", "SP500", "--start", "2008-01-01", "--end", "2007-01-01"], 2, "after --end"),
        (["export", "csv", "SP500", "^GSPC"], 2, "duplicates"),
        (["export", "csv", "SP500", "--json"], 2, "--json needs --out"),
        (["export", "quantconnect", "SP500", "--out", "x", "--data-url", "ftp://a/b.csv"], 2, "--data-url"),
        (["export", "quantconnect", "SP500", "--out", "x", "--data-source", "file", "--object-store-key", "k"], 2,
         "--object-store-key"),
        (["export", "quantconnect", "SP500", "--out", "x", "--ticker", "SPY"], 2, "SYMBOL=TICKER"),
        (["export", "quantconnect", "SP500", "--out", "x", "--ticker", "NASDAQ=QQQ"], 2, "--ticker"),
        (["export", "quantconnect", "SP500", "--out", "x", "--ticker", "SP500=not a ticker"], 2, "--ticker"),
        (["export", "quantconnect", "SP500", "--out", "x", "--cash", "-5"], 2, "--cash"),
    ],
)
def test_bad_arguments_fail_fast_with_one_line(argv, code, message, capsys):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_out_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "quantconnect", "SP500"])
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_infeasible_exports(monkeypatch, short):
    from agents.services import export as _export

    settings = load_settings()
    store = AppContext(settings, Secrets.from_env({})).bars({"source": "builtin", "as_of": "2000-12-29"})
    with pytest.raises(RegimeDeskError, match="daily bars"):
        _export.export_signals(store, ["SP500"], settings)
    with pytest.raises(ValueError, match="symbols"):
        _export.export_signals(store, [], settings)
    with pytest.raises(ValueError, match="--start"):
        _export.export_signals(store, ["SP500"], settings, start="soon")
    monkeypatch.setattr(_export, "symbol_signals", lambda *a, **k: short.iloc[:10])
    with pytest.raises(RegimeDeskError, match="no bars on or after 2030-01-01"):
        _export.export_signals(store, ["SP500"], settings, start="2030-01-01")
