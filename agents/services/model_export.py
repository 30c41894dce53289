"""``regimedesk models export-onnx``: a stored signal model as ONNX, checked against XGBoost.

The export is refused (and nothing is left behind) unless ``onnxruntime`` reproduces XGBoost's
P(up) to :data:`TOLERANCE` on the model's validation rows: the last ``n_validation`` feature rows
of its training data, rebuilt from the bars (the features are causal, so the rows are those the
model was validated on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.config import Settings
from agents.services.ml import build_dataset, model_store
from analytics import RegimeDeskError
from signals import export_onnx, onnx_max_difference

__all__ = ["TOLERANCE", "export_model_onnx"]

#: Largest allowed difference between ONNX and XGBoost probabilities.
TOLERANCE = 1e-6


def export_model_onnx(store, symbol: str, settings: Settings, out: Path | None = None,
                      version: str | None = None, fit_cache=None) -> dict[str, Any]:
    """Export ``symbol``'s stored model (newest, or ``version``) and check it.

    Returns
    -------
    dict
        ``onnx``, ``sidecar`` (paths), ``symbol``, ``version``, ``features``, ``rows_checked``,
        ``max_difference``.

    Raises
    ------
    RegimeDeskError
        No such model, no validation rows, or ONNX predictions that differ by more than
        :data:`TOLERANCE` (the files are then removed).
    """
    stored = model_store(settings).load(symbol, version)
    out = Path(out) if out is not None else Path.cwd() / f"{symbol}-{stored.version}.onnx"
    ds = build_dataset(store, symbol, settings, fit_cache=fit_cache)
    feats = ds.features.loc[ds.features.index <= stored.train_end, list(stored.model.features)]
    rows = feats.dropna().to_numpy(dtype=float)[-max(1, int(stored.model.n_validation)):]
    if len(rows) == 0:
        raise RegimeDeskError(f"{symbol} {stored.version}: no complete feature rows before {stored.train_end.date()} "
                              "to check the export on")
    done = export_onnx(stored, out)
    diff = onnx_max_difference(done.onnx_path, stored, rows)
    if not np.isfinite(diff) or diff > TOLERANCE:
        done.onnx_path.unlink(missing_ok=True)
        done.sidecar_path.unlink(missing_ok=True)
        raise RegimeDeskError(f"{symbol} {stored.version}: ONNX and XGBoost differ by {diff:.3g} > {TOLERANCE:g} on "
                              f"{len(rows)} validation rows; nothing written")
    return {"symbol": symbol, "version": stored.version, "onnx": str(done.onnx_path),
            "sidecar": str(done.sidecar_path), "features": list(done.features), "rows_checked": int(len(rows)),
            "max_difference": diff}
