"""What one round of the loop produced, and when the loop stops (pure: data in, data out).

A round: the author's answer → its patch → the safety checks → `git apply --check` → apply → the test
command (only when the user gave one) → the review (`reviewers.pipeline.run_pipeline`) → the feedback
the author reads next. Any step can end a round early with a clear `message`; the next round asks again.

The loop stops when a round is approved (the review's decision is approve and the tests, when run,
passed), when the rounds run out, or when a round changes nothing (the author sent the same answer or
the same patch again, or one that changes no file).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from loop.patches import Rejection
from reviewers.pipeline import PipelineRun
from reviewers.synthesis import Decision, MergedFinding

RoundStatus = Literal["author_error", "no_patch", "refused", "does_not_apply", "unchanged", "reviewed"]
StopReason = Literal["approved", "max_rounds", "unchanged"]
MAX_ROUNDS_LIMIT = 10


class AuthorTurn(BaseModel):
    """One answer of the author model (or why there was none)."""

    text: str = ""
    error: str | None = Field(default=None, description="Timeout, HTTP error, not a chat completion.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str | None = None


class TestRun(BaseModel):
    """The user's test command, run in the scratch worktree with a time limit."""

    __test__ = False  # not a pytest class

    command: str
    exit_code: int | None = Field(description="None when it timed out or could not start.")
    timed_out: bool = False
    output: str = Field(default="", description="stdout and stderr, the tail kept under a cap.")
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class Dispute(BaseModel):
    """An author's rejection, next to the finding of the previous round it names (when one matches)."""

    rejection: Rejection
    finding: str | None = Field(default=None, description="'path:line [severity] message' of the match.")


class RoundRecord(BaseModel):
    """Everything one round produced: what the store keeps and the console shows."""

    number: int
    status: RoundStatus
    message: str = Field(description="One line: what happened in this round.")
    author: AuthorTurn
    rejections: list[Rejection] = Field(default_factory=list)
    disputes: list[Dispute] = Field(default_factory=list)
    patch: str = Field(default="", description="The patch as the author sent it.")
    problems: list[str] = Field(default_factory=list, description="Why the patch was refused.")
    check_output: str = Field(default="", description="What `git apply --check` said.")
    applied_diff: str = Field(default="", description="The change as applied (`git diff`), reviewed and tested.")
    tests: TestRun | None = None
    review: PipelineRun | None = None
    feedback: str = Field(default="", description="The message the author was sent after this round.")
    started_at: float = 0.0
    seconds: float = 0.0

    @property
    def decision(self) -> Decision | None:
        return self.review.result.decision if self.review else None

    @property
    def approved(self) -> bool:
        return self.decision == "approve" and (self.tests is None or self.tests.passed)

    @property
    def reviewer_tokens(self) -> int:
        """Diff tokens sent to the reviewers (slices); the backends do not report their answers' tokens."""
        return sum(s.tokens for s in self.review.plan.slices) if self.review else 0


class RoundLine(BaseModel):
    """One round in the summary."""

    number: int
    status: RoundStatus
    decision: Decision | None
    tests_passed: bool | None
    message: str
    rejections: list[Rejection] = Field(default_factory=list)
    disputes: list[Dispute] = Field(default_factory=list)
    author_tokens: int = 0
    seconds: float = 0.0


class LoopSummary(BaseModel):
    """The loop's result, for the terminal and (`--format json`) for agents."""

    loop_id: int | None = Field(default=None, description="The record's id in the store (None: not recorded).")
    task: str
    repo: str
    base_sha: str
    branch: str = Field(description="The scratch branch that holds the final patch (one commit), if any applied.")
    worktree: str
    stop_reason: StopReason
    approved: bool
    rounds: list[RoundLine]
    final_patch: str = Field(default="", description="The last patch that applied, as applied.")
    committed: bool = Field(default=False, description="The final patch is a commit on `branch`.")
    applied_to_working_tree: bool = False
    apply_message: str = ""


def round_line(record: RoundRecord) -> RoundLine:
    return RoundLine(
        number=record.number, status=record.status, decision=record.decision,
        tests_passed=record.tests.passed if record.tests else None, message=record.message,
        rejections=record.rejections, disputes=record.disputes,
        author_tokens=record.author.prompt_tokens + record.author.completion_tokens, seconds=record.seconds,
    )


def stop_reason(record: RoundRecord, max_rounds: int) -> StopReason | None:
    """Why the loop stops after this round, or None to go on."""
    if record.status == "reviewed" and record.approved:
        return "approved"
    if record.status == "unchanged":
        return "unchanged"
    if record.number >= max_rounds:
        return "max_rounds"
    return None


def describe_review(record: RoundRecord) -> str:
    """'block: 1 blocker, 0 major, …; tests failed (exit 1)' for a reviewed round."""
    if record.review is None:
        return record.message
    result = record.review.result
    counts = {s: sum(1 for f in result.findings if f.severity.value == s) for s in ("blocker", "major", "minor")}
    counts["nit"] = len(result.nits)
    found = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
    text = f"review {result.decision} ({found})"
    if record.tests is not None:
        t = record.tests
        text += "; tests passed" if t.passed else (
            "; tests timed out" if t.timed_out else f"; tests failed (exit {t.exit_code})")
    return text


def finding_label(f: MergedFinding) -> str:
    end = f"-{f.end_line}" if f.end_line and f.end_line != f.line else ""
    return f"{f.path}:{f.line}{end} [{f.severity.value}] {f.message}"


def match_disputes(rejections: list[Rejection], findings: list[MergedFinding]) -> list[Dispute]:
    """Each rejection next to the previous round's finding it names: by `path:line`, else by a rule id
    (`S608`) or the path alone when only one finding is on it; unmatched rejections are kept as they are."""
    out: list[Dispute] = []
    for rejection in rejections:
        target = rejection.target
        match = next((f for f in findings if re.search(rf"{re.escape(f.path)}:{f.line}\b", target)), None)
        if match is None:
            match = next((f for f in findings for who in f.raised_by
                          if "/" in who and who.rsplit("/", 1)[1] and who.rsplit("/", 1)[1] in target), None)
        if match is None:
            on_path = [f for f in findings if f.path in target]
            match = on_path[0] if len(on_path) == 1 else None
        out.append(Dispute(rejection=rejection, finding=finding_label(match)[:300] if match else None))
    return out
