"""Kill the App's processes mid-review and check that every delivery is reviewed exactly once.

Used by test_crash.py (SQLite, `calora serve` with its in-process worker, SIGKILLed) and
test_postgres.py (PostgreSQL, `calora serve --no-worker` and two `calora worker`, one SIGKILLed).
`run_crash_scenario`'s review is tests/app/crash_runner.py (a ledger stands in for GitHub);
`run_kill_scenario`'s is the real review job against the fake GitHub (tests/app/scripted_runner.py),
with a slow scripted model load, deliveries paced like GitHub's and kills during the load too.
Both select the runner through CALORA_JOB_RUNNER, so the processes are the real CLI.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.store import Store
from tests.app.fake_github import FakeGitHub
from tests.app.receiver_support import REPO_ROOT, TEST_SECRET, free_port, pull_request_payload, signed_headers


@dataclass
class Delivery:
    delivery_id: str
    number: int
    body: bytes

    @property
    def key(self) -> str:
        return f"{self.delivery_id}#{self.number}"


@dataclass
class Deployment:
    """The App's processes on one queue, started through the real CLI."""

    tmp: Path
    database_url: str
    port: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=REPO_ROOT, env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.processes[name] = process
        return process

    def start_serve(self, *extra: str) -> subprocess.Popen:
        return self.start("serve", "serve", "--host", "127.0.0.1", "--port", str(self.port), *extra)

    def health(self, path: str = "/healthz") -> tuple[int, dict]:
        """(status code, body) of /healthz or /readyz; (0, {}) while nothing listens."""
        try:
            response = httpx.get(f"{self.url}{path}", timeout=2)
        except httpx.TransportError:
            return 0, {}
        return response.status_code, response.json()

    def wait_healthy(self, timeout: float = 180, path: str = "/healthz") -> dict:
        """Wait for a 200 from `path` (/readyz: until the worker is ready); returns its body."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes["serve"].poll() is not None:
                raise AssertionError(f"calora serve exited:\n{self.logs()}")
            status, body = self.health(path)
            if status == 200:
                return body
            time.sleep(0.05)
        raise AssertionError(f"calora serve not healthy after {timeout} s:\n{self.logs()}")

    def kill(self, name: str) -> int:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return process.pid

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(self.tmp.glob("*.log")))


WORKER_CONCURRENCY = 4  # reviews one worker process runs at once in these scenarios

class Ledger:
    """Reads what crash_runner wrote: runs started and finished, and the reviews (the effect)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if not self.path.exists():
            return []
        connection = sqlite3.connect(self.path, timeout=30)
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []
        finally:
            connection.close()

    def review_count(self) -> int:
        rows = self._query("SELECT count(*) FROM reviews")
        return rows[0][0] if rows else 0

    def reviewed_keys(self) -> list[str]:
        return [row[0] for row in self._query("SELECT key FROM reviews")]

    def unfinished_runs(self, pid: int) -> list[str]:
        """Runs `pid` started and never finished."""
        return [row[0] for row in self._query(
            "SELECT key FROM runs s WHERE s.pid = ? AND s.event = 'start' AND NOT EXISTS "
            "(SELECT 1 FROM runs f WHERE f.pid = s.pid AND f.key = s.key AND f.event = 'finish')", (pid,))]

    def finished_runs_per_key(self) -> dict[str, int]:
        return dict(self._query("SELECT key, count(*) FROM runs WHERE event = 'finish' GROUP BY key"))

    def failures(self) -> list[tuple]:
        return self._query("SELECT key, reason FROM failures")


def make_deliveries(count: int) -> list[Delivery]:
    """`count` pull requests opened, each its own delivery (real payload, renumbered)."""
    deliveries = []
    for number in range(1, count + 1):
        payload = pull_request_payload(number, uuid.uuid4().hex + uuid.uuid4().hex[:8])
        deliveries.append(Delivery(str(uuid.uuid4()), number, json.dumps(payload).encode()))
    return deliveries


class Sender(threading.Thread):
    """Sends every delivery in order, redelivering every fifth one's predecessor-but-two, like GitHub's
    "Redeliver"; a delivery that got no answer (the server was down) is sent again until answered."""

    def __init__(self, url: str, deliveries: list[Delivery]) -> None:
        super().__init__(daemon=True)
        self.url, self.deliveries = url, deliveries
        self.answers: list[tuple[str, bool, int, str, int]] = []  # id, redelivery, status, status text, tries
        self.error: BaseException | None = None

    def send(self, client: httpx.Client, delivery: Delivery, redelivery: bool) -> None:
        headers = signed_headers(delivery.body, "pull_request", delivery.delivery_id, TEST_SECRET)
        give_up, tries = time.monotonic() + 240, 0
        while time.monotonic() < give_up:
            tries += 1
            try:
                response = client.post(f"{self.url}/webhooks/github", content=delivery.body, headers=headers)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            self.answers.append((delivery.delivery_id, redelivery, response.status_code,
                                 response.json().get("status", ""), tries))
            return
        raise AssertionError(f"delivery {delivery.delivery_id} never answered")

    def run(self) -> None:
        try:
            with httpx.Client(timeout=10) as client:
                for index, delivery in enumerate(self.deliveries):
                    self.send(client, delivery, redelivery=False)
                    if index % 5 == 4:
                        self.send(client, self.deliveries[index - 3], redelivery=True)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            self.error = exc


