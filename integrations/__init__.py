"""Adapters to the outside world: market data, brokers, LLM client, Telegram, PDF, export.

``integrations`` imports no ``agents`` code.
"""

from integrations._errors import (
    IntegrationError,
    MissingCredentialsError,
    NoDataError,
    PermanentError,
    TransientError,
    UnknownSymbolError,
)
from integrations._journal import (
    JOURNAL_SCHEMA_VERSION,
    Journal,
    JournalError,
    RunRecord,
    UnknownRunError,
    json_safe,
)
from integrations._llm import KEYLESS_API_KEY, LLMReply, LLMTimeoutError, OpenAIChat
from integrations._market_data import SYMBOL_PATTERN, BarCache, Bars, MarketData
from integrations._retry import call_with_retry
from integrations._sources import (
    BUILTIN_SYMBOLS,
    AlpacaSource,
    BarSource,
    BuiltinSource,
    FileSource,
    PolygonSource,
    read_bar_file,
)

__all__ = [
    "IntegrationError",
    "TransientError",
    "PermanentError",
    "MissingCredentialsError",
    "UnknownSymbolError",
    "NoDataError",
    "call_with_retry",
    "BarSource",
    "BuiltinSource",
    "FileSource",
    "PolygonSource",
    "AlpacaSource",
    "read_bar_file",
    "BUILTIN_SYMBOLS",
    "BarCache",
    "Bars",
    "MarketData",
    "SYMBOL_PATTERN",
    "Journal",
    "RunRecord",
    "JournalError",
    "UnknownRunError",
    "json_safe",
    "JOURNAL_SCHEMA_VERSION",
    "OpenAIChat",
    "LLMReply",
    "LLMTimeoutError",
    "KEYLESS_API_KEY",
]
