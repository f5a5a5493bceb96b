"""Automated checks as evidence: real linters run on the changed files, kept only on changed lines.

A reviewer model is better at judging a lint hit than at finding it, so before review the full new
contents of the changed files are written to a private temporary folder and the fast linters that
are installed run on them (ruff for Python; yamllint, sqlfluff and shellcheck where present). Only
diagnostics that touch a changed line are kept. They go to the reviewers as evidence
(`CheckReport.evidence_for` -> `ReviewRequest.check_output`) and to the result as findings raised by
`checks`.

The linters are data (`LINTERS`), one row each. Running them is the only I/O here; parsing their
output and classifying a rule into a severity and a category are pure functions. A linter that is
missing, crashes, prints garbage or runs past its time never raises: it becomes a line in `notes`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, Field

from reviewers.contract import Category, Finding, Severity

log = logging.getLogger(__name__)

CHECKS_REVIEWER = "checks"
"""The name check findings carry in `raised_by` after synthesis."""

MAX_EVIDENCE_LINES = 40
"""Findings listed per `evidence_for` text; the rest are counted, so a prompt stays bounded."""


class Diagnostic(BaseModel):
    """One linter message, as the linter gave it, with the path relative to the reviewed tree."""

    tool: str
    path: str
    line: int = Field(ge=1)
    end_line: int | None = None
    code: str
    message: str


class ToolRun(BaseModel):
    """What happened when one linter ran (or did not) on a set of files."""

    tool: str
    files: list[str] = Field(default_factory=list)
    status: Literal["ok", "missing", "timeout", "failed"]
    seconds: float = 0.0
    kept: int = Field(default=0, description="Diagnostics on changed lines, reported as findings.")
    outside_changes: int = Field(default=0, description="Diagnostics on unchanged lines, left out.")
    detail: str = ""


class CheckReport(BaseModel):
    """All check findings on changed lines, plus what ran and what could not."""

    findings: list[Finding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Missing tools, timeouts, failures.")
    runs: list[ToolRun] = Field(default_factory=list)

    def evidence_for(self, paths: Iterable[str]) -> str:
        """The text for `ReviewRequest.check_output` of a slice covering `paths` ("" if nothing ran)."""
        wanted = set(paths)
        findings = sorted(
            (f for f in self.findings if f.path in wanted), key=lambda f: (f.path, f.line, f.message)
        )
        runs = [r for r in self.runs if wanted.intersection(r.files)]
        if not findings and not runs:
            return ""
        lines = ["Automated checks on the changed lines (linter output; confirm before repeating it):"]
        for finding in findings[:MAX_EVIDENCE_LINES]:
            where = f"{finding.path}:{finding.line}"
            if finding.end_line and finding.end_line != finding.line:
                where += f"-{finding.end_line}"
            lines.append(f"- {where} [{finding.severity.value}, {finding.category.value}] {finding.message}")
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


# --- rule classification (pure) -----------------------------------------------------------------

Rule = tuple[Category, Severity]

RUFF_RULES: dict[str, Rule] = {
    # Longest matching prefix wins; "" is the fallback.
    "": (Category.maintainability, Severity.minor),
    "invalid-syntax": (Category.correctness, Severity.major),
    "E9": (Category.correctness, Severity.major),
    "E4": (Category.style, Severity.nit),
    "E7": (Category.style, Severity.nit),
    "E722": (Category.reliability, Severity.minor),
    "F": (Category.correctness, Severity.minor),
    "F401": (Category.maintainability, Severity.nit),
    "F811": (Category.maintainability, Severity.minor),
    "F841": (Category.maintainability, Severity.minor),
    "F821": (Category.correctness, Severity.major),
    "F822": (Category.correctness, Severity.major),
    "F823": (Category.correctness, Severity.major),
    "B": (Category.correctness, Severity.minor),
    "S": (Category.security, Severity.major),
    "S311": (Category.security, Severity.minor),  # random for non-crypto use: usually fine
    "ASYNC": (Category.performance, Severity.minor),
    "PERF": (Category.performance, Severity.nit),
    "PLE": (Category.correctness, Severity.minor),
    "T10": (Category.reliability, Severity.minor),
}
RUFF_SELECT = "F,E4,E7,E9,B,S,ASYNC,PERF,PLE,T10"
RUFF_IGNORE = "S101"  # assert is how pytest tests are written; as evidence it is noise
RUFF_SKIPPED_CODES = {"E902"}  # could not read the file (e.g. not UTF-8): a note, not a finding

YAMLLINT_RULES: dict[str, Rule] = {
    "": (Category.style, Severity.nit),
    "syntax": (Category.correctness, Severity.major),
    "key-duplicates": (Category.correctness, Severity.minor),
    "anchors": (Category.correctness, Severity.minor),
}
# GitHub workflows use `on:` (a YAML 1.1 boolean) and rarely a document start; both are noise here.
YAMLLINT_CONFIG = (
    "{extends: default, rules: {document-start: disable, truthy: disable, "
    "line-length: {max: 160}, comments: {min-spaces-from-content: 1}}}"
)

SQLFLUFF_RULES: dict[str, Rule] = {
    "": (Category.style, Severity.nit),
    "AM": (Category.correctness, Severity.minor),
    "RF": (Category.correctness, Severity.minor),
    "ST": (Category.maintainability, Severity.nit),
    "AL": (Category.maintainability, Severity.nit),
}
SQLFLUFF_SKIPPED_CODES = {"PRS", "LXR", "TMP"}  # cannot lex, parse or template (dialect): a note instead

SHELLCHECK_RULES: dict[str, Rule] = {
    "": (Category.reliability, Severity.nit),
    "error": (Category.correctness, Severity.minor),
    "warning": (Category.reliability, Severity.minor),
    "SC2086": (Category.reliability, Severity.minor),  # unquoted expansion: word splitting, globbing
}


def classify(code: str, table: Mapping[str, Rule]) -> Rule:
    """The category and severity of a rule code: the entry with the longest matching prefix."""
    best = max((prefix for prefix in table if code.startswith(prefix)), key=len)
    return table[best]


# --- output parsers (pure) ----------------------------------------------------------------------


class LinterOutputError(ValueError):
    """A linter printed something its parser cannot read (a crash message, a format change)."""


def _relative(path: str, root: Path) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return candidate.as_posix()
    return PurePosixPath(candidate.as_posix()).as_posix().removeprefix("./")


def _load_json(stdout: str, tool: str) -> object:
    try:
        return json.loads(stdout) if stdout.strip() else []
    except json.JSONDecodeError as exc:
        raise LinterOutputError(f"{tool} printed non-JSON output: {stdout[:200]!r}") from exc


def parse_ruff(stdout: str, root: Path) -> list[Diagnostic]:
    """Diagnostics from `ruff check --output-format json`."""
    items = _load_json(stdout, "ruff")
    if not isinstance(items, list):
        raise LinterOutputError("ruff JSON output is not a list")
    out = []
    for item in items:
        try:
            code = item.get("code") or item.get("name") or "ruff"
            line = int(item["location"]["row"])
            end = int(item.get("end_location", {}).get("row", line))
            out.append(
                Diagnostic(
                    tool="ruff", path=_relative(item["filename"], root), line=max(line, 1),
                    end_line=max(end, line, 1), code=code, message=str(item["message"]),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LinterOutputError(f"unexpected ruff diagnostic {str(item)[:200]}") from exc
    return out


def parse_yamllint(stdout: str, root: Path) -> list[Diagnostic]:
    """Diagnostics from `yamllint -f parsable`: `path:line:col: [level] message (rule)`."""
    out = []
    for raw in stdout.splitlines():
        if not raw.strip():
            continue
        try:
            location, rest = raw.split(": [", 1)
            path, line, _col = location.rsplit(":", 2)
            _level, text = rest.split("] ", 1)
        except ValueError as exc:
            raise LinterOutputError(f"unexpected yamllint line {raw[:200]!r}") from exc
        code = "syntax"
        if text.endswith(")") and " (" in text:
            text, code = text[:-1].rsplit(" (", 1)
        elif text.startswith("syntax error"):
            code = "syntax"
        out.append(
            Diagnostic(tool="yamllint", path=_relative(path, root), line=max(int(line), 1), code=code,
                       message=text)
        )
    return out


def parse_sqlfluff(stdout: str, root: Path) -> list[Diagnostic]:
    """Diagnostics from `sqlfluff lint --format json`."""
    files = _load_json(stdout, "sqlfluff")
    if not isinstance(files, list):
        raise LinterOutputError("sqlfluff JSON output is not a list")
    out = []
    for entry in files:
        try:
            path = _relative(entry["filepath"], root)
            for v in entry.get("violations", []):
                line = int(v.get("start_line_no") or 1)
                end = int(v.get("end_line_no") or line)
                out.append(
                    Diagnostic(tool="sqlfluff", path=path, line=max(line, 1), end_line=max(end, line, 1),
                               code=str(v.get("code", "")), message=str(v.get("description", "")))
                )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LinterOutputError(f"unexpected sqlfluff entry {str(entry)[:200]}") from exc
    return out


def parse_shellcheck(stdout: str, root: Path) -> list[Diagnostic]:
    """Diagnostics from `shellcheck -f json`; the level travels in the code for classification."""
    items = _load_json(stdout, "shellcheck")
    if not isinstance(items, list):
        raise LinterOutputError("shellcheck JSON output is not a list")
    out = []
    for item in items:
        try:
            line = int(item["line"])
            out.append(
                Diagnostic(tool="shellcheck", path=_relative(item["file"], root), line=max(line, 1),
                           end_line=max(int(item.get("endLine", line)), line, 1),
                           code=f"SC{item['code']}:{item.get('level', 'info')}", message=str(item["message"]))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LinterOutputError(f"unexpected shellcheck diagnostic {str(item)[:200]}") from exc
    return out


def _classify_shellcheck(code: str) -> Rule:
    rule, _, level = code.partition(":")
    if rule in SHELLCHECK_RULES:
        return SHELLCHECK_RULES[rule]
    return SHELLCHECK_RULES.get(level, SHELLCHECK_RULES[""])


# --- the linter table ---------------------------------------------------------------------------


def locate_tool(executable: str, module: str | None = None) -> list[str] | None:
    """The argv prefix that runs a tool: the venv's own copy, then PATH, then `python -m module`."""
    sibling = Path(sys.executable).with_name(executable)
    if sibling.is_file():
        return [str(sibling)]
    found = shutil.which(executable)
    if found:
        return [found]
    if module and importlib.util.find_spec(module) is not None:
        return [sys.executable, "-m", module]
    return None


