"""The short text of a finished scan, for a scheduled job's file and message and for the bot's ``/scan``.

One header line (``"NAME: N symbols scanned in S s, F failed"``, as ``regimedesk scan`` prints),
then the symbols whose regime, consensus or character changed since their last scan, regime
changes first (the order of :func:`agents.services.scan.rank_records`), at most ``top`` of them;
the symbols scanned for the first time on one line; then the failures with their reasons.
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.runtime.scan import ScanOutcome

__all__ = ["scan_summary", "MAX_FAILURES", "REASON_CHARS"]

#: Failures listed one per line; the others are counted on one line.
MAX_FAILURES = 10
#: A failure's reason is cut to this many characters.
REASON_CHARS = 120
_NEW_SHOWN = 12


def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(symbols: Sequence[str], shown: int) -> str:
    head = ", ".join(symbols[:shown])
    return head if len(symbols) <= shown else f"{head} and {len(symbols) - shown} more"


def scan_summary(outcome: ScanOutcome, top: int = 15) -> str:
    """A scan in a few lines of plain text.

    Parameters
    ----------
    outcome : agents.runtime.scan.ScanOutcome
        A finished scan (its records ranked: regime changes first, failures last).
    top : int, default 15
        Most symbols with changes listed (one line each); the rest are counted.

    Returns
    -------
    str
        The header line, ``Changes since the last scan:`` with one ``SYMBOL (consensus): change;
        change`` line per symbol (or ``No changes since the last scan.``), ``First scan: ...``
        when some symbols had none before, and ``Failed:`` with one ``SYMBOL: reason`` line per
        failure.

    Raises
    ------
    ValueError
        ``top`` below 1.
    """
    if top < 1:
        raise ValueError("top must be >= 1")
    records = outcome.records
    head = f"{outcome.universe}: {len(records)} symbols scanned in {outcome.seconds:.1f} s, {outcome.failed} failed"
    if outcome.as_of:
        head += f" (data to {outcome.as_of})"
    lines = [head]
    changed = [r for r in records if r.ok and r.changes and tuple(r.changes) != ("new",)]
    new = [r.symbol for r in records if r.ok and tuple(r.changes) == ("new",)]
    failed = [r for r in records if not r.ok]
    if changed:
        lines.append("Changes since the last scan:")
        for r in changed[:top]:
            label = r.consensus.get("label")
            lines.append(f"  {r.symbol}{f' ({label})' if label else ''}: {'; '.join(r.changes)}")
        if len(changed) > top:
            lines.append(f"  ... and {len(changed) - top} more symbols with changes")
    elif len(new) < len(records) - len(failed):
        lines.append("No changes since the last scan.")
    if new:
        lines.append(f"First scan: {_names(new, _NEW_SHOWN)}")
    if failed:
        lines.append("Failed:")
        for r in failed[:MAX_FAILURES]:
            lines.append(f"  {r.symbol}: {_cut(r.error or 'no reason given', REASON_CHARS)}")
        if len(failed) > MAX_FAILURES:
            lines.append(f"  ... and {len(failed) - MAX_FAILURES} more failed")
    return "\n".join(lines)
