"""Pure, deterministic quantitative functions: arrays and frames in, frozen results out.

``analytics`` imports no other RegimeDesk package and performs no I/O.
"""

from typing import TYPE_CHECKING

from analytics.lazy import lazy_exports

if TYPE_CHECKING:  # the same names as _SOURCES, for type checkers and tests/test_import_graph.py
    from analytics._adf import (
        ADFResult,
        RollingADFResult,
        adf_default_maxlag,
        adf_test,
        rolling_adf,
    )
    from analytics._autocorr import (
        AutocorrelationResult,
        LjungBoxResult,
        RollingAutocorrelationResult,
        RollingLjungBoxResult,
        autocorrelation,
        ljung_box,
        rolling_autocorrelation,
        rolling_ljung_box,
    )
    from analytics._backtest import (
        BacktestConfig,
        BacktestResult,
        PerformanceMetrics,
        performance_metrics,
        run_backtest,
    )
    from analytics._character import (
        MEAN_REVERTING,
        RANDOM_WALK,
        TRENDING,
        UNDETERMINED,
        MarketCharacterResult,
        RollingMarketCharacterResult,
        market_character,
        rolling_market_character,
    )
    from analytics._covariance import (
        DEFAULT_HALF_LIVES,
        CovarianceEstimate,
        regime_covariance,
        risk_contributions,
    )
    from analytics._fgn import (
        fgn_autocovariance,
        simulate_fgn,
    )
    from analytics._hurst import (
        HurstResult,
        RollingHurstResult,
        expected_rescaled_range,
        hurst_exponent,
        hurst_scales,
        rolling_hurst,
    )
    from analytics._policy import (
        POLICIES,
        POLICY_GRIDS,
        PolicyParams,
        WalkForwardPolicy,
        select_policy_params,
        target_weights,
        walk_forward_policy,
    )
    from analytics._portfolio import (
        DEFAULT_REGIME_CAPS,
        PORTFOLIO_METHODS,
        PortfolioWeights,
        RegimeCaps,
        caps_for,
        drift_weights,
        portfolio_weights,
        rebalance_due,
    )
    from analytics._portfolio_backtest import (
        BENCHMARK_METHODS,
        CrisisWindow,
        PortfolioBacktestConfig,
        PortfolioBacktestResult,
        crisis_windows,
        run_portfolio_backtest,
    )
    from analytics._portfolio_risk import (
        PORTFOLIO_VAR_METHODS,
        PortfolioVaR,
        portfolio_var,
    )
    from analytics._regime_common import (
        REGIME_FAMILIES,
        REGIME_LABELS,
        UNAVAILABLE,
        PersistenceRule,
        RegimeFit,
        RegimeResult,
        apply_persistence,
        expected_durations,
        forward_filter,
        label_states,
        order_states,
        walk_forward_regimes,
    )
    from analytics._regime_detect import (
        REGIME_METHODS,
        detect_regimes,
        make_regime_model,
    )
    from analytics._regime_garch import (
        GarchVolatilityRegime,
    )
    from analytics._regime_hmm import (
        GaussianHMMRegime,
    )
    from analytics._regime_markov import (
        MarkovSwitchingRegime,
    )
    from analytics._regime_mtf import (
        DEFAULT_TIMEFRAME_SPECS,
        TIMEFRAMES,
        MultiTimeframeRegime,
        RegimeConflict,
        TimeframeRegime,
        TimeframeSpec,
        multi_timeframe_regimes,
        regime_consensus,
    )
    from analytics._stress import (
        HISTORICAL_SCENARIOS,
        ShockResult,
        StressResult,
        StressScenario,
        historical_stress,
        hypothetical_shock,
    )
    from analytics._tearsheet import (
        DrawdownPeriod,
        RollingPerformance,
        Trade,
        TradeSummary,
        drawdown_periods,
        monthly_returns,
        rolling_performance,
        trade_list,
        trade_summary,
        yearly_returns,
    )
    from analytics._var import (
        ChristoffersenResult,
        KupiecResult,
        VaRBacktestResult,
        VaRResult,
        basel_zone,
        christoffersen,
        filtered_historical_var_es,
        gjr_filtered_portfolio_var_es,
        gjr_filtered_var_es,
        historical_var_es,
        kupiec_pof,
        portfolio_returns,
        var_backtest,
    )
    from analytics._variance_ratio import (
        RollingVarianceRatioResult,
        VarianceRatioResult,
        chow_denning_pvalue,
        rolling_variance_ratio,
        variance_ratio,
    )
    from analytics.bars import (
        BAR_COLUMNS,
        CLOSE_ONLY_MISSING,
        Timeframe,
        close_only_bars,
        empty_bars,
        is_close_only,
        resample_bars,
        shown,
    )
    from analytics.errors import (
        ConfigError,
        DataQualityWarning,
        DataValidationError,
        EstimationWarning,
        InsufficientDataError,
        RegimeDeskError,
        RegimeDeskWarning,
    )
    from analytics.serialise import json_safe
    from analytics.timeframes import TIMEFRAME_TABLE, AnalysisTimeframe
    from analytics.validation import (
        VALIDATION_RULES,
        ValidationIssue,
        ValidationPolicy,
        ValidationReport,
        validate_bars,
    )

