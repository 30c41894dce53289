"""Typed, frozen configuration: ``regimedesk.toml`` for settings, the environment for secrets.

Where the file is looked for, first match wins: ``--config PATH``; the environment variable
``REGIMEDESK_CONFIG``; ``./regimedesk.toml``; otherwise built-in defaults. Unknown keys are
rejected with the key named. Secrets (API keys, tokens) are never read from the file: a key
that looks like one is refused with the environment variable to set instead.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from agents.paths import HomePaths
from analytics import ConfigError, shown
from analytics.bars import Timeframe
from analytics.timeframes import TIMEFRAME_TABLE, TIMEFRAMES
from analytics.validation import VALIDATION_RULES, ValidationPolicy

__all__ = [
    "Settings",
    "Secrets",
    "DataConfig",
    "ValidationConfig",
    "TimeframeSettings",
    "TimeframesConfig",
    "LLMConfig",
    "MLConfig",
    "DriftConfig",
    "DecisionConfig",
    "PortfolioConfig",
    "PortfolioCapsConfig",
    "ComputeConfig",
    "PORTFOLIO_CHOICES",
    "RiskConfig",
    "RISK_OFF_AT_ZERO",
    "BrokerConfig",
    "ReportConfig",
    "TelegramConfig",
    "ScheduleConfig",
    "ScheduledJob",
    "load_settings",
    "resolve_config_path",
    "config_template",
    "SECRET_VARIABLES",
    "TIMEFRAME_NAMES",
]

#: The analysis timeframes, longest first (``analytics.timeframes.TIMEFRAMES``).
TIMEFRAME_NAMES: tuple[str, ...] = TIMEFRAMES

#: Environment variables read as secrets (never from the file, never printed).
SECRET_VARIABLES: dict[str, str] = {
    "openai_api_key": "OPENAI_API_KEY",
    "polygon_api_key": "POLYGON_API_KEY",
    "alpaca_api_key": "ALPACA_API_KEY",
    "alpaca_secret_key": "ALPACA_SECRET_KEY",
    "telegram_bot_token": "TELEGRAM_BOT_TOKEN",
}
_SECRETISH = ("api_key", "apikey", "secret", "token", "password")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeframeSettings(_Model):
    """One ``[timeframes.XX]`` section: the timeframe's bar length and lookback in bars.

    Not to be confused with :class:`analytics.TimeframeSpec`, the walk-forward settings of
    the regime models.
    """

    bar: str
    lookback: int = Field(ge=20, le=100_000)

    @field_validator("bar")
    @classmethod
    def _bar(cls, value: str) -> str:
        return str(Timeframe.parse(value))


# Built from the table so that the sections (and their defaults) cannot drift from it; each
# timeframe is a field of its own, so the file format stays [timeframes.LT] and so on.
_TIMEFRAME_FIELDS: dict[str, Any] = {
    name: (TimeframeSettings, TimeframeSettings(bar=str(row.bar), lookback=row.lookback))
    for name, row in TIMEFRAME_TABLE.items()
}
TimeframesConfig = create_model(
    "TimeframesConfig",
    __base__=_Model,
    __module__=__name__,
    __doc__=(
        "The ``[timeframes]`` sections, one :class:`TimeframeSettings` per timeframe of "
        "``analytics.TIMEFRAME_TABLE`` (LT weekly ~3y, MT daily ~1y, ST daily ~3m, US 5-minute "
        "~5 sessions by default)."
    ),
    **_TIMEFRAME_FIELDS,
)


RuleAction = Literal["error", "repair", "warn"]


class ValidationConfig(_Model):
    """Validation rules applied on every load (see ``analytics.validate_bars``)."""

    max_gap_days: float | None = Field(default=7.0, gt=0)
    jump_z: float = Field(default=10.0, gt=0)
    jump_window: int = Field(default=63, ge=20)
    policy: dict[str, RuleAction] = Field(default_factory=dict)

    @field_validator("policy")
    @classmethod
    def _rules(cls, value: dict[str, str]) -> dict[str, str]:
        for rule, action in value.items():
            if rule not in VALIDATION_RULES:
                raise ValueError(f"unknown rule {rule!r}; rules are {', '.join(VALIDATION_RULES)}")
            if action == "repair" and rule in ("gap", "jump"):
                raise ValueError(f"rule {rule!r} cannot be repaired; use error or warn")
        return value

    def to_policy(self) -> ValidationPolicy:
        """The ``analytics`` policy object these settings describe."""
        import pandas as pd

        gap = pd.Timedelta(days=self.max_gap_days) if self.max_gap_days else None
        return ValidationPolicy(
            policies=dict(self.policy), max_gap=gap, jump_z=self.jump_z, jump_window=self.jump_window
        )


class FileSourceConfig(_Model):
    directory: Path | None = None
    files: dict[str, Path] = Field(default_factory=dict)
    timezone: str = "UTC"
    timeframe: str = "1D"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        import pandas as pd

        try:
            pd.Timestamp("2000-01-01").tz_localize(value)
        except Exception:
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("timeframe")
    @classmethod
    def _tf(cls, value: str) -> str:
        return str(Timeframe.parse(value))

    @model_validator(mode="after")
    def _daily_companions(self) -> FileSourceConfig:
        # "SYMBOL.1D" names the daily companion of an intraday file (integrations.FileSource).
        companions = [k for k in self.files if k.strip().upper().endswith(".1D")]
        for key in companions:
            if key.strip().upper() == ".1D":
                raise ValueError(f"data.file.files key {shown(key)} names no symbol; write \"SYMBOL.1D\"")
        if companions and not Timeframe.parse(self.timeframe).intraday:
            raise ValueError(
                f"data.file.files key {shown(companions[0])} names the daily file beside an intraday one, but "
                f"data.file.timeframe is {self.timeframe}: list a daily file under its symbol"
            )
        return self


class PolygonConfig(_Model):
    base_url: str = "https://api.polygon.io"
    retries: int = Field(default=3, ge=0, le=10)
    timeout: float = Field(default=30.0, gt=0, le=300)


class AlpacaDataConfig(_Model):
    base_url: str | None = None
    feed: Literal["iex", "sip"] = "iex"


class DataConfig(_Model):
    """Where bars come from and how they are checked."""

    source: Literal["builtin", "file", "polygon", "alpaca"] = "builtin"
    cache: bool = True
    retries: int = Field(default=4, ge=1, le=10)
    retry_backoff: float = Field(default=0.5, ge=0, le=30)
    # Years of daily (and weekly) bars a run reads back from its last bar.
    history_years: float = Field(default=30.0, ge=1, le=200)
    validation: ValidationConfig = ValidationConfig()
    file: FileSourceConfig = FileSourceConfig()
    polygon: PolygonConfig = PolygonConfig()
    alpaca: AlpacaDataConfig = AlpacaDataConfig()


class LLMConfig(_Model):
    """Narrator backend. ``template`` is offline and deterministic."""

    backend: Literal["template", "openai"] = "template"
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    timeout: float = Field(default=20.0, gt=0, le=300)
    max_retries: int = Field(default=2, ge=0, le=10)
    temperature: float = Field(default=0.0, ge=0, le=2)
    # Longest LLM narrative accepted, in characters (per agent narrative); a longer reply is
    # rejected (too_long) and the template shown, never truncated. See docs/narrator.md.
    max_narrative_chars: int = Field(default=600, ge=80, le=4000)


#: Timeframes the ML model may take its regime feature from: those whose default bars are daily
#: or longer (LT, MT, ST); an intraday regime path has no causal place on the daily rows.
_ML_REGIME_TIMEFRAMES = tuple(name for name, row in TIMEFRAME_TABLE.items() if not row.bar.intraday)


class DriftConfig(_Model):
    """``[ml.drift]``: when a stored model has drifted (``regimedesk models status``).

    Feature drift compares the last ``window`` bars after the model's training data with its
    training window; performance decay scores its forecasts on the last ``window`` labelled
    bars after it against the Brier score validated at training time.
    """

    # A feature whose population stability index exceeds this has shifted (0.25: a common
    # "significant shift" line).
    psi: float = Field(default=0.25, gt=0, le=100)
    # A feature whose two-sample Kolmogorov-Smirnov p-value is below this has shifted.
    ks_pvalue: float = Field(default=0.01, gt=0, lt=1)
    # Recent Brier score minus the validated one above this (absolute) is decay.
    brier_increase: float = Field(default=0.02, gt=0, le=1)
    # Recent bars compared (features) and labelled forecasts scored.
    window: int = Field(default=63, ge=20, le=2520)
    # true: a breach marks the model due, and the next scheduled or live retrain replaces it.
    retrain_on_breach: bool = False
    # true: scheduled run jobs check their symbols' models after the run (before the retrain).
    after_runs: bool = True


class MLConfig(_Model):
    """The ML signal: labels, walk-forward schedule and the model-age rule."""

    horizon: int = Field(default=5, ge=1, le=63)
    label: Literal["direction", "triple_barrier"] = "direction"
    barrier: float = Field(default=1.0, gt=0, le=10)
    min_train: int = Field(default=504, ge=100)
    refit_every: int = Field(default=63, ge=5)
    max_train: int = Field(default=0, ge=0)
    embargo: int = Field(default=5, ge=0, le=252)
    max_model_age_days: float = Field(default=30.0, gt=0)
    stale_model: Literal["warn", "refuse"] = "refuse"
    auto_train: bool = True
    # Live sessions and scheduled runs retrain a model after a bar once it is this old, so
    # decisions find a fresh one and never train (0: off; then only `regimedesk train` or a
    # decision that finds no usable model trains).
    retrain_after_days: float = Field(default=25.0, ge=0)
    # Walk-forward folds fitted side by side when training (threads; the same model for any
    # value, XGBoost trains outside the interpreter lock).
    train_threads: int = Field(default=2, ge=1, le=64)
    regime_timeframe: Literal[_ML_REGIME_TIMEFRAMES] = "MT"  # type: ignore[valid-type]
    # Thresholds of the drift monitor (regimedesk models status).
    drift: DriftConfig = DriftConfig()

    @model_validator(mode="after")
    def _retrain_before_stale(self) -> MLConfig:
        if self.retrain_after_days >= self.max_model_age_days:
            raise ValueError(f"ml.retrain_after_days ({self.retrain_after_days:g}) must be below "
                             f"ml.max_model_age_days ({self.max_model_age_days:g}), so a model is retrained "
                             "before decisions refuse it")
        return self


class EngineConfig(_Model):
    """How a run computes: from the newest bar (the default) or everything from history."""

    # true: every run rebuilds every feature row and takes the last (the audit path, the same
    # numbers to rounding, slower); false: the newest bar's features only. `--recompute` on a
    # command sets it for one run.
    recompute: bool = False


class DecisionConfig(_Model):
    """The decision policy and the costs and limits its backtest assumes."""

    policy: Literal["regime", "ml", "combined"] = "combined"
    cost_bps: float = Field(default=5.0, ge=0, le=1000)
    slippage_bps: float = Field(default=0.0, ge=0, le=1000)
    max_weight: float = Field(default=1.0, gt=0, le=1)


PORTFOLIO_CHOICES: tuple[str, ...] = ("erc", "mv", "hrp", "invvol", "none")
_FAMILIES = ("risk_on", "risk_off", "unavailable")


class PortfolioCapsConfig(_Model):
    """Exposure caps of one consensus regime family."""

    gross: float = Field(gt=0, le=2)
    per_asset: float = Field(gt=0, le=2)


class PortfolioConfig(_Model):
    """Portfolio construction over many assets (``--portfolio``, ``backtest --universe``)."""

    # erc | mv | hrp | invvol, or none: every symbol keeps its own target weight.
    method: Literal["erc", "mv", "hrp", "invvol", "none"] = "none"
    # Named universes of your own: name -> symbols (the builtin ones are sp500-20 and factors).
    universes: dict[str, list[str]] = Field(default_factory=dict)
    # The symbol whose regime is the consensus of a universe without a builtin benchmark.
    regime_symbol: str | None = None
    # Returns fed to the covariance, returns needed before the first decision.
    cov_window: int = Field(default=504, ge=60, le=10_000)
    min_history: int = Field(default=252, ge=60, le=10_000)
    # Bars between scheduled re-estimates; largest drift of one weight before a trade.
    review_every: int = Field(default=21, ge=1, le=2520)
    band: float = Field(default=0.02, ge=0, le=1)
    cost_bps: float = Field(default=5.0, ge=0, le=1000)
    risk_aversion: float = Field(default=5.0, ge=0, le=1000)
    # EWMA half-life in bars and the caps, per consensus family.
    half_lives: dict[str, float] = Field(default_factory=lambda: {"risk_on": 126.0, "risk_off": 21.0,
                                                                    "unavailable": 42.0})
    caps: dict[str, PortfolioCapsConfig] = Field(default_factory=lambda: {
        "risk_on": PortfolioCapsConfig(gross=1.0, per_asset=0.25),
        "risk_off": PortfolioCapsConfig(gross=0.6, per_asset=0.15),
        "unavailable": PortfolioCapsConfig(gross=0.6, per_asset=0.15),
    })

    @field_validator("half_lives", "caps")
    @classmethod
    def _families(cls, value: dict) -> dict:
        unknown = sorted(set(value) - set(_FAMILIES))
        missing = sorted(set(_FAMILIES) - set(value))
        if unknown or missing:
            raise ValueError(f"keys must be exactly {', '.join(_FAMILIES)}"
                             + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                             + (f"; missing: {', '.join(missing)}" if missing else ""))
        return value

    @field_validator("half_lives")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if not (v > 0 and v < 100_000)]
        if bad:
            raise ValueError(f"half-lives must be between 0 and 100000 bars: {', '.join(bad)}")
        return value

    @field_validator("caps")
    @classmethod
    def _caps_order(cls, value: dict[str, PortfolioCapsConfig]) -> dict[str, PortfolioCapsConfig]:
        bad = [k for k, c in value.items() if c.per_asset > c.gross]
        if bad:
            raise ValueError(f"per_asset must not exceed gross: {', '.join(bad)}")
        return value

    @field_validator("universes")
    @classmethod
    def _universes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, symbols in value.items():
            if not symbols:
                raise ValueError(f"universe {name!r} has no symbols")
            dup = sorted({s for s in symbols if symbols.count(s) > 1})
            if dup:
                raise ValueError(f"universe {name!r} repeats {', '.join(dup)}")
        return value


#: ``[risk]`` keys whose value 0 switches their check off (the only way to switch one off).
RISK_OFF_AT_ZERO: tuple[str, ...] = (
    "max_staleness_bars", "collar_pct", "min_confidence", "duplicate_window_seconds", "max_orders_per_window",
    "max_order_qty", "max_order_notional", "var_limit", "es_limit", "daily_loss_reduce", "daily_loss_halt",
    "max_drawdown_halt",
)


class RiskConfig(_Model):
    """Limits of the risk gate (fractions of equity).

    Every number must be finite: ``inf`` or ``nan`` (which would make a check vacuous) is
    refused at load with the key named, as is a negative value, and so are values so large
    that the check could never bind (``max_staleness_bars`` above 1000 bars, the duplicate and
    rate windows above 30 days). The keys in
    :data:`RISK_OFF_AT_ZERO` switch their check off with 0 and only with 0;
    :meth:`checks_off` lists what is switched off (``config show`` and ``risk status`` print it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    allowed_symbols: list[str] = Field(default_factory=list)
    require_market_open: bool = False
    max_staleness_bars: float = Field(default=4.0, ge=0, le=1000)
    collar_pct: float = Field(default=0.05, ge=0, le=1)
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    duplicate_window_seconds: float = Field(default=3600.0, ge=0, le=30 * 86400)
    max_orders_per_window: int = Field(default=20, ge=0)
    rate_window_seconds: float = Field(default=3600.0, gt=0, le=30 * 86400)
    max_order_qty: float = Field(default=0.0, ge=0)
    max_order_notional: float = Field(default=0.0, ge=0)
    allow_short: bool = False
    max_position_weight: float = Field(default=1.0, ge=0, le=10)
    max_gross_exposure: float = Field(default=1.0, ge=0, le=10)
    max_net_exposure: float = Field(default=1.0, ge=0, le=10)
    regime_gross_caps: dict[str, float] = Field(default_factory=lambda: {"high_volatility": 0.5})
    # Multipliers in (0, 1] of var_limit and es_limit while a symbol of the portfolio after the
    # trade is in that regime (the smallest applies).
    regime_var_scales: dict[str, float] = Field(default_factory=lambda: {"high_volatility": 0.5})
    var_limit: float = Field(default=0.05, ge=0, le=1)
    es_limit: float = Field(default=0.07, ge=0, le=1)
    var_level: float = Field(default=0.99, gt=0.5, lt=1)
    # historical, filtered, gjr_filtered (the default), or the parametric normal / student_t and a
    # seeded monte_carlo on the held assets' returns (analytics.portfolio_var).
    var_method: Literal["historical", "filtered", "gjr_filtered", "normal", "student_t", "monte_carlo"] = "gjr_filtered"
    daily_loss_reduce: float = Field(default=0.03, ge=0, le=1)
    daily_loss_halt: float = Field(default=0.05, ge=0, le=1)
    max_drawdown_halt: float = Field(default=0.20, ge=0, le=1)
    # Longest wall-clock time from the gate's approval of an order to its sending (a late
    # approval, a run resumed long after a crash): older orders are rejected (stale_approval).
    max_approval_age_seconds: float = Field(default=900.0, gt=0, le=7 * 86400)
    # Smallest order, in shares, for an order of whole shares (cannot be switched off).
    min_order_qty: float = Field(default=1.0, gt=0)

    def checks_off(self) -> dict[str, str]:
        """The gate's checks this configuration switches off: ``{key: what that means}``."""
        off: dict[str, str] = {}
        if not self.allowed_symbols:
            off["allowed_symbols"] = "empty: any symbol may be traded"
        if not self.require_market_open:
            off["require_market_open"] = "false: orders outside market hours pass"
        for key in RISK_OFF_AT_ZERO:
            if getattr(self, key) == 0:
                off[key] = "0: check off"
        if self.allow_short:
            off["allow_short"] = "true: the no-short check is off"
        return off

    @field_validator("regime_gross_caps")
    @classmethod
    def _caps(cls, value: dict[str, float]) -> dict[str, float]:
        from analytics import REGIME_LABELS

        for label, cap in value.items():
            if label not in REGIME_LABELS:
                raise ValueError(f"unknown regime {label!r}; regimes are {', '.join(REGIME_LABELS)}")
            if not 0 <= cap <= 10:
                raise ValueError(f"cap for {label!r} must be between 0 and 10")
        return value

    @field_validator("regime_var_scales")
    @classmethod
    def _var_scales(cls, value: dict[str, float]) -> dict[str, float]:
        from analytics import REGIME_LABELS

        for label, scale in value.items():
            if label not in REGIME_LABELS:
                raise ValueError(f"unknown regime {label!r}; regimes are {', '.join(REGIME_LABELS)}")
            if not 0 < scale <= 1:
                raise ValueError(f"scale for {label!r} must be above 0 and at most 1 (a multiplier of var_limit and "
                                 f"es_limit), got {scale!r}")
        return value


class PaperBrokerConfig(_Model):
    initial_cash: float = Field(default=100_000.0, gt=0)
    slippage_bps: float = Field(default=5.0, ge=0, le=1000)
    commission_bps: float = Field(default=0.0, ge=0, le=1000)
    fill: Literal["last", "next_open"] = "last"


class AlpacaBrokerConfig(_Model):
    paper: bool = True
    live_confirmed: bool = False
    base_url: str | None = None


class BrokerConfig(_Model):
    """Where approved orders go and how they are identified."""

    strategy: str = Field(default="regimedesk", pattern=r"^[A-Za-z0-9_-]{1,24}$")
    paper: PaperBrokerConfig = PaperBrokerConfig()
    alpaca: AlpacaBrokerConfig = AlpacaBrokerConfig()


class ReportConfig(_Model):
    """PDF reports (``regimedesk report``, ``run --report``, scheduled report jobs)."""

    # Folder scheduled reports are delivered to (default: home/reports).
    dir: Path | None = None
    # Include the walk-forward backtest (the slowest section: about 30 s per symbol).
    backtest: bool = True
    # Years of daily history in the price-and-regime chart.
    chart_years: float = Field(default=5.0, gt=0, le=50)


class TelegramConfig(_Model):
    """The Telegram bot and deliveries. The token comes from ``TELEGRAM_BOT_TOKEN`` only."""

    # Bot API base URL; the token is appended (a local Bot API server works too).
    base_url: str = Field(default="https://api.telegram.org/bot", pattern=r"^https?://")
    base_file_url: str = Field(default="https://api.telegram.org/file/bot", pattern=r"^https?://")
    # Chats that receive scheduled deliveries and alerts, and may command the bot.
    chat_ids: list[int] = Field(default_factory=list)
    # Users who may command the bot; admins may also halt/resume, approve and trade.
    user_ids: list[int] = Field(default_factory=list)
    admin_ids: list[int] = Field(default_factory=list)
    timeout: float = Field(default=30.0, gt=0, le=300)
    # The bot: commands one chat may give per window (more are refused, nothing runs).
    rate_limit: int = Field(default=10, ge=1, le=1000)
    rate_window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    # Most symbols one /run or /report may name.
    max_symbols: int = Field(default=5, ge=1, le=20)
    # Worker threads for long commands (runs, reports, analyses); more requests queue.
    workers: int = Field(default=2, ge=1, le=8)
    # An approval button older than this is refused (answer with 'regimedesk approve' instead).
    approval_ttl_seconds: float = Field(default=86_400.0, gt=0)
    # How often the bot looks in the journal for finished runs to alert about (0 = no alerts).
    alert_poll_seconds: float = Field(default=30.0, ge=0)
    # The broker /status, /positions and /orders read by default.
    broker: Literal["paper", "alpaca"] = "paper"


#: Most symbols a run or report job may list (a scan job may list up to 500, or name a universe).
_JOB_MAX_SYMBOLS = 20
_SCAN_JOB_MAX_SYMBOLS = 500


class ScheduledJob(_Model):
    """One scheduled job: a graph run, a report (PDF or HTML) or a scan, on a cron schedule.

    Run and report jobs list ``symbols`` (1 to 20). A scan job names exactly one of a
    ``universe`` (builtin, ``[portfolio.universes]`` or a file) or ``symbols`` (1 to 500), and
    may set ``workers`` (default ``compute.workers``); ``broker``, ``approve`` and ``format``
    are for the other kinds.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    kind: Literal["run", "report", "scan"]
    # Five-field crontab: minute hour day-of-month month day-of-week, e.g. "30 17 * * mon-fri".
    cron: str
    timezone: str = "America/New_York"
    # Empty: not given (a run or report job needs symbols; a scan job needs them or a universe).
    symbols: list[str] = Field(default_factory=list, max_length=_SCAN_JOB_MAX_SYMBOLS)
    # Scan jobs: a universe name (builtin, [portfolio.universes]) or a file listing symbols.
    universe: str | None = Field(default=None, min_length=1, max_length=1000)
    # Scan jobs: worker processes (default compute.workers; 0: one per core; 1: this process, without Dask).
    workers: int | None = Field(default=None, ge=0, le=512)
    source: str | None = None
    broker: Literal["none", "paper", "alpaca"] = "none"
    approve: bool = False
    # Report jobs: a printable PDF or a self-contained HTML page with interactive charts.
    format: Literal["pdf", "html"] = "pdf"
    # Where the job's files go (default: report.dir, then home/reports).
    deliver_dir: Path | None = None
    # Also send the result to telegram.chat_ids when TELEGRAM_BOT_TOKEN is set.
    telegram: bool = True
    enabled: bool = True

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as America/New_York)") from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        if len(value.split()) != 5:
            raise ValueError(f"cron {value!r}: needs five fields (minute hour day month day-of-week)")
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"cron {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _targets(self) -> ScheduledJob:
        given = self.model_fields_set
        if "symbols" in given and not self.symbols:
            raise ValueError(f"job {self.name!r}: symbols is empty (list at least one symbol, or leave it out)")
        if self.kind == "scan":
            if bool(self.symbols) == (self.universe is not None):
                raise ValueError(f"scan job {self.name!r} needs exactly one of universe or symbols"
                                 + (", not both" if self.symbols else ""))
            extra = sorted(given & {"broker", "approve", "format"})
            if extra:
                raise ValueError(f"scan job {self.name!r}: {' and '.join(extra)} "
                                 f"{'is' if len(extra) == 1 else 'are'} not for scan jobs")
            return self
        if not self.symbols:
            raise ValueError(f"{self.kind} job {self.name!r} needs symbols (1 to {_JOB_MAX_SYMBOLS})")
        if len(self.symbols) > _JOB_MAX_SYMBOLS:
            raise ValueError(f"{self.kind} job {self.name!r}: at most {_JOB_MAX_SYMBOLS} symbols, not "
                             f"{len(self.symbols)} (a scan job may name a universe)")
        extra = sorted(given & {"universe", "workers"})
        if extra:
            raise ValueError(f"{self.kind} job {self.name!r}: {' and '.join(extra)} "
                             f"{'is' if len(extra) == 1 else 'are'} for scan jobs only")
        return self


class ScheduleConfig(_Model):
    """Jobs run by ``regimedesk schedule`` and what happens to runs missed during downtime."""

    # A missed fire time younger than this is still run once after a restart; older ones
    # are recorded as missed and skipped.
    misfire_grace_seconds: int = Field(default=3600, ge=1, le=7 * 86400)
    # Several missed fire times of one job are run once (True) or each in turn (False).
    coalesce: bool = True
    jobs: list[ScheduledJob] = Field(default_factory=list)

    @field_validator("jobs")
    @classmethod
    def _unique(cls, value: list[ScheduledJob]) -> list[ScheduledJob]:
        names = [j.name for j in value]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"job names must be unique: {', '.join(dup)}")
        return value


class LiveConfig(_Model):
    """``regimedesk live``: polling, retries and backoff."""

    # Seconds between polls of a network feed (and between looks for a replay's next bar).
    poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    # Attempts for a bar whose run hits a broker or data error, and for each feed request.
    retries: int = Field(default=4, ge=1, le=20)
    # First backoff in seconds; doubles per failure (capped at 60 s).
    retry_backoff: float = Field(default=1.0, ge=0, le=60)
    # Bars each poll of a network feed asks for (covers a short outage).
    lookback_bars: int = Field(default=30, ge=2, le=10000)


class ComputeConfig(_Model):
    """Where per-symbol work runs (``regimedesk scan``)."""

    # Address of a running Dask scheduler (tcp://HOST:PORT); None: start a local cluster.
    scheduler: str | None = Field(default=None, pattern=r"^(tcp|tls|inproc|ws|wss)://.+")
    # Worker processes of the local cluster; 0: one per core; 1: in this process, without Dask.
    workers: int = Field(default=0, ge=0, le=512)


class Settings(_Model):
    """Everything RegimeDesk reads from ``regimedesk.toml``.

    ``home`` holds the journal, checkpoints, cache and model store; the environment variable
    ``REGIMEDESK_HOME`` overrides it.
    """

    home: Path = Path("~/.regimedesk")
    data: DataConfig = DataConfig()
    timeframes: TimeframesConfig = TimeframesConfig()  # type: ignore[valid-type]
    llm: LLMConfig = LLMConfig()
    ml: MLConfig = MLConfig()
    engine: EngineConfig = EngineConfig()
    decision: DecisionConfig = DecisionConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    compute: ComputeConfig = ComputeConfig()
    risk: RiskConfig = RiskConfig()
    broker: BrokerConfig = BrokerConfig()
    report: ReportConfig = ReportConfig()
    telegram: TelegramConfig = TelegramConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    live: LiveConfig = LiveConfig()

    @property
    def home_dir(self) -> Path:
        """``home`` with ``~`` expanded."""
        return self.home.expanduser()

    @property
    def paths(self) -> HomePaths:
        """Every file and folder under the home (:class:`agents.paths.HomePaths`)."""
        return HomePaths(self.home_dir)

    @property
    def reports_dir(self) -> Path:
        """Where reports are delivered: ``report.dir`` or ``home/reports``."""
        return self.report.dir.expanduser() if self.report.dir else self.paths.reports

    @property
    def cache_dir(self) -> Path:
        """The bar cache of network sources."""
        return self.paths.bar_cache


@dataclass(frozen=True)
class Secrets:
    """Secrets from the environment; masked in ``repr`` and in ``config show``."""

    openai_api_key: SecretStr | None = None
    polygon_api_key: SecretStr | None = None
    alpaca_api_key: SecretStr | None = None
    alpaca_secret_key: SecretStr | None = None
    telegram_bot_token: SecretStr | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Secrets:
        """Read every secret variable from ``env`` (default ``os.environ``); empty means unset."""
        env = os.environ if env is None else env
        values = {
            field: SecretStr(env[var]) if env.get(var, "").strip() else None
            for field, var in SECRET_VARIABLES.items()
        }
        return cls(**values)

    def get(self, field: str) -> str | None:
        """The plain value of one secret, or None."""
        value = getattr(self, field)
        return value.get_secret_value() if value is not None else None

    def masked(self) -> dict[str, str]:
        """``VARIABLE -> 'set' | 'not set'`` for display; never the value."""
        return {var: ("set" if getattr(self, f) is not None else "not set") for f, var in SECRET_VARIABLES.items()}


def resolve_config_path(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file in force, or None for built-in defaults.

    Raises
    ------
    ConfigError
        If an explicitly named file (argument or ``REGIMEDESK_CONFIG``) does not exist.
    """
    env = os.environ if env is None else env
    for value, origin in ((explicit, "--config"), (env.get("REGIMEDESK_CONFIG"), "REGIMEDESK_CONFIG")):
        if value:
            path = Path(value).expanduser()
            try:
                is_file = path.is_file()
            except OSError as exc:  # e.g. a name too long for the file system
                raise ConfigError(f"configuration file {shown(str(path))} (from {origin}): {exc.strerror}") from None
            if not is_file:
                what = ("is a directory" if path.is_dir() else "is not a regular file" if path.exists()
                        else "does not exist")
                raise ConfigError(f"configuration file {shown(str(path))} (from {origin}) {what}")
            return path
    local = Path("regimedesk.toml")
    return local if local.is_file() else None


def _format_error(err: Mapping[str, object]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))  # type: ignore[union-attr]
    kind = err.get("type")
    last = str(err["loc"][-1]).lower() if err.get("loc") else ""  # type: ignore[index]
    if kind == "extra_forbidden":
        if any(s in last for s in _SECRETISH):
            hint = ", ".join(SECRET_VARIABLES.values())
            return f"{loc}: secrets are read only from the environment, not the file (variables: {hint})"
        return f"unknown key {loc!r}"
    msg = str(err.get("msg", "invalid"))
    return f"{loc}: {msg}"


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration.

    Parameters
    ----------
    path : str or Path, optional
        Explicit file (``--config``). See the module docstring for the search order.
    env : mapping, optional
        Environment (default ``os.environ``); ``REGIMEDESK_HOME`` overrides ``home``.

    Raises
    ------
    ConfigError
        Missing or unparsable file, unknown key, wrong type or value, or a secret in the file.
    """
    env = os.environ if env is None else env
    resolved = resolve_config_path(path, env)
    raw: dict[str, object] = {}
    where = "defaults"
    if resolved is not None:
        where = str(resolved)
        try:
            raw = tomllib.loads(resolved.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{resolved}: not valid TOML ({exc})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{resolved}: not a UTF-8 text file (undecodable byte at offset {exc.start}); "
                "a configuration is a TOML text file (see 'regimedesk config init')"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{resolved}: cannot read ({exc.strerror})") from None
    if env.get("REGIMEDESK_HOME"):
        raw = {**raw, "home": env["REGIMEDESK_HOME"]}
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = [_format_error(e) for e in exc.errors()]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{where}: {problems[0]}{more}") from None


def config_template() -> str:
    """A commented ``regimedesk.toml`` whose values are the defaults."""
    return _TEMPLATE.replace(_TIMEFRAMES_MARKER, _timeframes_template())


#: Where the ``[timeframes.XX]`` sections, written from the table, go in the template.
_TIMEFRAMES_MARKER = "@timeframes@\n"


def _timeframes_template() -> str:
    return "\n".join(f'[timeframes.{name}]\nbar = "{row.bar}"\nlookback = {row.lookback}\n'
                     for name, row in TIMEFRAME_TABLE.items())


_TEMPLATE = """\
# RegimeDesk configuration. Every value below is the default; delete what you do not change.
# Secrets never go here: set them in the environment instead:
#   OPENAI_API_KEY, POLYGON_API_KEY, ALPACA_API_KEY, ALPACA_SECRET_KEY, TELEGRAM_BOT_TOKEN
# REGIMEDESK_CONFIG names another file; REGIMEDESK_HOME overrides `home`.

