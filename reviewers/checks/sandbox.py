"""Running analyzers on untrusted pull-request files, safely (the only I/O of reviewers/checks).

The files are written to a fresh scratch directory; tool configuration files the PR carries are not
written at all (the tools get our configs: see tools.py). Each tool runs with a minimal environment
(no tokens, a scratch HOME, proxies pointing nowhere), in a new network namespace when the system
allows one (`unshare -rn`), with one shared deadline and a cap on what it may print. A tool that is
missing, crashes, hangs or floods its output never raises: it becomes a `ToolRun` with a status.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reviewers.checks.fragments import ToolInput
from reviewers.checks.model import Diagnostic, FileCoverage, ToolRun
from reviewers.checks.tools import ChecksSettings, Tool, ToolOutputError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 20.0
"""One deadline shared by all tools of one review."""
DEFAULT_OUTPUT_CAP = 8 * 1024 * 1024
"""Bytes of stdout a tool may print before it is killed and its run marked `capped`."""
POLL_SECONDS = 0.01

TOOL_CONFIG_NAMES = frozenset({
    "ruff.toml", ".ruff.toml", "pyproject.toml", "setup.cfg", "tox.ini", ".flake8",
    ".hadolint.yaml", ".hadolint.yml", "hadolint.yaml",
    ".eslintrc", ".eslintrc.js", ".eslintrc.cjs", ".eslintrc.mjs", ".eslintrc.json", ".eslintrc.yaml",
    ".eslintrc.yml", "eslint.config.js", "eslint.config.mjs", "eslint.config.cjs", "eslint.config.ts",
    "eslint.config.mts", ".eslintignore", "package.json", ".oxlintrc.json", "oxlintrc.json", "oxlint.json",
    ".sqlfluff", ".sqlfluffignore", ".yamllint", ".yamllint.yaml", ".yamllint.yml", ".shellcheckrc",
    ".squawk.toml", "zizmor.yml", "zizmor.yaml", ".checkov.yaml", ".checkov.yml", ".secrets.baseline",
    "tsconfig.json", "jsconfig.json", "node_modules", "actionlint.yaml", "actionlint.yml", ".semgrepignore",
    ".semgrep.yml", ".semgrep.yaml", ".semgrep",
})
"""File names a tool would read as its configuration, plugins or baseline: never written to the sandbox."""


def safe_relative_path(path: str) -> PurePosixPath | None:
    """The path as a relative path inside the scratch tree, or None if it could escape it."""
    if not path or "\x00" in path or "\\" in path:
        return None
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("..", "") for part in pure.parts) or pure.as_posix() == ".":
        return None
    return pure


def is_tool_config(path: str) -> bool:
    return any(part in TOOL_CONFIG_NAMES for part in PurePosixPath(path).parts)


@functools.cache
def network_isolation() -> list[str]:
    """`unshare -rn` when this system lets an unprivileged process drop its network, else nothing."""
    unshare = shutil.which("unshare")
    if not unshare or ChecksSettings().checks_no_unshare:
        return []
    try:
        probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [unshare, "-rn"] if probe.returncode == 0 else []


def tool_environment(home: Path) -> dict[str, str]:
    """A minimal environment: no tokens or keys of ours, no real proxy, a scratch HOME."""
    bin_dirs = [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    node = shutil.which("node")
    if node:
        bin_dirs.append(str(Path(node).parent))
    dead = "http://127.0.0.1:9"
    return {
        "PATH": os.pathsep.join(dict.fromkeys(bin_dirs)), "HOME": str(home), "TMPDIR": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "NO_COLOR": "1", "ZIZMOR_OFFLINE": "1",
        "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead, "NO_PROXY": "",
        "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@dataclass
class _Job:
    tool: Tool
    files: list[str]
    stdout: Path
    stderr: Path
    started: float
    coverage: list[FileCoverage]
    process: subprocess.Popen[bytes] | None = None
    ended: float | None = None
    run: ToolRun | None = None


@dataclass(frozen=True)
class ToolResult:
    run: ToolRun
    diagnostics: list[Diagnostic]


def write_tree(root: Path, inputs: Sequence[ToolInput], notes: list[str]) -> dict[str, ToolInput]:
    """Write each input under root (configs never); returns the written relative path -> its input."""
    written = {}
    for item in inputs:
        relative = safe_relative_path(item.path)
        if relative is None:
            notes.append(f"checks skipped {item.path!r}: not a safe relative path")
            continue
        if is_tool_config(item.path):
            continue  # reviewed by the reviewers, never handed to a tool as its configuration
        if _write_text(root.joinpath(*relative.parts), item.text, repr(item.path), notes):
            written[relative.as_posix()] = item
    return written


def _write_text(target: Path, text: str, what: str, notes: list[str]) -> bool:
    """Write one file for the tools; a file that cannot be written is a note, not an error."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8", "surrogateescape"))
    except (OSError, UnicodeEncodeError) as exc:
        notes.append(f"checks skipped {what}: cannot write it for analysis ({exc})")
        return False
    return True


