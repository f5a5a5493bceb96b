"""The needs_context scenarios: each one's repo/ snapshot is the head the diff produces, and every reviewer has some."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from eval.cases import EvalCase, load_cases
from reviewers.routing import REVIEWER_NAMES
from reviewers.unified_diff import parse_unified_diff

SCENARIOS = Path(__file__).resolve().parents[2] / "eval" / "scenarios"


@pytest.fixture(scope="module")
def context_cases() -> list[EvalCase]:
    return [c for c in load_cases(SCENARIOS) if c.needs_context]


def test_every_reviewer_has_two_scenarios_whose_defect_needs_the_repository(context_cases) -> None:
    counts = Counter(c.reviewer for c in context_cases)
    assert {r: counts[r] for r in REVIEWER_NAMES} == dict.fromkeys(REVIEWER_NAMES, 2)
    assert all(c.must_find for c in context_cases), "a needs_context scenario has a defect to find"


def test_each_snapshot_holds_the_head_of_every_changed_file_and_the_files_that_show_the_defect(
    context_cases,
) -> None:
    for case in context_cases:
        repo = Path(case.source) / "repo"
        diff = parse_unified_diff(case.request.diff)
        for file in diff.files:
            head = (repo / file.path).read_text(encoding="utf-8").splitlines()
            for hunk in file.hunks:
                new_no = hunk.new_start
                for text, mark in zip(hunk.lines, hunk.marks, strict=False):
                    if mark == "-" or mark == "\\":
                        continue
                    assert head[new_no - 1] == text[1:], (case.id, file.path, new_no)
                    new_no += 1
        others = [p for p in repo.rglob("*") if p.is_file() and str(p.relative_to(repo)) not in diff.paths()]
        assert others, f"{case.id}: the snapshot holds no file beyond the diff, so nothing shows the defect"
        assert sum(p.stat().st_size for p in repo.rglob("*") if p.is_file()) < 20_000, f"{case.id}: keep it small"


def test_every_file_named_as_showing_the_defect_is_in_the_snapshot(context_cases) -> None:
    for case in context_cases:
        assert case.context_files, case.id
        for path in case.context_files:
            assert (Path(case.source) / "repo" / path).is_file(), (case.id, path)
