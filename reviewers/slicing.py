"""Bounded per-reviewer slices of a diff.

A reviewer sees at most `budget_tokens` of diff at once. Whole hunks are grouped per reviewer; a hunk
over the budget is split at line boundaries with a little overlap and marked. Every slice records
which new-file lines a comment may be anchored on. Whatever is not reviewed is listed with a reason.

`slice_diff` is the entry point (pure: text in, `SlicePlan` out); `render_plan` is its JSON view for
`calora review --dry-run`. Parsing lives in `reviewers.unified_diff`, routing in `reviewers.routing`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain
from typing import Any, Literal, overload

from pydantic import BaseModel, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

from reviewers.anchoring import DiffAnchors, Span, spans_allow
from reviewers.routing import REVIEWER_NAMES, RouteDecision, is_test_file, route_file
from reviewers.unified_diff import (
    DEV_NULL,
    DiffParseError,
    FileDiff,
    Hunk,
    ParsedDiff,
    bound_pairs,
    decode_diff,
    format_hunk_header,
    git_header_names,
    parse_unified_diff,
    unquote_git_path,
)

TokenCounter = Callable[[str], int]
Router = Callable[[str, tuple[str, ...] | None], RouteDecision]  # the shape of routing.route_file


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
    context_tokens: int = Field(
        default=800, ge=0,
        description="Repository context a reviewer may get beyond its diff; a slice's unused diff budget is "
        "added, so diff + context never exceeds budget_tokens + context_tokens.",
    )

    def context_budget(self, slice_tokens: int) -> int:
        """Tokens of context for a slice of `slice_tokens` tokens of diff."""
        return max(0, self.budget_tokens + self.context_tokens - slice_tokens)


DEFAULT_LIMITS = SliceLimits()


class LineRange(BaseModel):
    """An inclusive range of new-file line numbers."""

    start: int
    end: int


class LineSpans(Sequence[Span]):
    """Inclusive new-file line ranges as (start, end) pairs, sorted and apart; dumped and read as
    `LineRange` data (`[{"start": 1, "end": 3}]`).

    Kept flat in one tuple of ints, `bounds` = (start, end, start, end, ...); a pair is made when read.
    Why: a 20 MB diff's plan holds ~120k ranges, and as models (or even as pairs) they are that many
    objects that the garbage collector counts and walks: it cost more than the rest of slicing
    (bench/slicing_bench.py). A tuple of ints is one object the collector does not track at all.
    """

    __slots__ = ("bounds",)

    def __init__(self, bounds: tuple[int, ...] = ()) -> None:
        self.bounds = bounds

    @classmethod
    def of(cls, spans: Iterable[Span]) -> LineSpans:
        return cls(tuple(chain.from_iterable(spans)))

    def __len__(self) -> int:
        return len(self.bounds) // 2

    @overload
    def __getitem__(self, index: int) -> Span: ...

    @overload
    def __getitem__(self, index: slice) -> LineSpans: ...

    def __getitem__(self, index: int | slice) -> Span | LineSpans:
        if isinstance(index, slice):
            return LineSpans.of(tuple(self)[index])
        at = 2 * range(len(self))[index]  # negative indices and IndexError as a list gives them
        return self.bounds[at], self.bounds[at + 1]

    def __iter__(self) -> Iterator[Span]:
        return bound_pairs(self.bounds)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LineSpans):
            return self.bounds == other.bounds
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list of pairs, which is not hashable either

    def __repr__(self) -> str:
        return f"LineSpans({list(self)!r})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def from_data(ranges: list[LineRange | Span]) -> LineSpans:
            return cls.of((r.start, r.end) if isinstance(r, LineRange) else r for r in ranges)

        from_ranges = core_schema.no_info_after_validator_function(from_data, handler.generate_schema(list[LineRange]))
        from_pairs = core_schema.no_info_after_validator_function(
            from_data, handler.generate_schema(list[LineRange | tuple[int, int]])
        )
        return core_schema.json_or_python_schema(
            json_schema=from_ranges,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_pairs]),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda spans: [{"start": start, "end": end} for start, end in spans],
                return_schema=core_schema.list_schema(core_schema.typed_dict_schema({  # LineRange's data
                    "start": core_schema.typed_dict_field(core_schema.int_schema()),
                    "end": core_schema.typed_dict_field(core_schema.int_schema()),
                })),
            ),
        )


class FileSlice(BaseModel):
    """The part of one file's diff inside a slice."""

    path: str
    old_path: str | None = None
    status: Literal["added", "modified", "deleted", "renamed"] = "modified"
    ranges: LineSpans = Field(default_factory=LineSpans, description="New-file lines shown in this slice.")
    commentable: LineSpans = Field(
        default_factory=LineSpans,
        description="New-file lines (added or context) a comment may anchor on: one range per hunk shown.",
    )
    added: LineSpans = Field(default_factory=LineSpans, description="New-file lines added by the change.")

    def can_comment(self, line: int, end_line: int | None = None) -> bool:
        """`reviewers.anchoring`'s rule over the hunks this slice shows of the file."""
        return spans_allow(self.commentable, line, end_line)


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

    def anchors(self) -> DiffAnchors:
        """Where this slice's reviewer may anchor a finding (what it was shown)."""
        return DiffAnchors({f.path: tuple(f.commentable) for f in self.files})


