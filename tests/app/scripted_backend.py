"""A SCRIPTED reviewer backend for the app's edge tests — not a model, and not a test of one.

It implements `ReviewerBackend` and answers each request with the findings a test chose in advance,
on added lines of the real diff, but only when that line is really in the request's slice. This lets
the app tests check what gets posted where, without a model in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unidiff import PatchSet

from reviewers.backends.base import Backend, BackendResult, ReviewerFailure
from reviewers.contract import Category, Finding, ReviewerOutput, ReviewRequest, Severity, Verdict


@dataclass(frozen=True)
class ScriptedFinding:
    """A finding the scripted reviewer `reviewer` reports when its slice shows `path` line `line`."""

    reviewer: str
    path: str
    line: int
    severity: Severity = Severity.major
    category: Category = Category.correctness
    message: str = "This value is not checked before use; an empty input crashes here. Validate it first."
    end_line: int | None = None
    suggestion: str | None = None


# diff 004 of ../shared/github/diffs/real: one python finding on an added line of backend/app/core/db.py.
DB_URL_FINDING = ScriptedFinding("python", "backend/app/core/db.py", 7, Severity.major, Category.reliability,
                                 "str() of the URL can print the password into logs; pass the URL object.")


def added_lines(diff_text: str) -> dict[str, list[int]]:
    """New-file numbers of the added lines of a diff, per path."""
    out: dict[str, list[int]] = {}
    for patched in PatchSet(diff_text):
        out[patched.path] = [
            line.target_line_no for hunk in patched for line in hunk if line.is_added and line.target_line_no
        ]
    return out


@dataclass
class ScriptedBackend(Backend):
    """Answers from a script; `fail_reviewers` answer with a `ReviewerFailure` instead."""

    script: list[ScriptedFinding] = field(default_factory=list)
    fail_reviewers: set[str] = field(default_factory=set)
    name: str = "scripted"
    requests: list[ReviewRequest] = field(default_factory=list)

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        results: list[BackendResult] = []
        for request in requests:
            self.requests.append(request)
            if request.reviewer in self.fail_reviewers:
                results.append(ReviewerFailure(reviewer=request.reviewer, message="scripted failure"))
                continue
            shown = added_lines(request.diff)
            findings = [
                Finding(path=s.path, line=s.line, end_line=s.end_line, severity=s.severity,
                        category=s.category, message=s.message, suggestion=s.suggestion)
                for s in self.script
                if s.reviewer == request.reviewer and s.line in shown.get(s.path, [])
            ]
            verdict = Verdict.block if any(f.severity is Severity.blocker for f in findings) else (
                Verdict.revise if findings else Verdict.approve
            )
            results.append(ReviewerOutput(verdict=verdict, findings=findings, missing_checks=[],
                                          suggested_fix="Fix the findings." if findings else ""))
        return results
