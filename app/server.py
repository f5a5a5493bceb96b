"""The HTTP shell: receive GitHub webhooks, record and queue them, report health and metrics.

The receiver only verifies, records and queues (one short transaction), so it answers far inside
GitHub's 10-second limit; reviews run in the worker, inside this process by default (`calora serve`)
or in separate processes (`calora serve --no-worker` + `calora worker`).

The receiver listens before the reviewer model loads: `calora serve` hands the worker a loader that runs
in a thread once the server is up, and deliveries are recorded and queued meanwhile.

Answers of POST /webhooks/github:
  200 ping, installation events (recorded), redelivery of a known X-GitHub-Delivery, or a replay (the same
      request - repository, pull request, head SHA, trigger - under a new delivery id): nothing queued
  202 review job(s) queued, or a verified event that asks for nothing (ignored, with the reason)
  400 missing X-GitHub-Event / X-GitHub-Delivery, body not a JSON object, or a known event without the
      fields the receiver needs
  401 X-Hub-Signature-256 missing or wrong (nothing is stored)
  413 body over `max_body_bytes` (Content-Length or the streamed length)

GET /healthz (liveness): 200 while the process can take deliveries, `"status": "warming"` while the
worker loads the model, `"ok"` once ready; 503 when the database is unreachable, the worker loop stopped
or stalled, or the model failed to load. GET /readyz (readiness): 200 only when reviews can run, 503
while warming.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from app.metrics import UNVERIFIED_EVENT, AppMetrics
from app.settings import Settings
from app.store import RecordResult, Store, redact_url
from app.webhooks import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    MalformedDeliveryError,
    TriggerPolicy,
    WebhookError,
    decide,
    parse_delivery,
    verify_signature,
)
from app.worker import JobHooks, Worker, WorkerConfig

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/github"


class BodyTooLargeError(WebhookError):
    status_code = 413


@dataclass
class Receiver:
    """What the webhook endpoint needs, built once per app."""

    settings: Settings
    store: Store
    metrics: AppMetrics
    policy: TriggerPolicy
    secret: bytes
    worker: Worker | None = None
    worker_task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # True once the HTTP server listens (`calora serve` sets it from uvicorn): the worker starts loading the
    # model only then, so the load's imports do not compete with the receiver's start for the GIL.
    listening: Callable[[], bool] | None = None


def trigger_policy(settings: Settings) -> TriggerPolicy:
    return TriggerPolicy(
        allowed_associations=settings.allowed_associations, bot_login=settings.bot_login,
        queue_drafts=settings.queue_drafts, app_id=settings.app_id,
    )


def create_app(
    settings: Settings,
    store: Store | None = None,
    hooks: JobHooks | Callable[[], JobHooks] | None = None,
    run_worker: bool = True,
    metrics: AppMetrics | None = None,
) -> FastAPI:
    """The FastAPI app; with `run_worker`, a worker running `hooks` lives in the app's event loop.

    `hooks` may be a loader (`calora serve` passes one that loads the reviewer model): the worker calls
    it in a thread after the server started, so the receiver never waits for the model.
    """
    owns_store = store is None
    store = store or Store.from_url(settings.database_url)
    metrics = metrics or AppMetrics()
    metrics.watch_queue(store.queue_depth)
    receiver = Receiver(settings=settings, store=store, metrics=metrics, policy=trigger_policy(settings),
                        secret=settings.webhook_secret_bytes())
    if run_worker:
        if hooks is None:
            raise ValueError("run_worker needs the job hooks (app.worker.load_job_hooks)")
        receiver.worker = Worker(store, hooks, WorkerConfig.from_settings(settings), metrics)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("receiver on %s, queue in %s, worker %s", WEBHOOK_PATH, redact_url(settings.database_url),
                 receiver.worker.owner if receiver.worker else "external")
        if receiver.worker is not None:
            receiver.stop = asyncio.Event()
            receiver.worker_task = asyncio.create_task(
                receiver.worker.run(receiver.stop, load_when=receiver.listening), name="worker")
        try:
            yield
        finally:
            receiver.stop.set()
            if receiver.worker_task is not None:
                await receiver.worker_task
            if owns_store:
                store.close()

    app = FastAPI(title="calora", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.receiver = receiver

    @app.post(WEBHOOK_PATH)
    async def receive_webhook(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            return await _receive(receiver, request)
        finally:
            metrics.ack_seconds.observe(time.perf_counter() - started)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return await _health(receiver)

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        return await _health(receiver, readiness=True)

    @app.get("/metrics")
    async def metrics_text() -> Response:
        content, content_type = await anyio.to_thread.run_sync(metrics.render)
        return Response(content=content, media_type=content_type)

    from app.console import mount_console  # the read-only maintainer console under /console and /api

    mount_console(app, settings)
    return app


def _answer(status_code: int, **body: Any) -> JSONResponse:
    return JSONResponse(status_code=status_code, content=body)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes by header and while streaming."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_bytes = int(declared)
        except ValueError:
            raise MalformedDeliveryError(f"Content-Length {declared!r} is not a number") from None
        if declared_bytes > limit:
            raise BodyTooLargeError(f"body of {declared_bytes} bytes is over the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError(f"body is over the limit of {limit} bytes")
    return bytes(body)


async def _receive(receiver: Receiver, request: Request) -> JSONResponse:
    metrics, headers = receiver.metrics, request.headers
    try:
        body = await read_body(request, receiver.settings.max_body_bytes)
        verify_signature(body, headers.get(SIGNATURE_HEADER), receiver.secret)
    except WebhookError as exc:
        outcome = {401: "unauthorized", 413: "too_large"}.get(exc.status_code, "malformed")
        metrics.deliveries.labels(UNVERIFIED_EVENT, outcome).inc()
        log.warning("webhook refused (%d): %s", exc.status_code, exc)
        return _answer(exc.status_code, error=str(exc))
    event_label = (headers.get(EVENT_HEADER) or "").strip()[:64] or "missing"
    try:
        delivery = parse_delivery(headers, body)
        decision = decide(delivery, receiver.policy)
    except WebhookError as exc:
        metrics.deliveries.labels(event_label, "malformed").inc()
        log.warning("webhook %s refused (%d): %s", event_label, exc.status_code, exc)
        return _answer(exc.status_code, error=str(exc))
    result: RecordResult = await anyio.to_thread.run_sync(
        receiver.store.record_delivery, delivery.delivery_id, delivery.event, delivery.action, decision
    )
    if result.duplicate:
        metrics.deliveries.labels(event_label, "duplicate").inc()
        log.info("delivery %s (%s) seen before; not queued again", delivery.delivery_id, delivery.event)
        return _answer(200, status="duplicate", delivery=delivery.delivery_id)
    outcome = result.outcome or "ignored"
    if outcome == "replay":
        metrics.deliveries.labels(event_label, "replay").inc()
        log.warning("delivery %s (%s %s) repeats the request of job(s) %s; not queued again",
                    delivery.delivery_id, delivery.event, delivery.action, result.replayed)
        return _answer(200, status="duplicate", delivery=delivery.delivery_id, jobs=result.replayed,
                       reason="the same request (repository, pull request, head SHA, trigger) was already queued")
    metrics.deliveries.labels(event_label, outcome).inc()
    if result.superseded:
        metrics.superseded.inc(result.superseded)
    if outcome == "queued":
        if receiver.worker is not None:
            receiver.worker.poke()
        log.info("delivery %s (%s %s): queued jobs %s", delivery.delivery_id, delivery.event,
                 delivery.action, result.job_ids)
        return _answer(202, status="queued", delivery=delivery.delivery_id, jobs=result.job_ids,
                       superseded=result.superseded, late=result.late)
    if outcome == "ignored":
        reason = getattr(decision, "reason", "")
        log.debug("delivery %s (%s) ignored: %s", delivery.delivery_id, delivery.event, reason)
        return _answer(202, status="ignored", delivery=delivery.delivery_id, reason=reason)
    if outcome == "pong":
        return _answer(200, status="pong", delivery=delivery.delivery_id)
    return _answer(200, status=outcome, delivery=delivery.delivery_id)


async def _health(receiver: Receiver, readiness: bool = False) -> JSONResponse:
    """200 when the database answers and the in-process worker loop is alive (or runs elsewhere).

    A worker still loading the model is alive (liveness 200, `"status": "warming"`, so an orchestrator
    does not kill a process that is only slow to start) but not ready (`readiness`: 503).
    """
    checks: dict[str, str] = {}
    healthy = True
    warming = False
    try:
        await anyio.to_thread.run_sync(receiver.store.ping)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - report any database failure as unhealthy, with its kind
        checks["database"] = f"unreachable: {type(exc).__name__}"
        healthy = False
    worker = receiver.worker
    if worker is None:
        checks["worker"] = "external"
    else:
        stale_after = max(10.0, 5 * worker.config.poll_seconds)
        task = receiver.worker_task
        if worker.state == "load_failed":
            checks["worker"] = f"failed to load: {worker.load_error}"
            healthy = False
        elif task is None or task.done():
            checks["worker"] = "stopped"
            healthy = False
        elif time.time() - worker.last_beat > stale_after:
            checks["worker"] = f"stalled for {time.time() - worker.last_beat:.0f} s"
            healthy = False
        elif worker.state == "warming":
            checks["worker"] = "warming"
            warming = True
        else:
            checks["worker"] = "ok"
    status = "unhealthy" if not healthy else "warming" if warming else "ok"
    code = 200 if healthy and not (readiness and warming) else 503
    return _answer(code, status=status, ready=healthy and not warming, **checks)