# Journal, checkpoints, the bar cache and the model store live here.
home = "~/.regimedesk"

[data]
# builtin (embedded SP500/NASDAQ daily 1999-2018, offline) | file | polygon | alpaca
source = "builtin"
# Cache network answers for closed date ranges as Parquet under home/cache/bars.
cache = true
# Attempts and first backoff (seconds) for rate limits, server errors and time-outs.
retries = 4
retry_backoff = 0.5
# Years of daily (and weekly) bars a run reads back from its last bar (1-200).
history_years = 30.0

[data.validation]
# Longest allowed time between two bars, in days (at least two bars of the timeframe).
max_gap_days = 7.0
# A single-bar move beyond this many robust z-scores (median/MAD of the previous
# jump_window returns) is flagged.
jump_z = 10.0
jump_window = 63

[data.validation.policy]
# error | repair | warn per rule; gap and jump can only be error or warn.
# order = "repair"
# duplicate = "repair"
# non_finite = "repair"
# non_positive = "error"
# high_low = "repair"
# volume = "error"
# gap = "warn"
# jump = "warn"

[data.file]
# Folder with SYMBOL.csv or SYMBOL.parquet files, and/or explicit files per symbol.
# directory = "/path/to/bars"
# files = { SPY = "/path/to/spy.csv" }
timezone = "UTC"
# Bar length of the files. An intraday one (5Min, 1H ...) also needs each symbol's daily
# bars, for the daily timeframes: SYMBOL.1D.csv (or .parquet) in the directory, or
# files = { SPY = "/path/to/spy_5min.csv", "SPY.1D" = "/path/to/spy_daily.csv" }.
# Daily rows are session dates (naive dates as written; timezone is the intraday files').
timeframe = "1D"

