"""End to end through real HTTP on loopback, and the faults GitHub throws at a bot.

- Faults: the fake GitHub answers 502 then 200, 403 with Retry-After, 422 on one comment; each run
  still ends with a posted review and the right check-run conclusion.
- The whole app: a signed real webhook → the receiver (app.server) → the durable queue → the worker →
  `run_review` → the fake GitHub; then `/review` again posts no duplicate comment, and a push is
  reviewed incrementally.
"""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from app import review_job
from app.jobs import ReviewJobSpec
from app.review_job import ReviewContext, conclude_failure, run_review
from app.server import create_app
from app.settings import Settings
from app.store import Store
from app.worker import JobHooks
from reviewers.contract import Category, Severity
from tests.app.fake_github import FakeGitHub
from tests.app.github_env import (  # noqa: F401 - fixtures
    APP_ID,
    BOT_LOGIN,
    app_clients,
    app_key_pair,
    fake_github,
    read_diff,
    sleeper,
)
from tests.app.receiver_support import (
    TEST_SECRET,
    pr_comment_payload,
    pull_request_payload,
    signed_headers,
)
from tests.app.scripted_backend import ScriptedBackend, ScriptedFinding
from tests.loopback import serve_in_thread

OWNER, REPO = "Codertocat", "Hello-World"
HEAD, HEAD2 = "c" * 40, "d" * 40
DB = "backend/app/core/db.py"
MIGRATION = "backend/app/alembic/versions/1a31ce608336_add_cascade_delete_relationships.py"
MODELS = "backend/app/models.py"
SCRIPT = [
    ScriptedFinding("sql", MIGRATION, 25, Severity.blocker, Category.reliability,
                    "The old foreign key is dropped before the new one exists; create the new one first."),
    ScriptedFinding("python", MODELS, 46, Severity.major, Category.correctness,
                    "cascade_delete loads every child row before deleting; add passive_deletes=True."),
    ScriptedFinding("python", MODELS, 79, Severity.minor, Category.maintainability,
                    "Say which side owns deletion: ondelete here, cascade_delete there.", end_line=81),
]


def run(coro):
    return asyncio.run(coro)


@pytest.fixture()
def diff011(shared_dir: Path) -> str:
    return read_diff(shared_dir, "011-")


def settings_for(tmp_path: Path, base_url: str = "https://api.github.com") -> Settings:
    return Settings(
        app_id=APP_ID, bot_login=BOT_LOGIN, webhook_secret=TEST_SECRET.decode(), github_api_url=base_url,
        database_url=f"sqlite:///{tmp_path / 'calora.sqlite'}", poll_seconds=0.05, retry_base_seconds=0.0,
    )


def context(app_clients, tmp_path: Path, backend: ScriptedBackend | None = None) -> ReviewContext:
    return ReviewContext(clients=app_clients.for_installation, backend=backend or ScriptedBackend(SCRIPT),
                         settings=settings_for(tmp_path))


def job(number: int = 1, **extra) -> ReviewJobSpec:
    return ReviewJobSpec(delivery_id=f"d{number}", installation_id=1, owner=OWNER, repo=REPO,
                         pull_number=number, head_sha=HEAD, trigger="opened", **extra)


# --- faults ---------------------------------------------------------------------------------------


def test_502_then_200_on_the_review_still_posts_it(fake_github: FakeGitHub, app_clients, sleeper, diff011, tmp_path):
    fake_github.add_pull(OWNER, REPO, 1, diff011, head_sha=HEAD)
    fake_github.add_fault("POST", r"/pulls/1/reviews$", 502, body="<html>502 Bad Gateway</html>", times=1)
    outcome = run(run_review(job(), context(app_clients, tmp_path)))
    assert len(fake_github.reviews) == 1 and len(fake_github.reviews[0]["comments"]) == 3
    assert [r.status for r in fake_github.calls("pulls/create-review")] == [502, 200]
    assert outcome.conclusion == "failure"
    (check,) = fake_github.check_runs.values()
    assert check["status"] == "completed" and check["conclusion"] == "failure"
    assert sleeper.waits == [1.0]


