"""A seeded console database: real diffs from ../shared, hand-written reviewer answers (a fixture).

The answers below are written by hand for these real diffs, so the console has realistic content to
show; they are not a model's output and nothing here tests a model. They go through the real pipeline
(`run_pipeline`: slicing, the real linters as check evidence, synthesis) behind a backend named
`seeded-fixture`, and into the database through the real `Store` (job rows and their review outputs).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.jobs import ReviewJobSpec
from app.review_job import ReviewOutcome
from app.review_outputs import ReviewOutputs
from app.store import Store
from reviewers.backends.base import Backend, BackendResult, ReviewerFailure
from reviewers.contract import Category, Finding, ReviewerOutput, ReviewRequest, Severity, Verdict
from reviewers.pipeline import PipelineRun, run_pipeline
from reviewers.unified_diff import parse_unified_diff

REAL_DIFFS = Path(__file__).resolve().parents[2].parent / "shared" / "github" / "diffs" / "real"


class SeededAnswers(Backend):
    """A scripted backend: returns the hand-written answer (or error) for each reviewer."""

    name = "seeded-fixture"

    def __init__(self, answers: Mapping[str, ReviewerOutput | str]) -> None:
        self.answers = answers

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        out: list[BackendResult] = []
        for request in requests:
            answer = self.answers.get(request.reviewer)
            if isinstance(answer, ReviewerOutput):
                out.append(answer)
            else:
                out.append(ReviewerFailure(reviewer=request.reviewer, message=answer or "no seeded answer"))
        return out


def real_diff(prefix: str) -> str:
    return next(REAL_DIFFS.glob(f"{prefix}-*.diff")).read_text(encoding="utf-8")


def added_file_texts(diff_text: str) -> dict[str, str]:
    """Full contents of the files the diff adds (the only files whose whole text a diff holds)."""
    out = {}
    for file in parse_unified_diff(diff_text).files:
        if file.status == "added" and file.hunks:
            out[file.path] = (
                "\n".join(line[1:] for hunk in file.hunks for line in hunk.lines if line[:1] == "+") + "\n"
            )
    return out


MIGRATION_010 = "backend/app/alembic/versions/fe56fa70289e_add_created_at_to_user_and_item.py"

ANSWERS_010: dict[str, ReviewerOutput | str] = {
    "python": ReviewerOutput(
        verdict=Verdict.revise,
        findings=[
            Finding(
                path=MIGRATION_010,
                line=22,
                end_line=23,
                severity=Severity.major,
                category=Category.correctness,
                message="created_at is added as nullable with no backfill: every existing user and item keeps "
                "NULL, and the new ORDER BY created_at DESC puts those rows first on PostgreSQL.",
                suggestion="    op.add_column('item', sa.Column('created_at', sa.DateTime(timezone=True), "
                "nullable=True, server_default=sa.func.now()))\n"
                "    op.add_column('user', sa.Column('created_at', sa.DateTime(timezone=True), "
                "nullable=True, server_default=sa.func.now()))",
            ),
            Finding(
                path="backend/app/api/routes/items.py",
                line=25,
                severity=Severity.minor,
                category=Category.correctness,
                message="Ordering by a nullable column with no tie-breaker makes pages unstable when many rows "
                "share created_at (or are NULL); add Item.id as a second key.",
            ),
            Finding(
                path="backend/app/models.py",
                line=54,
                severity=Severity.nit,
                category=Category.style,
                message="A bare `# type: ignore` hides every error on the line; name the code it silences.",
            ),
        ],
        missing_checks=[
            "a test that lists items created before and after the migration in the expected order"
        ],
        suggested_fix="Backfill created_at in the migration (server default now()) and order by (created_at, id).",
    ),
    "sql": ReviewerOutput(
        verdict=Verdict.revise,
        findings=[
            Finding(
                path=MIGRATION_010,
                line=22,
                end_line=23,
                severity=Severity.major,
                category=Category.correctness,
                message="Nullable created_at without a backfill leaves NULL in every existing row.",
            ),
        ],
        missing_checks=["a migration test: upgrade then downgrade on a database that has rows"],
        suggested_fix="Give the columns a server default or backfill them in the same migration.",
    ),
}

ANSWERS_004: dict[str, ReviewerOutput | str] = {
    "python": ReviewerOutput(
        verdict=Verdict.block,
        findings=[
            Finding(
                path="backend/app/core/config.py",
                line=82,
                end_line=83,
                severity=Severity.blocker,
                category=Category.security,
                message="host['password'] is None for a DATABASE_URL without a password, so the default-secret "
                "check passes and production starts against a database with no password.",
                suggestion="        for host in self.DATABASE_URL.hosts():\n"
                '            self._check_default_secret("DATABASE_URL password", host["password"] or "")',
            ),
            Finding(
                path="backend/app/core/config.py",
                line=36,
                end_line=40,
                severity=Severity.minor,
                category=Category.maintainability,
                message="The validator rewrites postgres:// and postgresql:// but keeps any other driver "
                "silently; say in the docstring which schemes are accepted.",
            ),
        ],
        missing_checks=["a settings test with a DATABASE_URL that has no password"],
        suggested_fix="Treat a missing password like the default one and test both.",
    ),
    "docker_ci": "backend error: the reviewer server did not answer within 120 s (read timeout)",
}

ANSWERS_018: dict[str, ReviewerOutput | str] = {
    "sql": ReviewerOutput(verdict=Verdict.approve, findings=[], missing_checks=[], suggested_fix=""),
}


@dataclass
class SeededReview:
    """One seeded review and what the tests expect to find on its page."""

    spec: ReviewJobSpec
    review_id: int | None = None
    run: PipelineRun | None = None
    messages: list[str] = field(default_factory=list)


def spec_for(owner: str, repo: str, number: int, sha: str, delivery: str) -> ReviewJobSpec:
    return ReviewJobSpec(
        delivery_id=delivery,
        installation_id=1,
        owner=owner,
        repo=repo,
        pull_number=number,
        head_sha=sha,
        trigger="opened",
    )


def review_diff(prefix: str, answers: Mapping[str, ReviewerOutput | str], task: str) -> PipelineRun:
    diff = real_diff(prefix)
    return run_pipeline(diff, SeededAnswers(answers), task=task, file_contents=added_file_texts(diff))


WORKER = "seed-worker"


class SeedClock:
    """Time for the seed: reviews spread over the last hour, so the pages show realistic ages and durations."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def at(self, seconds_ago: float) -> float:
        self.now = time.time() - seconds_ago
        return self.now

    def wait(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def _claim(store: Store, spec: ReviewJobSpec, clock: SeedClock) -> int:
    """Queue the job and take it, as a worker would (the queue holds nothing else at that moment)."""
    job_id = store.enqueue(spec, now=clock())
    clock.wait(2)
    claimed = store.claim(WORKER, lease_seconds=3600, now=clock())
    assert claimed is not None and claimed.id == job_id, "the seed expects an otherwise empty queue"
    return job_id


def seed(database_url: str, store: Store | None = None) -> dict[str, SeededReview]:
    """Record six reviews in every state over the last hour: three done (revise, block + incomplete,
    approve), one running, one failed, and a queued job the worker has not started (only in the queue)."""
    own_store = store is None
    store = store or Store.from_url(database_url)
    clock = SeedClock(time.time())
    seeded: dict[str, SeededReview] = {}
    try:
        done = [
            (
                "created_at",
                "010",
                ANSWERS_010,
                spec_for(
                    "fastapi",
                    "full-stack-fastapi-template",
                    1496,
                    "3c1f7c4c5a1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
                    "seed-010",
                ),
                "Add created_at field to User and Item models\n\nOrder lists by creation date, newest first.",
                3000,
                38,
            ),
            (
                "database_url",
                "004",
                ANSWERS_004,
                spec_for(
                    "fastapi",
                    "full-stack-fastapi-template",
                    1583,
                    "32ab6dd0aa11bb22cc33dd44ee55ff6677889900",
                    "seed-004",
                ),
                "Migrate to DATABASE_URL instead of separate POSTGRES_* settings",
                1860,
                124,
            ),
            (
                "pgvector",
                "018",
                ANSWERS_018,
                spec_for(
                    "pgvector", "pgvector", 1013, "5db88ca0e1f2a3b4c5d6e7f8091a2b3c4d5e6f70", "seed-018"
                ),
                "Added comments to operators",
                720,
                21,
            ),
        ]
        for name, prefix, answers, spec, task, seconds_ago, took in done:
            clock.at(seconds_ago)
            job = _claim(store, spec, clock)
            store.record_stage(spec, "started", now=clock())
            run = review_diff(prefix, answers, task)
            outcome = ReviewOutcome(
                status="reviewed",
                head_sha=spec.head_sha,
                check_run_id=1000 + spec.pull_number,
                conclusion={"block": "failure", "revise": "neutral"}.get(run.result.decision, "success"),
                inline_comments=len(run.result.findings),
            )
            clock.wait(took)
            store.record_outputs(spec, ReviewOutputs.of(run, outcome), now=clock())
            store.complete(job, WORKER, now=clock())
            seeded[name] = SeededReview(
                spec=spec, review_id=job, run=run, messages=[f.message for f in run.result.findings]
            )
        failed = spec_for(
            "fastapi",
            "full-stack-fastapi-template",
            1418,
            "269040d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0",
            "seed-011",
        )
        clock.at(420)
        job = _claim(store, failed, clock)
        store.record_stage(failed, "started", now=clock())
        seeded["failed"] = SeededReview(spec=failed, review_id=job)
        clock.wait(95)
        store.fail(
            job,
            WORKER,
            "GitHubError 502 on GET /repos/fastapi/full-stack-fastapi-template/pulls/1418: "
            "Bad Gateway (3 attempts)",
            now=clock(),
        )
        running = spec_for(
            "fastapi",
            "full-stack-fastapi-template",
            1601,
            "9d5410823c4b5a6d7e8f9a0b1c2d3e4f5a6b7c8d",
            "seed-006",
        )
        clock.at(40)
        job = _claim(store, running, clock)
        store.record_stage(running, "asking 2 reviewer request(s) of backend engine", now=clock())
        seeded["running"] = SeededReview(spec=running, review_id=job)
        queued = spec_for(
            "antfu-collective", "vitesse", 515, "009a05d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7", "seed-015"
        )
        seeded["queued"] = SeededReview(spec=queued, review_id=store.enqueue(queued, now=clock.at(5)))
    finally:
        if own_store:
            store.close()
    return seeded


# --- training runs and eval scores (a fixture: numbers written by hand, not measured) -------------------------


def _metrics(
    reviewer: str,
    decoding: str,
    cases: int,
    passed: int,
    validity: float,
    accuracy: float,
    block_recall: float,
    finding_recall: float,
    false_block: float = 0.0,
):
    from eval.results import ReviewerMetrics

    return ReviewerMetrics(
        reviewer=reviewer,
        decoding=decoding,
        cases=cases,
        passed=passed,
        validity=validity,
        verdict_accuracy=accuracy,
        block_recall=block_recall,
        false_block_rate=false_block,
        finding_recall=finding_recall,
        noise_rate=0.1,
        noise_findings=1,
        pass_rate=passed / cases,
        latency_mean_s=1.9,
        latency_p50_s=1.7,
        latency_p95_s=3.2,
    )


def seed_training(runs_root: Path, history_path: Path, adapters_dir: Path) -> dict[str, Path]:
    """Two training runs (python, sql): loss rows, checkpoints, their eval scores per checkpoint in eval's
    score history, then eval's real `promote_run` with eval's gates: python step-40 is promoted (installed in
    `adapters_dir`), sql is refused (block recall under its 0.9 gate). Numbers are a fixture, not measured."""
    import json
    import math

    from eval.history import ScoreHistory
    from eval.promote import promote_run
    from eval.results import EvalRunResult, RunInfo

    history = ScoreHistory(history_path)
    made: dict[str, Path] = {}
    plan = {
        "python": [
            (20, 0.62, 0.55, 0.50, 0.40, 7),
            (40, 1.0, 0.90, 1.0, 0.85, 22),
            (60, 1.0, 0.88, 0.95, 0.80, 21),
        ],
        "sql": [(20, 0.70, 0.60, 0.50, 0.45, 9), (40, 0.95, 0.75, 0.67, 0.60, 15)],
    }
    for reviewer, checkpoints in plan.items():
        run_dir = runs_root / f"{reviewer}-seed-fixture"
        total = checkpoints[-1][0]
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(
            json.dumps(
                {
                    "reviewer": reviewer,
                    "base_model": "../shared/models/smollm2-135m-instruct",
                    "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                    "resolved": {"total_steps": total},
                }
            )
        )
        rows = [
            {
                "step": s,
                "loss": round(2.4 * math.exp(-s / 18) + 0.35 + 0.04 * math.sin(s), 4),
                "lr": 2e-4,
                "tokens_per_s": 150.0 + (s % 7),
            }
            for s in range(1, total + 1)
        ]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        for step, validity, accuracy, block_recall, finding_recall, passed in checkpoints:
            folder = run_dir / "checkpoints" / f"step-{step}"
            (folder / "adapter").mkdir(parents=True, exist_ok=True)
            (folder / "state.json").write_text(json.dumps({"step": step}))
            (folder / "adapter" / "adapter_config.json").write_text(
                json.dumps({"r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"]})
            )
            (folder / "adapter" / "README.md").write_text("seed fixture of the console tests: no weights\n")
            info = RunInfo(
                label=f"step-{step}",
                base_model="SmolLM2-135M-Instruct",
                adapter=str(folder / "adapter"),
                backend="transformers",
                cases_path="build/data",
                training_run=str(run_dir),
                checkpoint=f"step-{step}",
                step=step,
            )
            history.record(
                EvalRunResult(
                    info=info,
                    results=[],
                    scores=[],
                    reviewers={
                        reviewer: _metrics(
                            reviewer, "raw", 24, passed, validity, accuracy, block_recall, finding_recall
                        )
                    },
                )
            )
        made[reviewer] = run_dir
        promote_run(run_dir, history_path=history_path, adapters_dir=adapters_dir)
    return made
