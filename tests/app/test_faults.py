"""GitHub saying "wait" or "never": rate limits defer the job to the time GitHub names without using up
attempts, permanent refusals fail it at once, and a check run GitHub would not let us conclude is concluded
when GitHub answers again. Also: a signed body replayed under a new delivery id queues nothing.

Through the public surface: signed webhooks over loopback HTTP to the real app (receiver + in-process
worker), the real review job, and the fake GitHub validating every request against GitHub's OpenAPI.
"""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from app.jobs import ReviewJobSpec
from app.review_job import ReviewContext, conclude_failure, run_review
from app.server import create_app
from app.settings import Settings
from app.store import JobView, Store
from app.worker import JobHooks
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
from tests.app.receiver_support import TEST_SECRET, pr_comment_payload, pull_request_payload, signed_headers
from tests.app.scripted_backend import DB_URL_FINDING, ScriptedBackend
from tests.loopback import serve_in_thread

OWNER, REPO = "Codertocat", "Hello-World"
HEAD = "a" * 40
HOUR = 3600.0


@pytest.fixture()
def app_url(fake_github: FakeGitHub, app_clients, tmp_path: Path, shared_dir: Path) -> Iterator[tuple[str, Store]]:
    """The whole app (receiver and worker) reviewing with the real job against the fake GitHub."""
    fake_github.add_pull(OWNER, REPO, 1, read_diff(shared_dir, "004-"), head_sha=HEAD)
    settings = Settings(app_id=APP_ID, bot_login=BOT_LOGIN, webhook_secret=TEST_SECRET.decode(),
                        github_api_url=fake_github.base_url, database_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
                        poll_seconds=0.05, retry_base_seconds=0.0, max_attempts=3)
    ctx = ReviewContext(clients=app_clients.for_installation, backend=ScriptedBackend([DB_URL_FINDING]),
                        settings=settings)

    async def run(spec: ReviewJobSpec):
        return await run_review(spec, ctx)

    async def conclude(spec: ReviewJobSpec, reason: str) -> None:
        await conclude_failure(spec, ctx, reason)

    store = Store.from_url(settings.database_url)
    with serve_in_thread(create_app(settings, store=store, hooks=JobHooks(run=run, conclude_failure=conclude))) as url:
        yield url, store
    store.close()


def deliver(url: str, payload: dict | bytes, event: str = "pull_request", delivery_id: str | None = None) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signed_headers(body, event, delivery_id or str(uuid.uuid4()), TEST_SECRET)
    return httpx.post(f"{url}/webhooks/github", content=body, headers=headers, timeout=30)


def wait_for_job(store: Store, job_id: int, done: Callable[[JobView], bool], timeout: float = 60) -> JobView:
    deadline = time.monotonic() + timeout
    while True:
        job = store.get_job(job_id)
        assert job is not None
        if done(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def queue_one(url: str, number: int = 1) -> int:
    response = deliver(url, pull_request_payload(number, HEAD))
    assert response.status_code == 202, response.text
    (job_id,) = response.json()["jobs"]
    return job_id


# --- rate limits ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    pytest.param(lambda reset: {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(reset))}, id="ratelimit-reset"),
    pytest.param(lambda reset: {"Retry-After": format_datetime(datetime.fromtimestamp(reset, UTC), usegmt=True)},
                 id="retry-after-http-date"),
    pytest.param(lambda reset: {"Retry-After": str(int(reset - time.time()))}, id="retry-after-seconds"),
])
def test_a_rate_limit_longer_than_the_cap_puts_the_job_back_until_the_reset_without_using_an_attempt(
    app_url: tuple[str, Store], fake_github: FakeGitHub, headers
) -> None:
    url, store = app_url
    reset = time.time() + HOUR
    fake_github.add_fault("GET", r"/pulls/1$", 403, headers=headers(reset), times=100,
                          body={"message": "API rate limit exceeded for installation ID 1."})
    job_id = queue_one(url)
    job = wait_for_job(store, job_id, lambda j: j.last_error is not None)
    assert job.status == "queued" and job.attempts == 0, job
    assert abs(job.available_at - reset) < 5, (job.available_at - reset, job.last_error)
    assert "rate limited" in (job.last_error or ""), job.last_error
    assert fake_github.check_runs == {} and len(fake_github.calls("pulls/get")) <= 4  # the client's own tries


# --- permanent errors ------------------------------------------------------------------------------------


def test_a_pull_request_github_does_not_know_fails_at_once_with_the_reason(
    app_url: tuple[str, Store], fake_github: FakeGitHub
) -> None:
    url, store = app_url
    job_id = queue_one(url, number=404)  # no such pull request on the fake: pulls/get answers 404
    job = wait_for_job(store, job_id, lambda j: j.status in ("failed", "done"))
    assert job.status == "failed" and job.attempts == 1, job
    assert "retrying would not help" in (job.last_error or "") and "HTTP 404" in (job.last_error or ""), job.last_error
    assert len(fake_github.calls("pulls/get")) == 1


