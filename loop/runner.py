"""The coding loop, top to bottom: ask the author, check and apply its patch, test, review, feed back.

    for each round:
        answer   = author.ask(conversation)                 # untrusted text
        patch    = extract_patch(answer); refuse unsafe paths, symlinks, oversize
        worktree.reset(); git apply --check; git apply       # the scratch worktree only
        tests    = run_tests(test_cmd)                       # only when the user gave one
        review   = run_pipeline(applied diff, reviewers)     # analyzers + specialist reviewers + synthesis
        record the round; stop if approved / unchanged / out of rounds
        conversation += (answer, feedback_message(round))    # blockers first, check and test output

The final patch (the last one that applied) becomes one commit on the scratch branch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from loop.author import AuthorPort
from loop.patches import (
    DEFAULT_MAX_PATCH_BYTES,
    NoPatchError,
    extract_patch,
    parse_rejections,
    patch_problems,
)
from loop.prompts import conversation, feedback_message
from loop.records import LoopRecorder, LoopStart
from loop.rounds import (
    MAX_ROUNDS_LIMIT,
    AuthorTurn,
    LoopSummary,
    RoundRecord,
    StopReason,
    describe_review,
    match_disputes,
    round_line,
    stop_reason,
)
from loop.worktree import ScratchWorktree, apply_to_working_tree, run_tests
from reviewers.backends.base import ReviewerBackend
from reviewers.pipeline import run_pipeline
from reviewers.synthesis import MergedFinding

Progress = Callable[[str], None]


class LoopSettings(BaseModel):
    """One run of `calora loop`."""

    task: str = Field(min_length=1)
    repo: Path
    max_rounds: int = Field(default=3, ge=1, le=MAX_ROUNDS_LIMIT)
    test_cmd: str | None = None
    test_timeout_s: float = Field(default=300.0, gt=0)
    max_patch_bytes: int = Field(default=DEFAULT_MAX_PATCH_BYTES, ge=1_000, le=2_000_000)
    context_chars: int = Field(default=40_000, ge=0, le=400_000, description="Repository text shown to the author.")
    reviewers: tuple[str, ...] | None = None
    apply: bool = False
    branch: str | None = None


def run_loop(
    settings: LoopSettings,
    author: AuthorPort,
    backend: ReviewerBackend | None,
    recorder: LoopRecorder | None = None,
    progress: Progress | None = None,
) -> LoopSummary:
    """Run the loop in a scratch worktree of `settings.repo`; the user's working tree is written only by
    `settings.apply`, and only when the loop ended approved and that tree is clean."""
    say = progress or (lambda _m: None)
    worktree = ScratchWorktree.create(settings.repo, settings.branch)
    say(f"scratch worktree {worktree.path} on branch {worktree.branch} (base {worktree.base[:10]})")
    loop_id = recorder.start(LoopStart(
        task=settings.task, repo=str(worktree.repo), base_sha=worktree.base, branch=worktree.branch,
        worktree=str(worktree.path), author=author.label, reviewers=backend.name if backend else "none",
        test_cmd=settings.test_cmd, max_rounds=settings.max_rounds,
    )) if recorder else None
    try:
        summary = _rounds(settings, author, backend, worktree, recorder, loop_id, say)
    except BaseException as exc:  # Ctrl-C too: the record must not stay "running"
        if recorder:
            recorder.fail(loop_id, f"{type(exc).__name__}: {exc}")
        raise
    if recorder:
        recorder.finish(loop_id, summary)
    return summary


def _rounds(settings: LoopSettings, author: AuthorPort, backend: ReviewerBackend | None, worktree: ScratchWorktree,
            recorder: LoopRecorder | None, loop_id: int | None, say: Progress) -> LoopSummary:
    context = worktree.context(settings.task, settings.context_chars)
    exchanges: list[tuple[str, str]] = []
    records: list[RoundRecord] = []
    last_applied: RoundRecord | None = None
    reason: StopReason = "max_rounds"
    for number in range(1, settings.max_rounds + 1):
        say(f"round {number}: asking the author ({author.label})")
        turn = author.ask(conversation(settings.task, context, exchanges))
        record = play_round(number, turn, settings, backend, worktree, records[-1] if records else None,
                            last_applied)
        record.feedback = feedback_message(record)
        records.append(record)
        if record.applied_diff and record.status == "reviewed":
            last_applied = record
        say(f"round {number}: {record.message}")
        if recorder:
            recorder.round(loop_id, record)
        stop = stop_reason(record, settings.max_rounds)
        if stop is not None:
            reason = stop
            break
        exchanges.append((turn.text, record.feedback))

    approved = bool(records) and records[-1].status == "reviewed" and records[-1].approved
    summary = LoopSummary(
        loop_id=loop_id, task=settings.task, repo=str(worktree.repo), base_sha=worktree.base,
        branch=worktree.branch, worktree=str(worktree.path), stop_reason=reason, approved=approved,
        rounds=[round_line(r) for r in records], final_patch=last_applied.applied_diff if last_applied else "",
    )
    if last_applied is not None:
        verdict = "approved" if approved else f"not approved: {last_applied.message}"
        summary.committed = worktree.commit(
            last_applied.applied_diff,
            f"calora loop: {settings.task.splitlines()[0][:60]}\n\nRound {last_applied.number} of "
            f"{len(records)}, {verdict}.\n",
        )
    else:
        worktree.reset()
    if settings.apply:
        if not approved:
            summary.apply_message = (f"not applied: the loop ended without an approval ({reason}); the last "
                                     f"applied patch is on branch {worktree.branch}" if last_applied else
                                     "not applied: no patch of the author applied")
        else:
            summary.applied_to_working_tree, summary.apply_message = apply_to_working_tree(
                worktree.repo, summary.final_patch, worktree.base)
        say(summary.apply_message)
    return summary


def play_round(
    number: int, turn: AuthorTurn, settings: LoopSettings, backend: ReviewerBackend | None,
    worktree: ScratchWorktree, last: RoundRecord | None, last_reviewed: RoundRecord | None,
) -> RoundRecord:
    """One round from the author's answer to the review; every early end says why in `message`.

    `last` is the previous round (a repeated answer or patch changes nothing); `last_reviewed` the latest
    reviewed one (its findings are what the author's rejections answer, its diff what a new one repeats).
    """
    started, clock = time.time(), time.perf_counter()
    result = last_reviewed.review.result if last_reviewed and last_reviewed.review else None
    previous_findings: list[MergedFinding] = [*result.findings, *result.nits] if result else []
    previous_diff = last_reviewed.applied_diff if last_reviewed else None
    previous_patch = last.patch if last else None

    def done(**fields: object) -> RoundRecord:
        return RoundRecord(number=number, author=turn, started_at=started,
                           seconds=time.perf_counter() - clock + turn.seconds, **fields)  # type: ignore[arg-type]

    if turn.error is not None:
        return done(status="author_error", message=turn.error)
    if last is not None and last.author.text.strip() and turn.text == last.author.text:
        return done(status="unchanged", message="the author's answer is the same as the previous round's")
    try:
        patch = extract_patch(turn.text)
    except NoPatchError as exc:
        rejections = parse_rejections(turn.text)
        return done(status="no_patch", message=f"no patch: {exc}", problems=[str(exc)], rejections=rejections,
                    disputes=match_disputes(rejections, previous_findings))
    rejections = parse_rejections(turn.text, patch)
    disputes = match_disputes(rejections, previous_findings)
    base = {"rejections": rejections, "disputes": disputes, "patch": patch}
    if previous_patch and patch == previous_patch:
        return done(status="unchanged", message="the author sent the previous round's patch again", **base)
    problems = patch_problems(patch, settings.max_patch_bytes)
    worktree.reset()
    problems += [p for p in worktree.path_problems(patch) if p not in problems]
    if problems:
        return done(status="refused", message=f"patch refused: {problems[0]}", problems=problems, **base)
    applies, check_output = worktree.check(patch)
    if not applies:
        first = check_output.splitlines()[0] if check_output else "no output"
        return done(status="does_not_apply", message=f"patch does not apply: {first}", check_output=check_output,
                    **base)
    applied = worktree.apply(patch)
    if not applied.strip():
        return done(status="unchanged", message="the patch changes nothing", check_output=check_output, **base)
    if previous_diff is not None and applied == previous_diff:
        return done(status="unchanged", message="the patch is the same as the previous round's",
                    check_output=check_output, applied_diff=applied, **base)
    tests = run_tests(settings.test_cmd, worktree.path, settings.test_timeout_s) if settings.test_cmd else None
    paths = [line[6:] for line in applied.splitlines() if line.startswith("+++ b/")]
    review = run_pipeline(
        applied, backend, task=settings.task, reviewers=settings.reviewers,
        file_contents=worktree.contents(paths),
        count_tokens=backend.count_tokens if backend is not None else None,
    )
    record = done(status="reviewed", message="", check_output=check_output, applied_diff=applied, tests=tests,
                  review=review, **base)
    record.message = describe_review(record)
    return record
