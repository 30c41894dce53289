"""Per-symbol work on this process or a Dask cluster.

``workers=1`` (and no scheduler) runs in this process with no Dask at all (for debugging and
for the tests' reference). Otherwise the work goes to Dask: a ``LocalCluster`` of ``workers``
processes (one thread each; the numerical code holds the interpreter lock) started and stopped
here, or an existing scheduler (``tcp://HOST:PORT``), whose workers must have RegimeDesk
installed and read their own keys from their own environment. Each task is retried on another
worker if its worker dies (``retries``); a symbol still lost is reported, never dropped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from analytics import RegimeDeskError

__all__ = ["ComputeError", "default_workers", "map_symbols"]


class ComputeError(RegimeDeskError):
    """The cluster could not be reached or started (the message names the address)."""


def default_workers() -> int:
    """One worker process per core."""
    return max(1, os.cpu_count() or 1)


def map_symbols(
    fn: Callable[..., Any],
    symbols: Sequence[str],
    *args: Any,
    workers: int = 1,
    scheduler: str | None = None,
    retries: int = 2,
    lost: Callable[[str, BaseException], Any],
    progress: Callable[[int, int, int], None] | None = None,
) -> list[Any]:
    """``[fn(symbol, *args) for symbol in symbols]``, on this process or a Dask cluster.

    Parameters
    ----------
    fn : callable
        Importable on the workers (a module-level function); ``fn(symbol, *args)`` returns a
        small picklable result and handles the symbol's own errors itself.
    workers : int
        1 with no ``scheduler``: in this process. More: a local cluster of that many processes.
    scheduler : str, optional
        Address of a running Dask scheduler to use instead of a local cluster.
    retries : int
        Times a task is run again when its worker dies.
    lost : callable
        ``lost(symbol, exception)`` gives the result for a symbol whose task still failed.
    progress : callable, optional
        ``progress(done, failed, total)`` after each symbol.

    Returns
    -------
    list
        One result per symbol, in the order of ``symbols``.
    """
    total = len(symbols)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if scheduler is None and workers == 1:
        out = []
        for i, sym in enumerate(symbols):
            try:
                out.append(fn(sym, *args))
            except Exception as exc:  # a bug in one symbol's work: reported, the scan goes on
                out.append(lost(sym, exc))
            if progress is not None:
                progress(i + 1, sum(1 for r in out if not getattr(r, "ok", True)), total)
        return out
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    try:
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout="15s")
            except (OSError, TimeoutError) as exc:
                raise ComputeError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            futures = {client.submit(fn, sym, *args, retries=retries, pure=False): i
                       for i, sym in enumerate(symbols)}
            out: list[Any] = [None] * total
            done = failed = 0
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    out[i] = fut.result()
                except Exception as exc:  # KilledWorker after the retries, or a bug in fn
                    out[i] = lost(symbols[i], exc)
                done += 1
                failed += 0 if getattr(out[i], "ok", True) else 1
                if progress is not None:
                    progress(done, failed, total)
            return out
    finally:
        if cluster is not None:
            cluster.close()
