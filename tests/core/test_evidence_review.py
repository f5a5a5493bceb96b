"""Evidence in the whole review, as a user meets it: `calora review --backend none`, `--dry-run`, `--sarif`,
and a reviewer's finding merged with the analyzer's on the same line (one finding, both sources)."""

from __future__ import annotations

import json
from pathlib import Path

from app.cli import main
from reviewers.checks import CheckFinding
from reviewers.contract import Category, Finding, ReviewerOutput, Severity
from reviewers.synthesis import SliceOutcome, synthesize
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "samples" / "storefront.diff"


def test_the_sample_with_no_model_reports_ruff_s608_on_the_query_line_and_exits_2(capsys) -> None:
    code = main(["review", "--diff", str(SAMPLE), "--backend", "none", "--format", "json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 2 and result["decision"] == "block"
    blocker = next(f for f in result["findings"] if f["severity"] == "blocker")
    assert (blocker["path"], blocker["line"], blocker["raised_by"]) == ("app/orders.py", 15, ["checks:ruff/S608"])
    assert any("no reviewer model ran" in note for note in result["notes"])
    assert any(note.startswith("evidence ruff: fragment: app/orders.py") for note in result["notes"])


def test_the_sample_markdown_with_no_model_names_the_rule(capsys) -> None:
    assert main(["review", "--diff", str(SAMPLE), "--backend", "none"]) == 2
    out = capsys.readouterr().out
    assert "Block" in out and "checks:ruff/S608" in out and "app/orders.py:15" in out


def test_the_dry_run_prints_the_evidence_too(capsys) -> None:
    assert main(["review", "--diff", str(SAMPLE), "--dry-run", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["slices"]
    assert {(e["path"], e["line"], e["rule"]) for e in plan["evidence"]} >= {("app/orders.py", 15, "S608")}
    assert main(["review", "--diff", str(SAMPLE), "--dry-run"]) == 0
    assert "Evidence (analyzers" in capsys.readouterr().out


def test_sarif_from_the_users_own_tool_is_merged_into_the_review(tmp_path: Path, capsys) -> None:
    sarif = {"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "CodeQL", "rules": [{"id": "py/clear-text-logging"}]}},
        "results": [{"ruleId": "py/clear-text-logging", "level": "error",
                     "message": {"text": "This swallows every error, including KeyboardInterrupt."},
                     "locations": [{"physicalLocation": {"artifactLocation": {"uri": "app/orders.py"},
                                                         "region": {"startLine": 22}}}]}]}]}
    path = tmp_path / "codeql.sarif"
    path.write_text(json.dumps(sarif))
    assert main(["review", "--diff", str(SAMPLE), "--backend", "none", "--format", "json",
                 "--sarif", str(path)]) == 2
    result = json.loads(capsys.readouterr().out)
    assert any(f["raised_by"] == ["checks:codeql/py/clear-text-logging"] and f["line"] == 22
               for f in result["findings"])


def test_a_missing_or_broken_sarif_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["review", "--diff", str(SAMPLE), "--backend", "none", "--sarif", str(tmp_path / "no")]) == 3
    assert "does not exist" in capsys.readouterr().err
    broken = tmp_path / "broken.sarif"
    broken.write_text("{}")
    assert main(["review", "--diff", str(SAMPLE), "--backend", "none", "--sarif", str(broken)]) == 3
    assert "no 'runs' list" in capsys.readouterr().err


def test_a_reviewer_confirming_the_analyzer_merges_into_one_finding_naming_both() -> None:
    evidence = CheckFinding(path="app/orders.py", line=15, severity=Severity.blocker, category=Category.security,
                            message="Possible SQL injection vector through string-based query construction",
                            tool="ruff", rule="S608")
    explained = Finding(path="app/orders.py", line=15, severity=Severity.blocker, category=Category.security,
                        message="`customer` comes from the request and is pasted into the query: bind it as a "
                                "parameter (`WHERE customer = ?`).",
                        suggestion="    query = \"SELECT id, customer, total FROM orders WHERE customer = ?\"")
    other_category = Finding(path="app/orders.py", line=15, severity=Severity.minor, category=Category.performance,
                             message="ORDER BY id DESC without an index on customer scans the table")
    answer = ReviewerOutput(verdict="block", findings=[explained, other_category], missing_checks=[],
                            suggested_fix="bind the parameter")
    result = synthesize([SliceOutcome(reviewer="python", output=answer)], [evidence])
    merged = [f for f in result.findings if f.category is Category.security]
    assert len(merged) == 1
    assert merged[0].raised_by == ["python", "checks:ruff/S608"]
    assert merged[0].suggestion and "WHERE customer = ?" in merged[0].suggestion
    assert len(result.findings) == 2  # the performance remark stays its own finding


def test_two_tools_on_the_same_line_and_category_are_one_finding_but_two_rules_of_one_tool_are_two() -> None:
    def evidence(tool: str, rule: str, message: str) -> CheckFinding:
        return CheckFinding(path="Dockerfile", line=15, severity=Severity.major, category=Category.security,
                            message=message, tool=tool, rule=rule)

    secret_env = evidence("hadolint", "DL3064", "Potentially sensitive data should not be used in ARG or ENV")
    keyword = evidence("detect-secrets", "Secret Keyword", "a credential committed in the change; rotate it")
    result = synthesize([], [secret_env, keyword])
    (merged,) = result.findings
    assert merged.raised_by == ["checks:hadolint/DL3064", "checks:detect-secrets/Secret Keyword"]
    root = evidence("hadolint", "DL3002", "Last USER should not be root")
    two = synthesize([], [root, secret_env])
    assert len(two.findings) == 2
