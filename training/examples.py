"""Hand-curated review examples: one YAML file each, validated before anything trains on them.

An example is a `ReviewRequest` (task, diff, context, check output) plus the `ReviewerOutput` a good
reviewer gives. Validation is strict and names the file and field: a dataset that teaches a reviewer
to point at lines the diff does not show would teach it to comment on the wrong lines. Where a finding
may point is `reviewers.anchoring`'s rule, the one the prompt states and publishing applies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reviewers.anchoring import DiffAnchors
from reviewers.contract import ContextSnippet, ReviewerOutput, ReviewRequest
from reviewers.routing import REVIEWER_NAMES
from reviewers.unified_diff import ParsedDiff, parse_unified_diff


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


def parse_example_diff(diff: str) -> ParsedDiff:
    """The example's diff, parsed; raises `ExampleError` when any part of it does not parse."""
    parsed = parse_unified_diff(diff)
    broken = next((f for f in parsed.files if f.error is not None), None)
    if broken is not None or parsed.problems:
        why = f"{broken.path}: {broken.error}" if broken is not None else parsed.problems[0]
        raise ExampleError(f"diff: does not parse as a unified diff: {why}")
    if not parsed.files:
        raise ExampleError("diff: holds no file changes")
    return parsed


def added_lines(diff: str | ParsedDiff) -> dict[str, set[int]]:
    """New-file line numbers added per path; raises `ExampleError` when the diff does not parse."""
    parsed = parse_example_diff(diff) if isinstance(diff, str) else diff
    return {
        f.path: {n for a, b in (run for h in f.hunks for run in h.added_runs()) for n in range(a, b + 1)}
        for f in parsed.files
    }


def validate_example(example: CuratedExample) -> ParsedDiff:
    """Raise `ExampleError` naming the field when the example is inconsistent; else its parsed diff."""
    if example.reviewer not in REVIEWER_NAMES:
        raise ExampleError(f"reviewer: unknown reviewer {example.reviewer!r}; known: {', '.join(REVIEWER_NAMES)}")
    parsed = parse_example_diff(example.diff)
    anchors = DiffAnchors.of(parsed)
    for i, finding in enumerate(example.expected.findings):
        why = anchors.why_not(finding.path, finding.line, finding.end_line)
        if why is not None:
            field = "path" if finding.path not in anchors.spans else "line"
            files = f" ({', '.join(parsed.paths())})" if field == "path" else ""
            raise ExampleError(f"expected.findings.{i}.{field}: {why}{files}")
    if example.expected.verdict.value == "approve" and any(
        f.severity.value in ("blocker", "major") for f in example.expected.findings
    ):
        raise ExampleError("expected.verdict: approve with a blocker or major finding")
    if example.expected.verdict.value == "block" and not any(
        f.severity.value == "blocker" for f in example.expected.findings
    ):
        raise ExampleError("expected.verdict: block without any blocker finding")
    return parsed


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


class _Dumper(yaml.SafeDumper):
    def analyze_scalar(self, scalar: str) -> yaml.emitter.ScalarAnalysis:
        """Allow a literal block for multi-line text whose lines end in spaces (a diff's blank context
        line is one space): PyYAML would quote the whole string, which makes a diff unreadable."""
        analysis = super().analyze_scalar(scalar)
        if "\n" in scalar and all(c.isprintable() or c in "\n\t" for c in scalar):
            analysis.allow_block = True
        return analysis


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(data: dict[str, Any]) -> str:
    """YAML with literal blocks for multi-line strings (diffs stay readable as diffs); where a block
    would not read back the same, PyYAML's own quoting."""
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
    if yaml.safe_load(text) != data:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
    return text


def dump_example(example: CuratedExample) -> str:
    """An example in the curated file layout; `load_example` reads it back unchanged."""
    data = example.model_dump(mode="json", exclude_none=True)
    data["expected"] = example.expected.model_dump(mode="json", exclude_none=True)
    return dump_yaml(data)
