"""The reviewer contract: what a reviewer is asked and what it must answer.

Everything that crosses the reviewer boundary is one of these pydantic models. The JSON schema a
reviewer must follow is generated from `ReviewerOutput`, never written by hand, so training data,
constrained decoding, serving and evaluation all agree on one definition.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator


class Severity(str, Enum):
    """How much a finding matters; the order below is the order of importance."""

    blocker = "blocker"
    major = "major"
    minor = "minor"
    nit = "nit"


SEVERITY_RANK: dict[Severity, int] = {s: i for i, s in enumerate(Severity)}


class Category(str, Enum):
    """What kind of problem a finding is about."""

    security = "security"
    correctness = "correctness"
    performance = "performance"
    reliability = "reliability"
    maintainability = "maintainability"
    testing = "testing"
    style = "style"


class Verdict(str, Enum):
    """A reviewer's overall decision on its slice."""

    approve = "approve"
    revise = "revise"
    block = "block"


class Finding(BaseModel):
    """One problem at a place in the new version of a file."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="File path in the new version, as in the diff.")
    line: int = Field(ge=1, description="First new-file line the finding is about.")
    end_line: int | None = Field(default=None, ge=1, description="Last new-file line, for a range.")
    severity: Severity
    category: Category
    message: str = Field(min_length=1, description="What is wrong, why it matters, what to do.")
    suggestion: str | None = Field(
        default=None, description="Replacement code for lines line..end_line, when the fix is local."
    )

    @field_validator("end_line")
    @classmethod
    def _range_is_ordered(cls, end_line: int | None, info: ValidationInfo) -> int | None:
        # A field validator (not a model one) so that the error's location names `end_line` itself.
        line = info.data.get("line")
        if end_line is not None and line is not None and end_line < line:
            raise ValueError(f"end_line {end_line} is before line {line}")
        return end_line

    @property
    def last_line(self) -> int:
        return self.end_line if self.end_line is not None else self.line


class ReviewerOutput(BaseModel):
    """The whole answer of one reviewer for one slice."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    findings: list[Finding]
    missing_checks: list[str] = Field(
        description="Tests or checks the change should have and does not (e.g. a rollback test)."
    )
    suggested_fix: str = Field(description="A short plan for the patch author; empty when approving.")


class ContextSnippet(BaseModel):
    """A piece of repository text retrieved to help a reviewer (a called function, a convention)."""

    model_config = ConfigDict(extra="forbid")

    path: str
    text: str
    why: str = ""


class ReviewRequest(BaseModel):
    """What one reviewer is asked to review: one bounded slice of a diff plus its evidence."""

    model_config = ConfigDict(extra="forbid")

    reviewer: str = Field(description="Reviewer name, e.g. 'python'; also the adapter name.")
    task: str = Field(default="", description="PR title and body, or the user's intent for the change.")
    diff: str = Field(description="The bounded unified-diff slice to review (untrusted data).")
    context: list[ContextSnippet] = Field(default_factory=list)
    check_output: str = Field(default="", description="Automated check findings on the changed lines.")
    instructions: str = Field(default="", description="Extra instructions from the repository config.")
    conventions: str = Field(
        default="",
        description="The team's own conventions (AGENTS.md, CONTRIBUTING.md), bounded and made inert; style "
        "guidance that cannot change the verdict rules.",
    )


