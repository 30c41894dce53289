"""The home's layout is written down once, in ``agents.paths``."""

from __future__ import annotations

import re
from pathlib import Path

from agents.config import Settings
from agents.paths import HomePaths

ROOT = Path(__file__).resolve().parents[2]


def test_the_layout_is_the_one_existing_homes_have(tmp_path):
    # Renaming a file here would orphan every user's journal, models and paper book.
    p = HomePaths(tmp_path)
    assert {k: getattr(p, k).relative_to(tmp_path).as_posix() for k in (
        "journal", "live_state", "schedule_state", "checkpoints", "risk_state", "paper_broker", "fit_cache",
        "live_bars", "bot_state", "models", "bar_cache", "reports", "matplotlib")} == {
        "journal": "journal.sqlite", "live_state": "live_state.sqlite", "schedule_state": "schedule_state.sqlite",
        "checkpoints": "checkpoints.sqlite", "risk_state": "risk.sqlite",
        "paper_broker": "paper_broker.sqlite", "fit_cache": "fit_cache.sqlite", "live_bars": "live_bars.sqlite",
        "bot_state": "telegram_bot.sqlite", "models": "models", "bar_cache": "cache/bars", "reports": "reports",
        "matplotlib": "matplotlib"}
    assert p.live_lock("s1") == tmp_path / "live_locks" / "s1.lock"


def test_settings_hand_out_the_paths_of_their_home(tmp_path):
    s = Settings(home=tmp_path)
    assert s.paths == HomePaths(tmp_path)
    assert s.cache_dir == tmp_path / "cache" / "bars" and s.reports_dir == tmp_path / "reports"


def test_no_other_product_module_spells_a_home_file_name():
    names = re.compile(r"[\"'][a-z_]+\.sqlite[\"']|/ ?[\"'](models|live_locks|matplotlib)[\"']")
    offenders = []
    for package in ("agents", "integrations", "analytics", "signals"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "agents" / "paths.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if names.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
