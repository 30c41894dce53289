"""Pure, deterministic quantitative functions: arrays and frames in, frozen results out.

``analytics`` imports no other RegimeDesk package and performs no I/O.
"""

from analytics._errors import (
    ConfigError,
    DataQualityWarning,
    DataValidationError,
    EstimationWarning,
    InsufficientDataError,
    RegimeDeskError,
    RegimeDeskWarning,
)

__all__ = [
    "RegimeDeskError",
    "InsufficientDataError",
    "DataValidationError",
    "ConfigError",
    "RegimeDeskWarning",
    "DataQualityWarning",
    "EstimationWarning",
]
