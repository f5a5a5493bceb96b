"""What the console pages show, computed from stored records (pure: data in, view models out).

The multi-agent view puts each reviewer's answer next to the code it was about: a finding's lines
are looked up in the diff of the slice that reviewer saw, so the page shows the exact text the model
was given, with new-file line numbers, and the repository context it was given beside the diff.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from reviewers.checks.model import CheckFinding
from reviewers.contract import ContextSnippet, Finding, ReviewerOutput, ReviewRequest
from reviewers.pipeline import PipelineRun
from reviewers.slicing import Slice
from reviewers.synthesis import MergedFinding, ReviewResult
from reviewers.unified_diff import parse_unified_diff

CONTEXT_LINES = 3


class ContextLine(BaseModel):
    """One line of diff around a finding."""

    new_line: int | None = Field(description="Line number in the new file; None for a removed line.")
    mark: str = Field(description="'+' added, '-' removed, ' ' context.")
    text: str
    flagged: bool = Field(default=False, description="Inside the finding's line range.")


class FindingView(BaseModel):
    finding: Finding | MergedFinding
    context: list[ContextLine] = Field(default_factory=list)
    raised_by: list[str] = Field(default_factory=list)


class SliceView(BaseModel):
    """One slice, the request its reviewer got and the answer (or error) it gave."""

    reviewer: str
    index: int
    files: list[str]
    tokens: int
    split_hunk: bool = False
    diff: str
    check_output: str = ""
    instructions: str = ""
    context: list[ContextSnippet] = Field(
        default_factory=list, description="Repository text the reviewer was shown, each with why it was picked."
    )
    conventions: str = Field(default="", description="The team's conventions it was shown (from the base branch).")
    output: ReviewerOutput | None = None
    answer_json: str | None = Field(
        default=None, description="The answer as JSON, as the reviewer returned it."
    )
    error: str | None = None
    seconds: float = 0.0
    findings: list[FindingView] = Field(default_factory=list)
    answered: bool = False


class MultiAgentView(BaseModel):
    """The review detail: task, slices with reviewers and answers, check evidence, synthesis."""

    task: str
    slices: list[SliceView]
    unanswered: int = Field(description="Slices that got no answer (backend not called, or an error).")
    check_findings: list[FindingView]
    check_notes: list[str]
    plan_notes: list[str]
    result: ReviewResult
    findings: list[FindingView] = Field(description="The synthesis' merged findings, blockers first.")
    nits: list[FindingView]
    seconds: float


def code_context(
    diff_text: str, path: str, line: int, end_line: int | None = None, around: int = CONTEXT_LINES
) -> list[ContextLine]:
    """The diff lines of `path` from `around` lines before `line` to `around` after `end_line`.

    Removed lines between them are kept (they are part of what the reviewer read); an empty list
    when the diff does not show those lines.
    """
    last = end_line if end_line is not None else line
    try:
        parsed = parse_unified_diff(diff_text)
    except Exception:  # noqa: BLE001 - a stored diff that no longer parses just shows no context
        return []
    out: list[ContextLine] = []
    for file in parsed.files:
        if file.path != path:
            continue
        for hunk in file.hunks:
            new_no = hunk.new_start
            rows: list[ContextLine] = []
            for text, mark in zip(hunk.lines, hunk.marks, strict=False):
                if mark == "\\":
                    continue
                if mark == "-":
                    rows.append(ContextLine(new_line=None, mark="-", text=text[1:]))
                    continue
                rows.append(
                    ContextLine(
                        new_line=new_no,
                        mark="+" if mark == "+" else " ",
                        text=text[1:],
                        flagged=line <= new_no <= last,
                    )
                )
                new_no += 1
            numbered = [r.new_line for r in rows if r.new_line is not None]
            if not numbered or numbered[-1] < line - around or numbered[0] > last + around:
                continue
            keep = [
                i
                for i, r in enumerate(rows)
                if r.new_line is not None and line - around <= r.new_line <= last + around
            ]
            if keep:
                out.extend(rows[keep[0] : keep[-1] + 1])
    return out


def _slice_for(run: PipelineRun, finding: Finding, reviewers: list[str]) -> Slice | None:
    """The slice that shows the finding's line, preferring one of the reviewers that raised it."""
    candidates = [s for s in run.plan.slices if s.file(finding.path) is not None]
    candidates.sort(key=lambda s: s.reviewer not in reviewers)
    for piece in candidates:
        file = piece.file(finding.path)
        if file is not None and any(start <= finding.line <= end for start, end in file.ranges):
            return piece
    return candidates[0] if candidates else None