[data.polygon]
base_url = "https://api.polygon.io"
retries = 3
timeout = 30.0

[data.alpaca]
# base_url = "https://data.alpaca.markets"
feed = "iex"

# Analysis horizons: bar length and number of bars.
@timeframes@

[llm]
# template (offline, deterministic) | openai (any OpenAI-compatible server)
backend = "template"
model = "gpt-4o-mini"
# base_url = "http://127.0.0.1:8000/v1"
timeout = 20.0
max_retries = 2
temperature = 0.0
# longest narrative shown; a longer reply is rejected (too_long) and the template is used
max_narrative_chars = 600

[ml]
# Label: does the close rise over the next `horizon` daily bars?
# direction | triple_barrier (barrier = width in trailing-volatility units)
horizon = 5
label = "direction"
barrier = 1.0
# Purged walk-forward: first training window, bars per test fold (= refit interval),
# rolling window length (0 = expanding), embargo bars after the purge.
min_train = 504
refit_every = 63
max_train = 0
embargo = 5
# A model whose training data ends more than this many days before the bar it predicts
# is stale: refuse | warn. auto_train trains a model when none is usable.
max_model_age_days = 30.0
stale_model = "refuse"
auto_train = true
# Live sessions and scheduled runs retrain a model after a bar once it is this many days
# old (below max_model_age_days), so decisions never train; 0 turns it off.
retrain_after_days = 25.0
# Walk-forward folds fitted side by side when training (the same model for any value).
train_threads = 2
# Timeframe whose filtered risk-off probability is a model feature.
regime_timeframe = "MT"

