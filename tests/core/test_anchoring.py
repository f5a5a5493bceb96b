"""One anchoring rule: publishing, slicing, the pipeline, training validation and the prompt agree.

Every probe (a path, a line, an optional end line) is asked of each place that decides where a finding
may sit; they must give the same answer on real diffs and on the corner where copies used to differ
(two hunks whose new-side lines touch, as in a `-U0` diff).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.publishing import map_diff
from reviewers.anchoring import ANCHOR_RULE, DiffAnchors, drop_unanchored
from reviewers.contract import Finding, ReviewerOutput, Verdict
from reviewers.prompt import system_prompt
from reviewers.slicing import SliceLimits, SlicePlan, slice_diff
from reviewers.synthesis import SliceOutcome
from reviewers.unified_diff import ParsedDiff, parse_unified_diff
from tests.conftest import REPO_ROOT
from tests.core.test_slicing import read, route_everything
from training.examples import CuratedExample, ExampleError, validate_example

WHOLE = SliceLimits(budget_tokens=10**8, max_files=10**6, max_slices_per_reviewer=10**6, max_diff_bytes=10**9)
SAMPLE = REPO_ROOT / "samples" / "storefront.diff"

TOUCHING_HUNKS = """\
diff --git a/src/rates.py b/src/rates.py
--- a/src/rates.py
+++ b/src/rates.py
@@ -3 +3 @@ def rate():
-    return 1
+    return 2
@@ -4 +4 @@ def rate():
-    base = 0
+    base = 1
"""


def probes(parsed: ParsedDiff) -> list[tuple[str, int, int | None]]:
    """Lines at and around every hunk's edges, ranges inside, across and past hunks, and off-diff paths."""
    out: list[tuple[str, int, int | None]] = [("no/such/file.py", 1, None), ("no/such/file.py", 1, 5)]
    for f in parsed.files:
        spans = [s for h in f.hunks if (s := h.new_span()) is not None]
        out.append((f.path, 999999, None))
        for k, (a, b) in enumerate(spans):
            out += [(f.path, n, None) for n in (a - 1, a, b, b + 1) if n >= 1]
            out += [(f.path, a, b), (f.path, a, b + 1), (f.path, max(a - 1, 1), b)]
            if k + 1 < len(spans):
                out.append((f.path, b, spans[k + 1][0]))  # across two hunks
    return out


def slices_allow(plan: SlicePlan, path: str, line: int, end_line: int | None) -> bool:
    return any(
        (shown := s.file(path)) is not None and shown.can_comment(line, end_line) for s in plan.slices
    )


def assert_one_rule(text: str) -> int:
    parsed = parse_unified_diff(text)
    anchors = DiffAnchors.of(parsed)
    diff_map = map_diff(parsed)
    plan = slice_diff(parsed, WHOLE, route=route_everything)
    sliced = {f.path for s in plan.slices for f in s.files}
    asked = 0
    for path, line, end_line in probes(parsed):
        rule = anchors.can_anchor(path, line, end_line)
        assert diff_map.can_comment(path, line, end_line) == rule, (path, line, end_line)
        if path in sliced or path not in anchors.spans:
            assert slices_allow(plan, path, line, end_line) == rule, (path, line, end_line)
        asked += 1
    return asked


def test_publishing_and_slicing_anchor_alike_on_real_diffs(real_diffs: list[Path]) -> None:
    assert sum(assert_one_rule(read(p)) for p in real_diffs) > 1000


def test_a_range_across_two_touching_hunks_is_refused_everywhere() -> None:
    assert_one_rule(TOUCHING_HUNKS)
    parsed = parse_unified_diff(TOUCHING_HUNKS)
    assert DiffAnchors.of(parsed).spans == {"src/rates.py": ((3, 3), (4, 4))}
    plan = slice_diff(parsed, WHOLE, route=route_everything)
    assert not slices_allow(plan, "src/rates.py", 3, 4)
    assert slices_allow(plan, "src/rates.py", 3, None) and slices_allow(plan, "src/rates.py", 4, None)


def test_training_validation_accepts_exactly_what_can_anchor_accepts() -> None:
    text = SAMPLE.read_text()
    anchors = DiffAnchors.of(parse_unified_diff(text))
    context_lines_accepted = 0
    for path, line, end_line in probes(parse_unified_diff(text)):
        example = CuratedExample(
            reviewer="python", task="t", diff=text,
            expected=ReviewerOutput(verdict=Verdict.revise, missing_checks=[], suggested_fix="fix it", findings=[
                Finding(path=path, line=line, end_line=end_line, severity="minor", category="correctness",
                        message="m"),
            ]),
        )
        try:
            validate_example(example)
            accepted = True
        except ExampleError:
            accepted = False
        assert accepted == anchors.can_anchor(path, line, end_line), (path, line, end_line)
        context_lines_accepted += accepted and path == "app/orders.py" and line == 8  # a context line
    assert context_lines_accepted


def test_the_prompt_states_the_rule_from_its_one_home() -> None:
    assert ANCHOR_RULE in system_prompt("python")
    homes = [
        p for folder in ("reviewers", "app", "training", "eval") for p in (REPO_ROOT / folder).rglob("*.py")
        if "added or context lines" in p.read_text(encoding="utf-8")
    ]
    assert homes == [REPO_ROOT / "reviewers" / "anchoring.py"]


def answer(*findings: Finding) -> ReviewerOutput:
    return ReviewerOutput(verdict=Verdict.block, findings=list(findings), missing_checks=[], suggested_fix="x")


def blocker(path: str, line: int) -> Finding:
    return Finding(path=path, line=line, severity="blocker", category="security", message="injected")


@pytest.fixture(scope="module")
def two_reviewers() -> SlicePlan:
    return slice_diff(SAMPLE.read_text())  # python: app/orders.py; docker_ci: Dockerfile; sql: the migration


def test_a_finding_counts_only_inside_the_slice_its_reviewer_was_shown(two_reviewers: SlicePlan) -> None:
    python = two_reviewers.for_reviewer("python")[0]
    docker = two_reviewers.for_reviewer("docker_ci")[0]
    outcomes = [
        SliceOutcome(reviewer="python", slice_index=0, output=answer(
            blocker("app/orders.py", 15), blocker("Dockerfile", 2), blocker("app/orders.py", 999999),
        )),
        SliceOutcome(reviewer="docker_ci", slice_index=0, output=answer(blocker("Dockerfile", 2))),
        SliceOutcome(reviewer="sql", slice_index=0, error="timed out"),
    ]
    kept, notes = drop_unanchored([python, docker], outcomes)
    assert [(f.path, f.line) for f in kept[0].output.findings] == [("app/orders.py", 15)]
    assert [(f.path, f.line) for f in kept[1].output.findings] == [("Dockerfile", 2)]
    assert kept[2] == outcomes[2]
    assert len(notes) == 2 and all(n.startswith("python (slice 0): dropped a blocker") for n in notes)
    assert "'Dockerfile' is not a file of the diff" in notes[0] and "line 999999" in notes[1]
