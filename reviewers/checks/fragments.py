"""What an analyzer can judge from a diff alone: new files whole, modified files as fragments (pure).

A fragment keeps every line number of the new file: the lines the hunks show (added and context) sit
at their own numbers and the unknown lines between them are blank, so a tool's line numbers need no
mapping back. Python cares about indentation, so a hunk that starts inside a block gets `if True:`
openers written into the blank lines above it (as many as the indentation levels it returns to); a
hunk that still does not parse drops the context lines after, then also before, its added lines, then keeps
only its added lines, and one that does not parse then is left blank and counted. JavaScript and TypeScript
hunks that start or end inside a block get the brackets they lack written into the blank lines around them
(`async function __calora_gap() {` above, `}` below), kept only when the hunk then parses (tree-sitter): a parser
that fails on one hunk would otherwise judge nothing of the file. Nothing here runs the code: parsing uses
`ast` and tree-sitter, which never execute anything.
"""

from __future__ import annotations

import ast
import re
import warnings

from pydantic import BaseModel, Field

from reviewers.context.syntax import has_syntax_errors, language_for
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
    language = language_for(file.path)
    if language in SCRIPT_LANGUAGES:
        return ToolInput(path=file.path, text=_join(script_fragment(file.hunks, language)), how=FRAGMENT,
                         added=added)
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


def _python_tries(hunk: Hunk) -> list[list[tuple[int, str]]]:
    """The hunk's lines to try, most first: all of it; without the context after, then also before, the
    added lines (a trailing `if x:` whose body the diff cuts off, a leading `else:`); that without its last
    few lines (a decorator or a block opener the next lines would have completed); the added lines alone."""
    lines = _new_side(hunk)
    added = [number for number, _ in _new_side(hunk, added_only=True)]
    if not added:
        return [lines] if lines else []
    no_tail = [(n, t) for n, t in lines if n <= max(added)]
    inner = [(n, t) for n, t in no_tail if n >= min(added)]
    shorter = [inner[:-cut] for cut in range(1, min(_MAX_CUT, len(inner) - 1) + 1)]
    tries = [lines, no_tail, inner, *shorter, _new_side(hunk, added_only=True)]
    return [t for i, t in enumerate(tries) if t and t not in tries[:i]]


_MAX_CUT = 4
"""How many trailing lines of a hunk may be given up to make it parse."""


def _python_hunks(hunks: list[Hunk]) -> tuple[dict[int, str], int]:
    placed: dict[int, str] = {}
    unparsed = 0
    for hunk in hunks:
        tries = _python_tries(hunk)
        if not tries:
            continue
        for lines in tries:
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


SCRIPT_LANGUAGES = ("javascript", "typescript", "tsx")
_CLOSER_OF = {"(": ")", "[": "]", "{": "}"}
_OPENER_OF = {v: k for k, v in _CLOSER_OF.items()}
_BLOCK_OPENERS = ("async function __calora_gap() {", "class __CaloraGap {", "const __calora_gap = {",
                  "interface __CaloraGap {")
"""What a hunk that starts inside a `{ ... }` may be inside of: a function or class body, an object, a type."""
_INNER_OPENER = {"class __CaloraGap {": "async __calora_gap() {", "const __calora_gap = {": "__calora_gap: {",
                 "interface __CaloraGap {": "__calora_gap: {"}
"""The `{` that may open inside each of those: a method in a class, a property in an object or a type."""


