"""ONNX export of a signal model: onnxruntime reproduces XGBoost, and a wrong model is caught."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from signals import ModelConfig, ModelStore, export_onnx, fit_classifier, onnx_max_difference

FAST = ModelConfig(depths=(2,), max_trees=60)


def _stored(tmp_path, seed: int, name: str = "SYN"):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2015-01-02", periods=600, tz="UTC")
    X = pd.DataFrame(rng.standard_normal((600, 4)), index=idx, columns=["b", "a", "d", "c"])
    X.iloc[:20, 1] = np.nan  # missing values go through the export as XGBoost handles them
    y = pd.Series((rng.random(600) < 1 / (1 + np.exp(-2 * X["d"]))).astype(float), index=idx)
    model = fit_classifier(X, y, horizon=1, config=FAST)
    store = ModelStore(tmp_path / "models")
    store.save(name, model, {"train_end": idx[-1].isoformat()})
    return store.load(name), X


def test_onnx_reproduces_xgboost_and_names_the_features_in_order(tmp_path):
    stored, X = _stored(tmp_path, 0)
    done = export_onnx(stored, tmp_path / "out" / "syn.onnx")
    sidecar = json.loads(done.sidecar_path.read_text())
    assert sidecar["features"] == ["b", "a", "d", "c"] == list(stored.model.features)
    rows = X.to_numpy()
    assert onnx_max_difference(done.onnx_path, stored, rows) <= 1e-6
    # a different model's file is caught: the check can fail
    other, _ = _stored(tmp_path, 1, "OTHER")
    wrong = export_onnx(other, tmp_path / "out" / "other.onnx")
    assert onnx_max_difference(wrong.onnx_path, stored, rows) > 1e-3


def test_the_file_must_be_onnx(tmp_path):
    stored, _ = _stored(tmp_path, 0)
    with pytest.raises(ValueError, match=".onnx"):
        export_onnx(stored, tmp_path / "syn.bin")
