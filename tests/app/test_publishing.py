"""The pure publishing plan: what goes inline, what goes to the summary, fingerprints, limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.publishing import (
    CHECK_TEXT_LIMIT,
    Coverage,
    DiffMap,
    extract_fingerprints,
    filter_diff,
    fingerprint,
    map_diff,
    move_to_summary,
    plan_publication,
    render_comment,
    truncate_text,
)
from app.repo_config import RepoConfig
from reviewers.contract import Category, Severity, Verdict
from reviewers.safe_text import redact
from reviewers.synthesis import MergedFinding, ReviewerStatus, ReviewResult
from reviewers.unified_diff import parse_unified_diff
from tests.app.github_env import read_diff

MODELS = "backend/app/models.py"
MIGRATION = "backend/app/alembic/versions/1a31ce608336_add_cascade_delete_relationships.py"
COVERAGE = Coverage(head_sha="a" * 40)


@pytest.fixture(scope="module")
def diff011() -> str:
    shared = Path(__file__).resolve().parents[2].parent / "shared"
    return read_diff(shared, "011-")


@pytest.fixture(scope="module")
def diff_map(diff011: str) -> DiffMap:
    return map_diff(diff011)


def finding(path=MODELS, line=46, severity=Severity.major, category=Category.correctness,
            message="Add passive_deletes=True; otherwise every child row is loaded first.", end_line=None,
            suggestion=None, raised_by=("python",)) -> MergedFinding:
    return MergedFinding(path=path, line=line, end_line=end_line, severity=severity, category=category,
                         message=message, suggestion=suggestion, raised_by=list(raised_by))


def result(*findings: MergedFinding, nits: tuple[MergedFinding, ...] = ()) -> ReviewResult:
    return ReviewResult(
        verdict=Verdict.revise, findings=list(findings), nits=list(nits),
        reviewers=[ReviewerStatus(reviewer="python", slices=1, verdict=Verdict.revise, findings=len(findings))],
    )


def test_diff_map_knows_hunks_and_line_texts(diff_map: DiffMap):
    assert diff_map.can_comment(MODELS, 46) and diff_map.can_comment(MODELS, 79, 81)
    assert not diff_map.can_comment(MODELS, 60)  # between hunks
    assert not diff_map.can_comment(MODELS, 47, 77)  # a range across two hunks
    assert "cascade_delete=True" in diff_map.text(MODELS, 46)
    assert diff_map.can_comment(MIGRATION, 1, 37)


def test_fingerprint_ignores_line_numbers_and_wording_noise():
    a = fingerprint(MODELS, Category.correctness, "  x = 1", "Line 46: add a CHECK!")
    assert a == fingerprint(MODELS, Category.correctness, "x = 1", "line 47 add a check")
    assert a != fingerprint(MODELS, Category.security, "x = 1", "line 46: add a check")
    assert a != fingerprint(MODELS, Category.correctness, "x = 2", "line 46: add a check")
    assert a != fingerprint("other.py", Category.correctness, "x = 1", "line 46: add a check")
    assert extract_fingerprints([f"text <!-- calora:fp={a} --> more", "no marker"]) == {a}


def test_comment_names_the_reviewer_why_and_what_and_carries_the_suggestion():
    f = finding(suggestion="    items = Relationship(passive_deletes=True)", raised_by=("python", "sql"))
    body = render_comment(f, "0123456789abcdef")
    assert "`python`, `sql` reviewers" in body and "the code may not do what it should" in body
    assert "Add passive_deletes=True" in body
    assert "```suggestion\n    items = Relationship(passive_deletes=True)\n```" in body
    assert body.endswith("<!-- calora:fp=0123456789abcdef -->")


def test_suggestion_containing_a_fence_gets_a_longer_fence():
    body = render_comment(finding(suggestion='doc = """\n```\n"""'), "0" * 16)
    assert "````suggestion\n" in body


def test_long_messages_are_cut_to_a_few_lines():
    body = render_comment(finding(message="\n".join(f"line {i} of a long essay" for i in range(40))), "0" * 16)
    assert "line 5 of" in body and "line 6 of" not in body


def test_findings_split_between_inline_and_summary(diff_map: DiffMap):
    style = finding(line=80, category=Category.style, severity=Severity.major, message="Name it better.")
    outside = finding(line=60, message="Something between the hunks.")
    minor = finding(line=79, end_line=81, severity=Severity.minor, category=Category.maintainability,
                    message="Document who owns deletion.")
    nit = finding(line=81, severity=Severity.nit, message="Trailing comma.")
    plan = plan_publication(result(finding(), style, outside, minor, nits=(nit,)), config=RepoConfig(),
                            diff_map=diff_map, coverage=COVERAGE)
    assert [(c.path, c.start_line, c.line) for c in plan.comments] == [(MODELS, None, 46), (MODELS, 79, 81)]
    reasons = {(i.finding.line, i.reason) for i in plan.summary_items}
    assert reasons == {(80, "style"), (60, "not_in_diff"), (81, "nit")}
    assert plan.posts_review and plan.event == "COMMENT"
    assert plan.comments[1].to_api() == {"path": MODELS, "line": 81, "side": "RIGHT", "body": plan.comments[1].body,
                                         "start_line": 79, "start_side": "RIGHT"}
    assert [a.start_line for a in plan.check.annotations] == [60]


def test_budget_keeps_the_most_severe_first(diff_map: DiffMap):
    findings = [finding(path=MIGRATION, line=n, severity=s, message=f"Problem number {chr(97 + n)} here.")
                for n, s in [(3, Severity.minor), (5, Severity.blocker), (7, Severity.major), (9, Severity.major)]]
    plan = plan_publication(result(*findings), config=RepoConfig(max_inline_comments=2), diff_map=diff_map,
                            coverage=COVERAGE)
    assert [c.severity for c in plan.comments] == [Severity.blocker, Severity.major]
    assert sorted(i.finding.line for i in plan.summary_items if i.reason == "over_budget") == [3, 9]


def test_threshold_and_inline_style_are_configurable(diff_map: DiffMap):
    minor = finding(severity=Severity.minor)
    style = finding(line=80, category=Category.style)
    strict = plan_publication(result(minor, style), config=RepoConfig(min_inline_severity=Severity.major),
                              diff_map=diff_map, coverage=COVERAGE)
    assert strict.comments == [] and not strict.posts_review and strict.check.conclusion == "success"
    loose = plan_publication(result(minor, style), config=RepoConfig(inline_style=True), diff_map=diff_map,
                             coverage=COVERAGE)
    assert len(loose.comments) == 2


def test_already_posted_fingerprints_are_not_repeated(diff_map: DiffMap):
    first = plan_publication(result(finding()), config=RepoConfig(), diff_map=diff_map, coverage=COVERAGE)
    again = plan_publication(result(finding(message="add passive_deletes=True -- otherwise every child row is "
                                                    "loaded first")),
                             config=RepoConfig(), diff_map=diff_map, coverage=COVERAGE,
                             existing_fingerprints={first.comments[0].fingerprint})
    assert again.comments == [] and again.duplicates == 1 and not again.posts_review
    assert again.check.conclusion == "neutral"  # the finding still stands, it is just not repeated


def test_same_finding_twice_in_one_review_is_posted_once(diff_map: DiffMap):
    plan = plan_publication(result(finding(), finding(raised_by=("checks",))), config=RepoConfig(),
                            diff_map=diff_map, coverage=COVERAGE)
    assert len(plan.comments) == 1 and plan.duplicates == 1


def test_conclusions(diff_map: DiffMap):
    def conclusion(*findings, reviewers=None):
        r = result(*findings)
        if reviewers is not None:
            r.reviewers = reviewers
        return plan_publication(r, config=RepoConfig(), diff_map=diff_map, coverage=COVERAGE).check

    assert conclusion(finding(severity=Severity.blocker)).conclusion == "failure"
    assert conclusion(finding()).conclusion == "neutral"
    assert conclusion().conclusion == "success"
    assert conclusion(reviewers=[]).title == "Nothing to review"
    failed = conclusion(reviewers=[ReviewerStatus(reviewer="python", slices=1, status="error",
                                                  errors=["backend error: timeout"])])
    assert failed.conclusion == "neutral" and "every reviewer failed" in failed.title
    assert "timeout" in failed.summary


def test_request_changes_needs_the_config_and_a_new_blocker(diff_map: DiffMap):
    blocker = finding(severity=Severity.blocker)
    asks = RepoConfig(request_changes_on_blockers=True)
    assert plan_publication(result(blocker), config=asks, diff_map=diff_map, coverage=COVERAGE).event == (
        "REQUEST_CHANGES"
    )
    assert plan_publication(result(blocker), config=RepoConfig(), diff_map=diff_map,
                            coverage=COVERAGE).event == "COMMENT"
    assert plan_publication(result(finding()), config=asks, diff_map=diff_map, coverage=COVERAGE).event == "COMMENT"


def test_move_to_summary_rerenders_body_and_annotations(diff_map: DiffMap):
    plan = plan_publication(result(finding(), finding(path=MIGRATION, line=5, message="Another thing.")),
                            config=RepoConfig(), diff_map=diff_map, coverage=COVERAGE)
    moved = move_to_summary(plan, {plan.comments[0].fingerprint}, "Line could not be resolved")
    assert len(moved.comments) == 1 and len(plan.comments) == 2
    assert "GitHub refused it as an inline comment: Line could not be resolved" in moved.review_body()
    assert len(moved.check.annotations) == len(plan.check.annotations) + 1


def test_check_output_is_cut_to_githubs_limit(diff_map: DiffMap):
    many = [finding(path=f"src/file_{i}.py", line=1, message="x" * 600 + str(i)) for i in range(400)]
    plan = plan_publication(result(*many), config=RepoConfig(), diff_map=diff_map, coverage=COVERAGE)
    assert len(plan.check.text.encode()) <= CHECK_TEXT_LIMIT and "truncated to fit" in plan.check.text
    assert len(plan.check.summary) <= CHECK_TEXT_LIMIT


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=3000), st.integers(min_value=40, max_value=2000))
def test_truncate_never_exceeds_the_limit(text: str, limit: int):
    out = truncate_text(text, limit)
    assert len(out.encode("utf-8")) <= limit
    if len(text.encode("utf-8")) <= limit:
        assert out == text


def test_filter_diff_keeps_files_byte_for_byte(diff011: str):
    parsed = parse_unified_diff(diff011)
    kept, dropped = filter_diff(parsed, lambda p: p == MODELS)
    assert dropped == [MIGRATION]
    assert kept.text == diff011[diff011.index("diff --git a/backend/app/models.py"):]
    assert kept.paths() == [MODELS] and map_diff(kept).files[MODELS] == map_diff(parsed).files[MODELS]
    everything, none = filter_diff(parsed, lambda p: True)
    assert everything.text == diff011 and none == []


def test_redact_removes_tokens_keys_and_secrets():
    text = ("token ghs_16C7e42F292c6912E7710c838347Ae178B4a and Bearer eyJhbGciOi.eyJpc3MiOjF9.c2lnbmF0dXJl "
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- and hunter2-secret")
    out = redact(text, ["hunter2-secret"])
    for leaked in ("ghs_16C7", "eyJhbGciOi", "MIIE", "hunter2-secret"):
        assert leaked not in out
