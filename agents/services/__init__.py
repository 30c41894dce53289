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

The package ``__init__`` imports nothing, so a light command pays only for what it uses.
"""

__all__ = [
    "context", "data", "emergency", "export", "fitcache", "format", "ml", "narrator", "progress",
    "regime", "report", "risk", "run_summary", "statistics",
]
