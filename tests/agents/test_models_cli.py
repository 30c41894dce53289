"""``regimedesk models status``: drift of a model trained on the builtin SP500 to 2012, checked with
data to 2016 - the numbers equal direct computations, breaches reach the output, the journal,
Telegram and the retrain mark."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from agents.cli import main
from agents.config import Secrets, load_settings
from agents.services import ml as _ml
from agents.services.context import AppContext
from agents.services.drift import DRIFT_EVENT, DRIFT_SESSION, drift_retrain_reason
from analytics import DataQualityWarning
from integrations import Journal
from signals import ModelStore
from signals._drift import population_stability_index
from tests.telegram_stub import TOKEN, BotApiStub

warnings.filterwarnings("ignore", category=DataQualityWarning)

#: Yearly refits keep the walk-forward quick (as tests/agents/test_ml_agent.py).
FAST = "[ml]\nrefit_every = 252\n"
TRAIN_AS_OF = "2012-12-31"
CHECK_AS_OF = "2016-12-30"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A home with one SP500 model trained on the builtin data up to 2012-12-31."""
    root = tmp_path_factory.mktemp("models-cli")
    home = root / "home"
    config = root / "fast.toml"
    config.write_text(FAST)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGIMEDESK_HOME", str(home))
        assert main(["--config", str(config), "train", "SP500", "--as-of", TRAIN_AS_OF]) == 0
    return home, config


@pytest.fixture
def home(trained, monkeypatch):
    monkeypatch.setenv("REGIMEDESK_HOME", str(trained[0]))
    return trained


