"""From many reviewer answers to one actionable review (pure).

Findings are deduplicated across reviewers, sorted blockers first, nits collapsed, and an overall
verdict is derived from the findings themselves.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from reviewers.contract import Finding, ReviewerOutput, Verdict
from reviewers.slicing import NotReviewed


class SliceOutcome(BaseModel):
    """What one reviewer returned for one slice: an answer or an error, never both."""

    reviewer: str
    slice_index: int = 0
    output: ReviewerOutput | None = None
    error: str | None = None
    seconds: float = 0.0
    tokens: int = 0


class MergedFinding(Finding):
    """A finding after deduplication, with everyone who raised it."""

    raised_by: list[str] = Field(default_factory=list, description="Reviewers (or 'checks') that raised it.")


class ReviewerStatus(BaseModel):
    """One row of the per-reviewer status table."""

    reviewer: str
    slices: int
    verdict: Verdict | None = None
    findings: int = 0
    errors: list[str] = Field(default_factory=list)
    reconciled: bool = Field(default=False, description="Its verdict contradicted its own findings.")
    status: Literal["ok", "partial", "error"] = "ok"


class ReviewResult(BaseModel):
    """The synthesized review: what the app posts and what `calora review` prints."""

    verdict: Verdict
    findings: list[MergedFinding] = Field(default_factory=list, description="Blockers first; nits excluded.")
    nits: list[MergedFinding] = Field(default_factory=list, description="Collapsed nits.")
    missing_checks: list[str] = Field(default_factory=list)
    revision_plan: list[str] = Field(default_factory=list, description="At most 7 numbered steps.")
    reviewers: list[ReviewerStatus] = Field(default_factory=list)
    not_reviewed: list[NotReviewed] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Reconciled verdicts and other remarks.")
