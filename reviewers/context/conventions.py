"""The team's own conventions, read from the base branch and given to reviewers as a labelled block (pure).

Teams keep instructions for coding assistants and contributors in a few well-known files. They are read
from the *base* (a pull request cannot rewrite the rules it is judged by), bounded, redacted and made inert
with `reviewers.safe_text`, and reach the reviewer as `ReviewRequest.conventions`, which the system prompt
ranks below its own rules (`reviewers.prompt.CONVENTIONS_RULE`). `calora review --git` and the App both
call `read_conventions`.
"""

from __future__ import annotations

import re

from reviewers.context.source import RepoSource
from reviewers.safe_text import cap, redact, safe_text

CONVENTION_FILES = ("AGENTS.md", ".github/copilot-instructions.md", "CONTRIBUTING.md", ".github/CONTRIBUTING.md")
"""Read in this order; CONTRIBUTING.md contributes only its sections on conventions and style."""
CONVENTIONS_LIMIT = 1500
"""Characters of conventions a reviewer is given, all files together."""

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.MULTILINE)
_CONVENTION_HEADING = re.compile(r"(?i)convention|style|guideline|lint|format|naming|code review|coding|standard")


def read_conventions(base: RepoSource, limit: int = CONVENTIONS_LIMIT) -> str:
    """The conventions block for a repository, empty when it keeps none; at most `limit` characters."""
    parts: list[str] = []
    for path in CONVENTION_FILES:
        text = base.read(path)
        if text is None:
            continue
        if "CONTRIBUTING" in path:
            text = convention_sections(text)
        text = text.strip()
        if text:
            parts.append(f"From {path}:\n{text}")
    if not parts:
        return ""
    # Escaping lengthens text, so the inert text is capped again: the bound holds for what the model reads.
    return cap(safe_text(redact("\n\n".join(parts)), limit=limit), limit)


def convention_sections(markdown: str) -> str:
    """The sections of a markdown file whose heading is about conventions or style (with their subsections)."""
    headings = list(_HEADING.finditer(markdown))
    kept: list[str] = []
    for i, heading in enumerate(headings):
        if not _CONVENTION_HEADING.search(heading.group(2)):
            continue
        level = len(heading.group(1))
        end = next((h.start() for h in headings[i + 1:] if len(h.group(1)) <= level), len(markdown))
        section = markdown[heading.start():end].strip()
        if not any(section in k for k in kept):
            kept.append(section)
    return "\n\n".join(kept)
