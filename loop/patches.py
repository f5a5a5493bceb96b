"""What the author sent, read as data (pure): the patch inside its answer, its rejections, its safety.

The author's text is untrusted. Nothing here runs it: a patch is text that `git apply` will read, and
only after every path in it passed `path_problem` (inside the repository, never `.git/`) and the patch
itself passed `patch_problems` (size cap, no symlink or submodule, no binary blob).
"""

from __future__ import annotations

import re
from itertools import pairwise

from pydantic import BaseModel, Field

from reviewers.unified_diff import parse_unified_diff

DEFAULT_MAX_PATCH_BYTES = 100_000
MAX_REJECTIONS = 20
REJECTION_CHARS = 500

_FENCE = re.compile(r"^(`{3,}|~{3,})[ \t]*([\w+.-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_DIFF_START = re.compile(r"^(diff --git |--- (?!-)\S)", re.MULTILINE)
# "REJECT shop/db.py:7: reason": the target ends at the first colon followed by a space.
_REJECT = re.compile(r"^[ \t>*-]*REJECT[ \t]+(?P<target>[^\n]{1,300}?):[ \t]+(?P<reason>[^\n]+)$", re.MULTILINE)
_SPECIAL_MODE = re.compile(
    r"^(?:new file mode|new mode|old mode|deleted file mode|index [0-9a-fA-F]+\.\.[0-9a-fA-F]+)[ \t]+"
    r"(?P<mode>120000|160000)\b", re.MULTILINE,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class NoPatchError(ValueError):
    """The author's answer holds no unified diff."""


class Rejection(BaseModel):
    """A reviewer's point the author declined, with its reason (`REJECT <finding>: <reason>`)."""

    target: str = Field(description="What the author names: a path:line, a rule id or a plan step.")
    reason: str


def extract_patch(answer: str) -> str:
    """The unified diff in an author's answer: the first fenced block that is a diff, else the text from
    the first diff header on. Raises NoPatchError with what was found instead."""
    for match in _FENCE.finditer(answer):
        body = match.group(3)
        if match.group(2).lower() in ("diff", "patch", "udiff") or _DIFF_START.search(body):
            start = _DIFF_START.search(body)
            if start is not None:
                return _with_newline(body[start.start():])
    start = _DIFF_START.search(answer)
    if start is not None:
        tail = answer[start.start():]
        closing = re.search(r"^(`{3,}|~{3,})[ \t]*$", tail, re.MULTILINE)  # a fence opened before the diff
        return _with_newline(tail[: closing.start()] if closing else tail)
    words, fences = len(answer.split()), len(list(_FENCE.finditer(answer)))
    found = f"{words} word(s)" + (f", {fences} fenced block(s), none of them a diff" if fences else " of prose")
    raise NoPatchError(
        f"the answer holds no unified diff ({found}; no line starting with 'diff --git' or '--- '); "
        "send the whole change as one ```diff block"
    )


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def parse_rejections(answer: str, patch: str = "") -> list[Rejection]:
    """The author's `REJECT <finding>: <reason>` lines outside its patch, at most MAX_REJECTIONS."""
    out: list[Rejection] = []
    prose = answer.replace(patch.rstrip("\n"), "") if patch.strip() else answer
    for match in _REJECT.finditer(prose):
        target, reason = match.group("target").strip(), match.group("reason").strip()
        if target and reason:
            out.append(Rejection(target=target[:REJECTION_CHARS], reason=reason[:REJECTION_CHARS]))
        if len(out) >= MAX_REJECTIONS:
            break
    return out


def path_problem(path: str) -> str | None:
    """Why `path` may not be written by an author's patch, or None: it must be relative, inside the
    repository (no `..`), outside `.git/`, with plain characters."""
    if not path:
        return "an empty path"
    if _CONTROL.search(path):
        return f"{path!r} holds control characters"
    if "\\" in path:
        return f"{path!r} holds a backslash"
    if path.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", path):
        return f"{path!r} is absolute"
    parts = path.split("/")
    if any(p == ".." for p in parts):
        return f"{path!r} leaves the repository"
    if any(p.rstrip(". ").casefold() == ".git" for p in parts):
        return f"{path!r} is inside .git/"
    return None


def patch_paths(patch: str) -> list[str]:
    """Every old and new path the patch names, as `reviewers.unified_diff` reads it (git's own reading is
    checked too, by `loop.worktree`)."""
    parsed = parse_unified_diff(patch)
    paths: list[str] = []
    for file in parsed.files:
        paths += [p for p in (file.path, file.old_path) if p]
    for match in re.finditer(r"^(?:rename|copy) (?:from|to) (.+)$", patch, re.MULTILINE):
        paths.append(match.group(1).strip())
    # Header names as written, before the a/ b/ prefix is taken off: `+++ /etc/x` is refused as absolute
    # even though git's -p1 would read it as etc/x. A header is a `---` line followed by a `+++` line.
    lines = patch.splitlines()
    for old, new in pairwise(lines):
        if old.startswith("--- ") and new.startswith("+++ "):
            for name in (old[4:].split("\t", 1)[0].strip(), new[4:].split("\t", 1)[0].strip()):
                if name.startswith("/") and name != "/dev/null":
                    paths.append(name)
    return list(dict.fromkeys(paths))


def patch_problems(patch: str, max_bytes: int = DEFAULT_MAX_PATCH_BYTES) -> list[str]:
    """Why this patch may not be applied (empty: it may go to `git apply --check`)."""
    size = len(patch.encode("utf-8"))
    if size > max_bytes:
        return [f"the patch is {size:,} bytes, over the cap of {max_bytes:,} (--max-patch-bytes)"]
    problems = []
    if "GIT binary patch" in patch or re.search(r"^Binary files .* differ$", patch, re.MULTILINE):
        problems.append("the patch carries a binary file; only text changes can be reviewed")
    for match in _SPECIAL_MODE.finditer(patch):
        kind = "a symbolic link" if match.group("mode") == "120000" else "a submodule (gitlink)"
        problems.append(f"the patch writes {kind} (mode {match.group('mode')}); that is refused")
        break
    paths = patch_paths(patch)
    if not paths:
        problems.append("the patch names no file (no 'diff --git', '---' or '+++' header that git can read)")
    problems += [f"refused path: {why}" for why in filter(None, map(path_problem, paths))]
    return problems


def parse_numstat(output: bytes) -> list[str]:
    """Paths from `git apply --numstat -z` (renames give their old and new path)."""
    fields = output.decode("utf-8", errors="surrogateescape").split("\0")
    paths: list[str] = []
    i = 0
    while i < len(fields):
        entry = fields[i]
        if not entry:
            i += 1
            continue
        parts = entry.split("\t", 2)
        if len(parts) == 3 and parts[2]:
            paths.append(parts[2])
            i += 1
        elif len(parts) == 3:  # a rename: the old and new paths follow as their own fields
            paths += [p for p in fields[i + 1 : i + 3] if p]
            i += 3
        else:
            i += 1
    return paths