def run_tools(
    inputs: Sequence[ToolInput],
    tools: Sequence[Tool],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    notes: list[str],
) -> tuple[list[ToolResult], dict[str, ToolInput]]:
    """Run every applicable tool once on its files, in parallel, within one deadline."""
    results: list[ToolResult] = []
    with tempfile.TemporaryDirectory(prefix="calora-checks-") as tmp:
        root, scratch, home = Path(tmp) / "tree", Path(tmp) / "out", Path(tmp) / "home"
        for folder in (root, scratch, home):
            folder.mkdir()
        written = write_tree(root, inputs, notes)
        every = dict(written)  # and the files derived for one tool (`Tool.derive`), each mapped to its source
        env = tool_environment(home)
        jobs: list[_Job] = []
        for tool in tools:
            mine = [path for path, item in written.items() if tool.applies(item)]
            derived = _write_derived(tool, written, root, notes)
            every.update(derived)
            if not mine and not derived:
                continue
            coverage = []
            runnable = []
            for path in sorted(mine):
                item = written[path]
                if tool.needs_whole_file and item.how != "whole file":
                    coverage.append(FileCoverage(path=item.path, how="skipped: needs the whole file (use --git)"))
                else:
                    coverage.append(FileCoverage(path=item.path, how=item.how))
                    runnable.append(path)
            for path, item in sorted(derived.items()):
                coverage.append(FileCoverage(path=item.path, how=f"its script blocks ({item.how})"))
                runnable.append(path)
            if not runnable:
                results.append(ToolResult(ToolRun(tool=tool.name, files=[written[p].path for p in mine],
                                                  coverage=coverage, status="skipped",
                                                  detail="no file it can judge from the diff alone"), []))
                continue
            if tool.scan is not None:
                results.append(_scan_in_process(tool, runnable, coverage, every))
                continue
            jobs.append(_start(tool, runnable, coverage, root, scratch, env))
        _wait_all(jobs, time.monotonic() + timeout_s, output_cap)
        for job in jobs:
            run, diagnostics = _collect(job, root)
            results.append(ToolResult(_finish(run, job.files, job.coverage, every), diagnostics))
    return results, every


def _write_derived(tool: Tool, written: dict[str, ToolInput], root: Path, notes: list[str]) -> dict[str, ToolInput]:
    """The files `tool.derive` makes of inputs it cannot read, written beside them: new relative path -> source."""
    if tool.derive is None:
        return {}
    derived = {}
    for path, item in written.items():
        if tool.applies(item):
            continue
        view = tool.derive(item)
        if view is None:
            continue
        suffix, text = view
        if _write_text(root / (path + suffix), text, f"{item.path!r} for {tool.name}", notes):
            derived[path + suffix] = item
    return derived


def _scan_in_process(tool: Tool, files: list[str], coverage: list[FileCoverage],
                     written: dict[str, ToolInput]) -> ToolResult:
    """calora's own rules: no process to fence, but a failure is still a run status, never an exception."""
    assert tool.scan is not None
    started = time.monotonic()
    diagnostics: list[Diagnostic] = []
    try:
        for path in files:
            diagnostics.extend(tool.scan(path, written[path]))
    except Exception as exc:  # a bug in a rule must not cost the review its other evidence
        log.exception("%s failed", tool.name)
        run = ToolRun(tool=tool.name, status="failed", seconds=time.monotonic() - started, detail=str(exc)[:300])
        return ToolResult(_finish(run, files, coverage, written), [])
    run = ToolRun(tool=tool.name, status="ok", seconds=time.monotonic() - started)
    return ToolResult(_finish(run, files, coverage, written), diagnostics)