def deployment_env(tmp: Path, database_url: str, ledger: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CALORA_")}
    env.update({
        "PYTHONPATH": str(REPO_ROOT),
        "CALORA_WEBHOOK_SECRET": TEST_SECRET.decode(),
        "CALORA_DATABASE_URL": database_url,
        "CALORA_JOB_RUNNER": "tests.app.crash_runner:review",
        "CALORA_JOB_FAILURE_HOOK": "tests.app.crash_runner:conclude_failure",
        "CALORA_CRASH_LEDGER": str(ledger),
        "CALORA_CRASH_DELAY": "0.05",
        # Long enough that a renewal delayed by a loaded CI machine does not hand a live run to another
        # worker (that overlap is the at-least-once window of any lease); short enough to recover kills.
        "CALORA_LEASE_SECONDS": "4",
        "CALORA_MAX_ATTEMPTS": "10",
        "CALORA_RETRY_BASE_SECONDS": "0.1",
        "CALORA_POLL_SECONDS": "0.05",
        "CALORA_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
    })
    return env


@dataclass
class CrashReport:
    kills: int
    interrupted: list[str]


def run_crash_scenario(tmp: Path, database_url: str, workers: int, count: int = 200,
                       kill_after: tuple[int, ...] = (40, 120), timeout: float = 400) -> CrashReport:
    """Deliver `count` pull requests while killing a worker mid-review at each `kill_after` reviews.

    workers == 0: `calora serve` with its in-process worker is the process killed (and restarted);
    workers >= 1: `calora serve --no-worker` plus that many `calora worker`; a worker with a review in
    flight is killed (and restarted).
    """
    ledger = Ledger(tmp / "ledger.sqlite")
    deployment = Deployment(tmp, database_url, free_port(), deployment_env(tmp, database_url, ledger.path))
    deliveries = make_deliveries(count)
    store = Store.from_url(database_url)
    interrupted: list[str] = []
    try:
        if workers == 0:
            deployment.start_serve()
            victims = ["serve"]
        else:
            deployment.start_serve("--no-worker")
            victims = [f"worker-{index}" for index in range(1, workers + 1)]
            for name in victims:
                deployment.start(name, "worker")
        deployment.wait_healthy()
        began = time.monotonic()
        sender = Sender(deployment.url, deliveries)
        sender.start()
        deadline = time.monotonic() + timeout
        for threshold in kill_after:
            victim = None
            while victim is None:
                assert time.monotonic() < deadline, f"no review in flight to kill:\n{deployment.logs()}"
                if ledger.review_count() >= threshold:
                    victim = next((name for name in victims
                                   if ledger.unfinished_runs(deployment.processes[name].pid)), None)
                time.sleep(0.005)
            pid = deployment.kill(victim)
            interrupted += ledger.unfinished_runs(pid)
            if victim == "serve":
                deployment.start_serve()
                deployment.wait_healthy()
            else:
                deployment.start(victim, "worker")
        sender.join(timeout=max(1.0, deadline - time.monotonic()))
        assert not sender.is_alive() and sender.error is None, f"sender: {sender.error}\n{deployment.logs()}"
        while store.queue_depth()["done"] < count:
            assert time.monotonic() < deadline, (f"not all done: {store.queue_depth()}\n{deployment.logs()}")
            time.sleep(0.1)
        print(f"{count} deliveries reviewed in {time.monotonic() - began:.1f} s with {len(kill_after)} kills")
    finally:
        deployment.stop_all()

    # Every delivery was answered 2xx; a first delivery is queued (or, if its answer was lost in a kill,
    # found as a duplicate when sent again); a redelivery is a duplicate.
    assert len(sender.answers) == count + count // 5
    for delivery_id, redelivery, status, text, tries in sender.answers:
        if redelivery or tries > 1 and text == "duplicate":
            assert (status, text) == (200, "duplicate"), delivery_id
        else:
            assert (status, text) == (202, "queued"), delivery_id

    # No lost job, no duplicate job, no duplicate review.
    jobs = store.list_jobs(limit=10 * count)
    assert len(jobs) == count and {job.status for job in jobs} == {"done"}
    assert sorted(job.delivery_id for job in jobs) == sorted(d.delivery_id for d in deliveries)
    assert len(store.list_deliveries(limit=10 * count)) == count
    reviewed = ledger.reviewed_keys()
    assert sorted(reviewed) == sorted(d.key for d in deliveries)
    assert ledger.failures() == []

    # The kills hit reviews in flight, and those jobs ran again after their lease expired.
    assert interrupted, "no kill interrupted a review"
    by_key = {f"{job.delivery_id}#{job.pr_key.rsplit('#', 1)[1]}": job for job in jobs}
    for key in interrupted:
        assert by_key[key].expired_leases >= 1 and by_key[key].attempts >= 2, by_key[key]
    # A run can finish twice only if killed between its effect and `done` (the effect still counts once):
    # at most the runs a killed process had in flight, WORKER_CONCURRENCY each.
    finished_twice = [key for key, runs in ledger.finished_runs_per_key().items() if runs > 1]
    assert len(finished_twice) <= len(kill_after) * WORKER_CONCURRENCY, finished_twice
    store.close()
    return CrashReport(kills=len(kill_after), interrupted=interrupted)


# --- the real review job against the fake GitHub, with a slow model load -----------------------------------

OWNER, REPO = "Codertocat", "Hello-World"  # the repository of the real pull_request payloads
KILL_LEASE_SECONDS = 4.0


def review_env(tmp: Path, database_url: str, fake: FakeGitHub, private_key: str, load_seconds: float) -> dict[str, str]:
    """`calora serve` running the real review job (tests/app/scripted_runner.py) against `fake`."""
    key_file = tmp / "app.pem"
    key_file.write_text(private_key)
    env = {key: value for key, value in os.environ.items() if not key.startswith("CALORA_")}
    env.update({
        "PYTHONPATH": str(REPO_ROOT),
        "CALORA_WEBHOOK_SECRET": TEST_SECRET.decode(),
        "CALORA_DATABASE_URL": database_url,
        "CALORA_APP_ID": str(fake.app_id),
        "CALORA_PRIVATE_KEY_PATH": str(key_file),
        "CALORA_BOT_LOGIN": fake.bot_login,
        "CALORA_GITHUB_API_URL": fake.base_url,
        "CALORA_JOB_RUNNER": "tests.app.scripted_runner:review",
        "CALORA_JOB_FAILURE_HOOK": "tests.app.scripted_runner:conclude_failure",
        "CALORA_TEST_LOAD_SECONDS": str(load_seconds),
        "CALORA_LEASE_SECONDS": str(KILL_LEASE_SECONDS),
        "CALORA_MAX_ATTEMPTS": "10",
        "CALORA_RETRY_BASE_SECONDS": "0.1",
        "CALORA_POLL_SECONDS": "0.05",
        "CALORA_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
    })
    return env


@dataclass
class Answer:
    delivery_id: str
    number: int
    replay: bool
    first_try: float  # time.monotonic() of the first attempt to send it
    answered: float
    status: int
    text: str


class PacedSender(threading.Thread):
    """Sends delivery i at `start + i / rate` (GitHub's pace, not as fast as possible), each until it is
    answered; after every tenth, the body of an earlier one again under a new delivery id (a replay)."""

    def __init__(self, url: str, deliveries: list[Delivery], rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.deliveries, self.rate = url, deliveries, rate
        self.answers: list[Answer] = []
        self.error: BaseException | None = None

    def send(self, client: httpx.Client, delivery: Delivery, replay: bool) -> None:
        headers = signed_headers(delivery.body, "pull_request", delivery.delivery_id, TEST_SECRET)
        first_try = time.monotonic()
        while time.monotonic() < first_try + 120:
            try:
                response = client.post(f"{self.url}/webhooks/github", content=delivery.body, headers=headers)
            except httpx.TransportError:  # nothing listens (killed, starting): GitHub's redelivery, by hand
                time.sleep(0.02)
                continue
            self.answers.append(Answer(delivery.delivery_id, delivery.number, replay, first_try, time.monotonic(),
                                       response.status_code, response.json().get("status", "")))
            return
        raise AssertionError(f"delivery {delivery.delivery_id} never answered")

    def run(self) -> None:
        try:
            start = time.monotonic()
            with httpx.Client(timeout=10) as client:
                for index, delivery in enumerate(self.deliveries):
                    time.sleep(max(0.0, start + index / self.rate - time.monotonic()))
                    self.send(client, delivery, replay=False)
                    if index % 10 == 9:
                        earlier = self.deliveries[index - 5]
                        self.send(client, Delivery(str(uuid.uuid4()), earlier.number, earlier.body), replay=True)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            self.error = exc


@dataclass
class KillReport:
    starts: list[float]  # time.monotonic() of each `calora serve` process start
    first_answers: list[float | None]  # seconds from each start to its first 2xx
    killed_while_warming: int
    killed_while_sending: int  # kills mid-review that came while deliveries were still being sent
    reviews: int


def run_kill_scenario(tmp: Path, fake: FakeGitHub, private_key: str, diff: str, count: int = 200,
                      rate: float = 10.0, load_seconds: float = 2.0, kill_at: tuple[float, ...] = (0.25, 0.5),
                      timeout: float = 400) -> KillReport:
    """`calora serve` killed (-9) while its model loads, then once `kill_at` of the `count` deliveries (sent
    at `rate` a second) are answered and the process has posted a review; every start is timed to its
    first 2xx."""
    database_url = f"sqlite:///{tmp / 'queue.sqlite'}"
    deployment = Deployment(tmp, database_url, free_port(), review_env(tmp, database_url, fake, private_key,
                                                                       load_seconds))
    deliveries = []
    for number in range(1, count + 1):
        head = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        fake.add_pull(OWNER, REPO, number, diff, head_sha=head)
        body = json.dumps(pull_request_payload(number, head)).encode()
        deliveries.append(Delivery(str(uuid.uuid4()), number, body))
    sender = PacedSender(deployment.url, deliveries, rate)
    store = Store.from_url(database_url)
    starts: list[float] = []
    killed_while_warming = killed_while_sending = 0

    def start() -> None:
        starts.append(time.monotonic())
        deployment.start_serve()

    deadline = time.monotonic() + timeout
    try:
        start()
        sender.start()
        # The first process dies in the middle of its model load, with deliveries already queued.
        listening_by = time.monotonic() + 60
        while deployment.health()[1].get("status") != "warming" or not sender.answers:
            assert time.monotonic() < listening_by and deployment.processes["serve"].poll() is None, (
                f"calora serve did not take deliveries while its model loaded:\n{deployment.logs()}")
            time.sleep(0.02)
        time.sleep(min(1.0, load_seconds / 3))
        status, body = deployment.health()
        assert body.get("status") == "warming", (status, body)
        deployment.kill("serve")
        killed_while_warming += 1
        start()
        # Then twice while deliveries keep coming and this process has reviews running.
        for share in kill_at:
            while len(sender.answers) < share * count or not store.queue_depth()["running"] or (
                    deployment.health()[1].get("worker") != "ok"):
                assert time.monotonic() < deadline, f"{len(fake.reviews)} reviews:\n{deployment.logs()}"
                time.sleep(0.01)
            killed_while_sending += sender.is_alive()
            deployment.kill("serve")
            start()
        sender.join(timeout=max(1.0, deadline - time.monotonic()))
        assert not sender.is_alive() and sender.error is None, f"sender: {sender.error}\n{deployment.logs()}"
        while store.queue_depth()["done"] < count:
            assert time.monotonic() < deadline, f"not all done: {store.queue_depth()}\n{deployment.logs()}"
            time.sleep(0.1)
        jobs = store.list_jobs(limit=10 * count)
    finally:
        deployment.stop_all()
        store.close()

    first_answers: list[float | None] = []  # None: nothing was sent to that process (the sender had finished)
    for index, started in enumerate(starts):
        ends = starts[index + 1] if index + 1 < len(starts) else float("inf")
        answered = [a.answered for a in sender.answers if started <= a.answered < ends]
        first_answers.append(min(answered) - started if answered else None)

    # Every delivery answered 2xx: a first delivery queued (or found already recorded when its answer was
    # lost in a kill and it was sent again), a replay under a new delivery id acknowledged and not queued.
    assert len(sender.answers) == count + count // 10
    for answer in sender.answers:
        if answer.replay:
            assert (answer.status, answer.text) == (200, "duplicate"), answer
        else:
            assert (answer.status, answer.text) in ((202, "queued"), (200, "duplicate")), answer

    # One job per pull request, done; on the fake GitHub exactly one review per pull request, and no check
    # run left in progress (a killed run's check run is reused by the next attempt).
    assert len(jobs) == count and {job.status for job in jobs} == {"done"}, [j for j in jobs if j.status != "done"]
    reviews_per_pull: dict[int, int] = {}
    for review in fake.reviews:
        reviews_per_pull[review["pr"][2]] = reviews_per_pull.get(review["pr"][2], 0) + 1
    assert reviews_per_pull == {number: 1 for number in range(1, count + 1)}
    runs = list(fake.check_runs.values())
    assert {run["head_sha"] for run in runs if run["status"] == "completed"} == {
        pull.head_sha for pull in fake.repo(OWNER, REPO).pulls.values()}
    assert [run for run in runs if run["status"] != "completed"] == []
    assert any(job.expired_leases for job in jobs), "no kill interrupted a review"
    return KillReport(starts=starts, first_answers=first_answers, killed_while_warming=killed_while_warming,
                      killed_while_sending=killed_while_sending, reviews=len(fake.reviews))
