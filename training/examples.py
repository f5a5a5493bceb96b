"""Hand-curated review examples: one YAML file each, validated before anything trains on them.

An example is a `ReviewRequest` (task, diff, context, check output) plus the `ReviewerOutput` a good
reviewer gives. Validation is strict and names the file and field: a dataset that teaches a reviewer
to point at lines the diff does not add would teach it to comment on the wrong lines.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from reviewers.contract import ContextSnippet, ReviewerOutput, ReviewRequest
from reviewers.routing import REVIEWER_NAMES


class CuratedExample(BaseModel):
    """One training/eval example, as written by a person in `datasets/<reviewer>/<id>.yaml`."""

    model_config = ConfigDict(extra="forbid")

    reviewer: str
    task: str
    diff: str
    context: list[ContextSnippet] = Field(default_factory=list)
    check_output: str = ""
    expected: ReviewerOutput
    tags: list[str] = Field(
        default_factory=list,
        description="clean, boundary, multi-finding, injection, missing-check, ... (free-form, for reports)",
    )
    derived_from: str | None = Field(default=None, description="Id of the example this one was derived from.")

    def request(self) -> ReviewRequest:
        return ReviewRequest(
            reviewer=self.reviewer, task=self.task, diff=self.diff, context=self.context,
            check_output=self.check_output,
        )


class ExampleError(ValueError):
    """An example that must not be trained on; the message starts with `file: field:`."""


def added_lines(diff: str) -> dict[str, set[int]]:
    """New-file line numbers added per path; raises `ExampleError` when the diff does not parse."""
    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        raise ExampleError(f"diff: does not parse as a unified diff: {exc}") from exc
    if not len(patch):
        raise ExampleError("diff: holds no file changes")
    out: dict[str, set[int]] = {}
    for patched in patch:
        path = patched.path
        lines = out.setdefault(path, set())
        for hunk in patched:
            for line in hunk:
                if line.is_added and line.target_line_no is not None:
                    lines.add(line.target_line_no)
    return out


def validate_example(example: CuratedExample) -> None:
    """Raise `ExampleError` naming the field when the example is inconsistent."""
    if example.reviewer not in REVIEWER_NAMES:
        raise ExampleError(f"reviewer: unknown reviewer {example.reviewer!r}; known: {', '.join(REVIEWER_NAMES)}")
    added = added_lines(example.diff)
    for i, finding in enumerate(example.expected.findings):
        where = f"expected.findings.{i}"
        if finding.path not in added:
            raise ExampleError(f"{where}.path: {finding.path!r} is not a file of the diff ({', '.join(added)})")
        for line in range(finding.line, finding.last_line + 1):
            if line not in added[finding.path]:
                raise ExampleError(f"{where}.line: line {line} of {finding.path} is not an added line")
    if example.expected.verdict.value == "approve" and any(
        f.severity.value in ("blocker", "major") for f in example.expected.findings
    ):
        raise ExampleError("expected.verdict: approve with a blocker or major finding")
    if example.expected.verdict.value == "block" and not any(
        f.severity.value == "blocker" for f in example.expected.findings
    ):
        raise ExampleError("expected.verdict: block without any blocker finding")


def load_example(path: Path) -> CuratedExample:
    """Read and validate one example file; errors start with the file path."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ExampleError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ExampleError(f"{path}: expected a mapping at the top level")
    try:
        example = CuratedExample.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ExampleError(f"{path}: {field}: {first['msg']}") from exc
    try:
        validate_example(example)
    except ExampleError as exc:
        raise ExampleError(f"{path}: {exc}") from exc
    return example


def load_examples(root: Path) -> dict[Path, CuratedExample]:
    """Every example under `root` (``*.yaml``/``*.yml``/``*.json``), validated; the first error raises."""
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
    return {p: load_example(p) for p in files}


def example_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"
