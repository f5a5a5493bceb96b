"""Unified diffs as data: files and hunks, read by a fast line scanner.

Reads `git diff` output (renames, copies, mode changes, binary files, quoted names, `--no-prefix`) and
classic unified diffs (`diff -u`, svn, hg, bzr). Why not unidiff's `PatchSet`: it builds one object per
diff line and took about 9 s for a 25 MB diff on a 2-core machine. This scanner takes each line's first
character once, into one string (one regex pass, no string per line), finds where each hunk ends by
counting markers in it with `str.count`, and keeps each body as one slice of the text; no Python code
runs per hunk body line. The tests check it against unidiff line by line.

A file whose hunks are malformed gets `error` set and the scanner resumes at the next file; the caller
decides what to do with it. Nothing here raises on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import accumulate
from typing import Literal

FileStatus = Literal["added", "modified", "deleted", "renamed"]

DEV_NULL = "/dev/null"
_HUNK_HEADER = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)")
_PREFIXES = "abciow12"  # a name's first letter before '/': git's a/ b/, mnemonic c/ i/ o/ w/, --no-index 1/ 2/
_BODY_MARKS = " +-\\"  # the first characters of hunk body lines
_BODY_RUN = re.compile(r"[ +\-\\]*")
_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_EXTENDED_HEADER = (
    "old mode ",
    "new mode ",
    "deleted file mode ",
    "new file mode ",
    "copy from ",
    "copy to ",
    "rename from ",
    "rename to ",
    "similarity index ",
    "dissimilarity index ",
    "index ",
)


def bound_pairs(bounds: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    """(start, end) pairs of flat line bounds (start, end, start, end, ...): the form in which hunks and
    slices keep line ranges, one untracked tuple for the garbage collector instead of one pair each."""
    items = iter(bounds)
    return zip(items, items, strict=True)


@dataclass(slots=True)
class Hunk:
    """One `@@` block: its header numbers and body lines.

    The body is kept as one string, not a list of lines: a list holds one object per diff line, and the
    garbage collector walks every one of them on each full collection (most of slicing's time on a
    20 MB diff, bench/slicing_bench.py). `lines` splits it when a caller wants the lines.
    """

    old_start: int
    old_len: int
    new_start: int
    new_len: int
    section: str
    body: str  # the body lines joined by "\n", without a final newline
    marks: str  # first character of each body line: ' ', '+', '-' or '\\' (empty lines count as ' ')
    diff_line: int = 0  # 1-based line of the `@@` header in the text that was parsed

    @property
    def lines(self) -> list[str]:
        """The body lines, without their trailing newline."""
        return self.body.split("\n") if self.marks else []

    def header(self) -> str:
        return format_hunk_header(self.old_start, self.old_len, self.new_start, self.new_len, self.section)

    def text(self) -> str:
        """The hunk as diff text, header included, each line ending in a newline."""
        return f"{self.header()}{self.body}\n"  # one copy of the body, not two

    def new_span(self) -> tuple[int, int] | None:
        """The new-file lines this hunk shows (added or context), or None for a pure deletion."""
        return (self.new_start, self.new_start + self.new_len - 1) if self.new_len else None

    def added_runs(self) -> tuple[tuple[int, int], ...]:
        """New-file line ranges of added lines, as (start, end) pairs."""
        return tuple(bound_pairs(self.added_bounds()))

    def added_bounds(self) -> tuple[int, ...]:
        """`added_runs` flat, (start, end, start, end, ...), found from the markers without a line loop.

        Flat because one tuple of ints is one object, which the garbage collector does not even track,
        where pairs are one object each: slicing a 20 MB diff keeps ~80k runs (bench/slicing_bench.py).
        """
        new_side = self.marks.replace("-", "").replace("\\", "")  # the new side: context and added lines
        bounds: list[int] = []
        before = self.new_start - 1  # new-file number of the line before new_side[0]
        start = new_side.find("+")
        while start >= 0:  # one find for each end of a run of '+'
            end = new_side.find(" ", start)
            if end < 0:
                bounds += (before + start + 1, before + len(new_side))
                break
            bounds += (before + start + 1, before + end)
            start = new_side.find("+", end)
        return tuple(bounds)

    def new_lines(self) -> list[tuple[int, str, str]]:
        """(new-file number, mark, text without the mark) of each added or context line.

        An empty line (or a lone CR) inside a hunk is a context line without its space; its text is kept.
        """
        out: list[tuple[int, str, str]] = []
        number = self.new_start
        for mark, line in zip(self.marks, self.lines, strict=True):
            if mark in " +":
                out.append((number, mark, line[1:] if line[:1] == mark else line))
                number += 1
        return out

    def changed_lines(self) -> list[tuple[str, str]]:
        """(mark, text without the mark) of each added or removed line, in diff order."""
        return [(mark, line[1:]) for mark, line in zip(self.marks, self.lines, strict=True) if mark in "+-"]


@dataclass(slots=True)
class FileDiff:
    """One file's section of a diff."""

    path: str  # the new path; the old one for a deleted file
    old_path: str | None = None  # set when the file was renamed or copied
    status: FileStatus = "modified"
    binary: bool = False
    copied: bool = False
    old_mode: str | None = None
    new_mode: str | None = None
    hunks: list[Hunk] = field(default_factory=list)
    error: str | None = None
    diff_line: int = 0  # 1-based line of the diff where this file's section starts
    is_git: bool = False
    _old: str = ""  # raw old/new names as read, resolved into path/old_path/status by `_finish`
    _new: str = ""

    @property
    def mode(self) -> str | None:
        return self.new_mode or self.old_mode


