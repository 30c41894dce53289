"""Portfolio weight export: the CSV rows are the service's targets exactly, within the caps,
causal (prefix of a longer export), written exactly; the generated LEAN algorithm type-checks
against QuantConnect's stubs and trades the targets on trade_due closes; bad input exits 2."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import types
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.services.portfolio import portfolio_backtest, resolve_universe
from agents.services.portfolio_export import portfolio_rows
from integrations import (
    PORTFOLIO_COLUMNS,
    portfolio_tickers,
    read_portfolio_csv,
    write_portfolio_csv,
    write_portfolio_lean_project,
)

FULL_END = "2012-12-31"
SHORT_END = "2008-06-30"
ASSETS = ["KO", "JNJ", "XOM"]


class _Capture:
    """stdout/stderr of main() in a module-scoped fixture (capsys is function-scoped)."""

    def __enter__(self):
        self._old = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self._o, self._e = io.StringIO(), io.StringIO()
        return self

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self._old
        self.out, self.err = self._o.getvalue(), self._e.getvalue()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One regime walk-forward of SP500X (cold), then cached fits: a QuantConnect project to
    FULL_END, a plain CSV to SHORT_END, and the service's own targets to FULL_END."""
    base = tmp_path_factory.mktemp("pexport")
    (base / "home").mkdir()
    cfg = base / "cfg.toml"
    cfg.write_text('[portfolio]\nregime_symbol = "SP500X"\n')
    universe_file = base / "trio.txt"
    universe_file.write_text("ko jnj, XOM  # three builtin stocks\n")
    out = {"base": base, "universe": str(universe_file)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGIMEDESK_HOME", str(base / "home"))
        mp.setenv("REGIMEDESK_CONFIG", str(cfg))
        with _Capture() as c:
            code = main(["export", "quantconnect", "--universe", str(universe_file), "--portfolio", "erc",
                         "--end", FULL_END, "--out", str(base / "qc"), "--json"])
        out["qc"] = (code, c.out, c.err)
        with _Capture() as c:
            code = main(["export", "csv", "--universe", str(universe_file), "--portfolio", "erc", "--end", SHORT_END,
                         "--out", str(base / "short") + "/", "--json"])
        out["short"] = (code, c.out, c.err)
        settings = load_settings(cfg)
        universe = resolve_universe(settings, str(universe_file))
        rep = portfolio_backtest(settings, Secrets.from_env({}), universe, ["erc"], end=FULL_END, benchmarks=False)
        out["targets"] = rep["targets"]["erc"]
        out["settings"] = settings
    return out


@pytest.fixture(scope="module")
def full(exported):
    assert exported["qc"][0] == 0, exported["qc"][2]
    return read_portfolio_csv(exported["base"] / "qc" / "regimedesk_portfolio_weights.csv")


@pytest.fixture(scope="module")
def short(exported):
    assert exported["short"][0] == 0, exported["short"][2]
    return read_portfolio_csv(exported["base"] / "short" / "regimedesk_portfolio_weights.csv")


def test_rows_are_the_services_targets_exactly(full, exported):
    t = exported["targets"]
    assert tuple(full.columns) == PORTFOLIO_COLUMNS
    assert full["target_weight"].dtype == np.float64 and full["trade_due"].dtype.kind == "i"
    assert set(full["method"]) == {"erc"} and list(full["symbol"].iloc[:3]) == ASSETS
    wide = full.pivot(index="date", columns="symbol", values="target_weight")[ASSETS]
    decided = t[ASSETS].notna().all(axis=1)
    want = t.loc[decided]
    assert decided.any() and len(wide) == len(want) > 2000
    assert list(wide.index) == [d.date().isoformat() for d in want.index]
    np.testing.assert_array_equal(wide.to_numpy(), want[ASSETS].to_numpy())  # bit for bit
    due = full.groupby("date", sort=True)["trade_due"].agg(["min", "max"])
    assert (due["min"] == due["max"]).all()  # one flag per close, repeated on its assets' rows
    np.testing.assert_array_equal(due["max"].to_numpy(), want["trade_due"].to_numpy().astype(int))
    assert 10 < due["max"].sum() < len(due) / 2
    assert full["date"].iloc[-1] == FULL_END and full["date"].is_monotonic_increasing
    # available_at is 16:00 New York of the date, in UTC
    ny = pd.to_datetime(full["available_at"], utc=True).dt.tz_convert("America/New_York")
    assert (ny.dt.hour == 16).all() and (ny.dt.strftime("%Y-%m-%d") == full["date"]).all()


def test_weights_respect_the_caps(full, exported):
    caps = exported["settings"].portfolio.caps
    sums = full.groupby("date")["target_weight"].sum()
    assert (sums <= max(c.gross for c in caps.values()) + 1e-9).all()
    assert (full["target_weight"] >= -1e-12).all()
    assert (full["target_weight"] <= max(c.per_asset for c in caps.values()) + 1e-9).all()
    # the regime matters: some closes run under the risk-off gross cap
    assert (sums <= caps["risk_off"].gross + 1e-9).any() and (sums > caps["risk_off"].gross + 0.05).any()


def test_an_export_to_an_earlier_end_is_the_prefix(full, short, exported):
    doc = json.loads(exported["short"][1])
    assert doc["last_date"] == SHORT_END and doc["rows"] == len(short) and doc["methods"] == ["erc"]
    head = full[full["date"] <= SHORT_END].reset_index(drop=True)
    assert len(head) == len(short) > 3000
    # Every row, the last close's trade_due included: it is decided at that close, whether or not
    # a next close exists yet.
    pd.testing.assert_frame_equal(short, head)


def test_csv_round_trip_is_exact(full, exported, tmp_path):
    path = tmp_path / "again.csv"
    write_portfolio_csv(full, path)
    assert path.read_bytes() == (exported["base"] / "qc" / "regimedesk_portfolio_weights.csv").read_bytes()
    pd.testing.assert_frame_equal(read_portfolio_csv(path), full)
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["again.csv"]  # no temporary file left


def test_project_summary(exported, full):
    doc = json.loads(exported["qc"][1])
    proj = doc["project"]
    assert doc["assets"] == ASSETS and doc["regime_symbol"] == "SP500X" and doc["rows"] == len(full)
    assert proj["tickers"] == {"KO": "KO", "JNJ": "JNJ", "XOM": "XOM"} and proj["benchmark"] is None
    assert proj["method"] == "erc" and proj["location"] == "custom/regimedesk_portfolio_weights.csv"
    assert proj["start"] == full["date"].iloc[0] and proj["end"] == "2013-01-03"  # three weekdays later
    assert {p.name for p in (exported["base"] / "qc").iterdir()} == {
        "main.py", "regimedesk_portfolio.py", "regimedesk_portfolio_weights.csv"}


def test_rows_of_a_hand_made_table():
    idx = pd.DatetimeIndex(["2020-01-02", "2020-01-03", "2020-07-06"], tz="UTC")
    t = pd.DataFrame({"A": [np.nan, 0.25, 0.5], "B": [np.nan, 0.75, 0.0], "trade_due": [False, True, False]}, idx)
    rows = portfolio_rows(t, "hrp")
    assert rows.to_dict("list") == {
        "date": ["2020-01-03"] * 2 + ["2020-07-06"] * 2,
        "available_at": ["2020-01-03T21:00:00+00:00"] * 2 + ["2020-07-06T20:00:00+00:00"] * 2,  # EST, EDT
        "symbol": ["A", "B", "A", "B"], "target_weight": [0.25, 0.75, 0.5, 0.0], "trade_due": [1, 1, 0, 0],
        "method": ["hrp"] * 4,
    }
    with pytest.raises(ValueError, match="some assets only"):
        portfolio_rows(t.assign(B=[0.1, 0.75, 0.0]), "hrp")
    bad = rows.copy()
    bad.loc[1, "target_weight"] = np.inf
    with pytest.raises(ValueError, match="finite"):
        write_portfolio_csv(bad, io.StringIO())
    assert portfolio_tickers(["AAPL", "SP500X"]) == {"AAPL": "AAPL", "SP500X": "SPY"}
    assert portfolio_tickers(["SP500X"], {"sp500x": "voo"}) == {"SP500X": "VOO"}


# ----------------------------------------------------------------------------- the LEAN algorithm

mypy_api = pytest.importorskip("mypy.api")
_LEAN_IMPORTS = ("from AlgorithmImports import *;from datetime import date, time, datetime, timedelta;"
                 "import pandas as pd;import numpy as np;import math;import json;import os;")
_LEAN_FLAGS = ["--skip-cache-mtime-checks", "--skip-version-check", "--show-error-codes", "--no-error-summary",
               "--no-color-output", "--ignore-missing-imports", "--check-untyped-defs"]


def _lean_errors(project: Path, text: str) -> list[str]:
    """Type-check main.py as LEAN's run_syntax_check.py does (see tests/integrations/test_quantconnect.py)."""
    checked = project.parent / f"{project.name}_checked_main.py"
    checked.write_text('# mypy: disable-error-code="no-redef"\n'
                       + text.replace("from AlgorithmImports import *", _LEAN_IMPORTS))
    ini = project.parent / "empty-mypy.ini"
    ini.write_text("[mypy]\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MYPYPATH", str(project))  # resolves `import regimedesk_portfolio`, as LEAN sets it
        out, err, _ = mypy_api.run([*_LEAN_FLAGS, "--config-file", str(ini), "--cache-dir",
                                    str(project.parent / "mypy-cache"), str(checked)])
    assert "Traceback" not in err
    return [ln for ln in (out + err).splitlines() if ln.startswith(str(checked)) and ": error:" in ln]


def test_generated_algorithm_type_checks_against_the_lean_stubs(exported):
    if importlib.util.find_spec("QuantConnect") is None:  # pragma: no cover
        pytest.skip("quantconnect-stubs (a dev dependency) provides the LEAN API stubs")
    project = exported["base"] / "qc"
    text = (project / "main.py").read_text()
    assert _lean_errors(project, text) == []
    anchor = '        self.set_holdings(targets, tag="regimedesk " + METHOD)\n'
    assert anchor in text
    broken = text.replace(anchor, anchor + "        self.set_holdings()\n        self.set_holding(targets)\n")
    errors = _lean_errors(project, broken)  # negative control
    assert len(errors) == 2 and any("call-overload" in e for e in errors), errors


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _fake_lean(calls: list) -> types.ModuleType:
    class PythonData:
        def __init__(self):
            self._props: dict = {}

        def __setitem__(self, k, v):
            self._props[k.lower()] = v

        def __getitem__(self, k):
            return self._props[k.lower()]

    class QCAlgorithm:
        def __init__(self):
            self.transactions = _Obj(cancel_open_orders=lambda s: calls.append(("cancel", s)))

        def set_start_date(self, y, m, d):
            self.start = (y, m, d)

        def set_end_date(self, y, m, d):
            self.end = (y, m, d)

        def set_cash(self, c):
            self.cash = c

        def add_equity(self, ticker, resolution):
            return _Obj(symbol="EQ:" + ticker)

        def add_data(self, kind, name, resolution, tz, fill_forward):
            assert tz == "UTC" and fill_forward is False
            return _Obj(symbol=_Obj(value=name))

        def set_benchmark(self, t):
            self.benchmark = t

        def set_holdings(self, targets, tag=""):
            calls.append(("set_holdings", [(t.symbol, t.quantity) for t in targets], tag))

        def debug(self, msg):
            calls.append(("debug", msg))

    class Slice(dict):
        def contains_key(self, k):
            return k in self

    names = dict(
        PythonData=PythonData, QCAlgorithm=QCAlgorithm, Slice=Slice, Symbol=object, BaseData=object,
        PortfolioTarget=lambda s, q: _Obj(symbol=s, quantity=q), SubscriptionDataConfig=object,
        SubscriptionDataSource=lambda *a: a, Resolution=_Obj(DAILY="daily"), TimeZones=_Obj(UTC="UTC"),
        FileFormat=_Obj(CSV="csv"), Globals=_Obj(data_folder="/lean/data"),
        SubscriptionTransportMedium=_Obj(LOCAL_FILE="local", REMOTE_FILE="remote", OBJECT_STORE="object-store"),
    )
    mod = types.ModuleType("AlgorithmImports")
    mod.__dict__.update(names)
    mod.__all__ = list(names)
    return mod


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_algorithm_trades_the_targets_on_trade_due_closes(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "AlgorithmImports", _fake_lean(calls))
    monkeypatch.delitem(sys.modules, "regimedesk_portfolio", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "p"))
    idx = pd.DatetimeIndex(["2020-01-02", "2020-01-03", "2020-01-06"], tz="UTC")
    t = pd.DataFrame({"AAPL": [0.2, 0.3, 0.3], "SP500X": [0.4, 0.5, 0.5],
                      "trade_due": [True, False, True]}, idx)
    frame = portfolio_rows(t, "erc")
    project = write_portfolio_lean_project(tmp_path / "p", frame, benchmark="SP500X", data_source="object-store",
                                           cash=50_000)
    assert project.tickers == {"AAPL": "AAPL", "SP500X": "SPY"} and project.benchmark == "SPY"
    mod = _import(project.main, "regimedesk_portfolio_main_under_test")
    algo = mod.RegimeDeskPortfolioAlgorithm()
    algo.initialize()
    assert algo.start == (2020, 1, 2) and algo.end == (2020, 1, 9) and algo.cash == 50_000.0
    assert algo.benchmark == "SPY"
    sig = mod.RegimeDeskWeight()
    assert sig.get_source(None, None, False) == ("regimedesk_portfolio_weights.csv", "object-store", "csv")
    lines = project.csv.read_text().splitlines()
    subs = {s.value: s for s in algo._equities}
    points = {name: [p for p in (sig.reader(_Obj(symbol=s), ln, None, False) for ln in lines) if p is not None]
              for name, s in subs.items()}
    assert [p["target_weight"] for p in points["SP500X"]] == [0.4, 0.5, 0.5]
    assert points["AAPL"][1].end_time == datetime(2020, 1, 3, 21, 0) > points["AAPL"][1].time
    for day, want in [(0, [("EQ:AAPL", 0.2), ("EQ:SPY", 0.4)]), (1, None), (2, [("EQ:AAPL", 0.3), ("EQ:SPY", 0.5)])]:
        calls.clear()
        algo.on_data(mod.Slice({subs[n]: points[n][day] for n in ("AAPL", "SP500X")}))
        if want is None:
            assert calls == []
        else:
            assert calls == [("cancel", "EQ:AAPL"), ("cancel", "EQ:SPY"), ("set_holdings", want, "regimedesk erc")]
    calls.clear()
    algo.on_data(mod.Slice({subs["AAPL"]: points["AAPL"][2]}))  # an asset's row missing: no partial trade
    assert [c[0] for c in calls] == ["debug"]
    with pytest.raises(ValueError, match="one method"):
        write_portfolio_lean_project(tmp_path / "q", pd.concat([frame, frame.assign(method="hrp")]))


# ----------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(("argv", "code", "needle"), [
    (["export", "csv"], 2, "--universe"),
    (["export", "csv", "KO", "--universe", "sp500-20"], 2, "not both"),
    (["export", "csv", "KO", "--portfolio", "erc"], 2, "--portfolio needs --universe"),
    (["export", "csv", "--universe", "sp500-20", "--policy", "ml"], 2, "--policy"),
    (["export", "csv", "--universe", "sp500-20", "--json"], 2, "--json needs --out"),
    (["export", "csv", "--universe", "sp500-20", "--start", "2010-01-01", "--end", "2009-01-01"], 2, "after --end"),
    (["export", "quantconnect", "--universe", "sp500-20", "--portfolio", "all", "--out", "x"], 2, "one method"),
    (["export", "quantconnect", "--universe", "sp500-20", "--out", "x", "--ticker", "SPY=VOO"], 2, "--ticker"),
    (["export", "csv", "--universe", "no-such-universe"], 1, "unknown universe"),
])
def test_bad_input_fails_fast_with_one_line(argv, code, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert out == "" and needle in err and len(err.strip().splitlines()) == 1, err