def _brackets(text: str) -> tuple[str, str] | None:
    """(closers the text starts with unmatched, outermost first in reading order; openers left unclosed).

    A light scanner for JavaScript/TypeScript: it skips comments, quoted strings and template literals (with
    their `${...}`). None when the brackets cross (`(]`) or the text ends inside a string or comment; JSX text
    and regular expressions can fool it, which the parse that follows catches.
    """
    stack: list[str] = []  # open brackets; "$" is a template's `${`
    modes = ["code"]  # "code" or "template"
    unmatched = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if modes[-1] == "template":
            if c == "\\":
                i += 2
                continue
            if c == "`":
                modes.pop()
            elif text.startswith("${", i):
                stack.append("$")
                modes.append("code")
                i += 2
                continue
            i += 1
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return None
            i = end + 2
            continue
        if c in "'\"":
            j = i + 1
            while j < n and text[j] not in (c, "\n"):
                j += 2 if text[j] == "\\" else 1
            if j >= n or text[j] != c:
                return None
            i = j + 1
            continue
        if c == "`":
            modes.append("template")
        elif c in _CLOSER_OF:
            stack.append(c)
        elif c in _OPENER_OF:
            if c == "}" and stack and stack[-1] == "$":
                stack.pop()
                modes.pop()
            elif not stack:
                unmatched.append(c)
            elif stack[-1] == _OPENER_OF[c]:
                stack.pop()
            else:
                return None
        i += 1
    if modes != ["code"] or "$" in stack:
        return None
    return "".join(unmatched), "".join(stack)


def script_fragment(hunks: list[Hunk], language: str) -> dict[int, str]:
    """A JavaScript/TypeScript fragment whose hunks each parse where brackets written around them allow.

    A hunk that needs an opener above it or a closer below it gets them on the blank line next to it (when
    that line is not another hunk's); of the openers a `}` may need, the first that makes the hunk parse is
    kept. A hunk nothing makes parse is put inside a block comment (`/*` and `*/` on the blank lines around
    it), so that the parsers read the rest of the file while the rules that read text (patterns,
    detect-secrets) still see its lines unchanged; without room for that it is placed as it is.
    """
    shown = {number for hunk in hunks for number, _ in _new_side(hunk)}
    placed: dict[int, str] = {}
    for hunk in hunks:
        lines = _new_side(hunk)
        if lines:
            placed.update(_parsing_hunk(lines, language, shown | placed.keys()))
    return placed


def _parsing_hunk(lines: list[tuple[int, str]], language: str, shown: set[int]) -> dict[int, str]:
    """The hunk's lines, with the brackets that make it parse around it, or inside a block comment.

    `shown` holds the line numbers already spoken for (other hunks' lines, brackets written for earlier hunks).
    """
    text = "\n".join(line for _, line in lines)
    if not has_syntax_errors(language, text):
        return dict(lines)
    balance = _brackets(text)
    above, below = lines[0][0] - 1, lines[-1][0] + 1
    if balance is not None:
        needs_open, needs_close = balance
        if not (needs_open and (above < 1 or above in shown)) and not (needs_close and below in shown):
            closer = "".join(_CLOSER_OF[b] for b in reversed(needs_close))
            # `return (` or `f(a,` cut off: `)` alone leaves `return ()`, so a value may close the parenthesis
            closers = (closer, "null" + closer) if closer.startswith(")") else (closer,)
            for outermost in _BLOCK_OPENERS if "}" in needs_open else ("",):
                opener = _opener_chain(needs_open, outermost)
                for ending in closers:
                    if not has_syntax_errors(language, f"{opener}\n{text}\n{ending}"):
                        extra = {above: opener} if opener else {}
                        return {**extra, **dict(lines), **({below: ending} if ending else {})}
    if "*/" not in text and above >= 1 and above not in shown and below not in shown:
        return {above: "/*", **dict(lines), below: "*/"}
    return dict(lines)


def _opener_chain(needs_open: str, outermost: str) -> str:
    """Openers for the unmatched closers `needs_open` (reading order: innermost first), outermost first."""
    chain: list[str] = []
    block = outermost
    for closer in reversed(needs_open):
        if closer != "}":
            chain.append(_OPENER_OF[closer])
            continue
        chain.append(block)
        block = _INNER_OPENER.get(block, "async function __calora_gap() {")
    return " ".join(chain)


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
