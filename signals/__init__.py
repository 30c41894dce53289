"""ML signals: causal features, labels, purged walk-forward validation, XGBoost, model store."""

from typing import TYPE_CHECKING

from analytics.lazy import lazy_exports

if TYPE_CHECKING:  # the same names as _SOURCES, for type checkers and tests/test_import_graph.py
    from signals._drift import (
        PSI_EPSILON,
        FeatureDrift,
        FeatureDriftRow,
        PerformanceDecay,
        feature_drift,
        performance_decay,
        population_stability_index,
        psi_edges,
    )
    from signals._features import (
        FEATURE_DESCRIPTIONS,
        FeatureConfig,
        build_features,
        garch_volatility,
        latest_features,
    )
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
    from signals._onnx import (
        ONNX_INPUT,
        OnnxExport,
        export_onnx,
        onnx_max_difference,
    )
    from signals._regime_change import (
        RegimeChangeResult,
        baseline_change_probability,
        change_labels,
        family_stay_probability,
        regime_age,
        walk_forward_change,
    )
    from signals._split import PurgedWalkForwardSplit
    from signals._store import (
        ModelNotFoundError,
        ModelStore,
        StaleModelError,
        StaleModelWarning,
        StoredModel,
        UnreadableModelError,
        check_model_age,
        data_hash,
        library_versions,
    )
    from signals._volmodel import (
        VOL_MODELS,
        VolModelConfig,
        VolScore,
        VolWalkForwardResult,
        walk_forward_vol,
    )

__all__ = [
    # ONNX export
    "ONNX_INPUT",
    "OnnxExport",
    "export_onnx",
    "onnx_max_difference",
    # drift of stored models
    "PSI_EPSILON",
    "FeatureDrift",
    "FeatureDriftRow",
    "PerformanceDecay",
    "feature_drift",
    "performance_decay",
    "population_stability_index",
    "psi_edges",
    # regime-change forecasts
    "RegimeChangeResult",
    "baseline_change_probability",
    "change_labels",
    "family_stay_probability",
    "regime_age",
    "walk_forward_change",
    # volatility forecasts
    "VOL_MODELS",
    "VolModelConfig",
    "VolScore",
    "VolWalkForwardResult",
    "walk_forward_vol",
    "FEATURE_DESCRIPTIONS",
    "FeatureConfig",
    "build_features",
    "garch_volatility",
    "latest_features",
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
    "UnreadableModelError",
    "check_model_age",
    "data_hash",
    "library_versions",
    "LeakageError",
    "prefix_violations",
    "assert_prefix_invariant",
]

#: Where each public name is defined. The submodule is imported when the name is first used,
#: so that importing one name does not load xgboost and scikit-learn: light commands start fast
#: (benchmarks/startup.py).
_SOURCES: dict[str, tuple[str, ...]] = {
    "signals._onnx": (
        "ONNX_INPUT",
        "OnnxExport",
        "export_onnx",
        "onnx_max_difference",
    ),
    "signals._drift": (
        "PSI_EPSILON",
        "FeatureDrift",
        "FeatureDriftRow",
        "PerformanceDecay",
        "feature_drift",
        "performance_decay",
        "population_stability_index",
        "psi_edges",
    ),
    "signals._regime_change": (
        "RegimeChangeResult",
        "baseline_change_probability",
        "change_labels",
        "family_stay_probability",
        "regime_age",
        "walk_forward_change",
    ),
    "signals._volmodel": (
        "VOL_MODELS",
        "VolModelConfig",
        "VolScore",
        "VolWalkForwardResult",
        "walk_forward_vol",
    ),
    "signals._features": (
        "FEATURE_DESCRIPTIONS", "FeatureConfig", "build_features", "garch_volatility", "latest_features",
    ),
    "signals._guards": ("LeakageError", "assert_prefix_invariant", "prefix_violations"),
    "signals._labels": ("LabelConfig", "make_labels"),
    "signals._model": (
        "FittedModel", "ModelConfig", "SignalMetrics", "WalkForwardResult", "fit_classifier",
        "prediction_contributions", "reliability_table", "signal_metrics", "walk_forward_predict",
    ),
    "signals._split": ("PurgedWalkForwardSplit",),
    "signals._store": (
        "ModelNotFoundError", "ModelStore", "StaleModelError", "StaleModelWarning", "StoredModel",
        "check_model_age", "data_hash", "library_versions", "UnreadableModelError",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