@dataclass(slots=True)
class ParsedDiff:
    """Every file section found, plus problems that belong to no file (a hunk with no file header).

    Parsed once where a diff enters (the App's fetch, `calora review`, a training example) and passed on:
    filtering, slicing, anchoring, publishing and training read this, never the text again. `text` is
    what was parsed; `diff_line` numbers of files and hunks count lines of it.
    """

    files: list[FileDiff]
    problems: list[str]
    text: str = ""
    # How the input arrived, for whoever caps it by size or reports on it (slicing): its size in bytes as
    # received (None: that of `text`) and remarks about decoding it (bytes replaced). Set by `read_diff`.
    input_bytes: int | None = None
    input_notes: list[str] = field(default_factory=list)

    def paths(self) -> list[str]:
        """Every file's path, in diff order."""
        return [f.path for f in self.files]

    def file(self, path: str) -> FileDiff | None:
        return next((f for f in self.files if f.path == path), None)

    def removed_paths(self) -> list[str]:
        """Files the diff deletes (nothing to fetch or comment on at the new side)."""
        return [f.path for f in self.files if f.status == "deleted"]

    def only(self, keep: Callable[[str], bool]) -> tuple[ParsedDiff, list[str]]:
        """The diff without the files `keep` rejects, and the rejected paths.

        Each file's section (from its first header line to the next file's) is cut out of `text`, so
        the kept text is byte for byte what was sent; text before the first file (a mail header) stays.
        """
        kept = [keep(f.path) for f in self.files]
        dropped = [f.path for f, k in zip(self.files, kept, strict=True) if not k]
        if not dropped:
            return self, []
        line_lengths = (len(line) + 1 for line in self.text.split("\n"))
        offsets = [0, *accumulate(line_lengths)]  # offsets[i]: where line i (0-based) starts
        starts = [f.diff_line - 1 for f in self.files] + [len(offsets) - 1]
        parts = [self.text[: offsets[starts[0]]]]
        kept_lines = starts[0]
        files: list[FileDiff] = []
        for k, file in enumerate(self.files):
            if not kept[k]:
                continue
            parts.append(self.text[offsets[starts[k]] : offsets[starts[k + 1]]])
            files.append(_shifted(file, kept_lines - starts[k]))
            kept_lines += starts[k + 1] - starts[k]
        return ParsedDiff(files=files, problems=list(self.problems), text="".join(parts)), dropped


