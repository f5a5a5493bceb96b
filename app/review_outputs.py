"""What a review job produced, as the store keeps it beside the job row (pure: data in, data out).

The job row (`app.store.JobRow`) is the one truth of a job's state, attempts, times and last error; this
is only what the review made: the stored `PipelineRun`, its decision, severity counts and each reviewer's
verdict, the run's `ReviewOutcome`, and the stage a running review is at. The worker's review writes it
through `Store.record_outputs` / `Store.record_stage`; the console only reads it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from reviewers.contract import Severity

if TYPE_CHECKING:
    from reviewers.pipeline import PipelineRun

MAX_STAGE_CHARS = 500


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


class ReviewOutputs(FindingCounts):
    """One finished run's outputs, as one row of `review_outputs` (keyed by the job's id).

    `reviewed_head_sha` is the commit the run looked at (the head may have moved since the job was queued).
    """

    outcome_status: str | None = None
    outcome_json: str | None = None
    reviewed_head_sha: str | None = None
    decision: str | None = None
    reviewers_json: str = "[]"
    pipeline_json: str | None = None
    pipeline_seconds: float | None = None

    @classmethod
    def of(cls, run: PipelineRun | None, outcome: BaseModel | None) -> ReviewOutputs:
        """From the pipeline run (None when the job skipped: draft, stale, bad config) and the outcome."""
        values: dict[str, object] = {}
        if outcome is not None:
            values["outcome_json"] = outcome.model_dump_json()
            values["outcome_status"] = str(getattr(outcome, "status", "") or "")[:16] or None
            values["reviewed_head_sha"] = getattr(outcome, "head_sha", "") or None
        if run is not None:
            values.update(
                pipeline_json=run.model_dump_json(),
                pipeline_seconds=run.seconds,
                decision=run.result.decision,
                reviewers_json=json.dumps([v.model_dump() for v in reviewer_verdicts(run)]),
                **count_findings(run).model_dump(),
            )
        return cls.model_validate(values)
