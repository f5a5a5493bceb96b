"""The score history: every eval run and promotion decision, in one SQLite file (stdlib `sqlite3`).

Default file `eval/history.sqlite` (gitignored), or `$CALORA_EVAL_HISTORY`, or `--history PATH`.
Tables, for anyone reading the file directly:

- `eval_runs`: one row per `calora eval run` / sweep step (what was evaluated: `RunInfo` columns);
- `reviewer_metrics`: one row per (run, reviewer): every `ReviewerMetrics` field as a column;
- `case_scores`: one row per (run, case): pass, validity, verdicts, must_find hits, noise, latency;
- `promotions`: one row per `calora promote` decision, with its evidence as JSON.

Readers use the typed API (`ScoreHistory.runs`, `.scores`, `.checkpoint_metrics`, `.promotions`), which
returns pydantic models, never raw rows.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eval.results import CaseScore, EvalRunResult, ReviewerMetrics, RunInfo
from reviewers.settings import CaloraSettings

DEFAULT_HISTORY = Path("eval/history.sqlite")
SCHEMA_VERSION = 1

_METRIC_COLUMNS = [name for name in ReviewerMetrics.model_fields if name not in ("reviewer", "decoding")]
_RUN_COLUMNS = list(RunInfo.model_fields)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS eval_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{c} {'INTEGER' if c == 'step' else 'TEXT'}" for c in _RUN_COLUMNS)},
    results_path TEXT
);
CREATE INDEX IF NOT EXISTS eval_runs_training_run ON eval_runs (training_run, step);
CREATE TABLE IF NOT EXISTS reviewer_metrics (
    run_id INTEGER NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
    reviewer TEXT NOT NULL,
    decoding TEXT NOT NULL,
    {", ".join(f"{c} REAL" for c in _METRIC_COLUMNS)},
    PRIMARY KEY (run_id, reviewer)
);
CREATE TABLE IF NOT EXISTS case_scores (
    run_id INTEGER NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
    case_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    score_json TEXT NOT NULL,
    passed INTEGER NOT NULL,
    PRIMARY KEY (run_id, case_id)
);
CREATE TABLE IF NOT EXISTS promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    training_run TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    promoted INTEGER NOT NULL,
    checkpoint TEXT,
    step INTEGER,
    installed_to TEXT,
    evidence_json TEXT NOT NULL
);
"""


class HistoryError(RuntimeError):
    """The history file cannot be read or written (wrong file, newer schema)."""


class HistoryRun(RunInfo):
    """A stored eval run: its `RunInfo` plus its row id and results JSON path."""

    id: int
    results_path: str | None = None


class ScoreRow(BaseModel):
    """One reviewer's metrics in one stored run."""

    run: HistoryRun
    metrics: ReviewerMetrics


class CheckpointMetrics(BaseModel):
    """Everything measured for one checkpoint of one reviewer: the newest raw and constrained metrics."""

    checkpoint: str
    step: int | None
    adapter: str | None
    by_decoding: dict[str, ReviewerMetrics]
    run_ids: list[int]


class PromotionRecord(BaseModel):
    """One promotion decision as stored: promoted or refused, with the evidence it rested on."""

    model_config = ConfigDict(extra="forbid")

    id: int | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    training_run: str
    reviewer: str
    promoted: bool
    checkpoint: str | None = None
    step: int | None = None
    installed_to: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)


class HistorySettings(CaloraSettings):
    """Where the score history lives (CALORA_EVAL_HISTORY, environment or `.env`); the console's settings
    build on these."""

    eval_history: Path = DEFAULT_HISTORY


def default_history_path() -> Path:
    return HistorySettings().eval_history


