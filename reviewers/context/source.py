"""Where repository text comes from: the two reads retrieval may make, and two local sources.

Retrieval (`reviewers.context`) calls only `RepoSource.read` and `RepoSource.list_dir`, so the number of
calls is what a review costs on GitHub's contents API (the App's source, `app/context_source.py`) and
what it costs locally (`DirectorySource` on a checkout or a snapshot folder, `GitSource` on a commit
without checking it out). Paths are repository paths: forward slashes, no leading slash, "" is the root.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

MAX_FILE_BYTES = 256 * 1024
"""A file larger than this is not read for context (generated code, bundles, data): `read` gives None."""


@runtime_checkable
class RepoSource(Protocol):
    """Read access to one revision of one repository.

    A source may also name its commit in a `revision` attribute; per-commit caches (the repository
    profile) key on it, and a source without one is simply not cached.
    """

    def read(self, path: str) -> str | None:
        """The text of `path` at the reviewed revision; None when absent, binary or over MAX_FILE_BYTES."""
        ...

    def list_dir(self, folder: str) -> list[str]:
        """Repository paths of the files (not folders) directly in `folder` ("" for the root), sorted."""
        ...


def normalize_path(path: str) -> str | None:
    """`path` as a clean repository path, or None when it is absolute or climbs out (`..`)."""
    text = path.replace("\\", "/").strip()
    if not text or text.startswith("/"):
        return None if text.startswith("/") else ""
    parts: list[str] = []
    for part in PurePosixPath(text).parts:
        if part in ("", "."):
            continue
        if part == "..":
            return None
        parts.append(part)
    return "/".join(parts)


def decode_text(data: bytes) -> str | None:
    """`data` as text, or None for binary (a NUL byte, not UTF-8) or oversized content."""
    if len(data) > MAX_FILE_BYTES or b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class DirectorySource:
    """A folder on disk holding the reviewed revision (a checkout, or an eval scenario's snapshot)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _resolve(self, path: str) -> Path | None:
        clean = normalize_path(path)
        if clean is None:
            return None
        target = (self.root / clean).resolve()
        # A symlink pointing outside the folder is outside the repository: never follow it.
        if target != self.root and self.root not in target.parents:
            return None
        if ".git" in PurePosixPath(clean).parts:
            return None
        return target

    def read(self, path: str) -> str | None:
        target = self._resolve(path)
        if target is None or not target.is_file():
            return None
        try:
            if target.stat().st_size > MAX_FILE_BYTES:
                return None
            return decode_text(target.read_bytes())
        except OSError:
            return None

    def list_dir(self, folder: str) -> list[str]:
        target = self._resolve(folder)
        clean = normalize_path(folder)
        if target is None or clean is None or not target.is_dir():
            return []
        prefix = f"{clean}/" if clean else ""
        return sorted(
            prefix + entry.name for entry in target.iterdir()
            if entry.name != ".git" and entry.is_file() and self._resolve(prefix + entry.name) is not None
        )


class GitSourceError(RuntimeError):
    """`git` could not read the revision (not a repository, unknown revision)."""


class GitSource:
    """One commit of a local git repository, read with `git ls-tree` and `git cat-file` (no checkout).

    The tree is listed once (one `git ls-tree -r -l` call) so `list_dir` and sizes cost nothing more;
    blobs come through one long-lived `git cat-file --batch` (a process per read cost ~6 ms, a batch read
    ~0.1 ms). `close` ends that process; a source that is dropped closes it too.
    """

    def __init__(self, repo_dir: str | Path, rev: str = "HEAD") -> None:
        self.repo_dir = Path(repo_dir)
        self.rev = rev
        self._tree: dict[str, tuple[str, int]] | None = None  # path -> (blob id, size)
        self._folders: dict[str, list[str]] = {}
        self._commit: str | None = None
        self._batch: subprocess.Popen[bytes] | None = None

    @property
    def revision(self) -> str:
        """The commit id `rev` names (what caches key on: a branch name moves, a commit does not)."""
        if self._commit is None:
            self._commit = self._git("rev-parse", "--verify", f"{self.rev}^{{commit}}").decode().strip()
        return self._commit

    def _git(self, *args: str) -> bytes:
        done = subprocess.run(
            ["git", "-C", str(self.repo_dir), *args], capture_output=True, check=False, timeout=60
        )
        if done.returncode != 0:
            raise GitSourceError(
                f"git {' '.join(args)} failed in {self.repo_dir}: {done.stderr.decode(errors='replace').strip()}"
            )
        return done.stdout

    def _index(self) -> dict[str, tuple[str, int]]:
        if self._tree is None:
            tree: dict[str, tuple[str, int]] = {}
            # -z: paths verbatim (no quoting); -l: sizes, so oversized blobs are never fetched.
            for record in self._git("ls-tree", "-r", "-l", "-z", self.rev).split(b"\x00"):
                if not record:
                    continue
                meta, _, raw_path = record.partition(b"\t")
                mode, kind, blob, size = meta.split()
                if kind != b"blob" or mode == b"120000":  # submodules and symlinks are not file text
                    continue
                path = raw_path.decode("utf-8", errors="replace")
                tree[path] = (blob.decode(), int(size))
                folder = path.rpartition("/")[0]
                self._folders.setdefault(folder, []).append(path)
            self._tree = tree
        return self._tree

    def read(self, path: str) -> str | None:
        clean = normalize_path(path)
        entry = self._index().get(clean) if clean else None
        if entry is None or entry[1] > MAX_FILE_BYTES:
            return None
        return decode_text(self._blob(entry[0]))

    def _blob(self, blob_id: str) -> bytes:
        if self._batch is None or self._batch.poll() is not None:
            self._batch = subprocess.Popen(
                ["git", "-C", str(self.repo_dir), "cat-file", "--batch"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
        assert self._batch.stdin is not None and self._batch.stdout is not None
        self._batch.stdin.write(blob_id.encode() + b"\n")
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().split()  # "<id> blob <size>", or "<id> missing"
        if len(header) != 3:
            raise GitSourceError(f"git cat-file in {self.repo_dir} could not read blob {blob_id}: {header!r}")
        data = self._batch.stdout.read(int(header[2]))
        self._batch.stdout.read(1)  # the newline after each object
        return data

    def close(self) -> None:
        """End the `git cat-file` process (reads after this start a new one)."""
        batch, self._batch = self._batch, None
        if batch is not None:
            if batch.stdin is not None:
                batch.stdin.close()
            try:
                batch.wait(timeout=5)
            except subprocess.TimeoutExpired:
                batch.kill()
                batch.wait()
            if batch.stdout is not None:
                batch.stdout.close()

    def __del__(self) -> None:
        # At interpreter shutdown the pipes may be gone already; the process ends with us anyway.
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            self.close()

    def list_dir(self, folder: str) -> list[str]:
        clean = normalize_path(folder)
        if clean is None:
            return []
        self._index()
        return sorted(self._folders.get(clean, []))
