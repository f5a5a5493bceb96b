"""The durable state: deliveries, installations and the job queue, through SQLAlchemy.

SQLite (the default, one file) and PostgreSQL (`CALORA_DATABASE_URL`) run the same statements. A job is
claimed by one UPDATE that picks the oldest claimable row in a sub-select and takes it with a lease:
on PostgreSQL the sub-select is `FOR UPDATE SKIP LOCKED`, so workers on several machines never take
the same row; on SQLite every write transaction starts with `BEGIN IMMEDIATE`, which serialises writers.

Job states: queued → running → done | failed, or queued → superseded (a newer push to the same pull
request). A running job whose lease expired (its worker died) is claimable again; `attempts` counts
claims, so a worker that keeps dying on one job still ends it after `max_attempts`; a job deferred until
GitHub's rate limit resets goes back to queued with that claim uncounted.

A delivery whose request (`ReviewJobSpec.request_key`) already has a queued, running or done job is a
replay (a signed body sent again under a new X-GitHub-Delivery): recorded, nothing queued.

A failed job whose check run could not be concluded (GitHub down or rate limiting) leaves a row in
`pending_conclusions`, which workers claim and retry until GitHub answers.

The job row is the one truth of a job's state; what its review produced (the stored pipeline run, the
decision, the stage it is at) is one `review_outputs` row keyed by the job's id, written by the review
(`record_stage`, `record_outputs`) and only read by the console.

Schema changes: `create_schema` is `create_all` (new tables appear, existing rows stay), plus
`_adopt_console_reviews`, which copies the outputs an older version kept in the console's `reviews`
table into `review_outputs` once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    case,
    column,
    create_engine,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Update

from app.jobs import ReviewJobSpec
from app.review_outputs import MAX_STAGE_CHARS, ReviewOutputs
from app.webhooks import DeliveryDecision, InstallationChange, QueueReviews

JobStatus = Literal["queued", "running", "done", "failed", "superseded"]
DeliveryOutcome = Literal["queued", "ignored", "recorded", "pong", "replay"]
ACTIVE_STATUSES = ("queued", "running", "done")  # a job in one of these answers its request

log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    pass


class DeliveryRow(Base):
    """One accepted webhook delivery, keyed by X-GitHub-Delivery (a redelivery finds it here)."""

    __tablename__ = "deliveries"

    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    jobs_queued: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[float] = mapped_column(Float, index=True)


class InstallationRow(Base):
    """Where the App is installed, as the installation events said."""

    __tablename__ = "installations"

    installation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(String(200))
    repository_selection: Mapped[str | None] = mapped_column(String(32))
    repositories: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of owner/name
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    last_action: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[float] = mapped_column(Float)


class JobRow(Base):
    """One review job; `spec` is the ReviewJobSpec as JSON."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("delivery_id", "pr_key", name="uq_jobs_delivery_pr"),
        Index("ix_jobs_claim", "status", "available_at"),
        Index("ix_jobs_pr_status", "pr_key", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(200))
    pr_key: Mapped[str] = mapped_column(String(300))
    head_sha: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(32))
    spec: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expired_leases: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    available_at: Mapped[float] = mapped_column(Float)
    event_at: Mapped[float | None] = mapped_column(Float)  # the pull request's updated_at, for ordering pushes
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    superseded_by: Mapped[int | None] = mapped_column(Integer)


class PendingConclusionRow(Base):
    """A failed job whose check run still has to be concluded (GitHub did not answer when it failed)."""

    __tablename__ = "pending_conclusions"

    job_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    spec: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[float] = mapped_column(Float, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class ReviewOutputRow(Base):
    """What one job's review produced (`app.review_outputs.ReviewOutputs`), and the stage it is at.

    Never a state of its own: whether the job is queued, running, done or failed is the job row's.
    """

    __tablename__ = "review_outputs"

    job_id: Mapped[int] = mapped_column(Integer, ForeignKey("jobs.id"), primary_key=True, autoincrement=False)
    stage: Mapped[str | None] = mapped_column(Text)
    outcome_status: Mapped[str | None] = mapped_column(String(16))
    outcome_json: Mapped[str | None] = mapped_column(Text)
    reviewed_head_sha: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str | None] = mapped_column(String(16), index=True)
    blockers: Mapped[int] = mapped_column(Integer, default=0)
    majors: Mapped[int] = mapped_column(Integer, default=0)
    minors: Mapped[int] = mapped_column(Integer, default=0)
    nits: Mapped[int] = mapped_column(Integer, default=0)
    reviewers_json: Mapped[str] = mapped_column(Text, default="[]")
    pipeline_json: Mapped[str | None] = mapped_column(Text)
    pipeline_seconds: Mapped[float | None] = mapped_column(Float)
    recorded_at: Mapped[float] = mapped_column(Float)