NotReviewedKind = Literal["skipped", "over_cap", "unreadable"]


class NotReviewed(BaseModel):
    """A file (or part of one) that no reviewer saw, and why."""

    path: str
    reviewer: str | None = None
    reason: str
    kind: NotReviewedKind = Field(
        default="skipped",
        description="skipped: by a rule the user can see (lock, vendored, generated, binary, no reviewer, "
        "excluded); over_cap: left out by max_files, max_diff_bytes or max_slices_per_reviewer; unreadable: "
        "its diff could not be parsed. Only `skipped` leaves a review complete.",
    )
    lines: LineSpans = Field(
        default_factory=LineSpans,
        description="Added new-file lines this reviewer did not see, when a slice cap cut the file.",
    )


class SlicePlan(BaseModel):
    """All slices for a diff plus everything that was left out."""

    slices: list[Slice] = Field(default_factory=list)
    not_reviewed: list[NotReviewed] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list,
        description="Remarks about the input: bytes replaced, caps hit, unknown reviewers.",
    )

    def for_reviewer(self, reviewer: str) -> list[Slice]:
        return [s for s in self.slices if s.reviewer == reviewer]


# A unit is the smallest thing packed into a slice: a whole hunk, or one piece of a hunk over the budget:
# (text, tokens, new-file lines shown (`_NOTHING_SHOWN` for a pure deletion), added lines it owns as flat
# bounds (overlap lines of a split are not owned), which hunk of its file it shows, split, over_budget).
_Unit = tuple[str, int, Span, tuple[int, ...], int, bool, bool]
_NOTHING_SHOWN = (0, -1)  # end < start: no new-file line
# A file's units as columns: the first four fields of each, then (hunk, split, over_budget) of each unit,
# or None when every unit is a whole hunk within the budget.
_Units = tuple[
    tuple[str, ...],
    tuple[int, ...],
    Sequence[Span],
    Sequence[tuple[int, ...]],
    tuple[tuple[int, bool, bool], ...] | None,
]


@dataclass(slots=True)
class _ReviewFile:
    """A routed file ready to pack: its slice header and its units, shared by all its reviewers.

    The units are kept as columns (one tuple per field, `k`-th unit at index `k`), not one object each,
    and their line numbers as flat ints, all units' in one tuple: tuples of numbers and strings are not
    tracked by the garbage collector, but each one kept counts towards its next collection, and a 20 MB
    diff has ~18k units (bench/slicing_bench.py). Which hunk each unit shows, and whether it is split or
    over the budget, is only kept (`pieces`) for a file where one of these holds; otherwise each unit is
    a whole hunk within the budget.
    """

    diff: FileDiff
    reviewers: tuple[str, ...]
    header: str
    header_tokens: int
    texts: tuple[str, ...]
    tokens: tuple[int, ...]
    shown: tuple[int, ...]  # (start, end) of the new-file lines each unit shows, flat; end < start: none
    added: tuple[int, ...]  # the added lines each unit owns as flat bounds, all units' end to end...
    added_at: tuple[int, ...]  # ...unit k's from added[added_at[k]] to added[added_at[k + 1]]
    pieces: tuple[tuple[int, bool, bool], ...] | None  # (hunk, split, over_budget) of each unit

    @classmethod
    def of(
        cls, diff: FileDiff, reviewers: tuple[str, ...], header: str, header_tokens: int, units: _Units
    ) -> _ReviewFile:
        texts, tokens, shown, added, pieces = units
        flat_shown, flat_added = tuple(chain.from_iterable(shown)), tuple(chain.from_iterable(added))
        added_at = tuple(accumulate(map(len, added), initial=0))
        return cls(
            diff, reviewers, header, header_tokens, texts, tokens, flat_shown, flat_added, added_at, pieces
        )

    def added_lines(self, start: int, end: int) -> tuple[int, ...]:
        """The added lines units start..end - 1 own, merged (`_merge`) as flat bounds. Each unit's are
        sorted and apart, and in diff order the next unit's mostly start after them: then they are only
        laid end to end, which is checked where two units meet."""
        added, at = self.added, self.added_at
        bounds = added[at[start] : at[end]]
        last = None  # the last added line of the units before
        for k in range(start, end):
            if at[k] == at[k + 1]:
                continue
            if last is not None and added[at[k]] <= last + 1:  # touches, overlaps or comes before
                return _merge(list(bound_pairs(bounds)))
            last = added[at[k + 1] - 1]
        return bounds


