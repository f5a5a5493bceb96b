"""Scoring on hand-made answers: each metric's definition, including the ±2-line rule, keywords and noise."""

from __future__ import annotations

import pytest

from eval.cases import EvalCase, MustFind, keywords_from_message, must_find_from_finding
from eval.metrics import (
    finding_hits,
    metric_values,
    score_case,
    summarize,
    summarize_all,
)
from eval.results import CaseResult
from reviewers.contract import Finding, ReviewerOutput, ReviewRequest, Verdict

DIFF = "diff --git a/app/db.py b/app/db.py\n--- a/app/db.py\n+++ b/app/db.py\n@@ -1,1 +1,2 @@\n x = 1\n+y = 2\n"


def finding(path: str = "app/db.py", line: int = 10, end_line: int | None = None, category: str = "security",
            message: str = "SQL built with an f-string", severity: str = "blocker") -> Finding:
    return Finding(path=path, line=line, end_line=end_line, severity=severity, category=category, message=message)


def case(verdict: str = "block", must_find: list[MustFind] | None = None, must_not: list[str] | None = None,
         case_id: str = "python/c1", reviewer: str = "python") -> EvalCase:
    return EvalCase(id=case_id, reviewer=reviewer, request=ReviewRequest(reviewer=reviewer, diff=DIFF),
                    verdict=Verdict(verdict), must_find=must_find or [], must_not_find_paths=must_not or [])


def answer(verdict: str, findings: list[Finding], case_id: str = "python/c1", reviewer: str = "python",
           latency: float = 1.0, tokens: int | None = 50) -> CaseResult:
    output = ReviewerOutput(verdict=Verdict(verdict), findings=findings, missing_checks=[], suggested_fix="")
    return CaseResult(case_id=case_id, reviewer=reviewer, raw=output.model_dump_json(), output=output,
                      latency_s=latency, completion_tokens=tokens)


def invalid(case_id: str = "python/c1", reviewer: str = "python", latency: float = 2.0) -> CaseResult:
    return CaseResult(case_id=case_id, reviewer=reviewer, raw="Sure! Here is my review", error="not JSON",
                      latency_s=latency, completion_tokens=20)


SQL_MUST = MustFind(path="app/db.py", lines=(10, 12), category="security", keywords=["f-string", "execute"])


# --- the ±2-line rule ------------------------------------------------------------------------------

@pytest.mark.parametrize("line, end_line, hit", [
    (10, None, True),   # inside
    (8, None, True),    # two before the first line
    (7, None, False),   # three before
    (14, None, True),   # two after the last line
    (15, None, False),  # three after
    (1, 7, False),      # a range ending three before
    (1, 8, True),       # a range ending two before
    (5, 30, True),      # a range covering the whole must_find
])
def test_a_finding_hits_within_two_lines_of_the_range(line: int, end_line: int | None, hit: bool) -> None:
    assert finding_hits(finding(line=line, end_line=end_line), SQL_MUST) is hit


def test_a_finding_on_another_path_never_hits() -> None:
    assert not finding_hits(finding(path="app/other.py"), SQL_MUST)


def test_diff_prefixes_and_dot_slash_do_not_change_the_path() -> None:
    assert finding_hits(finding(path="b/app/db.py"), SQL_MUST)
    assert finding_hits(finding(path="./app/db.py"), SQL_MUST)


# --- category or keyword ---------------------------------------------------------------------------

def test_another_category_hits_through_a_keyword_in_the_message_case_insensitively() -> None:
    f = finding(category="correctness", message="The query passed to EXECUTE is built from user input")
    assert finding_hits(f, SQL_MUST)


def test_another_category_without_any_keyword_misses() -> None:
    f = finding(category="style", message="Line is too long")
    assert not finding_hits(f, SQL_MUST)


def test_a_must_find_without_category_or_keywords_is_hit_by_location_alone() -> None:
    must = MustFind(path="app/db.py", lines=(10, 10))
    assert finding_hits(finding(category="style", message="anything"), must)


def test_keywords_come_from_code_spans_caps_terms_and_identifiers() -> None:
    message = ("`datetime.utcnow()` is naive while `created_at` is aware, so the subtraction raises a TypeError; "
               "compare with hmac.compare_digest and keep the WHERE clause.")
    assert keywords_from_message(message) == ["datetime.utcnow", "created_at", "WHERE", "hmac.compare_digest"]


def test_keywords_fall_back_to_long_words_when_there_is_no_code() -> None:
    message = "The service parses untrusted images and runs as root, so an exploit owns the container."
    assert keywords_from_message(message) == ["container", "untrusted", "exploit"]


def test_must_find_from_an_expected_finding_keeps_path_range_and_category() -> None:
    must = must_find_from_finding(finding(line=53, end_line=55, message="Full card numbers go to `logger.info`"))
    assert must.path == "app/db.py" and must.lines == (53, 55) and must.category == "security"
    assert must.keywords == ["logger.info"]


# --- noise -----------------------------------------------------------------------------------------

