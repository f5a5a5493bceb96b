"""From a synthesized review to what is posted on GitHub (pure: data in, data out).

Decides, for every finding, whether it becomes an inline comment (on a line the diff can take, above
the repository's threshold, inside the comment budget, not already posted) or a line of the summary;
renders comment bodies with a hidden fingerprint so a re-review never reposts them; and renders the
check run's output within GitHub's size limits.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from typing import Literal

from pydantic import BaseModel, Field

from app.repo_config import RepoConfig
from reviewers.anchoring import spans_allow
from reviewers.contract import SEVERITY_RANK, Category, Severity
from reviewers.safe_text import SUGGESTION_LIMIT, code_fence, code_span, plain_text, safe_text
from reviewers.slicing import LineRange, SlicePlan
from reviewers.synthesis import MergedFinding, ReviewResult
from reviewers.unified_diff import ParsedDiff, parse_unified_diff

# GitHub's documented limits: check-run summary and text at most 65535 characters each, at most 50
# annotations per request; review and comment bodies at most 65536 characters.
CHECK_TEXT_LIMIT = 65535
ANNOTATIONS_PER_REQUEST = 50
BODY_LIMIT = 65536
COMMENT_MESSAGE_LIMIT = 700
COMMENT_MESSAGE_LINES = 6

FINGERPRINT_MARK = "calora:fp="
_FINGERPRINT_RE = re.compile(r"<!--\s*calora:fp=([0-9a-f]{16})\s*-->")

CATEGORY_IMPACT: dict[Category, str] = {
    Category.security: "an attacker could exploit this",
    Category.correctness: "the code may not do what it should",
    Category.performance: "this may be slow or costly at scale",
    Category.reliability: "this may fail or lose data in production",
    Category.maintainability: "this makes the code harder to change safely",
    Category.testing: "the change is not protected by a test",
    Category.style: "readability",
}

SEVERITY_BADGE: dict[Severity, str] = {
    Severity.blocker: "🛑 Blocker",
    Severity.major: "⚠️ Major",
    Severity.minor: "💡 Minor",
    Severity.nit: "Nit",
}

ANNOTATION_LEVEL: dict[Severity, Literal["failure", "warning", "notice"]] = {
    Severity.blocker: "failure",
    Severity.major: "warning",
    Severity.minor: "notice",
    Severity.nit: "notice",
}


# ---------------------------------------------------------------------------------------------
# The diff as GitHub sees it: which new-file lines a comment may sit on, and their text.


class DiffFile(BaseModel):
    """One file of a pull-request diff: its hunks (new-file line ranges) and new-file line texts."""

    path: str
    hunks: list[LineRange] = Field(default_factory=list)
    lines: dict[int, str] = Field(default_factory=dict)


class DiffMap(BaseModel):
    """Where GitHub accepts a RIGHT-side review comment: lines inside one hunk of the new file."""

    files: dict[str, DiffFile] = Field(default_factory=dict)

    def can_comment(self, path: str, line: int, end_line: int | None = None) -> bool:
        """`reviewers.anchoring`'s rule over the file's hunks (the one slicing and training use)."""
        diff_file = self.files.get(path)
        return diff_file is not None and spans_allow(((h.start, h.end) for h in diff_file.hunks), line, end_line)

    def text(self, path: str, line: int, end_line: int | None = None) -> str:
        diff_file = self.files.get(path)
        if diff_file is None:
            return ""
        last = end_line if end_line is not None else line
        return "\n".join(diff_file.lines.get(n, "") for n in range(line, last + 1))


def map_diff(diff: ParsedDiff | str) -> DiffMap:
    """The commentable map of a diff: every file not deleted, with the hunks its parse could read."""
    parsed = parse_unified_diff(diff) if isinstance(diff, str) else diff
    files: dict[str, DiffFile] = {}
    for parsed_file in parsed.files:
        if parsed_file.status == "deleted" or parsed_file.error is not None:
            continue
        diff_file = DiffFile(path=parsed_file.path)
        for hunk in parsed_file.hunks:
            span = hunk.new_span()
            if span is None:
                continue
            diff_file.hunks.append(LineRange(start=span[0], end=span[1]))
            for number, _mark, text in hunk.new_lines():
                diff_file.lines[number] = text.rstrip("\r\n")
        files[parsed_file.path] = diff_file
    return DiffMap(files=files)


def filter_diff(diff: ParsedDiff, keep: Callable[[str], bool]) -> tuple[ParsedDiff, list[str]]:
    """The diff without the files `keep` rejects, and the rejected paths (for the "not reviewed" list).

    Each kept file's text is byte-for-byte what GitHub sent (`ParsedDiff.only`).
    """
    return diff.only(keep)


# ---------------------------------------------------------------------------------------------
# Fingerprints: how a re-review recognises a comment it already made.


def _normalise(text: str) -> str:
    text = re.sub(r"\d+", "", text.lower())
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def fingerprint(path: str, category: Category | str, anchored_text: str, message: str) -> str:
    """16 hex digits over path, category, the anchored lines' text and the normalised message.

    Line numbers are left out on purpose: a finding that moves down because lines were added above it
    is still the same finding.
    """
    anchored = "\n".join(line.strip() for line in anchored_text.splitlines())
    cat = category.value if isinstance(category, Category) else str(category)
    material = "\x1f".join([path, cat, anchored, _normalise(message)])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def fingerprint_marker(value: str) -> str:
    return f"<!-- {FINGERPRINT_MARK}{value} -->"


def extract_fingerprints(bodies: Iterable[str]) -> set[str]:
    """The fingerprint of each comment body (the bot's earlier inline comments)."""
    found: set[str] = set()
    for body in bodies:
        # Only the last marker counts: the bot ends every comment with its own, so one a model quoted
        # inside a suggestion (the only raw model text in a comment) can never silence a finding.
        found.update(_FINGERPRINT_RE.findall(body or "")[-1:])
    return found


# ---------------------------------------------------------------------------------------------
# The plan: inline comments, summary items, the review event and the check-run output.


class InlineComment(BaseModel):
    """One review comment as GitHub's create-review call takes it."""

    path: str
    line: int
    start_line: int | None = None
    side: Literal["RIGHT"] = "RIGHT"
    body: str
    fingerprint: str
    severity: Severity
    finding: MergedFinding

    def to_api(self) -> dict[str, object]:
        payload: dict[str, object] = {"path": self.path, "line": self.line, "side": self.side, "body": self.body}
        if self.start_line is not None and self.start_line < self.line:
            payload["start_line"] = self.start_line
            payload["start_side"] = self.side
        return payload


SummaryReason = Literal["below_threshold", "style", "not_in_diff", "over_budget", "rejected", "nit"]

REASON_TEXT: dict[str, str] = {
    "below_threshold": "below the inline threshold",
    "style": "style note (kept out of the diff)",
    "not_in_diff": "on a line the diff does not show",
    "over_budget": "over the inline comment budget",
    "rejected": "GitHub refused it as an inline comment",
    "nit": "nit",
}


class SummaryItem(BaseModel):
    """A finding reported in the summary instead of inline, and why."""

    finding: MergedFinding
    reason: SummaryReason
    detail: str = ""


class Annotation(BaseModel):
    """A check-run annotation (the Checks API takes at most 50 per request)."""

    path: str
    start_line: int
    end_line: int
    annotation_level: Literal["failure", "warning", "notice"]
    title: str
    message: str

    def to_api(self) -> dict[str, object]:
        return self.model_dump()


Conclusion = Literal["success", "neutral", "failure", "skipped", "cancelled", "action_required", "timed_out"]


class CheckRunOutput(BaseModel):
    """The completed check run's conclusion and output."""

    conclusion: Conclusion
    title: str
    summary: str
    text: str = ""
    annotations: list[Annotation] = Field(default_factory=list)

    def output(self) -> dict[str, object]:
        out: dict[str, object] = {"title": self.title, "summary": self.summary}
        if self.text:
            out["text"] = self.text
        return out


class Coverage(BaseModel):
    """What this run reviewed: the whole pull request or the commits since the last reviewed one."""

    head_sha: str
    incremental: bool = False
    since_sha: str | None = None
    commits: list[tuple[str, str]] = Field(default_factory=list, description="(sha, first line) pairs.")
    not_reviewed: list[tuple[str, str]] = Field(
        default_factory=list, description="(path, reason) left out before the pipeline (config, no patch)."
    )

    def describe(self) -> str:
        if not self.incremental:
            return f"Reviewed the whole pull request at `{self.head_sha[:7]}`."
        shas = ", ".join(f"`{sha[:7]}` {safe_text(title, one_line=True)}".rstrip()
                         for sha, title in self.commits) or "none"
        return (
            f"Reviewed only what changed since `{(self.since_sha or '')[:7]}`, the last reviewed commit: "
            f"{len(self.commits)} commit(s) up to `{self.head_sha[:7]}` ({shas})."
        )


class Publication(BaseModel):
    """Everything one review run posts: inline comments, review body and event, check-run report."""

    comments: list[InlineComment] = Field(default_factory=list)
    summary_items: list[SummaryItem] = Field(default_factory=list)
    duplicates: int = Field(default=0, description="Findings already commented on by an earlier review.")
    request_changes: bool = False
    result: ReviewResult
    coverage: Coverage
    check: CheckRunOutput
    token: str = Field(
        default_factory=lambda: secrets.token_hex(8),
        description="Marks this review's body, so a retry after a lost answer can see it already landed.",
    )

    @property
    def review_marker(self) -> str:
        return f"<!-- calora:review={self.token} -->"

    @property
    def posts_review(self) -> bool:
        """No review at all when nothing new goes inline (restraint), unless changes must be requested."""
        return bool(self.comments) or self.request_changes

    @property
    def event(self) -> Literal["COMMENT", "REQUEST_CHANGES"]:
        return "REQUEST_CHANGES" if self.request_changes else "COMMENT"

    def review_body(self) -> str:
        return render_review_body(self)


def _short_message(message: str) -> str:
    lines = [line.rstrip() for line in message.strip().splitlines() if line.strip()]
    text = "\n".join(lines[:COMMENT_MESSAGE_LINES])
    if len(text) > COMMENT_MESSAGE_LIMIT:
        text = text[: COMMENT_MESSAGE_LIMIT - 1].rstrip() + "…"
    elif len(lines) > COMMENT_MESSAGE_LINES:
        text += " …"
    return text


def _raisers(finding: MergedFinding) -> str:
    names = finding.raised_by or ["a"]
    return ", ".join(code_span(name) for name in names)


def render_comment(finding: MergedFinding, fp: str) -> str:
    """Who raised it, why it matters, what to do (the message), an optional suggestion, the fingerprint."""
    plural = "s" if len(finding.raised_by) > 1 else ""
    head = (
        f"**{SEVERITY_BADGE[finding.severity]} · {finding.category.value}** "
        f"(from the {_raisers(finding)} reviewer{plural}): {CATEGORY_IMPACT[finding.category]}."
    )
    parts = [head, safe_text(_short_message(finding.message))]
    if finding.suggestion is not None and len(finding.suggestion) > SUGGESTION_LIMIT:
        parts.append(f"(A suggested replacement of {len(finding.suggestion)} characters is too long to post.)")
    elif finding.suggestion is not None:
        parts.append(code_fence(finding.suggestion, "suggestion"))
    parts.append(fingerprint_marker(fp))
    return "\n\n".join(parts)


def _sort_key(finding: MergedFinding) -> tuple[int, int, str, int]:
    return (SEVERITY_RANK[finding.severity], -len(finding.raised_by), finding.path, finding.line)


def _commentable_in_slices(plan: SlicePlan | None, finding: MergedFinding) -> bool:
    """The pipeline's own map: some slice that showed this file allows the line range."""
    if plan is None:
        return True
    slices = [s.file(finding.path) for s in plan.slices]
    shown = [f for f in slices if f is not None]
    if not shown:
        return "checks" in finding.raised_by  # a check finding on a file no reviewer sliced
    return any(f.can_comment(finding.line, finding.end_line) for f in shown)


def plan_publication(
    result: ReviewResult,
    *,
    config: RepoConfig,
    diff_map: DiffMap,
    coverage: Coverage,
    slice_plan: SlicePlan | None = None,
    existing_fingerprints: set[str] | frozenset[str] = frozenset(),
) -> Publication:
    """Decide inline vs summary for every finding, apply the budget and dedup, render the check report."""
    comments: list[InlineComment] = []
    summary: list[SummaryItem] = []
    seen: set[str] = set(existing_fingerprints)
    duplicates = 0
    new_blocker = False
    for finding in sorted(result.findings, key=_sort_key):
        fp = fingerprint(
            finding.path, finding.category, diff_map.text(finding.path, finding.line, finding.end_line),
            finding.message,
        )
        if fp in seen:
            duplicates += 1
            continue
        seen.add(fp)
        new_blocker = new_blocker or finding.severity is Severity.blocker
        if not config.goes_inline(finding.severity, finding.category):
            reason: SummaryReason = "style" if finding.category is Category.style else "below_threshold"
            summary.append(SummaryItem(finding=finding, reason=reason))
            continue
        if not (
            diff_map.can_comment(finding.path, finding.line, finding.end_line)
            and _commentable_in_slices(slice_plan, finding)
        ):
            summary.append(SummaryItem(finding=finding, reason="not_in_diff"))
            continue
        if len(comments) >= config.max_inline_comments:
            summary.append(SummaryItem(finding=finding, reason="over_budget"))
            continue
        comments.append(
            InlineComment(
                path=finding.path,
                line=finding.last_line,
                start_line=finding.line if finding.end_line not in (None, finding.line) else None,
                body=render_comment(finding, fp),
                fingerprint=fp,
                severity=finding.severity,
                finding=finding,
            )
        )
    for nit in result.nits:
        summary.append(SummaryItem(finding=nit, reason="nit"))
    publication = Publication(
        comments=comments,
        summary_items=summary,
        duplicates=duplicates,
        request_changes=config.request_changes_on_blockers and new_blocker,
        result=result,
        coverage=coverage,
        check=CheckRunOutput(conclusion="neutral", title="", summary=""),
    )
    publication.check = render_check_report(publication, config)
    return publication


def move_to_summary(publication: Publication, fingerprints: set[str], detail: str) -> Publication:
    """The same publication with the given inline comments moved to the summary (GitHub refused them)."""
    moved = [c for c in publication.comments if c.fingerprint in fingerprints]
    kept = [c for c in publication.comments if c.fingerprint not in fingerprints]
    items = [SummaryItem(finding=c.finding, reason="rejected", detail=detail) for c in moved]
    updated = publication.model_copy(
        update={"comments": kept, "summary_items": [*publication.summary_items, *items]}
    )
    updated.check = publication.check.model_copy(
        update={"annotations": [*publication.check.annotations, *(_annotation(c.finding) for c in moved)]}
    )
    updated.check.text = render_check_text(updated)
    return updated


# ---------------------------------------------------------------------------------------------
# Rendering, within GitHub's limits.


def truncate_text(text: str, limit: int, note: str = "") -> str:
    """`text` cut to at most `limit` UTF-8 bytes (so also characters), ending with a visible note."""
    if len(text.encode("utf-8")) <= limit:
        return text
    marker = f"\n\n… truncated to fit GitHub's limit{': ' + note if note else ''}."
    room = limit - len(marker.encode("utf-8"))
    cut = text.encode("utf-8")[: max(room, 0)].decode("utf-8", errors="ignore")
    return cut + marker


def _where(finding: MergedFinding) -> str:
    span = f"{finding.line}" if finding.end_line in (None, finding.line) else f"{finding.line}-{finding.end_line}"
    return code_span(f"{finding.path}:{span}")


def _summary_line(item: SummaryItem) -> str:
    f = item.finding
    first = _short_message(f.message).splitlines()[0] if f.message.strip() else ""
    why = REASON_TEXT[item.reason] + (f": {item.detail}" if item.detail else "")
    return (f"- {SEVERITY_BADGE[f.severity]} {_where(f)} ({f.category.value}, {_raisers(f)}): "
            f"{safe_text(first, one_line=True)} _[{safe_text(why, one_line=True)}]_")


def render_review_body(publication: Publication) -> str:
    """The review's top comment: a one-line overview, then what did not go inline."""
    lines = [
        f"**Calora review** — {len(publication.comments)} inline comment(s). {publication.coverage.describe()}"
    ]
    if publication.request_changes:
        lines.append("Changes requested: at least one blocker was found (this repository's `.calora.yml` asks "
                     "for that).")
    items = [i for i in publication.summary_items if i.reason != "nit"]
    if items:
        lines.append("\n**Also found (not inline):**")
        lines.extend(_summary_line(i) for i in items)
    nits = [i for i in publication.summary_items if i.reason == "nit"]
    if nits:
        lines.append(f"\n<details><summary>{len(nits)} nit(s)</summary>\n")
        lines.extend(_summary_line(i) for i in nits)
        lines.append("\n</details>")
    if publication.duplicates:
        lines.append(f"\n{publication.duplicates} finding(s) already commented on earlier are not repeated.")
    marker = publication.review_marker
    body = truncate_text("\n".join(lines), BODY_LIMIT - len(marker) - 2, "see the check run for the full list")
    return f"{body}\n\n{marker}"


def _annotation(finding: MergedFinding) -> Annotation:
    return Annotation(
        path=finding.path,
        start_line=finding.line,
        end_line=finding.last_line,
        annotation_level=ANNOTATION_LEVEL[finding.severity],
        title=plain_text(
            f"{finding.severity.value} {finding.category.value} ({', '.join(finding.raised_by) or 'review'})", limit=200
        ),
        message=plain_text(finding.message),
    )


def render_check_text(publication: Publication) -> str:
    result = publication.result
    parts: list[str] = [publication.coverage.describe()]
    if publication.comments:
        parts.append("### Inline comments")
        parts.extend(f"- {SEVERITY_BADGE[c.severity]} {_where(c.finding)} ({c.finding.category.value})"
                     for c in publication.comments)
    if publication.summary_items:
        parts.append("### Findings in the summary")
        parts.extend(_summary_line(i) for i in publication.summary_items)
    if result.missing_checks:
        parts.append("### Missing checks")
        parts.extend(f"- {safe_text(m, one_line=True)}" for m in result.missing_checks)
    if result.revision_plan:
        parts.append("### Revision plan")
        parts.extend(f"{n}. {safe_text(step, one_line=True)}" for n, step in enumerate(result.revision_plan, 1))
    if result.reviewers:
        parts.append("### Reviewers\n| reviewer | slices | verdict | findings | status |\n|---|---|---|---|---|")
        for r in result.reviewers:
            verdict = r.verdict.value if r.verdict else "—"
            status = r.status + (f" ({'; '.join(r.errors)[:200]})" if r.errors else "")
            cells = [safe_text(c, one_line=True).replace("|", "\\|") for c in (r.reviewer, status)]
            parts.append(f"| {cells[0]} | {r.slices} | {verdict} | {r.findings} | {cells[1]} |")
    not_reviewed = [f"- {code_span(n.path)}: {safe_text(n.reason, one_line=True)}" for n in result.not_reviewed]
    not_reviewed += [f"- {code_span(p)}: {safe_text(why, one_line=True)}" for p, why in publication.coverage.not_reviewed]
    if not_reviewed:
        parts.append("### Not reviewed")
        parts.extend(not_reviewed)
    if result.notes:
        parts.append("### Notes")
        parts.extend(f"- {safe_text(n, one_line=True)}" for n in result.notes)
    return truncate_text("\n".join(parts), CHECK_TEXT_LIMIT, "the full list did not fit")


def render_check_report(publication: Publication, config: RepoConfig) -> CheckRunOutput:
    """Conclusion: failure on a blocker, action_required when code went unreviewed (a cap, a failed
    reviewer) and nothing blocks, neutral on findings worth a comment, success otherwise.

    Why action_required: neutral and success both pass a required check, and unreviewed code must not.
    """
    result = publication.result
    reaching = [
        f for f in result.findings if config.goes_inline(f.severity, f.category)
    ]
    blockers = [f for f in reaching if f.severity is Severity.blocker]
    failed = [r for r in result.reviewers if r.status == "error"]
    all_failed = bool(result.reviewers) and len(failed) == len(result.reviewers)
    if all_failed:
        conclusion: Conclusion = "neutral"
        title = "Review incomplete: every reviewer failed"
    elif blockers:
        conclusion, title = "failure", f"{len(blockers)} blocker(s), {len(reaching)} finding(s) worth a look"
    elif not result.complete:
        conclusion = "action_required"
        title = "Review incomplete: not all code was reviewed" + (
            f"; {len(reaching)} finding(s) worth a look" if reaching else ""
        )
    elif reaching:
        conclusion, title = "neutral", f"{len(reaching)} finding(s) worth a look"
    else:
        conclusion = "success"
        title = "No issues worth a comment" if result.reviewers else "Nothing to review"
    if not reaching and not all_failed:
        extra = f" {len(result.nits)} nit(s) in the details." if result.nits else ""
        summary = f"{title}.{extra} {publication.coverage.describe()}"
        if not result.complete:
            summary += f" {safe_text(result.incomplete_reason)}."
    else:
        summary = (
            f"{len(publication.comments)} inline comment(s) posted, "
            f"{len([i for i in publication.summary_items if i.reason != 'nit'])} finding(s) in the summary, "
            f"{len(result.nits)} nit(s), {publication.duplicates} already commented earlier. "
            f"{publication.coverage.describe()}"
        )
        if failed and not all_failed:
            summary += f" {len(failed)} reviewer(s) failed: {', '.join(r.reviewer for r in failed)}."
        if not result.complete and not all_failed:
            summary += f" Incomplete: {safe_text(result.incomplete_reason)}."
        if all_failed:
            summary += " " + safe_text("; ".join(f"{r.reviewer}: {'; '.join(r.errors)[:200]}" for r in failed))
    annotations = [
        _annotation(i.finding) for i in publication.summary_items if i.reason in ("not_in_diff", "over_budget")
    ]
    return CheckRunOutput(
        conclusion=conclusion,
        title=truncate_text(title, 1000),
        summary=truncate_text(summary, CHECK_TEXT_LIMIT, "see the details"),
        text=render_check_text(publication),
        annotations=annotations,
    )


def annotation_batches(annotations: list[Annotation]) -> list[list[Annotation]]:
    """Chunks of at most 50: the Checks API appends each update's annotations to the run."""
    return [annotations[i : i + ANNOTATIONS_PER_REQUEST] for i in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)]
