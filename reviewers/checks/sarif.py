"""Findings from any SARIF 2.1.0 producer a team already runs (CodeQL, semgrep, …), read as diagnostics.

Pure: SARIF text in, `Diagnostic`s out. They then go through the same changed-line filter, anchoring and
merging as our own analyzers. SARIF's `level` and the rule's tags decide severity and category, since
no rules table can know every producer's rules.
"""

from __future__ import annotations

import json
from urllib.parse import unquote, urlparse

from reviewers.checks.model import Diagnostic
from reviewers.contract import Category, Severity

LEVEL_SEVERITY = {"error": Severity.major, "warning": Severity.minor, "note": Severity.nit, "none": Severity.nit}
"""SARIF's result level as our severity; a security-tagged error with high security-severity blocks."""


class SarifError(ValueError):
    """A file that is not SARIF 2.1.0 as we can read it; the message says which part."""


def _uri_to_path(uri: str, roots: list[str]) -> str:
    parsed = urlparse(uri)
    path = unquote(parsed.path if parsed.scheme in ("file", "") else uri)
    for root in sorted(roots, key=len, reverse=True):
        if root and path.startswith(root):
            path = path[len(root):]
            break
    return path.lstrip("/").removeprefix("./")


def _rule_meta(run: dict) -> dict[str, dict]:
    rules = run.get("tool", {}).get("driver", {}).get("rules", []) or []
    return {rule.get("id", ""): rule for rule in rules if isinstance(rule, dict)}


def _classify(level: str, rule: dict, result: dict) -> tuple[Category, Severity]:
    props = {**(rule.get("properties") or {}), **(result.get("properties") or {})}
    tags = {str(t).lower() for t in props.get("tags", []) or []}
    category = Category.security if "security" in tags or "security-severity" in props else Category.correctness
    severity = LEVEL_SEVERITY.get(level, Severity.minor)
    try:
        score = float(props.get("security-severity", 0))
    except (TypeError, ValueError):
        score = 0.0
    if score >= 9.0 or (score >= 7.0 and severity is Severity.major):
        severity = Severity.blocker if score >= 9.0 else Severity.major
    return category, severity


def parse_sarif(text: str, source: str = "sarif") -> list[Diagnostic]:
    """Every result with a physical location; `source` names the file in error messages."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SarifError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise SarifError(f"{source}: no 'runs' list (is this SARIF 2.1.0?)")
    out: list[Diagnostic] = []
    for run in data["runs"]:
        if not isinstance(run, dict):
            raise SarifError(f"{source}: a run is not an object")
        driver = str(run.get("tool", {}).get("driver", {}).get("name") or "sarif").lower().replace(" ", "-")
        rules = _rule_meta(run)
        roots = [str(base.get("uri", "")) for base in (run.get("originalUriBaseIds") or {}).values()
                 if isinstance(base, dict)]
        roots = [urlparse(r).path if r.startswith("file:") else r for r in roots]
        for result in run.get("results", []) or []:
            try:
                rule_id = str(result.get("ruleId") or result.get("rule", {}).get("id") or "result")
                location = result["locations"][0]["physicalLocation"]
                path = _uri_to_path(location["artifactLocation"]["uri"], roots)
                region = location.get("region", {})
                line = int(region.get("startLine", 1))
                end = int(region.get("endLine", line))
                message = result["message"].get("text") or result["message"].get("markdown") or rule_id
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                raise SarifError(f"{source}: a {driver} result has no readable location or message") from exc
            rule = rules.get(rule_id, {})
            category, severity = _classify(str(result.get("level") or rule.get("defaultConfiguration", {}).get(
                "level", "warning")), rule, result)
            out.append(Diagnostic(tool=driver, path=path, line=max(line, 1), end_line=max(end, line, 1),
                                  code=rule_id, message=str(message), doc_url=rule.get("helpUri"),
                                  category=category, severity=severity))
    return out
