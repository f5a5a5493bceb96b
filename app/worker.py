"""The worker loop: claim a job with a lease, keep the lease alive while it runs, record how it ended.

One attempt of a job:
  claim (lease) → run the review, renewing the lease every third of it → done
                                                                       | failed attempt → back-off, queued again
                                                                       | last attempt failed → conclude, failed
A worker that dies leaves a running job whose lease expires; another claim takes it again and counts the
attempt, so a job that keeps killing its worker is also concluded after `max_attempts`. A worker that
finds its lease taken (it was paused too long) cancels its run, so two workers never review one job at once.
A run that raises `DeferJob` (GitHub's rate limit) goes back to the queue due at the time GitHub named,
the attempt uncounted; one that raises `PermanentJobError` (GitHub's 404, 401, 422 ...) fails at once. A
check run that could not be concluded (GitHub still down) is left as a pending conclusion that workers
retry until GitHub answers.

Warm-up: a worker can be given a loader instead of its hooks (`calora serve` loads the reviewer model
that way): the loader runs in a thread when the loop starts, so the receiver next to it listens at once;
until it returns the worker is `warming` and claims nothing.

The review itself is injected (`JobRunner`, `FailureHook`): `calora serve` / `calora worker` use
`app.review_job` unless `CALORA_JOB_RUNNER` names another (tests, operations).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from app.jobs import DeferJob, PermanentJobError, ReviewJobSpec
from app.metrics import AppMetrics
from app.settings import Settings
from app.store import ClaimedJob, PendingConclusion, Store

log = logging.getLogger(__name__)

JobRunner = Callable[[ReviewJobSpec], Awaitable[Any]]
FailureHook = Callable[[ReviewJobSpec, str], Awaitable[None]]
AttemptOutcome = Literal["done", "retry", "deferred", "failed", "lost_lease", "released"]
WorkerState = Literal["warming", "ready", "load_failed"]

MAX_ERROR_CHARS = 2000
LISTEN_WAIT_SECONDS = 30.0  # the model load starts once the receiver listens, or after this at the latest
MAX_CONCLUSION_TRIES = 100  # with back-off capped at retry_max_seconds (10 min): more than 16 hours


def _setting_default(name: str) -> Any:
    """The default of a `Settings` field: the one home of each worker default."""
    return Settings.model_fields[name].get_default(call_default_factory=True)


class WorkerConfig(BaseModel):
    """How a worker claims and retries; built from Settings, whose defaults are its defaults."""

    max_attempts: int = _setting_default("max_attempts")
    lease_seconds: float = _setting_default("lease_seconds")
    retry_base_seconds: float = _setting_default("retry_base_seconds")
    retry_max_seconds: float = _setting_default("retry_max_seconds")
    job_timeout_seconds: float = _setting_default("job_timeout_seconds")
    concurrency: int = _setting_default("worker_concurrency")
    poll_seconds: float = _setting_default("poll_seconds")
    shutdown_grace_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        return cls(
            max_attempts=settings.max_attempts, lease_seconds=settings.lease_seconds,
            retry_base_seconds=settings.retry_base_seconds, retry_max_seconds=settings.retry_max_seconds,
            job_timeout_seconds=settings.job_timeout_seconds, concurrency=settings.worker_concurrency,
            poll_seconds=settings.poll_seconds,
        )


def retry_delay(attempts: int, base_seconds: float, max_seconds: float) -> float:
    """Exponential back-off after the `attempts`-th failed attempt: base, 2·base, 4·base ... capped."""
    return min(max_seconds, base_seconds * (2 ** max(0, attempts - 1)))


def worker_id() -> str:
    """host:pid:random — unique per worker process, readable in `calora jobs`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class JobHooks:
    """What runs a job and what concludes it after its last attempt."""

    run: JobRunner
    conclude_failure: FailureHook


async def log_failure(spec: ReviewJobSpec, reason: str) -> None:
    """The failure hook of custom runners without one: the job's row keeps the reason."""
    log.error("job for %s at %s failed for good: %s", spec.pr_key, spec.head_sha or "current head", reason)


