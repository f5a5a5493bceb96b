"""The App's `RepoSource`: one commit of the pull request's repository (the head for context, the base for
conventions), read through GitHub's contents API.

Retrieval (`reviewers.context`) is synchronous and runs in the review's worker thread (`run_pipeline` runs
under `asyncio.to_thread`), while the GitHub client lives on the job's event loop; each call below is one
`repos/get-content` request handed to that loop and waited for.

How a read is spent, cheapest first:
- the changed files' texts at the head, which the review fetched for the analyzers, are handed in (`known`);
- a folder is listed once per review; the listing names every file's blob sha and size, so a missing file
  costs nothing more, an oversized one is skipped without downloading it, and a folder that a listed folder
  above it lacks is known absent (the root is listed first: most imports name packages from outside);
- a blob whose text this process has already read (any review, any commit, any pull request) comes from
  `BLOB_CACHE`, an LRU keyed by blob sha: the same text is fetched once;
- otherwise the file is fetched (its JSON form carries the text, base64) and cached by its sha.

A review spends at most `RequestBudget.limit` requests (`CALORA_CONTEXT_MAX_REQUESTS`), shared by its
sources (the head for context, the base for conventions); past that a read gives None and the budget's
`notes` say so. Context only helps: a 404 is None, and any other failure (a 5xx after the client's retries,
a rate limit, a timeout) is None plus a note, never an exception that would fail the review.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from app.github_client import ContentEntry, GitHubError, PullRequestClient
from reviewers.context.source import MAX_FILE_BYTES, decode_text, normalize_path

log = logging.getLogger(__name__)

T = TypeVar("T")

CONTENTS_LISTING_LIMIT = 1000  # GitHub lists at most this many entries of one folder
REQUEST_WAIT_SECONDS = 120.0  # one request, the client's retries included; then the read goes without
DEFAULT_CACHE_CHARS = 32 * 1024 * 1024
_FAILED = object()  # a request that failed (the budget's notes say why)


class _BudgetSpent(Exception):
    """A read needed a request the budget no longer allows (caught by `read`/`list_dir`, counted once)."""


class BlobCache:
    """Texts by git blob sha, least recently used dropped first once `max_chars` is passed; thread-safe
    (jobs run side by side in threads). A blob that is not text is remembered as None."""

    def __init__(self, max_chars: int = DEFAULT_CACHE_CHARS) -> None:
        self.max_chars = max_chars
        self._items: OrderedDict[str, str | None] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, sha: str) -> tuple[bool, str | None]:
        """(found, text): found is False when the blob was never read."""
        with self._lock:
            if sha not in self._items:
                return False, None
            self._items.move_to_end(sha)
            return True, self._items[sha]

    def put(self, sha: str, text: str | None) -> None:
        size = len(text or "")
        if size > self.max_chars:
            return
        with self._lock:
            if sha in self._items:
                self._items.move_to_end(sha)
                return
            self._items[sha] = text
            self._chars += size
            while self._chars > self.max_chars:
                _old, dropped = self._items.popitem(last=False)
                self._chars -= len(dropped or "")

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._chars = 0


BLOB_CACHE = BlobCache()
"""The process's cache, shared by every review the worker runs."""


class RequestBudget:
    """The contents requests of one review: how many it may make, how many it made, what went without."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0
        self.reads_refused = 0  # reads (or listings) that went without a request the budget did not allow
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def take(self) -> bool:
        """One request, if the budget allows it."""
        with self._lock:
            if self.spent >= self.limit:
                return False
            self.spent += 1
            return True

    def refused(self) -> None:
        with self._lock:
            self.reads_refused += 1

    def failed(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    @property
    def notes(self) -> list[str]:
        """Why some context may be missing, for the review's notes: the budget bit, or GitHub failed."""
        out = []
        if self.reads_refused:
            out.append(f"repository context: the budget of {self.limit} GitHub contents request(s) per review "
                       f"was spent; {self.reads_refused} more read(s) went without (CALORA_CONTEXT_MAX_REQUESTS)")
        return out + [f"repository context: {error}" for error in self.errors]