__all__ = [
    # portfolio
    "DEFAULT_HALF_LIVES",
    "DEFAULT_REGIME_CAPS",
    "PORTFOLIO_METHODS",
    "CovarianceEstimate",
    "PortfolioWeights",
    "RegimeCaps",
    "caps_for",
    "drift_weights",
    "portfolio_weights",
    "rebalance_due",
    "regime_covariance",
    "risk_contributions",
    "BENCHMARK_METHODS",
    "CrisisWindow",
    "PortfolioBacktestConfig",
    "PortfolioBacktestResult",
    "crisis_windows",
    "run_portfolio_backtest",
    "HISTORICAL_SCENARIOS",
    "PORTFOLIO_VAR_METHODS",
    "PortfolioVaR",
    "ShockResult",
    "StressResult",
    "StressScenario",
    "historical_stress",
    "hypothetical_shock",
    "portfolio_var",
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
    "CLOSE_ONLY_MISSING",
    "close_only_bars",
    "is_close_only",
    "Timeframe",
    "empty_bars",
    "resample_bars",
    "shown",
    # the JSON sanitiser
    "json_safe",
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
    # tearsheet statistics
    "DrawdownPeriod",
    "RollingPerformance",
    "drawdown_periods",
    "monthly_returns",
    "rolling_performance",
    "yearly_returns",
    "Trade",
    "TradeSummary",
    "trade_list",
    "trade_summary",
    # value at risk
    "VaRResult",
    "VaRBacktestResult",
    "KupiecResult",
    "ChristoffersenResult",
    "historical_var_es",
    "filtered_historical_var_es",
    "gjr_filtered_var_es",
    "gjr_filtered_portfolio_var_es",
    "portfolio_returns",
    "kupiec_pof",
    "christoffersen",
    "basel_zone",
    "var_backtest",
    # decision policy
    "POLICIES",
    "POLICY_GRIDS",
    "PolicyParams",
    "WalkForwardPolicy",
    "select_policy_params",
    "target_weights",
    "walk_forward_policy",
    # statistics and regimes
    "REGIME_METHODS",
    "detect_regimes",
    "make_regime_model",
    "ADFResult",
    "RollingADFResult",
    "adf_test",
    "rolling_adf",
    "adf_default_maxlag",
    "VarianceRatioResult",
    "RollingVarianceRatioResult",
    "variance_ratio",
    "rolling_variance_ratio",
    "chow_denning_pvalue",
    "HurstResult",
    "RollingHurstResult",
    "hurst_exponent",
    "rolling_hurst",
    "hurst_scales",
    "expected_rescaled_range",
    "AutocorrelationResult",
    "LjungBoxResult",
    "RollingAutocorrelationResult",
    "RollingLjungBoxResult",
    "autocorrelation",
    "ljung_box",
    "rolling_autocorrelation",
    "rolling_ljung_box",
    "MarketCharacterResult",
    "RollingMarketCharacterResult",
    "market_character",
    "rolling_market_character",
    "TRENDING",
    "MEAN_REVERTING",
    "RANDOM_WALK",
    "UNDETERMINED",
    "fgn_autocovariance",
    "simulate_fgn",
    "REGIME_LABELS",
    "REGIME_FAMILIES",
    "UNAVAILABLE",
    "PersistenceRule",
    "RegimeFit",
    "RegimeResult",
    "apply_persistence",
    "expected_durations",
    "forward_filter",
    "label_states",
    "order_states",
    "walk_forward_regimes",
    "GaussianHMMRegime",
    "MarkovSwitchingRegime",
    "GarchVolatilityRegime",
    "TIMEFRAMES",
    "DEFAULT_TIMEFRAME_SPECS",
    "TimeframeSpec",
    "TIMEFRAME_TABLE",
    "AnalysisTimeframe",
    "TimeframeRegime",
    "RegimeConflict",
    "MultiTimeframeRegime",
    "regime_consensus",
    "multi_timeframe_regimes",
]

