"""From many reviewer answers to one actionable review (pure).

Findings are deduplicated across reviewers, sorted blockers first, nits collapsed, and an overall
verdict is derived from the findings themselves.

Rules, in the order `synthesize` applies them:

- A reviewer's own verdict is checked against its own findings (block if any blocker, revise if any
  major or minor, approve otherwise). A contradiction is reconciled to what the findings say and
  flagged in `notes` and on the reviewer's status row; missing checks alone do not make a verdict.
- Two findings are the same problem when they are on the same path, their line ranges meet within
  `LINE_SLACK` lines, they have the same category and their messages are similar (see
  `similar_messages`). Duplicates merge into one `MergedFinding` with the highest severity, the
  longest message (where analyzers alone raised it: each analyzer's distinct message), a suggestion if any
  raised one, and everyone who raised it in `raised_by`. A group
  holding an analyzer's finding keeps the analyzer's lines (a reviewer's suggestion counts only where it
  replaces all of them). With `findings_alone` off (the local models' default, `CALORA_REVIEWER_FINDINGS`), a group
  no analyzer raised is not posted, a reviewer may not raise an analyzer's nit, the message and any
  suggestion are the analyzer's, and reviewers' missing checks are not posted either.
- The overall verdict follows the same rule over the merged findings. Errors never vanish: a slice
  that got no answer makes the review incomplete (`complete`, `incomplete_reason`), and an incomplete
  review is never presented as an approval or a mere revision (`decision` is "incomplete" unless it blocks).
- Unreviewed code is never approved either: a file left out by a cap (`NotReviewed.kind` "over_cap") or
  whose diff could not be read ("unreadable") makes the review incomplete, unless the caller allows a
  partial review (`allow_partial`, from `--allow-partial` or `.calora.yml`); files skipped by a rule the
  user can see (lock, vendored, generated, binary, no reviewer, excluded) do not.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from reviewers.checks.model import CHECKS_REVIEWER, CheckFinding
from reviewers.contract import SEVERITY_RANK, Finding, ReviewerOutput, Severity, Verdict
from reviewers.safe_text import SUGGESTION_LIMIT, cap, code_fence, code_span, safe_text
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
    answered: int = Field(default=0, description="Slices it answered within the contract.")


Decision = Literal["approve", "revise", "block", "incomplete"]


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
    complete: bool = Field(
        default=True,
        description="Every slice sent to a reviewer got a valid answer and no code was left out by a cap "
        "(unless a partial review was allowed).",
    )
    incomplete_reason: str = Field(default="", description="Why not complete: which reviewers failed.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def decision(self) -> Decision:
        """What to act on: the verdict, except that an incomplete review reads as "incomplete" unless it blocks.

        Why not "revise": a gate that tolerates revise (exit 1) would pass code nobody reviewed.
        """
        if not self.complete and self.verdict is not Verdict.block:
            return "incomplete"
        return self.verdict.value


# --- tunables -----------------------------------------------------------------------------------

LINE_SLACK = 1
"""Line ranges within this many lines of each other count as the same place."""
MIN_SHARED_TOKENS = 2
SIMILAR_OVERLAP = 0.5
"""Messages are similar when they share at least MIN_SHARED_TOKENS content words and those make up
at least SIMILAR_OVERLAP of the shorter message's content words (overlap coefficient), or when the
whole texts are NEAR_IDENTICAL_RATIO alike (difflib). Chosen so that "SQL injection" and "user input
reaches the SQL query: injection risk" merge, while "unused variable x" and "variable y shadows a
builtin" (one shared word) stay apart."""
NEAR_IDENTICAL_RATIO = 0.8
MAX_PLAN_ITEMS = 7
PLAN_TEXT_CHARS = 200
CHECKS = CHECKS_REVIEWER
"""The `raised_by` prefix of analyzer findings: `checks:<tool>/<rule>` (reviewers/checks/)."""

