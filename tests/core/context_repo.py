"""Small real git repositories for the context tests: files committed, a change committed on top."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reviewers.context.source import GitSource
from reviewers.slicing import SliceLimits, SlicePlan, slice_diff


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
                          check=True, capture_output=True)
    return done.stdout.decode()


def write(root: Path, files: dict[str, str | None]) -> None:
    for path, text in files.items():
        target = root / path
        if text is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def repo_with_change(root: Path, before: dict[str, str | None], after: dict[str, str | None]) -> Path:
    """A repository whose first commit holds `before` and whose second commit applies `after`."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    write(root, before)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    write(root, after)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "change")
    return root


def plan_of(root: Path, limits: SliceLimits | None = None) -> tuple[str, SlicePlan]:
    diff = git(root, "diff", "HEAD~1..HEAD")
    return diff, slice_diff(diff, limits or SliceLimits())


def head(root: Path) -> GitSource:
    return GitSource(root, "HEAD")


class RecordingSource:
    """A real source that records every path it was asked to read (what a GitHub source would fetch)."""

    def __init__(self, inner: GitSource) -> None:
        self.inner = inner
        self.revision = inner.revision
        self.read_paths: list[str] = []
        self.listed: list[str] = []

    def read(self, path: str) -> str | None:
        self.read_paths.append(path)
        return self.inner.read(path)

    def list_dir(self, folder: str) -> list[str]:
        self.listed.append(folder)
        return self.inner.list_dir(folder)
