"""Versioned model store on disk: ``root/SYMBOL/vNNNN/{model.ubj, metadata.json}``.

Versions only grow and are never overwritten (a new training run writes a new version
directory atomically by renaming a finished temporary one). Metadata records what the model
saw and how it did out of sample, so a loaded model can be judged before it is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import pandas as pd

from analytics import RegimeDeskError, RegimeDeskWarning
from signals._model import FittedModel

__all__ = [
    "ModelStore",
    "StoredModel",
    "ModelNotFoundError",
    "StaleModelError",
    "StaleModelWarning",
    "data_hash",
    "library_versions",
    "check_model_age",
    "UnreadableModelError",
]

_VERSION = re.compile(r"^v(\d{4,})$")


class ModelNotFoundError(RegimeDeskError):
    """No stored model fits the request."""


class UnreadableModelError(ModelNotFoundError):
    """A stored model version whose files cannot be read (damaged, truncated, foreign).

    A subclass of :class:`ModelNotFoundError`: with ``ml.auto_train`` a new version is
    trained in its place, and the note says why.
    """


class StaleModelError(RegimeDeskError):
    """The model's training data ends too long before the bar it would predict."""


class StaleModelWarning(RegimeDeskWarning):
    """A model past its age limit was used because the policy says warn."""


def data_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a bar frame's index and values (order-sensitive), hex."""
    h = hashlib.sha256()
    h.update(frame.index.as_unit("ns").asi8.tobytes() if isinstance(frame.index, pd.DatetimeIndex)
             else repr(list(frame.index)).encode())
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(frame.to_numpy(dtype=float).tobytes())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import xgboost

    return {
        "python": platform.python_version(),
        "xgboost": xgboost.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
    }


@dataclass(frozen=True)
class StoredModel:
    """A model loaded from the store with its metadata."""

    symbol: str
    version: str
    path: Path
    model: FittedModel
    metadata: dict[str, Any]

    @property
    def train_end(self) -> pd.Timestamp:
        return pd.Timestamp(self.metadata["train_end"])


def _like(ts: pd.Timestamp | str, ref: pd.Timestamp) -> pd.Timestamp:
    """``ts`` as a Timestamp, localised to ``ref``'s zone when it is naive and ``ref`` is not."""
    ts = pd.Timestamp(ts)
    return ts.tz_localize(ref.tzinfo) if ts.tzinfo is None and ref.tzinfo is not None else ts


def check_model_age(
    stored: StoredModel, as_of: pd.Timestamp, max_age_days: float, policy: Literal["warn", "refuse"]
) -> float:
    """Age in days of ``stored`` at ``as_of``; past ``max_age_days`` warn or raise.

    Raises
    ------
    StaleModelError
        Too old and ``policy == 'refuse'``; also when the model was trained on data after
        ``as_of`` (using it would be look-ahead).
    """
    end = stored.train_end
    as_of = _like(as_of, end)
    if end > as_of:
        raise StaleModelError(
            f"model {stored.symbol} {stored.version} was trained on data up to {end.date()}, "
            f"after {as_of.date()}: using it would look ahead"
        )
    age = (as_of - end) / pd.Timedelta(days=1)
    if age > max_age_days:
        msg = (f"model {stored.symbol} {stored.version} is {age:.0f} days old "
               f"(limit {max_age_days:g}); retrain with 'regimedesk train {stored.symbol}'")
        if policy == "refuse":
            raise StaleModelError(msg)
        warnings.warn(msg, StaleModelWarning, stacklevel=2)
    return float(age)


#: Loaded classifiers by model file (resolved path, mtime, size): a version directory is
#: written once and never changed, so a decision does not parse the file again. Predicting
#: from an XGBoost booster is thread-safe; callers never refit a loaded model.
_LOADED: dict[tuple[str, int, int], Any] = {}
_LOADED_LOCK = threading.Lock()


