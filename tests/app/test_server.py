"""The real app over real HTTP on loopback: GitHub's example payloads, signed right and wrong."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.jobs import ReviewJobSpec
from app.metrics import AppMetrics
from app.server import create_app, trigger_policy
from app.settings import Settings
from app.store import Store
from app.webhooks import decide, parse_delivery
from app.worker import JobHooks
from tests.app.receiver_support import (
    TEST_SECRET,
    event_of,
    load_payload,
    payload_files,
    pr_comment_payload,
    pull_request_payload,
    signed_headers,
)
from tests.app.test_webhooks import QUEUED_EXAMPLES, expected_kind
from tests.loopback import serve_in_thread

CLIENT = httpx.Client(timeout=30)  # one client: building one per request costs more than the request
STATUS_OF_KIND = {"queue": 202, "ignore": 202, "installation": 200, "pong": 200}


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "webhook_secret": TEST_SECRET.decode(), "database_url": f"sqlite:///{tmp_path / 'queue.sqlite'}",
        "bot_login": "calora[bot]", "poll_seconds": 0.05,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture()
def receiver(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """The receiver alone (worker elsewhere): jobs stay queued for the assertions."""
    store = Store.from_url(f"sqlite:///{tmp_path / 'queue.sqlite'}")
    with serve_in_thread(create_app(settings_for(tmp_path), store=store, run_worker=False)) as url:
        yield url, store
    store.close()


def post(url: str, payload: dict | bytes, event: str, delivery_id: str | None = None, **headers: str) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = signed_headers(body, event, delivery_id or str(uuid.uuid4()))
    sent.update(headers)
    return CLIENT.post(f"{url}/webhooks/github", content=body, headers=sent)


def test_every_real_example_is_answered_and_recorded(receiver: tuple[str, Store]) -> None:
    url, store = receiver
    queued_files, repeats, requests = 0, 0, set()
    for index, path in enumerate(payload_files()):
        relative = f"{event_of(path)}/{path.name}"
        response = post(url, path.read_bytes(), event_of(path), delivery_id=f"example-{index}")
        kind = expected_kind(relative)
        expected_status = {"queue": "queued", "ignore": "ignored", "installation": "recorded", "pong": "pong"}[kind]
        if kind == "queue":
            # Two examples of one request (the same re-run with and without an organization) queue it once.
            decision = decide(parse_delivery({"X-GitHub-Event": event_of(path), "X-GitHub-Delivery": "x"},
                                             path.read_bytes()), trigger_policy(settings_for(Path("."))))
            keys = {job.request_key for job in decision.jobs}  # type: ignore[union-attr]
            if keys <= requests:
                assert (response.status_code, response.json()["status"]) == (200, "duplicate"), relative
                repeats += 1
                continue
            requests |= keys
        assert response.status_code == STATUS_OF_KIND[kind], (relative, response.text)
        assert response.json()["status"] == expected_status, relative
        queued_files += relative in QUEUED_EXAMPLES
    deliveries = store.list_deliveries(limit=500)
    assert len(deliveries) == len(payload_files()) and repeats > 0
    assert sum(delivery.outcome == "queued" for delivery in deliveries) == queued_files
    assert sum(delivery.outcome == "replay" for delivery in deliveries) == repeats
    assert store.queue_depth()["queued"] + store.queue_depth()["superseded"] == queued_files


def test_a_redelivery_is_acknowledged_and_not_queued_again(receiver: tuple[str, Store]) -> None:
    url, store = receiver
    payload = pull_request_payload(11, "c" * 40)
    first = post(url, payload, "pull_request", delivery_id="same-delivery")
    again = post(url, payload, "pull_request", delivery_id="same-delivery")
    assert (first.status_code, first.json()["status"]) == (202, "queued")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert len(store.list_jobs()) == 1


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "garbage"])
def test_a_missing_or_wrong_signature_is_401_and_nothing_is_stored(
    receiver: tuple[str, Store], signature: str | None
) -> None:
    url, store = receiver
    body = json.dumps(pull_request_payload(12, "d" * 40)).encode()
    headers = signed_headers(body, "pull_request", "unsigned-1")
    if signature is None:
        del headers["X-Hub-Signature-256"]
    else:
        headers["X-Hub-Signature-256"] = signature
    response = httpx.post(f"{url}/webhooks/github", content=body, headers=headers)
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["error"]
    assert store.list_deliveries() == [] and store.list_jobs() == []


def test_a_body_signed_with_another_secret_is_401(receiver: tuple[str, Store]) -> None:
    url, store = receiver
    body = json.dumps(load_payload("ping/payload.json")).encode()
    headers = signed_headers(body, "ping", "other-secret", secret=b"someone else's secret")
    assert httpx.post(f"{url}/webhooks/github", content=body, headers=headers).status_code == 401
    assert store.list_deliveries() == []


def test_a_body_over_25_mb_is_413_by_its_content_length(receiver: tuple[str, Store]) -> None:
    url, store = receiver
    body = b'{"zen": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    try:
        response = post(url, body, "ping")
    except (httpx.WriteError, httpx.RemoteProtocolError):  # the server may close before the upload ends
        pytest.fail("the 413 answer did not reach the client")
    assert response.status_code == 413 and "over the limit" in response.json()["error"]
    assert store.list_deliveries() == []


def test_a_streamed_body_over_the_limit_is_413(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'queue.sqlite'}")
    app = create_app(settings_for(tmp_path, max_body_bytes=64 * 1024), store=store, run_worker=False)

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"zen": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    with serve_in_thread(app) as url:
        headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "big", "X-Hub-Signature-256": "sha256=0"}
        response = httpx.post(f"{url}/webhooks/github", content=chunks(), headers=headers)
        assert response.status_code == 413
        small = json.dumps(load_payload("ping/payload.json")).encode()
        assert post(url, small, "ping").status_code == 200  # under the limit is fine
    assert [d.delivery_id for d in store.list_deliveries()] != ["big"]
    store.close()


@pytest.mark.parametrize(("body", "headers", "message"), [
    (b"{not json", {}, "not JSON"),
    (b"[]", {}, "expected an object"),
    (b"{}", {"X-GitHub-Event": ""}, "X-GitHub-Event header is missing"),
    (b"{}", {"X-GitHub-Delivery": ""}, "X-GitHub-Delivery header is missing"),
    (b'{"action": "opened", "pull_request": {}}', {"X-GitHub-Event": "pull_request"}, "pull_request.number"),
])
def test_malformed_but_signed_deliveries_are_400_and_not_stored(
    receiver: tuple[str, Store], body: bytes, headers: dict[str, str], message: str
) -> None:
    url, store = receiver
    sent = signed_headers(body, "ping", "malformed-1")
    sent.update(headers)
    response = httpx.post(f"{url}/webhooks/github", content=body, headers=sent)
    assert response.status_code == 400 and message in response.json()["error"]
    assert store.list_deliveries() == []


def test_unknown_events_are_202_ignored_and_recorded(receiver: tuple[str, Store]) -> None:
    url, store = receiver
    response = post(url, load_payload("pull_request_review/submitted.payload.json"), "pull_request_review",
                    delivery_id="review-1")
    assert (response.status_code, response.json()["status"]) == (202, "ignored")
    assert "not handled" in response.json()["reason"]
    assert [(d.delivery_id, d.outcome) for d in store.list_deliveries()] == [("review-1", "ignored")]


def test_review_comment_and_a_newer_push_over_http(receiver: tuple[str, Store]) -> None:
    url, store = receiver
    assert post(url, pull_request_payload(1, "a" * 40), "pull_request").status_code == 202
    comment = pr_comment_payload("/review sql python")
    comment["issue"]["number"] = 1
    queued = post(url, comment, "issue_comment")
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    newer = post(url, pull_request_payload(1, "b" * 40, action="synchronize"), "pull_request")
    assert newer.json()["superseded"] == 2
    by_head = {(job.head_sha, job.trigger): job.status for job in store.list_jobs()}
    assert by_head == {("a" * 40, "opened"): "superseded", ("", "comment"): "superseded",
                       ("b" * 40, "synchronize"): "queued"}
    from_bot = post(url, pr_comment_payload("/review", login="calora[bot]"), "issue_comment")
    assert (from_bot.status_code, from_bot.json()["status"]) == (202, "ignored")


def test_healthz_reports_the_database_and_an_external_worker(receiver: tuple[str, Store]) -> None:
    url, _ = receiver
    response = httpx.get(f"{url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "ready": True, "database": "ok", "worker": "external"}


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    missing = Store.from_url(f"sqlite:///{tmp_path / 'no-such-dir' / 'queue.sqlite'}", create=False)
    with serve_in_thread(create_app(settings_for(tmp_path), store=missing, run_worker=False)) as url:
        response = httpx.get(f"{url}/healthz")
    assert response.status_code == 503 and response.json()["database"].startswith("unreachable")


def test_metrics_count_deliveries_queue_depth_and_ack_latency(receiver: tuple[str, Store]) -> None:
    url, _ = receiver
    post(url, pull_request_payload(3, "e" * 40), "pull_request", delivery_id="m-1")
    post(url, pull_request_payload(3, "e" * 40), "pull_request", delivery_id="m-1")
    post(url, b"{}", "ping", **{"X-Hub-Signature-256": "sha256=00"})
    text = httpx.get(f"{url}/metrics").text
    assert 'calora_webhook_deliveries_total{event="pull_request",outcome="queued"} 1.0' in text
    assert 'calora_webhook_deliveries_total{event="pull_request",outcome="duplicate"} 1.0' in text
    assert 'calora_webhook_deliveries_total{event="unverified",outcome="unauthorized"} 1.0' in text
    assert 'calora_jobs{status="queued"} 1.0' in text
    assert "calora_webhook_ack_seconds_count 3.0" in text


def test_the_in_process_worker_reviews_what_the_receiver_queued(tmp_path: Path) -> None:
    reviewed: list[ReviewJobSpec] = []

    async def run(spec: ReviewJobSpec) -> None:
        reviewed.append(spec)

    async def conclude(spec: ReviewJobSpec, reason: str) -> None:
        raise AssertionError(reason)

    store = Store.from_url(f"sqlite:///{tmp_path / 'queue.sqlite'}")
    metrics = AppMetrics()
    app = create_app(settings_for(tmp_path), store=store, hooks=JobHooks(run, conclude), metrics=metrics)
    with serve_in_thread(app) as url:
        assert httpx.get(f"{url}/healthz").json()["worker"] == "ok"
        started = time.monotonic()
        assert post(url, pull_request_payload(5, "f" * 40), "pull_request").status_code == 202
        while not reviewed and time.monotonic() - started < 10:
            time.sleep(0.02)
        assert [(spec.pull_number, spec.head_sha) for spec in reviewed] == [(5, "f" * 40)]
        while store.queue_depth()["done"] != 1 and time.monotonic() - started < 10:
            time.sleep(0.02)
    assert store.queue_depth()["done"] == 1
    store.close()


def test_the_webhook_secret_never_appears_in_logs_or_answers(
    receiver: tuple[str, Store], caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = receiver
    caplog.set_level(logging.DEBUG)
    answers = [
        post(url, pull_request_payload(21, "a" * 40), "pull_request").text,
        post(url, b"{}", "ping", **{"X-Hub-Signature-256": "sha256=00"}).text,
        post(url, b"not json", "ping").text,
        CLIENT.get(f"{url}/healthz").text,
        CLIENT.get(f"{url}/metrics").text,
    ]
    assert caplog.records  # the receiver did log
    secret = TEST_SECRET.decode()
    assert secret not in caplog.text and all(secret not in answer for answer in answers)
