"""`calora eval review`: grading the final review of a scenario, the scenario set itself, and the command."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from app.cli import main
from eval.cases import EvalCase, MustFind, load_cases
from eval.review_grading import (
    ReviewGradingInfo,
    ReviewGradingRun,
    build_run,
    grade_error,
    grade_review,
    render_markdown,
    source_figures,
    summarize_grades,
    tool_of,
)
from eval.review_runner import grade_scenarios
from reviewers.backends.base import Backend, BackendResult
from reviewers.contract import Category, ReviewerOutput, ReviewRequest, Severity, Verdict
from reviewers.routing import REVIEWER_NAMES
from reviewers.slicing import slice_diff
from reviewers.synthesis import MergedFinding, ReviewResult
from training.dataset_build import changed_lines, hunk_keys, jaccard, load_all
from training.examples import parse_example_diff

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "eval" / "scenarios"
BLIND = REPO / "eval" / "scenarios-blind"
BLIND2 = REPO / "eval" / "scenarios-blind2"
BLIND3 = REPO / "eval" / "scenarios-blind3"
BLIND4 = REPO / "eval" / "scenarios-blind4"
BLIND5 = REPO / "eval" / "scenarios-blind5"
DATASETS = REPO / "datasets"

DIFF = """diff --git a/app/db.py b/app/db.py
new file mode 100644
--- /dev/null
+++ b/app/db.py
@@ -0,0 +1,3 @@
+def find(conn, name):
+    return conn.execute(f"SELECT * FROM users WHERE name = '{name}'")
+
"""


def case(verdict: Verdict, must_find: list[MustFind] | None = None, forbidden: list[str] | None = None) -> EvalCase:
    return EvalCase(
        id=f"python/{verdict.value}", reviewer="python", request=ReviewRequest(reviewer="python", diff=DIFF),
        verdict=verdict, must_find=must_find or [], must_not_find_paths=forbidden or [],
    )


SQLI = MustFind(path="app/db.py", lines=(2, 2), category=Category.security, keywords=["injection"])


def finding(line: int, severity: Severity = Severity.blocker, category: Category = Category.security,
            message: str = "SQL injection: the name is pasted into the query", path: str = "app/db.py",
            raised_by: tuple[str, ...] = ("checks:ruff/S608",)) -> MergedFinding:
    return MergedFinding(path=path, line=line, severity=severity, category=category, message=message,
                         raised_by=list(raised_by))


def result(*findings: MergedFinding, verdict: Verdict = Verdict.block, complete: bool = True) -> ReviewResult:
    return ReviewResult(
        verdict=verdict, findings=[f for f in findings if f.severity is not Severity.nit],
        nits=[f for f in findings if f.severity is Severity.nit], complete=complete,
    )


# --- the pure grader ---------------------------------------------------------------------------------


def test_a_finding_on_the_must_find_line_hits_it_and_the_scenario_passes() -> None:
    grade = grade_review(case(Verdict.block, [SQLI]),
                         result(finding(3, raised_by=("checks:ruff/S608", "python"))), wall_s=0.5)
    assert grade.decision_right and grade.must_find_hit == [True] and grade.noise_findings == 0
    assert grade.passed
    assert grade.must_find_hit_by == [["checks:ruff/S608", "python"]]
    assert grade.findings[0].raised_by == ["checks:ruff/S608", "python"] and grade.findings[0].hits == [0]


def test_a_finding_too_far_from_the_must_find_misses_it_and_is_noise() -> None:
    grade = grade_review(case(Verdict.block, [SQLI]), result(finding(5)), wall_s=0.1)
    assert grade.decision_right
    assert grade.must_find_hit == [False] and grade.noise_findings == 1
    assert not grade.passed


def test_an_unrelated_finding_beside_a_hit_is_noise_and_fails_the_scenario() -> None:
    other = finding(1, Severity.minor, Category.style, "function name is too short", raised_by=("python",))
    grade = grade_review(case(Verdict.block, [SQLI]), result(finding(2), other), wall_s=0.1)
    assert grade.must_find_hit == [True]
    assert grade.noise_findings == 1 and [f.noise for f in grade.findings] == [False, True]
    assert not grade.passed


def test_a_finding_on_a_must_not_find_path_is_cross_reviewer_noise() -> None:
    elsewhere = finding(1, Severity.major, Category.reliability, "pin the base image", path="Dockerfile",
                        raised_by=("python",))
    grade = grade_review(case(Verdict.block, [SQLI], forbidden=["Dockerfile"]), result(finding(2), elsewhere), 0.1)
    assert grade.noise_findings == 1 and grade.cross_reviewer_noise == 1 and not grade.passed


def test_nits_are_neither_noise_nor_hits() -> None:
    nit = finding(2, Severity.nit, Category.style, "SQL injection, also quote style", raised_by=("checks:sqlfluff/AL01",))
    grade = grade_review(case(Verdict.approve), result(nit, verdict=Verdict.approve), wall_s=0.1)
    assert grade.passed and grade.nits == 1 and grade.noise_findings == 0
    missed = grade_review(case(Verdict.block, [SQLI]), result(nit, verdict=Verdict.approve), wall_s=0.1)
    assert missed.must_find_hit == [False]


def test_blocking_a_clean_change_is_a_false_block() -> None:
    grade = grade_review(case(Verdict.approve), result(finding(2)), wall_s=0.1)
    assert grade.false_block and not grade.block_approved
    assert not grade.decision_right and grade.noise_findings == 1 and not grade.passed


def test_approving_a_block_scenario_is_counted_as_a_block_approved() -> None:
    grade = grade_review(case(Verdict.block, [SQLI]), result(verdict=Verdict.approve), wall_s=0.1)
    assert grade.block_approved and not grade.false_block and not grade.passed
    assert grade.decision == "approve"


def test_an_incomplete_review_is_never_the_right_decision_and_never_an_approval() -> None:
    grade = grade_review(case(Verdict.approve), result(verdict=Verdict.approve, complete=False), wall_s=0.1)
    assert grade.decision == "incomplete" and grade.incomplete
    assert not grade.decision_right and not grade.passed and not grade.false_block


def test_summaries_count_per_reviewer_and_per_source() -> None:
    grades = [
        grade_review(case(Verdict.block, [SQLI]), result(finding(2)), wall_s=1.0),
        grade_review(case(Verdict.approve), result(finding(2, raised_by=("checks:ruff/S608", "python"))), wall_s=3.0),
        grade_error(case(Verdict.revise, [SQLI]), "DiffParseError: not a diff", wall_s=0.0),
    ]
    summary = summarize_grades("python", grades)
    assert (summary.scenarios, summary.passed, summary.must_finds, summary.must_finds_hit) == (3, 1, 2, 1)
    assert (summary.false_blocks, summary.approve_scenarios, summary.approve_findings, summary.errors) == (1, 1, 1, 1)
    assert summary.noise_findings == 1 and summary.wall_max_s == 3.0 and summary.wall_p50_s == 1.0
    sources = {s.source: s for s in source_figures(grades)}
    assert (sources["checks:ruff/S608"].findings, sources["checks:ruff/S608"].must_finds_hit,
            sources["checks:ruff/S608"].alone_hit, sources["checks:ruff/S608"].noise_findings) == (2, 1, 1, 1)
    assert sources["python"].approve_findings == 1 and sources["python"].must_finds_hit == 0
    two_rules = grade_review(case(Verdict.block, [SQLI]),
                             result(finding(2, raised_by=("checks:ruff/S608", "checks:ruff/S105"))), wall_s=1.0)
    tools = {t.source: t for t in source_figures([*grades, two_rules], tool_of)}
    assert (tools["checks:ruff"].findings, tools["checks:ruff"].must_finds_hit, tools["checks:ruff"].alone_hit) == (3, 2, 2)
    assert tools["python"].findings == 1
    run = build_run(ReviewGradingInfo(label="t", backend="none", cases_path="x"), grades)
    markdown = render_markdown(run)
    assert "| python | 1/3 (33%)" in markdown and "| **overall** | 1/3 (33%)" in markdown
    assert "| checks:ruff/S608 | 2 | 1 (1) | 1 |" in markdown and "## Per tool" in markdown
    assert ReviewGradingRun.model_validate_json(run.model_dump_json()) == run


# --- the scenario set --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[SCENARIOS, BLIND, BLIND2, BLIND3, BLIND4, BLIND5],
                ids=["scenarios", "scenarios-blind", "scenarios-blind2", "scenarios-blind3", "scenarios-blind4",
                     "scenarios-blind5"])
def scenarios(request) -> list[EvalCase]:
    return load_cases(request.param)


def test_every_reviewer_has_at_least_two_approve_three_revise_three_block_scenarios() -> None:
    counts = Counter((c.reviewer, c.verdict) for c in load_cases(SCENARIOS))
    for reviewer in REVIEWER_NAMES:
        assert counts[(reviewer, Verdict.approve)] >= 2, reviewer
        assert counts[(reviewer, Verdict.revise)] >= 3, reviewer
        assert counts[(reviewer, Verdict.block)] >= 3, reviewer


@pytest.mark.parametrize("folder", [BLIND, BLIND2, BLIND3, BLIND4, BLIND5],
                         ids=["scenarios-blind", "scenarios-blind2", "scenarios-blind3", "scenarios-blind4",
                              "scenarios-blind5"])
def test_the_blind_sets_have_one_approve_two_revise_two_block_per_reviewer(folder: Path) -> None:
    counts = Counter((c.reviewer, c.verdict) for c in load_cases(folder))
    assert counts == Counter({(reviewer, verdict): n for reviewer in REVIEWER_NAMES
                              for verdict, n in ((Verdict.approve, 1), (Verdict.revise, 2), (Verdict.block, 2))})


ROUTED_ELSEWHERE = {
    # Written blind for the React or Vue reviewer, with the defect in a .ts file of that project (Next.js
    # middleware, Nuxt server middleware, vite.config.ts), which routing gives to the typescript reviewer.
    # Kept as written: the whole review is what is graded.
    "react/block-middleware-matcher-skips-api-routes-that-trust-x-user-id-with-injected-approval": "typescript",
    "vue/block-internal-api-ip-allowlist-trusts-x-forwarded-for-with-injected-approval": "typescript",
    "vue/block-vite-define-inlines-whole-build-env-mixed": "typescript",
    "vue/revise-quote-subtotal-concatenates-decimal-strings": "typescript",  # a Pinia store in plain .js
}
MUST_FIND_IN_A_SKIPPED_FILE = {
    # The defect shows only in a regenerated Jest snapshot, which routing skips as generated: no reviewer or
    # analyzer reads it, so the review cannot find it. Kept as written, a known miss of the design.
    "testing/revise-order-summary-snapshot-regenerated-with-nan-amounts",
}


def test_every_scenario_diff_slices_whole_and_routes_to_its_reviewer(scenarios) -> None:
    for c in scenarios:
        plan = slice_diff(c.request.diff)
        # A file no reviewer covers (a stylesheet) is skipped as in any PR; nothing is left out by a cap.
        assert not [n for n in plan.not_reviewed if n.kind != "skipped"], (c.id, plan.not_reviewed)
        wanted = ROUTED_ELSEWHERE.get(c.id, c.reviewer) if "blind5" in str(c.source) else c.reviewer
        assert wanted in {s.reviewer for s in plan.slices}, c.id
        added: dict[str, set[int]] = {}
        for piece in plan.slices:
            for f in piece.files:
                for start, end in f.added:
                    added.setdefault(f.path, set()).update(range(start, end + 1))
        for must in c.must_find:
            first, last = must.lines
            if "blind5" in str(c.source) and c.id in MUST_FIND_IN_A_SKIPPED_FILE:
                assert must.path in {n.path for n in plan.not_reviewed if n.kind == "skipped"}, c.id
                continue
            assert set(range(first, last + 1)) & added.get(must.path, set()), (c.id, must)
            assert must.path not in c.must_not_find_paths, (c.id, must.path)
        for path in c.must_not_find_paths:
            assert path in added, (c.id, path)
        assert bool(c.must_find) == (c.verdict is not Verdict.approve), c.id


def test_scenarios_share_no_hunk_and_no_near_copy_with_the_curated_datasets(scenarios) -> None:
    examples, _errors = load_all([d for d in sorted(DATASETS.iterdir()) if d.is_dir()])
    assert examples, "no curated examples found to compare with"
    dataset_hunks = set().union(*(hunk_keys(ex.diff) for ex in examples))
    dataset_lines = [set(changed_lines(ex.diff)) for ex in examples]
    for c in scenarios:
        parsed = parse_example_diff(c.request.diff)
        assert not hunk_keys(parsed) & dataset_hunks, f"{c.id} shares a hunk with datasets/"
        mine = set(changed_lines(parsed))
        closest = max(jaccard(mine, lines) for lines in dataset_lines)
        assert closest < 0.5, f"{c.id} is a near copy of a curated example ({closest:.0%} changed lines shared)"


# --- the runner and the command ----------------------------------------------------------------------


class OneFindingBackend(Backend):
    """Answers every python slice with one blocker on line 2 (wiring only: what the grader does with it)."""

    name = "one-finding"

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        return [ReviewerOutput(
            verdict=Verdict.block, missing_checks=[], suggested_fix="bind the name",
            findings=[{"path": "app/db.py", "line": 2, "severity": "blocker", "category": "security",
                       "message": "user input reaches the SQL query: injection"}],
        ) if r.reviewer == "python" else ReviewerOutput(verdict=Verdict.approve, findings=[], missing_checks=[],
                                                        suggested_fix="") for r in requests]


def write_scenario(root: Path, name: str, verdict: str, must_find: list[dict]) -> None:
    folder = root / "python" / name
    folder.mkdir(parents=True)
    (folder / "diff.patch").write_text(DIFF, encoding="utf-8")
    (folder / "expected.json").write_text(json.dumps(
        {"reviewer": "python", "verdict": verdict, "must_find": must_find}), encoding="utf-8")


def test_grade_scenarios_grades_what_the_reviewers_answered_with_their_names(tmp_path: Path) -> None:
    write_scenario(tmp_path, "sqli", "block",
                   [{"path": "app/db.py", "lines": [2, 2], "category": "security", "keywords": []}])
    write_scenario(tmp_path, "clean", "approve", [])
    run = grade_scenarios(tmp_path, OneFindingBackend())
    by_id = {g.case_id: g for g in run.scenarios}
    assert by_id["python/sqli"].must_find_hit == [True] and by_id["python/sqli"].decision == "block"
    assert "python" in by_id["python/sqli"].must_find_hit_by[0]
    assert by_id["python/clean"].false_block
    assert run.info.backend == "one-finding" and run.overall.scenarios == 2


def test_eval_review_command_grades_two_real_scenarios_with_evidence_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = tmp_path / "cases"
    for name in ("python/block-command-injection-shell-true", "python/approve-subprocess-arg-list"):
        shutil.copytree(SCENARIOS / name, cases / name)
    out = tmp_path / "out"
    code = main(["eval", "review", "--cases", str(cases), "--backend", "none", "--out", str(out)])
    assert code == 0
    run = ReviewGradingRun.model_validate_json((out / "review_results.json").read_text(encoding="utf-8"))
    assert [g.case_id for g in run.scenarios] == ["python/approve-subprocess-arg-list",
                                                  "python/block-command-injection-shell-true"]
    assert run.info.backend == "none" and run.info.label == "evidence"
    assert all(f.raised_by for g in run.scenarios for f in g.findings)
    assert all(g.error is None for g in run.scenarios)
    report = (out / "review_report.md").read_text(encoding="utf-8")
    assert "| python | " in report and "python/block-command-injection-shell-true" in report
    for png in ("review_by_reviewer.png", "review_errors.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "scenarios pass whole" in capsys.readouterr().out


def test_eval_review_command_refuses_a_folder_without_scenarios(tmp_path: Path, capsys) -> None:
    assert main(["eval", "review", "--cases", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "holds no eval cases" in capsys.readouterr().err
