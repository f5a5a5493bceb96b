"""What the analyzers report, as data: diagnostics, findings with their source, per-tool runs.

A `CheckFinding` is a contract `Finding` that also says which tool and rule raised it, so synthesis can
name the source (`checks:ruff/S608`) and merge it with a reviewer's finding on the same line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field

from reviewers.contract import SEVERITY_RANK, Category, Finding, Severity

CHECKS_REVIEWER = "checks"
"""The prefix of `raised_by` names of analyzer findings: `checks:<tool>/<rule>`."""

MAX_EVIDENCE_LINES = 20
"""Findings listed per `evidence_for` text, most severe first; the rest are counted, so a prompt stays
bounded."""

class Diagnostic(BaseModel):
    """One analyzer message as the tool gave it, with the path relative to the reviewed tree."""

    tool: str
    path: str
    line: int = Field(ge=1)
    end_line: int | None = None
    code: str
    message: str
    doc_url: str | None = None
    category: Category | None = Field(default=None, description="Set by producers that classify (SARIF).")
    severity: Severity | None = None


class CheckFinding(Finding):
    """A finding raised by an analyzer (or a SARIF producer): the contract's shape plus its source."""

    tool: str
    rule: str
    doc_url: str | None = None

    @property
    def source(self) -> str:
        return f"{CHECKS_REVIEWER}:{self.tool}/{self.rule}"


class FileCoverage(BaseModel):
    """How one tool saw one file: the whole file, a fragment rebuilt from the diff, or not at all."""

    path: str
    how: str = Field(description="'whole file', 'fragment' or 'skipped: <why>'.")


class ToolRun(BaseModel):
    """What happened when one analyzer ran (or did not) on a set of files."""

    tool: str
    version: str = ""
    files: list[str] = Field(default_factory=list)
    coverage: list[FileCoverage] = Field(default_factory=list)
    status: Literal["ok", "missing", "timeout", "failed", "capped", "skipped"]
    seconds: float = 0.0
    kept: int = Field(default=0, description="Diagnostics on changed lines, reported as findings.")
    outside_changes: int = Field(default=0, description="Diagnostics on unchanged lines, left out.")
    detail: str = ""


class CheckReport(BaseModel):
    """All analyzer findings on changed lines, plus what ran, on what, and what could not."""

    findings: list[CheckFinding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Missing tools, timeouts, failures.")
    runs: list[ToolRun] = Field(default_factory=list)

    def coverage_lines(self) -> list[str]:
        """One line per tool that had files: which files it judged and how (for the review's notes)."""
        lines = []
        for run in self.runs:
            if not run.coverage:
                continue
            how: dict[str, list[str]] = {}
            for item in run.coverage:
                how.setdefault(item.how, []).append(item.path)
            parts = "; ".join(f"{kind}: {', '.join(paths)}" for kind, paths in how.items())
            state = "" if run.status == "ok" else f" [{run.status}]"
            lines.append(f"evidence {run.tool}{state}: {parts}")
        return lines

    def evidence_for(self, paths: Iterable[str]) -> str:
        """The text for `ReviewRequest.check_output` of a slice covering `paths` ("" if nothing ran).

        Most severe first and bounded, so the reviewer sees what matters within its window.
        """
        wanted = set(paths)
        findings = sorted(
            (f for f in self.findings if f.path in wanted),
            key=lambda f: (SEVERITY_RANK[f.severity], f.path, f.line, f.message),
        )
        runs = [r for r in self.runs if wanted.intersection(r.files)]
        if not findings and not runs:
            return ""
        lines = ["Automated checks on the changed lines (analyzer output; confirm, rank or reject it):"]
        for finding in findings[:MAX_EVIDENCE_LINES]:
            where = f"{finding.path}:{finding.line}"
            if finding.end_line and finding.end_line != finding.line:
                where += f"-{finding.end_line}"
            lines.append(
                f"- {where} [{finding.severity.value}, {finding.category.value}] "
                f"{finding.tool} {finding.rule}: {finding.message}"
            )
        if len(findings) > MAX_EVIDENCE_LINES:
            lines.append(f"- ... and {len(findings) - MAX_EVIDENCE_LINES} more")
        if not findings:
            lines.append("- none")
        for run in runs:
            files = ", ".join(sorted(wanted.intersection(run.files)))
            if run.status == "ok":
                lines.append(f"{run.tool} ran on {files}" + (f" ({run.detail})." if run.detail else "."))
            else:
                lines.append(f"{run.tool} did not complete on {files}: {run.status} ({run.detail}).")
        return "\n".join(lines)

