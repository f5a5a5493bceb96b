"""What the console reads about review jobs: the store's job rows and their `review_outputs` (read-only).

A job's state, attempts, times and last error come from its job row alone (`app.store.JobRow`, the one
truth); what its review produced (the stored `PipelineRun`, decision, severity counts, each reviewer's
verdict, the stage a running review is at) comes from the job's `review_outputs` row, which the worker's
review writes through `Store` (`app.review_outputs`). A review's id is its job's id.

The console reads through a read-only engine (`read_engine`), so it can never change what it shows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Connection, Engine, Select, create_engine, event, inspect, select

from app.jobs import ReviewJobSpec
from app.review_outputs import ReviewerVerdict
from app.store import JOBS, REVIEW_OUTPUTS
from reviewers.pipeline import PipelineRun
from reviewers.synthesis import Decision

ReviewState = Literal["queued", "running", "done", "failed", "superseded"]
REVIEW_STATES: tuple[ReviewState, ...] = ("queued", "running", "done", "failed")  # what the lists show
DECISIONS: tuple[Decision, ...] = ("block", "revise", "approve", "incomplete")


# --- engine ------------------------------------------------------------------------------------------------------


def read_engine(url: str) -> Engine:
    """An engine the console only reads through: SQLite with `query_only`, PostgreSQL read-only sessions.

    Reads need no write lock, so unlike the store's engine it does not begin with `BEGIN IMMEDIATE`.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url, pool_size=4, max_overflow=4, connect_args={"timeout": 30, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA query_only=ON")
            cursor.close()

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=4,
        max_overflow=4,
        connect_args={"options": "-c default_transaction_read_only=on"},
    )


# --- what the console shows --------------------------------------------------------------------------------------


class ReviewFilter(BaseModel):
    """What the Reviews page and GET /api/reviews may filter on."""

    repo: str | None = Field(default=None, description="owner/name")
    state: ReviewState | None = None
    decision: Decision | None = None
    limit: int = Field(default=50, ge=1, le=500)


class ReviewSummary(BaseModel):
    """One line of the Reviews page: one review job, as its job row and its outputs say."""

    id: int = Field(description="The job's id (a review is its job).")
    owner: str
    repo: str
    pull_number: int
    head_sha: str
    trigger: str
    state: ReviewState
    stage: str | None = None
    attempts: int = 0
    decision: Decision | None = None
    blockers: int = 0
    majors: int = 0
    minors: int = 0
    nits: int = 0
    reviewers: list[ReviewerVerdict] = Field(default_factory=list)
    outcome_status: str | None = None
    error: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = Field(default=None, description="Last attempt, start to finish (or so far).")

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"


class ReviewDetail(ReviewSummary):
    """A review with everything it produced."""

    pipeline: PipelineRun | None = None
    pipeline_problem: str | None = Field(default=None, description="Why a stored run could not be read back.")
    outcome: dict[str, Any] | None = None
    delivery_id: str


# --- reading -----------------------------------------------------------------------------------------------------

_SUMMARY_OUTPUTS = [c for c in REVIEW_OUTPUTS.c if c.name not in ("job_id", "pipeline_json", "outcome_json")]


def _jobs_with_outputs(*outputs: Any) -> Select[Any]:
    return select(JOBS, *outputs).select_from(
        JOBS.outerjoin(REVIEW_OUTPUTS, REVIEW_OUTPUTS.c.job_id == JOBS.c.id)
    )


