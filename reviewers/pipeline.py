"""One review, start to finish: diff → slices → checks → reviewer requests → answers → synthesis.

Both `calora review` and the GitHub worker call `run_pipeline`; the backend and the file contents are
passed in, so this module does no I/O of its own beyond what the backend and checks do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel, Field

from reviewers.anchoring import drop_unanchored
from reviewers.backends.base import CodeEgress, ReviewerBackend, ReviewerFailure, describe_egress
from reviewers.checks import (
    TOOLS,
    CheckFinding,
    CheckReport,
    Diagnostic,
    Tool,
    inputs_from_contents,
    inputs_from_diff,
    run_checks,
)
from reviewers.context import ContextReader, read_conventions, retrieve_context
from reviewers.context.profile import PROFILES
from reviewers.context.source import RepoSource
from reviewers.contract import ContextSnippet, ReviewRequest
from reviewers.slicing import Slice, SliceLimits, SlicePlan, TokenCounter, approx_token_count, slice_diff
from reviewers.synthesis import ReviewResult, SliceOutcome, can_confirm, synthesize
from reviewers.unified_diff import ParsedDiff, read_diff

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


class PipelineRun(BaseModel):
    """Everything one review produced, for printing, posting and the console."""

    plan: SlicePlan
    checks: CheckReport | None = Field(default=None, description="The analyzers' whole report (what ran, on what).")
    requests: list[ReviewRequest] = Field(default_factory=list)
    outcomes: list[SliceOutcome] = Field(default_factory=list)
    check_findings: list[CheckFinding] = Field(default_factory=list)
    check_notes: list[str] = Field(default_factory=list)
    result: ReviewResult
    left_machine: list[CodeEgress] = Field(
        default_factory=list, description="Slices a cloud fallback reviewer was sent (empty: nothing left)."
    )
    seconds: float = 0.0


def changed_lines(plan: SlicePlan) -> dict[str, set[int]]:
    """Added new-file lines per path across all slices (what the checks report on)."""
    out: dict[str, set[int]] = {}
    for piece in plan.slices:
        for f in piece.files:
            lines = out.setdefault(f.path, set())
            for start, end in f.added:
                lines.update(range(start, end + 1))
    return out


def gather_evidence(
    diff: ParsedDiff,
    plan: SlicePlan,
    file_contents: Mapping[str, str] | None,
    analyzers: Sequence[Tool] | None,
    external: Sequence[Diagnostic],
    say: Progress,
) -> CheckReport | None:
    """The analyzers' findings on the lines this plan reviews: whole files when given, else the diff's view."""
    touched = changed_lines(plan)
    if not touched:
        return None
    contents = {p: t for p, t in (file_contents or {}).items() if p in touched}
    inputs = inputs_from_contents(contents, touched)
    if set(touched) - set(contents):  # files whose contents we lack are judged from what the diff shows
        inputs += [item for item in inputs_from_diff(diff.files)
                   if item.path in touched and item.path not in contents]
    tools = TOOLS if analyzers is None else analyzers
    if not inputs or (not tools and not external):
        return None
    say(f"running analyzers on {len(inputs)} file(s)")
    return run_checks(inputs, tools=tools, external=external)


def build_request(
    piece: Slice, *, task: str, checks: CheckReport | None, instructions: str,
    context: list[ContextSnippet] | None = None, conventions: str = "",
) -> ReviewRequest:
    """The request one reviewer gets for one slice, with the check evidence on its files."""
    evidence = checks.evidence_for([f.path for f in piece.files]) if checks else ""
    return ReviewRequest(
        reviewer=piece.reviewer, task=task, diff=piece.diff, check_output=evidence, instructions=instructions,
        context=context or [], conventions=conventions,
    )


NO_REPOSITORY_NOTE = "no repository: no context (reviewers saw the diff alone)"


def gather_context(
    plan: SlicePlan, source: RepoSource, limits: SliceLimits, count_tokens: TokenCounter, say: Progress,
    conventions: str = "",
) -> list[list[ContextSnippet]]:
    """Each slice's repository context, within `limits.context_budget` of that slice less what the
    conventions take (one reader for all slices, so each path is read once)."""
    reader = ContextReader(source)
    changed = {f.path for piece in plan.slices for f in piece.files}
    folders = sorted({path.rpartition("/")[0] for path in changed})
    profile = PROFILES.lines_for(reader, folders)
    taken = count_tokens(conventions) if conventions else 0
    contexts = [
        retrieve_context(piece, reader, budget_tokens=limits.context_budget(piece.tokens) - taken,
                         count_tokens=count_tokens, profile=profile, changed_paths=changed)
        for piece in plan.slices
    ]
    say(f"context: {sum(map(len, contexts))} snippet(s) for {len(contexts)} slice(s) "
        f"({reader.reads} read(s), {reader.listings} listing(s))")
    return contexts


def run_pipeline(
    diff_text: str | bytes | ParsedDiff,
    backend: ReviewerBackend | None,
    *,
    task: str = "",
    reviewers: tuple[str, ...] | list[str] | None = None,
    limits: SliceLimits | None = None,
    file_contents: Mapping[str, str] | None = None,
    instructions_for: Callable[[str], str] | None = None,
    count_tokens: TokenCounter | None = None,
    progress: Progress | None = None,
    allow_partial: bool = False,
    analyzers: Sequence[Tool] | None = None,
    external_evidence: Sequence[Diagnostic] = (),
    evidence: CheckReport | None = None,
    context_source: RepoSource | None = None,
    base_source: RepoSource | None = None,
) -> PipelineRun:
    """Review a diff. With `backend=None` no model runs: routing, slicing and the analyzers' evidence.

    `file_contents` (full new-side texts, from `--git` or the App) lets analyzers judge whole files; without
    it they judge what the diff shows. `analyzers=()` switches them off; `evidence` is a report computed
    earlier (where the tools are not installed, e.g. a GPU machine grading scenarios); `external_evidence` are diagnostics
    from the user's own tools (SARIF), filtered and merged the same way. `context_source` (the reviewed head)
    fills each request's repository context; `base_source` (the base branch) gives the team's conventions.
    Without a `context_source` the review's notes say there was no repository.
    """
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    enabled = tuple(reviewers) if reviewers else None
    # Parsed once here (or by the App before): slicing and the analyzers' fragments both read this.
    diff = diff_text if isinstance(diff_text, ParsedDiff) else read_diff(diff_text)
    plan = slice_diff(diff, limits or SliceLimits(), count_tokens or approx_token_count, enabled)
    say(f"{len(plan.slices)} slice(s) for {len({s.reviewer for s in plan.slices})} reviewer(s); "
        f"{len(plan.not_reviewed)} item(s) not reviewed")

    checks = evidence if evidence is not None else gather_evidence(
        diff, plan, file_contents, analyzers, external_evidence, say)

    counter = count_tokens or approx_token_count
    limits = limits or SliceLimits()
    contexts, conventions, context_notes = _repository_context(
        plan, context_source, base_source, limits, counter, say)
    requests = [
        build_request(
            piece, task=task, checks=checks,
            instructions=_instructions(piece, instructions_for), context=context, conventions=conventions,
        )
        for piece, context in zip(plan.slices, contexts, strict=True)
    ]
    outcomes: list[SliceOutcome] = []
    egress: list[CodeEgress] = []
    check_findings = checks.findings if checks else []
    findings_alone = getattr(backend, "findings_alone", True)
    with_model = [(piece, r) for piece, r in zip(plan.slices, requests, strict=True)
                  if backend is not None and backend.asks(r.reviewer)]
    # Where a reviewer's findings are posted only if an analyzer's confirm them, a slice with nothing to
    # confirm would be answered and the answer withheld: it is not asked (same review, no model time).
    asked = [(piece, r) for piece, r in with_model
             if findings_alone or can_confirm((f.path for f in piece.files), check_findings)]
    nothing_to_confirm = len(with_model) - len(asked)
    not_asked = sorted({r.reviewer for r in requests} - {r.reviewer for _, r in with_model}) if backend else []
    if backend is not None and asked:
        say(f"asking {len(asked)} reviewer request(s) of backend {backend.name}")
        t0 = time.perf_counter()
        try:
            answered = backend.answer([r for _, r in asked])
            answers, egress = answered.results, answered.egress
        except Exception as exc:  # a broken backend must still give a result that says so
            log.exception("backend %s failed", backend.name)
            answers = [ReviewerFailure(reviewer=r.reviewer, message=f"backend error: {exc}") for _, r in asked]
        per_request = (time.perf_counter() - t0) / len(asked)
        for (piece, _request), answer in zip(asked, answers, strict=True):
            failed = isinstance(answer, ReviewerFailure)
            outcomes.append(SliceOutcome(
                reviewer=piece.reviewer, slice_index=piece.index, seconds=per_request,
                error=answer.message if failed else None, output=None if failed else answer,
            ))
    outcomes, unanchored = drop_unanchored(plan.slices, outcomes)  # anchored in its slice, or dropped
    no_model = ["no reviewer model ran: the findings are the analyzers' evidence alone"] \
        if backend is None else []
    if not_asked:
        no_model.append(f"{', '.join(not_asked)}: not asked — no adapter of their own, and the bare base model "
                        "is not asked by default (CALORA_ASK_BASE_MODEL=true asks it); their code has the "
                        "analyzers' evidence alone")
    if nothing_to_confirm:
        no_model.append(f"{nothing_to_confirm} of {len(with_model)} slice(s) not sent to a reviewer: no analyzer "
                        "finding above a nit on their files, and a reviewer's finding is posted only where an "
                        "analyzer's confirms it (CALORA_REVIEWER_FINDINGS=all asks every slice)")
    notes = [*no_model, *context_notes, *unanchored, *(checks.notes + checks.coverage_lines() if checks else []),
             *([describe_egress(egress)] if egress else [])]
    result = synthesize(outcomes, check_findings, plan.not_reviewed, check_notes=notes, allow_partial=allow_partial,
                        findings_alone=findings_alone)
    return PipelineRun(
        plan=plan, requests=requests, outcomes=outcomes, check_findings=check_findings,
        check_notes=checks.notes if checks else [], checks=checks, result=result, left_machine=egress,
        seconds=time.perf_counter() - started,
    )


def _repository_context(
    plan: SlicePlan, head: RepoSource | None, base: RepoSource | None, limits: SliceLimits,
    count_tokens: TokenCounter, say: Progress,
) -> tuple[list[list[ContextSnippet]], str, list[str]]:
    """(context per slice, conventions, notes). Context helps a review; failing to read it never fails one."""
    empty: list[list[ContextSnippet]] = [[] for _ in plan.slices]
    if not plan.slices:
        return empty, "", []
    notes = [] if head is not None else [NO_REPOSITORY_NOTE]
    conventions = ""
    try:
        conventions = read_conventions(base) if base is not None else ""
        contexts = gather_context(plan, head, limits, count_tokens, say, conventions) if head is not None else empty
    except Exception as exc:  # a source that cannot be read (git gone, API down): the diff alone, said so
        log.exception("repository context could not be read")
        return empty, conventions, [f"repository context not read ({type(exc).__name__}: {exc}): the diff alone"]
    return contexts, conventions, notes


def _instructions(piece: Slice, instructions_for: Callable[[str], str] | None) -> str:
    if instructions_for is None:
        return ""
    parts = [instructions_for(f.path) for f in piece.files]
    return "\n".join(dict.fromkeys(p for p in parts if p))
