"""calora's own pattern rules (`patterns.yml`), run in-process on the texts the other analyzers get (pure).

The wheel analyzers miss some well-known defects: their rules do not cover them (SQL built in a TypeScript
template literal, `jwt.decode` trusted as a check), or they need a whole file while a diff shows a fragment
(checkov on a modified manifest). Each rule here states one idea that a standard or another linter states
(`see` in the YAML), and reports as the tool `patterns`: findings read `checks:patterns/<rule>`, so a user
can tell them from ruff's or checkov's. Nothing here runs the code: regular expressions and `ast.parse`.

The texts are a pull request's, so a rule's expression may meet input built to make it backtrack for ever.
Each rule gets `RULE_BUDGET_S` a file (the `regex` engine's timeout, which Python's `re` lacks); a rule that
runs out is given up on that file and logged, and the others still report.
"""

from __future__ import annotations

import ast
import bisect
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Literal

import regex
import yaml
from pydantic import BaseModel, Field, model_validator

from reviewers.checks.fragments import WHOLE, ToolInput
from reviewers.checks.model import Diagnostic

PATTERNS_FILE = Path(__file__).with_name("patterns.yml")
TOOL = "patterns"
MAX_LINE_CHARS = 4000
"""Longer lines (minified code, data) are not read: no rule is about them, and they would only cost time."""
RULE_BUDGET_S = 1.0
"""How long one rule may read one file: ordinary files take milliseconds."""

log = logging.getLogger(__name__)


class PatternRule(BaseModel):
    """One rule of patterns.yml (see the file's header for what each field means)."""

    id: str
    files: str = Field(description="Regular expression on the file's path.")
    match: str | None = None
    check: str | None = Field(default=None, description="Name of a coded check in CHECKS.")
    scope: Literal["line", "text"] = "line"
    unless_line: str | None = None
    unless_text: str | None = None
    whole_file_only: bool = False
    message: str
    see: str

    @model_validator(mode="after")
    def _one_way_to_match(self) -> PatternRule:
        if (self.match is None) == (self.check is None):
            raise ValueError(f"rule {self.id}: give exactly one of match and check")
        if self.check is not None and self.check not in CHECKS:
            raise ValueError(f"rule {self.id}: no coded check named {self.check!r}")
        for text in (self.files, self.match, self.unless_line, self.unless_text):
            if text is not None:
                regex.compile(text)
        return self

    def applies(self, item: ToolInput) -> bool:
        return bool(_compiled(self.files).search(item.path)) and (item.how == WHOLE or not self.whole_file_only)


@cache
def _compiled(pattern: str, flags: int = 0) -> regex.Pattern[str]:
    return regex.compile(pattern, flags)


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


@cache
def pattern_rules() -> tuple[PatternRule, ...]:
    raw = yaml.safe_load(PATTERNS_FILE.read_text(encoding="utf-8"))
    rules = tuple(PatternRule.model_validate(entry) for entry in raw["rules"])
    ids = [rule.id for rule in rules]
    if len(ids) != len(set(ids)):
        raise ValueError("patterns.yml: rule ids must be unique")
    return rules


def applies_to(item: ToolInput) -> bool:
    """Whether any rule reads this file (the tool registry's `applies`)."""
    return any(rule.applies(item) for rule in pattern_rules())


def scan(path: str, item: ToolInput) -> list[Diagnostic]:
    """Every rule's hits in one file; `path` is the name the diagnostics carry."""
    out: list[Diagnostic] = []
    for rule in pattern_rules():
        if not rule.applies(item):
            continue
        deadline = time.monotonic() + RULE_BUDGET_S
        try:
            if rule.unless_text and _compiled(rule.unless_text).search(item.text, timeout=_left(deadline)):
                continue
            hits = CHECKS[rule.check](item) if rule.check else list(_matches(rule, item.text, deadline))
        except TimeoutError:
            log.warning("pattern rule %s gave up on %s after %.1f s (input that makes it backtrack)",
                        rule.id, path, RULE_BUDGET_S)
            continue
        out.extend(Diagnostic(tool=TOOL, path=path, line=first, end_line=last, code=rule.id,
                              message=rule.message, doc_url=rule.see.split(" ")[0])
                   for first, last in hits)
    return out


def _matches(rule: PatternRule, text: str, deadline: float) -> Iterator[tuple[int, int]]:
    """The rule's hits; TimeoutError once `deadline` (time.monotonic) has passed."""
    assert rule.match is not None
    unless = _compiled(rule.unless_line) if rule.unless_line else None
    if rule.scope == "line":
        pattern = _compiled(rule.match)
        for number, line in enumerate(text.splitlines(), start=1):
            if (len(line) <= MAX_LINE_CHARS and pattern.search(line, timeout=_left(deadline))
                    and not (unless and unless.search(line, timeout=_left(deadline)))):
                yield number, number
        return
    readable = _without_long_lines(text)
    starts = _line_starts(readable)
    for found in _compiled(rule.match, regex.MULTILINE).finditer(readable, timeout=_left(deadline)):
        if unless and unless.search(found.group(0), timeout=_left(deadline)):
            continue
        start, end = _reported_span(found)
        yield _line_of(starts, start), _line_of(starts, max(end - 1, start))


