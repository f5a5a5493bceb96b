"""The severity map of every analyzer, read from `rules.yml` (data, one reviewable file)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from reviewers.contract import Category, Severity

RULES_FILE = Path(__file__).with_name("rules.yml")

Rule = tuple[Category, Severity]


class ToolRules(BaseModel):
    """One tool's table: prefix -> (category, severity), rules never reported, the doc URL pattern."""

    rules: dict[str, tuple[Category, Severity]]
    ignore: frozenset[str] = Field(default_factory=frozenset)
    fragment_ignore: frozenset[str] = Field(
        default_factory=frozenset, description="Rules that are artefacts of linting a fragment of a file."
    )
    doc: str = ""

    def classify(self, code: str) -> Rule:
        """The category and severity of a rule code: the entry with the longest matching prefix."""
        best = max((prefix for prefix in self.rules if code.startswith(prefix)), key=len)
        return self.rules[best]

    def ignored(self, code: str, *, fragment: bool) -> bool:
        return code in self.ignore or (fragment and code in self.fragment_ignore)

    def doc_url(self, code: str) -> str | None:
        return self.doc.replace("{code}", code) if self.doc else None


@cache
def tool_rules(tool: str) -> ToolRules:
    """The rules of one tool; a tool missing from the file gets a neutral table (minor maintainability)."""
    tables = _load()
    if tool not in tables:
        return ToolRules(rules={"": (Category.maintainability, Severity.minor)})
    return tables[tool]


@cache
def _load() -> dict[str, ToolRules]:
    raw = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return {name: ToolRules.model_validate(table) for name, table in raw.items()}
