"""The needs_context scenarios (each repo/ snapshot is the head the diff produces) and the context ablation."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from app.cli import main
from eval.cases import EvalCase, load_cases
from eval.review_grading import ReviewGradingRun, context_line, render_markdown
from eval.review_runner import grade_scenarios
from reviewers.backends.base import Backend, BackendResult
from reviewers.contract import Category, Finding, ReviewerOutput, ReviewRequest, Severity, Verdict
from reviewers.routing import REVIEWER_NAMES
from reviewers.unified_diff import ParsedDiff, parse_unified_diff

SCENARIOS = Path(__file__).resolve().parents[2] / "eval" / "scenarios"


@pytest.fixture(scope="module")
def context_cases() -> list[EvalCase]:
    return [c for c in load_cases(SCENARIOS) if c.needs_context]


def test_every_reviewer_has_two_scenarios_whose_defect_needs_the_repository(context_cases) -> None:
    counts = Counter(c.reviewer for c in context_cases)
    assert {r: counts[r] for r in REVIEWER_NAMES} == dict.fromkeys(REVIEWER_NAMES, 2)
    assert all(c.must_find for c in context_cases), "a needs_context scenario has a defect to find"


def assert_snapshot_holds_the_new_side(case_id: str, repo: Path, diff: ParsedDiff) -> None:
    """Every context and added line of the diff stands at its new line number in the snapshot's file."""
    for file in diff.files:
        if file.status == "deleted":
            continue
        head = (repo / file.path).read_text(encoding="utf-8").splitlines()
        for hunk in file.hunks:
            new_no = hunk.new_start
            for text, mark in zip(hunk.lines, hunk.marks, strict=False):
                if mark in ("-", "\\"):
                    continue
                assert head[new_no - 1] == text[1:], (case_id, file.path, new_no)
                new_no += 1


def test_each_snapshot_holds_the_head_of_every_changed_file_and_the_files_that_show_the_defect(
    context_cases,
) -> None:
    for case in context_cases:
        repo = Path(case.source) / "repo"
        diff = parse_unified_diff(case.request.diff)
        assert_snapshot_holds_the_new_side(case.id, repo, diff)
        others = [p for p in repo.rglob("*") if p.is_file() and str(p.relative_to(repo)) not in diff.paths()]
        assert others, f"{case.id}: the snapshot holds no file beyond the diff, so nothing shows the defect"
        assert sum(p.stat().st_size for p in repo.rglob("*") if p.is_file()) < 20_000, f"{case.id}: keep it small"


def test_every_file_named_as_showing_the_defect_is_in_the_snapshot(context_cases) -> None:
    for case in context_cases:
        assert case.context_files, case.id
        for path in case.context_files:
            assert (Path(case.source) / "repo" / path).is_file(), (case.id, path)


# --- the ablation: grading with and without the snapshot's context ----------------------------------------------

N_PLUS_ONE = SCENARIOS / "python" / "revise-csv-export-property-hides-foreign-key-n-plus-one"


class ReadsItsContextBackend(Backend):
    """Wiring only (no model): reports the N+1 exactly when its request's context shows the ForeignKey, so
    the test can tell whether the snapshot's context reached the reviewer and the ablation counted it."""

    name = "reads-its-context"

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        out: list[BackendResult] = []
        for request in requests:
            sees_relation = any("ForeignKey" in snippet.text for snippet in request.context)
            findings = [Finding(path="billing/views.py", line=22, severity=Severity.major,
                                category=Category.performance,
                                message="billing_label follows the account ForeignKey: one query per row (N+1)")]
            out.append(ReviewerOutput(verdict=Verdict.revise if sees_relation else Verdict.approve,
                                      findings=findings if sees_relation else [], missing_checks=[],
                                      suggested_fix="select_related('account')" if sees_relation else ""))
        return out


def copy_case(root: Path, folder: Path) -> Path:
    target = root / folder.parent.name / folder.name
    shutil.copytree(folder, target)
    return root


def test_the_snapshot_reaches_the_reviewers_and_the_ablation_compares_with_and_without(tmp_path: Path) -> None:
    cases = copy_case(tmp_path / "cases", N_PLUS_ONE)
    run = grade_scenarios(cases, ReadsItsContextBackend())
    (grade,) = run.scenarios
    assert grade.passed and grade.needs_context and grade.context_file_shown
    assert "billing/models.py" in grade.context_paths
    ablation = run.context_ablation
    assert ablation is not None and ablation.scenarios == 1 and ablation.context_file_shown == 1
    assert (ablation.with_context.passed, ablation.without_context.passed) == (1, 0)
    assert (ablation.with_context.must_finds_hit, ablation.without_context.must_finds_hit) == (1, 0)
    assert ablation.without_grades[0].context_paths == [] and not ablation.without_grades[0].passed
    assert run.info.context
    line = ("Context ablation on 1 needs_context scenarios: with context pass 1/1 (100%), must-finds hit 1/1 "
            "(100%); without pass 0/1 (0%), must-finds hit 0/1 (0%); a file showing the defect was retrieved in 1/1.")
    assert context_line(run) == line and line in render_markdown(run)
    assert ReviewGradingRun.model_validate_json(run.model_dump_json()) == run