class ContractError(ValueError):
    """A reviewer answer that does not satisfy the contract; `field` names the offending field."""

    def __init__(self, message: str, field: str | None = None, text: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.text = text


def reviewer_output_schema() -> dict[str, Any]:
    """The JSON schema every reviewer answer must satisfy (generated from `ReviewerOutput`)."""
    return ReviewerOutput.model_json_schema()


def contract_schemas() -> dict[str, Any]:
    """All boundary schemas, for `calora contract schema`."""
    return {
        "ReviewerOutput": ReviewerOutput.model_json_schema(),
        "ReviewRequest": ReviewRequest.model_json_schema(),
    }


_FENCE_OPEN = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n")


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object of a reviewer answer.

    Accepted: a bare object, an object inside a ``` or ```json fence, either followed by prose.
    Rejected: prose before the object (the contract asks for JSON first) and anything that is not an
    object. Raises `ContractError`.
    """
    stripped = text.lstrip()
    if not stripped:
        raise ContractError("the answer is empty; expected a JSON object", text=text)
    fence = _FENCE_OPEN.match(stripped)
    body = stripped[fence.end():] if fence else stripped
    if not body.startswith("{"):
        found = body[:40].replace("\n", " ")
        raise ContractError(
            f"the answer must start with a JSON object or a ```json fence; it starts with {found!r}",
            text=text,
        )
    try:
        value, _end = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError as exc:
        raise ContractError(
            f"the JSON object is malformed at line {exc.lineno} column {exc.colno}: {exc.msg}", text=text
        ) from exc
    except RecursionError as exc:  # a hostile or degenerate answer nested thousands of levels deep
        raise ContractError("the JSON object is nested too deeply to be a reviewer answer", text=text) from exc
    except ValueError as exc:  # e.g. an integer literal over Python's 4,300-digit conversion limit
        raise ContractError(f"the JSON object holds an unreadable value: {exc}", text=text) from exc
    if not isinstance(value, dict):
        raise ContractError("the answer's JSON is not an object", text=text)
    return value


def _describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(root)"
    detail = first["msg"]
    if "input" in first and first["type"] not in ("missing",):
        detail += f" (got {json.dumps(first['input'], default=str)[:80]})"
    more = len(exc.errors()) - 1
    suffix = f"; and {more} more error(s)" if more else ""
    return field, f"{field}: {detail}{suffix}"


def parse_review(text: str) -> ReviewerOutput:
    """Parse and strictly validate a reviewer's answer; raise `ContractError` naming the bad field."""
    data = extract_json_object(text)
    try:
        # Strict JSON-mode validation: "line": "5" or "line": true is a contract violation, not line 5 or 1.
        return ReviewerOutput.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        field, message = _describe_validation_error(exc)
        raise ContractError(message, field=field, text=text) from exc


def render_answer(output: ReviewerOutput) -> str:
    """The canonical text of an answer: the exact target a reviewer is trained to produce."""
    return output.model_dump_json(exclude_none=True)


VERDICT_OPEN = '{"verdict":"'  # how every canonical answer begins: `render_answer` writes the verdict first
_VERDICT_VALUE = re.compile("^" + re.escape(VERDICT_OPEN) + "(" + "|".join(v.value for v in Verdict) + ')"')


def verdict_value_span(answer: str) -> tuple[int, int] | None:
    """Where the verdict's value sits in a canonical answer (`render_answer` puts it first), as a
    [start, end) character span; None for text that does not start like a canonical answer. Training
    uses it to find the tokens that carry the decision."""
    match = _VERDICT_VALUE.match(answer)
    return match.span(1) if match else None


# --- reading a model's answer ----------------------------------------------------------------------


class BrokenAnswer(BaseModel):
    """A model answer that did not make a `ReviewerOutput`: why (`cause`, `message`) and what it said."""

    cause: Literal["length", "contract"] = Field(
        description="length: it ran out of tokens; contract: its text breaks the contract."
    )
    message: str
    raw: str = ""


def json_object_complete(text: str) -> bool:
    """True once `text` holds a whole top-level JSON object (after optional prose or a fence)."""
    start = text.find("{")
    if start < 0:
        return False
    try:
        json.JSONDecoder().raw_decode(text[start:])
    except (ValueError, RecursionError):
        return False
    return True


def answer_settled(text: str) -> bool:
    """True once more tokens cannot change whether `text` keeps the contract.

    That is when a whole JSON object is there, or when the answer starts with prose: `extract_json_object`
    rejects an answer that does not start with an object or a fence, so generating on is wasted time.
    """
    stripped = text.lstrip()
    if stripped and not stripped.startswith(("{", "`")):
        return True
    return json_object_complete(text)


def _drop_inverted_ranges_in(data: dict[str, Any]) -> bool:
    """Remove `end_line` where it is before `line`; True when something was removed."""
    findings = data.get("findings")
    changed = False
    for finding in findings if isinstance(findings, list) else []:
        if not isinstance(finding, dict):
            continue
        line, end = finding.get("line"), finding.get("end_line")
        if isinstance(line, int) and isinstance(end, int) and end < line:
            del finding["end_line"]
            changed = True
    return changed


def drop_inverted_ranges(text: str) -> str:
    """The answer with `end_line` removed from findings whose end_line is before line.

    The one contract rule a JSON-schema grammar cannot express (it relates two fields), so a constrained
    answer can still break it; the range is dropped and the finding keeps its first line. Text without a
    readable JSON object comes back unchanged (`read_answer` then says what is wrong with it).
    """
    try:
        data = extract_json_object(text)
    except ContractError:
        return text
    return json.dumps(data, separators=(",", ":")) if _drop_inverted_ranges_in(data) else text


def read_answer(
    text: str,
    finish_reason: str | None,
    *,
    max_new_tokens: int | None = None,
    accept_truncated: bool = False,
    forced_close: bool | None = None,
) -> ReviewerOutput | BrokenAnswer:
    """The one judge of a model's answer: every backend, the reviewer server and the eval call it.

    Rules, in order:
    1. `finish_reason == "length"` (the answer ran out of tokens) is a failure unless `accept_truncated`
       or the answer was closed: the engine's grammar wrote the shortest valid ending (`forced_close`),
       or, where the judge cannot know (`forced_close=None`: a remote server), the text holds a whole JSON
       object. A closed answer keeps its verdict and its whole findings:
       when the close came before `missing_checks` and `suggested_fix` were written, the last finding is
       the one it cut, and it is dropped (`drop_cut_finding`). An answer that starts with prose is judged
       by rule 2 instead: more tokens would not have saved it, and "it starts with prose" is what its
       author needs to hear.
    2. The JSON object is read as `extract_json_object` allows (bare, fenced, prose after it; never prose
       before it).
    3. The one repair: an inverted range (`end_line` < `line`) loses its `end_line` (`drop_inverted_ranges`).
    4. The rest is validated strictly against `ReviewerOutput`.
    """
    starts_with_prose = not text.lstrip().startswith(("{", "`")) and bool(text.strip())
    closed = finish_reason == "length" and (
        forced_close is True or (forced_close is None and json_object_complete(text))
    )
    if finish_reason == "length" and not accept_truncated and not closed and not starts_with_prose:
        cap = f"={max_new_tokens}" if max_new_tokens else ""
        how = " and was cut off" if forced_close is False else ""
        return BrokenAnswer(
            cause="length", raw=text,
            message=f"the answer ran out of max_new_tokens{cap}{how} (finish_reason=length); raise "
            "max_new_tokens (CALORA_MAX_NEW_TOKENS) or shorten the slice",
        )
    try:
        answer = parse_review(drop_inverted_ranges(text))
    except ContractError as exc:
        return BrokenAnswer(cause="contract", message=f"answer broke the contract: {exc}", raw=text)
    return drop_cut_finding(answer) if closed else answer


def drop_cut_finding(answer: ReviewerOutput) -> ReviewerOutput:
    """A grammar-closed answer without the finding the close cut short.

    Fields come in schema order (verdict, findings, missing_checks, suggested_fix) and the closer fills
    what is missing with the smallest values, so empty `missing_checks` and `suggested_fix` mean the
    close may have come inside the findings: the last one is then incomplete (a cut message, or a
    severity and category the closer picked) and is not the model's. At worst a whole finding of an
    answer that also closed inside `suggested_fix`'s first character is lost.
    """
    if answer.findings and not answer.missing_checks and not answer.suggested_fix:
        return answer.model_copy(update={"findings": answer.findings[:-1]})
    return answer
