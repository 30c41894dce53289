"""The one JSON sanitiser: every result, journal row, checkpoint value and ``--json`` answer
goes through :func:`json_safe`.

One rule for every caller: plain JSON types out, NaN and infinities as ``null``, times as
ISO-8601 (aware ones in UTC), and an error for a type it does not know, so that nothing is
silently written as its ``repr``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["json_safe"]


def json_safe(value: Any) -> Any:
    """Convert ``value`` into plain JSON types, with NaN and infinities as ``None``.

    Parameters
    ----------
    value : object
        The JSON scalars; numpy scalars and arrays; ``Decimal``; ``datetime`` (ISO-8601, an
        aware one converted to UTC; ``pandas.Timestamp`` is a ``datetime``) and ``date``;
        ``Enum`` (its value); paths (their text); objects with a ``to_dict()`` method (its
        result, their own JSON form); other dataclass instances (their fields); mappings (keys
        become ``str``); sets (sorted by their JSON text) and other sequences.

    Returns
    -------
    object
        Something ``json.dumps(..., allow_nan=False)`` accepts.

    Raises
    ------
    TypeError
        For any other type, naming it.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating, Decimal)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict):
            return json_safe(to_dict())
        return {f.name: json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, (set, frozenset)):
        items = [json_safe(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [json_safe(v) for v in value]
    raise TypeError(f"cannot convert a value of type {type(value).__name__} to JSON")
