"""The review records: what the worker writes through ReviewRecorder and what the console reads back."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from seed import ANSWERS_010, review_diff, spec_for

from app.console.records import (
    REVIEWS,
    ReviewFilter,
    ReviewReader,
    ReviewRecorder,
    count_findings,
    derive_state,
    read_engine,
)
from app.review_job import ReviewOutcome
from app.store import Store


@pytest.fixture()
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'calora.sqlite'}"
    Store.from_url(url).close()
    return url


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_review_is_recorded_from_start_to_finish_with_its_whole_pipeline_run(database: str) -> None:
    clock = Clock()
    recorder = ReviewRecorder.from_url(database, clock=clock)
    spec = spec_for("fastapi", "full-stack-fastapi-template", 1496, "3c1f7c4c" * 5, "d-1")
    review_id = recorder.started(spec)
    assert review_id is not None
    reader = ReviewReader(read_engine(database), clock=clock)
    [running] = reader.list_reviews()
    assert (running.state, running.attempts, running.decision) == ("running", 1, None)

    run = review_diff("010", ANSWERS_010, "Add created_at")
    clock.now += 38.5
    assert recorder.finished(spec, run, ReviewOutcome(status="reviewed", head_sha=spec.head_sha)) == review_id
    detail = reader.get_review(review_id)
    assert detail is not None and detail.pipeline is not None
    assert detail.state == "done" and detail.duration_s == pytest.approx(38.5)
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


def test_each_attempt_is_counted_and_a_failure_keeps_its_reason(database: str) -> None:
    recorder = ReviewRecorder.from_url(database)
    spec = spec_for("acme", "web", 7, "a" * 40, "d-2")
    first = recorder.started(spec)
    assert recorder.started(spec) == first  # a retry updates the same review
    recorder.failed(spec, "GitHubError 502: Bad Gateway")
    [summary] = ReviewReader(read_engine(database)).list_reviews()
    assert (summary.state, summary.attempts, summary.error) == ("failed", 2, "GitHubError 502: Bad Gateway")


def test_a_skipped_run_is_done_without_a_pipeline(database: str) -> None:
    recorder = ReviewRecorder.from_url(database)
    spec = spec_for("acme", "web", 8, "b" * 40, "d-3")
    review_id = recorder.started(spec)
    recorder.finished(
        spec, None, ReviewOutcome(status="skipped", reason="draft pull request", head_sha="c" * 40)
    )
    detail = ReviewReader(read_engine(database)).get_review(review_id or 0)
    assert detail is not None
    assert (detail.state, detail.pipeline, detail.outcome_status, detail.head_sha) == (
        "done",
        None,
        "skipped",
        "c" * 40,
    )


@pytest.mark.parametrize(
    ("record", "job", "shown"),
    [
        (None, "queued", "queued"),
        (None, "running", "running"),
        (None, "superseded", None),
        ("running", "running", "running"),
        ("running", "queued", "queued"),  # the attempt failed; the job waits for its retry
        ("running", "failed", "failed"),  # the last attempt failed and nothing recorded it
        ("running", None, "running"),
        ("done", "done", "done"),
        ("failed", "failed", "failed"),
    ],
)
def test_the_state_shown_comes_from_the_record_and_the_job(
    record: str | None, job: str | None, shown: str | None
) -> None:
    assert derive_state(record, job) == shown


def test_queued_jobs_without_a_record_are_listed_and_superseded_ones_are_not(database: str) -> None:
    store = Store.from_url(database)
    old = spec_for("acme", "web", 9, "1" * 40, "d-4")
    new = spec_for("acme", "web", 9, "2" * 40, "d-5")
    store.enqueue(old)
    store.enqueue(new, supersede=True)
    other = spec_for("acme", "api", 3, "3" * 40, "d-6")
    store.enqueue(other)
    store.close()
    listed = ReviewReader(read_engine(database)).list_reviews()
    assert [(s.repo, s.head_sha[:1], s.state, s.id) for s in listed] == [
        ("api", "3", "queued", None),
        ("web", "2", "queued", None),
    ]


def test_filters_by_repository_state_and_verdict(database: str) -> None:
    recorder = ReviewRecorder.from_url(database)
    run = review_diff("010", ANSWERS_010, "Add created_at")
    for number, repo in ((1, "web"), (2, "api")):
        spec = spec_for("acme", repo, number, f"{number}" * 40, f"d-{number}")
        recorder.started(spec)
        if repo == "web":
            recorder.finished(spec, run, None)
    reader = ReviewReader(read_engine(database))
    assert [s.repo for s in reader.list_reviews(ReviewFilter(repo="acme/web"))] == ["web"]
    assert [s.repo for s in reader.list_reviews(ReviewFilter(state="running"))] == ["api"]
    assert [s.repo for s in reader.list_reviews(ReviewFilter(decision="revise"))] == ["web"]
    assert reader.list_reviews(ReviewFilter(decision="block")) == []
    assert reader.repos() == ["acme/api", "acme/web"]


def test_a_filter_with_an_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="state"):
        ReviewFilter(state="exploded")  # type: ignore[arg-type]


def test_recording_into_a_broken_database_logs_and_does_not_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'calora.sqlite'}"
    recorder = ReviewRecorder.from_url(url)
    with recorder.engine.begin() as connection:
        connection.execute(REVIEWS.delete())
        connection.exec_driver_sql("DROP TABLE reviews")
    spec = spec_for("acme", "web", 1, "f" * 40, "d-9")
    with caplog.at_level(logging.ERROR, logger="app.console.records"):
        assert recorder.started(spec) is None
    assert "could not record the review of acme/web#1" in caplog.text


def test_the_console_engine_cannot_write(database: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    ReviewRecorder.from_url(database).close()
    with read_engine(database).connect() as connection, pytest.raises(OperationalError, match="readonly"):
        connection.execute(text("DELETE FROM reviews"))


def test_reading_a_database_without_the_tables_gives_nothing(tmp_path: Path) -> None:
    reader = ReviewReader(read_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}"))
    assert reader.list_reviews() == [] and reader.get_review(1) is None and reader.repos() == []
