"""``regimedesk risk var --universe`` and ``regimedesk risk stress`` (issue 25), through the CLI.

Small file universes of the builtin source keep this fast; the truths are the attribution
identity (components sum to the total) and P&L recomputed by hand from the builtin closes.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from agents.cli import main
from agents.config import load_settings
from agents.services.context import AppContext


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def universe(tmp_path):
    path = tmp_path / "three.txt"
    path.write_text("KO, JNJ  # staples and health\nXOM\n")
    return str(path)


@pytest.fixture
def single(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("KO\n")
    return str(path)


def builtin_close(symbol: str) -> pd.Series:
    settings = load_settings(None)
    store = AppContext(settings, None).bars({"source": "builtin", "as_of": None, "start": "1900-01-01"})
    close = store.get(symbol, "MT").frame["close"]
    close.index = close.index.tz_localize(None).normalize()
    return close


def test_component_var_sums_to_the_total_for_every_method(capsys, universe):
    code, out, err = run(capsys, "risk", "var", "--universe", universe, "--method", "all", "--as-of", "2019-12-31",
                         "--window", "250", "--sims", "20000", "--seed", "3", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["as_of"] == "2019-12-31" and doc["window"] == 250
    assert doc["weights_method"] == "erc"
    w = doc["weights"]
    assert set(w) == {"KO", "JNJ", "XOM"}
    # erc within the risk_on caps (gross 1, per asset 0.25): three assets at most 0.25 each
    assert all(0 < v <= 0.25 + 1e-9 for v in w.values())
    assert set(doc["results"]) == {"historical", "normal", "student_t", "filtered", "monte_carlo"}
    for method, r in doc["results"].items():
        assert r["var"] > 0 and r["es"] >= r["var"] - 1e-12, method
        assert abs(sum(a["component_var"] for a in r["assets"]) - r["var"]) < 1e-9, method
        assert abs(sum(a["component_es"] for a in r["assets"]) - r["es"]) < 1e-9, method
        assert abs(sum(a["share"] for a in r["assets"]) - 1.0) < 1e-9, method
        assert [a["weight"] for a in r["assets"]] == [w[a["symbol"]] for a in r["assets"]]
    mc = doc["results"]["monte_carlo"]
    assert mc["n"] == 20000 and mc["seed"] == 3 and mc["standard_error"] > 0
    assert doc["results"]["historical"]["standard_error"] is None


def test_one_asset_historical_var_is_the_order_statistic(capsys, single):
    code, out, err = run(capsys, "risk", "var", "--universe", single, "--weights", "KO=0.5", "--as-of", "2015-06-30",
                         "--window", "200", "--level", "0.95", "--json")
    assert code == 0, err
    r = json.loads(out)["results"]["historical"]
    rets = builtin_close("KO").loc[:"2015-06-30"].pct_change().iloc[-200:].to_numpy()
    expected = -0.5 * float(pd.Series(rets).sort_values().iloc[int((200 - 1) * 0.05)])
    assert r["var"] == pytest.approx(expected, abs=1e-12)
    assert r["assets"][0]["component_var"] == pytest.approx(expected, abs=1e-12)


def test_one_asset_stress_pnl_is_its_scenario_return(capsys, single):
    code, out, err = run(capsys, "risk", "stress", "--universe", single, "--weights", "KO=0.6", "--scenario", "gfc",
                         "--as-of", "2015-06-30", "--json")
    assert code == 0, err
    sc = json.loads(out)["scenarios"]["gfc"]
    close = builtin_close("KO")
    base = close.loc[:"2007-10-08"].iloc[-1]
    end = close.loc[:"2009-03-09"].iloc[-1]
    assert sc["base_date"] == close.loc[:"2007-10-08"].index[-1].date().isoformat()
    assert sc["pnl"] == pytest.approx(0.6 * (end / base - 1.0), abs=1e-12)
    assert sc["coverage"] == 1.0 and sc["missing"] == []
    assert [d["symbol"] for d in sc["drivers"]] == ["KO"]
    window = close.loc[sc["base_date"]:"2009-03-09"]
    book = 1.0 + 0.6 * (window / base - 1.0)
    daily = (book / book.shift(1) - 1.0).iloc[1:]
    assert sc["worst_return"] == pytest.approx(float(daily.min()), abs=1e-12)
    assert sc["worst_date"] == daily.idxmin().date().isoformat()


def test_shock_on_the_only_held_asset_is_weight_times_shock(capsys, single):
    code, out, err = run(capsys, "risk", "stress", "--universe", single, "--weights", "KO=0.4", "--scenario", "covid",
                         "--shock", "KO=-25%", "--json")
    assert code == 0, err
    sh = json.loads(out)["shock"]
    assert sh["pnl"] == pytest.approx(0.4 * -0.25, abs=1e-15)
    assert sh["drivers"] == [{"symbol": "KO", "pnl": pytest.approx(-0.1, abs=1e-15)}]


def test_shock_on_the_index_spreads_by_beta(capsys, single):
    code, out, err = run(capsys, "risk", "stress", "--universe", single, "--weights", "KO=1", "--scenario", "covid",
                         "--shock", "SP500X=-0.1", "--json")
    assert code == 0, err
    sh = json.loads(out)["shock"]
    assert set(sh["returns"]) == {"KO", "SP500X"}
    beta = sh["returns"]["KO"] / -0.1
    assert 0.1 < beta < 2.0  # a staple moves with the index, less than one for one in most windows
    assert sh["pnl"] == pytest.approx(sh["returns"]["KO"], abs=1e-15)


def test_human_output_prints_the_tables(capsys, universe):
    code, out, err = run(capsys, "risk", "var", "--universe", universe, "--method", "normal", "--weights", "equal",
                         "--as-of", "2019-12-31")
    assert code == 0, err
    assert "normal: VaR" in out and "component VaR" in out and "total" in out
    code, out, err = run(capsys, "risk", "stress", "--universe", universe, "--scenario", "all",
                         "--as-of", "2019-12-31", "--shock", "SP500X=-20%")
    assert code == 0, err
    assert "gfc" in out and "worst drivers" in out and "shock SP500X -20.0%" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (("risk", "stress", "--universe", "{u}", "--scenario", "crash1929"), "unknown --scenario"),
        (("risk", "stress", "--universe", "{u}", "--shock", "SP500X-20%"), "expected SYMBOL=RETURN"),
        (("risk", "stress", "--universe", "{u}", "--shock", "SP500X=lots"), "not a number"),
        (("risk", "stress", "--universe", "{u}", "--shock", "NOPE=-5%"), "unknown symbol"),
        (("risk", "stress", "--universe", "{u}", "--shock", "KO=-5%", "--shock", "ko=-1%"), "given twice"),
        (("risk", "stress", "--universe", "{u}", "--weights", "AAPL=0.5"), "not in the"),
        (("risk", "var", "--universe", "{u}", "--method", "garch"), "unknown --method"),
        (("risk", "var", "--universe", "{u}", "--weights", "KO=abc"), "not a number"),
        (("risk", "var", "SP500", "--universe", "{u}"), "not both"),
        (("risk", "var", "SP500", "--backtest", "--weights", "erc"), "--weights goes with --universe"),
        (("risk", "var"), "--universe"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, universe, argv, needle):
    code, out, err = run(capsys, *(a.format(u=universe) for a in argv))
    line = one_line(err)
    assert code == 2, line
    assert line.startswith("regimedesk: error:") and needle in line
    assert out == ""


def test_universe_var_backtest_is_the_backtest_of_the_constant_weight_portfolio(capsys, universe):
    from analytics import var_backtest

    code, out, err = run(capsys, "risk", "var", "--universe", universe, "--weights", "KO=0.5,JNJ=0.3,XOM=0.2",
                         "--backtest", "--method", "historical", "--level", "0.99", "--window", "250",
                         "--as-of", "2012-12-31", "--json")
    assert code == 0, err
    doc = json.loads(out)
    closes = pd.DataFrame({s: builtin_close(s) for s in ("KO", "JNJ", "XOM")}).loc[:"2012-12-31"].dropna()
    series = (closes.pct_change().iloc[1:] * pd.Series({"KO": 0.5, "JNJ": 0.3, "XOM": 0.2})).sum(axis=1)
    want = var_backtest(series, level=0.99, method="historical", window=250)
    assert doc["n"] == want.n and doc["n_exceptions"] == want.n_exceptions > 0
    assert doc["kupiec"]["pvalue"] == pytest.approx(want.kupiec.pvalue, rel=1e-12)
    assert doc["basel_zone"] == want.basel_zone
    # A parametric or Monte Carlo method has no rolling backtest here: one line, exit 2.
    code, _, err = run(capsys, "risk", "var", "--universe", universe, "--backtest", "--method", "normal")
    assert code == 2 and "gjr_filtered, filtered or historical" in one_line(err)
