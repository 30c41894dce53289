"""Plain-text replies of the Telegram bot's ``/portfolio`` and ``/stress`` (issue 25).

The figures come from :mod:`agents.services.portfolio_risk` (:func:`load_book`,
:func:`universe_var`, :func:`universe_stress`); this module only chooses the arguments and
writes short lines for a phone screen. Only universe *names* (builtin or
``[portfolio.universes]``) are accepted from Telegram, never file paths: a chat must not make
the bot read files on its host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents.config import Settings
from agents.services.portfolio import backtest_config, universe_names
from agents.services.portfolio_risk import WEIGHT_METHODS, WEIGHTS_FAMILY, PortfolioBook
from analytics import HISTORICAL_SCENARIOS, RegimeDeskError, caps_for
from integrations import BUILTIN_UNIVERSES

__all__ = [
    "BotInputError",
    "DEFAULT_UNIVERSE",
    "VAR_LEVEL",
    "VAR_METHOD",
    "STRESS_CHOICES",
    "TOP_WEIGHTS",
    "default_method",
    "portfolio_args",
    "stress_args",
    "portfolio_text",
    "stress_text",
]

#: The universe used when a command names none.
DEFAULT_UNIVERSE = "sp500-20"
#: Confidence level and method of ``/portfolio``'s one-day VaR and ES.
VAR_LEVEL = 0.99
VAR_METHOD = "historical"
#: ``/stress`` choices: one scenario key of :data:`analytics.HISTORICAL_SCENARIOS`, or all.
STRESS_CHOICES: tuple[str, ...] = (*HISTORICAL_SCENARIOS, "all")
#: Weights listed one per line; the rest are summed on one line.
TOP_WEIGHTS = 10
_MAX_LINES = 25
_NOTE_CHARS = 110


class BotInputError(RegimeDeskError):
    """An unknown universe, method or scenario; its message is the whole (one-line) reply."""


def default_method(settings: Settings) -> str:
    """``portfolio.method`` when it names a weighting method, else ``erc`` (as :func:`load_book`)."""
    method = settings.portfolio.method
    return method if method in WEIGHT_METHODS else "erc"


def _universe(settings: Settings, word: str) -> str:
    if word.lower() in BUILTIN_UNIVERSES:
        return word.lower()
    configured = settings.portfolio.universes
    if word in configured:
        return word
    folded = [name for name in configured if name.lower() == word.lower()]
    if len(folded) == 1:
        return folded[0]
    raise BotInputError(f"unknown universe {word[:40]!r}: use one of {', '.join(universe_names(settings))}")


def _split(settings: Settings, words: Sequence[str], choices: Sequence[str], default: str,
           what: str) -> tuple[str, str]:
    """``[UNIVERSE] [CHOICE]`` in that order; a lone word that is a choice keeps the default universe."""
    if len(words) > 2:
        raise ValueError(f"give at most a universe and a {what}, not {len(words)} words")
    rest = list(words)
    choice = default
    if rest and rest[-1].lower() in choices:
        choice = rest.pop().lower()
    elif len(rest) == 2:
        raise BotInputError(f"unknown {what} {rest[1][:40]!r}: use one of {', '.join(choices)}")
    universe = _universe(settings, rest[0]) if rest else DEFAULT_UNIVERSE
    return universe, choice


def portfolio_args(settings: Settings, words: Sequence[str]) -> tuple[str, str]:
    """``/portfolio [UNIVERSE] [erc|mv|hrp|invvol|equal]`` -> (universe name, weighting method).

    Raises
    ------
    BotInputError
        Unknown universe or method (the message names the choices).
    ValueError
        More than two words.
    """
    return _split(settings, words, WEIGHT_METHODS, default_method(settings), "method")


def stress_args(settings: Settings, words: Sequence[str]) -> tuple[str, list[str]]:
    """``/stress [UNIVERSE] [ltcm|dotcom|gfc|euro|covid|all]`` -> (universe name, scenario keys).

    Raises
    ------
    BotInputError
        Unknown universe or scenario (the message names the choices).
    ValueError
        More than two words.
    """
    universe, choice = _split(settings, words, STRESS_CHOICES, "all", "scenario")
    return universe, list(HISTORICAL_SCENARIOS) if choice == "all" else [choice]


def _clip(lines: Sequence[str]) -> str:
    out = list(lines)
    if len(out) > _MAX_LINES:
        out = out[: _MAX_LINES - 1] + [f"... ({len(out) - _MAX_LINES + 1} more lines)"]
    return "\n".join(out)


def _note(text: str) -> str:
    return text if len(text) <= _NOTE_CHARS else text[: _NOTE_CHARS - 3] + "..."


def portfolio_text(settings: Settings, book: PortfolioBook, var_doc: Mapping[str, Any]) -> str:
    """The ``/portfolio`` reply.

    Parameters
    ----------
    settings : Settings
        ``[portfolio]`` caps (the family's caps are shown).
    book : PortfolioBook
        From :func:`agents.services.portfolio_risk.load_book`.
    var_doc : mapping
        :func:`agents.services.portfolio_risk.universe_var` of ``book`` with :data:`VAR_METHOD`.

    Returns
    -------
    str
        Header (universe, method, as-of date), the family and caps, the largest
        :data:`TOP_WEIGHTS` weights (the rest summed) with the cash, the VaR and ES, and the
        three largest component-VaR contributors; weights in percent to one decimal.
    """
    weights = {str(k): float(v) for k, v in book.weights.items()}
    lines = [f"{book.universe.name} portfolio ({book.weights_method}), {len(weights)} assets, "
             f"as of {var_doc['as_of']}"]
    if book.weights_method == "equal":
        lines.append(f"Regime family {WEIGHTS_FAMILY} (assumed); caps not applied: 1/N, fully invested")
    else:
        caps = caps_for(WEIGHTS_FAMILY, backtest_config(settings).caps)
        lines.append(f"Regime family {WEIGHTS_FAMILY} (assumed, no regime fit): caps gross {caps.gross:g}, "
                     f"per asset {caps.per_asset:g}")
    invested = sum(weights.values())
    lines.append(f"Weights (invested {invested:.1%}, cash {1.0 - invested:.1%}):")
    ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    lines += [f"  {name} {w:.1%}" for name, w in ranked[:TOP_WEIGHTS]]
    if len(ranked) > TOP_WEIGHTS:
        rest = ranked[TOP_WEIGHTS:]
        lines.append(f"  {len(rest)} others {sum(w for _, w in rest):.1%}")
    r = var_doc["results"][VAR_METHOD]
    lines.append(f"VaR {var_doc['level']:.0%} 1-day ({VAR_METHOD}, {var_doc['window']} days from "
                 f"{var_doc['start']}): {r['var']:.2%}, ES {r['es']:.2%}")
    top = sorted(r["assets"], key=lambda a: (-a["component_var"], a["symbol"]))[:3]
    lines.append("Largest VaR contributors: " + ", ".join(
        f"{a['symbol']} {a['component_var']:.2%} ({a['share']:.0%})" for a in top))
    *cut, chosen = book.notes
    lines += [f"Note: {_note(n)}" for n in cut]
    if "; " in chosen:
        lines.append(f"Note: {_note(chosen.split('; ', 1)[1])}")
    return _clip(lines)


def stress_text(doc: Mapping[str, Any]) -> str:
    """The ``/stress`` reply: one line per scenario of :func:`agents.services.portfolio_risk.universe_stress`.

    Each line: the scenario key, the P&L of today's weights held buy-and-hold over the window,
    the worst day (date, portfolio return), the coverage (share of the weights with data) and
    the worst driver with its P&L; a window the data do not reach says so.
    """
    lines = [f"{doc['universe']['name']} stress, {doc['weights_method']} weights as of {doc['as_of']} "
             "held through each window (P&L in % of equity):"]
    for key, sc in doc["scenarios"].items():
        if "error" in sc:
            lines.append(f"{key}: not covered ({_note(str(sc['error']))})")
            continue
        line = (f"{key}: P&L {sc['pnl']:+.2%}, worst day {sc['worst_date']} {sc['worst_return']:+.2%}, "
                f"coverage {sc['coverage']:.0%}")
        if sc["drivers"]:
            worst = sc["drivers"][0]
            line += f"; worst {worst['symbol']} {worst['pnl']:+.2%}"
        lines.append(line)
    return _clip(lines)
