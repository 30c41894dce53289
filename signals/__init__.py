"""ML signals: causal features, labels, purged walk-forward validation, XGBoost, model store."""

from signals._features import FEATURE_DESCRIPTIONS, FeatureConfig, build_features, garch_volatility
from signals._guards import LeakageError, assert_prefix_invariant, prefix_violations
from signals._labels import LabelConfig, make_labels
from signals._model import (
    FittedModel,
    ModelConfig,
    SignalMetrics,
    WalkForwardResult,
    fit_classifier,
    prediction_contributions,
    reliability_table,
    signal_metrics,
    walk_forward_predict,
)
from signals._split import PurgedWalkForwardSplit
from signals._store import (
    ModelNotFoundError,
    ModelStore,
    StaleModelError,
    StaleModelWarning,
    StoredModel,
    check_model_age,
    data_hash,
    library_versions,
)

__all__ = [
    "FEATURE_DESCRIPTIONS",
    "FeatureConfig",
    "build_features",
    "garch_volatility",
    "LabelConfig",
    "make_labels",
    "PurgedWalkForwardSplit",
    "ModelConfig",
    "FittedModel",
    "SignalMetrics",
    "WalkForwardResult",
    "fit_classifier",
    "walk_forward_predict",
    "signal_metrics",
    "reliability_table",
    "prediction_contributions",
    "ModelStore",
    "StoredModel",
    "ModelNotFoundError",
    "StaleModelError",
    "StaleModelWarning",
    "check_model_age",
    "data_hash",
    "library_versions",
    "LeakageError",
    "prefix_violations",
    "assert_prefix_invariant",
]