_Part = tuple[_ReviewFile, int, int]  # units start..end - 1 of one file, inside one slice


def slice_diff(
    diff_text: str | bytes | ParsedDiff,
    limits: SliceLimits = DEFAULT_LIMITS,
    count_tokens: TokenCounter = approx_token_count,
    enabled: tuple[str, ...] | None = None,
    route: Router = route_file,
) -> SlicePlan:
    """Route every file of a diff and pack its hunks into per-reviewer slices under the token budget.

    What is bounded is the sum of the counts of a slice's pieces (each file header and each hunk or
    hunk piece is counted once, never the growing slice): `Slice.tokens` is that sum. For a counter
    where count(a + b) <= count(a) + count(b), such as the default, the slice text itself is within
    the budget too. Only a single diff line that alone exceeds the budget is let through, alone in
    its slice with `over_budget=True`.

    Slices come in `REVIEWERS` order, then diff order; everything not reviewed is listed with its
    reason. Caps keep the riskiest files, never the first names (`review_priority`: code, tests,
    configuration, docs; then the larger change): `max_diff_bytes` keeps the whole file sections that fit
    (the others are only named); `max_files` counts files that would be reviewed (skipped files do not use
    it up); when `max_slices_per_reviewer` bites, that reviewer's files are packed riskiest first and the
    added lines it did not get to are listed. What a cap leaves out is `kind="over_cap"`.
    Raises `DiffParseError` (and nothing else) when the text is not a diff at all.
    A `ParsedDiff` (parsed once where the diff entered) is used as it is unless `max_diff_bytes` cuts it.
    `route` defaults to the reviewer table (`route_file`); tests pass their own.
    """
    # No gc.disable() here: the collector is process-wide, and the App slices in a worker thread while
    # the receiver's event loop runs in another. Its work is kept small instead: slicing leaves ~80k objects
    # for it to walk, not ~350k (LineSpans, units as columns), so a 20 MB diff takes about 0.38 s with it
    # and 0.33 s with it paused (bench/slicing_bench.py, 2 cores; it was 1.2 s and 0.55 s).
    return _slice_diff(diff_text, limits, count_tokens, enabled, route)


