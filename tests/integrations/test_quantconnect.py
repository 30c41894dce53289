"""The generated LEAN project: mypy against QuantConnect's published stubs (as LEAN's own syntax
check runs it) with a negative control, the algorithm's logic on a stand-in for LEAN, the parser
module, and the options' validation."""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from integrations import (
    SIGNAL_COLUMNS,
    coerce_signal_frame,
    lean_data_location,
    lean_tickers,
    read_signal_csv,
    write_lean_project,
    write_signal_csv,
)

mypy_api = pytest.importorskip("mypy.api")
# find_spec, not import: the stubs package ships a runtime __init__.py meant for LEAN only.
if importlib.util.find_spec("QuantConnect") is None:  # pragma: no cover
    pytest.skip("quantconnect-stubs (a dev dependency) provides the LEAN API stubs", allow_module_level=True)

#: LEAN's run_syntax_check.py: the imports it adds in place of `from AlgorithmImports import *`.
_LEAN_IMPORTS = ("from AlgorithmImports import *;from datetime import date, time, datetime, timedelta;"
                 "import pandas as pd;import numpy as np;import math;import json;import os;")
_LEAN_FLAGS = ["--skip-cache-mtime-checks", "--skip-version-check", "--show-error-codes", "--no-error-summary",
               "--no-color-output", "--ignore-missing-imports", "--check-untyped-defs"]


