"""A whole scan: every symbol on this process or a Dask cluster, then what changed since the last one.

The command line (``regimedesk scan``), the scheduler's ``scan`` jobs and the bot's ``/scan``
call :func:`run_scan`; the per-symbol work is :func:`agents.services.scan.scan_symbol`, spread
by :func:`agents.runtime.compute.map_symbols`. The changes are computed against the scan state
(``paths.scan_state``) and the new records are saved there in one transaction after every
symbol is back, so an interrupted scan leaves the previous state whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.config import Settings
from agents.runtime.compute import default_workers, map_symbols
from agents.services.scan import ScanRecord, rank_records, scan_changes, scan_symbol

__all__ = ["ScanOutcome", "run_scan", "resolve_workers", "where"]


@dataclass(frozen=True)
class ScanOutcome:
    """One finished scan: ranked records (changes first, failures last) and where it ran."""

    universe: str
    source: str
    as_of: str | None
    workers: int
    scheduler: str | None
    seconds: float
    records: tuple[ScanRecord, ...]

    @property
    def failed(self) -> int:
        """Symbols without a result (their reason is in the record)."""
        return sum(1 for r in self.records if not r.ok)

    @property
    def where(self) -> str:
        """Where the per-symbol work ran, in words."""
        return where(self.workers, self.scheduler)

    def to_dict(self) -> dict[str, Any]:
        return {"universe": self.universe, "source": self.source, "as_of": self.as_of, "workers": self.workers,
                "scheduler": self.scheduler, "seconds": self.seconds,
                "records": [r.to_dict() for r in self.records]}


def where(workers: int, scheduler: str | None) -> str:
    """Where per-symbol work with these settings runs, in words."""
    if scheduler:
        return f"the Dask scheduler {scheduler}"
    return "this process" if workers == 1 else f"a local Dask cluster of {workers} processes"


def resolve_workers(settings: Settings, workers: int | None, scheduler: str | None) -> tuple[int, str | None]:
    """The worker count and scheduler address to use: the arguments, else ``[compute]``.

    ``0`` (or the config's default 0) is one worker per core.

    Raises
    ------
    ValueError
        A negative worker count.
    """
    n = settings.compute.workers if workers is None else workers
    if n < 0:
        raise ValueError("--workers must be >= 0 (0: one per core)")
    return (n or default_workers()), (scheduler or settings.compute.scheduler)


def run_scan(
    settings: Settings,
    symbols: Sequence[str],
    *,
    universe: str,
    source: str | None = None,
    as_of: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    save: bool = True,
) -> ScanOutcome:
    """Scan ``symbols`` and compare each with its last scan.

    Parameters
    ----------
    settings : Settings
    symbols : sequence of str
        At least one symbol.
    universe : str
        The name shown for the set of symbols (a universe name, a file, "command line").
    source : str, optional
        Market-data source (default ``data.source``).
    as_of : str, optional
        Use only data available at the end of this date.
    workers, scheduler
        See :func:`resolve_workers` and :func:`agents.runtime.compute.map_symbols`.
    progress : callable, optional
        ``progress(done, failed, total)`` after each symbol.
    save : bool, default True
        Store the successful records as the new "last scan" of their symbols.

    Returns
    -------
    ScanOutcome

    Raises
    ------
    ValueError
        No symbols, or a negative worker count.
    agents.runtime.compute.ComputeError
        The cluster could not be reached or started.
    """
    from integrations import ScanStateStore

    if not symbols:
        raise ValueError("nothing to scan: no symbols given")
    n_workers, address = resolve_workers(settings, workers, scheduler)
    source = source or settings.data.source
    t0 = time.perf_counter()
    records = map_symbols(
        scan_symbol, list(symbols), settings, source, as_of, workers=n_workers, scheduler=address,
        lost=lambda sym, exc: ScanRecord(sym, False, error=f"lost: {type(exc).__name__}: {exc}"),
        progress=progress,
    )
    with ScanStateStore(settings.paths.scan_state) as state:
        before = state.load(source)
        records = [ScanRecord.from_dict({**r.to_dict(), "changes": scan_changes(
            ScanRecord.from_dict(before[r.symbol]) if r.symbol in before else None, r)}) for r in records]
        if save:
            state.save(source, {r.symbol: r.to_dict() for r in records if r.ok})
    return ScanOutcome(universe, source, as_of, n_workers, address, time.perf_counter() - t0,
                       tuple(rank_records(records)))
