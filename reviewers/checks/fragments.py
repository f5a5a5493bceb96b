"""What an analyzer can judge from a diff alone: new files whole, modified files as fragments (pure).

A fragment keeps every line number of the new file: the lines the hunks show (added and context) sit
at their own numbers and the unknown lines between them are blank, so a tool's line numbers need no
mapping back. Python cares about indentation, so a hunk that starts inside a block gets `if True:`
openers written into the blank lines above it (as many as the indentation levels it returns to); a
hunk that still does not parse keeps only its added lines, and one that does not parse then is left
blank and counted. Nothing here runs the code: parsing uses `ast`, which never executes anything.
"""

from __future__ import annotations

import ast
import re
import warnings

from pydantic import BaseModel, Field

from reviewers.unified_diff import FileDiff, Hunk

WHOLE = "whole file"
FRAGMENT = "fragment"


class ToolInput(BaseModel):
    """One file as the analyzers will see it, with the lines whose diagnostics count."""

    path: str
    text: str
    how: str = Field(description="'whole file' (all of it is known) or 'fragment' (rebuilt from hunks).")
    added: set[int] = Field(default_factory=set, description="New-file line numbers the change added.")
    unparsed_hunks: int = Field(default=0, description="Python hunks left blank because they did not parse.")


def inputs_from_diff(files: list[FileDiff]) -> list[ToolInput]:
    """Tool inputs for every text file the diff adds or modifies (deleted and binary files have none)."""
    out = []
    for file in files:
        if file.binary or file.status == "deleted" or file.error or not file.hunks:
            continue
        out.append(tool_input(file))
    return out


def tool_input(file: FileDiff) -> ToolInput:
    added = {line for hunk in file.hunks for start, end in hunk.added_runs() for line in range(start, end + 1)}
    if _is_whole(file):
        text = "\n".join(line[1:] for line in file.hunks[0].lines if line[:1] == "+") + "\n"
        return ToolInput(path=file.path, text=text, how=WHOLE, added=added)
    if file.path.endswith((".py", ".pyi")):
        text, unparsed = python_fragment(file.hunks)
        return ToolInput(path=file.path, text=text, how=FRAGMENT, added=added, unparsed_hunks=unparsed)
    return ToolInput(path=file.path, text=_join(_place(file.hunks)), how=FRAGMENT, added=added)


def _is_whole(file: FileDiff) -> bool:
    """A new file shown by one hunk of added lines only: the diff holds all of it."""
    if len(file.hunks) != 1:
        return False
    hunk = file.hunks[0]
    return hunk.old_len == 0 and hunk.new_start in (0, 1) and set(hunk.marks) <= {"+", "\\"}


def _new_side(hunk: Hunk, *, added_only: bool = False) -> list[tuple[int, str]]:
    """(new-file line number, text) of the lines a hunk shows on the new side."""
    out, number = [], hunk.new_start
    for mark, line in zip(hunk.marks, hunk.lines, strict=False):
        if mark in "-\\":
            continue
        if mark == "+" or not added_only:
            out.append((number, line[1:]))
        number += 1
    return out


def _place(hunks: list[Hunk]) -> dict[int, str]:
    placed: dict[int, str] = {}
    for hunk in hunks:
        placed.update(_new_side(hunk))
    return placed


def _join(placed: dict[int, str]) -> str:
    if not placed:
        return ""
    last = max(placed)
    return "\n".join(placed.get(n, "") for n in range(1, last + 1)) + "\n"


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" \t"))


def _openers(lines: list[tuple[int, str]]) -> list[str]:
    """`if True:` lines that make the indentation levels of `lines` valid, outermost first."""
    code = [text for _, text in lines if text.strip() and not text.lstrip().startswith("#")]
    if not code:
        return []
    first = _indent(code[0])
    levels = sorted({_indent(t) for t in code if _indent(t) < first} | {0})
    if first == 0:
        return []
    return [" " * level + "if True:" for level in levels]


def _parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like are the tools' job
            ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


ASSUMED_IMPORTS = "import os, subprocess, pickle, marshal, shelve, yaml, hashlib, tempfile, sqlite3, requests"
"""Written on the fragment's first line when the diff does not show it: the head of a modified file, with
its imports, is usually outside the hunks, and ruff resolves `os.system` or `pickle.loads` through them."""


def python_fragment(hunks: list[Hunk]) -> tuple[str, int]:
    """A Python fragment at the right line numbers that parses, and how many hunks had to be left out."""
    placed, unparsed = _python_hunks(hunks)
    if placed and 1 not in placed and _parses(_join({**placed, 1: ASSUMED_IMPORTS})):
        placed[1] = ASSUMED_IMPORTS
    return _join(placed), unparsed


def _python_hunks(hunks: list[Hunk]) -> tuple[dict[int, str], int]:
    placed: dict[int, str] = {}
    unparsed = 0
    for hunk in hunks:
        for added_only in (False, True):
            lines = _new_side(hunk, added_only=added_only)
            if not lines:
                break
            candidate = dict(placed)
            openers = _openers(lines)
            first = lines[0][0]
            room = [n for n in range(first - len(openers), first) if n >= 1 and n not in candidate]
            if len(room) < len(openers):
                continue
            candidate.update(zip(room, openers, strict=True))
            candidate.update(lines)
            if _parses(_join(candidate)):
                placed = candidate
                break
        else:
            unparsed += 1
    return placed, unparsed


_SCRIPT_OPEN = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
_SCRIPT_CLOSE = re.compile(r"</script\s*>", re.IGNORECASE)
_OTHER_BLOCK = re.compile(r"</?(template|style)\b", re.IGNORECASE)
_LANG = re.compile(r"""\blang\s*=\s*["']?(\w+)""", re.IGNORECASE)
_SCRIPT_SUFFIX = {"ts": ".ts", "tsx": ".tsx", "js": ".js", "jsx": ".jsx"}


def vue_script_view(text: str) -> tuple[str, str] | None:
    """A Vue single-file component's script blocks as a script file: (suffix, text), or None if none shows.

    Every other line is blank, so line numbers are the component's. In a fragment the block's tags may be
    outside the hunks: lines before the first tag seen count as script when that tag closes a script block,
    and as template or style otherwise; with no tag in sight nothing is known and None is returned.
    """
    lines = text.split("\n")
    keep = [False] * len(lines)
    inside: bool | None = None  # None: no tag seen yet
    before_first_tag: list[int] = []
    lang = None
    for number, line in enumerate(lines):
        opened, closed = _SCRIPT_OPEN.search(line), _SCRIPT_CLOSE.search(line)
        if opened and not opened.group(1).rstrip().endswith("/") and not closed:
            found = _LANG.search(opened.group(1))
            lang = lang or (found.group(1).lower() if found else "js")
            inside = True
        elif closed or _OTHER_BLOCK.search(line) or opened:
            if inside is None and closed and not opened:
                for earlier in before_first_tag:
                    keep[earlier] = True
            inside = False
        elif inside is None:
            before_first_tag.append(number)
        elif inside:
            keep[number] = True
    if not any(keep[n] and lines[n].strip() for n in range(len(lines))):
        return None
    return _SCRIPT_SUFFIX.get(lang or "ts", ".ts"), "\n".join(line if keep[n] else "" for n, line in enumerate(lines))
