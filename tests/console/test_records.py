"""What the console reads: the store's job rows (the one truth of a job's state) and their review outputs.

The tests taking `database` run on SQLite and, where CALORA_TEST_POSTGRES_URL is set, on PostgreSQL (in a
scratch schema; read there through the store's engine, as the read-only session option would replace the
schema option).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from seed import ANSWERS_010, review_diff, spec_for
from sqlalchemy import Engine, inspect, text

from app.console.records import ReviewFilter, ReviewReader, read_engine
from app.review_job import ReviewOutcome
from app.review_outputs import ReviewOutputs, count_findings
from app.store import Store, make_engine
from tests.app.test_postgres import POSTGRES_URL, scratch_schema

ON_POSTGRES = pytest.param(
    "postgresql",
    marks=[pytest.mark.postgres,
           pytest.mark.skipif(not POSTGRES_URL, reason="CALORA_TEST_POSTGRES_URL is not set (.ci/run sets it)")],
)


@pytest.fixture(params=["sqlite", ON_POSTGRES])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'calora.sqlite'}"
        Store.from_url(url).close()
        yield url
        return
    with scratch_schema() as url:
        yield url


@pytest.fixture()
def sqlite_database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'calora.sqlite'}"
    Store.from_url(url).close()
    return url


def reader_engine(url: str) -> Engine:
    return read_engine(url) if url.startswith("sqlite") else make_engine(url)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_review_is_read_from_its_job_row_and_its_whole_pipeline_run(database: str) -> None:
    clock = Clock()
    store = Store.from_url(database)
    spec = spec_for("fastapi", "full-stack-fastapi-template", 1496, "3c1f7c4c" * 5, "d-1")
    job_id = store.enqueue(spec, now=clock())
    assert store.claim("w1", lease_seconds=600, now=clock()) is not None
    assert store.record_stage(spec, "asking 2 reviewer request(s)")
    reader = ReviewReader(reader_engine(database), clock=clock)
    [running] = reader.list_reviews()
    assert (running.id, running.state, running.attempts, running.stage, running.decision) == (
        job_id, "running", 1, "asking 2 reviewer request(s)", None)

    run = review_diff("010", ANSWERS_010, "Add created_at")
    clock.now += 38.5
    assert store.record_outputs(spec, ReviewOutputs.of(run, ReviewOutcome(status="reviewed", head_sha=spec.head_sha)))
    assert store.complete(job_id, "w1", now=clock())
    detail = reader.get_review(job_id)
    assert detail is not None and detail.pipeline is not None
    assert detail.state == "done" and detail.stage is None and detail.duration_s == pytest.approx(38.5)
    assert detail.decision == run.result.decision == "revise"
    counts = count_findings(run)
    assert (
        (detail.blockers, detail.majors, detail.minors, detail.nits)
        == (counts.blockers, counts.majors, counts.minors, counts.nits)
        == (0, 1, 1, 2)
    )
    assert detail.pipeline == run  # slices, requests, answers, checks and synthesis survive the round trip
    assert {v.reviewer: v.verdict for v in detail.reviewers} == {"python": "revise", "sql": "revise"}
    assert detail.outcome is not None and detail.outcome["status"] == "reviewed"


@pytest.mark.parametrize("ending", ["complete", "fail"])
def test_the_console_shows_the_job_rows_state_and_attempts_with_no_second_table(database: str, ending: str) -> None:
    """Outputs recorded while running never override the job row: done or failed is the job row's word."""
    store = Store.from_url(database)
    spec = spec_for("acme", "web", 7, "a" * 40, "d-2")
    job_id = store.enqueue(spec)
    store.claim("w1", lease_seconds=600)
    store.record_stage(spec, "started")
    store.retry_later(job_id, "w1", "GitHubError 502: Bad Gateway", available_at=0)
    reader = ReviewReader(reader_engine(database))
    [waiting] = reader.list_reviews()
    assert (waiting.state, waiting.attempts, waiting.stage, waiting.error) == (
        "queued", 1, None, "GitHubError 502: Bad Gateway")
    store.claim("w1", lease_seconds=600)
    store.record_stage(spec, "started")
    if ending == "complete":
        store.complete(job_id, "w1")
    else:
        store.fail(job_id, "w1", "GitHubError 502: Bad Gateway (3 attempts)")
    [summary] = reader.list_reviews()
    want = ("done", None) if ending == "complete" else ("failed", "GitHubError 502: Bad Gateway (3 attempts)")
    assert (summary.state, summary.error, summary.attempts, summary.stage) == (*want, 2, None)
    with make_engine(database).connect() as connection:
        assert not inspect(connection).has_table("reviews")  # no second copy of the state anywhere


def test_a_skipped_run_is_done_without_a_pipeline_and_shows_the_commit_it_looked_at(database: str) -> None:
    store = Store.from_url(database)
    spec = spec_for("acme", "web", 8, "b" * 40, "d-3")
    job_id = store.enqueue(spec)
    store.claim("w1", lease_seconds=600)
    store.record_outputs(spec, ReviewOutputs.of(
        None, ReviewOutcome(status="skipped", reason="draft pull request", head_sha="c" * 40)))
    store.complete(job_id, "w1")
    detail = ReviewReader(reader_engine(database)).get_review(job_id)
    assert detail is not None
    assert (detail.state, detail.pipeline, detail.outcome_status, detail.head_sha) == (
        "done", None, "skipped", "c" * 40)


