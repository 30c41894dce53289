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


def test_a_damaged_fit_cache_file_is_set_aside_and_rebuilt(tmp_path):
    from agents.services.fitcache import FitCacheWarning, open_fit_cache

    path = tmp_path / "fit_cache.sqlite"
    path.write_bytes(b"\x00not an sqlite file" * 10)
    with pytest.warns(FitCacheWarning, match="not a database; moved it to fit_cache.sqlite.damaged-"):
        cache = open_fit_cache(path)
    cache["k"] = (1.0, 2.0)
    assert cache.path == path and cache["k"] == (1.0, 2.0)
    cache.close()
    (aside,) = tmp_path.glob("fit_cache.sqlite.damaged-*")
    assert aside.read_bytes().startswith(b"\x00not an sqlite file")  # kept for inspection
    again = open_fit_cache(path)  # the new file is used from now on, silently
    assert again["k"] == (1.0, 2.0)
    again.close()
    # a file from a newer RegimeDesk is left alone: fits stay in memory in this process
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, 'later')")
    with pytest.warns(FitCacheWarning, match="in memory only"):
        mem = open_fit_cache(path)
    assert mem.path is None
    mem["x"] = 3
    assert mem["x"] == 3
    assert len(list(tmp_path.glob("fit_cache.sqlite.damaged-*"))) == 1