def _slice_diff(
    diff_text: str | bytes | ParsedDiff,
    limits: SliceLimits,
    count_tokens: TokenCounter,
    enabled: tuple[str, ...] | None,
    route: Router,
) -> SlicePlan:
    given = diff_text if isinstance(diff_text, ParsedDiff) else None
    if given is not None and given.input_bytes is not None:  # `read_diff` decoded it: its size and notes hold
        text, size, notes = given.text, given.input_bytes, list(given.input_notes)
    else:
        text, size, notes = decode_diff(given.text if given is not None else diff_text)  # type: ignore[arg-type]
    enabled = _known_reviewers(enabled, notes)
    head, cut_names = _cut_at_byte_cap(text, size, limits.max_diff_bytes, notes)
    parsed = given if given is not None and not cut_names else parse_unified_diff(head)
    _check_parsed(parsed.files, parsed.problems, cut_names, head)
    notes.extend(parsed.problems)

    not_reviewed: list[NotReviewed] = []
    ready: list[_ReviewFile] = []
    reasons: list[str | None] = []  # per file, why it is not reviewed, or None and...
    routes: list[tuple[str, ...]] = []  # ...its reviewers (two lists: no pair per file for the collector)
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # files share a few reviewer tuples: one kept of each
    for file in parsed.files:
        reason, reviewers = _triage(file, enabled, route)
        reasons.append(reason)
        routes.append(shared.setdefault(reviewers, reviewers))
    over_cap: set[int] = set()
    if reasons.count(None) > limits.max_files:  # the cap may bite (a file of empty hunks does not count)
        reviewable = [
            file
            for file, reason in zip(parsed.files, reasons)
            if reason is None and any(h.marks for h in file.hunks)
        ]
        if len(reviewable) > limits.max_files:  # it bites: the riskiest files are kept
            picked = {id(f) for f in sorted(reviewable, key=_file_risk)[: limits.max_files]}
            over_cap = {id(f) for f in reviewable} - picked
    for file, reason, reviewers in zip(parsed.files, reasons, routes):
        kind: NotReviewedKind = "unreadable" if file.error else "skipped"
        if reason is None and id(file) in over_cap:
            reason, kind = f"over max_files={limits.max_files}", "over_cap"
        if reason is not None:
            not_reviewed.append(NotReviewed(path=file.path, reason=reason, kind=kind))
            continue
        header = _slice_file_header(file)
        header_tokens = count_tokens(header)
        units = _file_units(file, header_tokens, limits, count_tokens)
        if units is None:
            not_reviewed.append(NotReviewed(path=file.path, reason="no text changes"))
            continue
        ready.append(_ReviewFile.of(file, reviewers, header, header_tokens, units))
    skipped_for_cap = sum(1 for n in not_reviewed if n.reason.startswith("over max_files="))
    if skipped_for_cap:
        notes.append(
            f"{skipped_for_cap} reviewable files over max_files={limits.max_files} were not reviewed"
        )
    for name in cut_names:
        not_reviewed.append(
            NotReviewed(
                path=name, reason=f"over max_diff_bytes={limits.max_diff_bytes} (diff is {size} bytes)",
                kind="over_cap",
            )
        )

    slices: list[Slice] = []
    extra = {name: None for f in ready for name in f.reviewers if name not in REVIEWER_NAMES}
    for reviewer in (*REVIEWER_NAMES, *extra):  # the table's order; names from a custom router last
        files = [f for f in ready if reviewer in f.reviewers]
        if not files:
            continue
        packed = _pack(files, limits.budget_tokens)
        if len(packed) > limits.max_slices_per_reviewer:  # the cap bites: the riskiest files get the slices
            packed = _pack(sorted(files, key=lambda f: _file_risk(f.diff)), limits.budget_tokens)
        kept, left = packed[: limits.max_slices_per_reviewer], packed[limits.max_slices_per_reviewer :]
        slices.extend(_build_slice(reviewer, index, parts) for index, parts in enumerate(kept))
        if left:
            notes.append(
                f"{reviewer} needed {len(packed)} slices; max_slices_per_reviewer="
                f"{limits.max_slices_per_reviewer} left {len(left)} out"
            )
            not_reviewed.extend(_left_out(reviewer, kept, left, len(packed), limits.max_slices_per_reviewer))
    return SlicePlan(slices=slices, not_reviewed=not_reviewed, notes=notes)


# ---- which files a cap keeps: riskiest first, never by name ------------------------------------------

_CONFIG_SUFFIXES = (".yml", ".yaml", ".json", ".toml", ".ini", ".cfg", ".conf", ".env", ".properties", ".xml")
_DOC_SUFFIXES = (".md", ".rst", ".txt", ".adoc", ".markdown")


def review_priority(path: str) -> int:
    """0 code, 1 tests, 2 configuration, 3 documentation: the order in which caps keep files."""
    name = path.rsplit("/", 1)[-1].lower()
    if is_test_file(path):
        return 1
    if name.endswith(_DOC_SUFFIXES) or name.startswith(("readme", "changelog", "license")):
        return 3
    if name.endswith(_CONFIG_SUFFIXES) or name.startswith("."):
        return 2
    return 0


def _file_risk(file: FileDiff) -> tuple[int, int, str]:
    """Code before tests, configuration and docs; then the larger change; then the path (a tie-break only)."""
    return review_priority(file.path), -sum(len(h.marks) for h in file.hunks), file.path


def _section_risk(name: str, size: int) -> tuple[int, int, str]:
    return review_priority(name), -size, name


