"""Fixtures shared by the signals tests."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    # Two cores are shared by several jobs: multi-threaded BLAS (statsmodels, arch) then
    # spins instead of computing. One thread keeps these tests fast and stable.
    with threadpool_limits(limits=1):
        yield
