"""The drift marks of a stored model: what a drift check found and what it already alerted.

``drift-due.json`` beside a symbol's model versions names the version a drift check found
drifted (:mod:`agents.services.drift`); :func:`agents.services.ml.retrain_due` reads it through
:func:`drift_retrain_reason`. ``drift-alerted.json`` beside it lists the breaches of a version
already sent to Telegram, so that a check repeated every day alerts a breach once per model
version, not every day. Kept apart from both modules so neither imports the other.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from signals import StoredModel

__all__ = ["DRIFT_ALERTED_FILE", "DRIFT_DUE_FILE", "alerted_breaches", "drift_retrain_reason", "mark_due",
           "remember_alerted"]

#: The mark's file name, beside the versions of a symbol's models.
DRIFT_DUE_FILE = "drift-due.json"
#: The breaches already alerted, beside the versions of a symbol's models.
DRIFT_ALERTED_FILE = "drift-alerted.json"


def _write(model_dir: Path, name: str, doc: dict) -> None:
    """Replace ``model_dir/name`` with ``doc`` as JSON, atomically."""
    fd, tmp = tempfile.mkstemp(prefix=".drift-", dir=model_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
        os.replace(tmp, Path(model_dir) / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(model_dir: Path, name: str) -> dict | None:
    try:
        doc = json.loads((Path(model_dir) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def mark_due(model_dir: Path, version: str, checked_at: str, breaches: Sequence[str]) -> None:
    """Write the mark (atomically): ``version`` is due for retraining because of ``breaches``."""
    _write(model_dir, DRIFT_DUE_FILE, {"version": version, "checked_at": checked_at, "breaches": list(breaches)})


def alerted_breaches(model_dir: Path, version: str) -> set[str]:
    """Keys of the breaches of ``version`` already alerted (empty for another version or no file).

    An unreadable file counts as none: a breach is then alerted again, never lost.
    """
    doc = _read(model_dir, DRIFT_ALERTED_FILE)
    if doc is None or doc.get("version") != version or not isinstance(doc.get("breaches"), list):
        return set()
    return {str(k) for k in doc["breaches"]}


def remember_alerted(model_dir: Path, version: str, keys: Sequence[str]) -> None:
    """Add ``keys`` to the alerted breaches of ``version`` (a new version starts afresh)."""
    keys = sorted(alerted_breaches(model_dir, version) | set(keys))
    _write(model_dir, DRIFT_ALERTED_FILE, {"version": version, "breaches": keys})


def drift_retrain_reason(stored: StoredModel) -> str | None:
    """Why ``stored`` is due for retraining after a drift breach (None: not marked).

    A mark names one version: once a newer version is trained, the mark no longer applies to
    the newest model and nothing needs removing. An unreadable mark counts as none.
    """
    doc = _read(stored.path.parent, DRIFT_DUE_FILE)
    if doc is None or doc.get("version") != stored.version:
        return None
    what = list(doc.get("breaches") or [])
    shown = "; ".join(map(str, what[:3])) + (f" (+{len(what) - 3} more)" if len(what) > 3 else "")
    return f"model {stored.version} drifted at {str(doc.get('checked_at', ''))[:10]}: {shown}"
