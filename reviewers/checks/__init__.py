"""Evidence: the analyzers users already trust, run on the changed files, kept only on changed lines.

A small reviewer model is better at judging an analyzer hit than at finding it, so before review the
changed files go to the analyzers (registry in `tools.py`: ruff, hadolint, zizmor, squawk, sqlfluff,
yamllint, shellcheck, oxlint, ESLint, checkov, detect-secrets, and calora's own `patterns.yml` for
well-known defects those miss on a diff) and any SARIF a team brings. With full
file contents (`--git`, the App) tools judge whole files; from a bare diff, new files are whole and
modified files are fragments rebuilt from their hunks (`fragments.py`); tools that need a whole file
skip those and say so. Only diagnostics that meet an added line count; their severity and category
come from `rules.yml`. They reach the slice's reviewer as evidence (`CheckReport.evidence_for`) and the
review as findings raised by `checks:<tool>/<rule>`.

Layout: `model.py` (data), `rules.py` + `rules.yml` (severity maps), `refine.py` (known false alarms), `fragments.py` (pure: diff to tool
inputs), `tools.py` (the registry and pure parsers), `sandbox.py` (the only I/O), `sarif.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from reviewers.checks.fragments import FRAGMENT, WHOLE, ToolInput, inputs_from_diff
from reviewers.checks.model import (
    CHECKS_REVIEWER,
    MAX_EVIDENCE_LINES,
    CheckFinding,
    CheckReport,
    Diagnostic,
    FileCoverage,
    ToolRun,
)
from reviewers.checks.refine import refine
from reviewers.checks.rules import tool_rules
from reviewers.checks.sandbox import DEFAULT_OUTPUT_CAP, DEFAULT_TIMEOUT_S, run_tools
from reviewers.checks.tools import TOOLS, Tool

__all__ = [
    "CHECKS_REVIEWER", "FRAGMENT", "MAX_EVIDENCE_LINES", "TOOLS", "WHOLE", "CheckFinding", "CheckReport",
    "Diagnostic", "FileCoverage", "Tool", "ToolInput", "ToolRun", "inputs_from_contents", "inputs_from_diff",
    "run_checks", "to_findings",
]

log = logging.getLogger(__name__)


def inputs_from_contents(files: Mapping[str, str], changed_lines: Mapping[str, set[int]]) -> list[ToolInput]:
    """Tool inputs from full new-side contents (the `--git` and App paths): every file judged whole."""
    return [
        ToolInput(path=path, text=text, how=WHOLE, added=set(changed_lines.get(path, set())))
        for path, text in files.items()
        if changed_lines.get(path)
    ]


def _settle(diag: Diagnostic, added: set[int]) -> Diagnostic | None:
    """The diagnostic anchored on an added line of its range, or None when its range adds nothing.

    A tool may report a whole resource or statement (checkov, squawk): it counts when any line of the
    range was added, and is placed on the first added line so that it can be commented on.
    """
    last = diag.end_line if diag.end_line is not None else diag.line
    first_added = min((line for line in added if diag.line <= line <= last), default=None)
    if first_added is None:
        return None
    if first_added == diag.line:
        return diag
    return diag.model_copy(update={"line": first_added, "end_line": None})


def to_findings(
    diagnostics: Sequence[Diagnostic], inputs: Mapping[str, ToolInput]
) -> tuple[list[CheckFinding], dict[str, tuple[int, int]]]:
    """Findings from diagnostics on added lines (pure); per tool (kept, outside the change) counts.

    `inputs` maps the path the tool saw to its input, for the added lines and whether it was a fragment.
    Rules listed as ignored in rules.yml, and fragment artefacts on fragments, are dropped.
    """
    findings: list[CheckFinding] = []
    counts: dict[str, tuple[int, int]] = {}
    for diag in diagnostics:
        item = inputs.get(diag.path)
        if item is None:
            continue
        rules = tool_rules(diag.tool)
        kept, outside = counts.get(diag.tool, (0, 0))
        if rules.ignored(diag.code, fragment=item.how == FRAGMENT):
            continue
        refined = refine(diag, item)
        if refined is None:
            continue
        settled = _settle(refined, item.added)
        if settled is None:
            counts[diag.tool] = (kept, outside + 1)
            continue
        category, severity = rules.classify(diag.code)
        category = settled.category or category
        severity = settled.severity or severity
        end = settled.end_line if settled.end_line and settled.end_line > settled.line else None
        findings.append(CheckFinding(
            path=item.path, line=settled.line, end_line=end, severity=severity, category=category,
            message=settled.message.strip() or f"{diag.tool} {diag.code}", tool=diag.tool, rule=diag.code,
            doc_url=diag.doc_url or rules.doc_url(diag.code),
        ))
        counts[diag.tool] = (kept + 1, outside)
    return _dedupe(findings), counts


def _dedupe(findings: list[CheckFinding]) -> list[CheckFinding]:
    """One finding per (path, line, tool, rule): tools repeat a rule over a multi-line span."""
    seen: set[tuple[str, int, str, str]] = set()
    out = []
    for f in sorted(findings, key=lambda f: (f.path, f.line, f.tool, f.rule)):
        key = (f.path, f.line, f.tool, f.rule)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def run_checks(
    inputs: Sequence[ToolInput],
    *,
    tools: Sequence[Tool] = TOOLS,
    external: Sequence[Diagnostic] = (),
    timeout_s: float = DEFAULT_TIMEOUT_S,
    output_cap: int = DEFAULT_OUTPUT_CAP,
) -> CheckReport:
    """Run every applicable analyzer on the inputs; keep what lands on added lines. Never raises for a tool.

    `external` are diagnostics someone else produced (SARIF); they are filtered and anchored the same way.
    """
    notes: list[str] = []
    results, written = run_tools(inputs, tools, timeout_s=timeout_s, output_cap=output_cap, notes=notes)
    by_path = {item.path: item for item in inputs}
    findings: list[CheckFinding] = []
    runs: list[ToolRun] = []
    for result in results:
        run = result.run
        mapped = [d.model_copy(update={"path": written[d.path].path}) for d in result.diagnostics
                  if d.path in written]
        found, counts = to_findings(mapped, by_path)
        run.kept, run.outside_changes = counts.get(run.tool, (0, 0))
        findings.extend(found)
        runs.append(run)
        if run.status not in ("ok", "skipped"):
            notes.append(f"{run.tool}: {run.status}" + (f" ({run.detail})" if run.detail else ""))
        log.debug("%s on %d file(s): %s in %.2f s, %d kept", run.tool, len(run.files), run.status,
                 run.seconds, run.kept)
    if external:
        found, counts = to_findings(external, by_path)
        findings.extend(found)
        for tool, (kept, outside) in sorted(counts.items()):
            runs.append(ToolRun(tool=tool, status="ok", kept=kept, outside_changes=outside,
                                files=sorted({d.path for d in external if d.tool == tool}),
                                detail="from SARIF"))
        missing = sorted({d.path for d in external} - set(by_path))
        if missing:
            notes.append(f"SARIF results on {len(missing)} file(s) the diff does not change were left out")
    unparsed = [item for item in inputs if item.unparsed_hunks]
    for item in unparsed:
        notes.append(f"{item.path}: {item.unparsed_hunks} hunk(s) could not be rebuilt as Python; "
                     "analyzers did not judge them")
    findings.sort(key=lambda f: (f.path, f.line, f.message))
    return CheckReport(findings=findings, notes=notes, runs=runs)