def _frame(symbols=("SP500",), n: int = 6) -> pd.DataFrame:
    rows = []
    for s_i, sym in enumerate(symbols):
        for i, d in enumerate(pd.bdate_range("2010-03-10", periods=n)):
            r = dict.fromkeys(SIGNAL_COLUMNS)
            r.update(
                date=d.date().isoformat(), symbol=sym,
                bar_start=(d + pd.Timedelta(hours=9, minutes=30)).tz_localize("America/New_York").tz_convert("UTC").isoformat(),
                available_at=(d + pd.Timedelta(hours=16)).tz_localize("America/New_York").tz_convert("UTC").isoformat(),
                close=1000.0 / 3 + i + s_i, lt_label="bull", lt_probability=0.1 + 1e-17 * i, lt_bar="2010-03-05",
                mt_label="high_volatility" if i % 2 else "calm", mt_probability=2 / 3,
                regime_family="risk_on", p_up=None if i == 0 else 0.5 + i / 97, policy="combined",
                target_weight=None if i == 0 else -0.0 if i == 1 else 1 / (i + 1.5),
                approved_weight=None if i == 0 else 0.0 if i == 1 else 1 / (i + 2.5),
                gate_action=None if i == 0 else "trim" if i == 3 else "approve",
                gate_reasons="trim:regime_gross_cap;x" if i == 3 else None,
            )
            rows.append(r)
    f = pd.DataFrame(rows)
    return f.sort_values(["available_at", "symbol"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("mypy-cache")


def _lean_check(project: Path, cache: Path, monkeypatch, main_text: str | None = None) -> list[str]:
    """Type-check main.py the way LEAN's run_syntax_check.py does; the error lines of main.py."""
    text = main_text if main_text is not None else (project / "main.py").read_text()
    adjusted = project.parent / f"{project.name}_checked_main.py"
    adjusted.write_text('# mypy: disable-error-code="no-redef"\n'
                        + text.replace("from AlgorithmImports import *", _LEAN_IMPORTS))
    ini = project.parent / "empty-mypy.ini"
    ini.write_text("[mypy]\n")
    monkeypatch.setenv("MYPYPATH", str(project))  # resolves `import regimedesk_signals`, as LEAN sets it
    out, err, _ = mypy_api.run([*_LEAN_FLAGS, "--config-file", str(ini), "--cache-dir", str(cache), str(adjusted)])
    assert "Traceback" not in err
    return [line for line in (out + err).splitlines() if line.startswith(str(adjusted)) and ": error:" in line]


@pytest.mark.parametrize(("source", "option"), [
    ("file", {}), ("url", {"data_url": "https://example.com/s.csv"}), ("object-store", {"object_store_key": "rd/s.csv"}),
])
def test_generated_algorithm_type_checks_against_the_lean_stubs(tmp_path, mypy_cache, monkeypatch, source, option):
    project = write_lean_project(tmp_path / "proj", _frame(("SP500", "NASDAQ")), data_source=source, **option)
    assert _lean_check(project.directory, mypy_cache, monkeypatch) == []
    # the parser module is plain, fully typed Python
    out, err, code = mypy_api.run(["--strict", "--no-error-summary", "--cache-dir", str(mypy_cache),
                                   "--config-file", str(tmp_path / "empty-mypy.ini"), str(project.parser)])
    assert code == 0, out + err


def test_type_check_catches_wrong_api_use(tmp_path, mypy_cache, monkeypatch):
    """Negative control: the same check reports a missing argument and a misspelt method."""
    project = write_lean_project(tmp_path / "proj", _frame())
    text = project.main.read_text()
    anchor = "            self._rebalance(equity, weight)\n"
    assert anchor in text
    broken = text.replace(anchor, anchor + "            self.set_holdings()\n            self.set_holding(equity, weight)\n")
    errors = _lean_check(project.directory, mypy_cache, monkeypatch, broken)
    assert any("set_holdings" in e and "call-overload" in e for e in errors), errors
    assert any("set_holding" in e and "attr-defined" in e for e in errors), errors
    assert len(errors) == 2


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_missing_text_is_none_in_every_text_column():
    """A text column with some text and one with none hold the same missing value (None).
    Under pandas 3 the first used to get NaN, so an export's prefix differed from a longer
    export's rows whenever only one of them had a gate reason."""
    f = coerce_signal_frame(_frame(("SP500",)))
    assert f["gate_reasons"].tolist() == [None, None, None, "trim:regime_gross_cap;x", None, None]
    assert f["st_label"].tolist() == [None] * 6
    assert f["gate_action"].tolist()[:2] == [None, "approve"]
    assert all(f[c].dtype == object for c in ("gate_reasons", "st_label", "gate_action"))


def test_parser_reads_every_value_exactly(tmp_path):
    f = coerce_signal_frame(_frame(("SP500", "NASDAQ")))
    project = write_lean_project(tmp_path / "p", f)
    mod = _import(project.parser, "regimedesk_signals_exact")
    assert mod.COLUMNS == SIGNAL_COLUMNS
    lines = project.csv.read_text().splitlines()
    rows = [mod.parse_line(x) for x in lines[1:]]
    for row, (_, want) in zip(rows, f.iterrows(), strict=True):
        for col in SIGNAL_COLUMNS:
            w = want[col]
            assert row.values[col] == (None if w is None or (isinstance(w, float) and math.isnan(w)) else w), col
    assert rows[1].bar_start == datetime(2010, 3, 10, 14, 30) and rows[1].available_at == datetime(2010, 3, 10, 21, 0)
    # 2010-03-15 is after the switch to daylight saving time: 16:00 New York is 20:00 UTC
    assert rows[6].available_at == datetime(2010, 3, 15, 20, 0)
    with pytest.raises(ValueError, match="fields"):
        mod.parse_line("2010-01-04,SP500")
    with pytest.raises(ValueError, match="offset"):
        mod.utc_naive("2010-01-04T21:00:00")
    pd.testing.assert_frame_equal(read_signal_csv(project.csv), f)


def test_csv_writer_and_reader_refuse_bad_input(tmp_path):
    f = _frame()
    f.loc[2, "gate_reasons"] = "a,b"
    with pytest.raises(ValueError, match="commas"):
        write_signal_csv(f, tmp_path / "x.csv")
    f = _frame()
    f.loc[2, "close"] = np.inf
    with pytest.raises(ValueError, match="finite"):
        write_signal_csv(f, tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a RegimeDesk signal CSV"):
        read_signal_csv(tmp_path / "y.csv")


def test_options_are_validated():
    assert lean_tickers(["SP500", "NASDAQ", "AAPL"]) == {"SP500": "SPY", "NASDAQ": "QQQ", "AAPL": "AAPL"}
    assert lean_tickers(["SP500"], {"sp500": "voo"}) == {"SP500": "VOO"}
    for symbols, over, msg in [(["BTC/USD"], None, "no tradable"), (["SP500"], {"NASDAQ": "QQQ"}, "not among"),
                               (["SP500", "NASDAQ"], {"NASDAQ": "SPY"}, "several symbols")]:
        with pytest.raises(ValueError, match=msg):
            lean_tickers(symbols, over)
    assert lean_data_location("file") == "custom/regimedesk_signals.csv"
    assert lean_data_location("object-store") == "regimedesk_signals.csv"
    assert lean_data_location("url", data_url="https://x.org/a.csv") == "https://x.org/a.csv"
    for args, msg in [(("s3",), "--data-source"), (("url",), "--data-url"), (("file", "https://x"), "--data-url"),
                      (("object-store", None, "/abs"), "--object-store-key"),
                      (("url", "https://x.org/a.csv", "k"), "--object-store-key")]:
        with pytest.raises(ValueError, match=msg):
            lean_data_location(*args)
    with pytest.raises(ValueError, match="no row has an approved weight"):
        write_lean_project("unused", _frame().assign(approved_weight=np.nan))
    with pytest.raises(ValueError, match="cash"):
        write_lean_project("unused", _frame(), cash=0)


# --- a stand-in for the LEAN runtime: just enough to run main.py's logic -----------------

class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _fake_lean(orders: list, holdings: dict):
    class PythonData:
        def __init__(self):
            self._props: dict = {}
            self.symbol = self.time = self.end_time = self.value = None

        def __setitem__(self, k, v):
            self._props[k.lower()] = v

        def __getitem__(self, k):
            return self._props[k.lower()]

    class QCAlgorithm:
        def __init__(self):
            self.transactions = _Obj(cancel_open_orders=lambda s: orders.append(("cancel", s)))

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

        def calculate_order_quantity(self, symbol, target):
            return round(target * 1000) - holdings.get(symbol, 0)

        def market_on_open_order(self, symbol, quantity, tag=""):
            orders.append(("moo", symbol, quantity, tag))

    class Slice(dict):
        def contains_key(self, k):
            return k in self

    names = dict(
        PythonData=PythonData, QCAlgorithm=QCAlgorithm, Slice=Slice, Symbol=object, BaseData=object,
        SubscriptionDataConfig=object, SubscriptionDataSource=lambda *a: a, Resolution=_Obj(DAILY="daily"),
        TimeZones=_Obj(UTC="UTC"), FileFormat=_Obj(CSV="csv"), Globals=_Obj(data_folder="/lean/data"),
        SubscriptionTransportMedium=_Obj(LOCAL_FILE="local", REMOTE_FILE="remote", OBJECT_STORE="object-store"),
    )
    mod = types.ModuleType("AlgorithmImports")
    mod.__dict__.update(names)
    mod.__all__ = list(names)
    return mod


@pytest.fixture
def _parser_module_cleanup():
    sys.modules.pop("regimedesk_signals", None)
    yield
    sys.modules.pop("regimedesk_signals", None)


@pytest.mark.usefixtures("_parser_module_cleanup")
def test_algorithm_logic_on_a_stand_in_for_lean(tmp_path, monkeypatch):
    orders: list = []
    holdings: dict = {}
    monkeypatch.setitem(sys.modules, "AlgorithmImports", _fake_lean(orders, holdings))
    monkeypatch.syspath_prepend(str(tmp_path / "p"))
    f = _frame(("SP500", "NASDAQ"))
    project = write_lean_project(tmp_path / "p", f, tickers={"NASDAQ": "ONEQ"}, cash=250_000)
    algo_mod = _import(project.main, "regimedesk_main_under_test")
    algo = algo_mod.RegimeDeskAlgorithm()
    algo.initialize()
    assert algo.start == (2010, 3, 11) and algo.end == (2010, 3, 22) and algo.cash == 250_000.0
    assert algo.benchmark == "ONEQ" and algo_mod.ALLOCATION == 0.5  # first symbol in the file
    sig = algo_mod.RegimeDeskSignal()
    assert sig.get_source(None, None, False) == ("/lean/data/custom/regimedesk_signals.csv", "local", "csv")
    config = _Obj(symbol=_Obj(value="NASDAQ"))
    lines = project.csv.read_text().splitlines()
    points = [p for p in (sig.reader(config, line, None, False) for line in lines) if p is not None]
    want = f[(f["symbol"] == "NASDAQ") & f["approved_weight"].notna()]
    assert len(points) == len(want) == 5
    for p, (_, row) in zip(points, want.iterrows(), strict=True):
        assert p.symbol is config.symbol and p["approved_weight"] == row["approved_weight"]
        assert p.end_time == pd.Timestamp(row["available_at"]).tz_convert("UTC").tz_localize(None)
        assert p.time == pd.Timestamp(row["bar_start"]).tz_convert("UTC").tz_localize(None) < p.end_time
        assert p.value == row["close"]
    # a NASDAQ row reaches on_data: cancel older orders, then a market-on-open order to the weight
    nasdaq_signal = next(s for s in algo._equities if s.value == "NASDAQ")
    holdings["EQ:ONEQ"] = 100
    algo.on_data(algo_mod.Slice({nasdaq_signal: points[-1]}))
    w = points[-1]["approved_weight"] * 0.5
    assert orders == [("cancel", "EQ:ONEQ"), ("moo", "EQ:ONEQ", round(w * 1000) - 100, f"regimedesk weight {w:.4f}")]
    orders.clear()
    algo.on_data(algo_mod.Slice())
    assert orders == []
    for source, opt, want_src in [("url", {"data_url": "https://x.org/s.csv"}, ("https://x.org/s.csv", "remote", "csv")),
                                  ("object-store", {}, ("regimedesk_signals.csv", "object-store", "csv"))]:
        p2 = write_lean_project(tmp_path / source, f, data_source=source, **opt)
        m2 = _import(p2.main, f"regimedesk_main_{source.replace('-', '_')}")
        assert m2.RegimeDeskSignal().get_source(None, None, False) == want_src


def test_every_column_is_documented():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "export.md").read_text()
    missing = [c for c in SIGNAL_COLUMNS if f"`{c}`" not in doc]
    assert missing == []