def test_an_installation_github_no_longer_accepts_fails_at_once_with_the_reason(
    app_url: tuple[str, Store], fake_github: FakeGitHub
) -> None:
    url, store = app_url
    fake_github.add_fault("GET", r"/pulls/1$", 401, times=100, body={"message": "Bad credentials"})
    job = wait_for_job(store, queue_one(url), lambda j: j.status in ("failed", "done"))
    assert job.status == "failed" and job.attempts == 1, job
    assert "HTTP 401: Bad credentials" in (job.last_error or ""), job.last_error


def test_a_review_github_refuses_as_a_whole_fails_at_once_and_concludes_the_check_run(
    app_url: tuple[str, Store], fake_github: FakeGitHub
) -> None:
    url, store = app_url
    fake_github.add_fault("POST", r"/pulls/1/reviews$", 422, times=100,
                          body={"message": "Unprocessable Entity", "errors": ["commit_id is not part of the pull request"]})
    job = wait_for_job(store, queue_one(url), lambda j: j.status in ("failed", "done"))
    assert job.status == "failed" and job.attempts == 1 and "HTTP 422" in (job.last_error or ""), job
    assert len(fake_github.calls("pulls/create-review")) == 1
    (check,) = fake_github.check_runs.values()
    assert check["conclusion"] == "neutral" and "HTTP 422" in check["output"]["summary"]


# --- a check run concluded once GitHub answers again -------------------------------------------------------


def test_a_check_run_github_would_not_let_us_conclude_is_concluded_when_it_answers_again(
    app_url: tuple[str, Store], fake_github: FakeGitHub
) -> None:
    url, store = app_url
    fake_github.add_fault("POST", r"/pulls/1/reviews$", 404, times=100, body={"message": "Not Found"})
    # Every try to complete the check run is rate limited for 2 s (under the client's cap, so it tries its
    # 4 attempts, then the conclusion waits in the queue); then GitHub answers.
    fake_github.add_fault("PATCH", r"/check-runs/\d+$", 403, times=4, when=lambda body: "conclusion" in body,
                          headers={"Retry-After": "2"}, body={"message": "You have exceeded a secondary rate limit."})
    job = wait_for_job(store, queue_one(url), lambda j: j.status in ("failed", "done"))
    assert job.status == "failed" and job.attempts == 1, job
    (check,) = fake_github.check_runs.values()
    assert check["status"] == "in_progress"
    deadline = time.monotonic() + 30
    while check["status"] != "completed":
        assert time.monotonic() < deadline, f"check run never concluded; pending: {store.pending_conclusions()}"
        time.sleep(0.05)
    assert check["conclusion"] == "neutral" and "HTTP 404" in check["output"]["summary"]
    assert len(fake_github.check_runs) == 1
    deadline = time.monotonic() + 10
    while store.pending_conclusions():
        assert time.monotonic() < deadline
        time.sleep(0.05)


# --- replays ----------------------------------------------------------------------------------------------


@pytest.fixture()
def receiver(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """The receiver alone: jobs stay queued for the assertions."""
    settings = Settings(webhook_secret=TEST_SECRET.decode(), database_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
                        bot_login="calora[bot]")
    store = Store.from_url(settings.database_url)
    with serve_in_thread(create_app(settings, store=store, run_worker=False)) as url:
        yield url, store
    store.close()


def test_a_signed_body_replayed_under_a_new_delivery_id_is_acknowledged_and_not_queued(
    receiver: tuple[str, Store],
) -> None:
    url, store = receiver
    body = json.dumps(pull_request_payload(3, HEAD)).encode()
    first = deliver(url, body, delivery_id="original")
    assert first.status_code == 202
    replay = deliver(url, body, delivery_id="replayed-under-a-new-id")
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate", replay.text
    assert replay.json()["jobs"] == first.json()["jobs"]
    assert len(store.list_jobs()) == 1
    deliveries = {d.delivery_id: d for d in store.list_deliveries()}
    assert deliveries["replayed-under-a-new-id"].outcome == "replay"

    # Another trigger on the same head, or another /review comment, is a new request.
    assert deliver(url, pull_request_payload(3, HEAD, action="reopened")).status_code == 202
    comment = pr_comment_payload("/review")
    comment["issue"]["number"] = 3
    assert deliver(url, comment, "issue_comment").status_code == 202
    assert deliver(url, comment, "issue_comment").json()["status"] == "duplicate"
    comment["comment"]["id"] += 1
    assert deliver(url, comment, "issue_comment").status_code == 202
    assert len(store.list_jobs()) == 4


def test_a_replay_after_the_review_failed_is_queued_again(receiver: tuple[str, Store]) -> None:
    url, store = receiver
    body = json.dumps(pull_request_payload(5, HEAD)).encode()
    (job_id,) = deliver(url, body).json()["jobs"]
    claimed = store.claim("w1", 60)
    assert claimed is not None and claimed.id == job_id
    store.fail(job_id, "w1", "GitHub was down")
    again = deliver(url, body)
    assert again.status_code == 202 and again.json()["status"] == "queued"