JOBS = JobRow.__table__
REVIEW_OUTPUTS = ReviewOutputRow.__table__
DELIVERIES = DeliveryRow.__table__
INSTALLATIONS = InstallationRow.__table__
PENDING = PendingConclusionRow.__table__


# --- the receiver's statements, built once: SQLAlchemy takes longer to build a statement than SQLite ---
# --- takes to run it (parameters are named b_* so that they never collide with column names) ----------

_DELIVERY_EXISTS = select(DELIVERIES.c.delivery_id).where(DELIVERIES.c.delivery_id == bindparam("b_delivery_id"))
_INSERT_DELIVERY = insert(DELIVERIES)
_INSERT_JOB = insert(JOBS).returning(JOBS.c.id)
_NEWER_JOB = (
    select(JOBS.c.id).where(
        JOBS.c.pr_key == bindparam("b_pr_key"), JOBS.c.head_sha != bindparam("b_head_sha"),
        JOBS.c.event_at > bindparam("b_event_at"), JOBS.c.status != "superseded",
    ).order_by(JOBS.c.event_at.desc()).limit(1)
)
_QUEUED_FOR_OTHER_HEADS = (
    JOBS.c.pr_key == bindparam("b_pr_key"), JOBS.c.status == "queued",
    JOBS.c.head_sha != bindparam("b_head_sha"), JOBS.c.id != bindparam("b_job_id"),
)
_SAME_REQUEST_CANDIDATES = select(JOBS.c.id, JOBS.c.status, JOBS.c.spec).where(
    JOBS.c.pr_key == bindparam("b_pr_key"), JOBS.c.head_sha == bindparam("b_head_sha"),
    JOBS.c.trigger == bindparam("b_trigger"), JOBS.c.status.in_(ACTIVE_STATUSES),
).order_by(JOBS.c.id)
_SUPERSEDED = {"status": "superseded", "superseded_by": bindparam("b_job_id"), "finished_at": bindparam("b_now")}
_SUPERSEDE_QUEUED = update(JOBS).where(*_QUEUED_FOR_OTHER_HEADS).values(**_SUPERSEDED)
_SUPERSEDE_EARLIER = update(JOBS).where(
    *_QUEUED_FOR_OTHER_HEADS, or_(JOBS.c.event_at.is_(None), JOBS.c.event_at <= bindparam("b_event_at"))
).values(**_SUPERSEDED)


# --- what the store hands out --------------------------------------------------------------------------------

class RecordResult(BaseModel):
    """What recording a delivery did: a duplicate id changes nothing.

    `late` counts jobs that arrived already superseded (a newer push of the pull request was seen first);
    `replayed` lists the jobs that already answer requests of this delivery (nothing queued for those).
    """

    duplicate: bool
    outcome: DeliveryOutcome | None = None
    job_ids: list[int] = []
    superseded: int = 0
    late: int = 0
    replayed: list[int] = []


class ClaimedJob(BaseModel):
    """A job this worker holds the lease on."""

    id: int
    spec: ReviewJobSpec
    attempts: int
    lease_owner: str
    lease_expires_at: float
    expired_leases: int
    last_error: str | None = None


class PendingConclusion(BaseModel):
    """A failed job's check run to conclude, claimed by one worker for a lease."""

    job_id: int
    spec: ReviewJobSpec
    reason: str
    tries: int


class JobView(BaseModel):
    """A job as `calora jobs` shows it."""

    id: int
    status: str
    pr_key: str
    head_sha: str
    trigger: str
    delivery_id: str
    attempts: int
    expired_leases: int
    lease_owner: str | None
    lease_expires_at: float | None
    available_at: float
    event_at: float | None = None
    created_at: float
    started_at: float | None
    finished_at: float | None
    last_error: str | None
    superseded_by: int | None


