"""The App's `RepoSource`: repository text at the pull request's head commit, through GitHub's contents API.

Retrieval (`reviewers.context`) is synchronous and runs in the review's worker thread (`run_pipeline` runs
under `asyncio.to_thread`), while the `GitHubClient` lives on the job's event loop; each call below is one
`repos/get-content` request handed to that loop and waited for.

How a read is spent, cheapest first:
- a folder is listed once per review; the listing names every file's blob sha and size, so a missing file
  costs nothing more, an oversized one is skipped without downloading it, and
- a blob whose text this process has already read (any review, any commit, any pull request) comes from
  `BLOB_CACHE`, an LRU keyed by blob sha: the same text is fetched once;
- otherwise the file is fetched (its JSON form carries the text, base64) and cached by its sha.

A review spends at most `max_requests` requests (`CALORA_CONTEXT_MAX_REQUESTS`); past that `read` gives None
and `notes` says so. Context only helps: a 404 is None, and any other failure (a 5xx after the client's
retries, a rate limit, a timeout) is None plus a note, never an exception that would fail the review.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from app.github_client import ContentEntry, GitHubClient, GitHubError
from reviewers.context.source import MAX_FILE_BYTES, decode_text, normalize_path

log = logging.getLogger(__name__)

T = TypeVar("T")

CONTENTS_LISTING_LIMIT = 1000  # GitHub lists at most this many entries of one folder
REQUEST_WAIT_SECONDS = 120.0  # one request, the client's retries included; then the read goes without
DEFAULT_CACHE_CHARS = 32 * 1024 * 1024
_WENT_WITHOUT = object()  # a request the budget or a failure did not let happen


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


BLOB_CACHE = BlobCache()
"""The process's cache, shared by every review the worker runs."""


class GitHubContentsSource:
    """One commit of one repository, read through `GitHubClient.get_contents`, within a request budget."""

    def __init__(
        self,
        gh: GitHubClient,
        owner: str,
        repo: str,
        ref: str,
        loop: asyncio.AbstractEventLoop,
        *,
        max_requests: int = 20,
        cache: BlobCache = BLOB_CACHE,
    ) -> None:
        self.gh, self.owner, self.repo, self.ref = gh, owner, repo, ref
        self.loop = loop
        self.max_requests = max_requests
        self.cache = cache
        self.requests = 0
        self.reads_over_budget = 0
        self._refused = 0  # requests the budget did not allow
        self.errors: list[str] = []
        self._listings: dict[str, list[ContentEntry]] = {}  # folder -> entries ([]: no such folder)
        self._lock = threading.Lock()  # retrieval may read from several threads

    # -- RepoSource

    def read(self, path: str) -> str | None:
        return self._counting_refusals(self._read, path)

    def list_dir(self, folder: str) -> list[str]:
        return self._counting_refusals(self._list_dir, folder)

    def _counting_refusals(self, call: Callable[[str], T], path: str) -> T:
        """`call(path)`, counted once in `reads_over_budget` when the budget refused any of its requests."""
        refused = self._refused
        try:
            return call(path)
        finally:
            if self._refused > refused:
                with self._lock:
                    self.reads_over_budget += 1

    def _read(self, path: str) -> str | None:
        clean = normalize_path(path)
        if not clean:
            return None
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
            return None  # absent, a folder, a symlink or a submodule, or the request went without
        if fetched.size > MAX_FILE_BYTES:
            return None
        data = fetched.data()
        text = decode_text(data) if data is not None else None
        if data is not None:
            self.cache.put(fetched.sha, text)
        return text

    def _list_dir(self, folder: str) -> list[str]:
        clean = normalize_path(folder)
        if clean is None:
            return []
        entries = self._listing(clean)
        return sorted(e.path for e in entries or [] if e.type == "file")

    # -- what the review's notes say

    @property
    def notes(self) -> list[str]:
        """Why some context may be missing: the budget bit, or GitHub failed on a read."""
        out = []
        if self.reads_over_budget:
            out.append(f"repository context: the budget of {self.max_requests} GitHub contents request(s) per "
                       f"review was spent; {self.reads_over_budget} more read(s) went without "
                       "(CALORA_CONTEXT_MAX_REQUESTS)")
        out += [f"repository context: {error}" for error in self.errors]
        return out

    # -- requests

    def _listing(self, folder: str) -> list[ContentEntry] | None:
        """The folder's entries ([] when there is no such folder); None when they could not be asked for."""
        with self._lock:
            if folder in self._listings:
                return self._listings[folder]
        fetched = self._request(folder)
        if fetched is _WENT_WITHOUT:
            return None  # not remembered: a later read may still ask
        entries = fetched if isinstance(fetched, list) else []
        with self._lock:
            self._listings[folder] = entries
        return entries

    def _request(self, path: str) -> ContentEntry | list[ContentEntry] | None | object:
        """`get_contents(path)` on the job's loop, counted against the budget; `_WENT_WITHOUT` when the
        budget is spent or the request failed (the failure is noted)."""
        with self._lock:
            if self.requests >= self.max_requests:
                self._refused += 1
                return _WENT_WITHOUT
            self.requests += 1
        self._refuse_the_loop_thread()
        try:
            return self._wait(self.gh.get_contents(self.owner, self.repo, path, self.ref))
        except Exception as exc:  # noqa: BLE001 - context only helps: no failure of it may fail the review
            if isinstance(exc, concurrent.futures.TimeoutError):
                message = f"GitHub repos/get-content took over {REQUEST_WAIT_SECONDS:.0f} s"
            elif isinstance(exc, GitHubError):
                message = str(exc)
            else:
                message = f"GitHub repos/get-content: {type(exc).__name__}: {str(exc)[:200]}"
            log.warning("%s/%s@%s: context %r not read: %s", self.owner, self.repo, self.ref[:7], path, message)
            with self._lock:
                self.errors.append(f"{path or '(root)'} not read: {message}")
            return _WENT_WITHOUT

    def _refuse_the_loop_thread(self) -> None:
        """Waiting on the loop from the loop's own thread would hang the job forever: say so instead."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self.loop:
            raise RuntimeError("GitHubContentsSource is synchronous: call it from a worker thread, "
                               "not from the event loop its GitHubClient runs on")

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout=REQUEST_WAIT_SECONDS)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

