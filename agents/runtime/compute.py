"""Per-symbol work on this process or a Dask cluster.

``workers=1`` (and no scheduler) runs in this process with no Dask at all (for debugging and
for the tests' reference). Otherwise the work goes to Dask: a ``LocalCluster`` of ``workers``
processes (one thread each; the numerical code holds the interpreter lock) started and stopped
here, or an existing scheduler (``tcp://HOST:PORT``), whose workers must have RegimeDesk
installed and read their own keys from their own environment.

A worker that dies takes every task assigned to it down with it, not only the one that killed
it: the scheduler moves them to other workers and gives up on a task (``KilledWorker``) once it
was on ``distributed.scheduler.allowed-failures`` dead workers. So results are released as soon
as they are back (a dead worker's finished results are not recomputed), and every symbol given
up that way is submitted again alone, one at a time: only a symbol that kills its worker on its
own is reported lost. Nothing is ever dropped: every symbol gets a result or a ``lost`` value.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from analytics import RegimeDeskError

__all__ = ["ComputeError", "default_workers", "map_symbols", "symbol_mapper"]


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
        Times Dask runs a task again when ``fn`` raises (``fn`` should handle its symbol's own
        errors; this covers the unexpected). Dead workers are handled as the module says.
    lost : callable
        ``lost(symbol, exception)`` gives the result for a symbol whose task still failed.
    progress : callable, optional
        ``progress(done, failed, total)`` after each symbol; ``failed`` counts the results
        whose ``ok`` attribute is False (results without one count as done).

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
    from distributed import Client, KilledWorker, LocalCluster, as_completed

    # distributed sets its own loggers to INFO on import: keep them at the command's level
    # (warnings by default, everything with -v).
    logging.getLogger("distributed").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel())
                                              if logging.getLogger().getEffectiveLevel() > logging.INFO
                                              else logging.INFO)
    cluster = None
    try:
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout="15s")
            except (OSError, TimeoutError) as exc:
                raise ComputeError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            out: list[Any] = [None] * total
            counts = {"done": 0, "failed": 0}

            def finish(i: int, result: Any) -> None:
                out[i] = result
                counts["done"] += 1
                counts["failed"] += 0 if getattr(result, "ok", True) else 1
                if progress is not None:
                    progress(counts["done"], counts["failed"], total)

            def outcome(fut) -> tuple[Any, BaseException | None]:
                try:
                    return fut.result(), None
                except Exception as exc:  # KilledWorker, or a bug in fn after its retries
                    return None, exc
                finally:
                    fut.release()

            futures = {client.submit(fn, sym, *args, retries=retries, pure=False): i
                       for i, sym in enumerate(symbols)}
            again: list[int] = []
            for fut in as_completed(futures):
                i = futures[fut]
                result, exc = outcome(fut)
                if isinstance(exc, KilledWorker):
                    again.append(i)  # perhaps only a bystander of another task's crash
                else:
                    finish(i, result if exc is None else lost(symbols[i], exc))
            for i in sorted(again):
                result, exc = outcome(client.submit(fn, symbols[i], *args, retries=retries, pure=False))
                finish(i, result if exc is None else lost(symbols[i], exc))
            return out
    finally:
        if cluster is not None:
            cluster.close()


def symbol_mapper(workers: int = 1, scheduler: str | None = None,
                  progress: Callable[[int, int, int], None] | None = None) -> Callable[..., list[Any]] | None:
    """A run's ``AppContext.mapper``: :func:`map_symbols` bound to this engine, or None for in-process.

    ``workers=1`` with no ``scheduler`` gives None: the agents compute each symbol themselves,
    as they always did.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if scheduler is None and workers == 1:
        return None
    return functools.partial(map_symbols, workers=workers, scheduler=scheduler, progress=progress)
