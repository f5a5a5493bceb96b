"""The queue on a real PostgreSQL server (CALORA_TEST_POSTGRES_URL; `.ci/run` starts one).

Each test works in a scratch schema of its own, dropped afterwards, so the URL may name any
database the role can create schemas in. Skipped only where the variable is unset.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.store import Store, claim_statement
from tests.app.crash_harness import run_crash_scenario

# The same store tests as on SQLite, collected here again with this module's PostgreSQL `store` fixture.
from tests.app.test_store import (  # noqa: F401
    test_a_deferred_job_keeps_its_attempt_count_and_waits_until_the_given_time,
    test_a_delivery_is_recorded_and_its_job_queued,
    test_a_late_delivery_of_an_older_push_supersedes_nothing_and_is_itself_superseded,
    test_a_newer_push_supersedes_queued_jobs_of_older_heads,
    test_a_pending_conclusion_is_claimed_when_due_and_kept_until_done,
    test_a_redelivery_is_acknowledged_and_not_queued_again,
    test_a_running_job_is_not_superseded,
    test_an_expired_lease_is_claimed_again_and_the_old_owner_loses_it,
    test_claims_take_the_oldest_due_job_and_hold_it,
    test_concurrent_copies_of_one_delivery_queue_one_job,
    test_concurrent_replays_of_one_request_under_new_delivery_ids_queue_one_job,
    test_installation_events_keep_the_installations_table,
    test_parallel_claims_never_take_one_job_twice,
    test_queue_depth_counts_every_status,
    test_retry_later_and_fail_and_release,
    test_the_owner_renews_its_lease,
)

POSTGRES_URL = os.environ.get("CALORA_TEST_POSTGRES_URL", "")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="CALORA_TEST_POSTGRES_URL is not set (.ci/run sets it)"),
]


@contextmanager
def scratch_schema() -> Iterator[str]:
    """A fresh schema; yields a database URL whose connections use it."""
    schema = f"calora_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture()
def store() -> Iterator[Store]:
    with scratch_schema() as url:
        store = Store.from_url(url)
        yield store
        store.close()


def test_claims_use_skip_locked_on_postgresql(store: Store) -> None:
    compiled = str(claim_statement("w1", 60, 0.0).compile(store.engine))
    assert store.engine.dialect.name == "postgresql"
    assert "FOR UPDATE SKIP LOCKED" in compiled and "RETURNING" in compiled


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_workers_one_killed_mid_review_lose_nothing_and_review_each_once(tmp_path: Path) -> None:
    with scratch_schema() as url:
        report = run_crash_scenario(tmp_path, url, workers=2)
    assert report.kills == 2 and report.interrupted