def test_502_after_github_created_the_review_does_not_post_it_twice(
    fake_github: FakeGitHub, app_clients, sleeper, diff011, tmp_path
):
    fake_github.add_pull(OWNER, REPO, 1, diff011, head_sha=HEAD)
    fake_github.add_fault("POST", r"/pulls/1/reviews$", 502, body="<html>502 Bad Gateway</html>", after=True)
    outcome = run(run_review(job(), context(app_clients, tmp_path)))
    assert len(fake_github.reviews) == 1 and len(fake_github.calls("pulls/create-review")) == 1
    assert fake_github.calls("pulls/list-reviews") and outcome.inline_comments == 3
    (check,) = fake_github.check_runs.values()
    assert check["conclusion"] == "failure" and sleeper.waits == []


def test_403_with_retry_after_waits_then_posts(fake_github: FakeGitHub, app_clients, sleeper, diff011, tmp_path):
    fake_github.add_pull(OWNER, REPO, 1, diff011, head_sha=HEAD)
    fake_github.add_fault("POST", r"/pulls/1/reviews$", 403, headers={"Retry-After": "30"},
                          body={"message": "You have exceeded a secondary rate limit. Please wait a few minutes."})
    fake_github.add_fault("PATCH", r"/check-runs/\d+$", 403, headers={"Retry-After": "5"},
                          body={"message": "You have exceeded a secondary rate limit."})
    outcome = run(run_review(job(), context(app_clients, tmp_path)))
    assert len(fake_github.reviews) == 1 and outcome.review_id == fake_github.reviews[0]["id"]
    assert sorted(sleeper.waits) == [5.0, 30.0]
    (check,) = fake_github.check_runs.values()
    assert check["conclusion"] == "failure"


def test_422_on_one_comment_moves_it_to_the_summary(fake_github: FakeGitHub, app_clients, diff011, tmp_path):
    fake_github.add_pull(OWNER, REPO, 1, diff011, head_sha=HEAD)

    def has_line_46(body) -> bool:
        return any(c["path"] == MODELS and c["line"] == 46 for c in body.get("comments") or [])

    fake_github.add_fault("POST", r"/pulls/1/reviews$", 422, times=100, when=has_line_46,
                          body={"message": "Unprocessable Entity", "errors": ["Line could not be resolved"],
                                "documentation_url": "https://docs.github.com/rest/pulls/reviews"})
    outcome = run(run_review(job(), context(app_clients, tmp_path)))

    (review,) = fake_github.reviews
    assert {(c["path"], c["line"]) for c in review["comments"]} == {(MIGRATION, 25), (MODELS, 81)}
    assert "passive_deletes" in review["body"] and "GitHub refused it" in review["body"]
    assert outcome.rejected_comments == 1 and outcome.inline_comments == 2
    (check,) = fake_github.check_runs.values()
    assert check["conclusion"] == "failure"
    assert any(a["path"] == MODELS and a["start_line"] == 46 for a in check["annotations"])


def test_422_on_every_comment_still_completes_the_check(fake_github: FakeGitHub, app_clients, diff011, tmp_path):
    fake_github.add_pull(OWNER, REPO, 1, diff011, head_sha=HEAD)
    fake_github.add_fault("POST", r"/pulls/1/reviews$", 422, times=100, when=lambda b: bool(b.get("comments")),
                          body={"message": "Unprocessable Entity", "errors": ["Line could not be resolved"]})
    outcome = run(run_review(job(), context(app_clients, tmp_path)))
    assert fake_github.reviews == [] and outcome.rejected_comments == 3
    (check,) = fake_github.check_runs.values()
    assert check["conclusion"] == "failure" and "GitHub refused it" in check["output"]["text"]


def test_a_failing_github_fails_the_attempt_then_conclude_failure_closes_the_check(
    fake_github: FakeGitHub, app_clients, diff011, tmp_path
):
    fake_github.add_pull(OWNER, REPO, 1, diff011, head_sha=HEAD)
    fake_github.add_fault("POST", r"/pulls/1/reviews$", 500, times=100)
    ctx = context(app_clients, tmp_path)
    with pytest.raises(Exception, match="pulls/create-review failed: HTTP 500"):
        run(run_review(job(), ctx))
    (check,) = fake_github.check_runs.values()
    assert check["status"] == "in_progress"
    run(conclude_failure(job(), ctx, "failed 3 times; last error: GitHub pulls/create-review failed: HTTP 500"))
    assert len(fake_github.check_runs) == 1  # the same check run, concluded
    assert check["conclusion"] == "neutral" and "HTTP 500" in check["output"]["summary"]


