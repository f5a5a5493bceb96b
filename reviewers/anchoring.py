"""Where a finding may be placed: the one anchoring rule.

A finding anchors on new-file lines `line..end_line` of a file when the whole range lies inside the
lines one hunk shows on the new side (added or context lines). That is the rule GitHub applies to a
RIGHT-side review comment (both ends in one hunk of the diff), the rule a slice records for its
reviewer, the rule a curated training example is held to, and the sentence the prompt tells reviewers
(`ANCHOR_RULE`). Publishing, slicing, the pipeline and training validation all ask `can_anchor`.

A reviewer's finding that does not anchor in what that reviewer was shown (a file outside its slice,
line 999999) is dropped before synthesis by `drop_unanchored`: it neither blocks nor counts in the
decision, and a note names the reviewer and the finding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Self, TypeVar

from reviewers.contract import Finding, ReviewerOutput
from reviewers.unified_diff import ParsedDiff

# What reviewers are told (reviewers/prompt.py); it states `can_anchor` in words.
ANCHOR_RULE = "Line numbers are new-file line numbers of added or context lines."

Span = tuple[int, int]  # inclusive new-file line numbers shown by one hunk (or by one piece of it)
NOTE_MESSAGE_CHARS = 120


def spans_allow(spans: Iterable[Span], line: int, end_line: int | None = None) -> bool:
    """The rule itself: `line..end_line` lies inside one span of lines shown on the new side."""
    last = end_line if end_line is not None else line
    return line <= last and any(start <= line and last <= end for start, end in spans)


def file_spans(parsed: ParsedDiff) -> dict[str, tuple[Span, ...]]:
    """New-side spans of every hunk, per path. A file whose diff could not be read offers none."""
    return {
        f.path: tuple(span for h in f.hunks if (span := h.new_span()) is not None)
        for f in parsed.files
        if f.error is None
    }


@dataclass(frozen=True, slots=True)
class DiffAnchors:
    """Where findings may anchor in one diff (or in the part of it one reviewer was shown)."""

    spans: Mapping[str, tuple[Span, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, parsed: ParsedDiff) -> DiffAnchors:
        return cls(file_spans(parsed))

    def can_anchor(self, path: str, line: int, end_line: int | None = None) -> bool:
        return spans_allow(self.spans.get(path, ()), line, end_line)

    def why_not(self, path: str, line: int, end_line: int | None = None) -> str | None:
        """None when the finding anchors, else why not, in words for a note."""
        if self.can_anchor(path, line, end_line):
            return None
        if path not in self.spans:
            return f"{path!r} is not a file of the diff"
        where = f"line {line} is" if end_line in (None, line) else f"lines {line}-{end_line} are"
        shown = ", ".join(f"{a}-{b}" for a, b in self.spans[path]) or "none"
        return f"{where} not inside one hunk of the diff (new-file lines it shows of {path}: {shown})"


def anchor_findings(
    reviewer: str, findings: Sequence[Finding], anchors: DiffAnchors
) -> tuple[list[Finding], list[str]]:
    """The findings that anchor, and one note per dropped finding naming the reviewer."""
    kept: list[Finding] = []
    notes: list[str] = []
    for f in findings:
        why = anchors.why_not(f.path, f.line, f.end_line)
        if why is None:
            kept.append(f)
            continue
        span = f"{f.line}" if f.end_line in (None, f.line) else f"{f.line}-{f.end_line}"
        message = " ".join(f.message.split())
        if len(message) > NOTE_MESSAGE_CHARS:
            message = message[: NOTE_MESSAGE_CHARS - 1] + "…"
        notes.append(
            f"{reviewer}: dropped a {f.severity.value} {f.category.value} finding on {f.path}:{span}, "
            f"outside the diff this reviewer was shown ({why}); it does not count in the decision: "
            f"{message}"
        )
    return kept, notes


class ShownSlice(Protocol):
    """What `drop_unanchored` needs of a slice (reviewers.slicing.Slice): who saw what."""

    @property
    def reviewer(self) -> str: ...

    @property
    def index(self) -> int: ...

    def anchors(self) -> DiffAnchors: ...


class Answered(Protocol):
    """What `drop_unanchored` needs of a reviewer's outcome (reviewers.synthesis.SliceOutcome)."""

    @property
    def reviewer(self) -> str: ...

    @property
    def slice_index(self) -> int: ...

    @property
    def output(self) -> ReviewerOutput | None: ...

    def model_copy(self, *, update: Mapping[str, object] | None = None, deep: bool = False) -> Self: ...


Outcome = TypeVar("Outcome", bound=Answered)


def drop_unanchored(
    slices: Sequence[ShownSlice], outcomes: Sequence[Outcome]
) -> tuple[list[Outcome], list[str]]:
    """Each outcome without the findings that do not anchor in the slice its reviewer was shown, and
    one note per dropped finding (for the check run and the console). Failures pass unchanged; the
    same for every backend, since it runs on the parsed answers."""
    shown = {(s.reviewer, s.index): s for s in slices}
    out: list[Outcome] = []
    notes: list[str] = []
    for outcome in outcomes:
        piece = shown.get((outcome.reviewer, outcome.slice_index))
        answer = outcome.output
        if answer is not None:
            anchors = piece.anchors() if piece is not None else DiffAnchors()
            label = f"{outcome.reviewer} (slice {outcome.slice_index})"
            kept, dropped = anchor_findings(label, answer.findings, anchors)
            if dropped:
                notes.extend(dropped)
                outcome = outcome.model_copy(update={"output": answer.model_copy(update={"findings": kept})})
        out.append(outcome)
    return out, notes