def import_callable(reference: str) -> Callable[..., Any]:
    """Resolve `package.module:function`."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{reference!r} is not module:function")
    module = importlib.import_module(module_name)
    try:
        function = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"{module_name} has no {attribute!r} (from {reference!r})") from None
    if not callable(function):
        raise TypeError(f"{reference!r} is not callable")
    return function


def job_hooks_loader(settings: Settings) -> Callable[[], JobHooks]:
    """What `calora serve` hands its worker: the quick checks now (a missing App id or key stops the
    command before it listens), the slow model load later, in the worker's warm-up thread."""
    if not settings.job_runner:
        settings.app_credentials()
    return functools.partial(load_job_hooks, settings)


def load_job_hooks(settings: Settings) -> JobHooks:
    """The runner named by CALORA_JOB_RUNNER, or the real review (app.review_job) by default."""
    if settings.job_runner:
        run = import_callable(settings.job_runner)
        conclude = import_callable(settings.job_failure_hook) if settings.job_failure_hook else log_failure
        log.info("jobs run with %s (CALORA_JOB_RUNNER)", settings.job_runner)
        return JobHooks(run=run, conclude_failure=conclude)
    review_job = importlib.import_module("app.review_job")
    context = review_job.build_context(settings)

    async def run(spec: ReviewJobSpec) -> Any:
        return await review_job.run_review(spec, context)

    async def conclude(spec: ReviewJobSpec, reason: str) -> None:
        await review_job.conclude_failure(spec, context, reason)

    return JobHooks(run=run, conclude_failure=conclude)