class DeliveryView(BaseModel):
    delivery_id: str
    event: str
    action: str | None
    outcome: str
    reason: str | None
    jobs_queued: int
    received_at: float


class InstallationView(BaseModel):
    installation_id: int
    account: str
    repository_selection: str | None
    repositories: list[str]
    suspended: bool
    deleted: bool
    last_action: str
    updated_at: float


# --- engine ----------------------------------------------------------------------------------------------------

def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and `BEGIN IMMEDIATE` transactions."""
    if url.startswith("sqlite"):
        connect_args = {"timeout": 30, "check_same_thread": False}
        if make_url(url).database in (None, "", ":memory:"):
            # One in-memory database lives in one connection: share it (the Store serialises its use).
            engine = create_engine(url, poolclass=StaticPool, connect_args=connect_args)
        else:
            # Pooled connections stay open: closing the last one checkpoints the WAL (an fsync per request).
            engine = create_engine(url, pool_size=8, max_overflow=8, connect_args=connect_args)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (the crash tests), but a power
        # loss may drop the last commits; FULL would fsync every delivery (~10 ms on a virtual disk).
        # Deployments that need power-loss durability use PostgreSQL.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so two claims can never read the same queued row.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def redact_url(url: str) -> str:
    """The URL with its password hidden, for logs."""
    return make_url(url).render_as_string(hide_password=True)


# --- the store -------------------------------------------------------------------------------------------------

class Store:
    """Deliveries, installations and jobs in one database; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time, and a thread that finds the file locked sleeps in SQLite's
        # busy handler in steps of up to 100 ms; queueing this process's threads on a lock instead keeps
        # the wait to the length of the transactions ahead (other processes still use the busy handler).
        self._serialize: threading.Lock | nullcontext[None] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    @classmethod
    def from_url(cls, url: str, create: bool = True) -> Store:
        store = cls(make_engine(url))
        if create:
            store.create_schema()
        return store

    def create_schema(self) -> None:
        """New tables appear, existing rows stay (`create_all` never alters a table it finds)."""
        Base.metadata.create_all(self.engine)
        with self._transaction() as connection:
            _adopt_console_reviews(connection)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._serialize, self.engine.begin() as connection:
            yield connection

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self._transaction() as connection:
            connection.execute(text("SELECT 1"))

    # --- receiver side ---

    def record_delivery(
        self, delivery_id: str, event_name: str, action: str | None, decision: DeliveryDecision, now: float | None = None
    ) -> RecordResult:
        """Record a delivery and what it decided, queueing its jobs, all in one transaction.

        A delivery id seen before is a redelivery: nothing is written and nothing queued.
        """
        now = time.time() if now is None else now
        outcome = _outcome(decision)
        reason = getattr(decision, "reason", None)
        jobs = decision.jobs if isinstance(decision, QueueReviews) else []
        try:
            with self._transaction() as connection:
                if connection.execute(_DELIVERY_EXISTS, {"b_delivery_id": delivery_id}).first() is not None:
                    return RecordResult(duplicate=True)
                answered = {spec.request_key: self._same_request(connection, spec) for spec in jobs}
                replayed = [job_id for job_id in answered.values() if job_id is not None]
                jobs = [spec for spec in jobs if answered[spec.request_key] is None]
                if replayed and not jobs:
                    outcome = "replay"
                    reason = f"the same request as job {', '.join(map(str, replayed))}; not queued again"
                connection.execute(_INSERT_DELIVERY, {
                    "delivery_id": delivery_id, "event": event_name, "action": action, "outcome": outcome,
                    "reason": reason, "jobs_queued": len(jobs), "received_at": now,
                })
                job_ids, superseded, late = [], 0, 0
                supersede = isinstance(decision, QueueReviews) and decision.supersede
                event_at = decision.event_at if isinstance(decision, QueueReviews) else None
                for spec in jobs:
                    newer = self._newer_job(connection, spec, event_at) if supersede else None
                    if newer is not None:
                        job_ids.append(self._insert_job(connection, spec, now, event_at, superseded_by=newer))
                        late += 1
                        continue
                    job_id = self._insert_job(connection, spec, now, event_at)
                    job_ids.append(job_id)
                    if supersede:
                        superseded += self._supersede_older(connection, spec, job_id, now, event_at)
                if isinstance(decision, InstallationChange):
                    self._apply_installation(connection, decision, now)
        except IntegrityError:
            # A concurrent request with the same delivery id committed first.
            return RecordResult(duplicate=True)
        return RecordResult(duplicate=False, outcome=outcome, job_ids=job_ids, superseded=superseded, late=late,
                            replayed=replayed)

    @staticmethod
    def _same_request(connection: Connection, spec: ReviewJobSpec) -> int | None:
        """The queued, running or done job that already answers `spec`'s request, if any.

        On PostgreSQL two replays arriving together would both see no job (read committed), so the
        request's key is locked for the rest of the transaction first; SQLite's writers are serial anyway.
        """
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(spec.request_key))))
        rows = connection.execute(_SAME_REQUEST_CANDIDATES, {
            "b_pr_key": spec.pr_key, "b_head_sha": spec.head_sha, "b_trigger": spec.trigger}).all()
        key = spec.request_key
        return next((row.id for row in rows if ReviewJobSpec.model_validate_json(row.spec).request_key == key),
                    None)

    def enqueue(self, spec: ReviewJobSpec, now: float | None = None, supersede: bool = False) -> int:
        """Queue one job directly (operations and tests); the receiver goes through record_delivery."""
        now = time.time() if now is None else now
        with self._transaction() as connection:
            job_id = self._insert_job(connection, spec, now)
            if supersede:
                self._supersede_older(connection, spec, job_id, now)
        return job_id

    @staticmethod
    def _insert_job(connection: Connection, spec: ReviewJobSpec, now: float, event_at: float | None = None,
                    superseded_by: int | None = None) -> int:
        late = superseded_by is not None
        return int(connection.execute(_INSERT_JOB, {
            "delivery_id": spec.delivery_id, "pr_key": spec.pr_key, "head_sha": spec.head_sha,
            "trigger": spec.trigger, "spec": spec.model_dump_json(), "status": "superseded" if late else "queued",
            "attempts": 0, "expired_leases": 0, "available_at": now, "event_at": event_at, "created_at": now,
            "superseded_by": superseded_by, "finished_at": now if late else None,
        }).scalar_one())

    @staticmethod
    def _newer_job(connection: Connection, spec: ReviewJobSpec, event_at: float | None) -> int | None:
        """A job of the same pull request for another head from a later event (the delivery came late)."""
        if event_at is None:
            return None
        return connection.execute(_NEWER_JOB, {
            "b_pr_key": spec.pr_key, "b_head_sha": spec.head_sha, "b_event_at": event_at}).scalar()

    @staticmethod
    def _supersede_older(connection: Connection, spec: ReviewJobSpec, job_id: int, now: float,
                         event_at: float | None = None) -> int:
        params = {"b_pr_key": spec.pr_key, "b_head_sha": spec.head_sha, "b_job_id": job_id, "b_now": now}
        if event_at is None:
            return int(connection.execute(_SUPERSEDE_QUEUED, params).rowcount or 0)
        return int(connection.execute(_SUPERSEDE_EARLIER, {**params, "b_event_at": event_at}).rowcount or 0)

    @staticmethod
    def _apply_installation(connection: Connection, change: InstallationChange, now: float) -> None:
        row = connection.execute(
            select(INSTALLATIONS).where(INSTALLATIONS.c.installation_id == change.installation_id)
        ).mappings().first()
        repositories: list[str] = json.loads(row["repositories"]) if row is not None else []
        if change.repositories is not None:
            repositories = list(change.repositories)
        repositories = [name for name in repositories if name not in set(change.repositories_removed)]
        repositories += [name for name in change.repositories_added if name not in repositories]
        values: dict[str, Any] = {
            "account": change.account, "repositories": json.dumps(sorted(repositories)), "last_action": change.action,
            "updated_at": now,
        }
        if change.repository_selection is not None:
            values["repository_selection"] = change.repository_selection
        if change.action == "deleted":
            values["deleted"] = True
        elif change.action == "created":
            values["deleted"] = False
            values["suspended"] = False
        elif change.action == "suspend":
            values["suspended"] = True
        elif change.action == "unsuspend":
            values["suspended"] = False
        if row is None:
            values.setdefault("deleted", False)
            values.setdefault("suspended", False)
            connection.execute(insert(INSTALLATIONS).values(installation_id=change.installation_id, **values))
        else:
            connection.execute(update(INSTALLATIONS).where(
                INSTALLATIONS.c.installation_id == change.installation_id).values(**values))

    # --- worker side ---

    def claim(self, owner: str, lease_seconds: float, now: float | None = None) -> ClaimedJob | None:
        """Take the oldest claimable job with a lease for `owner`, or None when there is none.

        Claimable: queued and due, or running with an expired lease (its worker died).
        """
        now = time.time() if now is None else now
        statement = claim_statement(owner, lease_seconds, now)
        with self._transaction() as connection:
            row = connection.execute(statement).first()
        if row is None:
            return None
        return ClaimedJob(
            id=row.id, spec=ReviewJobSpec.model_validate_json(row.spec), attempts=row.attempts,
            lease_owner=owner, lease_expires_at=now + lease_seconds, expired_leases=row.expired_leases,
            last_error=row.last_error,
        )

    def _update_held(self, job_id: int, owner: str, **values: Any) -> bool:
        with self._transaction() as connection:
            result = connection.execute(update(JOBS).where(
                JOBS.c.id == job_id, JOBS.c.status == "running", JOBS.c.lease_owner == owner,
            ).values(**values))
        return (result.rowcount or 0) == 1

    def extend_lease(self, job_id: int, owner: str, lease_seconds: float, now: float | None = None) -> bool:
        """Renew the lease; False when the job is no longer this owner's."""
        now = time.time() if now is None else now
        return self._update_held(job_id, owner, lease_expires_at=now + lease_seconds)

    def complete(self, job_id: int, owner: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self._update_held(job_id, owner, status="done", finished_at=now, lease_owner=None,
                                 lease_expires_at=None)

    def retry_later(self, job_id: int, owner: str, error: str, available_at: float, now: float | None = None) -> bool:
        """Put the job back in the queue after a failed attempt, due at `available_at`."""
        return self._update_held(job_id, owner, status="queued", available_at=available_at, last_error=error,
                                 lease_owner=None, lease_expires_at=None)

    def defer(self, job_id: int, owner: str, reason: str, not_before: float) -> bool:
        """Put the job back in the queue due at `not_before` (GitHub's rate limit resets then); the attempt
        is not counted, so waiting never uses up `max_attempts`."""
        return self._update_held(job_id, owner, status="queued", available_at=not_before, last_error=reason,
                                 attempts=JOBS.c.attempts - 1, lease_owner=None, lease_expires_at=None)

    def fail(self, job_id: int, owner: str, error: str, now: float | None = None,
             conclude_at: float | None = None, conclusion_error: str | None = None) -> bool:
        """Mark the job failed; with `conclude_at`, its check run is still to be concluded from then on
        (a pending conclusion, written in the same transaction)."""
        now = time.time() if now is None else now
        with self._transaction() as connection:
            result = connection.execute(update(JOBS).where(
                JOBS.c.id == job_id, JOBS.c.status == "running", JOBS.c.lease_owner == owner,
            ).values(status="failed", finished_at=now, last_error=error, lease_owner=None, lease_expires_at=None,
                     ).returning(JOBS.c.spec))
            row = result.first()
            if row is not None and conclude_at is not None:
                connection.execute(insert(PENDING).values(
                    job_id=job_id, spec=row.spec, reason=error, tries=1, available_at=conclude_at,
                    last_error=conclusion_error, created_at=now))
        return row is not None

    # --- check runs still to conclude ---

    def claim_conclusion(self, lease_seconds: float, now: float | None = None) -> PendingConclusion | None:
        """Take the oldest due pending conclusion for `lease_seconds` (it is due again after that, should
        this worker die), or None."""
        now = time.time() if now is None else now
        pick = (select(PENDING.c.job_id).where(PENDING.c.available_at <= now).order_by(PENDING.c.available_at)
                .limit(1).with_for_update(skip_locked=True).scalar_subquery())
        statement = update(PENDING).where(PENDING.c.job_id == pick, PENDING.c.available_at <= now).values(
            available_at=now + lease_seconds, tries=PENDING.c.tries + 1,
        ).returning(PENDING.c.job_id, PENDING.c.spec, PENDING.c.reason, PENDING.c.tries)
        with self._transaction() as connection:
            row = connection.execute(statement).first()
        if row is None:
            return None
        return PendingConclusion(job_id=row.job_id, spec=ReviewJobSpec.model_validate_json(row.spec),
                                 reason=row.reason, tries=row.tries)

    def conclusion_done(self, job_id: int) -> None:
        with self._transaction() as connection:
            connection.execute(PENDING.delete().where(PENDING.c.job_id == job_id))

    def conclusion_later(self, job_id: int, available_at: float, error: str) -> None:
        with self._transaction() as connection:
            connection.execute(update(PENDING).where(PENDING.c.job_id == job_id).values(
                available_at=available_at, last_error=error))

    def pending_conclusions(self) -> int:
        with self._transaction() as connection:
            return int(connection.execute(select(func.count()).select_from(PENDING)).scalar_one())

    def release(self, job_id: int, owner: str, now: float | None = None) -> bool:
        """Give a job back untried (worker shutting down): it is due at once and the attempt is not counted."""
        now = time.time() if now is None else now
        return self._update_held(job_id, owner, status="queued", available_at=now, attempts=JOBS.c.attempts - 1,
                                 lease_owner=None, lease_expires_at=None)

    # --- what the review produced (never a state: that is the job row's) ---

    def record_stage(self, spec: ReviewJobSpec, stage: str, now: float | None = None) -> bool:
        """What the running review of `spec`'s job is doing now (shown live): e.g. 'asking 5 reviewer requests'."""
        return self._record(spec, {"stage": stage[:MAX_STAGE_CHARS]}, now)

    def record_outputs(self, spec: ReviewJobSpec, outputs: ReviewOutputs, now: float | None = None) -> bool:
        """What the review of `spec`'s job produced (its run ended: reviewed, or skipped with no pipeline run)."""
        return self._record(spec, {**outputs.model_dump(), "stage": None}, now)

    def _record(self, spec: ReviewJobSpec, values: dict[str, Any], now: float | None) -> bool:
        """Upsert the job's `review_outputs` row; False (logged) when there is no such job or the database
        fails: recording never breaks a review."""
        values = {**values, "recorded_at": time.time() if now is None else now}
        job_of_spec = select(JOBS.c.id).where(JOBS.c.delivery_id == spec.delivery_id, JOBS.c.pr_key == spec.pr_key)
        for attempt in range(2):
            try:
                with self._transaction() as connection:
                    job_id = connection.execute(job_of_spec).scalar()
                    if job_id is None:
                        log.warning("no job for %s (delivery %s): its review outputs are not kept",
                                    spec.pr_key, spec.delivery_id)
                        return False
                    updated = connection.execute(
                        update(REVIEW_OUTPUTS).where(REVIEW_OUTPUTS.c.job_id == job_id).values(**values))
                    if not updated.rowcount:
                        connection.execute(insert(REVIEW_OUTPUTS).values(job_id=job_id, **values))
                return True
            except IntegrityError:
                if attempt == 0:
                    continue  # another process inserted the row first (PostgreSQL): update theirs
                log.exception("could not record the review of %s@%s", spec.pr_key, spec.head_sha[:7])
            except SQLAlchemyError:
                log.exception("could not record the review of %s@%s (the review itself goes on)",
                              spec.pr_key, spec.head_sha[:7])
                return False
        return False

    # --- reading ---

    def queue_depth(self) -> dict[str, int]:
        """Jobs per status (every status present, zero when none)."""
        with self._transaction() as connection:
            rows = connection.execute(select(JOBS.c.status, func.count()).group_by(JOBS.c.status)).all()
        depth = {status: 0 for status in ("queued", "running", "done", "failed", "superseded")}
        depth.update({status: int(count) for status, count in rows})
        return depth

    def list_jobs(self, limit: int = 50, status: str | None = None) -> list[JobView]:
        query = select(JOBS).order_by(JOBS.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(JOBS.c.status == status)
        with self._transaction() as connection:
            rows = connection.execute(query).mappings().all()
        return [JobView.model_validate(dict(row)) for row in rows]

    def get_job(self, job_id: int) -> JobView | None:
        with self._transaction() as connection:
            row = connection.execute(select(JOBS).where(JOBS.c.id == job_id)).mappings().first()
        return JobView.model_validate(dict(row)) if row is not None else None

    def list_deliveries(self, limit: int = 50) -> list[DeliveryView]:
        query = select(DELIVERIES).order_by(DELIVERIES.c.received_at.desc()).limit(limit)
        with self._transaction() as connection:
            rows = connection.execute(query).mappings().all()
        return [DeliveryView.model_validate(dict(row)) for row in rows]

    def list_installations(self) -> list[InstallationView]:
        with self._transaction() as connection:
            rows = connection.execute(select(INSTALLATIONS).order_by(INSTALLATIONS.c.installation_id)).mappings().all()
        return [InstallationView.model_validate({**row, "repositories": json.loads(row["repositories"])})
                for row in rows]


def claim_statement(owner: str, lease_seconds: float, now: float) -> Update:
    """One UPDATE that takes the oldest claimable row; `FOR UPDATE SKIP LOCKED` on PostgreSQL."""
    claimable = or_(
        and_(JOBS.c.status == "queued", JOBS.c.available_at <= now),
        and_(JOBS.c.status == "running", JOBS.c.lease_expires_at < now),
    )
    pick = (
        select(JOBS.c.id).where(claimable).order_by(JOBS.c.available_at, JOBS.c.id).limit(1)
        .with_for_update(skip_locked=True).scalar_subquery()
    )
    was_running = JOBS.c.status == "running"
    return (
        update(JOBS).where(JOBS.c.id == pick, claimable).values(
            status="running",
            attempts=JOBS.c.attempts + 1,
            expired_leases=JOBS.c.expired_leases + case((was_running, 1), else_=0),
            last_error=case(
                (was_running, literal("lease of ") + func.coalesce(JOBS.c.lease_owner, "?") + literal(" expired")),
                else_=JOBS.c.last_error,
            ),
            lease_owner=owner,
            lease_expires_at=now + lease_seconds,
            started_at=now,
        ).returning(JOBS.c.id, JOBS.c.spec, JOBS.c.attempts, JOBS.c.expired_leases, JOBS.c.last_error)
    )


# The console's own table of earlier versions (it kept a second copy of each job's state): read once, to move
# the outputs it holds into `review_outputs`; the table itself is left as it was.
_CONSOLE_REVIEWS = table(
    "reviews", *(column(name) for name in (
        "delivery_id", "pr_key", "head_sha", "stage", "outcome_status", "outcome_json", "decision", "blockers",
        "majors", "minors", "nits", "reviewers_json", "pipeline_json", "pipeline_seconds", "created_at",
        "started_at", "finished_at")),
)


def _adopt_console_reviews(connection: Connection) -> int:
    """Copy the outputs kept in an older version's `reviews` table into `review_outputs`, for the jobs that
    have none yet (so it runs once in effect); the number of rows copied."""
    from sqlalchemy import inspect

    if not inspect(connection).has_table("reviews"):
        return 0
    old = _CONSOLE_REVIEWS.c
    copied = select(
        JOBS.c.id, old.stage, old.outcome_status, old.outcome_json, old.head_sha, old.decision,
        func.coalesce(old.blockers, 0), func.coalesce(old.majors, 0), func.coalesce(old.minors, 0),
        func.coalesce(old.nits, 0), func.coalesce(old.reviewers_json, "[]"), old.pipeline_json,
        old.pipeline_seconds, func.coalesce(old.finished_at, old.started_at, old.created_at),
    ).select_from(
        _CONSOLE_REVIEWS.join(JOBS, and_(JOBS.c.delivery_id == old.delivery_id, JOBS.c.pr_key == old.pr_key))
    ).where(~select(REVIEW_OUTPUTS.c.job_id).where(REVIEW_OUTPUTS.c.job_id == JOBS.c.id).exists())
    columns = ["job_id", "stage", "outcome_status", "outcome_json", "reviewed_head_sha", "decision", "blockers",
               "majors", "minors", "nits", "reviewers_json", "pipeline_json", "pipeline_seconds", "recorded_at"]
    count = int(connection.execute(insert(REVIEW_OUTPUTS).from_select(columns, copied)).rowcount or 0)
    if count:
        log.info("moved the outputs of %d review(s) from the console's old reviews table to review_outputs", count)
    return count


def _outcome(decision: DeliveryDecision) -> DeliveryOutcome:
    return {"queue": "queued", "ignore": "ignored", "installation": "recorded", "pong": "pong"}[decision.kind]  # type: ignore[return-value]