def render_plan(plan: SlicePlan) -> dict[str, Any]:
    """The plan as plain JSON data (what `calora review --dry-run --format json` prints): no diff text."""

    def spans(ranges: LineSpans) -> list[list[int]]:
        return [[start, end] for start, end in ranges]

    per_reviewer: dict[str, int] = {}
    for s in plan.slices:
        per_reviewer[s.reviewer] = per_reviewer.get(s.reviewer, 0) + 1
    return {
        "summary": {
            "slices": len(plan.slices),
            "tokens": sum(s.tokens for s in plan.slices),
            "slices_per_reviewer": per_reviewer,
            "not_reviewed": len(plan.not_reviewed),
        },
        "slices": [
            {
                "reviewer": s.reviewer,
                "index": s.index,
                "tokens": s.tokens,
                "split_hunk": s.split_hunk,
                "over_budget": s.over_budget,
                "files": [
                    {
                        "path": f.path,
                        **({"old_path": f.old_path} if f.old_path else {}),
                        "status": f.status,
                        "lines": spans(f.ranges),
                        "added": spans(f.added),
                    }
                    for f in s.files
                ],
            }
            for s in plan.slices
        ],
        "not_reviewed": [
            {
                "path": n.path,
                "reviewer": n.reviewer,
                "reason": n.reason,
                "kind": n.kind,
                **({"lines": spans(n.lines)} if n.lines else {}),
            }
            for n in plan.not_reviewed
        ],
        "notes": list(plan.notes),
    }


# ---- input: decoding, caps, parse checks -------------------------------------------------------------


def _known_reviewers(enabled: tuple[str, ...] | None, notes: list[str]) -> tuple[str, ...] | None:
    if enabled is None:
        return None
    unknown = [name for name in enabled if name not in REVIEWER_NAMES]
    if unknown:
        notes.append(f"unknown reviewers ignored: {', '.join(unknown)} (known: {', '.join(REVIEWER_NAMES)})")
    return tuple(name for name in enabled if name in REVIEWER_NAMES)


_GIT_FILE_START = re.compile(r"^diff --git ", re.MULTILINE)
_CLASSIC_FILE_START = re.compile(r"^--- [^\n]*\n\+\+\+ ", re.MULTILINE)
_GIT_HEADER_LINE = re.compile(r"^diff --git ([^\n]*)$", re.MULTILINE)
_CLASSIC_HEADER_LINES = re.compile(r"^--- ([^\n]*)\n\+\+\+ ([^\n]*)$", re.MULTILINE)


def _cut_at_byte_cap(text: str, size: int, cap: int, notes: list[str]) -> tuple[str, list[str]]:
    """Keep the whole file sections that fit in `cap` bytes, riskiest first (`_section_risk`); name the rest.

    The files left out are only named (from their headers, by regex), never parsed, so an oversized
    diff costs little beyond reading it. The kept sections stay in diff order.
    """
    if size <= cap:
        return text, []
    pattern = _GIT_FILE_START if _GIT_FILE_START.search(text) else _CLASSIC_FILE_START
    starts = [m.start() for m in pattern.finditer(text)] + [len(text)]
    cut = starts[0]
    if text.isascii():
        byte_at = starts
    else:
        byte_at, total, previous = [], 0, 0
        for position in starts:
            total += len(text[previous:position].encode("utf-8", "surrogatepass"))
            byte_at.append(total)
            previous = position
    count = len(starts) - 1
    section_names = [_section_name(text[starts[k]:starts[k + 1]], pattern) for k in range(count)]
    sizes = [byte_at[k + 1] - byte_at[k] for k in range(count)]
    used, kept = byte_at[0], set()
    for k in sorted(range(count), key=lambda k: _section_risk(section_names[k], sizes[k])):
        if used + sizes[k] <= cap:
            kept.add(k)
            used += sizes[k]
    names = [section_names[k] for k in range(count) if k not in kept]
    notes.append(
        f"the diff is {size} bytes, over max_diff_bytes={cap}: reviewing {len(kept)} of {count} files "
        f"(code first, then tests, configuration and docs); {len(names)} files were not read"
    )
    return text[:cut] + "".join(text[starts[k]:starts[k + 1]] for k in sorted(kept)), names


def _section_name(section: str, pattern: re.Pattern[str]) -> str:
    """The new path of one file section, from its header alone (the section is not parsed)."""
    if pattern is _GIT_FILE_START:
        match = _GIT_HEADER_LINE.search(section)
        if match is None:
            return section.split("\n", 1)[0][:200]
        pair = git_header_names(match.group(1))
        return _clean_name(pair[1]) if pair else match.group(1).rstrip("\r")[:200]
    found = _CLASSIC_HEADER_LINES.search(section)
    if found is None:
        return section.split("\n", 1)[0][:200]
    old, new = (_clean_name(_name_of(g)) for g in found.groups())
    return old if new == DEV_NULL else new


def _name_of(header_rest: str) -> str:
    raw = header_rest.rstrip("\r")
    return unquote_git_path(raw) if raw.startswith('"') else raw.split("\t", 1)[0]