[ml.drift]
# Drift of stored models (regimedesk models status): the last `window` bars after a model's
# training data against its training window (population stability index above `psi`, or a
# Kolmogorov-Smirnov p-value below `ks_pvalue`, per feature), and its Brier score on the last
# `window` labelled bars against the validated one (an increase above `brier_increase`).
psi = 0.25
ks_pvalue = 0.01
brier_increase = 0.02
window = 63
# true: a breach marks the model due for the next scheduled or live retrain.
retrain_on_breach = false
# true: scheduled run jobs check their symbols' models after the run and alert new breaches
# (each breach once per model version).
after_runs = true

[engine]
# false: a run computes the newest bar's features only (fast); true: it rebuilds every
# feature row from history and uses the last (an audit; the same numbers to rounding).
# `regimedesk run --recompute` does it for one run.
recompute = false

[decision]
# regime | ml | combined (see README: the decision policy)
policy = "combined"
# Costs per unit of traded weight assumed when choosing the policy's parameters.
cost_bps = 5.0
slippage_bps = 0.0
max_weight = 1.0

[portfolio]
# The portfolio agent (run/live --portfolio): erc | mv | hrp | invvol, or none (each symbol keeps
# its own decision). Also the default of backtest/report/export --universe (erc when none).
method = "none"
# The symbol whose regime drives a configured or file universe (builtin ones use SP500X).
# regime_symbol = "SP500X"
cov_window = 504                # returns fed to the EWMA covariance
min_history = 252               # common returns needed before the first decision
review_every = 21               # bars between scheduled re-estimates of the target
band = 0.02                     # largest drift of one weight before a trade
cost_bps = 5.0                  # per unit of traded weight (backtest; mv's turnover penalty)
risk_aversion = 5.0             # mv: on the variance over one review period

