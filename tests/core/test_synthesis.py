"""Synthesis: many reviewer answers and errors in, one actionable review out."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewers.contract import SEVERITY_RANK, Category, Finding, ReviewerOutput, Severity, Verdict
from reviewers.slicing import NotReviewed
from reviewers.synthesis import (
    MAX_PLAN_ITEMS,
    ReviewResult,
    SliceOutcome,
    cluster_findings,
    finding_order,
    merge_findings,
    render_json,
    render_markdown,
    similar_messages,
    synthesize,
    verdict_for,
)

SQLI = "SQL injection: the user id is formatted into the query string; bind it as a parameter instead."
FIX = 'cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))'


def finding(
    path: str = "backend/app/crud.py",
    line: int = 42,
    severity: str = "major",
    category: str = "security",
    message: str = SQLI,
    end_line: int | None = None,
    suggestion: str | None = None,
) -> Finding:
    return Finding(path=path, line=line, end_line=end_line, severity=Severity(severity),
                   category=Category(category), message=message, suggestion=suggestion)


def answer(reviewer: str, verdict: str, *findings: Finding, missing: tuple[str, ...] = (),
           index: int = 0) -> SliceOutcome:
    output = ReviewerOutput(verdict=Verdict(verdict), findings=list(findings), missing_checks=list(missing),
                            suggested_fix="")
    return SliceOutcome(reviewer=reviewer, slice_index=index, output=output)


def failure(reviewer: str, error: str, index: int = 0) -> SliceOutcome:
    return SliceOutcome(reviewer=reviewer, slice_index=index, error=error)


# --- deduplication ------------------------------------------------------------------------------


def test_the_same_problem_from_two_reviewers_and_the_checks_is_one_finding() -> None:
    result = synthesize(
        [
            answer("python", "revise", finding(line=42, severity="major", message="Possible SQL injection in query")),
            answer("sql", "block", finding(line=43, severity="blocker", suggestion=FIX)),
        ],
        [finding(line=42, severity="major", message="ruff S608: Possible SQL injection vector through "
                                                      "string-based query construction")],
    )
    (merged,) = result.findings
    assert merged.raised_by == ["python", "sql", "checks"]
    assert merged.severity is Severity.blocker, "the highest severity wins"
    assert merged.message == SQLI, "the longest, most specific message wins"
    assert merged.suggestion is None, "the fix replaces line 43, which no analyzer flagged"
    assert (merged.line, merged.end_line) == (42, None), "the analyzer's line is the checked one"


def test_a_reviewer_fix_that_covers_the_evidence_keeps_the_lines_it_replaces() -> None:
    (merged,) = synthesize(
        [answer("sql", "block", finding(line=42, end_line=43, severity="blocker", suggestion=FIX))],
        [finding(line=42, severity="major", message="ruff S608: Possible SQL injection vector through "
                                                      "string-based query construction")],
    ).findings
    assert merged.suggestion == FIX
    assert (merged.line, merged.end_line) == (42, 43)


def test_a_reviewer_fix_inside_the_evidence_does_not_narrow_it() -> None:
    """oxlint flags a hook's lines 11-14; a reviewer's one-line fix on 14 would move the comment off 11."""
    (merged,) = merge_findings(cluster_findings([
        ("checks:oxlint/react-hooks(exhaustive-deps)", finding(line=11, end_line=14, severity="minor")),
        ("react", finding(line=14, severity="major", suggestion=FIX)),
    ]))
    assert (merged.line, merged.end_line, merged.suggestion) == (11, 14, None)


def test_merged_range_is_the_union_when_no_suggestion_anchors_it() -> None:
    (merged,) = merge_findings(cluster_findings([("python", finding(line=10, end_line=12)), ("security", finding(line=13))]))
    assert (merged.line, merged.end_line) == (10, 13)


@pytest.mark.parametrize(
    "other",
    [
        finding(line=45),  # two lines past the range: another place
        finding(category="correctness"),
        finding(path="backend/app/api.py"),
        finding(message="Variable name shadows the builtin `id`."),
    ],
    ids=["lines-apart", "other-category", "other-file", "other-message"],
)
def test_findings_that_differ_in_place_category_or_meaning_stay_apart(other: Finding) -> None:
    assert len(merge_findings(cluster_findings([("python", finding(line=42, end_line=43)), ("sql", other)]))) == 2


def test_a_duplicate_from_overlapping_slices_of_one_reviewer_is_raised_once() -> None:
    result = synthesize([
        answer("python", "revise", finding(line=120), index=0),
        answer("python", "revise", finding(line=120), index=1),
    ])
    (merged,) = result.findings
    assert merged.raised_by == ["python"]
    assert result.reviewers[0].findings == 2 and result.reviewers[0].slices == 2


def test_a_chain_of_adjacent_duplicates_merges_into_one() -> None:
    merged = merge_findings(cluster_findings([("a", finding(line=10)), ("b", finding(line=12)), ("c", finding(line=11))]))
    assert len(merged) == 1 and (merged[0].line, merged[0].end_line) == (10, 12)
    assert merged[0].raised_by == ["a", "b", "c"]


def test_message_similarity_threshold() -> None:
    assert similar_messages("SQL injection", SQLI)
    assert similar_messages("Missing timeout on requests.get", "missing timeout on requests.get()")
    assert not similar_messages("unused variable x", "variable y shadows a builtin")
    assert not similar_messages("Add a timeout to the HTTP call", SQLI)


# --- ordering, nits, verdict --------------------------------------------------------------------


def test_findings_are_sorted_blockers_first_then_path_and_line() -> None:
    result = synthesize([
        answer("python", "block",
               finding("b.py", 5, "minor", "reliability", "No retry on a transient error."),
               finding("b.py", 1, "blocker", "security", "Hard-coded AWS secret key."),
               finding("a.py", 9, "major", "correctness", "Off-by-one in the pagination."),
               finding("a.py", 3, "minor", "performance", "Query inside a loop (N+1).")),
    ])
    assert [(f.severity.value, f.path, f.line) for f in result.findings] == [
        ("blocker", "b.py", 1), ("major", "a.py", 9), ("minor", "a.py", 3), ("minor", "b.py", 5),
    ]


def test_nits_are_collapsed_out_of_the_findings() -> None:
    result = synthesize([answer("python", "approve",
                                finding(line=3, severity="nit", category="style", message="Trailing comma."),
                                finding(line=8, severity="nit", category="style", message="Name is vague."))])
    assert result.findings == []
    assert [n.line for n in result.nits] == [3, 8]
    assert result.verdict is Verdict.approve and result.decision == "approve"
    assert result.revision_plan == []


def test_a_nit_that_another_reviewer_calls_major_is_a_major_finding() -> None:
    result = synthesize([
        answer("python", "approve", finding(severity="nit")),
        answer("security", "revise", finding(severity="major")),
    ])
    assert [f.severity for f in result.findings] == [Severity.major] and result.nits == []


@pytest.mark.parametrize(
    ("severities", "verdict"),
    [((), "approve"), (("nit",), "approve"), (("nit", "minor"), "revise"), (("major",), "revise"),
     (("minor", "blocker", "nit"), "block")],
)
def test_the_verdict_follows_the_findings(severities: tuple[str, ...], verdict: str) -> None:
    findings = [finding(line=10 * (i + 1), severity=s, message=f"problem number {i} here") for i, s in
                enumerate(severities)]
    assert verdict_for(findings) is Verdict(verdict)
    own = verdict_for(findings).value
    assert synthesize([answer("python", own, *findings)]).verdict is Verdict(verdict)


def test_check_findings_alone_can_ask_for_a_revision() -> None:
    result = synthesize([answer("python", "approve")], [finding(message="ruff S602: shell=True")])
    assert result.verdict is Verdict.revise and result.findings[0].raised_by == ["checks"]


# --- reconciliation -----------------------------------------------------------------------------


def test_an_approval_with_a_blocker_is_reconciled_to_block_and_flagged() -> None:
    result = synthesize([answer("python", "approve", finding(severity="blocker"))])
    assert result.verdict is Verdict.block
    row = result.reviewers[0]
    assert row.reconciled and row.verdict is Verdict.block
    assert result.notes == [
        "python (slice 0) answered approve but its findings (1 blocker) say block; counted as block"
    ]


def test_a_block_without_findings_is_reconciled_to_approve_and_flagged() -> None:
    result = synthesize([answer("docker_ci", "block"), answer("python", "approve")])
    assert result.verdict is Verdict.approve
    rows = {r.reviewer: r for r in result.reviewers}
    assert rows["docker_ci"].reconciled and rows["docker_ci"].verdict is Verdict.approve
    assert not rows["python"].reconciled
    assert "docker_ci (slice 0) answered block but its findings (no findings) say approve" in result.notes[0]


def test_a_consistent_verdict_is_not_flagged() -> None:
    result = synthesize([answer("python", "revise", finding(severity="minor"))])
    assert not result.reviewers[0].reconciled and result.notes == []


# --- revision plan ------------------------------------------------------------------------------


def test_plan_has_one_step_per_finding_when_few() -> None:
    result = synthesize([answer("python", "block",
                                finding(line=42, severity="blocker", suggestion=FIX),
                                finding("backend/app/api.py", 7, "minor", "reliability", "Add a timeout."))],
                        [], [])
    assert result.revision_plan == [
        f"backend/app/crud.py:42 — [blocker] {SQLI} (apply the suggested replacement)",
        "backend/app/api.py:7 — [minor] Add a timeout.",
    ]


def test_plan_groups_by_file_and_stays_within_seven_steps() -> None:
    many = [finding(f"pkg/mod{i % 3}.py", 10 * i + 1, "minor", "maintainability", f"Problem {i} in helper {i}.")
            for i in range(20)]
    many.append(finding("pkg/mod2.py", 500, "blocker", "security", "Pickle loads untrusted bytes."))
    result = synthesize([answer("python", "block", *many, missing=("a test for the pickle path",))])
    plan = result.revision_plan
    assert len(plan) == 4
    assert plan[0].startswith("pkg/mod2.py:") and "[blocker] Pickle loads untrusted bytes." in plan[0]
    assert "; and 6 more here" in plan[0]
    assert plan[-1] == "tests — add the missing checks: a test for the pickle path"


def test_plan_with_many_files_ends_with_a_pointer_to_the_rest() -> None:
    many = [finding(f"pkg/file{i:02}.py", 1, "major", "correctness", f"Bug {i} in function {i}.") for i in range(20)]
    result = synthesize([answer("python", "revise", *many, missing=("an integration test",))])
    plan = result.revision_plan
    assert len(plan) == MAX_PLAN_ITEMS
    assert [step.split(":")[0] for step in plan[:5]] == [f"pkg/file{i:02}.py" for i in range(5)]
    assert plan[5] == "15 more finding(s) in 15 other file(s) (pkg/file05.py, pkg/file06.py, pkg/file07.py, " \
                      "pkg/file08.py, pkg/file09.py, …) — see the list above"
    assert plan[6].startswith("tests — ")


# --- errors and completeness --------------------------------------------------------------------


def test_errors_are_in_the_status_table_with_partial_and_error_rows() -> None:
    result = synthesize([
        answer("python", "revise", finding(severity="minor"), index=0),
        failure("python", "ContractError: verdict: Input should be 'approve', 'revise' or 'block'", index=1),
        failure("testing", "backend error: CUDA out of memory", index=0),
        SliceOutcome(reviewer="sql", slice_index=3),
    ])
    rows = {r.reviewer: r for r in result.reviewers}
    assert (rows["python"].status, rows["python"].slices, rows["python"].answered) == ("partial", 2, 1)
    assert rows["python"].errors == ["slice 1: ContractError: verdict: Input should be 'approve', 'revise' or 'block'"]
    assert (rows["testing"].status, rows["testing"].verdict) == ("error", None)
    assert rows["sql"].errors == ["slice 3: returned neither an answer nor an error"]
    assert not result.complete
    assert result.incomplete_reason == (
        "3 of 4 slice(s) got no valid answer (python (1/2), sql (1/1), testing (1/1)); "
        "their code was not reviewed"
    )
    assert result.verdict.value == "revise"
    assert result.decision == "incomplete", "unreviewed code is neither approved nor merely revised"


def test_when_every_reviewer_failed_the_review_is_incomplete_not_approved() -> None:
    result = synthesize([failure("python", "timeout after 120 s"), failure("docker_ci", "ContractError: x")])
    assert not result.complete
    assert result.decision == "incomplete"
    assert result.incomplete_reason.startswith("no reviewer produced a valid answer: all 2 slice(s) failed")
    markdown = render_markdown(result)
    assert markdown.startswith("## ⚠️ Incomplete — no approval")
    assert "INCOMPLETE REVIEW: no reviewer produced a valid answer" in markdown
    assert "Approve" not in markdown
    assert "| python | 1 | — | 0 | ERROR | slice 0: timeout after 120 s |" in markdown
    assert json.loads(render_json(result))["decision"] == "incomplete"


def test_a_partial_failure_never_reads_as_approval() -> None:
    result = synthesize([answer("python", "approve"), failure("security", "backend error: boom")])
    assert result.verdict is Verdict.approve and result.decision == "incomplete"


def test_nothing_to_review_is_a_complete_approval() -> None:
    result = synthesize([], [], [NotReviewed(path="uv.lock", reason="lock file")])
    assert result.complete and result.decision == "approve"
    assert result.not_reviewed[0].path == "uv.lock"


def test_missing_checks_are_deduplicated_across_reviewers() -> None:
    result = synthesize([
        answer("python", "approve", missing=("A test with a quote in user_id", "a rollback test")),
        answer("sql", "approve", missing=("a test with a quote in user_id.", "  ", "A rollback test")),
    ])
    assert result.missing_checks == ["A test with a quote in user_id", "a rollback test"]


# --- renderings ---------------------------------------------------------------------------------


def full_result() -> ReviewResult:
    return synthesize(
        [
            answer("python", "approve", finding(line=42, severity="blocker", suggestion="x = '```'\n"),
                   finding("backend/app/api.py", 7, "minor", "reliability", "Add a timeout to requests.get."),
                   finding("backend/app/api.py", 3, "nit", "style", "Import order <script>alert(1)</script>.")),
            answer("security", "revise",
                   finding("backend/app/api.py", 20, "major", "security", "Token logged; ping @admin to rotate.")),
            failure("testing", "ContractError: findings.0.line: Input should be a valid integer | got 'x'"),
        ],
        [],
        [NotReviewed(path="frontend/package-lock.json", reason="lock file"),
         NotReviewed(path="big.py", reviewer="python", reason="over max_slices_per_reviewer=8")],
        check_notes=["yamllint: missing (not installed)"],
    )


def test_markdown_has_every_part_of_the_review() -> None:
    md = render_markdown(full_result())
    assert md.startswith("## 🔴 Block\n\n**1 blocker · 1 major · 1 minor · 1 nit**")
    assert "INCOMPLETE REVIEW: 1 of 3 slice(s) got no valid answer (testing (1/1))" in md
    assert "### Blockers\n\n- **`backend/app/crud.py:42`** · security · python:" in md
    assert "### Major\n\n- **`backend/app/api.py:20`**" in md
    assert "<details><summary>1 nit(s)</summary>" in md and "</details>" in md
    assert "### Revision plan\n\n1. backend/app/crud.py:42 — [blocker]" in md
    assert "| python | 1 | block (reconciled) | 3 | ok |  |" in md
    assert "| testing | 1 | — | 0 | ERROR | slice 0: ContractError: findings.0.line: Input should be a valid " \
           "integer \\| got 'x' |" in md
    assert "- `frontend/package-lock.json`: lock file" in md
    assert "- `big.py` (python): over max_slices_per_reviewer=8" in md
    assert "- yamllint: missing (not installed)" in md
    assert "python (slice 0) answered approve" in md


def test_markdown_neutralises_model_html_mentions_and_backticks() -> None:
    md = render_markdown(full_result())
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "@admin" not in md and "@\u200badmin" in md
    assert "  ````\n  x = '```'\n  ````" in md, "the fence is longer than any backtick run in the code"


def test_json_round_trips_and_always_has_the_same_keys() -> None:
    full = full_result()
    data = json.loads(render_json(full))
    assert ReviewResult.model_validate(data) == full
    empty = json.loads(render_json(synthesize([])))
    assert list(data) == list(empty) == [
        "verdict", "findings", "nits", "missing_checks", "revision_plan", "reviewers", "not_reviewed", "notes",
        "complete", "incomplete_reason", "decision",
    ]
    assert set(data["findings"][0]) == {"path", "line", "end_line", "severity", "category", "message",
                                        "suggestion", "raised_by"}
    assert render_json(full) == render_json(full_result()), "stable output for the same input"


# --- properties ---------------------------------------------------------------------------------

findings_st = st.builds(
    finding,
    path=st.sampled_from(["a.py", "b.py", "web/c.tsx"]),
    line=st.integers(1, 40),
    severity=st.sampled_from([s.value for s in Severity]),
    category=st.sampled_from(["security", "correctness", "style"]),
    message=st.sampled_from([SQLI, "SQL injection", "Add a timeout.", "Missing timeout on the call",
                             "Unused import os", "N+1 query inside the loop"]),
)
outcome_st = st.one_of(
    st.builds(lambda r, v, fs, i: answer(r, v, *fs, index=i), st.sampled_from(["python", "sql", "testing"]),
              st.sampled_from(["approve", "revise", "block"]), st.lists(findings_st, max_size=6), st.integers(0, 3)),
    st.builds(failure, st.sampled_from(["python", "security"]), st.text(min_size=1, max_size=20)),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(outcome_st, max_size=8), st.lists(findings_st, max_size=4))
def test_synthesis_invariants(outcomes: list[SliceOutcome], checks: list[Finding]) -> None:
    result = synthesize(outcomes, checks)
    assert len(result.revision_plan) <= MAX_PLAN_ITEMS
    assert result.findings == sorted(result.findings, key=finding_order)
    assert all(f.severity is not Severity.nit for f in result.findings)
    assert all(f.severity is Severity.nit for f in result.nits)
    merged = result.findings + result.nits
    assert result.verdict is verdict_for(merged)
    raised = [(o.reviewer, f) for o in outcomes if o.output for f in o.output.findings] + [
        ("checks", f) for f in checks]
    for name, original in raised:  # nothing is lost: every finding is covered by a merged one
        assert any(
            m.path == original.path and m.category == original.category and name in m.raised_by
            and SEVERITY_RANK[m.severity] <= SEVERITY_RANK[original.severity]
            for m in merged
        )
    errors = sum(1 for o in outcomes if o.output is None)
    assert result.complete == (errors == 0)
    assert sum(len(r.errors) for r in result.reviewers) == errors
    if not result.complete:
        assert result.decision != "approve"
    render_markdown(result)
    assert ReviewResult.model_validate_json(render_json(result)) == result


def test_without_findings_alone_a_reviewer_finding_needs_an_analyzer_to_confirm_it() -> None:
    """The local models' default: a small model's own findings were rarely right held out (14 of 63), its
    confirmations of an analyzer's mostly right (57 of 88)."""
    alone = finding(path="backend/app/other.py", line=7, severity="blocker", message="The cache is never cleared.")
    confirming = finding(line=42, severity="blocker",
                         message="Possible SQL injection in query: the handler formats the id into the SQL text")
    nit_raised = finding(path="Dockerfile", line=3, severity="major", category="performance",
                         message="pip keeps its cache in the image")
    confirming = confirming.model_copy(update={"suggestion": 'cur.execute(f"SELECT * FROM users WHERE id = {uid}")'})
    outcomes = [answer("python", "block", alone, confirming, nit_raised, missing=("a test for the empty cart",))]
    checks = [finding(line=42, severity="major", message="ruff S608: Possible SQL injection vector"),
              finding(path="Dockerfile", line=3, severity="nit", category="performance",
                      message="hadolint DL3042: Avoid use of cache directory with pip")]
    posted = synthesize(outcomes, checks, findings_alone=False)
    assert [(f.path, f.line, f.severity) for f in posted.findings] == [("backend/app/crud.py", 42, Severity.blocker)]
    assert posted.findings[0].message == "ruff S608: Possible SQL injection vector", "the analyzer's words"
    assert posted.findings[0].suggestion is None, "a small model's 'fix' can be the defect itself"
    assert posted.missing_checks == [] and any("1 missing check(s)" in n for n in posted.notes)
    assert [(f.path, f.severity) for f in posted.nits] == [("Dockerfile", Severity.nit)], "a nit stays a nit"
    assert any("1 reviewer finding(s) that no analyzer confirms were not posted" in n for n in posted.notes)
    everything = synthesize(outcomes, checks)
    assert {f.path for f in everything.findings} == {"backend/app/crud.py", "backend/app/other.py", "Dockerfile"}
    assert everything.missing_checks == ["a test for the empty cart"]