class Worker:
    """Claims and runs jobs from a Store until told to stop.

    `hooks` is either the job hooks or a loader that returns them (slow: it loads the reviewer model),
    called in a thread when `run` starts.
    """

    hooks: JobHooks  # set once loaded when the worker was given a loader

    def __init__(
        self,
        store: Store,
        hooks: JobHooks | Callable[[], JobHooks],
        config: WorkerConfig,
        metrics: AppMetrics | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self._loader: Callable[[], JobHooks] | None = None
        if isinstance(hooks, JobHooks):
            self.hooks = hooks
            self.state: WorkerState = "ready"
        else:
            self._loader = hooks
            self.state = "warming"
        self.load_error: str | None = None
        self.config = config
        self.metrics = metrics
        self.owner = owner or worker_id()
        self.last_beat = time.time()  # /healthz: the loop is alive while this keeps moving
        self._running: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()

    # --- the loop ---

    def poke(self) -> None:
        """A job was just queued: look at the queue now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, load_when: Callable[[], bool] | None = None) -> None:
        """Claim and run jobs until `stop` is set; then let running jobs finish for a short grace.

        A loader given instead of hooks runs first, once `load_when()` is true (the receiver listens).
        """
        log.info("worker %s started (concurrency %d, lease %.0f s)", self.owner, self.config.concurrency,
                 self.config.lease_seconds)
        if not await self._warm_up(stop, load_when):
            return
        try:
            while not stop.is_set():
                self.last_beat = time.time()
                self._wake.clear()
                try:
                    await self._fill_slots()
                except Exception:  # database briefly away: keep the loop alive, try at the next poll
                    log.exception("worker %s could not claim a job", self.owner)
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
                await asyncio.wait(waiters, timeout=self.config.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
        finally:
            await self._drain()
            log.info("worker %s stopped", self.owner)

    async def _warm_up(self, stop: asyncio.Event, load_when: Callable[[], bool] | None) -> bool:
        """Run the loader (if any) in a daemon thread, beating while it runs; False when stopped or failed.

        A daemon thread, not the loop's executor: a process told to stop mid-load exits without waiting
        for the model.
        """
        if self._loader is None:
            return True
        waited_until = time.monotonic() + LISTEN_WAIT_SECONDS
        while load_when is not None and not load_when() and time.monotonic() < waited_until:
            self.last_beat = time.time()
            if stop.is_set():
                return False
            await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        loaded: asyncio.Future[JobHooks] = loop.create_future()
        loader = self._loader

        def load() -> None:
            try:
                hooks = loader()
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which reports it
                failure = exc
                deliver = lambda: loaded.done() or loaded.set_exception(failure)
            else:
                deliver = lambda: loaded.done() or loaded.set_result(hooks)
            try:
                loop.call_soon_threadsafe(deliver)
            except RuntimeError:  # the loop closed: the process stopped while the model loaded
                pass

        started = time.monotonic()
        log.info("worker %s warming up: loading the job hooks (reviewer backend)", self.owner)
        threading.Thread(target=load, name="calora-warm-up", daemon=True).start()
        while not loaded.done():
            self.last_beat = time.time()
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([loaded, stopping], timeout=self.config.poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                log.info("worker %s stopped while warming up", self.owner)
                return False
        try:
            self.hooks = loaded.result()
        except Exception as exc:  # a bad setting or a model that does not load
            self.state, self.load_error = "load_failed", _describe(exc, None)
            log.critical("worker %s could not load the job hooks; queued jobs wait for a restart: %s",
                         self.owner, self.load_error, exc_info=exc)
            return False
        self.state = "ready"
        log.info("worker %s ready after %.1f s", self.owner, time.monotonic() - started)
        return True

    async def _fill_slots(self) -> None:
        while len(self._running) < self.config.concurrency:
            job = await asyncio.to_thread(self.store.claim, self.owner, self.config.lease_seconds)
            if job is None:
                break
            self._start(self.process(job), f"job-{job.id}")
        while len(self._running) < self.config.concurrency:
            pending = await asyncio.to_thread(self.store.claim_conclusion, self.config.lease_seconds)
            if pending is None:
                return
            self._start(self.conclude_pending(pending), f"conclusion-{pending.job_id}")

    def _start(self, work: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("job task %s crashed", task.get_name(), exc_info=task.exception())

    async def _drain(self) -> None:
        if not self._running:
            return
        _, pending = await asyncio.wait(set(self._running), timeout=self.config.shutdown_grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def run_once(self) -> AttemptOutcome | None:
        """Claim one job and run it; None when nothing was claimable (tests, `calora worker --once`)."""
        if self.state == "warming" and self._loader is not None:
            self.hooks, self.state = await asyncio.to_thread(self._loader), "ready"
        job = await asyncio.to_thread(self.store.claim, self.owner, self.config.lease_seconds)
        if job is None:
            return None
        return await self.process(job)

    # --- one attempt ---

    async def process(self, job: ClaimedJob) -> AttemptOutcome:
        """Run one claimed attempt and record its end; never raises except on cancellation."""
        started = time.monotonic()
        outcome = await self._attempt(job)
        if self.metrics is not None:
            self.metrics.job_seconds.labels(outcome).observe(time.monotonic() - started)
        return outcome

    async def _attempt(self, job: ClaimedJob) -> AttemptOutcome:
        spec, cfg = job.spec, self.config
        if job.attempts > cfg.max_attempts:
            reason = (f"gave up after {cfg.max_attempts} attempts: the last one stopped without finishing "
                      f"({job.last_error or 'its worker died'})")
            return await self._give_up(job, reason)
        log.info("job %d (%s at %s, %s) attempt %d/%d", job.id, spec.pr_key, spec.head_sha or "current head",
                 spec.trigger, job.attempts, cfg.max_attempts)
        lost_lease = asyncio.Event()
        run_task = asyncio.create_task(asyncio.wait_for(self.hooks.run(spec), cfg.job_timeout_seconds))
        heartbeat = asyncio.create_task(self._keep_lease(job, run_task, lost_lease))
        try:
            result = await run_task
        except asyncio.CancelledError:
            if lost_lease.is_set():
                log.warning("job %d: lease lost to another worker; this run was cancelled", job.id)
                return "lost_lease"
            run_task.cancel()
            await asyncio.to_thread(self.store.release, job.id, self.owner)
            log.info("job %d released untried by a stopping worker", job.id)
            raise
        except DeferJob as exc:
            when = time.strftime("%H:%M:%S", time.localtime(exc.not_before))
            log.warning("job %d attempt %d: %s; back in the queue until %s, attempt not counted", job.id,
                        job.attempts, exc, when)
            held = await asyncio.to_thread(self.store.defer, job.id, self.owner,
                                           f"waiting until {when}: {exc}"[:MAX_ERROR_CHARS], exc.not_before)
            return "deferred" if held else "lost_lease"
        except PermanentJobError as exc:
            return await self._give_up(job, f"failed for good, retrying would not help: {_describe(exc, None)}")
        except Exception as exc:  # noqa: BLE001 - the runner's failure is this attempt's failure, whatever it is
            error = _describe(exc, cfg.job_timeout_seconds)
            if job.attempts >= cfg.max_attempts:
                return await self._give_up(job, f"failed {job.attempts} times; last error: {error}")
            delay = retry_delay(job.attempts, cfg.retry_base_seconds, cfg.retry_max_seconds)
            log.warning("job %d attempt %d failed (%s); retrying in %.0f s", job.id, job.attempts, error, delay)
            held = await asyncio.to_thread(self.store.retry_later, job.id, self.owner, error, time.time() + delay)
            return "retry" if held else "lost_lease"
        finally:
            heartbeat.cancel()
        held = await asyncio.to_thread(self.store.complete, job.id, self.owner)
        if not held:
            log.warning("job %d finished but its lease had been taken; the other run's result stands", job.id)
            return "lost_lease"
        log.info("job %d done: %s", job.id, _summarise(result))
        return "done"

    async def _give_up(self, job: ClaimedJob, reason: str) -> AttemptOutcome:
        log.error("job %d (%s): %s", job.id, job.spec.pr_key, reason)
        conclude_at: float | None = None
        conclusion_error: str | None = None
        try:
            await self.hooks.conclude_failure(job.spec, reason)
        except Exception as exc:  # the row keeps the reason; GitHub may answer later
            conclusion_error = _describe(exc, None)
            conclude_at = self._conclusion_retry_at(exc, tries=1)
            if conclude_at is None:
                log.exception("job %d: concluding the check run failed for good", job.id)
                reason = f"{reason}; concluding the check run failed: {conclusion_error}"
            else:
                log.warning("job %d: could not conclude the check run (%s); trying again in %.0f s", job.id,
                            conclusion_error, conclude_at - time.time())
        await asyncio.to_thread(self.store.fail, job.id, self.owner, reason[:MAX_ERROR_CHARS],
                                conclude_at=conclude_at, conclusion_error=conclusion_error)
        return "failed"

    def _conclusion_retry_at(self, exc: BaseException, tries: int) -> float | None:
        """When to try concluding again: when GitHub said, after the back-off, or never (permanent)."""
        if isinstance(exc, PermanentJobError) or tries >= MAX_CONCLUSION_TRIES:
            return None
        if isinstance(exc, DeferJob):
            return exc.not_before
        return time.time() + retry_delay(tries, self.config.retry_base_seconds, self.config.retry_max_seconds)

    async def conclude_pending(self, pending: PendingConclusion) -> str:
        """Try again to conclude the check run of a failed job; the row stays until GitHub takes it."""
        try:
            await self.hooks.conclude_failure(pending.spec, pending.reason)
        except Exception as exc:  # noqa: BLE001 - reported and tried again, or dropped when permanent
            error = _describe(exc, None)
            retry_at = self._conclusion_retry_at(exc, pending.tries)
            if retry_at is None:
                log.error("job %d: giving up concluding its check run after %d tries: %s", pending.job_id,
                          pending.tries, error)
                await asyncio.to_thread(self.store.conclusion_done, pending.job_id)
                return "conclusion_dropped"
            log.warning("job %d: check run still not concluded (%s); trying again in %.0f s", pending.job_id,
                        error, retry_at - time.time())
            await asyncio.to_thread(self.store.conclusion_later, pending.job_id, retry_at, error)
            return "conclusion_pending"
        await asyncio.to_thread(self.store.conclusion_done, pending.job_id)
        log.info("job %d: check run concluded after %d tries", pending.job_id, pending.tries)
        return "concluded"

    async def _keep_lease(self, job: ClaimedJob, run_task: asyncio.Task[Any], lost: asyncio.Event) -> None:
        interval = self.config.lease_seconds / 3
        while not run_task.done():
            await asyncio.sleep(interval)
            try:
                held = await asyncio.to_thread(self.store.extend_lease, job.id, self.owner, self.config.lease_seconds)
            except Exception:  # database briefly away: try again next beat, the lease has slack
                log.exception("job %d: could not renew the lease", job.id)
                continue
            if not held:
                lost.set()
                run_task.cancel()
                return


def _summarise(result: Any) -> str:
    """A short line for the log from whatever the runner returned (ReviewOutcome has `status`)."""
    status = getattr(result, "status", None)
    reason = getattr(result, "reason", None)
    if status is not None:
        return f"{status}{f' ({reason})' if reason else ''}"
    return repr(result)[:200]


def _describe(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, TimeoutError) and timeout is not None:
        return f"timed out after {timeout:.0f} s"
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
