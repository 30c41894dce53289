"""The drift marks beside a symbol's models: what was alerted, per model version."""

from __future__ import annotations

from agents.services.drift_marks import DRIFT_ALERTED_FILE, alerted_breaches, remember_alerted


def test_alerted_breaches_are_remembered_per_version(tmp_path):
    tmp_path = tmp_path / "models"
    tmp_path.mkdir()
    assert alerted_breaches(tmp_path, "v0001") == set()
    remember_alerted(tmp_path, "v0001", ["psi:ret_21"])
    remember_alerted(tmp_path, "v0001", ["brier_increase:", "psi:ret_21"])
    assert alerted_breaches(tmp_path, "v0001") == {"psi:ret_21", "brier_increase:"}
    assert alerted_breaches(tmp_path, "v0002") == set()  # a newer model alerts afresh
    remember_alerted(tmp_path, "v0002", ["ks_pvalue:rv_63"])
    assert alerted_breaches(tmp_path, "v0002") == {"ks_pvalue:rv_63"}
    assert alerted_breaches(tmp_path, "v0001") == set()
    assert [p.name for p in tmp_path.iterdir()] == [DRIFT_ALERTED_FILE]  # no temporary file left


def test_an_unreadable_file_alerts_again(tmp_path):
    tmp_path = tmp_path / "models"
    tmp_path.mkdir()
    (tmp_path / DRIFT_ALERTED_FILE).write_text("{not json")
    assert alerted_breaches(tmp_path, "v0001") == set()
    (tmp_path / DRIFT_ALERTED_FILE).write_text('{"version": "v0001", "breaches": "psi:x"}')
    assert alerted_breaches(tmp_path, "v0001") == set()
    remember_alerted(tmp_path, "v0001", ["psi:x"])
    assert alerted_breaches(tmp_path, "v0001") == {"psi:x"}
