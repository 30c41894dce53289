"""Errors raised by adapters to the outside world.

Integrations split problems a caller may retry (:class:`TransientError`: rate limits, 5xx,
time-outs, dropped connections) from those it must not (:class:`PermanentError`: bad
credentials, unknown symbol, malformed request).
"""

from __future__ import annotations

from analytics.errors import RegimeDeskError

__all__ = [
    "IntegrationError",
    "TransientError",
    "PermanentError",
    "MissingCredentialsError",
    "UnknownSymbolError",
    "NoDataError",
]


class IntegrationError(RegimeDeskError):
    """An external service or file could not deliver what was asked."""


class TransientError(IntegrationError):
    """Worth retrying later (rate limit, server error, time-out)."""


class PermanentError(IntegrationError):
    """Retrying will not help (authentication, bad request, unreadable file)."""


class MissingCredentialsError(PermanentError):
    """A network source needs a secret that is not in the environment.

    The message names the environment variable to set.
    """


class UnknownSymbolError(PermanentError):
    """The source does not know the symbol."""


class NoDataError(IntegrationError):
    """The request was valid but no bars exist in the range (e.g. an empty date range)."""