class ModelStore:
    """Models per symbol, versioned ``v0001``, ``v0002``, ...

    Parameters
    ----------
    root : path
        Folder of the store (created on first save).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, symbol: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9._:/^=-]{1,32}", symbol) or set(symbol) == {"."}:
            raise ValueError(f"symbol {symbol!r} is not a valid symbol")
        # percent-encoding keeps distinct symbols in distinct folders (BTC/USD vs BTC:USD)
        return self.root / quote(symbol, safe="")

    def versions(self, symbol: str) -> list[str]:
        """Stored versions of ``symbol``, oldest first."""
        d = self._dir(symbol)
        if not d.is_dir():
            return []
        found = [p.name for p in d.iterdir() if p.is_dir() and _VERSION.match(p.name)]
        return sorted(found, key=lambda v: int(v[1:]))

    def save(self, symbol: str, model: FittedModel, metadata: dict[str, Any]) -> StoredModel:
        """Write a new version; ``metadata`` must hold ``train_end`` (ISO timestamp)."""
        if "train_end" not in metadata:
            raise ValueError("metadata needs train_end")
        d = self._dir(symbol)
        d.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=d))
        try:
            model.model.save_model(str(tmp / "model.ubj"))
            meta = dict(metadata)
            meta.update({
                "symbol": symbol,
                "features": list(model.features),
                "max_depth": model.max_depth,
                "n_trees": model.n_trees,
                "validation_logloss": model.validation_logloss,
                "n_train": model.n_train,
                "n_validation": model.n_validation,
                "library_versions": library_versions(),
            })
            (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=str, allow_nan=True))
            while True:  # another writer may take a number first: try the next
                existing = self.versions(symbol)
                nxt = f"v{(int(existing[-1][1:]) + 1) if existing else 1:04d}"
                try:
                    os.rename(tmp, d / nxt)
                    break
                except OSError:
                    if not (d / nxt).exists():
                        raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.load(symbol, nxt)

    def load(self, symbol: str, version: str | None = None) -> StoredModel:
        """Load ``version`` (default: the newest)."""
        from xgboost import XGBClassifier

        versions = self.versions(symbol)
        if not versions:
            raise ModelNotFoundError(f"no stored model for {symbol}; train one with 'regimedesk train {symbol}'")
        version = version or versions[-1]
        if version not in versions:
            raise ModelNotFoundError(f"no model {symbol} {version}; stored: {', '.join(versions)}")
        path = self._dir(symbol) / version
        meta = self._metadata(symbol, version)
        file = path / "model.ubj"
        try:
            st = file.stat()
        except OSError as exc:
            raise UnreadableModelError(f"model {symbol} {version} cannot be read ({file}: {exc.strerror})") from None
        key = (str(file.resolve()), st.st_mtime_ns, st.st_size)
        with _LOADED_LOCK:
            clf = _LOADED.get(key)
        if clf is None:
            clf = XGBClassifier()
            try:
                clf.load_model(str(file))
            except Exception as exc:  # noqa: BLE001 - XGBoostError and friends: a damaged file
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                reason = re.sub(r"^\[[\d:]+\] \S+: ", "", reason)[:200]
                raise UnreadableModelError(f"model {symbol} {version} cannot be read ({file}: {reason})") from None
            # One thread: a decision predicts one row, and OpenMP threads on a busy machine
            # cost tens of milliseconds (training uses ModelConfig.n_jobs, 1 by default).
            clf.set_params(n_jobs=1)
            with _LOADED_LOCK:
                _LOADED[key] = clf
                while len(_LOADED) > 64:
                    del _LOADED[next(iter(_LOADED))]
        fm = FittedModel(
            clf, tuple(meta["features"]), int(meta["max_depth"]), int(meta["n_trees"]),
            float(meta["validation_logloss"]), int(meta["n_train"]), int(meta["n_validation"]),
        )
        return StoredModel(symbol, version, path, fm, meta)

    def _metadata(self, symbol: str, version: str) -> dict[str, Any]:
        file = self._dir(symbol) / version / "metadata.json"
        try:
            meta = json.loads(file.read_text())
            pd.Timestamp(meta["train_end"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UnreadableModelError(
                f"model {symbol} {version} cannot be read ({file}: {type(exc).__name__}: {exc})"[:400]) from None
        if not isinstance(meta, dict):
            raise UnreadableModelError(f"model {symbol} {version} cannot be read ({file}: not a JSON object)")
        return meta

    def latest(self, symbol: str, *, as_of: pd.Timestamp | None = None, data_from: pd.Timestamp | None = None,
               **match: Any) -> StoredModel:
        """Newest version trained on data up to ``as_of`` (and, with ``data_from``, none before
        it: a run's ``--start``) whose metadata matches ``match``.

        Raises
        ------
        ModelNotFoundError
        """
        for version in reversed(self.versions(symbol)):
            meta = self._metadata(symbol, version)  # an unreadable newer version is an error, not skipped
            if any(meta.get(k) != v for k, v in match.items()):
                continue
            if as_of is not None:
                end = pd.Timestamp(meta["train_end"])
                if end > _like(as_of, end):
                    continue
            if data_from is not None:
                first = pd.Timestamp(meta.get("data_start", "1678-01-01"))
                if first < _like(data_from, first):
                    continue
            return self.load(symbol, version)
        what = ", ".join(f"{k}={v}" for k, v in match.items())
        when = f" trained on data up to {pd.Timestamp(as_of).date()}" if as_of is not None else ""
        if data_from is not None:
            when += f" and none before {pd.Timestamp(data_from).date()}"
        raise ModelNotFoundError(
            f"no stored model for {symbol}{when}{' with ' + what if what else ''}; "
            f"train one with 'regimedesk train {symbol}'"
        )
