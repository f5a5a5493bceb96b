"""The App, like `calora review`, lets no finding outside the diff block (issue #15, item 4).

Fake GitHub on loopback (validated against GitHub's OpenAPI description), a real diff, and a reviewer
backend that answers a hostile, invented finding, as an injected or hallucinating model would.
"""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.review_job import run_review
from reviewers.backends.base import Backend, BackendResult
from reviewers.contract import Finding, ReviewerOutput, ReviewRequest, Verdict
from tests.app.github_env import (  # noqa: F401 - fixtures
    app_clients,
    app_key_pair,
    fake_github,
    sleeper,
)
from tests.app.test_review_job import MIGRATION, NUMBER, OWNER, REPO, diff011, job, make_context, run  # noqa: F401


@dataclass
class InventingBackend(Backend):
    """Answers the sql reviewer with one blocker at a fixed place, wherever its slice is (not a model)."""

    path: str
    line: int
    name: str = "inventing"

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        out: list[BackendResult] = []
        for request in requests:
            findings = [Finding(path=self.path, line=self.line, severity="blocker", category="security",
                                message="Remote code execution: os.system(request.args['cmd']).")]
            if request.reviewer != "sql":
                findings = []
            verdict = Verdict.block if findings else Verdict.approve
            out.append(ReviewerOutput(verdict=verdict, findings=findings, missing_checks=[], suggested_fix=""))
        return out


@pytest.mark.parametrize(("path", "line"), [("zz/evil.py", 1), (MIGRATION, 999999)],
                         ids=["path-not-in-the-diff", "line-999999"])
def test_an_invented_blocker_does_not_fail_the_check_run(fake_github, app_clients, diff011, path, line):
    fake_github.add_pull(OWNER, REPO, NUMBER, diff011, head_sha="1" * 40)
    outcome = run(run_review(job(), make_context(app_clients, InventingBackend(path, line))))
    (check,) = fake_github.check_runs.values()
    assert outcome.conclusion == check["conclusion"] != "failure"
    assert "dropped a blocker security finding" in check["output"]["text"]
    assert all(c["path"] != path or c["line"] != line for r in fake_github.reviews for c in r["comments"])


def test_the_same_blocker_on_a_line_of_the_diff_fails_the_check_run(fake_github, app_clients, diff011):
    fake_github.add_pull(OWNER, REPO, NUMBER, diff011, head_sha="1" * 40)
    outcome = run(run_review(job(), make_context(app_clients, InventingBackend(MIGRATION, 25))))
    assert outcome.conclusion == "failure"
