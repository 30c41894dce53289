"""Services: the workflows the graph's nodes, the command line, the bot and the scheduler call.

Layer four of four inside ``agents`` (front doors -> runtimes -> graph -> **services**); below
it are only ``agents.config``, ``agents.paths`` and the other packages (analytics, signals,
integrations). One module per workflow:

``context``      what a run needs besides its state: the parsed request, bars, broker, narrator
``data``         the configured market-data source
``regime``       multi-timeframe regimes, consensus and history
``statistics``   Hurst, variance ratio, ADF, autocorrelation and market character
``ml``           the ML signal, the decision policy and its backtest
``risk``         limits, risk state, market snapshot, order proposal and idempotent execution
``emergency``    halt, cancel and flatten
``export``       causal signal CSV and the QuantConnect algorithm
``report``       the PDF report of a run
``run_summary``  the plain-text summary of a run, for every front door
``narrator``     LLM words checked against the numbers from code
``fitcache``     fitted regime parameters kept between runs
``format``       number formatting for people
``progress``     status lines with an estimate of the time left for long steps
``analysis``     a symbol's regimes, statistics and signal for one run, here or on a worker
``scan``         one symbol's scan record and what changed since the last scan
``portfolio``, ``allocation``, ``portfolio_risk``, ``portfolio_report``, ``portfolio_export``,
``portfolio_text``  universes, the portfolio agent, portfolio VaR/stress, report, export, bot text
``significance`` whether a backtest's edge over buy-and-hold is distinguishable from luck
``volatility``   volatility forecasts against their baselines (HAR-RV, GARCH, EWMA)
``drift``        drift of stored models: feature PSI/KS, score decay, breaches journaled and alerted
``drift_marks``  the drift mark a check writes and the scheduled retrain reads

The package ``__init__`` imports nothing, so a light command pays only for what it uses.
"""

__all__ = [
    "allocation", "analysis", "context", "data", "drift", "drift_marks", "emergency", "export", "fitcache", "format", "ml",
    "narrator", "portfolio", "portfolio_export", "portfolio_report", "portfolio_risk", "portfolio_text", "progress",
    "regime", "report", "risk", "run_summary", "scan", "significance", "statistics", "volatility",
]
