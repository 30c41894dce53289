"""The drift mark of a stored model: written by a drift check, read by the scheduled retrain.

``drift-due.json`` beside a symbol's model versions names the version a drift check found
drifted (:mod:`agents.services.drift`); :func:`agents.services.ml.retrain_due` reads it through
:func:`drift_retrain_reason`. Kept apart from both so neither imports the other.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from signals import StoredModel

__all__ = ["DRIFT_DUE_FILE", "drift_retrain_reason", "mark_due"]

#: The mark's file name, beside the versions of a symbol's models.
DRIFT_DUE_FILE = "drift-due.json"


def mark_due(model_dir: Path, version: str, checked_at: str, breaches: Sequence[str]) -> None:
    """Write the mark (atomically): ``version`` is due for retraining because of ``breaches``."""
    doc = {"version": version, "checked_at": checked_at, "breaches": list(breaches)}
    fd, tmp = tempfile.mkstemp(prefix=".drift-", dir=model_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
        os.replace(tmp, Path(model_dir) / DRIFT_DUE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def drift_retrain_reason(stored: StoredModel) -> str | None:
    """Why ``stored`` is due for retraining after a drift breach (None: not marked).

    A mark names one version: once a newer version is trained, the mark no longer applies to
    the newest model and nothing needs removing. An unreadable mark counts as none.
    """
    try:
        doc = json.loads((stored.path.parent / DRIFT_DUE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != stored.version:
        return None
    what = list(doc.get("breaches") or [])
    shown = "; ".join(map(str, what[:3])) + (f" (+{len(what) - 3} more)" if len(what) > 3 else "")
    return f"model {stored.version} drifted at {str(doc.get('checked_at', ''))[:10]}: {shown}"