def test_any_finding_on_an_approve_case_is_noise() -> None:
    score = score_case(case("approve"), answer("approve", [finding(severity="nit", category="style")]))
    assert score.noise_findings == 1 and not score.passed


def test_findings_on_must_not_find_paths_are_noise_and_fail_the_case() -> None:
    c = case("block", [SQL_MUST], must_not=["app/migrations/0001.py"])
    score = score_case(c, answer("block", [finding(), finding(path="app/migrations/0001.py")]))
    assert score.must_find_hit == [True]
    assert score.noise_findings == 1 and not score.passed


def test_extra_findings_on_other_paths_of_a_defective_case_are_not_noise() -> None:
    score = score_case(case("block", [SQL_MUST]), answer("block", [finding(), finding(path="app/views.py")]))
    assert score.noise_findings == 0 and score.passed


# --- pass / fail -----------------------------------------------------------------------------------

def test_a_case_passes_when_valid_right_verdict_all_found_and_no_noise() -> None:
    assert score_case(case("block", [SQL_MUST]), answer("block", [finding()])).passed


def test_a_wrong_verdict_fails_even_when_every_finding_is_right() -> None:
    score = score_case(case("block", [SQL_MUST]), answer("revise", [finding()]))
    assert score.must_find_hit == [True] and not score.verdict_correct and not score.passed


def test_one_missed_must_find_fails_the_case() -> None:
    second = MustFind(path="app/db.py", lines=(40, 40), category="reliability")
    score = score_case(case("block", [SQL_MUST, second]), answer("block", [finding()]))
    assert score.must_find_hit == [True, False] and not score.passed


def test_an_invalid_answer_has_no_verdict_hits_nothing_and_fails() -> None:
    score = score_case(case("block", [SQL_MUST]), invalid())
    assert not score.valid and score.verdict is None and score.must_find_hit == [False] and not score.passed


def test_grading_a_result_against_another_case_is_refused() -> None:
    with pytest.raises(ValueError, match="graded against"):
        score_case(case(case_id="python/other"), answer("block", []))


# --- per-reviewer summary --------------------------------------------------------------------------

def graded_set() -> list:
    must = MustFind(path="app/db.py", lines=(10, 10), category="security")
    cases_and_answers = [
        (case("block", [must], case_id="python/b1"), answer("block", [finding()], "python/b1", latency=1.0)),
        (case("block", [must], case_id="python/b2"), answer("revise", [finding(line=30)], "python/b2", latency=2.0)),
        (case("approve", case_id="python/a1"), answer("approve", [], "python/a1", latency=3.0)),
        (case("approve", case_id="python/a2"), answer("block", [finding()], "python/a2", latency=4.0)),
        (case("revise", [must], case_id="python/r1"), invalid("python/r1", latency=10.0)),
    ]
    return [score_case(c, r) for c, r in cases_and_answers]


def test_summary_metrics_follow_their_definitions() -> None:
    m = summarize("python", graded_set())
    assert m.cases == 5 and m.passed == 2 and m.pass_count == "2/5"
    assert m.validity == pytest.approx(4 / 5)
    assert m.verdict_accuracy == pytest.approx(2 / 5)  # b1 and a1; the invalid answer counts as wrong
    assert m.block_recall == pytest.approx(1 / 2)  # b1 blocked, b2 did not
    assert m.false_block_rate == pytest.approx(1 / 2)  # a2 blocked a clean change
    assert m.finding_recall == pytest.approx(1 / 3)  # b1 hit; b2's finding is 20 lines off; r1 invalid
    assert m.noise_rate == pytest.approx(1 / 5) and m.noise_findings == 1  # a2's finding
    assert m.latency_p50_s == 3.0 and m.latency_p95_s == 10.0
    assert m.completion_tokens_mean == pytest.approx((50 * 4 + 20) / 5)


def test_metrics_without_a_denominator_are_undefined_not_zero() -> None:
    scores = [score_case(case("revise", case_id="python/x"), answer("revise", [], "python/x"))]
    m = summarize("python", scores)
    assert m.block_recall is None and m.false_block_rate is None and m.finding_recall is None
    assert m.pass_rate == 1.0


def test_summaries_are_per_reviewer() -> None:
    scores = graded_set() + [score_case(case("approve", case_id="sql/a", reviewer="sql"),
                                        answer("approve", [], "sql/a", reviewer="sql"))]
    summaries = summarize_all(scores)
    assert list(summaries) == ["python", "sql"] and summaries["sql"].pass_count == "1/1"


def test_metric_values_take_validity_from_each_decoding_and_the_rest_from_raw() -> None:
    raw = summarize("python", graded_set(), "raw")
    constrained = raw.model_copy(update={"decoding": "constrained", "validity": 1.0, "verdict_accuracy": 0.9})
    values = metric_values({"raw": raw, "constrained": constrained})
    assert values["raw_validity"] == pytest.approx(0.8) and values["constrained_validity"] == 1.0
    assert values["verdict_accuracy"] == pytest.approx(0.4)
    assert metric_values({"raw": raw})["constrained_validity"] is None