@dataclass(frozen=True)
class Linter:
    """One row of the linter table: which files, how to run, how to read the output."""

    name: str
    suffixes: tuple[str, ...]
    locate: Callable[[], list[str] | None]
    arguments: Callable[[Mapping[str, str]], list[str]]
    parse: Callable[[str, Path], list[Diagnostic]]
    classify: Callable[[str], Rule]
    # Exit codes that still mean "ran fine" (most linters exit 1 when they found something).
    ok_exit_codes: frozenset[int] = field(default_factory=lambda: frozenset({0, 1}))
    skipped_codes: frozenset[str] = frozenset()

    def applies_to(self, path: str) -> bool:
        return path.lower().endswith(self.suffixes)


def _ruff_args(options: Mapping[str, str]) -> list[str]:
    return ["check", "--output-format", "json", "--no-cache", "--isolated", "--select", RUFF_SELECT,
            "--ignore", RUFF_IGNORE, "--exit-zero"]


def _yamllint_args(options: Mapping[str, str]) -> list[str]:
    return ["-f", "parsable", "-d", YAMLLINT_CONFIG]


def _sqlfluff_args(options: Mapping[str, str]) -> list[str]:
    return ["lint", "--format", "json", "--nocolor", "--dialect", options.get("sql_dialect", "ansi"),
            "--exclude-rules", "layout,capitalisation", "--disable-progress-bar"]


