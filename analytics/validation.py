"""Validation of bar frames: every rule, its policy, and a report with rows.

Rules, in the order they are applied:

========== ================================================ ===========================
rule        broken when                                     repair
========== ================================================ ===========================
order       a timestamp is earlier than the one before it    stable sort
duplicate   a timestamp repeats                              keep the last bar
non_finite  open/high/low/close/volume is NaN or +-inf       drop the bar
non_positive a price is <= 0                                 drop the bar
high_low    high < max(open, close) or low > min(open, close) widen high/low to the bar's
                                                             extremes
volume      volume < 0                                       drop the bar
gap         time between two bars exceeds ``max_gap``         none (error or warn only)
jump        a log return is beyond ``jump_z`` robust z-scores none (error or warn only)
========== ================================================ ===========================

Close-only bars (:func:`analytics.bars.is_close_only`: NaN open, high, low and volume on every
row) are checked on their closes only: ``non_finite`` and ``non_positive`` look at the close,
``high_low`` and ``volume`` do not apply, and the report says ``close_only``. A frame where
only some rows lack open/high/low/volume is not close-only; those rows break ``non_finite``.

The jump score of the return into bar ``t`` is ``|r_t - median| / (1.4826 * MAD)`` over the
``jump_window`` returns before ``t`` (causal; needs at least 20 of them).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from analytics.bars import BAR_COLUMNS, is_close_only
from analytics.errors import DataQualityWarning, DataValidationError

if TYPE_CHECKING:  # imported where used, so that agents.config does not load pandas
    import pandas as pd

__all__ = [
    "VALIDATION_RULES",
    "ValidationPolicy",
    "ValidationIssue",
    "ValidationReport",
    "validate_bars",
]

Policy = Literal["error", "repair", "warn"]
VALIDATION_RULES: tuple[str, ...] = (
    "order",
    "duplicate",
    "non_finite",
    "non_positive",
    "high_low",
    "volume",
    "gap",
    "jump",
)
_FLAG_ONLY = frozenset({"gap", "jump"})
_PRICES = ["open", "high", "low", "close"]


@dataclass(frozen=True)
class ValidationPolicy:
    """What to do when each rule is broken, and the rules' thresholds.

    Parameters
    ----------
    policies : dict, optional
        ``rule -> 'error' | 'repair' | 'warn'``. Missing rules take the defaults: repair for
        order, duplicate, non_finite and high_low; error for non_positive and volume; warn for
        gap and jump. ``gap`` and ``jump`` cannot be repaired.
    max_gap : Timedelta or None
        Longest allowed time between consecutive bars; None disables the gap rule.
    jump_z : float
        Robust z-score beyond which a single-bar move is flagged; must be > 0.
    jump_window : int
        Number of previous returns that set the robust scale; must be >= 20.
    """

    policies: dict[str, str] = field(default_factory=dict)
    max_gap: pd.Timedelta | None = None
    jump_z: float = 10.0
    jump_window: int = 63

    def __post_init__(self) -> None:
        import pandas as pd

        for rule, action in self.policies.items():
            if rule not in VALIDATION_RULES:
                raise ValueError(f"policies: unknown rule {rule!r}; rules are {VALIDATION_RULES}")
            if action not in ("error", "repair", "warn"):
                raise ValueError(f"policies[{rule!r}] must be error, repair or warn, not {action!r}")
            if action == "repair" and rule in _FLAG_ONLY:
                raise ValueError(f"policies[{rule!r}]: {rule} cannot be repaired; use error or warn")
        if not (np.isfinite(self.jump_z) and self.jump_z > 0):
            raise ValueError(f"jump_z must be a positive number, got {self.jump_z!r}")
        if self.jump_window < 20:
            raise ValueError(f"jump_window must be >= 20, got {self.jump_window!r}")
        if self.max_gap is not None and pd.Timedelta(self.max_gap) <= pd.Timedelta(0):
            raise ValueError(f"max_gap must be positive, got {self.max_gap!r}")

    def action(self, rule: str) -> str:
        """The policy in force for ``rule``."""
        defaults = {"non_positive": "error", "volume": "error", "gap": "warn", "jump": "warn"}
        return self.policies.get(rule, defaults.get(rule, "repair"))


@dataclass(frozen=True)
class ValidationIssue:
    """One broken rule at one bar.

    ``row`` is the 0-based position of the bar in the input as given; ``action`` is what
    was done: ``'error'``, ``'repaired'`` or ``'flagged'``.
    """

    rule: str
    row: int
    timestamp: str | None
    message: str
    action: str

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "row": self.row,
            "timestamp": self.timestamp,
            "message": self.message,
            "action": self.action,
        }


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of :func:`validate_bars`.

    ``close_only`` is True when the bars carry closes only (no open, high, low or volume).
    """

    n_input: int
    n_output: int
    issues: tuple[ValidationIssue, ...]
    close_only: bool = False

    @property
    def errors(self) -> tuple[ValidationIssue, ...]:
        return tuple(i for i in self.issues if i.action == "error")

    @property
    def ok(self) -> bool:
        """True when no rule with policy ``error`` was broken."""
        return not self.errors

    def counts(self) -> dict[str, int]:
        """Number of issues per rule (rules without issues omitted)."""
        out: dict[str, int] = {}
        for issue in self.issues:
            out[issue.rule] = out.get(issue.rule, 0) + 1
        return out

    def summary(self) -> str:
        """One line for a person."""
        kind = " close-only" if self.close_only else ""
        if not self.issues:
            return f"ok: {self.n_output}{kind} bars, no issues"
        parts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        state = "FAILED" if self.errors else "ok with repairs/flags"
        return f"{state}: {self.n_input}{kind} bars in, {self.n_output} out; issues: {parts}"

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "n_input": self.n_input,
            "n_output": self.n_output,
            "close_only": self.close_only,
            "counts": self.counts(),
            "issues": [i.to_dict() for i in self.issues],
        }