def _clean_name(name: str) -> str:
    if name == DEV_NULL:
        return name
    return (name[2:] if re.match(r"[abciow12]/", name) else name).lstrip("/")


def _check_parsed(files: list[FileDiff], problems: list[str], cut_names: list[str], text: str) -> None:
    """Raise DiffParseError when nothing in the text could be read as a diff."""
    if cut_names or any(f.error is None for f in files):
        return
    if files:
        first = files[0]
        more = f" (and {len(files) - 1} more files)" if len(files) > 1 else ""
        raise DiffParseError(f"no file of the diff could be read: {first.path}: {first.error}{more}")
    if not text.strip():
        return  # an empty diff: an empty plan
    first_line = text.lstrip().split("\n", 1)[0][:80]
    why = f"; {problems[0]}" if problems else ""
    raise DiffParseError(
        "the input is not a unified diff: no file header ('diff --git ...', or '--- old' followed by "
        f"'+++ new') was found{why}; it starts with {first_line!r}"
    )


# ---- per file: why not reviewed, or its units -------------------------------------------------------


def _triage(
    file: FileDiff, enabled: tuple[str, ...] | None, route: Router
) -> tuple[str | None, tuple[str, ...]]:
    """The reason a file is not reviewed, or None and its reviewers."""
    if file.error:
        return f"diff could not be parsed: {file.error}", ()
    if file.binary:
        return "binary file", ()
    if file.status == "deleted":
        return "file deleted", ()
    mode = file.mode
    if mode == "120000":
        return "symbolic link", ()
    if mode == "160000":
        return "submodule pointer", ()
    if not file.hunks:
        if file.status == "renamed":
            return "renamed without content changes", ()
        if file.status == "added":
            return "empty file added", ()
        if file.old_mode and file.new_mode and file.old_mode != file.new_mode:
            return f"file mode change only ({file.old_mode} -> {file.new_mode})", ()
        return "no text changes", ()
    decision = route(file.path, enabled)
    if decision.skipped_reason:
        return decision.skipped_reason, ()
    return None, decision.reviewers


_NEEDS_QUOTES = re.compile(r'[\x00-\x1f"\\]')