def _shellcheck_args(options: Mapping[str, str]) -> list[str]:
    return ["-f", "json", "--exclude", "SC2148"]


LINTERS: tuple[Linter, ...] = (
    Linter("ruff", (".py", ".pyi"), lambda: locate_tool("ruff", "ruff"), _ruff_args, parse_ruff,
           lambda code: classify(code, RUFF_RULES), frozenset({0}), frozenset(RUFF_SKIPPED_CODES)),
    Linter("yamllint", (".yml", ".yaml"), lambda: locate_tool("yamllint", "yamllint"), _yamllint_args,
           parse_yamllint, lambda code: classify(code, YAMLLINT_RULES), frozenset({0, 1, 2})),
    Linter("sqlfluff", (".sql",), lambda: locate_tool("sqlfluff", "sqlfluff"), _sqlfluff_args,
           parse_sqlfluff, lambda code: classify(code, SQLFLUFF_RULES), frozenset({0, 1}),
           frozenset(SQLFLUFF_SKIPPED_CODES)),
    Linter("shellcheck", (".sh", ".bash"), lambda: locate_tool("shellcheck"), _shellcheck_args,
           parse_shellcheck, _classify_shellcheck),
)


# --- the pure core: diagnostics to findings ------------------------------------------------------


def touches_changed_lines(diag: Diagnostic, changed: set[int]) -> bool:
    """Whether the diagnostic's line range meets a changed line."""
    last = diag.end_line if diag.end_line is not None else diag.line
    return any(diag.line <= line <= last for line in changed)


