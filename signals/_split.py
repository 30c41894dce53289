"""Purged walk-forward cross-validation with an embargo, in scikit-learn's splitter shape.

Test folds are consecutive blocks of ``test_size`` samples after ``min_train``; training is
everything before the fold (expanding) or its last ``max_train`` samples (rolling), minus

- the **purge**: the last ``horizon`` samples before the fold, whose labels (which look
  ``horizon`` bars ahead) overlap the fold's bars, and
- the **embargo**: ``embargo`` further samples, a safety gap against serial correlation
  between the end of training and the start of testing.

Samples are positions (rows), so the split assumes one row per bar in time order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["PurgedWalkForwardSplit"]


@dataclass(frozen=True)
class PurgedWalkForwardSplit:
    """Walk-forward splitter: ``split(X)`` yields ``(train_idx, test_idx)``.

    Parameters
    ----------
    min_train : int, default 504
        Samples before the first test fold.
    test_size : int, default 63
        Samples per test fold (the last fold may be shorter).
    horizon : int, default 5
        Label horizon in samples: the purge.
    embargo : int, default 5
        Extra samples dropped between training and test.
    max_train : int or None, default None
        Rolling training window; ``None`` = expanding.
    """

    min_train: int = 504
    test_size: int = 63
    horizon: int = 5
    embargo: int = 5
    max_train: int | None = None

    def __post_init__(self) -> None:
        if self.min_train < 20:
            raise ValueError(f"min_train must be >= 20, got {self.min_train!r}")
        if self.test_size < 1:
            raise ValueError(f"test_size must be >= 1, got {self.test_size!r}")
        if self.horizon < 0 or self.embargo < 0:
            raise ValueError("horizon and embargo must be >= 0")
        if self.max_train is not None and self.max_train < 20:
            raise ValueError(f"max_train must be >= 20 or None, got {self.max_train!r}")

    def fold_starts(self, n_samples: int) -> np.ndarray:
        """First test position of every fold."""
        return np.arange(self.min_train, n_samples, self.test_size)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:  # noqa: N803 - sklearn's name
        """Number of folds :meth:`split` yields for ``X``."""
        if X is None:
            raise ValueError("X is needed to count the folds")
        return sum(1 for _ in self.split(X))

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:  # noqa: N803
        """Yield ``(train_idx, test_idx)`` position arrays, oldest fold first.

        Every training index ``i`` satisfies ``i + horizon + embargo < test_idx[0]``. A fold
        whose training part would have fewer than 20 samples is skipped.
        """
        n = len(X)
        for start in self.fold_starts(n):
            stop = min(n, start + self.test_size)
            train_stop = start - self.horizon - self.embargo
            train_start = 0 if self.max_train is None else max(0, train_stop - self.max_train)
            if train_stop - train_start < 20:
                continue
            yield np.arange(train_start, train_stop), np.arange(start, stop)
