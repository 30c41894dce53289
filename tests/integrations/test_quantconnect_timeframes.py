"""The signal CSV's per-timeframe columns follow the analytics timeframe table."""

from __future__ import annotations

from analytics import TIMEFRAME_TABLE, TIMEFRAMES
from integrations import COLUMN_SPEC, SIGNAL_COLUMNS, SIGNAL_TIMEFRAMES


def test_column_prefixes_are_the_timeframe_names_lower_cased():
    assert SIGNAL_TIMEFRAMES == tuple(tf.lower() for tf in TIMEFRAMES) == ("lt", "mt", "st", "us")


def test_per_timeframe_columns_and_their_meanings():
    per_tf = [c for c in SIGNAL_COLUMNS if c.split("_")[0] in SIGNAL_TIMEFRAMES]
    suffixes = ("label", "probability", "bar", "character", "character_confidence")
    assert per_tf == [f"{p}_{s}" for p in ("lt", "mt", "st", "us") for s in suffixes]
    # the file layout around them is unchanged: they sit between close and regime_family
    assert SIGNAL_COLUMNS[4:6] == ("close", "lt_label") and SIGNAL_COLUMNS[25] == "regime_family"
    names = {"lt": "LT (weekly)", "mt": "MT (daily)", "st": "ST (daily)", "us": "US (intraday)"}
    for prefix, name in names.items():
        assert COLUMN_SPEC[f"{prefix}_probability"] == (
            "float", f"{name} filtered probability of that regime, in [0, 1]")
        assert COLUMN_SPEC[f"{prefix}_label"][1].startswith(f"{name} regime: calm, bull, bear")
    assert {tf: row.bar_kind for tf, row in TIMEFRAME_TABLE.items()} == {
        "LT": "weekly", "MT": "daily", "ST": "daily", "US": "intraday"}
