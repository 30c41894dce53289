"""ONNX export of a stored signal model, for ML.NET, NinjaTrader, C# and other ONNX runtimes.

The XGBoost classifier is converted with ``onnxmltools``; a JSON sidecar beside the ``.onnx``
file names the input, the outputs and the features in the order the model expects them (the
ONNX graph itself only knows ``features: float[N, n_features]``). The probability of "up" is
column 1 of the ``probabilities`` output. :func:`onnx_max_difference` runs the file with
``onnxruntime`` and compares it with XGBoost's own predictions.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signals._store import StoredModel, library_versions

__all__ = ["OnnxExport", "export_onnx", "onnx_max_difference", "ONNX_INPUT"]

#: Name of the ONNX graph's input tensor.
ONNX_INPUT = "features"
_OPSET = 15


@dataclass(frozen=True)
class OnnxExport:
    """Where an export went and what it holds."""

    onnx_path: Path
    sidecar_path: Path
    features: tuple[str, ...]
    sidecar: dict[str, Any]


def _convert(stored: StoredModel) -> Any:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    clf = copy.deepcopy(stored.model.model)  # the stored (cached) model stays as it is
    booster = clf.get_booster()
    if booster.feature_names:  # the converter wants the positional names f0, f1, ...
        booster.feature_names = None
    n = len(stored.model.features)
    return convert_xgboost(clf, initial_types=[(ONNX_INPUT, FloatTensorType([None, n]))], target_opset=_OPSET)


def export_onnx(stored: StoredModel, path: str | Path) -> OnnxExport:
    """Write ``stored`` as ``path`` (``.onnx``) and its sidecar ``path`` with ``.json``.

    Parameters
    ----------
    stored : StoredModel
    path : str or Path
        The ``.onnx`` file to write (replaced atomically if it exists).

    Returns
    -------
    OnnxExport
    """
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"the ONNX file must end in .onnx, not {path.name!r}")
    onx = _convert(stored)
    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar_path = path.with_suffix(".json")
    features = tuple(stored.model.features)
    meta = stored.metadata
    sidecar = {
        "symbol": stored.symbol,
        "version": stored.version,
        "train_end": meta.get("train_end"),
        "input": {"name": ONNX_INPUT, "dtype": "float32", "shape": [None, len(features)]},
        "features": list(features),
        "outputs": {"label": "predicted class (1 = up)", "probabilities": "[P(down), P(up)] per row"},
        "label": meta.get("label"),
        "opset": _OPSET,
        "library_versions": library_versions(),
    }
    for target, data in ((path, onx.SerializeToString()),
                         (sidecar_path, json.dumps(sidecar, indent=2, default=str).encode())):
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return OnnxExport(path, sidecar_path, features, sidecar)


def onnx_max_difference(onnx_path: str | Path, stored: StoredModel, rows: np.ndarray) -> float:
    """Largest absolute difference between P(up) from ``onnxruntime`` and from XGBoost on ``rows``.

    ``rows`` has the model's features as columns, in the sidecar's order.
    """
    import onnxruntime as ort

    x = np.asarray(rows, dtype=np.float32)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {ONNX_INPUT: x}), strict=True))
    p_onnx = np.asarray(out["probabilities"])[:, 1]
    p_xgb = stored.model.model.predict_proba(x.astype(float))[:, 1]
    return float(np.max(np.abs(p_onnx - p_xgb))) if len(x) else 0.0