def _finish(run: ToolRun, files: list[str], coverage: list[FileCoverage], written: dict[str, ToolInput]) -> ToolRun:
    run.files = [written[p].path for p in files]
    run.coverage = coverage
    return run


def _start(tool: Tool, files: list[str], coverage: list[FileCoverage], root: Path, scratch: Path,
           env: dict[str, str]) -> _Job:
    job = _Job(tool, files, scratch / f"{tool.name}.out", scratch / f"{tool.name}.err", time.monotonic(),
               coverage)
    argv = tool.locate()
    if argv is None:
        job.run = ToolRun(tool=tool.name, status="missing", detail=f"not installed: {tool.install}")
        return job
    try:
        with job.stdout.open("wb") as out, job.stderr.open("wb") as err:
            job.process = subprocess.Popen(
                [*network_isolation(), *argv, *tool.arguments(files)], cwd=root, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )
    except OSError as exc:
        job.run = ToolRun(tool=tool.name, status="failed", detail=f"could not start: {exc}")
    return job


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, 9)  # the tool and anything it started
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def _wait_all(jobs: list[_Job], deadline: float, output_cap: int) -> None:
    """Wait for every process until the shared deadline; kill late ones and ones printing past the cap."""
    pending = [job for job in jobs if job.process is not None]
    while pending:
        for job in list(pending):
            assert job.process is not None
            if job.process.poll() is not None:
                job.ended = time.monotonic()
                pending.remove(job)
            elif job.stdout.stat().st_size > output_cap or job.stderr.stat().st_size > output_cap:
                _kill(job.process)
                seconds = time.monotonic() - job.started
                job.run = ToolRun(tool=job.tool.name, status="capped", seconds=seconds,
                                  detail=f"printed more than {output_cap // (1024 * 1024)} MB; killed")
                pending.remove(job)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    for job in pending:
        assert job.process is not None
        _kill(job.process)
        seconds = time.monotonic() - job.started
        job.run = ToolRun(tool=job.tool.name, status="timeout", seconds=seconds,
                          detail=f"killed after {seconds:.1f} s")


def _collect(job: _Job, root: Path) -> tuple[ToolRun, list[Diagnostic]]:
    if job.run is not None:
        return job.run, []
    assert job.process is not None and job.ended is not None
    name, seconds = job.tool.name, job.ended - job.started
    stdout = job.stdout.read_text("utf-8", errors="replace")
    stderr = job.stderr.read_text("utf-8", errors="replace").strip()
    code = job.process.returncode
    if code not in job.tool.ok_exit_codes:
        detail = f"exit code {code}: {stderr[-300:] or stdout[-300:]}".strip()
        return ToolRun(tool=name, status="failed", seconds=seconds, detail=detail), []
    try:
        diagnostics = job.tool.parse(stdout, root)
    except ToolOutputError as exc:
        return ToolRun(tool=name, status="failed", seconds=seconds, detail=str(exc)), []
    return ToolRun(tool=name, status="ok", seconds=seconds), diagnostics


def tool_version(tool: Tool, timeout_s: float = 10) -> str | None:
    """The version line a tool prints, or None when it is not installed or does not answer."""
    if tool.scan is not None:
        from reviewers.checks.patterns import pattern_rules

        return f"calora's own rules ({len(pattern_rules())} in patterns.yml)"
    argv = tool.locate()
    if argv is None:
        return None
    try:
        done = subprocess.run([*argv, *tool.version_arguments], capture_output=True, timeout=timeout_s,
                              check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (done.stdout or done.stderr).decode(errors="replace").strip().splitlines()
    with_digits = [line for line in lines if any(c.isdigit() for c in line)]
    return (with_digits or lines or [""])[0].strip()[:120]
