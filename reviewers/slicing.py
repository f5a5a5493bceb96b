"""Bounded per-reviewer slices of a diff.

A reviewer sees at most `budget_tokens` of diff at once. Whole hunks are grouped per reviewer; a hunk
over the budget is split at line boundaries with a little overlap and marked. Every slice records
which new-file lines a comment may be anchored on. Whatever is not reviewed is listed with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

TokenCounter = Callable[[str], int]


def approx_token_count(text: str) -> int:
    """A tokenizer-free estimate (about 3.5 characters a token for code), used when no tokenizer is given."""
    return (len(text) * 2 + 6) // 7


class SliceLimits(BaseModel):
    """Explicit caps: anything beyond them is listed as not reviewed, never dropped silently."""

    budget_tokens: int = Field(default=3000, ge=64)
    overlap_lines: int = Field(default=3, ge=0)
    max_files: int = Field(default=300, ge=1)
    max_slices_per_reviewer: int = Field(default=20, ge=1)
    max_diff_bytes: int = Field(default=20 * 1024 * 1024, ge=1)


class LineRange(BaseModel):
    """An inclusive range of new-file line numbers."""

    start: int
    end: int


class FileSlice(BaseModel):
    """The part of one file's diff inside a slice."""

    path: str
    old_path: str | None = None
    status: Literal["added", "modified", "deleted", "renamed"] = "modified"
    ranges: list[LineRange] = Field(default_factory=list, description="New-file lines shown in this slice.")
    commentable: list[LineRange] = Field(
        default_factory=list, description="New-file lines (added or context) a comment may anchor on."
    )
    added: list[LineRange] = Field(default_factory=list, description="New-file lines added by the change.")

    def can_comment(self, line: int, end_line: int | None = None) -> bool:
        last = end_line if end_line is not None else line
        return any(r.start <= line and last <= r.end for r in self.commentable)


class Slice(BaseModel):
    """One bounded piece of diff for one reviewer."""

    reviewer: str
    index: int = Field(description="Position among this reviewer's slices, from 0.")
    diff: str = Field(description="Unified diff text of the slice (file headers and hunks).")
    files: list[FileSlice]
    tokens: int
    split_hunk: bool = Field(default=False, description="Holds part of a hunk that was over the budget.")
    over_budget: bool = Field(default=False, description="A single line longer than the budget.")

    def file(self, path: str) -> FileSlice | None:
        return next((f for f in self.files if f.path == path), None)


class NotReviewed(BaseModel):
    """A file (or part of one) that no reviewer saw, and why."""

    path: str
    reviewer: str | None = None
    reason: str


class SlicePlan(BaseModel):
    """All slices for a diff plus everything that was left out."""

    slices: list[Slice] = Field(default_factory=list)
    not_reviewed: list[NotReviewed] = Field(default_factory=list)

    def for_reviewer(self, reviewer: str) -> list[Slice]:
        return [s for s in self.slices if s.reviewer == reviewer]