def test_without_context_no_reviewer_sees_the_snapshot_and_the_report_says_so(tmp_path: Path) -> None:
    cases = copy_case(tmp_path / "cases", N_PLUS_ONE)
    run = grade_scenarios(cases, ReadsItsContextBackend(), context=False)
    (grade,) = run.scenarios
    assert not grade.passed and grade.context_paths == [] and grade.context_file_shown is False
    assert run.context_ablation is None and not run.info.context
    assert context_line(run) == ("Repository context: off; the 1 needs_context scenarios: pass 0/1 (0%), "
                                 "must-finds hit 0/1 (0%).")


def test_eval_review_takes_context_and_no_context_with_evidence_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = copy_case(tmp_path / "cases", N_PLUS_ONE)
    for switch, ablation in (("--context", True), ("--no-context", False)):
        out = tmp_path / switch
        assert main(["eval", "review", "--cases", str(cases), "--backend", "none", "--no-charts", switch,
                     "--out", str(out)]) == 0
        run = ReviewGradingRun.model_validate_json((out / "review_results.json").read_text(encoding="utf-8"))
        assert run.info.context is ablation and (run.context_ablation is not None) is ablation
        printed = capsys.readouterr().out
        assert ("Context ablation on 1" in printed) is ablation and ("Repository context: off" in printed) is not ablation


# --- the analyzers read the snapshot's whole files, as the App's fetch gives them --------------------------------

WORKFLOW_CASE = SCENARIOS / "docker_ci" / "block-secret-handed-to-an-action-that-echoes-it"


def test_snapshot_files_are_the_changed_routed_files_the_snapshot_holds(tmp_path: Path) -> None:
    from eval.review_runner import snapshot_files
    from reviewers.context.source import DirectorySource

    diff = parse_unified_diff((WORKFLOW_CASE / "diff.patch").read_text(encoding="utf-8"))
    files = snapshot_files(diff, DirectorySource(WORKFLOW_CASE / "repo"))
    assert sorted(files) == sorted(diff.paths())
    assert files[".github/workflows/preview.yml"] == (WORKFLOW_CASE / "repo" / ".github/workflows/preview.yml").read_text()
    assert snapshot_files(diff, None) == {}
    assert snapshot_files(diff, DirectorySource(tmp_path)) == {}, "a file the snapshot lacks is left out, not invented"


def test_a_whole_file_analyzer_runs_on_the_snapshot_and_is_skipped_without_it(tmp_path: Path) -> None:
    from reviewers.checks import CheckReport

    cases = copy_case(tmp_path / "cases", WORKFLOW_CASE)
    statuses = {}
    for switch in ("--context", "--no-context"):
        saved = tmp_path / f"evidence{switch}"
        assert main(["eval", "review", "--cases", str(cases), "--backend", "none", "--no-charts", switch,
                     "--save-evidence", str(saved), "--out", str(tmp_path / switch)]) in (0, 1)
        (report_file,) = saved.iterdir()
        report = CheckReport.model_validate_json(report_file.read_text(encoding="utf-8"))
        statuses[switch] = {run.tool: run.status for run in report.runs if run.tool in ("zizmor", "actionlint")}
    assert statuses["--no-context"] == {"zizmor": "skipped", "actionlint": "skipped"}
    assert statuses["--context"] == {"zizmor": "ok", "actionlint": "ok"}


SNAPSHOT_SETS = [SCENARIOS.parent / "scenarios-blind4", SCENARIOS.parent / "scenarios-blind5"]


@pytest.mark.parametrize("folder", SNAPSHOT_SETS, ids=[f.name for f in SNAPSHOT_SETS])
def test_the_blind_sets_with_snapshots_hold_the_whole_head_of_every_changed_file_and_nothing_else(
        folder: Path) -> None:
    """What the App fetches for the analyzers: each changed file's new text, the diff's lines in place."""
    cases = load_cases(folder)
    assert len(cases) == 40
    for case in cases:
        repo = Path(case.source) / "repo"
        diff = parse_unified_diff(case.request.diff)
        kept = sorted(f.path for f in diff.files if f.status != "deleted")
        assert sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()) == kept, case.id
        assert_snapshot_holds_the_new_side(case.id, repo, diff)