[portfolio.half_lives]
# EWMA half-life in bars per consensus regime family.
risk_on = 126.0
risk_off = 21.0
unavailable = 42.0

[portfolio.caps]
# Gross and per-asset caps per consensus regime family.
risk_on = { gross = 1.0, per_asset = 0.25 }
risk_off = { gross = 0.6, per_asset = 0.15 }
unavailable = { gross = 0.6, per_asset = 0.15 }

[portfolio.universes]
# Your own universes: name = [symbols]; use them with --universe NAME.
# tech = ["AAPL", "MSFT", "AMD"]

[compute]
# regimedesk scan: worker processes of the local Dask cluster (0: one per core; 1: this process,
# without Dask), or the address of a running Dask scheduler instead.
workers = 0
# scheduler = "tcp://127.0.0.1:8786"

[risk]
# The hard risk gate. Weights, exposures, losses and VaR are fractions of equity. Numbers must
# be finite (inf / nan are refused). 0, and only 0, switches off max_staleness_bars, collar_pct,
# min_confidence, duplicate_window_seconds, max_orders_per_window, max_order_qty,
# max_order_notional, var_limit, es_limit and the three circuit breakers;
# 'regimedesk config show' and 'regimedesk risk status' list the checks switched off.
allowed_symbols = []            # empty: any symbol
require_market_open = false     # daily runs place orders for the next session
max_staleness_bars = 4.0        # last bar older than this many bar lengths: reject
collar_pct = 0.05               # order price within 5% of the last price
min_confidence = 0.0
duplicate_window_seconds = 3600.0
max_orders_per_window = 20
rate_window_seconds = 3600.0
max_order_qty = 0.0
max_order_notional = 0.0
allow_short = false
max_position_weight = 1.0
max_gross_exposure = 1.0
max_net_exposure = 1.0
var_limit = 0.05                # 1-day portfolio VaR after the trade
es_limit = 0.07                 # 1-day expected shortfall after the trade
var_level = 0.99
var_method = "gjr_filtered"     # gjr_filtered (GJR-GARCH-t filtered historical) | filtered (GARCH) | historical
                                # | normal | student_t | monte_carlo (seeded, on the held assets' returns)