def finding_view(run: PipelineRun, finding: Finding | MergedFinding, diff: str | None = None) -> FindingView:
    if isinstance(finding, CheckFinding):
        raised_by = [finding.source]  # the analyzer and rule, e.g. checks:ruff/S608
    else:
        raised_by = list(getattr(finding, "raised_by", []))
    if diff is None:
        piece = _slice_for(run, finding, raised_by)
        diff = piece.diff if piece is not None else ""
    return FindingView(
        finding=finding,
        raised_by=raised_by,
        context=code_context(diff, finding.path, finding.line, finding.end_line),
    )


def multi_agent_view(run: PipelineRun) -> MultiAgentView:
    """Everything the review detail page shows, from one stored PipelineRun."""
    requests: dict[tuple[str, int], ReviewRequest] = {}
    per_reviewer: dict[str, int] = {}
    for piece, request in zip(run.plan.slices, run.requests, strict=False):
        requests[(piece.reviewer, piece.index)] = request
        per_reviewer[piece.reviewer] = per_reviewer.get(piece.reviewer, 0) + 1
    outcomes = {(o.reviewer, o.slice_index): o for o in run.outcomes}
    slices: list[SliceView] = []
    for piece in run.plan.slices:
        request = requests.get((piece.reviewer, piece.index))
        outcome = outcomes.get((piece.reviewer, piece.index))
        output = outcome.output if outcome else None
        slices.append(
            SliceView(
                reviewer=piece.reviewer,
                index=piece.index,
                files=[f.path for f in piece.files],
                tokens=piece.tokens,
                split_hunk=piece.split_hunk,
                diff=piece.diff,
                check_output=request.check_output if request else "",
                instructions=request.instructions if request else "",
                context=list(request.context) if request else [],
                conventions=request.conventions if request else "",
                output=output,
                answer_json=output.model_dump_json(indent=2, exclude_none=True) if output else None,
                error=outcome.error if outcome else None,
                seconds=outcome.seconds if outcome else 0.0,
                findings=[finding_view(run, f, piece.diff) for f in output.findings] if output else [],
                answered=output is not None,
            )
        )
    task = next((r.task for r in run.requests if r.task), "")
    return MultiAgentView(
        task=task,
        slices=slices,
        unanswered=sum(1 for s in slices if not s.answered),
        check_findings=[finding_view(run, f) for f in run.check_findings],
        check_notes=run.check_notes,
        plan_notes=run.plan.notes,
        result=run.result,
        findings=[finding_view(run, f) for f in run.result.findings],
        nits=[finding_view(run, f) for f in run.result.nits],
        seconds=run.seconds,
    )


# --- links -------------------------------------------------------------------------------------------------------


def github_web_url(api_url: str) -> str:
    """The web root for an API root: api.github.com → github.com, GHE's host/api/v3 → host."""
    parts = urlsplit(api_url.rstrip("/"))
    host = parts.netloc
    if host == "api.github.com":
        return "https://github.com"
    if host.startswith("api."):
        return f"{parts.scheme}://{host[4:]}"
    path = parts.path
    path = path.removesuffix("/api/v3")
    return f"{parts.scheme}://{host}{path}"


def pull_url(web: str, owner: str, repo: str, number: int) -> str:
    return f"{web}/{owner}/{repo}/pull/{number}"


def commit_url(web: str, owner: str, repo: str, sha: str) -> str:
    return f"{web}/{owner}/{repo}/commit/{sha}"
