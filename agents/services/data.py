"""Build the configured market-data source from settings and secrets."""

from __future__ import annotations

import threading
from pathlib import Path

from agents.config import Secrets, Settings
from integrations import (
    LIVE_SOURCE_PREFIX,
    AlpacaSource,
    BarSource,
    BuiltinSource,
    FileSource,
    LiveBarStore,
    MarketData,
    PolygonSource,
    StoredBarSource,
)

__all__ = ["SOURCE_NAMES", "build_source", "build_market_data", "live_bar_store"]

SOURCE_NAMES: tuple[str, ...] = ("builtin", "file", "polygon", "alpaca")

_LIVE_STORES: dict[Path, LiveBarStore] = {}
_LIVE_LOCK = threading.Lock()


def live_bar_store(settings: Settings) -> LiveBarStore:
    """The live data cache of ``settings.home`` (one connection per process, thread-safe)."""
    path = (settings.paths.live_bars).resolve()
    with _LIVE_LOCK:
        store = _LIVE_STORES.get(path)
        if store is None:
            store = _LIVE_STORES[path] = LiveBarStore(path)
        return store


def build_source(settings: Settings, secrets: Secrets, name: str | None = None) -> BarSource:
    """The bar source ``name`` (default: ``settings.data.source``), configured.

    Building checks no credentials (a source may be built only to name symbols);
    :func:`build_market_data` and :func:`agents.services.context.check_services` do, through
    :meth:`integrations.BarSource.check_credentials`.
    """
    name = name or settings.data.source
    cfg = settings.data
    if name.startswith(LIVE_SOURCE_PREFIX):
        # the live data cache filled from the named upstream source (``live:alpaca``)
        upstream = name[len(LIVE_SOURCE_PREFIX):]
        if upstream not in SOURCE_NAMES:
            raise ValueError(f"source {name!r}: after 'live:' comes one of {', '.join(SOURCE_NAMES)}")
        return StoredBarSource(live_bar_store(settings), build_source(settings, secrets, upstream))
    if name == "builtin":
        return BuiltinSource()
    if name == "file":
        return FileSource(cfg.file.directory, cfg.file.files, cfg.file.timezone, cfg.file.timeframe)
    if name == "polygon":
        return PolygonSource(
            secrets.get("polygon_api_key"),
            base_url=cfg.polygon.base_url,
            retries=cfg.polygon.retries,
            timeout=cfg.polygon.timeout,
        )
    if name == "alpaca":
        return AlpacaSource(
            secrets.get("alpaca_api_key"),
            secrets.get("alpaca_secret_key"),
            base_url=cfg.alpaca.base_url,
            feed=cfg.alpaca.feed,
        )
    raise ValueError(f"source must be one of {', '.join(SOURCE_NAMES)}, not {name!r}")


def build_market_data(settings: Settings, secrets: Secrets, source: str | None = None) -> MarketData:
    """A :class:`integrations.MarketData` for the configured (or named) source.

    Raises
    ------
    MissingCredentialsError
        The source needs a key that is not set (``POLYGON_API_KEY``; ``ALPACA_API_KEY`` and
        ``ALPACA_SECRET_KEY``): said before any data are asked for, naming the variable.
    """
    src = build_source(settings, secrets, source)
    src.check_credentials()
    return MarketData(
        src,
        policy=settings.data.validation.to_policy(),
        cache_dir=settings.cache_dir if settings.data.cache else None,
        retries=settings.data.retries,
        retry_backoff=settings.data.retry_backoff,
        history_years=settings.data.history_years,
    )