def to_finding(diag: Diagnostic, rule: Rule) -> Finding:
    """A check diagnostic in the reviewers' own shape; the message names the tool and rule code."""
    category, severity = rule
    code = diag.code.split(":", 1)[0]
    end = diag.end_line if diag.end_line and diag.end_line > diag.line else None
    return Finding(path=diag.path, line=diag.line, end_line=end, severity=severity, category=category,
                   message=f"{diag.tool} {code}: {diag.message}".strip())


def safe_relative_path(path: str) -> PurePosixPath | None:
    """The path as a relative path inside the temp tree, or None if it could escape it."""
    if not path or "\x00" in path or "\\" in path:
        return None
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("..", "") for part in pure.parts) or pure.as_posix() == ".":
        return None
    return pure


# --- the I/O shell --------------------------------------------------------------------------------


POLL_SECONDS = 0.02


@dataclass
class _Job:
    """A linter process in flight, its output going to files so that no pipe can fill and stall it."""

    linter: Linter
    files: list[str]
    root: Path
    stdout: Path
    stderr: Path
    started: float
    process: subprocess.Popen[bytes] | None = None
    ended: float | None = None
    run: ToolRun | None = None


def _write_tree(root: Path, files: Mapping[str, str], notes: list[str]) -> dict[str, str]:
    """Write each file under root; returns written relative posix path -> the caller's path key."""
    written = {}
    for path, text in files.items():
        relative = safe_relative_path(path)
        if relative is None:
            notes.append(f"checks skipped {path!r}: not a safe relative path")
            continue
        target = root.joinpath(*relative.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8", "surrogateescape"))
        except (OSError, UnicodeEncodeError) as exc:
            notes.append(f"checks skipped {path!r}: cannot write it for linting ({exc})")
            continue
        written[relative.as_posix()] = path
    return written


def _start(linter: Linter, files: list[str], root: Path, scratch: Path, options: Mapping[str, str]) -> _Job:
    job = _Job(linter, files, root, scratch / f"{linter.name}.out", scratch / f"{linter.name}.err",
               time.monotonic())
    argv = linter.locate()
    if argv is None:
        job.run = ToolRun(tool=linter.name, files=files, status="missing", detail="not installed")
        return job
    try:
        with job.stdout.open("wb") as out, job.stderr.open("wb") as err:
            job.process = subprocess.Popen(
                [*argv, *linter.arguments(options), *files], cwd=root, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL,
            )
    except OSError as exc:
        job.run = ToolRun(tool=linter.name, files=files, status="failed", detail=f"could not start: {exc}")
    return job


def _wait_all(jobs: list[_Job], deadline: float) -> None:
    """Wait for every process until the shared deadline, noting when each ended; kill the late ones."""
    pending = [job for job in jobs if job.process is not None]
    while pending:
        for job in list(pending):
            if job.process is not None and job.process.poll() is not None:
                job.ended = time.monotonic()
                pending.remove(job)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    for job in pending:
        assert job.process is not None
        job.process.kill()
        job.process.wait()
        seconds = time.monotonic() - job.started
        job.run = ToolRun(tool=job.linter.name, files=job.files, status="timeout", seconds=seconds,
                          detail=f"killed after {seconds:.1f} s")


def _collect(job: _Job) -> tuple[ToolRun, list[Diagnostic]]:
    """The outcome of a finished job: its diagnostics, or why there are none."""
    if job.run is not None:
        return job.run, []
    assert job.process is not None and job.ended is not None
    name, files, seconds = job.linter.name, job.files, job.ended - job.started
    stdout = job.stdout.read_text("utf-8", errors="replace")
    stderr = job.stderr.read_text("utf-8", errors="replace").strip()
    code = job.process.returncode
    if code not in job.linter.ok_exit_codes:
        detail = f"exit code {code}: {stderr[-300:] or stdout[-300:]}".strip()
        return ToolRun(tool=name, files=files, status="failed", seconds=seconds, detail=detail), []
    try:
        diagnostics = job.linter.parse(stdout, job.root)
    except LinterOutputError as exc:
        return ToolRun(tool=name, files=files, status="failed", seconds=seconds, detail=str(exc)), []
    return ToolRun(tool=name, files=files, status="ok", seconds=seconds), diagnostics


def run_checks(
    files: Mapping[str, str],
    changed_lines: Mapping[str, set[int]],
    *,
    timeout_s: float = 20,
    linters: Sequence[Linter] = LINTERS,
    sql_dialect: str = "ansi",
) -> CheckReport:
    """Lint the new contents of changed files; keep what lands on changed lines. Never raises for a linter.

    `files` maps a repository-relative path to its full new text; `changed_lines` maps it to the
    new-file line numbers the diff added or changed (files without changed lines are written, so
    that imports resolve, but not linted). The linters run in parallel and share one deadline of
    `timeout_s` seconds; a missing, crashing or late linter becomes a note, never an exception.
    """
    notes: list[str] = []
    runs: list[ToolRun] = []
    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="calora-checks-") as tmp:
        root, scratch = Path(tmp) / "tree", Path(tmp) / "out"
        root.mkdir()
        scratch.mkdir()
        written = _write_tree(root, files, notes)
        to_lint = sorted(posix for posix, path in written.items() if changed_lines.get(path))
        options = {"sql_dialect": sql_dialect}
        jobs = [
            _start(linter, mine, root, scratch, options)
            for linter in linters
            if (mine := [p for p in to_lint if linter.applies_to(p)])
        ]
        _wait_all(jobs, time.monotonic() + timeout_s)
        for job in jobs:
            run, diagnostics = _collect(job)
            for diag in diagnostics:
                path = written.get(diag.path, diag.path)
                if diag.code in job.linter.skipped_codes:
                    run.detail = f"could not read {path} ({diag.code}: {diag.message[:120]}); findings partial"
                elif touches_changed_lines(diag, changed_lines.get(path, set())):
                    finding = to_finding(diag.model_copy(update={"path": path}), job.linter.classify(diag.code))
                    findings.append(finding)
                    run.kept += 1
                else:
                    run.outside_changes += 1
            runs.append(run)
            if run.status != "ok" or run.detail:
                notes.append(f"{run.tool}: {run.status}" + (f" ({run.detail})" if run.detail else ""))
            log.info("%s on %d file(s): %s in %.2f s, %d kept", run.tool, len(run.files), run.status,
                     run.seconds, run.kept)
    findings.sort(key=lambda f: (f.path, f.line, f.message))
    return CheckReport(findings=findings, notes=notes, runs=runs)
