"""Bounded retry with exponential backoff for transient integration errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from integrations._errors import TransientError

__all__ = ["call_with_retry"]

T = TypeVar("T")
log = logging.getLogger(__name__)


def call_with_retry(
    fn: Callable[[], T],
    *,
    attempts: int = 4,
    backoff: float = 0.5,
    max_sleep: float = 8.0,
    what: str = "request",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, retrying only :class:`TransientError`.

    Parameters
    ----------
    fn : callable
        Zero-argument call; raises ``TransientError`` for retryable failures.
    attempts : int, default 4
        Total tries, >= 1.
    backoff : float, default 0.5
        First sleep in seconds; doubles after each failure, capped at ``max_sleep``.
    what : str
        Named in log lines.

    Raises
    ------
    TransientError
        The last error once all attempts failed; any other exception at once.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    delay = backoff
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TransientError as exc:
            if attempt == attempts:
                raise
            log.warning("%s failed (%s); retry %d/%d in %.2fs", what, exc, attempt, attempts - 1, delay)
            sleep(delay)
            delay = min(delay * 2, max_sleep)
    raise AssertionError("unreachable")
