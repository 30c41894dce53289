"""One entry point over the three regime methods."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pandas as pd

from analytics._regime_common import PersistenceRule, RegimeResult, walk_forward_regimes
from analytics._regime_garch import GarchVolatilityRegime
from analytics._regime_hmm import GaussianHMMRegime
from analytics._regime_jump import JumpModelRegime
from analytics._regime_markov import MarkovSwitchingRegime

__all__ = ["REGIME_METHODS", "detect_regimes", "make_regime_model"]

#: Method name -> model class.
REGIME_METHODS: dict[str, type] = {
    "hmm": GaussianHMMRegime,
    "markov": MarkovSwitchingRegime,
    "garch": GarchVolatilityRegime,
    "jump": JumpModelRegime,
}


def make_regime_model(method: str, n_states: int = 2, **options: Any) -> Any:
    """Build the hyper-parameter object of a regime method.

    Parameters
    ----------
    method : {'hmm', 'markov', 'garch', 'jump'}
    n_states : int, default 2
    **options
        Further hyper-parameters of that method's class (e.g. ``vol_halflife`` for
        ``'hmm'``); unknown names raise ``TypeError``.

    Returns
    -------
    GaussianHMMRegime, MarkovSwitchingRegime, GarchVolatilityRegime or JumpModelRegime
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, got {type(method).__name__}")
    try:
        cls = REGIME_METHODS[method]
    except KeyError:
        raise ValueError(f"method must be one of {sorted(REGIME_METHODS)}, got {method!r}") from None
    return cls(n_states=n_states, **options)


def detect_regimes(
    returns: pd.Series,
    method: str = "hmm",
    *,
    n_states: int = 2,
    min_train: int = 504,
    refit_every: int | None = 21,
    max_train: int | None = None,
    persistence: PersistenceRule | None = None,
    periods_per_year: float = 252.0,
    seed: int = 0,
    fit_cache: MutableMapping[str, Any] | None = None,
    **options: Any,
) -> RegimeResult:
    """Causal walk-forward regimes of a log-return series with a named method.

    Thin wrapper: ``walk_forward_regimes(returns, make_regime_model(method, n_states,
    **options), ...)``; see :func:`walk_forward_regimes` for the parameters and the
    causality guarantees.

    Parameters
    ----------
    returns : pandas.Series
        Log returns, tz-aware strictly increasing ``DatetimeIndex``.
    method : {'hmm', 'markov', 'garch', 'jump'}, default 'hmm'
    n_states : int, default 2
    min_train, refit_every, max_train, persistence, periods_per_year, seed, fit_cache
        As in :func:`walk_forward_regimes`.
    **options
        Method hyper-parameters (see the model classes).

    Returns
    -------
    RegimeResult
    """
    model = make_regime_model(method, n_states, **options)
    return walk_forward_regimes(
        returns,
        model,
        min_train=min_train,
        refit_every=refit_every,
        max_train=max_train,
        persistence=persistence,
        periods_per_year=periods_per_year,
        seed=seed,
        fit_cache=fit_cache,
    )