daily_loss_reduce = 0.03        # circuit breaker: REDUCING
daily_loss_halt = 0.05          # circuit breaker: HALTED
max_drawdown_halt = 0.20        # circuit breaker: HALTED
max_approval_age_seconds = 900.0  # gate approval to sending; older: rejected (stale_approval)
min_order_qty = 1.0             # smallest order of whole shares (below: below_min_qty)

[risk.regime_gross_caps]
# Lower gross exposure in these regimes (regime of the symbol's MT timeframe).
high_volatility = 0.5

[risk.regime_var_scales]
# Multiply var_limit and es_limit in these regimes (0 < scale <= 1). The smallest scale among the regimes
# of the symbols held after the trade applies; rejections are then regime_var_limit / regime_es_limit.
high_volatility = 0.5

[broker]
# Client order ids are derived from (strategy, symbol, bar time, side).
strategy = "regimedesk"

[broker.paper]
initial_cash = 100000.0
slippage_bps = 5.0
commission_bps = 0.0
fill = "last"                   # last (fill at the last price) | next_open

[broker.alpaca]
# Paper trading unless paper = false AND live_confirmed = true. Keys: ALPACA_API_KEY,
# ALPACA_SECRET_KEY in the environment.
paper = true
live_confirmed = false
# base_url = "https://paper-api.alpaca.markets"

