"""agents.services.fitcache.FitCache: persistent, version-scoped, damage-tolerant."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from agents.services.fitcache import FitCache


def test_values_survive_a_new_process_handle(tmp_path):
    path = tmp_path / "fit_cache.sqlite"
    cache = FitCache(path)
    cache["a"] = {"x": np.arange(3.0)}
    cache["b"] = (1.0, 2.0)
    cache.close()
    again = FitCache(path)
    assert sorted(again) == ["a", "b"] and len(again) == 2
    np.testing.assert_array_equal(again["a"]["x"], np.arange(3.0))
    assert again.get("missing") is None
    del again["b"]
    with pytest.raises(KeyError):
        del again["b"]
    again.close()
    assert list(FitCache(path)) == ["a"]


def test_rows_of_other_code_versions_and_damaged_rows_are_misses(tmp_path):
    path = tmp_path / "fit_cache.sqlite"
    FitCache(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO fits VALUES ('old', 'regimedesk 0.0.1; numpy 1.0; python 3.9', 'x', ?)",
                 (b"\x80\x04K\x01.",))
    conn.commit()
    cache = FitCache(path)
    conn.execute("INSERT INTO fits VALUES ('bad', ?, 'x', ?)", (cache._code, b"not a pickle"))
    conn.commit()
    conn.close()
    assert cache.get("old") is None
    assert cache.get("bad") is None
    assert "bad" in list(cache)  # listed (same version) but unreadable: a miss, not an error
    cache.close()


def test_memory_only_cache():
    cache = FitCache(None)
    cache["k"] = 1
    assert cache["k"] == 1 and cache.hits == 1
    assert cache.get("z") is None and cache.misses == 1
