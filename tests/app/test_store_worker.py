"""The worker loop on a real SQLite queue, with small runners of the tests' own (no GitHub here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.jobs import ReviewJobSpec
from app.metrics import AppMetrics
from app.settings import Settings
from app.store import Store
from app.worker import JobHooks, Worker, WorkerConfig, import_callable, load_job_hooks, retry_delay

FAST = WorkerConfig(max_attempts=3, lease_seconds=5, retry_base_seconds=0, retry_max_seconds=0,
                    job_timeout_seconds=5, poll_seconds=0.05, shutdown_grace_seconds=0.5)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.from_url(f"sqlite:///{tmp_path / 'queue.sqlite'}")
    yield store
    store.close()


def spec(number: int = 1) -> ReviewJobSpec:
    return ReviewJobSpec(delivery_id=f"d{number}", installation_id=1, owner="acme", repo="web",
                         pull_number=number, head_sha="a" * 40, trigger="opened")


class Recorder:
    """A runner that records what it ran and fails the first `failures` times."""

    def __init__(self, failures: int = 0, delay: float = 0.0) -> None:
        self.failures, self.delay = failures, delay
        self.runs: list[int] = []
        self.concluded: list[tuple[int, str]] = []

    async def run(self, job: ReviewJobSpec) -> str:
        self.runs.append(job.pull_number)
        await asyncio.sleep(self.delay)
        if len(self.runs) <= self.failures:
            raise ConnectionError(f"GitHub unreachable (run {len(self.runs)})")
        return "reviewed"

    async def conclude(self, job: ReviewJobSpec, reason: str) -> None:
        self.concluded.append((job.pull_number, reason))

    def hooks(self) -> JobHooks:
        return JobHooks(run=self.run, conclude_failure=self.conclude)


def test_retry_delay_doubles_up_to_the_cap() -> None:
    assert [retry_delay(n, 10, 60) for n in range(1, 6)] == [10, 20, 40, 60, 60]
    assert retry_delay(0, 10, 60) == 10


def test_a_job_runs_and_is_done(store: Store) -> None:
    job_id = store.enqueue(spec())
    recorder, metrics = Recorder(), AppMetrics()
    worker = Worker(store, recorder.hooks(), FAST, metrics, owner="w1")
    assert asyncio.run(worker.run_once()) == "done"
    assert recorder.runs == [1] and recorder.concluded == []
    job = store.get_job(job_id)
    assert (job.status, job.attempts, job.lease_owner) == ("done", 1, None)  # type: ignore[union-attr]
    assert metrics.registry.get_sample_value("calora_job_duration_seconds_count", {"outcome": "done"}) == 1
    assert asyncio.run(worker.run_once()) is None


def test_a_failed_attempt_is_retried_after_the_back_off(store: Store) -> None:
    job_id = store.enqueue(spec())
    recorder = Recorder(failures=1)
    config = FAST.model_copy(update={"retry_base_seconds": 30, "retry_max_seconds": 60})
    worker = Worker(store, recorder.hooks(), config, owner="w1")
    assert asyncio.run(worker.run_once()) == "retry"
    job = store.get_job(job_id)
    assert job.status == "queued" and "GitHub unreachable" in (job.last_error or "")  # type: ignore[union-attr]
    assert 25 < job.available_at - time.time() <= 30  # type: ignore[union-attr]
    assert asyncio.run(worker.run_once()) is None  # not due yet
    assert store.claim("w1", 5, now=job.available_at + 1) is not None  # type: ignore[union-attr]


def test_after_the_last_attempt_the_failure_is_concluded_once(store: Store) -> None:
    job_id = store.enqueue(spec())
    recorder = Recorder(failures=99)
    worker = Worker(store, recorder.hooks(), FAST, owner="w1")
    outcomes = [asyncio.run(worker.run_once()) for _ in range(4)]
    assert outcomes == ["retry", "retry", "failed", None]
    assert recorder.runs == [1, 1, 1]
    ((number, reason),) = recorder.concluded
    assert number == 1 and "failed 3 times" in reason and "GitHub unreachable (run 3)" in reason
    job = store.get_job(job_id)
    assert (job.status, job.attempts) == ("failed", 3)  # type: ignore[union-attr]


def test_a_job_whose_worker_died_on_the_last_attempt_is_concluded_not_rerun(store: Store) -> None:
    job_id = store.enqueue(spec(), now=1000.0)
    for attempt in range(3):  # three workers claim it and die without a word
        assert store.claim(f"dead-{attempt}", 1, now=1000.0 + 10 * attempt) is not None
    recorder = Recorder()
    worker = Worker(store, recorder.hooks(), FAST, owner="w4")
    assert asyncio.run(worker.run_once()) == "failed"
    assert recorder.runs == []
    ((_, reason),) = recorder.concluded
    assert "gave up after 3 attempts" in reason and "dead-2" in reason
    assert store.get_job(job_id).status == "failed"  # type: ignore[union-attr]


def test_a_run_over_the_timeout_fails_that_attempt(store: Store) -> None:
    job_id = store.enqueue(spec())
    worker = Worker(store, Recorder(delay=5).hooks(), FAST.model_copy(update={"job_timeout_seconds": 0.1}),
                    owner="w1")
    assert asyncio.run(worker.run_once()) == "retry"
    assert "timed out after 0 s" in (store.get_job(job_id).last_error or "")  # type: ignore[union-attr]


def test_the_lease_is_renewed_while_a_long_job_runs(store: Store) -> None:
    job_id = store.enqueue(spec())
    worker = Worker(store, Recorder(delay=1.0).hooks(), FAST.model_copy(update={"lease_seconds": 0.45}),
                    owner="w1")

    async def run_and_try_to_steal() -> tuple[str | None, bool]:
        task = asyncio.create_task(worker.run_once())
        await asyncio.sleep(0.7)  # past the first lease: only renewals keep the job ours
        stolen = await asyncio.to_thread(store.claim, "thief", 10)
        return await task, stolen is not None

    outcome, stolen = asyncio.run(run_and_try_to_steal())
    assert (outcome, stolen) == ("done", False)
    assert store.get_job(job_id).status == "done"  # type: ignore[union-attr]


def test_a_worker_that_lost_its_lease_cancels_its_run(store: Store) -> None:
    job_id = store.enqueue(spec())
    recorder = Recorder(delay=3)
    worker = Worker(store, recorder.hooks(), FAST.model_copy(update={"lease_seconds": 0.3}), owner="slow")

    async def run_while_another_takes_over() -> str | None:
        task = asyncio.create_task(worker.run_once())
        await asyncio.sleep(0.05)
        with store.engine.begin() as connection:  # as if the lease had expired and another worker claimed it
            connection.exec_driver_sql("UPDATE jobs SET lease_owner = 'other' WHERE id = ?", (job_id,))
        return await asyncio.wait_for(task, 2)

    assert asyncio.run(run_while_another_takes_over()) == "lost_lease"
    job = store.get_job(job_id)
    assert (job.status, job.lease_owner) == ("running", "other")  # type: ignore[union-attr]


def test_the_loop_runs_every_job_concurrently_and_stops(store: Store) -> None:
    for number in range(12):
        store.enqueue(spec(number))
    recorder = Recorder(delay=0.05)
    worker = Worker(store, recorder.hooks(), FAST.model_copy(update={"concurrency": 4}), owner="w1")

    async def run_until_empty() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(worker.run(stop))
        while store.queue_depth()["done"] < 12:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(loop, 5)

    asyncio.run(run_until_empty())
    assert sorted(recorder.runs) == list(range(12))


def test_a_stopping_worker_gives_unfinished_jobs_back_untried(store: Store) -> None:
    job_id = store.enqueue(spec())
    worker = Worker(store, Recorder(delay=60).hooks(), FAST, owner="w1")

    async def start_then_stop() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(worker.run(stop))
        while store.queue_depth()["running"] == 0:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(loop, 5)

    asyncio.run(start_then_stop())
    job = store.get_job(job_id)
    assert (job.status, job.attempts, job.lease_owner) == ("queued", 0, None)  # type: ignore[union-attr]


def test_the_job_runner_is_chosen_by_settings() -> None:
    settings = Settings(webhook_secret="s", job_runner="tests.app.crash_runner:review",
                        job_failure_hook="tests.app.crash_runner:conclude_failure")
    hooks = load_job_hooks(settings)
    assert hooks.run.__name__ == "review" and hooks.conclude_failure.__name__ == "conclude_failure"


@pytest.mark.parametrize(("reference", "message"), [
    ("no_colon", "not module:function"),
    ("app.worker:nothing_here", "no 'nothing_here'"),
    ("app.worker:MAX_ERROR_CHARS", "not callable"),
])
def test_a_bad_runner_reference_is_explained(reference: str, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        import_callable(reference)


def test_a_worker_given_a_loader_claims_nothing_until_loaded_and_loads_once_the_receiver_listens(
    store: Store,
) -> None:
    store.enqueue(spec(1))
    recorder, listening, seen = Recorder(), [False], []

    def load() -> JobHooks:
        seen.append(listening[0])
        time.sleep(0.3)  # the model
        return recorder.hooks()

    worker = Worker(store, load, FAST, owner="w1")

    async def scenario() -> list[str]:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop, load_when=lambda: listening[0]))
        states = []
        await asyncio.sleep(0.2)
        states.append(worker.state)  # not listening yet: nothing loads
        listening[0] = True
        await asyncio.sleep(0.1)
        states.append(worker.state)  # loading: nothing claimed
        assert recorder.runs == [] and store.queue_depth()["queued"] == 1
        while worker.state == "warming":
            await asyncio.sleep(0.01)
        while not recorder.runs:
            await asyncio.sleep(0.01)
        stop.set()
        await task
        return states + [worker.state]

    assert asyncio.run(scenario()) == ["warming", "warming", "ready"]
    assert seen == [True] and recorder.runs == [1]
