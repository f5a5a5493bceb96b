"""The console's record of every review run: a `reviews` table beside the store's job queue.

The worker writes one row per review job (keyed like the job: delivery id + pull request) through
`ReviewRecorder`: `started` when an attempt begins, `finished` with the whole `PipelineRun` (slices,
each reviewer's answer or error, check evidence, synthesis) and the job's `ReviewOutcome`, `failed`
after the last failed attempt. The console reads it back through `ReviewReader`, merged with the
store's `jobs` table so that queued jobs, retries and jobs that died show their real state.

The table has its own SQLAlchemy metadata (not `app.store.Base`), on the same database URL as the
store; the engine for writes is `app.store.make_engine`'s (WAL, busy timeout, `BEGIN IMMEDIATE` on
SQLite), the console's reads use a read-only engine (`read_engine`).

Recording never breaks a review: a database error is logged and the method returns None.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.jobs import ReviewJobSpec
from reviewers.contract import Severity
from reviewers.pipeline import PipelineRun
from reviewers.synthesis import Decision

if TYPE_CHECKING:
    from app.review_job import ReviewOutcome

log = logging.getLogger(__name__)

ReviewState = Literal["queued", "running", "done", "failed"]
REVIEW_STATES: tuple[ReviewState, ...] = ("queued", "running", "done", "failed")
DECISIONS: tuple[Decision, ...] = ("block", "revise", "approve", "incomplete")

METADATA = MetaData()

REVIEWS = Table(
    "reviews",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(200), nullable=False),
    Column("pr_key", String(300), nullable=False),
    Column("installation_id", BigInteger, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("repo", String(200), nullable=False),
    Column("pull_number", Integer, nullable=False),
    Column("head_sha", String(64), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("stage", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("outcome_status", String(16)),
    Column("outcome_json", Text),
    Column("decision", String(16)),
    Column("blockers", Integer, nullable=False, default=0),
    Column("majors", Integer, nullable=False, default=0),
    Column("minors", Integer, nullable=False, default=0),
    Column("nits", Integer, nullable=False, default=0),
    Column("reviewers_json", Text, nullable=False, default="[]"),
    Column("pipeline_json", Text),
    Column("pipeline_seconds", Float),
    Column("error", Text),
    UniqueConstraint("delivery_id", "pr_key", name="uq_reviews_delivery_pr"),
    Index("ix_reviews_created", "created_at"),
    Index("ix_reviews_repo", "owner", "repo"),
)

MAX_ERROR_CHARS = 4000


# --- what the records hold ---------------------------------------------------------------------------------------


class ReviewerVerdict(BaseModel):
    """One reviewer's part in one review, small enough to keep beside the row (the reviewer grid)."""

    reviewer: str
    verdict: str | None = Field(
        default=None, description="approve | revise | block; None when it never answered."
    )
    status: str = Field(default="ok", description="ok | partial | error (as in the synthesis).")
    findings: int = 0
    slices: int = 0


class FindingCounts(BaseModel):
    """Merged findings per severity (nits are the collapsed ones)."""

    blockers: int = 0
    majors: int = 0
    minors: int = 0
    nits: int = 0


def count_findings(run: PipelineRun) -> FindingCounts:
    """Severity counts of the synthesized review."""
    findings = run.result.findings
    return FindingCounts(
        blockers=sum(1 for f in findings if f.severity is Severity.blocker),
        majors=sum(1 for f in findings if f.severity is Severity.major),
        minors=sum(1 for f in findings if f.severity is Severity.minor),
        nits=len(run.result.nits),
    )


def reviewer_verdicts(run: PipelineRun) -> list[ReviewerVerdict]:
    return [
        ReviewerVerdict(
            reviewer=r.reviewer,
            verdict=r.verdict.value if r.verdict else None,
            status=r.status,
            findings=r.findings,
            slices=r.slices,
        )
        for r in run.result.reviewers
    ]


# --- engines -----------------------------------------------------------------------------------------------------


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


def create_reviews_table(engine: Engine) -> None:
    METADATA.create_all(engine)


# --- writing -----------------------------------------------------------------------------------------------------


