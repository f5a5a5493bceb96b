"""Real analyzer output in the curated examples: `calora data evidence`.

A reviewer is served with the analyzers' evidence in its prompt (`ReviewRequest.check_output`), so it must
be trained with the same text from the same tools. This runs the analyzers on each example's diff exactly
as `calora review --diff` does (bare diff: new files whole, modified files as fragments) and writes the
evidence text into the example's `check_output`, in the YAML file itself, where a person reviews it and
git shows it. Examples that already carry `check_output` are left alone unless `--refresh`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from reviewers.checks import inputs_from_diff, run_checks
from training.examples import dump_yaml, parse_example_diff

EVIDENCE_TAG = "evidence"
"""Tag of an example whose `check_output` holds real analyzer output written by this command."""


@dataclass
class EvidenceReport:
    written: list[str] = field(default_factory=list)
    with_findings: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def evidence_text(diff: str) -> tuple[str, int]:
    """The evidence a reviewer of this diff is shown, and how many findings it lists."""
    parsed = parse_example_diff(diff)
    inputs = inputs_from_diff(parsed.files)
    if not inputs:
        return "", 0
    report = run_checks(inputs)
    return report.evidence_for([item.path for item in inputs]), len(report.findings)


def add_evidence(
    files: list[Path], *, refresh: bool = False, progress: Callable[[str], None] | None = None
) -> EvidenceReport:
    """Write analyzer evidence into each example file's `check_output` (and tag it `evidence`)."""
    report = EvidenceReport()
    for n, path in enumerate(files, 1):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            if data.get("check_output") and not refresh:
                report.unchanged.append(str(path))
                continue
            text, found = evidence_text(data["diff"])
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:  # reported by name, others go on
            report.errors.append(f"{path}: {exc}")
            continue
        data["check_output"] = text
        tags = [t for t in data.get("tags", []) if t != EVIDENCE_TAG]
        data["tags"] = [*tags, EVIDENCE_TAG] if text else tags
        order = ["reviewer", "task", "tags", "diff", "context", "check_output", "expected", "derived_from"]
        data = {k: data[k] for k in order if k in data} | {k: v for k, v in data.items() if k not in order}
        path.write_text(dump_yaml(data), encoding="utf-8")
        report.written.append(str(path))
        if found:
            report.with_findings.append(str(path))
        if progress:
            progress(f"[{n}/{len(files)}] {path.name}: {found} finding(s)")
    return report
