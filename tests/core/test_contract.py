"""The reviewer contract: what `parse_review` accepts, what it rejects, and how it says why."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewers.contract import (
    VERDICT_OPEN,
    BrokenAnswer,
    Category,
    ContractError,
    Finding,
    ReviewerOutput,
    Severity,
    Verdict,
    contract_schemas,
    parse_review,
    read_answer,
    render_answer,
    reviewer_output_schema,
    verdict_value_span,
)

VALID = {
    "verdict": "revise",
    "findings": [
        {
            "path": "app/db.py",
            "line": 42,
            "end_line": 44,
            "severity": "blocker",
            "category": "security",
            "message": "The query interpolates user input; use a bound parameter.",
            "suggestion": 'cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))',
        }
    ],
    "missing_checks": ["a test with a quote in user_id"],
    "suggested_fix": "Bind the parameter instead of formatting the SQL string.",
}
VALID_TEXT = json.dumps(VALID)


def with_finding(**changes: object) -> str:
    finding = {**VALID["findings"][0], **changes}
    finding = {k: v for k, v in finding.items() if v is not _DROP}
    return json.dumps({**VALID, "findings": [finding]})


_DROP = object()


def rejected(text: str) -> ContractError:
    with pytest.raises(ContractError) as caught:
        parse_review(text)
    return caught.value


def test_bare_object_parses_into_the_models() -> None:
    out = parse_review(VALID_TEXT)
    assert out.verdict is Verdict.revise
    assert out.findings[0].severity is Severity.blocker
    assert out.findings[0].category is Category.security
    assert (out.findings[0].line, out.findings[0].end_line) == (42, 44)


@pytest.mark.parametrize(
    "text",
    [
        f"```json\n{VALID_TEXT}\n```",
        f"```\n{VALID_TEXT}\n```",
        f"```JSON\r\n{VALID_TEXT}\r\n```\nThat is all.",
        f"  \n\n```json \n{json.dumps(VALID, indent=2)}\n```",
    ],
    ids=["json-fence", "plain-fence", "crlf-fence-then-prose", "indented-in-fence"],
)
def test_fenced_json_is_accepted(text: str) -> None:
    assert parse_review(text) == parse_review(VALID_TEXT)


def test_prose_after_the_object_is_ignored() -> None:
    text = VALID_TEXT + "\n\nI flagged the SQL because {it} is dangerous. {\"not\": \"parsed\"}"
    assert parse_review(text) == parse_review(VALID_TEXT)


def test_prose_before_the_object_is_a_contract_error() -> None:
    error = rejected("Here is my review:\n" + VALID_TEXT)
    assert "must start with a JSON object" in str(error)
    assert "Here is my review" in str(error)
    assert error.text.startswith("Here is my review")


def test_prose_before_a_fence_is_a_contract_error() -> None:
    assert "must start with a JSON object" in str(rejected("Sure! ```json\n" + VALID_TEXT + "\n```"))


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_answer_is_a_contract_error(text: str) -> None:
    assert "empty" in str(rejected(text))


def test_wrong_enum_names_the_field() -> None:
    error = rejected(with_finding(severity="critical"))
    assert error.field == "findings.0.severity"
    assert "findings.0.severity" in str(error) and "critical" in str(error)


def test_wrong_verdict_names_the_field() -> None:
    error = rejected(json.dumps({**VALID, "verdict": "lgtm"}))
    assert error.field == "verdict"


def test_missing_field_names_the_field() -> None:
    error = rejected(json.dumps({k: v for k, v in VALID.items() if k != "missing_checks"}))
    assert error.field == "missing_checks"
    assert "missing_checks" in str(error)


def test_missing_field_inside_a_finding_names_it() -> None:
    error = rejected(with_finding(category=_DROP))
    assert error.field == "findings.0.category"


def test_extra_field_is_rejected_and_named() -> None:
    error = rejected(json.dumps({**VALID, "confidence": 0.9}))
    assert error.field == "confidence"
    error = rejected(with_finding(rule="S608"))
    assert error.field == "findings.0.rule"


def test_end_line_before_line_names_end_line() -> None:
    error = rejected(with_finding(line=10, end_line=9))
    assert error.field == "findings.0.end_line"
    assert "end_line 9 is before line 10" in str(error)


def test_equal_line_and_end_line_is_a_range_of_one() -> None:
    assert parse_review(with_finding(line=7, end_line=7)).findings[0].last_line == 7


@pytest.mark.parametrize("line", [0, -3, "5", True, 4.5])
def test_a_line_must_be_a_positive_json_integer(line: object) -> None:
    assert rejected(with_finding(line=line)).field == "findings.0.line"


@pytest.mark.parametrize(
    "text",
    ['{"verdict": "approve", "findings": [', '{"verdict": approve}', "{'verdict': 'approve'}", "{"],
)
def test_malformed_json_is_a_contract_error_with_a_position(text: str) -> None:
    error = rejected(text)
    assert "malformed" in str(error) and "line 1 column" in str(error)
    assert error.field is None


@pytest.mark.parametrize("text", ["[1, 2]", '"approve"', "42", "null", "```json\n[]\n```"])
def test_non_object_json_is_a_contract_error(text: str) -> None:
    assert "JSON object" in str(rejected(text))


def test_degenerate_nesting_is_a_contract_error_not_a_recursion_error() -> None:
    error = rejected('{"verdict": ' + "[" * 100_000)
    assert "nested too deeply" in str(error)


def test_huge_integer_is_a_contract_error_not_a_value_error() -> None:
    error = rejected('{"verdict": "approve", "findings": [{"line": 1' + "0" * 5000 + "}]}")
    assert type(error) is ContractError


def test_render_answer_round_trips_through_parse_review() -> None:
    out = parse_review(VALID_TEXT)
    assert parse_review(render_answer(out)) == out


def test_a_canonical_answer_opens_with_its_verdict_where_training_and_the_probe_look_for_it() -> None:
    text = render_answer(parse_review(VALID_TEXT))
    assert text.startswith(VERDICT_OPEN)
    start, end = verdict_value_span(text)
    assert text[start:end] == "revise" and start == len(VERDICT_OPEN)
    assert verdict_value_span(text[1:]) is None


def test_contract_schemas_export_both_boundaries() -> None:
    schemas = contract_schemas()
    assert set(schemas) == {"ReviewerOutput", "ReviewRequest"}
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)


# --- properties -------------------------------------------------------------------------------------

findings = st.builds(
    Finding,
    path=st.text(min_size=1, max_size=40),
    line=st.integers(min_value=1, max_value=100_000),
    end_line=st.none(),
    severity=st.sampled_from(Severity),
    category=st.sampled_from(Category),
    message=st.text(min_size=1, max_size=200),
    suggestion=st.none() | st.text(max_size=200),
).flatmap(
    lambda f: st.one_of(
        st.just(f),
        st.integers(min_value=f.line, max_value=f.line + 500).map(
            lambda end: f.model_copy(update={"end_line": end})
        ),
    )
)
outputs = st.builds(
    ReviewerOutput,
    verdict=st.sampled_from(Verdict),
    findings=st.lists(findings, max_size=5),
    missing_checks=st.lists(st.text(max_size=60), max_size=4),
    suggested_fix=st.text(max_size=200),
)


SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(reviewer_output_schema())


@settings(max_examples=100, deadline=None)
@given(outputs)
def test_every_valid_output_satisfies_the_generated_schema_and_round_trips(out: ReviewerOutput) -> None:
    SCHEMA_VALIDATOR.validate(json.loads(out.model_dump_json()))
    SCHEMA_VALIDATOR.validate(json.loads(render_answer(out)))
    assert parse_review(render_answer(out)) == out


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_text_that_passes_jsonschema_also_passes_parse_review(message: str) -> None:
    """The two definitions agree: the schema rejects an empty message exactly as the model does."""
    text = with_finding(message=message)
    schema_ok = SCHEMA_VALIDATOR.is_valid(json.loads(text))
    try:
        parse_review(text)
        model_ok = True
    except ContractError:
        model_ok = False
    assert schema_ok == model_ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet='{}[]":,0123456789eE.-+ \n\\`jsonaptrufl', max_size=200),
        json_values.map(json.dumps),
        json_values.map(lambda v: "```json\n" + json.dumps(v) + "\n```"),
        st.dictionaries(st.sampled_from(list(VALID) + ["x"]), json_values, max_size=5).map(json.dumps),
        st.tuples(st.sampled_from(["", "```json\n", "note: "]), st.text(max_size=40)).map(
            lambda parts: parts[0] + VALID_TEXT[: len(parts[1]) * 4] + parts[1]
        ),
    )
)
def test_parse_review_on_any_text_raises_only_contract_error(text: str) -> None:
    try:
        out = parse_review(text)
    except ContractError as error:
        assert str(error)
    else:
        assert isinstance(out, ReviewerOutput)


# --- read_answer: the one judge every backend, the reviewer server and the eval call -----------------


def test_read_answer_accepts_a_valid_answer_and_repairs_an_inverted_range() -> None:
    assert read_answer(VALID_TEXT, "stop") == parse_review(VALID_TEXT)
    repaired = read_answer(with_finding(line=44, end_line=42), "stop")
    assert isinstance(repaired, ReviewerOutput)
    assert (repaired.findings[0].line, repaired.findings[0].end_line) == (44, None)


def test_read_answer_refuses_an_answer_cut_at_the_cap_unless_asked_not_to() -> None:
    cut = VALID_TEXT[: len(VALID_TEXT) // 2]
    broken = read_answer(cut, "length", max_new_tokens=64, forced_close=False)
    assert isinstance(broken, BrokenAnswer) and broken.cause == "length" and broken.raw == cut
    assert broken.message.startswith("the answer ran out of max_new_tokens=64 and was cut off")
    assert read_answer(VALID_TEXT, "length", accept_truncated=True) == parse_review(VALID_TEXT)


def test_read_answer_keeps_a_grammar_closed_answer_without_the_finding_the_close_cut() -> None:
    whole = parse_review(VALID_TEXT)
    assert read_answer(VALID_TEXT, "length", forced_close=True) == whole  # closed after missing_checks
    two = {"verdict": "block", "missing_checks": [], "suggested_fix": "",
           "findings": [{"path": "a.py", "line": 3, "severity": "blocker", "category": "security",
                         "message": "Injection through the f-string."},
                        {"path": "a.py", "line": 1, "severity": "nit", "category": "style", "message": "The"}]}
    closed = read_answer(json.dumps(two), "length", forced_close=True)
    assert isinstance(closed, ReviewerOutput) and closed.verdict == "block"
    assert [f.line for f in closed.findings] == [3]  # the close came inside the second finding
    # a remote server cannot say it closed the answer: a whole object at the cap counts as closed
    assert read_answer(json.dumps(two), "length") == closed
    assert isinstance(read_answer(json.dumps(two)[:-9], "length"), BrokenAnswer)


def test_read_answer_says_prose_is_prose_even_when_it_ran_out_of_tokens() -> None:
    broken = read_answer("Sure! Here is what I think about", "length", max_new_tokens=64)
    assert isinstance(broken, BrokenAnswer) and broken.cause == "contract"
    assert broken.message.startswith("answer broke the contract: the answer must start with a JSON object")


def test_read_answer_names_the_broken_field_and_keeps_the_raw_text() -> None:
    text = with_finding(severity="urgent")
    broken = read_answer(text, "stop")
    assert isinstance(broken, BrokenAnswer) and broken.raw == text
    assert broken.message.startswith("answer broke the contract: findings.0.severity")
