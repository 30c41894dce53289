"""Pure, deterministic quantitative functions: arrays and frames in, frozen results out.

``analytics`` imports no other RegimeDesk package and performs no I/O.
"""

from analytics._backtest import (
    BacktestConfig,
    BacktestResult,
    PerformanceMetrics,
    performance_metrics,
    run_backtest,
)
from analytics._bars import BAR_COLUMNS, Timeframe, empty_bars, resample_bars
from analytics._errors import (
    ConfigError,
    DataQualityWarning,
    DataValidationError,
    EstimationWarning,
    InsufficientDataError,
    RegimeDeskError,
    RegimeDeskWarning,
)
from analytics._validation import (
    VALIDATION_RULES,
    ValidationIssue,
    ValidationPolicy,
    ValidationReport,
    validate_bars,
)

__all__ = [
    # errors
    "RegimeDeskError",
    "InsufficientDataError",
    "DataValidationError",
    "ConfigError",
    "RegimeDeskWarning",
    "DataQualityWarning",
    "EstimationWarning",
    # bars
    "BAR_COLUMNS",
    "Timeframe",
    "empty_bars",
    "resample_bars",
    # validation
    "VALIDATION_RULES",
    "ValidationPolicy",
    "ValidationIssue",
    "ValidationReport",
    "validate_bars",
    # backtest
    "BacktestConfig",
    "BacktestResult",
    "PerformanceMetrics",
    "performance_metrics",
    "run_backtest",
]