# --- the whole app over HTTP ------------------------------------------------------------------------


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker")
        time.sleep(0.05)


def _post(base: str, event: str, payload: dict, delivery: str, secret: bytes = TEST_SECRET) -> httpx.Response:
    body = json.dumps(payload).encode()
    return httpx.post(f"{base}/webhooks/github", content=body, headers=signed_headers(body, event, delivery, secret))


def test_webhook_to_review_and_slash_command_without_duplicates(
    fake_github: FakeGitHub, app_key_pair, diff011, tmp_path, monkeypatch, shared_dir
):
    diff004 = read_diff(shared_dir, "004-")
    fake_github.add_pull(OWNER, REPO, 1, diff011, head_sha=HEAD, title="Cascade delete")
    key_file = tmp_path / "app.pem"
    key_file.write_text(app_key_pair[0])
    settings = settings_for(tmp_path, fake_github.base_url).model_copy(update={"private_key_path": key_file})
    db_finding = ScriptedFinding("python", DB, 7, Severity.major, Category.reliability,
                                 "str() of the URL can print the password into logs; pass the URL object.")
    monkeypatch.setattr(review_job, "make_reviewer_backend",
                        lambda _settings: ScriptedBackend([*SCRIPT, db_finding]))
    ctx = review_job.build_context(settings)  # the production wiring: App key -> githubkit at the fake
    outcomes = []

    async def run_job(spec: ReviewJobSpec):
        outcome = await run_review(spec, ctx)
        outcomes.append(outcome)
        return outcome

    async def conclude(spec: ReviewJobSpec, reason: str) -> None:
        await conclude_failure(spec, ctx, reason)

    store = Store.from_url(settings.database_url)
    app = create_app(settings, store=store, hooks=JobHooks(run=run_job, conclude_failure=conclude))
    try:
        with serve_in_thread(app) as base:
            opened = pull_request_payload(1, HEAD, installation_id=1)
            assert _post(base, "pull_request", opened, "delivery-1", secret=b"wrong secret").status_code == 401
            assert _post(base, "pull_request", opened, "delivery-1").status_code == 202
            assert _post(base, "pull_request", opened, "delivery-1").status_code == 200  # redelivery
            _wait_for(lambda: len(outcomes) == 1)

            (review,) = fake_github.reviews
            assert {(c["path"], c.get("start_line"), c["line"]) for c in review["comments"]} >= {
                (MIGRATION, None, 25), (MODELS, None, 46), (MODELS, 79, 81)
            }
            (check,) = fake_github.check_runs.values()
            assert check["history"] == ["queued", "in_progress", "completed"] and check["head_sha"] == HEAD

            comment = pr_comment_payload("/review")
            comment["issue"]["number"] = 1
            assert _post(base, "issue_comment", comment, "delivery-2").status_code == 202
            _wait_for(lambda: len(outcomes) == 2)
            assert outcomes[1].status == "reviewed" and outcomes[1].duplicates == outcomes[0].inline_comments
            assert len(fake_github.reviews) == 1, "the /review re-run posted a second review"
            assert len(fake_github.review_comments) == outcomes[0].inline_comments
            assert [r["content"] for r in fake_github.reactions] == ["eyes"]

            # A push: only the new commit is reviewed, and the check run says which commit that was.
            fake_github.push(OWNER, REPO, 1, new_diff=diff011 + diff004, new_head_sha=HEAD2, push_diff=diff004,
                             message="Use DATABASE_URL")
            pushed = pull_request_payload(1, HEAD2, action="synchronize", installation_id=1)
            pushed["before"], pushed["after"] = HEAD, HEAD2
            assert _post(base, "pull_request", pushed, "delivery-3").status_code == 202
            _wait_for(lambda: len(outcomes) == 3)
    finally:
        store.close()

    assert outcomes[2].incremental and outcomes[2].covered_commits == [HEAD2]
    assert [(c["path"], c["line"]) for c in fake_github.reviews[-1]["comments"]] == [(DB, 7)]
    latest = max(fake_github.check_runs.values(), key=lambda r: r["id"])
    assert latest["head_sha"] == HEAD2 and "Use DATABASE_URL" in latest["output"]["summary"]
    assert len(fake_github.check_runs) == 3
    assert fake_github.tokens_issued == 1  # the installation token was reused across all three jobs
