"""Every loop and every round, in the store the App uses (SQLite or PostgreSQL, `CALORA_DATABASE_URL`).

Two tables on the store's own metadata (`app.store.Base.metadata`), created here on first use so that the
store's schema code is untouched: `loops` (one row a run of `calora loop`: task, repository, branch,
state, why it stopped) and `loop_rounds` (one row a round: the whole `RoundRecord` as JSON — the author's
answer, the patch, `git apply --check`'s output, the tests, each reviewer's answer and the synthesis —
plus the columns a timeline lists). Writes go through `app.store.make_engine` (WAL, busy timeout,
`BEGIN IMMEDIATE` on SQLite); the console reads through its read-only engine.

Recording never breaks a loop: a database error is logged and the method returns None.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from app.store import Base, make_engine
from loop.rounds import LoopSummary, RoundRecord

log = logging.getLogger(__name__)

LOOPS = Table(
    "loops",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task", Text, nullable=False),
    Column("repo", Text, nullable=False),
    Column("base_sha", String(64), nullable=False),
    Column("branch", String(200), nullable=False),
    Column("worktree", Text, nullable=False),
    Column("author", String(300), nullable=False),
    Column("reviewers", String(100), nullable=False),
    Column("test_cmd", Text),
    Column("max_rounds", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # running | done | failed
    Column("stop_reason", String(16)),
    Column("approved", Boolean, nullable=False, default=False),
    Column("rounds", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("summary_json", Text),
    Column("error", Text),
    Index("ix_loops_created", "created_at"),
)

LOOP_ROUNDS = Table(
    "loop_rounds",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("loop_id", Integer, ForeignKey("loops.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("decision", String(16)),
    Column("tests_passed", Boolean),
    Column("message", Text, nullable=False),
    Column("author_tokens", Integer, nullable=False, default=0),
    Column("reviewer_tokens", Integer, nullable=False, default=0),
    Column("seconds", Float, nullable=False, default=0.0),
    Column("created_at", Float, nullable=False),
    Column("record_json", Text, nullable=False),
    UniqueConstraint("loop_id", "number", name="uq_loop_rounds_number"),
)

MAX_ERROR_CHARS = 4000


def create_loop_tables(engine: Engine) -> None:
    Base.metadata.create_all(engine, tables=[LOOPS, LOOP_ROUNDS])


class LoopStart(BaseModel):
    """What is known when a loop begins."""

    task: str
    repo: str
    base_sha: str
    branch: str
    worktree: str
    author: str = Field(description="The author's model and endpoint (no credentials).")
    reviewers: str = Field(description="The reviewer backend: transformers, engine, openai or none.")
    test_cmd: str | None = None
    max_rounds: int


class LoopRecorder:
    """Writes loops and rounds; each method is one short transaction and never raises on a database error."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    @classmethod
    def from_url(cls, url: str) -> LoopRecorder:
        recorder = cls(make_engine(url))
        create_loop_tables(recorder.engine)
        return recorder

    def close(self) -> None:
        self.engine.dispose()

    def _write(self, what: str, statement: Any, returning: bool = False) -> Any:
        """Run one statement in its own transaction; with `returning`, its one value (read before commit)."""
        try:
            with self.engine.begin() as connection:
                result = connection.execute(statement)
                return result.scalar_one() if returning else True
        except SQLAlchemyError:
            log.exception("could not record %s (the loop goes on)", what)
            return None

    def start(self, start: LoopStart) -> int | None:
        result = self._write("the loop's start", insert(LOOPS).values(
            **start.model_dump(), state="running", approved=False, rounds=0, created_at=self.clock(),
        ).returning(LOOPS.c.id), returning=True)
        return int(result) if result is not None else None

    def round(self, loop_id: int | None, record: RoundRecord) -> None:
        if loop_id is None:
            return
        self._write(f"round {record.number}", insert(LOOP_ROUNDS).values(
            loop_id=loop_id, number=record.number, status=record.status, decision=record.decision,
            tests_passed=record.tests.passed if record.tests else None, message=record.message[:2000],
            author_tokens=record.author.prompt_tokens + record.author.completion_tokens,
            reviewer_tokens=record.reviewer_tokens, seconds=record.seconds, created_at=self.clock(),
            record_json=record.model_dump_json(),
        ))
        self._write("the round count", update(LOOPS).where(LOOPS.c.id == loop_id).values(rounds=record.number))

    def finish(self, loop_id: int | None, summary: LoopSummary) -> None:
        if loop_id is None:
            return
        self._write("the loop's end", update(LOOPS).where(LOOPS.c.id == loop_id).values(
            state="done", stop_reason=summary.stop_reason, approved=summary.approved,
            rounds=len(summary.rounds), finished_at=self.clock(), summary_json=summary.model_dump_json(),
        ))

    def fail(self, loop_id: int | None, error: str) -> None:
        if loop_id is None:
            return
        self._write("the loop's failure", update(LOOPS).where(LOOPS.c.id == loop_id).values(
            state="failed", finished_at=self.clock(), error=error[:MAX_ERROR_CHARS],
        ))


class LoopRow(BaseModel):
    """One loop as the console lists it."""

    id: int
    task: str
    repo: str
    base_sha: str
    branch: str
    worktree: str
    author: str
    reviewers: str
    test_cmd: str | None = None
    max_rounds: int
    state: str
    stop_reason: str | None = None
    approved: bool = False
    rounds: int = 0
    created_at: float
    finished_at: float | None = None
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        return self.finished_at - self.created_at if self.finished_at is not None else None


class LoopDetail(LoopRow):
    """A loop with every round it recorded, oldest first."""

    rounds_recorded: list[RoundRecord] = Field(default_factory=list)
    unreadable_rounds: list[str] = Field(default_factory=list, description="Rounds another version recorded.")
    summary: LoopSummary | None = None


class LoopReader:
    """Reads loops for the console (never writes); an absent table reads as no loops."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list_loops(self, limit: int = 50) -> list[LoopRow]:
        with self.engine.connect() as connection:
            if not inspect(connection).has_table(LOOPS.name):
                return []
            columns = [c for c in LOOPS.c if c.name != "summary_json"]
            rows = connection.execute(select(*columns).order_by(LOOPS.c.id.desc()).limit(limit)).mappings().all()
        return [LoopRow.model_validate(dict(row)) for row in rows]

    def get_loop(self, loop_id: int) -> LoopDetail | None:
        with self.engine.connect() as connection:
            if not inspect(connection).has_table(LOOPS.name):
                return None
            row = connection.execute(select(LOOPS).where(LOOPS.c.id == loop_id)).mappings().first()
            if row is None:
                return None
            rounds = connection.execute(select(LOOP_ROUNDS).where(LOOP_ROUNDS.c.loop_id == loop_id)
                                        .order_by(LOOP_ROUNDS.c.number)).mappings().all()
        records, unreadable = [], []
        for r in rounds:
            try:
                records.append(RoundRecord.model_validate_json(r["record_json"]))
            except ValidationError as exc:
                unreadable.append(f"round {r['number']}: recorded by another version ({exc.error_count()} error(s))")
        summary = None
        if row["summary_json"]:
            try:
                summary = LoopSummary.model_validate_json(row["summary_json"])
            except ValidationError:
                summary = None
        values = {k: v for k, v in dict(row).items() if k != "summary_json"}
        return LoopDetail(**values, rounds_recorded=records, unreadable_rounds=unreadable, summary=summary)