def test_only_an_analyzer_finding_above_a_nit_gives_a_reviewer_something_to_confirm() -> None:
    from reviewers.synthesis import can_confirm

    nit = finding(path="Dockerfile", line=3, severity="nit", category="performance", message="pip cache")
    major = finding(line=42, severity="major", message="ruff S608: Possible SQL injection vector")
    assert not can_confirm(["Dockerfile"], [nit]), "a reviewer may not raise an analyzer's nit"
    assert can_confirm(["backend/app/crud.py"], [nit, major])
    assert not can_confirm(["backend/app/other.py"], [nit, major]), "evidence on another file confirms nothing here"
    assert not can_confirm([], [major]) and not can_confirm(["Dockerfile"], [])


def test_two_analyzers_on_one_line_keep_both_pieces_of_advice_and_say_one_problem_once() -> None:
    from reviewers.checks.model import CheckFinding

    def tool(name: str, rule: str, severity: str, message: str) -> CheckFinding:
        return CheckFinding(path="Dockerfile", line=4, severity=Severity(severity), category=Category.performance,
                            message=message, tool=name, rule=rule)

    cache = tool("hadolint", "DL3042", "nit", "Avoid use of cache directory with pip. Use `pip install --no-cache-dir`")
    order = tool("patterns", "source-copied-before-install", "minor",
                 "The whole source is copied before the dependencies are installed")
    [merged] = synthesize([], [cache, order]).findings
    assert merged.message == f"{order.message} · {cache.message}", "the most severe first, neither dropped"
    assert merged.raised_by == ["checks:hadolint/DL3042", "checks:patterns/source-copied-before-install"]
    twice = tool("patterns", "pip-cache", "nit", "Avoid use of the pip cache directory: use pip install --no-cache-dir")
    [alone] = synthesize([], [cache, twice]).nits
    assert alone.message == cache.message, "one problem in two tools' words is said once"
