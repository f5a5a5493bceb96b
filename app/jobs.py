"""What the queue carries: one request to review one pull request at one head commit.

Also the two ways a job's runner tells the worker that retrying on the usual back-off is wrong:
`DeferJob` (wait until a given time, attempt not counted) and `PermanentJobError` (fail now).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Trigger = Literal["opened", "reopened", "synchronize", "ready_for_review", "comment", "rerequested"]


class ReviewJobSpec(BaseModel):
    """Everything a worker needs to review a pull request; stored as JSON in the job row."""

    delivery_id: str = Field(description="X-GitHub-Delivery of the webhook that asked for it.")
    installation_id: int
    owner: str
    repo: str
    pull_number: int
    head_sha: str
    trigger: Trigger
    reviewers: list[str] | None = Field(default=None, description="Only these reviewers; None = all enabled.")
    requested_by: str | None = Field(default=None, description="Login of who asked (slash command, re-run).")
    comment_id: int | None = Field(default=None, description="The /review comment, for the reaction.")
    check_run_id: int | None = Field(default=None, description="The check run the user asked to re-run.")
    before_sha: str | None = Field(default=None, description="Previous head on synchronize.")
    requested_at: str | None = Field(
        default=None, description="check_suite.updated_at of a suite re-run: tells two presses of Re-run apart.")

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def pr_key(self) -> str:
        """Identifies the pull request across pushes (a newer push supersedes an older queued job)."""
        return f"{self.owner}/{self.repo}#{self.pull_number}"

    @property
    def request_key(self) -> str:
        """Identifies the request, whatever delivery carried it: a signed body replayed under a new
        X-GitHub-Delivery has the same key and is not queued twice.

        (repository, pull request, head SHA, trigger), plus what tells two real requests of one trigger
        on one head apart: the `/review` comment, the check run re-run, the suite re-run's time.
        """
        key = f"{self.pr_key}@{self.head_sha or '-'}:{self.trigger}"
        for name, value in (("comment", self.comment_id), ("check_run", self.check_run_id),
                            ("requested_at", self.requested_at)):
            if value is not None:
                key += f":{name}={value}"
        return key


class DeferJob(Exception):
    """The job cannot go on before `not_before` (epoch seconds), e.g. GitHub's rate limit resets then.

    The worker puts it back in the queue due at that time without counting the attempt.
    """

    def __init__(self, message: str, not_before: float) -> None:
        super().__init__(message)
        self.not_before = not_before


class PermanentJobError(Exception):
    """Retrying would fail the same way (GitHub answered 401, 403, 404, 410 or 422): fail the job now."""
