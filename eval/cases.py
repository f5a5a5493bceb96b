"""Eval cases: what a reviewer is asked and what a good answer must (and must not) contain.

Two formats load into the same `EvalCase`:

- **eval.jsonl** from `calora data build` (one chat record per line, with `request` and `expected`). Its
  `must_find` are derived from the expected findings (`must_find_from_finding`): the finding's path and
  `[line, end_line or line]`, its category, and keywords taken from its message. `must_not_find_paths` is
  empty: the curated answers do not say which files are clean, so for these cases noise is counted on
  approve cases only.
- **scenario folders** `<dir>/<reviewer>/<case>/diff.patch` plus `expected.json` =
  `{"reviewer", "verdict", "must_find": [{"path", "lines": [first, last], "category", "keywords"}],
  "must_not_find_paths", "rationale"}`, optionally `"task"` (the PR title/body the reviewer sees) and
  `"needs_context": true` (the defect shows only with the files of the case's `repo/` snapshot) with
  `"context_files"` (the files of `repo/` that show it).

`load_cases(path)` accepts an eval.jsonl file, a `calora data build` output folder (every
`<reviewer>/eval.jsonl`), a scenario folder, or a single scenario case folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reviewers.contract import Category, Finding, ReviewRequest, Verdict


class CaseError(ValueError):
    """A case file that cannot be evaluated; the message starts with the file and names the field."""


class MustFind(BaseModel):
    """A problem the reviewer must report: a finding on `path` near `lines` of the right kind."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    lines: tuple[int, int] = Field(description="First and last new-file line of the problem (inclusive).")
    category: Category | None = Field(default=None, description="Matches a finding of this category.")
    keywords: list[str] = Field(
        default_factory=list, description="Matches a finding whose message contains one (case-insensitive)."
    )

    @field_validator("lines")
    @classmethod
    def _ordered(cls, lines: tuple[int, int]) -> tuple[int, int]:
        first, last = lines
        if first < 1 or last < first:
            raise ValueError(f"lines must be [first, last] with 1 <= first <= last, got {list(lines)}")
        return lines


class ScenarioExpectation(BaseModel):
    """The `expected.json` of a scenario case folder."""

    model_config = ConfigDict(extra="forbid")

    reviewer: str = Field(min_length=1)
    verdict: Verdict
    must_find: list[MustFind] = Field(default_factory=list)
    must_not_find_paths: list[str] = Field(default_factory=list)
    rationale: str = ""
    task: str = ""
    needs_context: bool = Field(
        default=False, description="The defect shows only with the repository's other files (the case's repo/ "
        "snapshot): graded apart in the context ablation of `calora eval review`.",
    )
    context_files: list[str] = Field(
        default_factory=list, description="Files of repo/ that show the defect: retrieval should bring one.",
    )


class EvalCase(BaseModel):
    """One graded review: the request, the verdict expected, what must and must not be found."""

    model_config = ConfigDict(extra="forbid")

    id: str
    reviewer: str
    request: ReviewRequest
    verdict: Verdict
    must_find: list[MustFind] = Field(default_factory=list)
    must_not_find_paths: list[str] = Field(default_factory=list)
    rationale: str = ""
    needs_context: bool = False
    context_files: list[str] = Field(default_factory=list)
    source: str = Field(default="", description="File the case was read from.")


# --- keywords from a finding message ---------------------------------------------------------------

_CODE_SPAN = re.compile(r"`([^`\n]{2,60})`")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9_]{2,}\b")
_IDENTIFIER = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:[_.\-][A-Za-z0-9]+)+\b")
_WORD = re.compile(r"[A-Za-z][a-z]{6,}")
_STOPWORDS = frozenset(
    ["because", "without", "another", "through", "before", "between", "should", "would", "could", "there", "their", "which", "whether", "everything", "anything", "something", "nothing", "instead", "already", "usually", "always", "include", "including", "included", "remove", "removed", "change", "changes", "changed", "makes", "making", "make", "other", "others", "those", "these", "still", "every", "means"]
)
MAX_KEYWORDS = 6


def keywords_from_message(message: str) -> list[str]:
    """Distinctive terms of a finding message, for matching a reviewer's finding that words it differently.

    In order, without duplicates, at most `MAX_KEYWORDS`: code spans in backticks (a trailing `()` dropped),
    ALL-CAPS terms of 3+ characters (SQL keywords, acronyms such as SSRF), dotted/underscored/hyphenated
    identifiers (`hmac.compare_digest`, `continue-on-error`). Only when none of those exist, the three
    longest ordinary words of 7+ letters that are not stopwords.
    """
    found: list[str] = []

    def add(term: str) -> None:
        term = term.strip().removesuffix("()").strip()
        if len(term) >= 3 and term.lower() not in (t.lower() for t in found):
            found.append(term)

    for span in _CODE_SPAN.findall(message):
        add(span)
    without_code = _CODE_SPAN.sub(" ", message)
    for term in _ACRONYM.findall(without_code):
        add(term)
    for term in _IDENTIFIER.findall(without_code):
        add(term)
    if not found:
        words = {w.lower() for w in _WORD.findall(without_code)} - _STOPWORDS
        for word in sorted(words, key=lambda w: (-len(w), w))[:3]:
            add(word)
    return found[:MAX_KEYWORDS]