class GitHubContentsSource:
    """One commit of the pull request's repository, read through `PullRequestClient.contents` within a
    review's budget."""

    def __init__(
        self,
        pr: PullRequestClient,
        ref: str,
        loop: asyncio.AbstractEventLoop,
        budget: RequestBudget,
        *,
        known: Mapping[str, str] | None = None,
        cache: BlobCache = BLOB_CACHE,
    ) -> None:
        self.pr, self.ref = pr, ref
        self.loop = loop
        self.budget = budget
        self.known = dict(known or {})  # texts of this commit the review already holds: read without a request
        self.cache = cache
        self._listings: dict[str, list[ContentEntry]] = {}  # folder -> entries ([]: no such folder)
        self._lock = threading.Lock()  # retrieval may read from several threads

    @property
    def revision(self) -> str:
        """The commit read (per-commit caches of the core, such as the repository profile, key on it)."""
        return self.ref

    # -- RepoSource

    def read(self, path: str) -> str | None:
        try:
            return self._read(path)
        except _BudgetSpent:
            self.budget.refused()
            return None

    def list_dir(self, folder: str) -> list[str]:
        clean = normalize_path(folder)
        if clean is None:
            return []
        try:
            entries = self._listing(clean)
        except _BudgetSpent:
            self.budget.refused()
            return []
        return sorted(e.path for e in entries or [] if e.type == "file")

    def _read(self, path: str) -> str | None:
        clean = normalize_path(path)
        if not clean:
            return None
        if clean in self.known:
            known = self.known[clean]
            return known if len(known.encode("utf-8")) <= MAX_FILE_BYTES else None
        folder = clean.rpartition("/")[0]
        entries = self._listing(folder)
        if entries is not None:
            entry = next((e for e in entries if e.path == clean), None)
            if entry is None and len(entries) < CONTENTS_LISTING_LIMIT:
                return None  # the whole folder is listed and the file is not in it
            if entry is not None:
                if entry.type != "file" or entry.size > MAX_FILE_BYTES:
                    return None
                found, text = self.cache.get(entry.sha)
                if found:
                    return text
        fetched = self._request(clean)
        if not isinstance(fetched, ContentEntry) or fetched.type != "file":
            return None  # absent, a folder, a symlink or a submodule, or the request failed
        if fetched.size > MAX_FILE_BYTES:
            return None
        data = fetched.data()
        text = decode_text(data) if data is not None else None
        if data is not None:
            self.cache.put(fetched.sha, text)
        return text

    # -- requests

    def _listing(self, folder: str) -> list[ContentEntry] | None:
        """The folder's entries ([] when there is no such folder); None when the request failed."""
        with self._lock:
            if folder in self._listings:
                return self._listings[folder]
        if folder and (self._listing("") is not None) and self._known_absent(folder):
            with self._lock:
                self._listings[folder] = []
            return []
        fetched = self._request(folder)
        if fetched is _FAILED:
            return None  # not remembered: a later read may ask again
        entries = fetched if isinstance(fetched, list) else []
        with self._lock:
            self._listings[folder] = entries
        return entries

    def _known_absent(self, folder: str) -> bool:
        """True when a folder above `folder` is listed whole and lacks the next folder down. Retrieval asks
        whether each imported module is a repository file (`django/http.py`, `src/django/http.py`): the root,
        listed once, answers most of those without a request each."""
        parts = folder.split("/")
        with self._lock:
            for depth in range(len(parts)):
                entries = self._listings.get("/".join(parts[:depth]))
                if entries is None or len(entries) >= CONTENTS_LISTING_LIMIT:
                    continue
                child = "/".join(parts[: depth + 1])
                if not any(e.path == child and e.type == "dir" for e in entries):
                    return True
        return False

    def _request(self, path: str) -> ContentEntry | list[ContentEntry] | None | object:
        """`get_contents(path)` on the job's loop; `_FAILED` when the request failed (the failure is noted).
        Raises `_BudgetSpent` when the budget allows no more requests."""
        self._refuse_the_loop_thread()
        if not self.budget.take():
            raise _BudgetSpent
        try:
            return self._wait(self.pr.contents(path, self.ref))
        except Exception as exc:  # noqa: BLE001 - context only helps: no failure of it may fail the review
            if isinstance(exc, concurrent.futures.TimeoutError):
                message = f"GitHub repos/get-content took over {REQUEST_WAIT_SECONDS:.0f} s"
            elif isinstance(exc, GitHubError):
                message = str(exc)
            else:
                message = f"GitHub repos/get-content: {type(exc).__name__}: {str(exc)[:200]}"
            log.warning("%s@%s: context %r not read: %s", self.pr.key, self.ref[:7], path, message)
            self.budget.failed(f"{path or '(root)'} not read: {message}")
            return _FAILED

    def _refuse_the_loop_thread(self) -> None:
        """Waiting on the loop from the loop's own thread would hang the job forever: say so instead."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self.loop:
            raise RuntimeError("GitHubContentsSource is synchronous: call it from a worker thread, "
                               "not from the event loop its GitHub client runs on")

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout=REQUEST_WAIT_SECONDS)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise
