"""Typed configuration: defaults, template, errors that name the key, secrets from env only."""

from __future__ import annotations

import tomllib

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