def _shifted(file: FileDiff, by: int) -> FileDiff:
    """A copy of `file` whose diff line numbers are moved by `by` (its section moved in the text)."""
    if by == 0:
        return file
    hunks = [replace(h, diff_line=h.diff_line + by) for h in file.hunks]
    return replace(file, diff_line=file.diff_line + by, hunks=hunks)


def format_hunk_header(old_start: int, old_len: int, new_start: int, new_len: int, section: str = "") -> str:
    tail = f" {section}" if section else ""
    return f"@@ -{old_start},{old_len} +{new_start},{new_len} @@{tail}\n"


def unquote_git_path(raw: str) -> str:
    """Undo git's C-style quoting ("a/caf\\303\\251.py" -> a/café.py); unquoted names pass through."""
    if len(raw) < 2 or not (raw.startswith('"') and raw.endswith('"')):
        return raw
    body, out, i = raw[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            octal = body[i + 1 : i + 4]
            if len(octal) == 3 and all(c in "01234567" for c in octal):
                out.append(int(octal, 8) & 0xFF)
                i += 4
                continue
            if nxt in _C_ESCAPES:
                out.append(_C_ESCAPES[nxt])
                i += 2
                continue
        out.extend(ch.encode("utf-8", "surrogatepass"))
        i += 1
    return out.decode("utf-8", "replace")


def _strip_prefix(name: str) -> str:
    return name[2:] if name[1:2] == "/" and name[0] in _PREFIXES else name


def _header_name(raw: str) -> str:
    """The file name of a `---`/`+++` line's remainder: timestamp cut at the tab, quotes undone."""
    raw = raw.rstrip("\r")
    if raw.startswith('"'):
        end = _quoted_end(raw)
        return unquote_git_path(raw[: end + 1]) if end > 0 else raw
    return raw.split("\t", 1)[0]


def _quoted_end(text: str) -> int:
    """Index of the closing quote of a quoted name starting at text[0], or -1."""
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    return -1


def git_header_names(rest: str) -> tuple[str, str] | None:
    """Old and new names (prefixes kept) from what follows `diff --git `, or None when ambiguous."""
    rest = rest.rstrip("\r")
    if rest.startswith('"'):
        end = _quoted_end(rest)
        if end < 0 or rest[end + 1 : end + 2] != " ":
            return None
        second = rest[end + 2 :]
        return unquote_git_path(rest[: end + 1]), unquote_git_path(second)
    if rest.endswith('"') and ' "' in rest:
        first, second = rest.rsplit(' "', 1)
        return first, unquote_git_path('"' + second)
    size = len(rest)
    if size % 2 == 1 and rest[size // 2] == " ":  # same name twice: the usual, unambiguous case
        first, second = rest[: size // 2], rest[size // 2 + 1 :]
        if _strip_prefix(first) == _strip_prefix(second):
            return first, second
    if " b/" in rest and rest.startswith("a/"):
        first, second = rest.split(" b/", 1)
        return first, "b/" + second
    return None


def _find_hunk_end(marks: str, start: int, old_len: int, new_len: int) -> tuple[int, str | None]:
    """Index just past the hunk body starting at `start`, and an error message when it is malformed.

    Fast path: in `git diff` output a hunk body is exactly the run of marker characters before the
    next header, so count that run once. Otherwise (a blank separator line, a classic `---` header
    right after): each body line adds at most one to the old and one to the new count, so at least
    max(missing old, missing new) more lines are needed: jump that far and count markers there.
    """
    run_end = _BODY_RUN.match(marks, start).end()  # type: ignore[union-attr]  # `*` always matches
    context = marks.count(" ", start, run_end)  # counted in place: no copy of the run
    if (
        context + marks.count("-", start, run_end) == old_len
        and context + marks.count("+", start, run_end) == new_len
        and not marks.endswith("\\\\", start, run_end)
        and not marks.startswith("\\", start)
    ):
        return run_end, None
    total = len(marks)
    old_seen = new_seen = 0
    k = start
    while True:
        need = max(old_len - old_seen, new_len - new_seen)
        if need == 0:
            break
        stop = k + need
        seg = marks[k:stop]
        context, plus, minus = seg.count(" "), seg.count("+"), seg.count("-")
        if context + plus + minus + seg.count("\\") != len(seg):
            bad = next(j for j, ch in enumerate(seg) if ch not in " +-\\")
            return k + bad, (
                f"expected {old_len} old and {new_len} new lines but diff line {k + bad + 1} is not "
                f"a hunk line (it starts with {seg[bad]!r})"
            )
        old_seen += context + minus
        new_seen += context + plus
        if stop > total:
            seen = f"{old_seen} of {old_len} old, {new_seen} of {new_len} new lines"
            return total, f"the diff ends inside the hunk ({seen})"
        if old_seen > old_len or new_seen > new_len:
            return stop, f"hunk is longer than its header says ({old_len} old, {new_len} new lines)"
        k = stop
    if k < total and marks[k] == "\\":  # "\ No newline at end of file" after the last line
        k += 1
    return k, None


def _next_file_start(scan: str, marks: str, i: int, at: int) -> tuple[int, int]:
    """Where scanning resumes after a malformed hunk (line, offset): the next file header, or the end."""
    n = len(marks)
    while i < n:
        eol = scan.find("\n", at)
        if scan.startswith("diff --git ", at) or (scan.startswith("--- ", at) and scan.startswith("+++ ", eol + 1)):
            return i, at
        i, at = i + 1, eol + 1
    return n, len(scan)


class DiffParseError(ValueError):
    """The input is not a unified diff, or no file section in it could be read.

    The only exception `read_diff` and `reviewers.slicing.slice_diff` raise. A diff in which only some
    files are malformed is not an error: those files are listed with the parser's message.
    """


def decode_diff(data: str | bytes) -> tuple[str, int, list[str]]:
    """Text, its size in bytes as received, and notes; undecodable bytes become U+FFFD and are reported."""
    notes: list[str] = []
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", "replace")
            notes.append(
                f"the diff is not valid UTF-8 (first bad byte at offset {exc.start}); undecodable bytes "
                "were replaced with U+FFFD"
            )
        size = len(raw)
    elif isinstance(data, str):
        text = data
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            size = len(text.encode("utf-8"))
            notes.append("the diff text held lone surrogates; they were replaced with U+FFFD")
    else:
        raise DiffParseError(f"a diff must be str or bytes, not {type(data).__name__}")
    text = text.removeprefix("\ufeff")
    return text, size, notes


def read_diff(data: str | bytes) -> ParsedDiff:
    """Decode a diff as it arrived (a file's or a pipe's bytes) and parse it once, keeping its size and
    the decoding notes so that a byte cap and the plan's remarks still speak of the input itself."""
    text, size, notes = decode_diff(data)
    parsed = parse_unified_diff(text)
    parsed.input_bytes = size
    parsed.input_notes = notes
    return parsed


def parse_unified_diff(text: str) -> ParsedDiff:
    """Every file section of a unified diff, in order. Never raises: problems are recorded.

    One pass over the text with a cursor (line number `i`, its offset `at`): header lines are read one
    by one, a hunk's body is jumped over (its end found in `marks`) and kept as one slice of the text.
    """
    text = text.removeprefix("\ufeff")
    scan = text if not text or text.endswith("\n") else text + "\n"  # every line ends in a newline
    marks = _line_marks(scan)
    files: list[FileDiff] = []
    problems: list[str] = []
    current: FileDiff | None = None
    in_git_header = False  # between `diff --git` and its `---`/`+++`, binary marker or first hunk
    n = len(marks)
    i = at = 0
    while i < n:
        eol = scan.find("\n", at)
        line = scan[at:eol]
        first = marks[i]
        if first == "d" and line.startswith("diff --git "):
            current = _start_git_file(line, i)
            files.append(current)
            in_git_header = True
            i, at = i + 1, eol + 1
            continue
        if first == "-" and line.startswith("--- ") and scan.startswith("+++ ", eol + 1):
            next_eol = scan.find("\n", eol + 1)
            old, new = _header_name(line[4:]), _header_name(scan[eol + 5 : next_eol])
            if current is not None and in_git_header:
                current._old, current._new = old, new
            else:
                current = FileDiff(path=new, diff_line=i + 1, _old=old, _new=new)
                files.append(current)
            in_git_header = False
            i, at = i + 2, next_eol + 1
            continue
        if first == "@" and line.startswith("@@"):
            i, at = _read_hunk(scan, marks, i, line, eol + 1, current, problems)
            in_git_header = False
            continue
        if in_git_header and current is not None:
            in_git_header = _read_git_header_line(line.rstrip("\r"), current)
        elif first in "BG" and _is_binary_marker(line):
            name = _binary_name(line.rstrip("\r"))
            if current is not None and name is None:
                current.binary = True
            elif name is not None:
                current = FileDiff(path=name, binary=True, diff_line=i + 1, _old=name, _new=name)
                files.append(current)
        i, at = i + 1, eol + 1
    for file in files:
        _finish(file)
    return ParsedDiff(files=files, problems=problems, text=text)


_LINE_START = re.compile(r"\n(?=(.))", re.DOTALL)  # captures the character after each newline


def _line_marks(scan: str) -> str:
    """First character of every line of `scan` (which ends in a newline); an empty line (or a lone CR) is
    a context line, as in unidiff. One regex pass: no string is made per line."""
    if not scan:
        return ""
    return (scan[0] + "".join(_LINE_START.findall(scan))).replace("\n", " ").replace("\r", " ")


def _read_hunk(
    scan: str, marks: str, i: int, header: str, body_at: int, current: FileDiff | None, problems: list[str]
) -> tuple[int, int]:
    """Read the hunk whose header is line `i` (its body starting at offset `body_at`); return the cursor
    (line, offset) after it, or after the bad file."""
    match = _HUNK_HEADER.match(header)  # a CR at the end falls in the section, which is stripped
    if match is None or current is None:
        header = header.rstrip("\r")
        if header.startswith("@@@"):
            why = "combined (merge) diff hunks ('@@@') are not supported; diff against one parent"
        elif match is None:
            why = f"malformed hunk header {header[:80]!r}"
        else:
            why = f"hunk header {header[:80]!r} has no file header before it"
        if current is not None and current.error is None:
            current.error = f"{why} (diff line {i + 1})"
            return _next_file_start(scan, marks, i + 1, body_at)
        problems.append(f"diff line {i + 1}: {why}")
        return i + 1, body_at
    old_start, old_len, new_start, new_len, section = match.groups()
    old_len_i = 1 if old_len is None else int(old_len)
    new_len_i = 1 if new_len is None else int(new_len)
    end, error = _find_hunk_end(marks, i + 1, old_len_i, new_len_i)
    if error is not None:
        if current.error is None:
            header = header.rstrip("\r")
            current.error = f"hunk {header[:60]!r} at diff line {i + 1}: {error}"
        resume = max(end, i + 1)
        return _next_file_start(scan, marks, resume, _skip_lines(scan, body_at, resume - i - 1))
    body_end = _body_end(scan, marks, body_at, i + 1, end)
    current.hunks.append(
        Hunk(
            int(old_start),
            old_len_i,
            int(new_start),
            new_len_i,
            section.strip(),
            scan[body_at : body_end - 1],
            marks[i + 1 : end],
            i + 1,
        )
    )
    return end, body_end


def _body_end(scan: str, marks: str, at: int, first: int, end: int) -> int:
    """Offset of line `end`, where the body lines `first`..`end - 1` start at offset `at`.

    The line after a body mostly starts with a character no body line starts with ('@', 'd', ...): one
    `find` of a newline followed by it lands there. Otherwise (the end of the text, or a classic diff's
    next `---` header right after the body) the body's newlines are counted.
    """
    if end == len(marks):
        return len(scan)
    after = marks[end]
    if end > first and after not in _BODY_MARKS:
        if after == "@":  # the next hunk: found by its '@' alone (a one-character find is much faster)
            found = scan.find("@", at)
            while found > 0 and scan[found - 1] != "\n":  # an '@' inside a body line
                found = scan.find("@", found + 1)
            return found
        return scan.find("\n" + after, at - 1) + 1
    return _skip_lines(scan, at, end - first)


def _skip_lines(scan: str, at: int, count: int) -> int:
    """Offset of the line `count` lines after the one at offset `at`."""
    for _ in range(count):
        at = scan.find("\n", at) + 1
    return at


def _start_git_file(line: str, i: int) -> FileDiff:
    names = git_header_names(line[len("diff --git ") :])
    old, new = names if names is not None else ("", "")
    return FileDiff(path=new, diff_line=i + 1, is_git=True, _old=old, _new=new)


def _read_git_header_line(line: str, file: FileDiff) -> bool:
    """Apply one extended header line; return whether the header goes on."""
    if line.startswith("index "):  # first: every git file section has one (the prefixes exclude each other)
        parts = line.split()
        if len(parts) == 3 and file.new_mode is None:
            file.old_mode = file.old_mode or parts[2]
            file.new_mode = parts[2]
    elif line.startswith("new file mode "):
        file.status, file.new_mode = "added", line[14:].strip()
        file._old = DEV_NULL
    elif line.startswith("deleted file mode "):
        file.status, file.old_mode = "deleted", line[18:].strip()
        file._new = DEV_NULL
    elif line.startswith(("rename from ", "copy from ")):
        name = unquote_git_path(line.split(" ", 2)[2])
        file.copied = line.startswith("copy")
        file.status = "renamed"
        if not file._old:
            file._old = name
    elif line.startswith(("rename to ", "copy to ")):
        if not file._new:
            file._new = unquote_git_path(line.split(" ", 2)[2])
    elif line.startswith("old mode "):
        file.old_mode = line[9:].strip()
    elif line.startswith("new mode "):
        file.new_mode = line[9:].strip()
    elif _is_binary_marker(line):
        file.binary = True
        return False
    elif not line.startswith(_EXTENDED_HEADER):
        return False
    return True


def _is_binary_marker(line: str) -> bool:
    line = line.rstrip("\r")
    return line == "GIT binary patch" or (
        line.startswith(("Binary files ", "Binary file ")) and line.endswith((" differ", " has changed"))
    )


def _binary_name(line: str) -> str | None:
    """The new file name of a classic "Binary files X and Y differ" line, or None for a git one."""
    if line == "GIT binary patch":
        return None
    body = line.split(" ", 2)[2].rsplit(" ", 1)[0]
    body = body.removesuffix(" has")
    new = body.rsplit(" and ", 1)[-1]
    return _strip_prefix(unquote_git_path(new.split("\t", 1)[0]))


def _finish(file: FileDiff) -> None:
    """Resolve raw names into path, old_path and status (git's headers first, then the classic cues)."""
    old, new = file._old, file._new
    old_clean = _strip_prefix(old) if old and old != DEV_NULL else old
    new_clean = _strip_prefix(new) if new and new != DEV_NULL else new
    if new == DEV_NULL:
        file.status = "deleted"
    elif old == DEV_NULL:
        file.status = "added"
    elif (
        not file.is_git
        and len(file.hunks) == 1
        and file.hunks[0].old_start == 0
        and file.hunks[0].old_len == 0
    ):
        file.status = "added"  # classic diffs mark new files by an empty old side
    elif (
        not file.is_git
        and len(file.hunks) == 1
        and file.hunks[0].new_start == 0
        and file.hunks[0].new_len == 0
    ):
        file.status = "deleted"
    elif old_clean and new_clean and old_clean != new_clean:
        file.status = "renamed"
    if file.copied and file.status == "renamed":
        file.status = "added"  # a copy is a new file; old_path says where it came from
    if file.status == "deleted":
        file.path = old_clean or new_clean or file.path
    else:
        file.path = new_clean or old_clean or file.path
    if old_clean and old_clean != DEV_NULL and old_clean != file.path:
        file.old_path = old_clean
    file.path = file.path.lstrip("/")
    if not file.path:
        file.path = f"<unnamed file at diff line {file.diff_line}>"
        file.error = file.error or "could not read the file name from its header"
