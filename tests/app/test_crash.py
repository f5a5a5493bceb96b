"""Crash tests on SQLite: `calora serve` SIGKILLed and restarted; nothing lost, nothing reviewed twice.

- Mid-review, twice, with a ledger standing in for GitHub (run_crash_scenario).
- The acceptance of issue 15: the real review job against the fake GitHub, 200 signed deliveries at
  GitHub's pace (10/s) with replays under new delivery ids, `kill -9` in the middle of the (slow,
  scripted) model load and twice while reviews are posted (run_kill_scenario).
"""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.crash_harness import run_crash_scenario, run_kill_scenario
from tests.app.fake_github import FakeGitHub
from tests.app.github_env import app_key_pair, fake_github, read_diff  # noqa: F401 - fixtures

ANSWER_WITHIN = 2.0  # seconds from a process start to its first 2xx, model load or not


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serve_killed_mid_review_loses_no_delivery_and_reviews_each_once(tmp_path: Path) -> None:
    report = run_crash_scenario(tmp_path, f"sqlite:///{tmp_path / 'queue.sqlite'}", workers=0)
    assert report.kills == 2 and report.interrupted


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serve_killed_while_loading_and_twice_mid_review_reviews_every_acknowledged_delivery_once(
    tmp_path: Path, fake_github: FakeGitHub, app_key_pair, shared_dir: Path
) -> None:
    report = run_kill_scenario(tmp_path, fake_github, app_key_pair[0], read_diff(shared_dir, "004-"))
    print(f"process starts answered after {report.first_answers} s")
    assert report.killed_while_warming == 1 and len(report.starts) == 4 and report.reviews == 200
    assert report.killed_while_sending == 2, "a kill mid-review came after the last delivery"
    assert all(seconds is not None and seconds <= ANSWER_WITHIN for seconds in report.first_answers), (
        report.first_answers)