def test_queued_jobs_are_listed_and_superseded_ones_only_when_asked_for(database: str) -> None:
    store = Store.from_url(database)
    old = spec_for("acme", "web", 9, "1" * 40, "d-4")
    new = spec_for("acme", "web", 9, "2" * 40, "d-5")
    store.enqueue(old, now=1.0)
    store.enqueue(new, now=2.0, supersede=True)
    store.enqueue(spec_for("acme", "api", 3, "3" * 40, "d-6"), now=3.0)
    store.close()
    reader = ReviewReader(reader_engine(database))
    assert [(s.repo, s.head_sha[:1], s.state) for s in reader.list_reviews()] == [
        ("api", "3", "queued"),
        ("web", "2", "queued"),
    ]
    assert [s.head_sha[:1] for s in reader.list_reviews(ReviewFilter(state="superseded"))] == ["1"]


def test_filters_by_repository_state_and_verdict(database: str) -> None:
    store = Store.from_url(database)
    run = review_diff("010", ANSWERS_010, "Add created_at")
    for number, repo in ((1, "web"), (2, "api"), (3, "web_x")):
        spec = spec_for("acme", repo, number, f"{number}" * 40, f"d-{number}")
        store.enqueue(spec)
        store.claim("w1", lease_seconds=600)
        if repo == "web":
            store.record_outputs(spec, ReviewOutputs.of(run, None))
    reader = ReviewReader(reader_engine(database))
    assert [s.repo for s in reader.list_reviews(ReviewFilter(repo="acme/web"))] == ["web"]  # not web_x
    assert [s.repo for s in reader.list_reviews(ReviewFilter(state="running"))] == ["web_x", "api", "web"]
    assert [s.repo for s in reader.list_reviews(ReviewFilter(decision="revise"))] == ["web"]
    assert reader.list_reviews(ReviewFilter(decision="block")) == []
    assert reader.repos() == ["acme/api", "acme/web", "acme/web_x"]


def test_a_filter_with_an_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="state"):
        ReviewFilter(state="exploded")  # type: ignore[arg-type]


def test_outputs_of_a_job_the_store_does_not_hold_are_logged_not_raised(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.from_url(database)
    with caplog.at_level(logging.WARNING, logger="app.store"):
        assert store.record_stage(spec_for("acme", "web", 1, "f" * 40, "d-9"), "started") is False
    assert "no job for acme/web#1" in caplog.text


def test_recording_into_a_broken_database_logs_and_does_not_raise(
    sqlite_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.from_url(sqlite_database)
    spec = spec_for("acme", "web", 1, "f" * 40, "d-9")
    store.enqueue(spec)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE review_outputs")
    with caplog.at_level(logging.ERROR, logger="app.store"):
        assert store.record_stage(spec, "started") is False
    assert "could not record the review of acme/web#1" in caplog.text


def test_the_console_engine_cannot_write(sqlite_database: str) -> None:
    from sqlalchemy.exc import OperationalError

    with read_engine(sqlite_database).connect() as connection, pytest.raises(OperationalError, match="readonly"):
        connection.execute(text("DELETE FROM review_outputs"))


def test_reading_a_database_without_the_tables_gives_nothing(tmp_path: Path) -> None:
    reader = ReviewReader(read_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}"))
    assert reader.list_reviews() == [] and reader.get_review(1) is None and reader.repos() == []


def test_an_older_database_keeps_its_jobs_and_its_console_reviews_move_to_review_outputs(database: str) -> None:
    """A database of the version with the console's own `reviews` table: `create_schema` adopts it."""
    url = database
    store = Store.from_url(url)
    spec = spec_for("acme", "web", 4, "d" * 40, "d-old")
    job_id = store.enqueue(spec, now=10.0)
    store.claim("w1", lease_seconds=600, now=11.0)
    store.complete(job_id, "w1", now=50.0)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE review_outputs")
        connection.exec_driver_sql(
            "CREATE TABLE reviews (id INTEGER PRIMARY KEY, delivery_id VARCHAR(200), pr_key VARCHAR(300), "
            "head_sha VARCHAR(64), state VARCHAR(16), stage TEXT, attempts INTEGER, created_at FLOAT, "
            "started_at FLOAT, finished_at FLOAT, outcome_status VARCHAR(16), outcome_json TEXT, "
            "decision VARCHAR(16), blockers INTEGER, majors INTEGER, minors INTEGER, nits INTEGER, "
            "reviewers_json TEXT, pipeline_json TEXT, pipeline_seconds FLOAT, error TEXT)")
        connection.execute(text(
            "INSERT INTO reviews VALUES (1, 'd-old', 'acme/web#4', :head, 'running', NULL, 9, 10, 11, 50, "
            "'reviewed', :outcome, 'block', 1, 0, 0, 0, :reviewers, NULL, 3.5, NULL)"),
            {"head": "d" * 40, "outcome": '{"status": "reviewed"}', "reviewers": '[{"reviewer": "sql", "verdict": "block"}]'})
    store.close()

    for _ in range(2):  # twice: the second start copies nothing again
        Store.from_url(url).close()
    [summary] = ReviewReader(reader_engine(url)).list_reviews()
    assert (summary.id, summary.state, summary.attempts, summary.decision, summary.blockers) == (
        job_id, "done", 1, "block", 1)  # the job row's state and attempts, the old table's outputs
    assert [v.verdict for v in summary.reviewers] == ["block"]
    with make_engine(url).connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM review_outputs").scalar() == 1
        assert connection.exec_driver_sql("SELECT count(*) FROM reviews").scalar() == 1  # left as it was
