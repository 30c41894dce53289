"""Adapters to the outside world: market data, brokers, LLM client, Telegram, PDF, export.

``integrations`` imports no ``agents`` code.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names as _SOURCES, for type checkers and tests/test_import_graph.py
    from integrations._charts import (
        CHART_DPI,
        CHART_WIDTH_INCHES,
        equity_drawdown_chart,
        exposure_chart,
        importance_chart,
        monthly_returns_heatmap,
        price_regime_chart,
        reliability_chart,
        rolling_performance_chart,
        var_backtest_chart,
    )
    from integrations._errors import (
        IntegrationError,
        MissingCredentialsError,
        NoDataError,
        PermanentError,
        TransientError,
        UnknownSymbolError,
    )
    from integrations._feeds import FEED_NAMES, BarBatch, Feed, PollingFeed, ReplayFeed
    from integrations._journal import (
        JOURNAL_SCHEMA_VERSION,
        Journal,
        JournalError,
        RunRecord,
        UnknownRunError,
    )
    from integrations._live_bars import LIVE_SOURCE_PREFIX, LiveBarStore, StoredBarSource
    from integrations._llm import KEYLESS_API_KEY, LLMReply, LLMTimeoutError, OpenAIChat
    from integrations._market_data import SYMBOL_PATTERN, BarCache, Bars, MarketData
    from integrations._pdf import (
        PARAGRAPH_STYLES,
        Block,
        Figure,
        PageBreak,
        Paragraph,
        RenderedReport,
        ReportDocument,
        ReportRenderError,
        Section,
        Table,
        render_pdf,
    )
    from integrations._quantconnect import (
        COLUMN_SPEC,
        DEFAULT_TICKERS,
        LEAN_DATA_SOURCES,
        SIGNAL_COLUMNS,
        SIGNAL_CSV_NAME,
        SIGNAL_TIMEFRAMES,
        LeanProject,
        coerce_signal_frame,
        lean_data_location,
        lean_tickers,
        read_signal_csv,
        write_lean_project,
        write_signal_csv,
    )
    from integrations._redact import (
        MIN_SECRET_LENGTH,
        REDACTED,
        RedactingFilter,
        RedactingStream,
        redact,
        register_secrets,
    )
    from integrations._retry import call_with_retry
    from integrations._sources import (
        BUILTIN_SYMBOLS,
        CELL_RULES,
        AlpacaSource,
        BarFileInspection,
        BarFileIssue,
        BarSource,
        BuiltinSource,
        FileSource,
        PolygonSource,
        inspect_bar_file,
        read_bar_file,
    )
    from integrations._sqlite import apply_schema, open_database
    from integrations._telegram import (
        TELEGRAM_CAPTION_LIMIT,
        TELEGRAM_TEXT_LIMIT,
        Delivery,
        TelegramSender,
        redact_token,
    )
    from integrations._telegram_bot import (
        APPROVAL_DATA_PATTERN,
        AccessPolicy,
        BotStateStore,
        CommandBot,
        CommandReply,
        CommandSpec,
        Invocation,
        ParsedArgs,
        RateLimiter,
        TelegramBotError,
        TokenCheck,
        TokenRedactingFilter,
        help_text,
        parse_args,
        parse_symbols,
    )
    from integrations._working_state import LiveStateStore, ScheduleStateStore, StateStoreError

__all__ = [
    "apply_schema",
    "open_database",
    "IntegrationError",
    "TransientError",
    "PermanentError",
    "MissingCredentialsError",
    "UnknownSymbolError",
    "NoDataError",
    "call_with_retry",
    "redact",
    "register_secrets",
    "RedactingFilter",
    "RedactingStream",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "BarSource",
    "BuiltinSource",
    "FileSource",
    "PolygonSource",
    "AlpacaSource",
    "read_bar_file",
    "inspect_bar_file",
    "BarFileInspection",
    "BarFileIssue",
    "CELL_RULES",
    "BUILTIN_SYMBOLS",
    "BarBatch",
    "BarCache",
    "FEED_NAMES",
    "Feed",
    "LIVE_SOURCE_PREFIX",
    "LiveBarStore",
    "PollingFeed",
    "ReplayFeed",
    "StoredBarSource",
    "Bars",
    "MarketData",
    "SYMBOL_PATTERN",
    "Journal",
    "RunRecord",
    "JournalError",
    "UnknownRunError",
    "JOURNAL_SCHEMA_VERSION",
    "LiveStateStore",
    "ScheduleStateStore",
    "StateStoreError",
    "OpenAIChat",
    "LLMReply",
    "LLMTimeoutError",
    "KEYLESS_API_KEY",
    "SIGNAL_COLUMNS",
    "COLUMN_SPEC",
    "SIGNAL_TIMEFRAMES",
    "SIGNAL_CSV_NAME",
    "LEAN_DATA_SOURCES",
    "DEFAULT_TICKERS",
    "LeanProject",
    "coerce_signal_frame",
    "write_signal_csv",
    "read_signal_csv",
    "lean_tickers",
    "lean_data_location",
    "write_lean_project",
    "TelegramSender",
    "Delivery",
    "TELEGRAM_TEXT_LIMIT",
    "TELEGRAM_CAPTION_LIMIT",
    "CommandBot",
    "CommandSpec",
    "CommandReply",
    "Invocation",
    "AccessPolicy",
    "RateLimiter",
    "BotStateStore",
    "TokenCheck",
    "ParsedArgs",
    "TelegramBotError",
    "TokenRedactingFilter",
    "parse_args",
    "parse_symbols",
    "help_text",
    "redact_token",
    "APPROVAL_DATA_PATTERN",
    "ReportDocument",
    "Section",
    "Paragraph",
    "Table",
    "Figure",
    "PageBreak",
    "Block",
    "RenderedReport",
    "ReportRenderError",
    "render_pdf",
    "PARAGRAPH_STYLES",
    "price_regime_chart",
    "equity_drawdown_chart",
    "reliability_chart",
    "importance_chart",
    "var_backtest_chart",
    "monthly_returns_heatmap",
    "rolling_performance_chart",
    "exposure_chart",
    "CHART_WIDTH_INCHES",
    "CHART_DPI",
]

#: Where each public name is defined. The submodule is imported when the name is first used,
#: so that `from integrations import redact` does not load pandas, matplotlib, reportlab and
#: openai: light commands start fast (benchmarks/startup.py).
_SOURCES: dict[str, tuple[str, ...]] = {
    "integrations._charts": (
        "CHART_DPI", "CHART_WIDTH_INCHES", "equity_drawdown_chart", "importance_chart",
        "price_regime_chart", "reliability_chart", "var_backtest_chart", "monthly_returns_heatmap",
        "rolling_performance_chart", "exposure_chart",
    ),
    "integrations._errors": (
        "IntegrationError", "MissingCredentialsError", "NoDataError", "PermanentError",
        "TransientError", "UnknownSymbolError",
    ),
    "integrations._feeds": ("FEED_NAMES", "BarBatch", "Feed", "PollingFeed", "ReplayFeed"),
    "integrations._journal": (
        "JOURNAL_SCHEMA_VERSION", "Journal", "JournalError", "RunRecord", "UnknownRunError",
    ),
    "integrations._live_bars": ("LIVE_SOURCE_PREFIX", "LiveBarStore", "StoredBarSource"),
    "integrations._llm": ("KEYLESS_API_KEY", "LLMReply", "LLMTimeoutError", "OpenAIChat"),
    "integrations._market_data": ("SYMBOL_PATTERN", "BarCache", "Bars", "MarketData"),
    "integrations._pdf": (
        "PARAGRAPH_STYLES", "Block", "Figure", "PageBreak", "Paragraph", "RenderedReport",
        "ReportDocument", "ReportRenderError", "Section", "Table", "render_pdf",
    ),
    "integrations._quantconnect": (
        "COLUMN_SPEC", "DEFAULT_TICKERS", "LEAN_DATA_SOURCES", "SIGNAL_COLUMNS", "SIGNAL_CSV_NAME",
        "SIGNAL_TIMEFRAMES", "LeanProject", "coerce_signal_frame", "lean_data_location",
        "lean_tickers", "read_signal_csv", "write_lean_project", "write_signal_csv",
    ),
    "integrations._redact": (
        "MIN_SECRET_LENGTH", "REDACTED", "RedactingFilter", "RedactingStream", "redact",
        "register_secrets",
    ),
    "integrations._retry": ("call_with_retry",),
    "integrations._sources": (
        "BUILTIN_SYMBOLS", "AlpacaSource", "BarSource", "BuiltinSource", "FileSource",
        "PolygonSource", "read_bar_file", "inspect_bar_file", "BarFileInspection", "BarFileIssue",
        "CELL_RULES",
    ),
    "integrations._sqlite": ("apply_schema", "open_database"),
    "integrations._telegram": (
        "TELEGRAM_CAPTION_LIMIT", "TELEGRAM_TEXT_LIMIT", "Delivery", "TelegramSender",
        "redact_token",
    ),
    "integrations._telegram_bot": (
        "APPROVAL_DATA_PATTERN", "AccessPolicy", "BotStateStore", "CommandBot", "CommandReply",
        "CommandSpec", "Invocation", "ParsedArgs", "RateLimiter", "TelegramBotError", "TokenCheck",
        "TokenRedactingFilter", "help_text", "parse_args", "parse_symbols",
    ),
    "integrations._working_state": ("LiveStateStore", "ScheduleStateStore", "StateStoreError"),
}
_MODULE_OF: dict[str, str] = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups do not come here again
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