def _reported_span(found: regex.Match[str]) -> tuple[int, int]:
    """A match may need lines around the defect (the block it sits in): a group named `at` (or `at_<x>`, one per
    alternative, since a name cannot repeat) marks the defect, and only its lines are reported."""
    for name in found.re.groupindex:
        if (name == "at" or name.startswith("at_")) and found.group(name) is not None:
            return found.span(name)
    return found.span()


def _line_starts(text: str) -> list[int]:
    return [0, *(found.end() for found in re.finditer("\n", text))]


def _line_of(starts: list[int], offset: int) -> int:
    return bisect.bisect_right(starts, offset)


def _without_long_lines(text: str) -> str:
    """The text with over-long lines blanked: the line numbers stay, the offsets change (count lines on it)."""
    lines = text.split("\n")
    return "\n".join("" if len(line) > MAX_LINE_CHARS else line for line in lines)


# --- coded checks ---------------------------------------------------------------------------------------------

_ASSERTING_CALL = re.compile(r"assert|raises|warns|expect|fail|verify|check|should|snapshot", re.IGNORECASE)


def _called_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _asserts(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call) and _ASSERTING_CALL.search(_called_name(node)):
            return True
        if isinstance(node, ast.Raise):
            return True  # `pytest.fail` spelled by hand, or a custom failure
    return False


def tests_without_assertions(item: ToolInput) -> list[tuple[int, int]]:
    """`test_*` functions the change adds whole that contain no assertion of any kind.

    Only functions whose every line was added are judged: a test the diff shows in part may assert in lines
    it does not show.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(item.text)
    except (SyntaxError, ValueError):
        return []
    hits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.name.startswith("test"):
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        last = node.end_lineno or node.lineno
        if set(range(first, last + 1)) <= item.added and not _asserts(node):
            hits.append((node.lineno, node.lineno))
    return hits


_FK_COLUMN = re.compile(
    r'^\s*(?:ALTER\s+TABLE\s+[^\n;]{1,200}?\s+)?(?:ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?)?"?(\w{1,63})"?\s+'
    r'\w[\w ()]{0,60}?\bREFERENCES\b', re.IGNORECASE | re.MULTILINE)
_FK_CONSTRAINT = re.compile(r'FOREIGN\s+KEY\s*\(\s*"?(\w{1,63})"?\s*\)', re.IGNORECASE)
_SQL_KEYWORDS = frozenset({"add", "column", "constraint", "foreign", "key", "references", "table", "alter"})


def _column_defined_here(name: str, text: str) -> bool:
    """Whether the migration creates the column (a column definition line, or ADD COLUMN).

    A constraint added to an existing column is not judged: its index may come from any earlier migration.
    """
    definition = rf'^\s*(?:ALTER\s+TABLE\s+[^\n;]{{1,200}}?\s+)?(?:ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?)?' \
                 rf'"?{re.escape(name)}"?\s+(?!REFERENCES\b)[A-Za-z]'
    return bool(re.search(definition, text, re.IGNORECASE | re.MULTILINE))


def foreign_keys_without_index(item: ToolInput) -> list[tuple[int, int]]:
    """Foreign-key columns a whole migration creates with no index led by that column in the same file."""
    readable = _without_long_lines(item.text)
    starts = _line_starts(readable)
    columns: list[tuple[str, int]] = []
    for expression in (_FK_COLUMN, _FK_CONSTRAINT):
        for found in expression.finditer(readable):
            name = found.group(1)
            if name.lower() not in _SQL_KEYWORDS and _column_defined_here(name, readable):
                columns.append((name, _line_of(starts, found.start(1))))
    hits = []
    for name, line in columns:
        leading = re.compile(
            rf'(?:INDEX[^;]{{0,300}}?\(\s*"?{re.escape(name)}"?\s*[,)]|PRIMARY\s+KEY\s*\(\s*"?{re.escape(name)}"?'
            rf'|UNIQUE\s*\(\s*"?{re.escape(name)}"?|"?{re.escape(name)}"?\s[^,\n]{{0,200}}\b(?:PRIMARY\s+KEY|UNIQUE)\b)',
            re.IGNORECASE)
        if not leading.search(readable):
            hits.append((line, line))
    return sorted(set(hits))


CHECKS: dict[str, Callable[[ToolInput], list[tuple[int, int]]]] = {
    "test-without-assertion": tests_without_assertions,
    "foreign-key-without-index": foreign_keys_without_index,
}
