"""`calora serve` listens before its model loads: deliveries during the warm-up are answered at once,
recorded and queued, and reviewed when the model is ready.

A real `calora serve` subprocess runs the real review job against the fake GitHub; the model load is
tests/app/scripted_runner.py's (a scripted backend behind a CALORA_TEST_LOAD_SECONDS sleep).
"""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.app.crash_harness import OWNER, REPO, Deployment, review_env
from tests.app.fake_github import FakeGitHub
from tests.app.github_env import app_key_pair, fake_github, read_diff  # noqa: F401 - fixtures
from tests.app.receiver_support import TEST_SECRET, free_port, pull_request_payload, signed_headers

HEAD = "e" * 40
LOAD_SECONDS = 6.0  # far longer than the 2 s the receiver has to answer in
ANSWER_WITHIN = 2.0


def _send_until_answered(url: str, body: bytes, delivery_id: str, give_up: float) -> httpx.Response:
    headers = signed_headers(body, "pull_request", delivery_id, TEST_SECRET)
    while time.monotonic() < give_up:
        try:
            return httpx.post(f"{url}/webhooks/github", content=body, headers=headers, timeout=5)
        except httpx.TransportError:
            time.sleep(0.02)
    raise AssertionError(f"nothing answered {delivery_id}")


def test_serve_takes_deliveries_within_two_seconds_while_the_model_loads_and_reviews_them_once_ready(
    tmp_path: Path, fake_github: FakeGitHub, app_key_pair, shared_dir: Path
) -> None:
    fake_github.add_pull(OWNER, REPO, 7, read_diff(shared_dir, "004-"), head_sha=HEAD)
    database_url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    deployment = Deployment(tmp_path, database_url, free_port(),
                            review_env(tmp_path, database_url, fake_github, app_key_pair[0], LOAD_SECONDS))
    body = json.dumps(pull_request_payload(7, HEAD)).encode()
    started = time.monotonic()
    deployment.start_serve()
    try:
        response = _send_until_answered(deployment.url, body, "during-warm-up", started + 60)
        answered_after = time.monotonic() - started
        assert response.status_code == 202 and response.json()["status"] == "queued", response.text
        assert answered_after <= ANSWER_WITHIN, f"first answer {answered_after:.2f} s after start\n{deployment.logs()}"

        # Alive but not ready: liveness must not get a warming process killed, readiness keeps traffic off.
        status, health = deployment.health("/healthz")
        assert (status, health["status"], health["worker"], health["ready"]) == (200, "warming", "warming", False)
        assert deployment.health("/readyz")[0] == 503
        assert fake_github.reviews == []

        deployment.wait_healthy(timeout=120, path="/readyz")
        deadline = time.monotonic() + 60
        while not (fake_github.reviews and fake_github.check_runs
                   and all(run["status"] == "completed" for run in fake_github.check_runs.values())):
            assert time.monotonic() < deadline, deployment.logs()
            time.sleep(0.05)
        ready_after = time.monotonic() - started
    finally:
        deployment.stop_all()
    assert ready_after >= LOAD_SECONDS
    (review,) = fake_github.reviews
    assert review["pr"] == (OWNER, REPO, 7) and review["commit_id"] == HEAD
    assert [(c["path"], c["line"]) for c in review["comments"]] == [("backend/app/core/db.py", 7)]


def test_a_model_that_fails_to_load_makes_serve_unhealthy_but_deliveries_are_still_kept(
    tmp_path: Path, fake_github: FakeGitHub, app_key_pair
) -> None:
    database_url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    env = review_env(tmp_path, database_url, fake_github, app_key_pair[0], 0)
    env["CALORA_JOB_RUNNER"] = "tests.app.scripted_runner:no_such_runner"
    deployment = Deployment(tmp_path, database_url, free_port(), env)
    deployment.start_serve()
    try:
        response = _send_until_answered(deployment.url, json.dumps(pull_request_payload(8, HEAD)).encode(),
                                        "while-broken", time.monotonic() + 60)
        assert response.status_code == 202
        deadline = time.monotonic() + 60
        while deployment.health()[0] != 503:
            assert time.monotonic() < deadline, deployment.logs()
            time.sleep(0.05)
        health = deployment.health()[1]
        assert health["status"] == "unhealthy" and "no_such_runner" in health["worker"], health
    finally:
        deployment.stop_all()
