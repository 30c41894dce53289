"""The one JSON sanitiser (``analytics.json_safe``): journal rows, checkpoints and ``--json``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import json_safe, variance_ratio


def test_json_safe_converts_common_types():
    from enum import Enum

    class Side(Enum):
        BUY = "buy"

    @dataclass(frozen=True)
    class Result:
        stat: float
        lags: tuple[int, ...]

    value = {
        1: Side.BUY,
        "when": datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
        "res": Result(math.nan, (2, 4)),
        "arr": np.array([1.5, np.nan]),
        "path": Path("/x/y"),
        "tags": {"b", "a"},
    }
    assert json_safe(value) == {
        "1": "buy",
        "when": "2024-01-01T10:00:00+00:00",
        "res": {"stat": None, "lags": [2, 4]},
        "arr": [1.5, None],
        "path": "/x/y",
        "tags": ["a", "b"],
    }
    with pytest.raises(TypeError, match="bytes"):
        json_safe(b"raw")


def test_objects_with_to_dict_give_their_own_json_form():
    @dataclass(frozen=True)
    class Request:
        symbols: tuple[str, ...]
        note: str

        def to_dict(self):
            return {"symbols": list(self.symbols), "n": len(self.symbols)}

    assert json_safe({"r": Request(("SP500", "NASDAQ"), "x")}) == {"r": {"symbols": ["SP500", "NASDAQ"], "n": 2}}
    res = variance_ratio(np.log(np.random.default_rng(0).lognormal(0, 0.01, 400).cumprod()), 2)
    assert json_safe(res) == json.loads(json.dumps(json_safe(res.to_dict()), allow_nan=False))


def test_numpy_pandas_and_decimal_scalars():
    value = [np.int64(3), np.float32(0.5), np.bool_(True), Decimal("2.5"), np.float64(np.inf),
             pd.Timestamp("2018-12-31", tz="America/New_York"), pd.Timestamp("2018-12-31 10:00")]
    assert json_safe(value) == [3, 0.5, True, 2.5, None, "2018-12-31T05:00:00+00:00", "2018-12-31T10:00:00"]


_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=5), st.floats().map(np.float64))
_trees = st.recursive(_leaves, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                      st.dictionaries(st.text(max_size=3), kids, max_size=4),
                                                      st.tuples(kids, kids)), max_leaves=20)


@given(_trees)
def test_any_nested_value_becomes_strict_json_and_is_stable(value):
    out = json_safe(value)
    text = json.dumps(out, allow_nan=False)  # never NaN or Infinity
    assert json_safe(json.loads(text)) == out  # converting again changes nothing