def _status(capsys, config, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["--config", str(config), "models", "status", "SP500", "--as-of", CHECK_AS_OF, "--json",
                 *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_status_values_equal_direct_computations(home, capsys):
    _, config = home
    out = _status(capsys, config, "--no-record")
    (rep,) = out["models"]
    assert out["recorded"] is None
    assert rep["version"] == "v0001" and rep["train_end"].startswith(TRAIN_AS_OF)
    assert rep["as_of"].startswith(CHECK_AS_OF) and rep["training_data_matches"] is True

    # the same frames, built here directly
    settings = load_settings(config)
    store = AppContext(settings, Secrets.from_env({})).bars({"source": "builtin", "as_of": CHECK_AS_OF})
    ds = _ml.build_dataset(store, "SP500", settings)
    stored = ModelStore(settings.paths.models).load("SP500")
    cols = list(stored.model.features)
    idx = ds.features.index
    end = stored.train_end
    train = ds.features.loc[idx <= end, cols]
    after = ds.features.loc[idx > end, cols]
    recent = after.iloc[-63:]
    assert rep["training_bars"] == len(train) and rep["bars_after_train_end"] == len(after) == 1008
    assert pd.Timestamp(rep["recent_start"]) == recent.index[0]
    by_name = {f["feature"]: f for f in rep["features"]}
    assert list(by_name) == cols
    for col in cols:
        psi = population_stability_index(train[col], recent[col])
        ks = stats.ks_2samp(train[col].dropna(), recent[col].dropna())
        assert by_name[col]["psi"] == pytest.approx(psi, rel=1e-12)
        assert by_name[col]["ks_statistic"] == pytest.approx(ks.statistic, rel=1e-12)
        assert by_name[col]["ks_pvalue"] == pytest.approx(ks.pvalue, rel=1e-9)
    worst = max(cols, key=lambda c: by_name[c]["psi"])
    assert rep["worst_psi"] == {"feature": worst, "psi": by_name[worst]["psi"]}

    # recent score: the stored model's forecasts on the last 63 bars after train end whose label is known
    h = stored.metadata["label"]["horizon"]
    y = ds.labels.loc[after.index]
    assert y.iloc[-h:].isna().all() and y.iloc[:-h].notna().all()  # the last h bars are not scored
    p = stored.model.predict_proba(after.iloc[:-h])[-63:]
    brier = float(np.mean((p - y.iloc[:-h].to_numpy()[-63:]) ** 2))
    oos = stored.metadata["out_of_sample"]
    assert rep["validation"] == {"brier": oos["brier"], "auc": oos["auc"]}
    assert rep["recent"]["brier"] == pytest.approx(brier, rel=1e-12) and rep["recent"]["n_recent"] == 63
    assert rep["recent"]["brier_increase"] == pytest.approx(brier - oos["brier"], rel=1e-12)
    assert rep["recent"]["n"] == len(after) - h

    # breaches under the default thresholds are exactly the crossings of these numbers
    expected = sorted([("psi", c) for c in cols if by_name[c]["psi"] > 0.25]
                      + [("ks_pvalue", c) for c in cols if by_name[c]["ks_pvalue"] < 0.01]
                      + ([("brier_increase", None)] if brier - oos["brier"] > 0.02 else []),
                      key=str)
    assert sorted(((b["kind"], b["feature"]) for b in rep["breaches"]), key=str) == expected
    assert expected  # 2016 is far from the 2012 training window


def test_breaches_reach_output_journal_telegram_and_retrain_mark(home, capsys, monkeypatch, httpserver, tmp_path):
    _, fast = home
    stub = BotApiStub(httpserver)
    config = tmp_path / "low.toml"
    config.write_text(FAST + "\n[ml.drift]\npsi = 0.001\nks_pvalue = 1e-300\nbrier_increase = 1.0\n"
                      "retrain_on_breach = true\n"
                      f"[telegram]\nbase_url = '{stub.base_url}'\nbase_file_url = '{stub.base_file_url}'\n"
                      "chat_ids = [42]\n")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    settings = load_settings(config)
    with Journal(settings.paths.journal) as j:
        before = max([e["id"] for e in j.live_events(limit=10_000)], default=0)

    capsys.readouterr()
    assert main(["--config", str(config), "models", "status", "--as-of", CHECK_AS_OF]) == 0  # every stored symbol
    text = capsys.readouterr().out
    first = _status(capsys, config, "--no-record")["models"][0]  # the numbers, without recording again
    psi = {f["feature"]: f["psi"] for f in first["features"]}
    over = [c for c, v in psi.items() if v > 0.001]
    assert over and [b["feature"] for b in first["breaches"]] == over  # only PSI breaches at these thresholds
    row = next(line for line in text.splitlines() if line.startswith("SP500"))
    assert row.split()[-1] == str(len(over))
    for c in over:
        assert f"breach: PSI of {c} {psi[c]:.3g} > 0.001" in text
    assert f"{len(over)} breach(es) journaled; Telegram alert: 1/1 chat(s); marked due for retraining: SP500 v0001" \
        in text

    with Journal(settings.paths.journal) as j:
        events = j.live_events(after_id=before, limit=10_000)
    assert [(e["session"], e["kind"]) for e in events] == [(DRIFT_SESSION, DRIFT_EVENT)] * len(over)
    assert [e["message"] for e in events] == [
        f"SP500 v0001 (checked at {CHECK_AS_OF}): PSI of {c} {psi[c]:.3g} > 0.001" for c in over]

    (msg,) = [p for p, _ in stub.calls_to("sendMessage")]
    assert str(msg["chat_id"]) == "42" and msg["text"].startswith("RegimeDesk model drift:\nSP500 v0001")

    # checked again: journaled again, not alerted again (the same breaches of the same version)
    assert main(["--config", str(config), "models", "status", "--as-of", CHECK_AS_OF]) == 0
    assert f"{len(over)} breach(es) journaled; {len(over)} alerted before, not sent again" in capsys.readouterr().out
    assert len(stub.calls_to("sendMessage")) == 1

    stored = ModelStore(settings.paths.models).load("SP500")
    reason = drift_retrain_reason(stored)
    assert reason.startswith(f"model v0001 drifted at {CHECK_AS_OF}: PSI of {over[0]}")
    assert drift_retrain_reason(dataclasses.replace(stored, version="v0002")) is None  # a newer model is not due


def test_high_thresholds_journal_nothing(home, capsys, tmp_path):
    config = tmp_path / "high.toml"
    config.write_text(FAST + "\n[ml.drift]\npsi = 100\nks_pvalue = 1e-300\nbrier_increase = 1.0\n")
    settings = load_settings(config)
    rep = _status(capsys, config)["models"][0]
    assert rep["breaches"] == [] and rep["worst_psi"]["psi"] < 100
    with Journal(settings.paths.journal) as j:
        assert [e for e in j.live_events(limit=10_000) if e["session"] == DRIFT_SESSION
                and "> 100" in e["message"]] == []


def test_one_line_errors(home, capsys, tmp_path, monkeypatch):
    _, config = home
    cases = [
        (["models", "status", "NOPE_X"], "NOPE_X"),
        (["models", "status", "NASDAQ", "--as-of", CHECK_AS_OF], "no stored model for NASDAQ"),
        # the 2012 model saw data after mid-2012: checking then would look ahead
        (["models", "status", "SP500", "--as-of", "2012-06-29"], "trained on data up to 2012-06-29"),
    ]
    for argv, needle in cases:
        capsys.readouterr()
        assert main(["--config", str(config), *argv]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("regimedesk: error:") and needle in err[-1], err
        assert not any("Traceback" in line for line in err)
    monkeypatch.setenv("REGIMEDESK_HOME", str(tmp_path / "empty"))
    assert main(["models", "status"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("regimedesk: error: no stored models in ") and "\n" not in err


def test_drift_settings_defaults_and_validation(tmp_path):
    from analytics import ConfigError

    d = load_settings().ml.drift
    assert (d.psi, d.ks_pvalue, d.brier_increase, d.window, d.retrain_on_breach) == (0.25, 0.01, 0.02, 63, False)
    for body, key in (("psi = 0", "ml.drift.psi"), ("ks_pvalue = 1", "ml.drift.ks_pvalue"),
                      ("window = 19", "ml.drift.window"), ("brier_increase = -0.1", "ml.drift.brier_increase"),
                      ("psi_max = 1", "ml.drift.psi_max")):
        path = tmp_path / "bad.toml"
        path.write_text(f"[ml.drift]\n{body}\n")
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_settings(path)


def test_export_onnx_writes_the_model_and_its_features_and_reproduces_xgboost(home, capsys, tmp_path):
    import onnxruntime as ort

    _, config = home
    out = tmp_path / "onnx" / "sp500.onnx"
    capsys.readouterr()
    assert main(["--config", str(config), "models", "export-onnx", "SP500", "--as-of", CHECK_AS_OF,
                 "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    stored = ModelStore(home[0] / "models").load("SP500")
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert rep["version"] == sidecar["version"] == "v0001" and rep["onnx"] == str(out)
    assert sidecar["features"] == list(stored.model.features) == rep["features"]
    assert rep["rows_checked"] == stored.model.n_validation and rep["max_difference"] <= 1e-6
    # the file alone, as a C# user would run it: P(up) of the stored model on rows of features
    rows = np.random.default_rng(0).standard_normal((64, len(sidecar["features"]))).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    probs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sidecar["input"]["name"]: rows}),
                     strict=True))["probabilities"]
    np.testing.assert_allclose(probs[:, 1], stored.model.model.predict_proba(rows)[:, 1], atol=1e-6)
    # bad requests: one line, nothing written
    for argv, needle in ((["--out", str(tmp_path / "m.txt")], "--out must name a .onnx file"),
                         (["--version", "v0009"], "no model SP500 v0009")):
        code = main(["--config", str(config), "models", "export-onnx", "SP500", *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert code in (1, 2) and len(err) == 1 and needle in err[0], err