def _stamp(ts: object) -> str | None:
    import pandas as pd

    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).isoformat()


def validate_bars(
    bars: pd.DataFrame,
    policy: ValidationPolicy | None = None,
    *,
    raise_on_error: bool = True,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check a bar frame against every rule and apply each rule's policy.

    Parameters
    ----------
    bars : DataFrame
        Bars with a tz-aware ``DatetimeIndex`` and columns ``open, high, low, close,
        volume``. Empty input is valid and returns an empty frame.
    policy : ValidationPolicy, optional
        Policies and thresholds; defaults to ``ValidationPolicy()``.
    raise_on_error : bool, default True
        Raise :class:`DataValidationError` (carrying the report) when a rule whose policy is
        ``error`` is broken. With False the report is returned and the frame holds the bars
        as far as they could be cleaned.

    Returns
    -------
    clean : DataFrame
        Sorted, unique, float bars after repairs.
    report : ValidationReport
        Every issue with its rule, input row and timestamp.

    Warns
    -----
    DataQualityWarning
        When bars were repaired or flagged.
    """
    import pandas as pd

    policy = policy or ValidationPolicy()
    if not isinstance(bars, pd.DataFrame):
        raise TypeError(f"bars must be a DataFrame, got {type(bars).__name__}")
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise DataValidationError(f"bars are missing columns {missing}")
    if not isinstance(bars.index, pd.DatetimeIndex) or bars.index.tz is None:
        raise DataValidationError("bars need a tz-aware DatetimeIndex")

    issues: list[ValidationIssue] = []
    frame = bars.loc[:, list(BAR_COLUMNS)].astype("float64")
    frame.index = bars.index.tz_convert("UTC").as_unit("ns")
    frame.index.name = "timestamp"
    rows = np.arange(len(frame))
    n_input = len(frame)
    close_only = is_close_only(frame)
    checked = ["close"] if close_only else list(BAR_COLUMNS)
    priced = ["close"] if close_only else _PRICES

    def note(rule: str, positions: np.ndarray, messages: list[str]) -> str:
        action = policy.action(rule)
        done = {"error": "error", "repair": "repaired", "warn": "flagged"}[action]
        for pos, msg in zip(positions, messages, strict=True):
            issues.append(
                ValidationIssue(rule, int(rows[pos]), _stamp(frame.index[pos]), msg, done)
            )
        return action

    def drop(mask: np.ndarray) -> None:
        nonlocal frame, rows
        frame = frame.loc[~mask]
        rows = rows[~mask]

    # order
    ts = frame.index.asi8
    if len(ts) > 1:
        back = np.flatnonzero(ts[1:] < ts[:-1]) + 1
        if back.size:
            msgs = [f"timestamp earlier than the previous bar ({_stamp(frame.index[p - 1])})" for p in back]
            if note("order", back, msgs) == "repair":
                order = np.argsort(ts, kind="stable")
                frame = frame.iloc[order]
                rows = rows[order]

    # duplicate (after any sort, so repeated stamps are adjacent)
    dup = frame.index.duplicated(keep="last")
    if dup.any():
        pos = np.flatnonzero(dup)
        if note("duplicate", pos, ["timestamp repeats; a later bar has the same stamp"] * pos.size) == "repair":
            drop(dup)

    values = frame[checked].to_numpy()
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        pos = np.flatnonzero(bad)
        msgs = [
            "non-finite " + ", ".join(c for c, v in zip(checked, values[p], strict=True) if not np.isfinite(v))
            for p in pos
        ]
        if note("non_finite", pos, msgs) == "repair":
            drop(bad)

    prices = frame[priced].to_numpy()
    with np.errstate(invalid="ignore"):
        bad = (prices <= 0).any(axis=1)
    if bad.any():
        pos = np.flatnonzero(bad)
        msgs = [
            "price <= 0 in " + ", ".join(c for c, v in zip(priced, prices[p], strict=True) if v <= 0)
            for p in pos
        ]
        if note("non_positive", pos, msgs) == "repair":
            drop(bad)

    o, h, low, c = (frame[k].to_numpy() for k in _PRICES)
    with np.errstate(invalid="ignore"):
        bad = (h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (h < low)
    if bad.any() and not close_only:
        pos = np.flatnonzero(bad)
        msgs = [f"high {h[p]:g} / low {low[p]:g} do not contain open {o[p]:g} and close {c[p]:g}" for p in pos]
        if note("high_low", pos, msgs) == "repair":
            block = frame[_PRICES].to_numpy()
            frame = frame.assign(high=block.max(axis=1), low=block.min(axis=1))

    vol = frame["volume"].to_numpy()
    with np.errstate(invalid="ignore"):
        bad = vol < 0
    if bad.any() and not close_only:
        pos = np.flatnonzero(bad)
        if note("volume", pos, [f"volume {vol[p]:g} < 0" for p in pos]) == "repair":
            drop(bad)

    if policy.max_gap is not None and len(frame) > 1:
        gaps = np.diff(frame.index.asi8)
        limit = pd.Timedelta(policy.max_gap).value
        pos = np.flatnonzero(gaps > limit) + 1
        if pos.size:
            msgs = [
                f"gap of {pd.Timedelta(int(gaps[p - 1]))} since {_stamp(frame.index[p - 1])} exceeds {pd.Timedelta(policy.max_gap)}"
                for p in pos
            ]
            note("gap", pos, msgs)

    if len(frame) > 21:
        close = frame["close"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = pd.Series(np.diff(np.log(close)))
        win = policy.jump_window
        med = ret.rolling(win, min_periods=20).median().shift(1)
        mad = (ret - med).abs().rolling(win, min_periods=20).median().shift(1)
        scale = 1.4826 * mad
        with np.errstate(divide="ignore", invalid="ignore"):
            z = ((ret - med).abs() / scale).to_numpy()
        hit = np.flatnonzero(np.isfinite(z) & (z > policy.jump_z))
        if hit.size:
            pos = hit + 1  # return i moves into bar i + 1
            msgs = [f"move of {ret.iloc[i]:+.2%} is {z[i]:.1f} robust z-scores (limit {policy.jump_z:g})" for i in hit]
            note("jump", pos, msgs)

    report = ValidationReport(n_input=n_input, n_output=len(frame), issues=tuple(issues),
                              close_only=close_only and len(frame) > 0)
    if raise_on_error and not report.ok:
        first = report.errors[0]
        more = len(report.errors) - 1
        tail = f" (and {more} more error{'s' if more != 1 else ''})" if more else ""
        raise DataValidationError(
            f"data validation failed: {first.rule} at row {first.row} "
            f"({first.timestamp}): {first.message}{tail}",
            report,
        )
    if report.issues and report.ok:
        warnings.warn(report.summary(), DataQualityWarning, stacklevel=2)
    return frame, report