def must_find_from_finding(finding: Finding) -> MustFind:
    """The must_find an expected finding implies: same path, its line range, its category, its keywords."""
    return MustFind(
        path=finding.path, lines=(finding.line, finding.last_line), category=finding.category,
        keywords=keywords_from_message(finding.message),
    )


# --- loading ---------------------------------------------------------------------------------------

def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(root)"
    return f"{field}: {first['msg']}"


def case_from_record(record: dict, source: str = "") -> EvalCase:
    """An `EvalCase` from one `calora data build` JSONL record (`id`, `reviewer`, `request`, `expected`)."""
    from reviewers.contract import ReviewerOutput

    for key in ("id", "reviewer", "request", "expected"):
        if key not in record:
            raise CaseError(f"{source}: {key}: missing; is this an eval.jsonl written by `calora data build`?")
    try:
        request = ReviewRequest.model_validate(record["request"])
        expected = ReviewerOutput.model_validate(record["expected"])
    except ValidationError as exc:
        raise CaseError(f"{source}: {_first_error(exc)}") from exc
    return EvalCase(
        id=str(record["id"]), reviewer=str(record["reviewer"]), request=request, verdict=expected.verdict,
        must_find=[must_find_from_finding(f) for f in expected.findings], source=source,
    )


def load_jsonl_cases(path: Path) -> list[EvalCase]:
    """Every case of one eval.jsonl; a bad line raises `CaseError` naming `file:line`."""
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CaseError(f"{path}:{n}: not JSON: {exc.msg}") from exc
        if not isinstance(record, dict):
            raise CaseError(f"{path}:{n}: expected a JSON object per line")
        cases.append(case_from_record(record, source=f"{path}:{n}"))
    return cases


def load_scenario_case(folder: Path) -> EvalCase:
    """One `<reviewer>/<case>/` folder with `diff.patch` and `expected.json`."""
    diff_path, expected_path = folder / "diff.patch", folder / "expected.json"
    for needed in (diff_path, expected_path):
        if not needed.is_file():
            raise CaseError(f"{folder}: {needed.name} is missing; a scenario case holds diff.patch and expected.json")
    try:
        data = json.loads(expected_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CaseError(f"{expected_path}: not JSON: {exc.msg} at line {exc.lineno}") from exc
    try:
        expected = ScenarioExpectation.model_validate(data)
    except ValidationError as exc:
        raise CaseError(f"{expected_path}: {_first_error(exc)}") from exc
    if folder.parent.name != expected.reviewer:
        raise CaseError(f"{expected_path}: reviewer: {expected.reviewer!r} but the case is in the folder of "
                        f"{folder.parent.name!r}")
    diff = diff_path.read_text(encoding="utf-8")
    if not diff.strip():
        raise CaseError(f"{diff_path}: empty diff")
    return EvalCase(
        id=f"{expected.reviewer}/{folder.name}", reviewer=expected.reviewer,
        request=ReviewRequest(reviewer=expected.reviewer, task=expected.task, diff=diff),
        verdict=expected.verdict, must_find=expected.must_find, must_not_find_paths=expected.must_not_find_paths,
        rationale=expected.rationale, needs_context=expected.needs_context,
        context_files=expected.context_files, source=str(folder),
    )


def load_scenarios(root: Path) -> list[EvalCase]:
    """Every `<root>/<reviewer>/<case>/expected.json` case, sorted by id."""
    folders = sorted(p.parent for p in root.glob("*/*/expected.json"))
    return [load_scenario_case(f) for f in folders]


def load_cases(path: Path, reviewers: list[str] | None = None) -> list[EvalCase]:
    """Cases from any accepted layout (see the module docstring), filtered to `reviewers` when given."""
    if path.is_file():
        if path.suffix != ".jsonl":
            raise CaseError(f"{path}: a case file must be an eval.jsonl from `calora data build`")
        cases = load_jsonl_cases(path)
    elif path.is_dir():
        if (path / "expected.json").is_file():
            cases = [load_scenario_case(path)]
        else:
            cases = [c for f in sorted(path.glob("*/eval.jsonl")) for c in load_jsonl_cases(f)]
            cases += load_scenarios(path)
    else:
        raise CaseError(f"{path}: no such file or folder of eval cases")
    if reviewers:
        unknown = sorted(set(reviewers) - {c.reviewer for c in cases})
        if unknown:
            raise CaseError(f"{path}: no cases for reviewer(s) {', '.join(unknown)}; "
                            f"present: {', '.join(sorted({c.reviewer for c in cases})) or 'none'}")
        cases = [c for c in cases if c.reviewer in reviewers]
    if not cases:
        raise CaseError(f"{path}: holds no eval cases (expected <reviewer>/eval.jsonl or "
                        "<reviewer>/<case>/expected.json + diff.patch)")
    ids = [c.id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise CaseError(f"{path}: duplicate case ids {', '.join(dupes)}")
    return cases
