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
import time

from app.jobs import ReviewJobSpec

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, key TEXT, pid INTEGER, event TEXT, at REAL);
CREATE TABLE IF NOT EXISTS reviews (key TEXT PRIMARY KEY, pid INTEGER, at REAL);
CREATE TABLE IF NOT EXISTS failures (key TEXT, reason TEXT, at REAL);
"""


def job_key(spec: ReviewJobSpec) -> str:
    return f"{spec.delivery_id}#{spec.pull_number}"


def connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(SCHEMA)
    return connection


def _write(statements: list[tuple[str, tuple]]) -> None:
    connection = connect(os.environ["CALORA_CRASH_LEDGER"])
    try:
        connection.execute("BEGIN IMMEDIATE")
        for sql, params in statements:
            connection.execute(sql, params)
        connection.execute("COMMIT")
    finally:
        connection.close()


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
