"""Crash test on SQLite: `calora serve` SIGKILLed mid-review twice and restarted; nothing lost or doubled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.crash_harness import run_crash_scenario


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serve_killed_mid_review_loses_no_delivery_and_reviews_each_once(tmp_path: Path) -> None:
    report = run_crash_scenario(tmp_path, f"sqlite:///{tmp_path / 'queue.sqlite'}", workers=0)
    assert report.kills == 2 and report.interrupted
