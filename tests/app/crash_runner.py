"""A job runner for the crash tests (CALORA_JOB_RUNNER=tests.app.crash_runner:review).

It stands in for "review the pull request on GitHub": the review's effect is one row in a ledger
(a SQLite file named by CALORA_CRASH_LEDGER), keyed by the job (delivery id and pull request), the
way the real job's effect is keyed by its check run and comment fingerprints. A run that is killed
after its effect and before the queue marks the job done therefore re-runs without a second review.
Every start and finish is also logged, so the tests see which runs a kill interrupted.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time

from app.jobs import ReviewJobSpec

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, key TEXT, pid INTEGER, event TEXT, at REAL);
CREATE TABLE IF NOT EXISTS reviews (key TEXT PRIMARY KEY, pid INTEGER, at REAL);
CREATE TABLE IF NOT EXISTS failures (key TEXT, reason TEXT, at REAL);
"""


def job_key(spec: ReviewJobSpec) -> str:
    return f"{spec.delivery_id}#{spec.pull_number}"


_lock = threading.Lock()
_connection: sqlite3.Connection | None = None


def _ledger() -> sqlite3.Connection:
    """One connection per process (closing SQLite's last connection costs a checkpoint each time)."""
    global _connection
    if _connection is None:
        _connection = sqlite3.connect(os.environ["CALORA_CRASH_LEDGER"], timeout=30, isolation_level=None,
                                      check_same_thread=False)
        _connection.execute("PRAGMA journal_mode=WAL")
        _connection.executescript(SCHEMA)
    return _connection


def _write(statements: list[tuple[str, tuple]]) -> None:
    with _lock:
        connection = _ledger()
        connection.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                connection.execute(sql, params)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


async def review(spec: ReviewJobSpec) -> str:
    key, pid = job_key(spec), os.getpid()
    await asyncio.to_thread(_write, [("INSERT INTO runs (key, pid, event, at) VALUES (?, ?, 'start', ?)",
                                      (key, pid, time.time()))])
    await asyncio.sleep(float(os.environ.get("CALORA_CRASH_DELAY", "0.05")))
    # The effect and its log line in one transaction; the effect happens at most once per job.
    await asyncio.to_thread(_write, [
        ("INSERT INTO runs (key, pid, event, at) VALUES (?, ?, 'finish', ?)", (key, pid, time.time())),
        ("INSERT OR IGNORE INTO reviews (key, pid, at) VALUES (?, ?, ?)", (key, pid, time.time())),
    ])
    return key


async def conclude_failure(spec: ReviewJobSpec, reason: str) -> None:
    await asyncio.to_thread(_write, [("INSERT INTO failures (key, reason, at) VALUES (?, ?, ?)",
                                      (job_key(spec), reason, time.time()))])
