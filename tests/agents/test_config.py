"""Typed configuration: defaults, template, errors that name the key, secrets from env only."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from agents.config import Secrets, Settings, config_template, load_settings
from analytics import ConfigError


def test_defaults_without_file(tmp_path):
    s = load_settings()
    assert s.data.source == "builtin"
    assert s.timeframes.LT.bar == "1W" and s.timeframes.US.bar == "5Min"
    assert s.home_dir == tmp_path / "home"  # REGIMEDESK_HOME from the isolation fixture


def test_template_parses_to_the_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("REGIMEDESK_HOME")
    path = tmp_path / "t.toml"
    path.write_text(config_template())
    assert load_settings(path) == Settings()
    assert tomllib.loads(config_template())  # valid TOML


def test_file_values_are_read(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nsource = "polygon"\n[data.validation.policy]\ngap = "error"\n'
                    '[timeframes.MT]\nbar = "1d"\nlookback = 500\n')
    s = load_settings(path)
    assert s.data.source == "polygon"
    assert s.data.validation.to_policy().action("gap") == "error"
    assert s.timeframes.MT.bar == "1D" and s.timeframes.MT.lookback == 500


def test_local_file_and_env_variable_are_found(tmp_path, monkeypatch):
    (tmp_path / "work" / "regimedesk.toml").write_text('[llm]\nmodel = "local-model"\n')
    assert load_settings().llm.model == "local-model"
    other = tmp_path / "other.toml"
    other.write_text('[llm]\nmodel = "env-model"\n')
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(other))
    assert load_settings().llm.model == "env-model"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[data]\nsourc = "file"\n', "unknown key 'data.sourc'"),
        ("[bogus]\nx = 1\n", "unknown key 'bogus'"),
        ('[data]\nsource = "yahoo"\n', "data.source"),
        ("[data]\nretries = 0\n", "data.retries"),
        ('[timeframes.LT]\nbar = "weekly"\nlookback = 10\n', "timeframes.LT"),
        ('[data.validation.policy]\ngap = "repair"\n', "cannot be repaired"),
        ("[ml]\nretrain_after_days = 30.0\n", "retrain_after_days .30. must be below ml.max_model_age_days .30."),
        ("[ml]\nretrain_after_days = -1\n", "ml.retrain_after_days"),
        ('[data.polygon]\napi_key = "abc"\n', "POLYGON_API_KEY"),
        ('[data.file]\ntimezone = "Mars/Olympus"\n', "unknown time zone"),
        ("not toml = = 1", "not valid TOML"),
    ],
)
def test_bad_configuration_names_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        s.data = None  # type: ignore[misc]


def test_secrets_from_env_are_masked():
    secrets = Secrets.from_env({"POLYGON_API_KEY": "pk-123456", "ALPACA_API_KEY": "  "})
    assert secrets.get("polygon_api_key") == "pk-123456"
    assert secrets.alpaca_api_key is None
    assert "pk-123456" not in repr(secrets)
    assert secrets.masked()["POLYGON_API_KEY"] == "set"
    assert secrets.masked()["ALPACA_API_KEY"] == "not set"


# -- risk limits: no silent off switch (issue 21) ---------------------------------------------

@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[risk]\nmax_staleness_bars = inf\n", "risk.max_staleness_bars"),
        ("[risk]\nmax_order_notional = inf\n", "risk.max_order_notional"),
        ("[risk]\nduplicate_window_seconds = nan\n", "risk.duplicate_window_seconds"),
        ("[risk]\nrate_window_seconds = inf\n", "risk.rate_window_seconds"),
        ("[risk]\nmax_order_qty = -1.0\n", "risk.max_order_qty"),
        ("[risk]\nmin_order_qty = 0\n", "risk.min_order_qty"),
        ("[risk]\nmin_order_qty = inf\n", "risk.min_order_qty"),
        ("[risk.regime_gross_caps]\nhigh_volatility = nan\n", "high_volatility"),
        # finite but vacuous (found by review: 1e300 switched the staleness check off unseen)
        ("[risk]\nmax_staleness_bars = 1e300\n", "risk.max_staleness_bars"),
        ("[risk]\nduplicate_window_seconds = 1e12\n", "risk.duplicate_window_seconds"),
        ("[risk]\nrate_window_seconds = 1e12\n", "risk.rate_window_seconds"),
    ],
)
def test_vacuous_risk_limits_are_refused_with_the_key_named(tmp_path, text, key):
    path = tmp_path / "risk.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(path)


def test_checks_off_lists_every_switched_off_check():
    from agents.config import RISK_OFF_AT_ZERO, RiskConfig

    assert set(Settings().risk.checks_off()) == {"allowed_symbols", "require_market_open", "min_confidence",
                                                 "max_order_qty", "max_order_notional"}
    all_off = RiskConfig(**{k: 0 for k in RISK_OFF_AT_ZERO}, allow_short=True)
    assert set(all_off.checks_off()) == {*RISK_OFF_AT_ZERO, "allowed_symbols", "require_market_open", "allow_short"}
    all_on = RiskConfig(allowed_symbols=["SP500"], require_market_open=True, min_confidence=0.1, max_order_qty=100,
                        max_order_notional=10_000)
    assert all_on.checks_off() == {}


def test_risk_limits_switch_off_exactly_the_zero_keys():
    from agents.config import RISK_OFF_AT_ZERO, RiskConfig
    from agents.services.risk import risk_limits

    on = risk_limits(Settings(risk=RiskConfig(min_confidence=0.1, max_order_qty=100, max_order_notional=10_000)))
    assert all(getattr(on, k) is not None for k in RISK_OFF_AT_ZERO)
    assert on.min_order_qty == 1.0
    off = risk_limits(Settings(risk=RiskConfig(**{k: 0 for k in RISK_OFF_AT_ZERO})))
    assert all(getattr(off, k) is None for k in RISK_OFF_AT_ZERO)
    assert off.max_position_weight == 1.0 and off.max_gross_exposure == 1.0  # not switchable
    # settings built in code bypass validation: a NaN must not switch a check off silently
    sneaky = Settings(risk=RiskConfig.model_construct(**{**RiskConfig().model_dump(), "max_staleness_bars": float("nan")}))
    with pytest.raises(ValueError, match="risk.max_staleness_bars"):
        risk_limits(sneaky)


def test_config_show_and_risk_status_print_the_checks_switched_off(tmp_path, capsys, monkeypatch):
    import json

    from agents.cli import main

    path = tmp_path / "off.toml"
    path.write_text("[risk]\nmax_staleness_bars = 0\nallowed_symbols = [\"SP500\"]\n")
    monkeypatch.setenv("REGIMEDESK_CONFIG", str(path))
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "# risk.max_staleness_bars: 0: check off" in out and "# risk.allowed_symbols" not in out
    assert main(["config", "show", "--json"]) == 0
    assert "max_staleness_bars" in json.loads(capsys.readouterr().out)["risk_checks_off"]
    assert main(["risk", "status"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "checks switched off" in ln)
    assert "max_staleness_bars (0: check off)" in line and "min_confidence" in line
    assert main(["risk", "status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["checks_off"]) == {"max_staleness_bars", "require_market_open", "min_confidence",
                                      "max_order_qty", "max_order_notional"}


@pytest.mark.parametrize(("make", "what"), [(lambda p: p.mkdir(), "is a directory"),
                                            (None, "is not a regular file")])
def test_a_config_path_that_is_not_a_file_says_what_it_is(tmp_path, make, what):
    path = tmp_path / "conf"
    if make is not None:
        make(path)
    else:
        path = Path("/dev/null")
    with pytest.raises(ConfigError, match=what):
        load_settings(path)


# -- timeframes: one table (issue 22) ---------------------------------------------------------


def test_timeframe_defaults_equal_the_table():
    from agents.config import TIMEFRAME_NAMES, TimeframesConfig
    from analytics import TIMEFRAME_TABLE, TIMEFRAMES

    assert TIMEFRAME_NAMES == TIMEFRAMES == ("LT", "MT", "ST", "US")
    assert tuple(TimeframesConfig.model_fields) == TIMEFRAMES
    defaults = Settings().timeframes
    assert {tf: (getattr(defaults, tf).bar, getattr(defaults, tf).lookback) for tf in TIMEFRAMES} == {
        tf: (str(row.bar), row.lookback) for tf, row in TIMEFRAME_TABLE.items()
    }
    # the values themselves (the table's are pinned in tests/analytics/test_timeframes.py)
    assert defaults.model_dump() == {"LT": {"bar": "1W", "lookback": 156}, "MT": {"bar": "1D", "lookback": 252},
                                     "ST": {"bar": "1D", "lookback": 63}, "US": {"bar": "5Min", "lookback": 390}}
    sections = tomllib.loads(config_template())["timeframes"]
    assert sections == defaults.model_dump()


def test_the_config_model_is_not_called_timeframespec():
    import agents.config as config
    import analytics

    assert not hasattr(config, "TimeframeSpec")
    assert config.TimeframeSettings is not analytics.TimeframeSpec
    assert type(Settings().timeframes.LT) is config.TimeframeSettings


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[timeframes.XT]\nbar = "1D"\nlookback = 30\n', "unknown key 'timeframes.XT'"),
        ('[timeframes.LT]\nbar = "1W"\nlookback = 156\nbars = "1W"\n', "unknown key 'timeframes.LT.bars'"),
        ('[timeframes.US]\nbar = "5Min"\nlookback = 19\n', "timeframes.US.lookback"),
        ('[ml]\nregime_timeframe = "US"\n', "ml.regime_timeframe: Input should be 'LT', 'MT' or 'ST'"),
    ],
)
def test_timeframe_sections_reject_unknown_keys_and_values(tmp_path, text, message):
    path = tmp_path / "tf.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_a_timeframe_section_overrides_only_its_keys(tmp_path):
    path = tmp_path / "tf.toml"
    path.write_text('[timeframes.ST]\nlookback = 126\nbar = "1d"\n[ml]\nregime_timeframe = "LT"\n')
    s = load_settings(path)
    assert (s.timeframes.ST.bar, s.timeframes.ST.lookback) == ("1D", 126)
    assert (s.timeframes.LT.bar, s.timeframes.LT.lookback) == ("1W", 156)
    assert s.ml.regime_timeframe == "LT"
