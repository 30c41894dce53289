"""Model store: versions, round trip, metadata, point-in-time lookup, age policy, data hash."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from signals import (
    ModelConfig,
    ModelNotFoundError,
    ModelStore,
    StaleModelError,
    StaleModelWarning,
    UnreadableModelError,
    check_model_age,
    data_hash,
    fit_classifier,
    library_versions,
)
from tests.signals._bars import random_walk_bars


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    n = 300
    idx = pd.bdate_range("2020-01-01", periods=n, tz="UTC")
    X = pd.DataFrame({"a": rng.standard_normal(n), "b": rng.standard_normal(n)}, index=idx)
    y = pd.Series((X["a"] + rng.standard_normal(n) > 0).astype(float), index=idx)
    return X, y


@pytest.fixture(scope="module")
def model(data):
    X, y = data
    return fit_classifier(X, y, horizon=1, config=ModelConfig(max_trees=40))


def _meta(train_end: str, **extra):
    return {"train_end": train_end, **extra}


def test_versions_grow(tmp_path, model):
    store = ModelStore(tmp_path / "models")
    assert store.versions("SPY") == []
    a = store.save("SPY", model, _meta("2023-01-31"))
    b = store.save("SPY", model, _meta("2023-02-28"))
    assert (a.version, b.version) == ("v0001", "v0002")
    assert store.versions("SPY") == ["v0001", "v0002"]
    assert sorted(p.name for p in (tmp_path / "models" / "SPY").iterdir()) == ["v0001", "v0002"]
    assert sorted(p.name for p in b.path.iterdir()) == ["metadata.json", "model.ubj"]
    assert store.load("SPY").version == "v0002"
    assert store.load("SPY", "v0001").train_end == pd.Timestamp("2023-01-31")
    assert store.versions("QQQ") == []


def test_round_trip_predicts_identically(tmp_path, model, data):
    X, _ = data
    store = ModelStore(tmp_path)
    stored = store.save("BTC/USD", model, _meta("2023-03-01"))
    loaded = store.load("BTC/USD")
    assert loaded.path == stored.path == tmp_path / "BTC%2FUSD" / "v0001"
    fm = loaded.model
    assert fm.features == model.features == ("a", "b")
    assert (fm.max_depth, fm.n_trees, fm.n_train, fm.n_validation) == (
        model.max_depth, model.n_trees, model.n_train, model.n_validation
    )
    assert fm.validation_logloss == model.validation_logloss
    np.testing.assert_array_equal(fm.predict_proba(X), model.predict_proba(X))
    assert fm.gain_importance() == pytest.approx(model.gain_importance())


def test_metadata(tmp_path, model):
    store = ModelStore(tmp_path)
    s = store.save("SPY", model, _meta("2023-01-31T00:00:00+00:00", source="yahoo", auc=0.53))
    disk = json.loads((s.path / "metadata.json").read_text())
    assert disk == s.metadata
    assert disk["features"] == ["a", "b"]
    assert disk["train_end"] == "2023-01-31T00:00:00+00:00"
    assert disk["symbol"] == "SPY" and disk["source"] == "yahoo" and disk["auc"] == 0.53
    assert disk["n_trees"] == model.n_trees and disk["max_depth"] == model.max_depth
    assert disk["library_versions"] == library_versions()
    assert set(disk["library_versions"]) == {"python", "xgboost", "scikit-learn", "numpy", "pandas"}
    assert s.train_end == pd.Timestamp("2023-01-31", tz="UTC")
    with pytest.raises(ValueError, match="train_end"):
        store.save("SPY", model, {"source": "yahoo"})
    assert store.versions("SPY") == ["v0001"]  # a refused save leaves nothing behind
    assert [p.name for p in (tmp_path / "SPY").iterdir()] == ["v0001"]


def test_latest_is_point_in_time(tmp_path, model):
    store = ModelStore(tmp_path)
    store.save("SPY", model, _meta("2023-01-31T00:00:00+00:00", source="yahoo"))
    store.save("SPY", model, _meta("2023-06-30T00:00:00+00:00", source="alpaca"))
    store.save("SPY", model, _meta("2023-03-31T00:00:00+00:00", source="yahoo"))
    assert store.latest("SPY").version == "v0003"
    assert store.latest("SPY", as_of=pd.Timestamp("2023-07-01", tz="UTC")).version == "v0003"
    # v0003 was trained up to March: skipped for a February as_of; naive as_of is read as UTC
    assert store.latest("SPY", as_of=pd.Timestamp("2023-02-15")).version == "v0001"
    assert store.latest("SPY", as_of="2023-01-31").version == "v0001"  # train_end == as_of
    with pytest.raises(ModelNotFoundError, match="trained on data up to 2023-01-30"):
        store.latest("SPY", as_of=pd.Timestamp("2023-01-30"))
    assert store.latest("SPY", source="alpaca").version == "v0002"
    assert store.latest("SPY", source="yahoo").version == "v0003"
    assert store.latest("SPY", source="yahoo", as_of="2023-03-01").version == "v0001"
    with pytest.raises(ModelNotFoundError, match="source=alpaca"):
        store.latest("SPY", source="alpaca", as_of="2023-06-29")
    with pytest.raises(ModelNotFoundError, match="source=polygon"):
        store.latest("SPY", source="polygon")
    with pytest.raises(ModelNotFoundError, match="no stored model for QQQ"):
        store.latest("QQQ")
    with pytest.raises(ModelNotFoundError, match="no stored model for QQQ"):
        store.load("QQQ")
    with pytest.raises(ModelNotFoundError, match="v0009"):
        store.load("SPY", "v0009")


def test_check_model_age(tmp_path, model):
    stored = ModelStore(tmp_path).save("SPY", model, _meta("2023-01-31T00:00:00+00:00"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within the limit: no warning at all
        assert check_model_age(stored, pd.Timestamp("2023-02-10"), 30, "warn") == 10.0
        assert check_model_age(stored, pd.Timestamp("2023-03-02", tz="UTC"), 30, "refuse") == 30.0
    with pytest.warns(StaleModelWarning, match="31 days old"):
        assert check_model_age(stored, pd.Timestamp("2023-03-03"), 30, "warn") == 31.0
    with pytest.raises(StaleModelError, match="regimedesk train SPY"):
        check_model_age(stored, pd.Timestamp("2023-03-03"), 30, "refuse")
    for policy in ("warn", "refuse"):
        with pytest.raises(StaleModelError, match="look ahead"):
            check_model_age(stored, pd.Timestamp("2023-01-30"), 30, policy)


def test_data_hash():
    bars = random_walk_bars(200, seed=2)
    h = data_hash(bars)
    assert len(h) == 64 and int(h, 16) >= 0
    assert data_hash(bars.copy()) == h
    assert data_hash(random_walk_bars(200, seed=2)) == h
    changed = bars.copy()
    changed.iloc[137, 3] *= 1 + 1e-12
    assert data_hash(changed) != h
    assert data_hash(bars.iloc[:-1]) != h
    assert data_hash(bars[["close", "open", "high", "low", "volume"]]) != h  # order-sensitive
    shifted = bars.copy()
    shifted.index = shifted.index + pd.Timedelta(hours=1)
    assert data_hash(shifted) != h
    assert data_hash(random_walk_bars(200, seed=3)) != h


@pytest.mark.parametrize("symbol", ["", "a b", "x" * 33, "SPY;rm", "SP\nY", "naïve", "A*"])
def test_invalid_symbol(tmp_path, model, symbol):
    store = ModelStore(tmp_path / "store")
    with pytest.raises(ValueError, match="not a valid symbol"):
        store.versions(symbol)
    with pytest.raises(ValueError, match="not a valid symbol"):
        store.save(symbol, model, _meta("2023-01-31"))
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("symbol", ["^GSPC", "BRK.B", "ES=F", "EUR-USD", "x" * 32])
def test_valid_symbols(tmp_path, model, symbol):
    store = ModelStore(tmp_path)
    s = store.save(symbol, model, _meta("2023-01-31"))
    assert s.path.parent.parent == tmp_path and store.versions(symbol) == ["v0001"]


@pytest.mark.parametrize("symbol", ["..", "."])
def test_dot_symbols_stay_inside_the_root(tmp_path, model, symbol):
    # tmp_path / "store" / ".." is still inside tmp_path: the test itself cannot escape
    store = ModelStore(tmp_path / "store")
    with pytest.raises(ValueError):
        store.save(symbol, model, _meta("2023-01-31"))


def test_distinct_symbols_do_not_share_models(tmp_path, model):
    store = ModelStore(tmp_path)
    store.save("BTC/USD", model, _meta("2023-01-31"))
    with pytest.raises(ModelNotFoundError):
        store.latest("BTC:USD")


@pytest.mark.parametrize("damage", [
    ("model.ubj", b"garbage", "cannot be read .*model.ubj: .*Invalid model format"),
    ("model.ubj", b"", "cannot be read .*model.ubj"),
    ("model.ubj", None, "cannot be read .*model.ubj: No such file"),
    ("metadata.json", b"{not json", "cannot be read .*metadata.json: JSONDecodeError"),
    ("metadata.json", b"[1, 2]", "cannot be read .*metadata.json"),
    ("metadata.json", b'{"train_end": "soon"}', "cannot be read .*metadata.json"),
])
def test_a_damaged_version_is_reported_never_skipped(tmp_path, model, data, damage):
    """A damaged newest version raises UnreadableModelError (a ModelNotFoundError, so
    auto-training replaces it) naming the file; it never falls back to an older version."""
    name, content, message = damage
    store = ModelStore(tmp_path / "models")
    store.save("SPY", model, _meta("2023-01-31"))
    newest = store.save("SPY", model, _meta("2023-02-28"))
    target = newest.path / name
    if content is None:
        target.unlink()
    else:
        target.write_bytes(content)
    with pytest.raises(UnreadableModelError, match=message):
        store.latest("SPY", as_of=pd.Timestamp("2023-03-31"))
    with pytest.raises(ModelNotFoundError, match=message):
        store.load("SPY", "v0002")
    assert store.load("SPY", "v0001").version == "v0001"  # the older version itself is fine
    X, _ = data
    if name == "model.ubj":  # its metadata says it is too new for February 1: the older one serves
        assert store.latest("SPY", as_of=pd.Timestamp("2023-02-01")).model.predict_proba(X).shape == (len(X),)
    else:  # unreadable metadata cannot say when its data end: an error, not a guess
        with pytest.raises(UnreadableModelError):
            store.latest("SPY", as_of=pd.Timestamp("2023-02-01"))