def _quote_name(name: str) -> str:
    """Quote a name the way git does when it holds characters a diff header cannot show raw."""
    if _NEEDS_QUOTES.search(name) is None:
        return name
    escaped = "".join(
        {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(ch)
        or (f"\\{ord(ch):03o}" if ord(ch) < 32 else ch)
        for ch in name
    )
    return f'"{escaped}"'


def _slice_file_header(file: FileDiff) -> str:
    """The `---`/`+++` pair a slice shows before a file's hunks (git's a/ b/ prefixes)."""
    if file.old_path:
        old = _quote_name("a/" + file.old_path)
    elif file.status == "added":
        old = DEV_NULL
    else:
        old = _quote_name("a/" + file.path)
    return f"--- {old}\n+++ {_quote_name('b/' + file.path)}\n"


def _file_units(
    file: FileDiff, header_tokens: int, limits: SliceLimits, count_tokens: TokenCounter
) -> _Units | None:
    """One unit per hunk that fits the budget with the file header; pieces for those that do not. None
    when no hunk has a line. Each hunk's text is counted once."""
    hunks = [hunk for hunk in file.hunks if hunk.marks]
    if not hunks:
        return None
    texts = tuple(map(Hunk.text, hunks))
    counts = tuple(map(count_tokens, texts))
    if header_tokens + max(counts) <= limits.budget_tokens:  # mostly: whole hunks, read column by column
        shown = [hunk.new_span() or _NOTHING_SHOWN for hunk in hunks]
        return texts, counts, shown, list(map(Hunk.added_bounds, hunks)), None
    units: list[_Unit] = []
    counted = zip(texts, counts, strict=True)
    for number, hunk in enumerate(file.hunks):
        if not hunk.marks:
            continue
        text, tokens = next(counted)
        if header_tokens + tokens <= limits.budget_tokens:
            shown = hunk.new_span() or _NOTHING_SHOWN
            units.append((text, tokens, shown, hunk.added_bounds(), number, False, False))
        else:
            units.extend(_split_hunk(hunk, number, header_tokens, limits, count_tokens))
    texts, counts, shown, added, numbers, split, over_budget = zip(*units, strict=True)
    pieces = tuple(zip(numbers, split, over_budget, strict=True)) if any(split) or any(over_budget) else None
    return texts, counts, shown, added, pieces


def _split_hunk(
    hunk: Hunk, number: int, header_tokens: int, limits: SliceLimits, count_tokens: TokenCounter
) -> list[_Unit]:
    """Cut a hunk over the budget at line boundaries into valid hunks, each with its own `@@` header.

    Each piece after the first repeats up to `overlap_lines` lines before it, unchanged ('+' stays
    '+', so every piece is a true sub-hunk and its header is right); those repeated lines are shown
    and commentable but not counted in the piece's `added`, so every added line is owned once.
    A "\\ No newline at end of file" marker stays with its line. Only the line counts are summed
    while choosing a cut (one count per line); each finished piece is counted once more as a whole.
    """
    rows: list[tuple[int, int]] = []  # [start, end) of hunk.lines for each row (a line and its marker)
    for k, mark in enumerate(hunk.marks):
        if mark == "\\" and rows:
            rows[-1] = (rows[-1][0], k + 1)
        else:
            rows.append((k, k + 1))
    lines, marks = hunk.lines, hunk.marks
    row_text = ["\n".join(lines[a:b]) + "\n" for a, b in rows]
    row_tokens = [count_tokens(t) for t in row_text]
    row_mark = [marks[a] for a, _ in rows]
    old_before, new_before = [0], [0]  # old/new-side lines before each row, and in total
    for mark in row_mark:
        old_before.append(old_before[-1] + (mark in " -"))
        new_before.append(new_before[-1] + (mark in " +"))
    token_sum = [0]
    for t in row_tokens:
        token_sum.append(token_sum[-1] + t)
    old_first = hunk.old_start if hunk.old_len else hunk.old_start + 1  # number of the hunk's first old line
    new_first = hunk.new_start if hunk.new_len else hunk.new_start + 1
    widest = format_hunk_header(
        old_first + hunk.old_len, hunk.old_len, new_first + hunk.new_len, hunk.new_len, hunk.section
    )
    room = limits.budget_tokens - header_tokens  # for one piece: its @@ header and its rows
    room_for_rows = room - count_tokens(widest)

    def piece(start: int, end: int) -> str:
        old_len = old_before[end] - old_before[start]
        new_len = new_before[end] - new_before[start]
        old_at = old_first + old_before[start] - (0 if old_len else 1)
        new_at = new_first + new_before[start] - (0 if new_len else 1)
        return format_hunk_header(old_at, old_len, new_at, new_len, hunk.section) + "".join(
            row_text[start:end]
        )

    pieces: list[tuple[str, int, Span, tuple[int, ...], bool]] = []
    i, count = 0, len(rows)
    while i < count:
        overlap = min(limits.overlap_lines, i)
        while overlap and token_sum[i + 1] - token_sum[i - overlap] > room_for_rows:
            overlap -= 1
        j = i + 1
        while j < count and token_sum[j + 1] - token_sum[i - overlap] <= room_for_rows:
            j += 1
        text = piece(i - overlap, j)
        tokens = count_tokens(text)
        while tokens > room and (j - i > 1 or overlap):  # the estimate was short: give back rows
            if j - i > 1:
                j -= 1
            else:
                overlap -= 1
            text = piece(i - overlap, j)
            tokens = count_tokens(text)
        start = i - overlap
        shown_new = new_before[j] - new_before[start]
        shown = _NOTHING_SHOWN
        if shown_new:
            shown = (new_first + new_before[start], new_first + new_before[j] - 1)
        added_numbers = [new_first + new_before[r] for r in range(i, j) if row_mark[r] == "+"]
        added = tuple(chain.from_iterable(_runs(added_numbers)))
        pieces.append((text, tokens, shown, added, tokens > room))
        i = j
    split = len(pieces) > 1
    return [(text, tokens, shown, added, number, split, over) for text, tokens, shown, added, over in pieces]


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Ascending numbers as inclusive (start, end) runs."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


# ---- per reviewer: packing and the slice cap ---------------------------------------------------------


def _pack(files: list[_ReviewFile], budget: int) -> list[list[_Part]]:
    """Greedy, in order: add units to the open slice while the summed count stays within budget."""
    packed: list[list[_Part]] = []
    current: list[_Part] = []
    used = 0
    for file in files:
        pieces = file.pieces
        whole = file.header_tokens + sum(file.tokens)
        if pieces is None and used + whole <= budget:  # mostly: the whole file fits in the open slice
            current.append((file, 0, len(file.tokens)))
            used += whole
            continue
        for k, tokens in enumerate(file.tokens):
            if pieces is not None and pieces[k][2]:  # a single line over the budget: alone
                if current:
                    packed.append(current)
                    current, used = [], 0
                packed.append([(file, k, k + 1)])
                continue
            same_file = bool(current) and current[-1][0] is file
            cost = tokens + (0 if same_file else file.header_tokens)
            if current and used + cost > budget:
                packed.append(current)
                current, used, same_file = [], 0, False
                cost = tokens + file.header_tokens
            if same_file:
                current[-1] = (file, current[-1][1], k + 1)
            else:
                current.append((file, k, k + 1))
            used += cost
    if current:
        packed.append(current)
    return packed


def _merge(spans: list[Span]) -> tuple[int, ...]:
    """Merge overlapping or touching spans, sorted, as flat bounds."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(chain.from_iterable(merged))


def _laid_out(bounds: tuple[int, ...]) -> bool:
    """Whether flat bounds are as `_merge` leaves them: each span non-empty, sorted and apart. Units'
    lines in diff order mostly are, and then a slice takes them as they are."""
    last = None
    for start, end in bound_pairs(bounds):
        if start > end or (last is not None and start <= last + 1):
            return False
        last = end
    return True


def _per_hunk(shown: tuple[int, ...], hunks: tuple[int, ...]) -> tuple[int, ...]:
    """The shown spans (flat, one per unit) merged within each hunk only: an anchor never spans two hunks
    (GitHub's rule), even where two hunks' lines touch (a `-U0` diff)."""
    by_hunk: dict[int, list[Span]] = {}
    for (start, end), hunk in zip(bound_pairs(shown), hunks, strict=True):
        if start <= end:
            by_hunk.setdefault(hunk, []).append((start, end))
    return tuple(chain.from_iterable(_merge(spans) for spans in by_hunk.values()))


def _build_slice(reviewer: str, index: int, parts: list[_Part]) -> Slice:
    # Built as plain data and validated in one call per slice; `LineSpans` pass as they are.
    files: list[dict[str, Any]] = []
    texts: list[str] = []
    tokens = 0
    split = over_budget = False
    for file, start, end in parts:
        texts.append(file.header)
        texts.extend(file.texts[start:end])
        tokens += file.header_tokens + sum(file.tokens[start:end])
        pieces = None if file.pieces is None else file.pieces[start:end]
        if pieces is not None:
            split = split or any(piece_split for _, piece_split, _ in pieces)
            over_budget = over_budget or any(over for _, _, over in pieces)
        shown_bounds = file.shown[2 * start : 2 * end]
        if _laid_out(shown_bounds):  # as units' spans mostly are: kept, and one per hunk to anchor on
            shown = commentable = LineSpans(shown_bounds)
        else:
            spans = [span for span in bound_pairs(shown_bounds) if span[0] <= span[1]]
            shown, commentable = LineSpans(_merge(spans)), LineSpans.of(spans)
        if pieces is not None:  # pieces of a split hunk overlap: merged within each hunk
            commentable = LineSpans(_per_hunk(shown_bounds, tuple(hunk for hunk, _, _ in pieces)))
        added = LineSpans(file.added_lines(start, end))
        files.append(
            {
                "path": file.diff.path,
                "old_path": file.diff.old_path,
                "status": file.diff.status,
                "ranges": shown,
                "commentable": commentable,
                "added": added,
            }
        )
    return Slice.model_validate(
        {
            "reviewer": reviewer,
            "index": index,
            "diff": "".join(texts),
            "files": files,
            "tokens": tokens,
            "split_hunk": split,
            "over_budget": over_budget,
        }
    )


def _left_out(
    reviewer: str, kept: list[list[_Part]], left: list[list[_Part]], needed: int, cap: int
) -> list[NotReviewed]:
    """One entry per file (in order) with units past the slice cap, with the added lines left out."""
    seen = {id(file) for parts in kept for file, _, _ in parts}
    by_file: dict[int, tuple[_ReviewFile, list[tuple[int, ...]]]] = {}
    for parts in left:
        for file, start, end in parts:
            by_file.setdefault(id(file), (file, []))[1].append(file.added_lines(start, end))
    reason = f"over max_slices_per_reviewer={cap} ({reviewer} needed {needed} slices)"
    return [
        NotReviewed(
            path=file.diff.path,
            reviewer=reviewer,
            kind="over_cap",
            reason=reason + ("; the rest of the file was reviewed" if id(file) in seen else ""),
            lines=LineSpans(_merge([run for bounds in added for run in bound_pairs(bounds)])),
        )
        for file, added in by_file.values()
    ]
