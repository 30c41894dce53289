"""Every file and folder RegimeDesk keeps under its home, named in one place.

The home is ``settings.home`` (``REGIMEDESK_HOME``, default ``~/.regimedesk``). Code that
opens one of these files asks :class:`HomePaths` (``settings.paths``) for its path instead
of spelling out a file name, so the layout of the home is written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["HomePaths"]


@dataclass(frozen=True)
class HomePaths:
    """The layout of a RegimeDesk home.

    Parameters
    ----------
    root : Path
        The home folder (``~`` already expanded).
    """

    root: Path

    @property
    def journal(self) -> Path:
        """The audit journal: runs, agent outputs, decisions, verdicts, orders, fills, LLM exchanges, live events."""
        return self.root / "journal.sqlite"

    @property
    def live_state(self) -> Path:
        """Working state of ``regimedesk live``: each session's process and heartbeat, the bars it claimed."""
        return self.root / "live_state.sqlite"

    @property
    def schedule_state(self) -> Path:
        """Working state of ``regimedesk schedule``: every job execution (catch-up and ``--history``)."""
        return self.root / "schedule_state.sqlite"

    @property
    def scan_state(self) -> Path:
        """``regimedesk scan``: the last scan record of each symbol per source (what changed since)."""
        return self.root / "scan_state.sqlite"

    @property
    def checkpoints(self) -> Path:
        """LangGraph's checkpoints of every run thread."""
        return self.root / "checkpoints.sqlite"

    @property
    def risk_state(self) -> Path:
        """The risk gate's persisted state, its history and silent feeds."""
        return self.root / "risk.sqlite"

    @property
    def paper_broker(self) -> Path:
        """The local paper broker's cash, positions, orders and fills."""
        return self.root / "paper_broker.sqlite"

    @property
    def fit_cache(self) -> Path:
        """Fitted regime, GARCH and ML walk-forward results, keyed by what they depend on."""
        return self.root / "fit_cache.sqlite"

    @property
    def live_bars(self) -> Path:
        """The live data cache of ``regimedesk live``."""
        return self.root / "live_bars.sqlite"

    @property
    def bot_state(self) -> Path:
        """The Telegram bot's approval nonces and alert cursor."""
        return self.root / "telegram_bot.sqlite"

    @property
    def models(self) -> Path:
        """The versioned signal models, one folder per symbol."""
        return self.root / "models"

    @property
    def bar_cache(self) -> Path:
        """Bars fetched from network sources for closed date ranges (Parquet)."""
        return self.root / "cache" / "bars"

    @property
    def reports(self) -> Path:
        """Default delivery folder of reports (``report.dir`` overrides it)."""
        return self.root / "reports"

    @property
    def matplotlib(self) -> Path:
        """matplotlib's font cache (``MPLCONFIGDIR`` unless the user set one)."""
        return self.root / "matplotlib"

    def live_lock(self, session: str) -> Path:
        """The lock file that keeps one process per live ``session``."""
        return self.root / "live_locks" / f"{session}.lock"
