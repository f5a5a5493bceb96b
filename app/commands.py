"""`calora serve`, `calora worker` and `calora jobs`: the App's processes and a look at its queue."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = subparsers.add_parser(
        "serve", help="run the GitHub App: webhook receiver, /healthz, /metrics and (by default) a worker",
        description="Settings come from CALORA_* environment variables (see app/settings.py).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--no-worker", action="store_true",
                       help="only receive and queue; run `calora worker` processes for the reviews")
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request")
    serve.set_defaults(handler=serve_command)

    worker = subparsers.add_parser("worker", help="run review jobs from the queue (no HTTP server)")
    worker.add_argument("--metrics-port", type=int, default=None,
                        help="serve this worker's Prometheus metrics on this port")
    worker.set_defaults(handler=worker_command)

    jobs = subparsers.add_parser("jobs", help="list review jobs and webhook deliveries")
    jobs.add_argument("--format", choices=("table", "json"), default="table")
    jobs.add_argument("--limit", type=int, default=30, help="newest N jobs and N deliveries (default 30)")
    jobs.add_argument("--status", choices=("queued", "running", "done", "failed", "superseded"), default=None)
    jobs.set_defaults(handler=jobs_command)


def _load_settings() -> Any:
    from pydantic import ValidationError

    from app.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        print(f"calora: invalid settings (CALORA_* environment):\n{exc}", file=sys.stderr)
        return None


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server import create_app
    from app.settings import MissingSettingError
    from app.worker import job_hooks_loader

    settings = _load_settings()
    if settings is None:
        return 2
    try:
        # The worker loads the reviewer model in a thread once the receiver listens (no lost start-up window).
        hooks = None if args.no_worker else job_hooks_loader(settings)
        app = create_app(settings, hooks=hooks, run_worker=not args.no_worker)
    except MissingSettingError as exc:
        print(f"calora serve: {exc}", file=sys.stderr)
        return 2
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info",
                                           access_log=args.access_log, timeout_graceful_shutdown=15))
    app.state.receiver.listening = lambda: server.started  # the worker loads the model once this is true
    server.run()
    return 0


def worker_command(args: argparse.Namespace) -> int:
    from app.metrics import AppMetrics
    from app.store import Store, redact_url
    from app.worker import Worker, WorkerConfig, load_job_hooks

    settings = _load_settings()
    if settings is None:
        return 2
    store = Store.from_url(settings.database_url)
    metrics = AppMetrics()
    metrics.watch_queue(store.queue_depth)
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, registry=metrics.registry)
    worker = Worker(store, load_job_hooks(settings), WorkerConfig.from_settings(settings), metrics)
    log.info("worker on queue %s", redact_url(settings.database_url))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await worker.run(stop)

    try:
        asyncio.run(run())
    finally:
        store.close()
    return 0


def jobs_command(args: argparse.Namespace) -> int:
    from app.store import Store

    settings = _load_settings()
    if settings is None:
        return 2
    store = Store.from_url(settings.database_url)
    try:
        jobs = store.list_jobs(limit=args.limit, status=args.status)
        deliveries = store.list_deliveries(limit=args.limit)
        depth = store.queue_depth()
    finally:
        store.close()
    if args.format == "json":
        json.dump({"depth": depth, "jobs": [job.model_dump() for job in jobs],
                   "deliveries": [delivery.model_dump() for delivery in deliveries]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    now = time.time()
    print("queue: " + ", ".join(f"{status} {count}" for status, count in depth.items()))
    print()
    _print_table(
        ["JOB", "STATUS", "TRIES", "PULL REQUEST", "HEAD", "TRIGGER", "AGE", "LAST ERROR"],
        [[str(job.id), job.status, str(job.attempts), job.pr_key, job.head_sha[:10] or "-", job.trigger,
          _age(now - job.created_at), (job.last_error or "")[:60]] for job in jobs],
    )
    print()
    _print_table(
        ["DELIVERY", "EVENT", "ACTION", "OUTCOME", "JOBS", "AGE", "REASON"],
        [[d.delivery_id, d.event, d.action or "-", d.outcome, str(d.jobs_queued), _age(now - d.received_at),
          (d.reason or "")[:60]] for d in deliveries],
    )
    return 0


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{max(seconds, 0):.0f}s"


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    if not rows:
        print(f"(no {header[0].lower()}s)")
        return
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
