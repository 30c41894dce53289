"""Progress of long steps inside a run, as short status lines with an estimate of the time left."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["status_progress"]


def status_progress(
    status: Callable[[str], None] | None, what: str, *, every: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[str, int, int], None] | None:
    """A ``progress(stage, done, total)`` callback that reports to ``status`` with an ETA.

    Parameters
    ----------
    status : callable or None
        Receives one line of text (a run's ``ctx.status``); ``None`` gives ``None`` (no
        progress wanted).
    what : str
        Prefix of every line, e.g. ``"ml_signal SP500"``.
    every : float, default 2.0
        At most one line per stage every ``every`` seconds, plus the first and the last.
    clock : callable
        Seconds (tests pass a fake clock).

    Returns
    -------
    callable or None
        ``progress(stage, done, total)``. ``total <= 0`` sends ``stage`` as a plain message.
        Lines read ``"{what}: {stage} {done}/{total}, about {s} s left"``; the estimate is the
        mean time per step so far times the steps left (none before the first step is done).
    """
    if status is None:
        return None
    started: dict[str, tuple[float, int]] = {}
    last: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        now = clock()
        if total <= 0:
            status(f"{what}: {stage}")
            return
        t0, d0 = started.setdefault(stage, (now, done))
        final = done >= total
        if not final and stage in last and now - last[stage] < every:
            return
        last[stage] = now
        line = f"{what}: {stage} {done}/{total}"
        if final:
            line += f", done in {now - t0:.0f} s"
        elif done > d0:
            left = (now - t0) / (done - d0) * (total - done)
            line += f", about {left:.0f} s left"
        status(line)

    return progress