class ReviewReader:
    """Reads the store's jobs and their review outputs for the console (never writes)."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    @contextmanager
    def _connection(self) -> Iterator[Connection | None]:
        """A connection, or None before the store has created its tables (nothing to show yet)."""
        with self.engine.connect() as connection:
            tables = inspect(connection)
            ready = tables.has_table(JOBS.name) and tables.has_table(REVIEW_OUTPUTS.name)
            yield connection if ready else None

    def list_reviews(self, wanted: ReviewFilter | None = None) -> list[ReviewSummary]:
        """Newest first; superseded jobs (never reviewed) only when asked for by state."""
        wanted = wanted or ReviewFilter()
        query = _jobs_with_outputs(*_SUMMARY_OUTPUTS)
        if wanted.state:
            query = query.where(JOBS.c.status == wanted.state)
        else:
            query = query.where(JOBS.c.status != "superseded")
        if wanted.repo:
            query = query.where(JOBS.c.pr_key.startswith(f"{wanted.repo}#", autoescape=True))
        if wanted.decision:
            query = query.where(REVIEW_OUTPUTS.c.decision == wanted.decision)
        query = query.order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc()).limit(wanted.limit)
        with self._connection() as connection:
            rows = list(connection.execute(query).mappings()) if connection is not None else []
        return [self._summary(row) for row in rows]

    def get_review(self, review_id: int) -> ReviewDetail | None:
        query = _jobs_with_outputs(*_SUMMARY_OUTPUTS, REVIEW_OUTPUTS.c.pipeline_json, REVIEW_OUTPUTS.c.outcome_json)
        with self._connection() as connection:
            row = (
                connection.execute(query.where(JOBS.c.id == review_id)).mappings().first()
                if connection is not None
                else None
            )
        if row is None:
            return None
        pipeline, problem = None, None
        if row["pipeline_json"]:
            try:
                pipeline = PipelineRun.model_validate_json(row["pipeline_json"])
            except ValidationError as exc:
                # Recorded by another version of the pipeline: say so rather than fail the page.
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "(root)"
                problem = (
                    f"the stored run does not match this version's PipelineRun ({exc.error_count()} "
                    f"error(s), first at {where}: {first['msg']}); the raw JSON is in /api/reviews/"
                    f"{review_id}?raw=true"
                )
        return ReviewDetail(
            **self._summary(row).model_dump(),
            pipeline=pipeline,
            pipeline_problem=problem,
            outcome=json.loads(row["outcome_json"]) if row["outcome_json"] else None,
            delivery_id=row["delivery_id"],
        )

    def raw_pipeline(self, review_id: int) -> str | None:
        """The stored PipelineRun JSON as written, for runs this version cannot read."""
        with self._connection() as connection:
            if connection is None:
                return None
            return connection.execute(
                select(REVIEW_OUTPUTS.c.pipeline_json).where(REVIEW_OUTPUTS.c.job_id == review_id)
            ).scalar_one_or_none()

    def repos(self) -> list[str]:
        """Every repository with a review job, for the filter."""
        with self._connection() as connection:
            if connection is None:
                return []
            keys = connection.execute(select(JOBS.c.pr_key).distinct()).scalars().all()
        return sorted({key.rpartition("#")[0] for key in keys})

    def _summary(self, row: Any) -> ReviewSummary:
        """One job row (with its outputs, if any) as the console shows it: the state is the job's status."""
        spec = ReviewJobSpec.model_validate_json(row["spec"])
        state: ReviewState = row["status"]
        started, finished = row["started_at"], row["finished_at"]
        if state == "running" and started is not None:
            duration: float | None = self.clock() - started
        elif state != "queued" and started is not None and finished is not None:
            duration = finished - started
        else:
            duration = None
        return ReviewSummary(
            id=row["id"],
            owner=spec.owner,
            repo=spec.repo,
            pull_number=spec.pull_number,
            head_sha=row["reviewed_head_sha"] or row["head_sha"],
            trigger=row["trigger"],
            state=state,
            stage=row["stage"] if state == "running" else None,
            attempts=row["attempts"],
            decision=row["decision"],
            blockers=row["blockers"] or 0,
            majors=row["majors"] or 0,
            minors=row["minors"] or 0,
            nits=row["nits"] or 0,
            reviewers=[ReviewerVerdict.model_validate(v) for v in json.loads(row["reviewers_json"] or "[]")],
            outcome_status=row["outcome_status"],
            error=row["last_error"] if state in ("queued", "failed") else None,
            created_at=row["created_at"],
            started_at=started,
            finished_at=finished,
            duration_s=duration,
        )