#: Where each public name is defined. The submodule is imported when the name is first used,
#: so that `from analytics import RegimeDeskError` loads analytics.errors and not scipy,
#: statsmodels and arch: light commands start fast (benchmarks/startup.py).
_SOURCES: dict[str, tuple[str, ...]] = {
    "analytics._adf": (
        "ADFResult", "RollingADFResult", "adf_default_maxlag", "adf_test", "rolling_adf",
    ),
    "analytics._autocorr": (
        "AutocorrelationResult", "LjungBoxResult", "RollingAutocorrelationResult",
        "RollingLjungBoxResult", "autocorrelation", "ljung_box", "rolling_autocorrelation",
        "rolling_ljung_box",
    ),
    "analytics._backtest": (
        "BacktestConfig", "BacktestResult", "PerformanceMetrics", "performance_metrics",
        "run_backtest",
    ),
    "analytics._character": (
        "MEAN_REVERTING", "RANDOM_WALK", "TRENDING", "UNDETERMINED", "MarketCharacterResult",
        "RollingMarketCharacterResult", "market_character", "rolling_market_character",
    ),
    "analytics._covariance": ("DEFAULT_HALF_LIVES", "CovarianceEstimate", "regime_covariance", "risk_contributions"),
    "analytics._fgn": ("fgn_autocovariance", "simulate_fgn"),
    "analytics._hurst": (
        "HurstResult", "RollingHurstResult", "expected_rescaled_range", "hurst_exponent",
        "hurst_scales", "rolling_hurst",
    ),
    "analytics._policy": (
        "POLICIES", "POLICY_GRIDS", "PolicyParams", "WalkForwardPolicy", "select_policy_params",
        "target_weights", "walk_forward_policy",
    ),
    "analytics._portfolio": (
        "DEFAULT_REGIME_CAPS", "PORTFOLIO_METHODS", "PortfolioWeights", "RegimeCaps", "caps_for", "drift_weights",
        "portfolio_weights", "rebalance_due",
    ),
    "analytics._portfolio_backtest": (
        "BENCHMARK_METHODS", "CrisisWindow", "PortfolioBacktestConfig", "PortfolioBacktestResult", "crisis_windows", "run_portfolio_backtest",
    ),
    "analytics._portfolio_risk": ("PORTFOLIO_VAR_METHODS", "PortfolioVaR", "portfolio_var"),
    "analytics._regime_common": (
        "REGIME_FAMILIES", "REGIME_LABELS", "UNAVAILABLE", "PersistenceRule", "RegimeFit",
        "RegimeResult", "apply_persistence", "expected_durations", "forward_filter",
        "label_states", "order_states", "walk_forward_regimes",
    ),
    "analytics._regime_detect": ("REGIME_METHODS", "detect_regimes", "make_regime_model"),
    "analytics._regime_garch": ("GarchVolatilityRegime",),
    "analytics._regime_hmm": ("GaussianHMMRegime",),
    "analytics._regime_markov": ("MarkovSwitchingRegime",),
    "analytics._regime_mtf": (
        "DEFAULT_TIMEFRAME_SPECS", "TIMEFRAMES", "MultiTimeframeRegime", "RegimeConflict",
        "TimeframeRegime", "TimeframeSpec", "multi_timeframe_regimes", "regime_consensus",
    ),
    "analytics._stress": (
        "HISTORICAL_SCENARIOS", "ShockResult", "StressResult", "StressScenario", "historical_stress",
        "hypothetical_shock",
    ),
    "analytics._tearsheet": (
        "DrawdownPeriod", "RollingPerformance", "Trade", "TradeSummary", "drawdown_periods",
        "monthly_returns", "rolling_performance", "trade_list", "trade_summary", "yearly_returns",
    ),
    "analytics._var": (
        "ChristoffersenResult", "KupiecResult", "VaRBacktestResult", "VaRResult", "basel_zone",
        "christoffersen", "filtered_historical_var_es", "gjr_filtered_portfolio_var_es",
        "gjr_filtered_var_es", "historical_var_es", "kupiec_pof", "portfolio_returns",
        "var_backtest",
    ),
    "analytics._variance_ratio": (
        "RollingVarianceRatioResult", "VarianceRatioResult", "chow_denning_pvalue",
        "rolling_variance_ratio", "variance_ratio",
    ),
    "analytics.bars": ("BAR_COLUMNS", "CLOSE_ONLY_MISSING", "Timeframe", "close_only_bars", "empty_bars",
                       "is_close_only", "resample_bars", "shown"),
    "analytics.errors": (
        "ConfigError", "DataQualityWarning", "DataValidationError", "EstimationWarning",
        "InsufficientDataError", "RegimeDeskError", "RegimeDeskWarning",
    ),
    "analytics.serialise": ("json_safe",),
    "analytics.timeframes": ("TIMEFRAME_TABLE", "AnalysisTimeframe"),
    "analytics.validation": (
        "VALIDATION_RULES", "ValidationIssue", "ValidationPolicy", "ValidationReport",
        "validate_bars",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