def _normalize_run(path: str | Path | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


class ScoreHistory:
    """Read and append to the history file; each call opens its own short connection."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_history_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(self._connect()) as db, db:
                db.executescript(_SCHEMA)
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if row is None:
                    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) > SCHEMA_VERSION:
                    raise HistoryError(
                        f"{self.path} has schema version {row[0]}; this code reads up to {SCHEMA_VERSION}")
                self._add_new_columns(db)
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: not a readable SQLite score history: {exc}") from exc

    @staticmethod
    def _add_new_columns(db: sqlite3.Connection) -> None:
        """A file written before a field was added to RunInfo/ReviewerMetrics gets that column (NULL)."""
        for table, columns in (("eval_runs", _RUN_COLUMNS), ("reviewer_metrics", _METRIC_COLUMNS)):
            present = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: not a readable SQLite score history: {exc}") from exc
        db.row_factory = sqlite3.Row
        return db

    # --- writing ---------------------------------------------------------------------------------

    def record(self, run: EvalRunResult, results_path: Path | None = None) -> int:
        """Store one eval run (info, per-reviewer metrics, per-case scores); returns its id."""
        info = run.info.model_dump(mode="json")
        info["training_run"] = _normalize_run(run.info.training_run)
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                f"INSERT INTO eval_runs ({', '.join(_RUN_COLUMNS)}, results_path) "
                f"VALUES ({', '.join('?' for _ in _RUN_COLUMNS)}, ?)",
                [info[c] for c in _RUN_COLUMNS] + [str(results_path) if results_path else None],
            )
            run_id = int(cursor.lastrowid or 0)
            for metrics in run.reviewers.values():
                values = metrics.model_dump()
                db.execute(
                    f"INSERT INTO reviewer_metrics (run_id, reviewer, decoding, {', '.join(_METRIC_COLUMNS)}) "
                    f"VALUES (?, ?, ?, {', '.join('?' for _ in _METRIC_COLUMNS)})",
                    [run_id, metrics.reviewer, metrics.decoding] + [values[c] for c in _METRIC_COLUMNS],
                )
            db.executemany(
                "INSERT INTO case_scores (run_id, case_id, reviewer, score_json, passed) VALUES (?, ?, ?, ?, ?)",
                [(run_id, s.case_id, s.reviewer, s.model_dump_json(), int(s.passed)) for s in run.scores],
            )
        return run_id

    def record_promotion(self, record: PromotionRecord) -> int:
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                "INSERT INTO promotions (created_at, training_run, reviewer, promoted, checkpoint, step, "
                "installed_to, evidence_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record.created_at.isoformat(), _normalize_run(record.training_run), record.reviewer,
                 int(record.promoted), record.checkpoint, record.step, record.installed_to,
                 json.dumps(record.evidence, default=str)),
            )
            return int(cursor.lastrowid or 0)

    # --- reading ---------------------------------------------------------------------------------

    @staticmethod
    def _run(row: sqlite3.Row) -> HistoryRun:
        data = {k: row[k] for k in row.keys() if k in HistoryRun.model_fields}  # noqa: SIM118 (Row iterates values)
        return HistoryRun.model_validate(data)

    def runs(self, *, training_run: str | Path | None = None, label: str | None = None) -> list[HistoryRun]:
        """Stored runs, oldest first, optionally of one training run or with one label."""
        query, args = "SELECT * FROM eval_runs WHERE 1 = 1", []
        if training_run is not None:
            query += " AND training_run = ?"
            args.append(_normalize_run(training_run))
        if label is not None:
            query += " AND label = ?"
            args.append(label)
        with closing(self._connect()) as db:
            return [self._run(r) for r in db.execute(query + " ORDER BY id", args)]

    def scores(self, *, reviewer: str | None = None, training_run: str | Path | None = None,
               run_id: int | None = None) -> list[ScoreRow]:
        """Per-reviewer metrics with their run, oldest run first."""
        query = ("SELECT r.*, m.reviewer AS m_reviewer, m.decoding AS m_decoding, "
                 + ", ".join(f"m.{c} AS m_{c}" for c in _METRIC_COLUMNS)
                 + " FROM reviewer_metrics m JOIN eval_runs r ON r.id = m.run_id WHERE 1 = 1")
        args: list[Any] = []
        if reviewer is not None:
            query += " AND m.reviewer = ?"
            args.append(reviewer)
        if training_run is not None:
            query += " AND r.training_run = ?"
            args.append(_normalize_run(training_run))
        if run_id is not None:
            query += " AND r.id = ?"
            args.append(run_id)
        rows = []
        with closing(self._connect()) as db:
            for row in db.execute(query + " ORDER BY r.id, m.reviewer", args):
                metrics = {c: row[f"m_{c}"] for c in _METRIC_COLUMNS}
                metrics.update(reviewer=row["m_reviewer"], decoding=row["m_decoding"])
                rows.append(ScoreRow(run=self._run(row), metrics=ReviewerMetrics.model_validate(metrics)))
        return rows

    def case_scores(self, run_id: int) -> list[CaseScore]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT score_json FROM case_scores WHERE run_id = ? ORDER BY case_id", (run_id,))
            return [CaseScore.model_validate_json(r[0]) for r in rows]

    def checkpoint_metrics(self, training_run: str | Path, reviewer: str) -> list[CheckpointMetrics]:
        """Per checkpoint of a training run: the newest metrics of each decoding, in step order."""
        grouped: dict[str, CheckpointMetrics] = {}
        for row in self.scores(reviewer=reviewer, training_run=training_run):
            key = row.run.checkpoint or row.run.adapter or row.run.label
            entry = grouped.setdefault(key, CheckpointMetrics(
                checkpoint=key, step=row.run.step, adapter=row.run.adapter, by_decoding={}, run_ids=[]))
            entry.by_decoding[row.metrics.decoding] = row.metrics  # later runs overwrite earlier ones
            entry.run_ids.append(row.run.id)
        return sorted(grouped.values(), key=lambda c: (c.step is None, c.step or 0, c.checkpoint))

    def promotions(self, *, reviewer: str | None = None) -> list[PromotionRecord]:
        query, args = "SELECT * FROM promotions", []
        if reviewer is not None:
            query += " WHERE reviewer = ?"
            args.append(reviewer)
        with closing(self._connect()) as db:
            return [
                PromotionRecord(
                    id=r["id"], created_at=datetime.fromisoformat(r["created_at"]), training_run=r["training_run"],
                    reviewer=r["reviewer"], promoted=bool(r["promoted"]), checkpoint=r["checkpoint"], step=r["step"],
                    installed_to=r["installed_to"], evidence=json.loads(r["evidence_json"]),
                )
                for r in db.execute(query + " ORDER BY id", args)
            ]
