"""What the queue carries: one request to review one pull request at one head commit."""

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

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def pr_key(self) -> str:
        """Identifies the pull request across pushes (a newer push supersedes an older queued job)."""
        return f"{self.owner}/{self.repo}#{self.pull_number}"
