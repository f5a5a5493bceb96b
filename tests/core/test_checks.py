"""Automated checks: real linters on real files, only changed lines kept, failures become notes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from unidiff import PatchSet

from reviewers.checks import (
    LINTERS,
    MAX_EVIDENCE_LINES,
    RUFF_RULES,
    CheckReport,
    Linter,
    classify,
    parse_ruff,
    parse_yamllint,
    run_checks,
    safe_relative_path,
)
from reviewers.contract import Category, Finding, Severity

INSECURE_PY = (
    "import os\n"  # 1: F401 unused import (unchanged below)
    "import subprocess\n"
    "\n"
    "\n"
    "def run(cmd):\n"
    "    subprocess.call(cmd, shell=True)\n"  # 6: S602
    "    return eval(cmd)\n"  # 7: S307
)


def all_lines(text: str) -> set[int]:
    return set(range(1, text.count("\n") + 2))


def linter(name: str) -> Linter:
    return next(row for row in LINTERS if row.name == name)


def python_linter(name: str, code: str, ok: frozenset[int] = frozenset({0})) -> Linter:
    """A linter row whose 'tool' is a real Python process running `code` (to test the shell)."""
    return Linter(name, (".py",), lambda: [sys.executable, "-c", code], lambda options: [],
                  parse_ruff, lambda rule: classify(rule, RUFF_RULES), ok)


def new_files_in(diff: Path, suffixes: tuple[str, ...]) -> dict[str, str]:
    """Full contents of the files a real diff adds: every line of a new file is an added line."""
    return {
        patched.path: "".join(line.value for hunk in patched for line in hunk if line.is_added)
        for patched in PatchSet(diff.read_text(errors="replace"))
        if patched.is_added_file and patched.path.endswith(suffixes)
    }


# --- ruff ---------------------------------------------------------------------------------------


def test_ruff_security_rules_on_changed_lines_are_major_security_findings() -> None:
    report = run_checks({"app/run.py": INSECURE_PY}, {"app/run.py": {6, 7}})
    assert [(f.line, f.severity, f.category) for f in report.findings] == [
        (6, Severity.major, Category.security),
        (7, Severity.major, Category.security),
    ]
    assert report.findings[0].message.startswith("ruff S602: ")
    assert report.findings[1].message.startswith("ruff S307: ")
    assert report.findings[0].path == "app/run.py"
    ruff = report.runs[0]
    assert (ruff.tool, ruff.status, ruff.kept, ruff.outside_changes) == ("ruff", "ok", 2, 1)
    assert report.notes == []


def test_diagnostics_on_unchanged_lines_are_left_out() -> None:
    report = run_checks({"app/run.py": INSECURE_PY}, {"app/run.py": {1}})
    assert [f.message.split(":")[0] for f in report.findings] == ["ruff F401"]
    assert report.findings[0].severity is Severity.nit


def test_files_without_changed_lines_are_written_but_not_linted() -> None:
    report = run_checks({"app/run.py": INSECURE_PY, "app/other.py": INSECURE_PY}, {"app/other.py": {6}})
    assert {f.path for f in report.findings} == {"app/other.py"}
    assert report.runs[0].files == ["app/other.py"]


def test_a_syntax_error_on_a_changed_line_is_a_major_correctness_finding() -> None:
    report = run_checks({"broken.py": "def f(:\n    pass\n"}, {"broken.py": {1}})
    assert report.findings
    assert all(f.category is Category.correctness and f.severity is Severity.major for f in report.findings)
    assert report.findings[0].message.startswith("ruff invalid-syntax: ")


def test_ruff_on_the_new_files_of_a_real_diff(real_diffs: list[Path]) -> None:
    diff = next(d for d in real_diffs if d.name.startswith("011-"))
    files = new_files_in(diff, (".py",))
    assert files, "011 adds an alembic migration"
    report = run_checks(files, {path: all_lines(text) for path, text in files.items()})
    (finding,) = report.findings
    assert finding.path.endswith("_add_cascade_delete_relationships.py")
    assert finding.line == 10 and "F401" in finding.message and "sqlmodel.sql.sqltypes" in finding.message
    assert (finding.severity, finding.category) == (Severity.nit, Category.maintainability)


# --- the other linters --------------------------------------------------------------------------


def test_yamllint_on_real_workflows_accepts_github_on_and_flags_trailing_spaces(real_diffs: list[Path]) -> None:
    diff = next(d for d in real_diffs if d.name.startswith("005-"))
    files = new_files_in(diff, (".yml",))
    assert files and all(text.startswith(("name:", "on:")) for text in files.values())
    clean = run_checks(files, {path: all_lines(text) for path, text in files.items()})
    assert clean.findings == [] and clean.runs[0].status == "ok"

    path, text = next(iter(files.items()))
    lines = text.splitlines(keepends=True)
    lines[2] = lines[2].rstrip("\n") + "   \n"
    dirty = run_checks({path: "".join(lines)}, {path: {3}})
    (finding,) = dirty.findings
    assert (finding.line, finding.severity, finding.category) == (3, Severity.nit, Category.style)
    assert finding.message == "yamllint trailing-spaces: trailing spaces"


def test_yaml_syntax_error_is_a_major_correctness_finding() -> None:
    report = run_checks({"deploy/compose.yml": "services:\n  web: [1, 2\n  db: x\n"}, {"deploy/compose.yml": {2, 3}})
    assert any(f.severity is Severity.major and "syntax" in f.message for f in report.findings)


def test_sqlfluff_reports_ambiguity_and_notes_sql_it_cannot_parse(real_diffs: list[Path]) -> None:
    pgvector = new_files_in(next(d for d in real_diffs if d.name.startswith("020-")), (".sql",))
    files = {**pgvector, "db/report.sql": "SELECT a FROM t1 JOIN t2 ON t1.id = t2.id\n"}
    report = run_checks(files, {path: all_lines(text) for path, text in files.items()})
    codes = {f.message.split(":")[0] for f in report.findings}
    assert codes == {"sqlfluff RF02", "sqlfluff AM05"}
    assert all(f.path == "db/report.sql" for f in report.findings)
    assert any("could not read sql/vector--0.8.6--0.8.7.sql" in note for note in report.notes)


def test_shellcheck_flags_an_unquoted_expansion() -> None:
    script = "#!/bin/sh\nrm -rf $1/build\n"
    report = run_checks({"scripts/clean.sh": script}, {"scripts/clean.sh": {2}})
    assert [(f.line, f.severity, f.category) for f in report.findings] == [
        (2, Severity.minor, Category.reliability)
    ]
    assert report.findings[0].message.startswith("shellcheck SC2086: ")


# --- failures never raise -----------------------------------------------------------------------


def test_a_missing_tool_is_skipped_and_said_in_notes() -> None:
    absent = Linter("nosuchlint", (".py",), lambda: None, lambda options: [], parse_ruff,
                    lambda rule: classify(rule, RUFF_RULES))
    report = run_checks({"a.py": "x = 1\n"}, {"a.py": {1}}, linters=[absent])
    assert report.findings == []
    assert report.notes == ["nosuchlint: missing (not installed)"]


def test_a_crashing_linter_becomes_a_note_with_its_exit_code_and_stderr() -> None:
    crash = python_linter("crashlint", "import sys; sys.stderr.write('panic: out of cheese'); sys.exit(3)")
    report = run_checks({"a.py": "x = 1\n"}, {"a.py": {1}}, linters=[crash, linter("ruff")])
    assert report.runs[0].status == "failed"
    assert "exit code 3" in report.notes[0] and "out of cheese" in report.notes[0]
    assert report.runs[1].status == "ok", "one linter failing does not stop the others"


def test_unreadable_linter_output_becomes_a_note() -> None:
    garbage = python_linter("garbagelint", "print('<html>rate limited</html>')")
    report = run_checks({"a.py": "x = 1\n"}, {"a.py": {1}}, linters=[garbage])
    assert report.runs[0].status == "failed"
    assert "non-JSON" in report.notes[0]


def test_a_slow_linter_is_killed_at_the_deadline() -> None:
    slow = python_linter("slowlint", "import time; time.sleep(30)")
    started = time.monotonic()
    report = run_checks({"a.py": INSECURE_PY}, {"a.py": {6}}, linters=[slow, linter("ruff")], timeout_s=1.0)
    assert time.monotonic() - started < 10
    assert [r.status for r in report.runs] == ["timeout", "ok"]
    assert report.notes[0].startswith("slowlint: timeout (killed after")
    assert [f.line for f in report.findings] == [6]


@pytest.mark.parametrize("path", ["../escape.py", "/etc/evil.py", "a/../../b.py", "", "a\\..\\b.py", "."])
def test_paths_that_could_escape_the_temp_tree_are_refused(path: str, tmp_path: Path) -> None:
    assert safe_relative_path(path) is None
    report = run_checks({path: "x = 1\n", "ok.py": "import os\n"}, {path: {1}, "ok.py": {1}})
    assert any("not a safe relative path" in note for note in report.notes)
    assert [f.path for f in report.findings] == ["ok.py"]


def test_a_file_the_linter_cannot_read_is_said_in_notes_not_passed_as_clean() -> None:
    text = b"# caf\xe9\nimport os\n".decode("utf-8", "surrogateescape")  # latin-1 bytes kept as they were
    report = run_checks({"latin.py": text}, {"latin.py": {2}})
    assert report.findings == []
    assert report.notes == [("ruff: ok (could not read latin.py (E902: stream did not contain valid UTF-8); "
                            "findings partial)")]
    assert "could not read latin.py" in report.evidence_for(["latin.py"])


# --- evidence -----------------------------------------------------------------------------------


def test_evidence_names_only_the_slice_files_and_what_ran() -> None:
    report = run_checks({"a.py": INSECURE_PY, "b.py": INSECURE_PY}, {"a.py": {6}, "b.py": {7}})
    evidence = report.evidence_for(["a.py"])
    assert "a.py:6 [major, security] ruff S602" in evidence
    assert "b.py" not in evidence
    assert "ruff ran on a.py." in evidence
    assert report.evidence_for(["c.ts"]) == ""


def test_evidence_says_none_when_a_linter_ran_clean() -> None:
    report = run_checks({"a.py": "x = 1\n"}, {"a.py": {1}})
    assert report.evidence_for(["a.py"]).splitlines()[1:] == ["- none", "ruff ran on a.py."]


def test_evidence_is_bounded() -> None:
    many = [
        Finding(path="a.py", line=n, severity=Severity.nit, category=Category.style, message=f"ruff E701: n{n}")
        for n in range(1, MAX_EVIDENCE_LINES + 11)
    ]
    evidence = CheckReport(findings=many).evidence_for(["a.py"])
    assert evidence.count("\n- a.py:") == MAX_EVIDENCE_LINES
    assert evidence.endswith("- ... and 10 more")


def test_parsers_keep_ranges_and_relative_paths(tmp_path: Path) -> None:
    stdout = (
        '[{"code": "B006", "filename": "' + str(tmp_path / "pkg" / "m.py") + '", "message": "mutable default",'
        ' "location": {"row": 3, "column": 1}, "end_location": {"row": 5, "column": 2}}]'
    )
    (diag,) = parse_ruff(stdout, tmp_path)
    assert (diag.path, diag.line, diag.end_line, diag.code) == ("pkg/m.py", 3, 5, "B006")
    (ydiag,) = parse_yamllint("ci/a.yml:4:3: [error] duplication of key \"x\" in mapping (key-duplicates)\n",
                              tmp_path)
    assert (ydiag.path, ydiag.line, ydiag.code) == ("ci/a.yml", 4, "key-duplicates")


def test_rule_classification_takes_the_longest_prefix() -> None:
    assert classify("S608", RUFF_RULES) == (Category.security, Severity.major)
    assert classify("S311", RUFF_RULES) == (Category.security, Severity.minor)
    assert classify("F821", RUFF_RULES) == (Category.correctness, Severity.major)
    assert classify("F401", RUFF_RULES) == (Category.maintainability, Severity.nit)
    assert classify("ZZZ1", RUFF_RULES) == RUFF_RULES[""]