class ReviewRecorder:
    """Writes the review records; each method is one short transaction and never raises on a database error."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    @classmethod
    def from_url(
        cls, url: str, create: bool = True, clock: Callable[[], float] = time.time
    ) -> ReviewRecorder:
        from app.store import make_engine

        recorder = cls(make_engine(url), clock=clock)
        if create:
            create_reviews_table(recorder.engine)
        return recorder

    def close(self) -> None:
        self.engine.dispose()

    def started(self, spec: ReviewJobSpec) -> int | None:
        """An attempt began: the row is running (created on the first attempt, counted on each)."""
        now = self.clock()
        return self._upsert(
            spec,
            lambda row: {
                "state": "running",
                "started_at": now,
                "finished_at": None,
                "error": None,
                "stage": "started",
                "attempts": (row["attempts"] if row else 0) + 1,
            },
        )

    def stage(self, spec: ReviewJobSpec, text: str) -> int | None:
        """What a running review is doing now (shown live): e.g. 'asking 5 reviewer requests'."""
        return self._upsert(spec, lambda _row: {"stage": text[:500]})

    def finished(
        self, spec: ReviewJobSpec, run: PipelineRun | None, outcome: ReviewOutcome | BaseModel | None
    ) -> int | None:
        """The attempt ended: with a PipelineRun when it reviewed, without one when it skipped (draft, stale...)."""
        now = self.clock()
        values: dict[str, Any] = {"state": "done", "finished_at": now, "stage": None, "error": None}
        if outcome is not None:
            values["outcome_json"] = outcome.model_dump_json()
            values["outcome_status"] = str(getattr(outcome, "status", "") or "")[:16] or None
            if getattr(outcome, "head_sha", ""):
                values["head_sha"] = outcome.head_sha  # type: ignore[union-attr]
        if run is not None:
            counts = count_findings(run)
            values.update(
                pipeline_json=run.model_dump_json(),
                pipeline_seconds=run.seconds,
                decision=run.result.decision,
                reviewers_json=json.dumps([v.model_dump() for v in reviewer_verdicts(run)]),
                **counts.model_dump(),
            )
        return self._upsert(
            spec, lambda row: {**values, **({} if row else {"started_at": now, "attempts": 1})}
        )

    def failed(self, spec: ReviewJobSpec, reason: str) -> int | None:
        """The job failed for good (after its last attempt)."""
        now = self.clock()
        return self._upsert(
            spec,
            lambda _row: {
                "state": "failed",
                "finished_at": now,
                "stage": None,
                "error": reason[:MAX_ERROR_CHARS],
            },
        )

    def _upsert(self, spec: ReviewJobSpec, values_for: Callable[[Any], dict[str, Any]]) -> int | None:
        key = (REVIEWS.c.delivery_id == spec.delivery_id) & (REVIEWS.c.pr_key == spec.pr_key)
        for attempt in range(2):
            try:
                with self.engine.begin() as connection:
                    row = connection.execute(select(REVIEWS).where(key)).mappings().first()
                    values = values_for(row)
                    if row is not None:
                        connection.execute(update(REVIEWS).where(REVIEWS.c.id == row["id"]).values(**values))
                        return int(row["id"])
                    base = {
                        "delivery_id": spec.delivery_id,
                        "pr_key": spec.pr_key,
                        "installation_id": spec.installation_id,
                        "owner": spec.owner,
                        "repo": spec.repo,
                        "pull_number": spec.pull_number,
                        "head_sha": spec.head_sha,
                        "trigger": spec.trigger,
                        "created_at": self.clock(),
                        "attempts": 0,
                        "state": "queued",
                        "reviewers_json": "[]",
                    }
                    result = connection.execute(
                        insert(REVIEWS).values(**{**base, **values}).returning(REVIEWS.c.id)
                    )
                    return int(result.scalar_one())
            except IntegrityError:
                if attempt == 0:
                    continue  # another process inserted the same review first: update theirs
                log.exception("could not record the review of %s@%s", spec.pr_key, spec.head_sha[:7])
                return None
            except SQLAlchemyError:
                log.exception(
                    "could not record the review of %s@%s (the review itself goes on)",
                    spec.pr_key,
                    spec.head_sha[:7],
                )
                return None
        return None


# --- reading -----------------------------------------------------------------------------------------------------


class ReviewFilter(BaseModel):
    """What the Reviews page and GET /api/reviews may filter on."""

    repo: str | None = Field(default=None, description="owner/name")
    state: ReviewState | None = None
    decision: Decision | None = None
    limit: int = Field(default=50, ge=1, le=500)


class ReviewSummary(BaseModel):
    """One line of the Reviews page: a recorded review, or a job that has no record yet (queued)."""

    id: int | None = Field(description="The review record's id; None for a job the worker has not started.")
    job_id: int | None = None
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


def derive_state(record_state: str | None, job_status: str | None) -> ReviewState | None:
    """The state to show from the record and the job row; None hides it (a superseded job never ran).

    The job row is the truth for what happens next: a running record whose job went back to the queue is
    waiting for a retry, and one whose job failed for good failed even if no `failed` call recorded it.
    """
    if job_status == "superseded" and record_state is None:
        return None
    if record_state in (None, "queued"):
        return {"queued": "queued", "running": "running", "done": "done", "failed": "failed"}.get(
            job_status or "queued"
        )  # type: ignore[return-value]
    if record_state == "running" and job_status == "queued":
        return "queued"
    if record_state == "running" and job_status == "failed":
        return "failed"
    return record_state  # type: ignore[return-value]


class ReviewReader:
    """Reads the review records and the store's jobs for the console (never writes)."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    def _has_table(self, connection: Connection, name: str) -> bool:
        return inspect(connection).has_table(name)

    def list_reviews(self, wanted: ReviewFilter | None = None) -> list[ReviewSummary]:
        """Newest first: recorded reviews, merged with the queue's jobs (state from both)."""
        from app.store import JOBS

        wanted = wanted or ReviewFilter()
        fetch = wanted.limit * 2 + 20
        with self._connection() as connection:
            records: list[Any] = []
            jobs: list[Any] = []
            if self._has_table(connection, REVIEWS.name):
                query = select(*[c for c in REVIEWS.c if c.name not in ("pipeline_json", "outcome_json")])
                if wanted.repo:
                    owner, _, name = wanted.repo.partition("/")
                    query = query.where(REVIEWS.c.owner == owner, REVIEWS.c.repo == name)
                if wanted.decision:
                    query = query.where(REVIEWS.c.decision == wanted.decision)
                records = list(
                    connection.execute(query.order_by(REVIEWS.c.created_at.desc()).limit(fetch)).mappings()
                )
            if self._has_table(connection, JOBS.name) and wanted.decision is None:
                query = select(JOBS).where(JOBS.c.status != "superseded")
                if wanted.repo:
                    query = query.where(JOBS.c.pr_key.like(f"{wanted.repo}#%"))
                jobs = list(
                    connection.execute(query.order_by(JOBS.c.created_at.desc()).limit(fetch)).mappings()
                )
            known_keys = {(r["delivery_id"], r["pr_key"]) for r in records}
            extra_jobs = {}
            if records and self._has_table(connection, JOBS.name):
                # Jobs of the records that fell outside the recent-jobs window still give their status.
                missing = [
                    r["delivery_id"]
                    for r in records
                    if (r["delivery_id"], r["pr_key"]) not in {(j["delivery_id"], j["pr_key"]) for j in jobs}
                ]
                if missing:
                    for row in connection.execute(
                        select(JOBS).where(JOBS.c.delivery_id.in_(missing))
                    ).mappings():
                        extra_jobs[(row["delivery_id"], row["pr_key"])] = row
        jobs_by_key = {(j["delivery_id"], j["pr_key"]): j for j in jobs} | extra_jobs
        out: list[ReviewSummary] = []
        for record in records:
            summary = self._summary(record, jobs_by_key.get((record["delivery_id"], record["pr_key"])))
            if summary is not None:
                out.append(summary)
        for job in jobs:
            if (job["delivery_id"], job["pr_key"]) in known_keys:
                continue
            summary = self._job_summary(job)
            if summary is not None:
                out.append(summary)
        if wanted.state:
            out = [s for s in out if s.state == wanted.state]
        out.sort(key=lambda s: s.created_at, reverse=True)
        return out[: wanted.limit]

    def get_review(self, review_id: int) -> ReviewDetail | None:
        from app.store import JOBS

        with self._connection() as connection:
            if not self._has_table(connection, REVIEWS.name):
                return None
            record = connection.execute(select(REVIEWS).where(REVIEWS.c.id == review_id)).mappings().first()
            if record is None:
                return None
            job = None
            if self._has_table(connection, JOBS.name):
                job = (
                    connection.execute(
                        select(JOBS).where(
                            JOBS.c.delivery_id == record["delivery_id"], JOBS.c.pr_key == record["pr_key"]
                        )
                    )
                    .mappings()
                    .first()
                )
        summary = self._summary(record, job, hide_superseded=False)
        assert summary is not None
        pipeline, problem = None, None
        if record["pipeline_json"]:
            try:
                pipeline = PipelineRun.model_validate_json(record["pipeline_json"])
            except ValidationError as exc:
                # Recorded by another version of the pipeline: say so rather than fail the page.
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "(root)"
                problem = (
                    f"the stored run does not match this version's PipelineRun ({exc.error_count()} "
                    f"error(s), first at {where}: {first['msg']}); the raw JSON is in /api/reviews/"
                    f"{review_id}?raw=true"
                )
        outcome = json.loads(record["outcome_json"]) if record["outcome_json"] else None
        return ReviewDetail(
            **summary.model_dump(),
            pipeline=pipeline,
            outcome=outcome,
            delivery_id=record["delivery_id"],
            pipeline_problem=problem,
        )

    def raw_pipeline(self, review_id: int) -> str | None:
        """The stored PipelineRun JSON as written, for runs this version cannot read."""
        with self._connection() as connection:
            if not self._has_table(connection, REVIEWS.name):
                return None
            return connection.execute(
                select(REVIEWS.c.pipeline_json).where(REVIEWS.c.id == review_id)
            ).scalar_one_or_none()

    def repos(self) -> list[str]:
        """Every repository with a recorded review, for the filter."""
        with self._connection() as connection:
            if not self._has_table(connection, REVIEWS.name):
                return []
            rows = connection.execute(select(REVIEWS.c.owner, REVIEWS.c.repo).distinct()).all()
        return sorted(f"{owner}/{repo}" for owner, repo in rows)

    def _summary(self, record: Any, job: Any | None, hide_superseded: bool = True) -> ReviewSummary | None:
        job_status = job["status"] if job is not None else None
        state = derive_state(record["state"], job_status)
        if state is None:
            if hide_superseded:
                return None
            state = "done"
        error = record["error"]
        if job is not None and state in ("queued", "failed") and not error:
            error = job["last_error"]
        started, finished = record["started_at"], record["finished_at"]
        if state == "running" and started is not None:
            duration = self.clock() - started
        elif started is not None and finished is not None:
            duration = finished - started
        else:
            duration = None
        return ReviewSummary(
            id=record["id"],
            job_id=job["id"] if job is not None else None,
            owner=record["owner"],
            repo=record["repo"],
            pull_number=record["pull_number"],
            head_sha=record["head_sha"],
            trigger=record["trigger"],
            state=state,
            stage=record["stage"] if state == "running" else None,
            attempts=max(record["attempts"], job["attempts"] if job is not None else 0),
            decision=record["decision"],
            blockers=record["blockers"],
            majors=record["majors"],
            minors=record["minors"],
            nits=record["nits"],
            reviewers=[
                ReviewerVerdict.model_validate(v) for v in json.loads(record["reviewers_json"] or "[]")
            ],
            outcome_status=record["outcome_status"],
            error=error,
            created_at=record["created_at"],
            started_at=started,
            finished_at=finished,
            duration_s=duration,
        )

    def _job_summary(self, job: Any) -> ReviewSummary | None:
        state = derive_state(None, job["status"])
        if state is None:
            return None
        spec = ReviewJobSpec.model_validate_json(job["spec"])
        started, finished = job["started_at"], job["finished_at"]
        duration = (
            (finished - started) if started and finished else (self.clock() - started if started else None)
        )
        return ReviewSummary(
            id=None,
            job_id=job["id"],
            owner=spec.owner,
            repo=spec.repo,
            pull_number=spec.pull_number,
            head_sha=job["head_sha"],
            trigger=job["trigger"],
            state=state,
            attempts=job["attempts"],
            error=job["last_error"],
            created_at=job["created_at"],
            started_at=started,
            finished_at=finished,
            duration_s=duration if state != "queued" else None,
        )