[report]
# dir = "/path/to/reports"      # default: home/reports
backtest = true                 # walk-forward backtest section (about 30 s per symbol)
chart_years = 5.0               # years of history in the price-and-regime chart

[telegram]
# The token comes from TELEGRAM_BOT_TOKEN. Ids are integers (group chats are negative).
base_url = "https://api.telegram.org/bot"
base_file_url = "https://api.telegram.org/file/bot"
chat_ids = []                   # receive deliveries and alerts; may command the bot
user_ids = []                   # may command the bot
admin_ids = []                  # may also halt/reduce/resume, approve and trade
timeout = 30.0
# `regimedesk bot`: obeys a message only if its chat is in chat_ids AND its sender is in
# user_ids or admin_ids (empty lists: it obeys nobody). See docs/telegram.md.
rate_limit = 10                 # commands per chat per window; more are refused
rate_window_seconds = 60.0
max_symbols = 5                 # most symbols in one /run or /report
workers = 2                     # threads for long commands; further ones wait their turn
approval_ttl_seconds = 86400.0  # older approval buttons are refused
alert_poll_seconds = 30.0       # journal check for finished runs to alert about; 0 = no alerts
broker = "paper"                # what /status, /positions and /orders read: paper | alpaca

[live]
# `regimedesk live`: seconds between polls of a network feed, attempts and first backoff
# (doubling) for feed requests and for a bar whose run hits a broker or data error, and how
# many bars each poll asks for.
poll_seconds = 5.0
retries = 4
retry_backoff = 1.0
lookback_bars = 30

[schedule]
# After downtime, a missed fire time younger than the grace is run once (coalesce = true
# runs several missed times of a job only once); older ones are recorded and skipped.
misfire_grace_seconds = 3600
coalesce = true

# One [[schedule.jobs]] table per job. kind: run | report | scan. cron: minute hour day month
# day-of-week in `timezone`. Example: a report on weekdays after the New York close.
# [[schedule.jobs]]
# name = "close-report"
# kind = "report"
# cron = "30 17 * * mon-fri"
# timezone = "America/New_York"
# symbols = ["SP500", "NASDAQ"]
# broker = "none"               # run jobs: none | paper | alpaca
# format = "pdf"                # report jobs: pdf | html (interactive charts)
# deliver_dir = "/path/to/folder"
# telegram = true
#
# A scan job: a universe (or symbols = [...]) scanned like `regimedesk scan`; the summary
# (what changed since the last scan, failures) goes to deliver_dir and Telegram.
# [[schedule.jobs]]
# name = "morning-scan"
# kind = "scan"
# cron = "0 8 * * mon-fri"
# universe = "sp500-20"
# workers = 4                   # default: compute.workers
"""