_STOPWORD_TEXT = (
    "the and for are but not you your this that with from into its has have had was were will "
    "would should could can may might must than then there here when where which while what who whom "
    "why how all any each other some such only own same too very just also use used using line lines "
    "code file instead please consider"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
VERDICT_RANK = {Verdict.block: 0, Verdict.revise: 1, Verdict.approve: 2}  # the strongest verdict ranks first


# --- pure pieces --------------------------------------------------------------------------------


def strongest_verdict(verdicts: Iterable[Verdict]) -> Verdict:
    """Block over revise over approve: a reviewer's slices, or two examples combined into one PR."""
    return min(verdicts, key=VERDICT_RANK.__getitem__)


def verdict_for(findings: Iterable[Finding]) -> Verdict:
    """Block if any blocker, revise if any major or minor, approve otherwise."""
    severities = {f.severity for f in findings}
    if Severity.blocker in severities:
        return Verdict.block
    if severities & {Severity.major, Severity.minor}:
        return Verdict.revise
    return Verdict.approve


def message_tokens(message: str) -> frozenset[str]:
    """Content words of a message: lower-cased, stop words and very short words dropped, plurals folded."""
    words = re.findall(r"[a-z0-9_]+", message.lower())
    return frozenset(
        w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w
        for w in words
        if (len(w) >= 3 or any(c.isdigit() for c in w)) and w not in _STOPWORDS
    )


def similar_messages(a: str, b: str) -> bool:
    """Whether two messages likely describe the same problem (thresholds documented above)."""
    ta, tb = message_tokens(a), message_tokens(b)
    shared = len(ta & tb)
    if ta and tb and shared >= MIN_SHARED_TOKENS and shared / min(len(ta), len(tb)) >= SIMILAR_OVERLAP:
        return True
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio() >= NEAR_IDENTICAL_RATIO


def ranges_meet(a: Finding, b: Finding, slack: int = LINE_SLACK) -> bool:
    """Whether two line ranges overlap or lie within `slack` lines of each other."""
    return a.line <= b.last_line + slack and b.line <= a.last_line + slack


def same_problem(a: Finding, b: Finding) -> bool:
    """Same path, same category, lines that meet and a similar message."""
    return (
        a.path == b.path and a.category == b.category and ranges_meet(a, b)
        and similar_messages(a.message, b.message)
    )


def _tool_of(name: str) -> str | None:
    """`ruff` for `checks:ruff/S608`; None for a reviewer."""
    return name.removeprefix(f"{CHECKS}:").split("/", 1)[0] if name.startswith(CHECKS) else None


def evidence_confirmed(a: tuple[str, Finding], b: tuple[str, Finding]) -> bool:
    """An analyzer's finding and a reviewer's (or two analyzers') on the same path, category and lines.

    One problem, two sources: a reviewer explains the analyzer's hit in its own words, and two tools word the
    same rule differently, so their messages need not be similar. Two rules of one tool stay apart.
    """
    (name_a, fa), (name_b, fb) = a, b
    tool_a, tool_b = _tool_of(name_a), _tool_of(name_b)
    if tool_a is None and tool_b is None:
        return False
    if tool_a is not None and tool_a == tool_b:
        return False
    return fa.path == fb.path and fa.category == fb.category and ranges_meet(fa, fb, slack=0)


def finding_order(f: Finding) -> tuple[int, str, int, int, str, str]:
    """Blockers first, then major, minor, nit; then by path and line."""
    return (SEVERITY_RANK[f.severity], f.path, f.line, f.last_line, f.category.value, f.message)


def can_confirm(paths: Iterable[str], check_findings: Iterable[Finding]) -> bool:
    """Whether a reviewer's answer on these files can change a review that posts its findings only where an
    analyzer's confirm them (`findings_alone` off): only an analyzer finding above a nit on one of the files
    gives it anything to confirm or rank (the rules of `_merge_cluster`); elsewhere its answer is withheld."""
    wanted = set(paths)
    return any(f.path in wanted and f.severity is not Severity.nit for f in check_findings)


def _merge_cluster(members: list[tuple[str, Finding]], findings_alone: bool = True) -> MergedFinding | None:
    """One finding for a cluster: the strongest severity, the fullest message (analyzers alone: each of theirs),
    and lines that can be trusted.

    A suggestion replaces exactly its own lines, so a merged finding with one takes that range. An analyzer's
    lines are checked facts and a reviewer's only claims, so in a cluster holding evidence a suggestion counts
    only if it replaces all of the evidence's lines; otherwise the finding keeps the evidence's lines, without it.
    Unless `findings_alone`, a cluster without evidence is withheld (None), reviewers may not raise an
    analyzer's nit, and the words and any suggestion are the analyzer's.
    """
    findings = [f for _, f in members]
    evidence = [f for name, f in members if _tool_of(name) is not None]
    if not findings_alone and not evidence:
        return None
    ranked = sorted(findings, key=lambda f: (SEVERITY_RANK[f.severity], -len(f.message)))
    severity = ranked[0].severity
    if not findings_alone and all(f.severity is Severity.nit for f in evidence):
        severity = Severity.nit
    # A small model's prose is rarely true, nor its code: unless its findings stand alone, the analyzer's count.
    analyzers_only = bool(evidence) and not findings_alone
    message = _evidence_message(evidence) if analyzers_only or len(evidence) == len(findings) else \
        max(findings, key=lambda f: (len(f.message), -SEVERITY_RANK[f.severity])).message
    spanned = evidence or findings
    line, last = min(f.line for f in spanned), max(f.last_line for f in spanned)
    fixers = evidence if analyzers_only else ranked
    with_fix = [f for f in fixers if f.suggestion and (not evidence or (f.line <= line and f.last_line >= last))]
    anchor = with_fix[0] if with_fix else None
    if anchor is not None:
        line, last = anchor.line, anchor.last_line
    raised_by = list(dict.fromkeys(name for name, _ in members))
    return MergedFinding(
        path=findings[0].path, line=line, end_line=last if last != line else None, severity=severity,
        category=findings[0].category, message=message, suggestion=anchor.suggestion if anchor else None,
        raised_by=raised_by,
    )


def _evidence_message(evidence: list[Finding]) -> str:
    """Analyzers' words for one place: each distinct message once, the most severe first.

    Two tools on the same lines may name one problem in other words or two problems at once (hadolint's pip
    cache and the source copied before the install); dropping either would hide advice a tool gave.
    """
    distinct: list[str] = []
    for f in sorted(evidence, key=lambda f: (SEVERITY_RANK[f.severity], -len(f.message))):
        if not any(f.message == seen or similar_messages(f.message, seen) for seen in distinct):
            distinct.append(f.message)
    return " · ".join(distinct)


def cluster_findings(raised: Sequence[tuple[str, Finding]]) -> list[list[tuple[str, Finding]]]:
    """Group findings that are the same problem (transitively); each group in arrival order."""
    # Only findings on the same path and category can merge, so clusters are kept per (path, category).
    buckets: dict[tuple[str, str], list[list[int]]] = {}  # indices into `raised`: arrival order is kept
    for index, (_name, finding) in enumerate(raised):
        clusters = buckets.setdefault((finding.path, finding.category.value), [])
        matching = [
            c for c in clusters
            if any(same_problem(finding, raised[i][1]) or evidence_confirmed(raised[index], raised[i]) for i in c)
        ]
        merged = sorted([index, *(i for c in matching for i in c)])
        clusters[:] = [c for c in clusters if c not in matching] + [merged]
    return [[raised[i] for i in c] for clusters in buckets.values() for c in clusters]


def merge_findings(
    clusters: Sequence[Sequence[tuple[str, Finding]]], findings_alone: bool = True
) -> list[MergedFinding]:
    """Merge each group of `cluster_findings`; sorted. Unless `findings_alone`, groups that no analyzer
    raised are left out (`_merge_cluster`)."""
    merged = (_merge_cluster(list(c), findings_alone) for c in clusters)
    return sorted((f for f in merged if f is not None), key=finding_order)


def dedupe_missing_checks(checks: Iterable[str]) -> list[str]:
    """Missing checks once each, first spelling kept; near-identical wordings count as one."""
    kept: list[str] = []
    keys: list[str] = []
    for check in checks:
        key = " ".join(re.findall(r"\w+", check.casefold()))
        if not key:
            continue
        if any(k == key or difflib.SequenceMatcher(None, k, key).ratio() >= 0.85 for k in keys):
            continue
        keys.append(key)
        kept.append(check.strip())
    return kept


def _where(f: Finding) -> str:
    return f"{f.path}:{f.line}" + (f"-{f.end_line}" if f.end_line and f.end_line != f.line else "")


def _one_line(text: str, limit: int = PLAN_TEXT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def plan_revision(findings: Sequence[MergedFinding], missing_checks: Sequence[str]) -> list[str]:
    """At most MAX_PLAN_ITEMS steps "path:line — what to do", blockers first; grouped by file when many.

    `findings` must be sorted (blockers first) and hold no nits. Missing checks get one closing step
    when there is room.
    """
    room = MAX_PLAN_ITEMS - (1 if missing_checks else 0)
    steps: list[str] = []
    if len(findings) <= room:
        for f in findings:
            fix = " (apply the suggested replacement)" if f.suggestion else ""
            steps.append(f"{_where(f)} — [{f.severity.value}] {_one_line(f.message)}{fix}")
    else:
        by_file: dict[str, list[MergedFinding]] = {}
        for f in findings:  # in severity order, so each file is placed by its worst finding
            by_file.setdefault(f.path, []).append(f)
        files = list(by_file.items())
        shown = files if len(files) <= room else files[: room - 1]
        for path, group in shown:
            lines = ", ".join(str(f.line) for f in sorted(group, key=lambda f: f.line))
            worst = group[0]
            rest = f"; and {len(group) - 1} more here" if len(group) > 1 else ""
            steps.append(f"{path}:{lines} — [{worst.severity.value}] {_one_line(worst.message, 160)}{rest}")
        if len(shown) < len(files):
            others = files[len(shown):]
            count = sum(len(group) for _, group in others)
            names = ", ".join(path for path, _ in others[:5]) + (", …" if len(others) > 5 else "")
            steps.append(f"{count} more finding(s) in {len(others)} other file(s) ({names}) — see the list above")
    if missing_checks:
        steps.append("tests — add the missing checks: " + _one_line("; ".join(missing_checks)))
    return steps[:MAX_PLAN_ITEMS]


def _reconcile_note(outcome: SliceOutcome, output: ReviewerOutput, own: Verdict) -> str:
    counts = {s: sum(1 for f in output.findings if f.severity is s) for s in Severity}
    said = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n) or "no findings"
    return (
        f"{outcome.reviewer} (slice {outcome.slice_index}) answered {output.verdict.value} but its findings "
        f"({said}) say {own.value}; counted as {own.value}"
    )


def unreviewed_code(not_reviewed: Iterable[NotReviewed]) -> list[NotReviewed]:
    """Entries for code no reviewer saw and no visible rule skipped: over a cap, or unreadable."""
    return [n for n in not_reviewed if n.kind != "skipped"]


def describe_unreviewed(left_out: Sequence[NotReviewed]) -> str:
    """"3 file(s) not reviewed: over max_files=2 (b.py, c.py), ..." — which files and why, in one line."""
    by_reason: dict[str, list[str]] = {}
    for n in left_out:
        why = n.reason.split(" (", 1)[0] if n.kind == "over_cap" else "diff could not be parsed"
        by_reason.setdefault(why, []).append(n.path)
    files = len({n.path for n in left_out})
    parts = [
        f"{why} ({', '.join(paths[:5])}{', …' if len(paths) > 5 else ''})" for why, paths in by_reason.items()
    ]
    return f"{files} file(s) not reviewed: " + "; ".join(parts)


# --- the synthesis ------------------------------------------------------------------------------


def synthesize(
    outcomes: list[SliceOutcome],
    check_findings: Sequence[Finding] = (),
    not_reviewed: Sequence[NotReviewed] = (),
    *,
    check_notes: Sequence[str] = (),
    allow_partial: bool = False,
    findings_alone: bool = True,
) -> ReviewResult:
    """One review from every slice's answer or error, the check findings and the not-reviewed list.
    `findings_alone` False: a reviewer's finding is posted only where an analyzer's confirms it."""
    rows: dict[str, ReviewerStatus] = {}
    raised: list[tuple[str, Finding]] = []
    missing: list[str] = []
    notes: list[str] = []
    verdicts: dict[str, list[Verdict]] = {}
    for outcome in outcomes:
        row = rows.setdefault(outcome.reviewer, ReviewerStatus(reviewer=outcome.reviewer, slices=0))
        row.slices += 1
        output = outcome.output
        if outcome.error is not None or output is None:
            reason = outcome.error if outcome.error is not None else "returned neither an answer nor an error"
            row.errors.append(f"slice {outcome.slice_index}: {reason}")
        if output is None:
            continue
        row.answered += 1
        own = verdict_for(output.findings)
        if own is not output.verdict:
            row.reconciled = True
            notes.append(_reconcile_note(outcome, output, own))
        verdicts.setdefault(outcome.reviewer, []).append(own)
        row.findings += len(output.findings)
        raised.extend((outcome.reviewer, f) for f in output.findings)
        missing.extend(output.missing_checks)
    for row in rows.values():
        answered = verdicts.get(row.reviewer, [])
        row.verdict = strongest_verdict(answered) if answered else None
        row.status = "ok" if not row.errors else ("partial" if row.answered else "error")
    raised.extend((f.source if isinstance(f, CheckFinding) else CHECKS, f) for f in check_findings)

    clusters = cluster_findings(raised)
    merged = merge_findings(clusters, findings_alone)
    if not findings_alone:
        withheld = len(clusters) - len(merged)
        if withheld:
            notes.append(f"{withheld} reviewer finding(s) that no analyzer confirms were not posted: a local model's "
                         "finding is posted only where an analyzer's confirms it (CALORA_REVIEWER_FINDINGS=all "
                         "posts them)")
        if missing:
            notes.append(f"{len(dedupe_missing_checks(missing))} missing check(s) a reviewer suggested were not "
                         "posted, for the same reason")
            missing = []
    findings = [f for f in merged if f.severity is not Severity.nit]
    nits = [f for f in merged if f.severity is Severity.nit]
    missing_checks = dedupe_missing_checks(missing)

    table = sorted(rows.values(), key=lambda r: r.reviewer)
    failed = sum(len(r.errors) for r in table)
    total = sum(r.slices for r in table)
    complete = failed == 0
    reason = ""
    if not complete:
        broken = ", ".join(f"{r.reviewer} ({len(r.errors)}/{r.slices})" for r in table if r.errors)
        if all(r.answered == 0 for r in table):
            reason = f"no reviewer produced a valid answer: all {total} slice(s) failed ({broken})"
        else:
            reason = f"{failed} of {total} slice(s) got no valid answer ({broken}); their code was not reviewed"
    left_out = unreviewed_code(not_reviewed)
    if left_out:
        what = describe_unreviewed(left_out)
        if allow_partial:
            notes.append(f"partial review allowed: {what}")
        else:
            complete = False
            reason = "; ".join(filter(None, [reason, what + " (raise the cap or allow a partial review)"]))
    notes.extend(check_notes)
    return ReviewResult(
        verdict=verdict_for(merged),
        findings=findings,
        nits=nits,
        missing_checks=missing_checks,
        revision_plan=plan_revision(findings, missing_checks),
        reviewers=table,
        not_reviewed=list(not_reviewed),
        notes=notes,
        complete=complete,
        incomplete_reason=reason,
    )


# --- renderings ---------------------------------------------------------------------------------

_DECISION_HEADLINE = {
    "block": "🔴 Block",
    "revise": "🟡 Revise",
    "approve": "🟢 Approve",
    "incomplete": "⚠️ Incomplete — no approval",
}


def _text(value: str) -> str:
    """Untrusted model text made inert for one markdown line (reviewers.safe_text)."""
    return safe_text(value, one_line=True)


def _cell(value: str) -> str:
    return _text(value).replace("|", "\\|")


def _finding_lines(f: MergedFinding) -> list[str]:
    who = ", ".join(f.raised_by) or "review"
    out = [f"- **{code_span(_where(f))}** · {f.category.value} · {_text(who)}: {_text(f.message)}"]
    if f.suggestion and len(f.suggestion) > SUGGESTION_LIMIT:
        out += ["", f"  (a suggested replacement of {len(f.suggestion)} characters is too long to show)"]
    elif f.suggestion:
        out += ["", "  Suggested replacement:", ""]
        out += [f"  {line}" if line else "" for line in code_fence(f.suggestion).splitlines()]
    return out


def _counts(result: ReviewResult) -> str:
    counts = {s: sum(1 for f in result.findings if f.severity is s) for s in Severity}
    counts[Severity.nit] = len(result.nits)
    plural = {Severity.blocker: "blockers", Severity.nit: "nits"}
    shown = [f"{n} {plural.get(s, s.value) if n != 1 else s.value}" for s, n in counts.items() if n]
    return " · ".join(shown) or "no findings"


def render_markdown(result: ReviewResult) -> str:
    """A PR-comment-style review: verdict, blockers and majors with file:line, nits collapsed, plan, status."""
    parts = [f"## {_DECISION_HEADLINE[result.decision]}", "", f"**{_counts(result)}**"]
    if not result.complete:
        parts += ["", f"> ⚠️ **INCOMPLETE REVIEW: {_text(result.incomplete_reason)}.**"]
        if result.decision == "incomplete":
            parts.append("> Nothing here approves this change; rerun the review or review it by hand.")
        else:
            parts.append(f"> The verdict ({result.verdict.value}) stands on the parts that were reviewed.")
    for severity in (Severity.blocker, Severity.major, Severity.minor):
        group = [f for f in result.findings if f.severity is severity]
        if group:
            title = {"blocker": "Blockers", "major": "Major", "minor": "Minor"}[severity.value]
            parts += ["", f"### {title}", ""]
            for f in group:
                parts += _finding_lines(f)
    if result.nits:
        parts += ["", f"<details><summary>{len(result.nits)} nit(s)</summary>", ""]
        for f in result.nits:
            parts += _finding_lines(f)
        parts += ["", "</details>"]
    if result.revision_plan:
        parts += ["", "### Revision plan", ""]
        parts += [f"{n}. {_text(step)}" for n, step in enumerate(result.revision_plan, 1)]
    if result.missing_checks:
        parts += ["", "### Missing checks", ""] + [f"- {_text(m)}" for m in result.missing_checks]
    if result.reviewers:
        parts += ["", "### Reviewers", "", "| reviewer | slices | verdict | findings | status | errors |",
                  "|---|---|---|---|---|---|"]
        for r in result.reviewers:
            verdict = (r.verdict.value if r.verdict else "—") + (" (reconciled)" if r.reconciled else "")
            status = r.status.upper() if r.status != "ok" else "ok"
            errors = "; ".join(_cell(e) for e in r.errors) or ""
            parts.append(f"| {_cell(r.reviewer)} | {r.slices} | {verdict} | {r.findings} | {status} | {errors} |")
    if result.not_reviewed:
        parts += ["", "### Not reviewed", ""]
        parts += [
            f"- {code_span(n.path)}" + (f" ({_text(n.reviewer)})" if n.reviewer else "") + f": {_text(n.reason)}"
            for n in result.not_reviewed
        ]
    if result.notes:
        parts += ["", "### Notes", ""] + [f"- {_text(n)}" for n in result.notes]
    return "\n".join(parts) + "\n"


def render_json(result: ReviewResult) -> str:
    """The review for a coding agent: every key always present, in a fixed order, indent=2.

    JSON consumers get the model's text as it was (no markdown escaping: they do not render markdown),
    except that each finding's message is capped like everywhere else; redaction is applied by the
    caller at the exit point (`calora review` prints `redact(render_json(...))`).
    """
    data = result.model_dump(mode="json")
    for finding in (*data["findings"], *data["nits"]):
        finding["message"] = cap(finding["message"])
    return json.dumps(data, indent=2, ensure_ascii=False)
