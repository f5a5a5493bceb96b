"""The per-repository `.calora.yml`, read from the pull request's base branch.

Reading it from the base branch means a pull request cannot switch its own review off. The file is
validated by pydantic; an invalid file raises `RepoConfigError` whose message quotes the problem so the
check run can show it to the maintainer.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from reviewers.contract import SEVERITY_RANK, Category, Severity
from reviewers.routing import REVIEWER_NAMES, matches_any

CONFIG_PATH = ".calora.yml"


class RepoConfigError(ValueError):
    """`.calora.yml` cannot be used; the message says where and why, in words a maintainer can act on."""


class PathInstructions(BaseModel):
    """Extra instructions for reviewers looking at files that match `path` (a glob)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="Glob, e.g. 'migrations/**' or '*.sql'.")
    instructions: str = Field(min_length=1)


class RepoConfig(BaseModel):
    """What a repository may decide about its own reviews. Every field has a quiet default."""

    model_config = ConfigDict(extra="forbid")

    reviewers: dict[str, bool] = Field(
        default_factory=dict, description="Switch reviewers on or off by name; unnamed ones stay on."
    )
    include: list[str] = Field(default_factory=list, description="Only review files matching these globs.")
    exclude: list[str] = Field(default_factory=list, description="Never review files matching these globs.")
    max_inline_comments: int = Field(default=25, ge=0, le=100)
    min_inline_severity: Severity = Field(
        default=Severity.minor, description="Findings below this go to the summary only."
    )
    inline_style: bool = Field(default=False, description="Post style and naming findings inline too.")
    request_changes_on_blockers: bool = False
    review_drafts: bool = Field(
        default=False, validation_alias=AliasChoices("review_drafts", "drafts"),
        description="Review draft pull requests too (`drafts:` is accepted as well).",
    )
    incremental: bool = Field(
        default=True, description="On a push, review only what changed since the last reviewed commit."
    )
    instructions: list[PathInstructions] = Field(default_factory=list)
    allow_partial: bool = Field(
        default=False,
        description="Accept a review that left files out over a cap (listed in the check run); otherwise such "
        "a review concludes action_required, never success.",
    )

    @field_validator("reviewers")
    @classmethod
    def _known_reviewers(cls, value: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(value) - set(REVIEWER_NAMES))
        if unknown:
            raise ValueError(f"unknown reviewer(s) {', '.join(unknown)}; known: {', '.join(REVIEWER_NAMES)}")
        return value

    def enabled_reviewers(self, requested: list[str] | None = None) -> tuple[str, ...]:
        """Reviewers to run: those switched on, narrowed to `requested` (a `/review sql` command)."""
        on = [name for name in REVIEWER_NAMES if self.reviewers.get(name, True)]
        if requested:
            on = [name for name in on if name in requested]
        return tuple(on)

    def reviews_path(self, path: str) -> bool:
        if self.include and not matches_any(path, self.include):
            return False
        return not matches_any(path, self.exclude)

    def instructions_for(self, path: str) -> str:
        """The extra instructions for one file (the pipeline joins them per slice)."""
        chosen = [item.instructions.strip() for item in self.instructions if matches_any(path, [item.path])]
        return "\n".join(dict.fromkeys(chosen))

    def goes_inline(self, severity: Severity, category: Category) -> bool:
        """Whether a finding may become an inline comment at all (before the budget and the diff map)."""
        if SEVERITY_RANK[severity] > SEVERITY_RANK[self.min_inline_severity]:
            return False
        return self.inline_style or category is not Category.style


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"{where}: {error['msg']}")
    more = len(exc.errors()) - 5
    if more > 0:
        lines.append(f"... and {more} more error(s)")
    return "; ".join(lines)


def parse_repo_config(text: str | None) -> RepoConfig:
    """Parse `.calora.yml` text; None or an empty file means all defaults. Raises `RepoConfigError`."""
    if text is None or not text.strip():
        return RepoConfig()
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RepoConfigError(f"{CONFIG_PATH} is not valid YAML{where}: {problem}") from None
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        raise RepoConfigError(f"{CONFIG_PATH} must be a mapping of settings, not a {type(data).__name__}")
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        raise RepoConfigError(f"{CONFIG_PATH} is invalid: {_describe(exc)}") from None
