"""The project's exception and warning hierarchy.

Every exception RegimeDesk raises on purpose derives from :class:`RegimeDeskError`, so a
caller (the CLI, the bot, the live loop) can tell "our error, with a message meant for a
person" from a bug. Bad *arguments* still raise ``ValueError``/``TypeError``; infeasible
*data* raises a subclass of :class:`RegimeDeskError`; recoverable problems warn with a
subclass of :class:`RegimeDeskWarning`.

This module lives in ``analytics`` because ``analytics`` is the bottom of the dependency
graph: every other package may import it, and it imports no other project package.
"""

from __future__ import annotations

__all__ = [
    "RegimeDeskError",
    "InsufficientDataError",
    "DataValidationError",
    "ConfigError",
    "RegimeDeskWarning",
    "DataQualityWarning",
    "EstimationWarning",
]


class RegimeDeskError(Exception):
    """Root of every exception RegimeDesk raises deliberately."""


class InsufficientDataError(RegimeDeskError):
    """The data cannot support the computation (too few observations, constant series, ...)."""


class DataValidationError(RegimeDeskError):
    """Bars broke a validation rule whose policy is ``error``.

    Parameters
    ----------
    message : str
        One-line summary for a person.
    report : object, optional
        The full validation report (``integrations.ValidationReport``) when available.
    """

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class ConfigError(RegimeDeskError):
    """The configuration is invalid (unknown key, wrong type, secret in a file, ...)."""


class RegimeDeskWarning(UserWarning):
    """Root of RegimeDesk's warnings: something recoverable happened."""


class DataQualityWarning(RegimeDeskWarning):
    """Bars were repaired or flagged by a validation rule whose policy is ``repair``/``warn``."""


class EstimationWarning(RegimeDeskWarning):
    """An estimator did not converge or returned a degenerate fit; the result says how."""
