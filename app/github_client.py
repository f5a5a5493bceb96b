"""The GitHub edge: githubkit calls the review job needs, with App auth and retries.

Authentication is githubkit's: the App's private key signs a JWT, the JWT buys an installation token,
and the token is cached (in a cache owned by the client factory) until a minute before it expires.
Every call goes through `GitHubClient._call`, which retries with tenacity: network errors and 5xx with
exponential back-off; 403/429 rate limits after the `Retry-After` / `x-ratelimit-reset` the response
names (`Retry-After` in seconds or as an HTTP date; capped: a longer wait raises `GitHubRateLimited`, a
`DeferJob`, and the queue runs the job again at the reset time without counting an attempt). 401, 403,
404, 410 and 422 raise `GitHubPermanentError`, a `PermanentJobError`: the job fails at once instead of
being retried. The sleeper is injectable so tests never sleep. Errors never carry tokens, keys or
request headers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Self, TypeVar

from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import (
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
)
from pydantic import BaseModel, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from app.jobs import DeferJob, PermanentJobError

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleeper = Callable[[float], Awaitable[None]]

DIFF_MEDIA_TYPE = "application/vnd.github.diff"
RAW_MEDIA_TYPE = "application/vnd.github.raw"
PER_PAGE = 100
DEFAULT_RATE_LIMIT_WAIT = 60.0  # GitHub: without a Retry-After, wait at least a minute
# Asking again cannot change these answers: bad credentials or an uninstalled App, no permission (a 403
# that is not a rate limit), gone, or a request GitHub refuses as invalid.
PERMANENT_STATUSES = frozenset({401, 403, 404, 410, 422})


class GitHubError(RuntimeError):
    """A GitHub call failed for good; `operation` names the REST operation, `status` the HTTP status."""

    def __init__(
        self, operation: str, status: int | None, message: str, errors: list[str] | None = None,
        transient: bool = False,
    ):
        self.operation = operation
        self.status = status
        self.errors = errors or []
        self.transient = transient  # a network error or 5xx: GitHub may or may not have acted on it
        where = f"HTTP {status}" if status is not None else "network error"
        detail = f" ({'; '.join(self.errors)})" if self.errors else ""
        super().__init__(f"GitHub {operation} failed: {where}: {message}{detail}")


class GitHubRateLimited(GitHubError, DeferJob):
    """GitHub asked to wait longer than this client is willing to sleep in one job: the job waits in the
    queue until `not_before` instead."""

    def __init__(self, operation: str, status: int, retry_after: float):
        self.retry_after = retry_after
        self.not_before = time.time() + retry_after
        super().__init__(operation, status, f"rate limited; GitHub asks to wait {retry_after:.0f} s")


class GitHubPermanentError(GitHubError, PermanentJobError):
    """GitHub refused the call in a way that asking again cannot change (see PERMANENT_STATUSES)."""


def rate_limit_wait(headers: Mapping[str, str], now: float) -> float:
    """Seconds a rate-limited response asks to wait: `Retry-After` (seconds or an HTTP date), else until
    `x-ratelimit-reset` (epoch seconds), else a minute. Never negative; an unreadable value means a minute."""
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        value = retry_after.strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            log.warning("GitHub sent an unreadable Retry-After %r; waiting a minute", value[:64])
            return DEFAULT_RATE_LIMIT_WAIT
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            log.warning("GitHub sent an unreadable x-ratelimit-reset %r; waiting a minute", reset[:64])
    return DEFAULT_RATE_LIMIT_WAIT


class _GitHub(GitHub):  # type: ignore[type-arg]
    """githubkit reads `Retry-After` with int(), which raises on the HTTP-date form GitHub may send."""

    def _extract_retry_after(self, response: Any) -> timedelta:
        return timedelta(seconds=rate_limit_wait(response.headers, time.time()))


class RetryPolicy(BaseModel):
    """How hard one call tries before giving up; the job queue retries whole jobs on top of this."""

    attempts: int = Field(default=5, ge=1)
    backoff_initial: float = Field(default=1.0, ge=0)
    backoff_max: float = Field(default=30.0, ge=0)
    max_rate_limit_wait: float = Field(default=120.0, ge=0)


# -- The small subsets of GitHub's objects the review needs.


class PullRequestInfo(BaseModel):
    number: int
    title: str = ""
    body: str = ""
    state: str = "open"
    draft: bool = False
    head_sha: str
    head_ref: str = ""
    base_sha: str
    base_ref: str
    author: str = ""

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> PullRequestInfo:
        return cls(
            number=data["number"],
            title=data.get("title") or "",
            body=data.get("body") or "",
            state=data.get("state") or "open",
            draft=bool(data.get("draft")),
            head_sha=data["head"]["sha"],
            head_ref=data["head"].get("ref") or "",
            base_sha=data["base"]["sha"],
            base_ref=data["base"]["ref"],
            author=(data.get("user") or {}).get("login") or "",
        )


class PullFile(BaseModel):
    filename: str
    status: str
    previous_filename: str | None = None
    additions: int = 0
    deletions: int = 0
    patch: str | None = Field(default=None, description="The file's hunks; GitHub omits it for large or binary files.")


def diff_from_files(files: list[PullFile]) -> tuple[str, list[str]]:
    """A git-style unified diff rebuilt from `pulls/list-files` rows, and the files that had no patch.

    GitHub refuses to render the diff of a very large pull request (HTTP 406 "too_large") but still
    lists its files with per-file patches, so the review can go on from those.
    """
    parts: list[str] = []
    missing: list[str] = []
    for f in files:
        old = f.previous_filename or f.filename
        if not f.patch:
            if f.status == "renamed" and f.additions == f.deletions == 0:  # moved, content unchanged
                parts.append(f"diff --git a/{old} b/{f.filename}\nsimilarity index 100%\n"
                             f"rename from {old}\nrename to {f.filename}\n")
            elif f.status != "removed":
                missing.append(f.filename)
            continue
        header = [f"diff --git a/{old} b/{f.filename}"]
        if f.status == "added":
            header += ["new file mode 100644", "--- /dev/null", f"+++ b/{f.filename}"]
        elif f.status == "removed":
            header += ["deleted file mode 100644", f"--- a/{old}", "+++ /dev/null"]
        else:
            if f.status == "renamed":
                header += [f"rename from {old}", f"rename to {f.filename}"]
            header += [f"--- a/{old}", f"+++ b/{f.filename}"]
        parts.append("\n".join(header) + "\n" + f.patch.rstrip("\n") + "\n")
    return "".join(parts), missing


class ReviewComment(BaseModel):
    id: int
    body: str = ""
    path: str = ""
    line: int | None = None
    author: str = ""


class CheckRunInfo(BaseModel):
    id: int
    head_sha: str
    status: str
    conclusion: str | None = None
    external_id: str | None = None
    app_id: int | None = None


class ContentEntry(BaseModel):
    """One item of `repos/get-content` (JSON form): a file with its base64 text, or an entry of a folder.

    GitHub leaves `content` out of folder entries and sends it empty (`encoding: none`) for files over
    1 MB, so `data()` is None then; `sha` is the git blob id, the same for the same text in any commit.
    """

    type: Literal["file", "dir", "symlink", "submodule"]
    path: str
    sha: str
    size: int = Field(default=0, ge=0)
    content: str | None = None
    encoding: str | None = None

    def data(self) -> bytes | None:
        """The file's bytes, or None when GitHub did not send them."""
        if self.type != "file" or self.encoding != "base64" or self.content is None:
            return None
        try:
            return base64.b64decode(self.content)
        except (binascii.Error, ValueError):
            return None


class Comparison(BaseModel):
    status: Literal["diverged", "ahead", "behind", "identical"]
    commits: list[tuple[str, str]] = Field(default_factory=list, description="(sha, first line of message)")


# -- Retry decisions (pure functions of the exception).


def unwrap(exc: BaseException) -> BaseException:
    """The real failure: githubkit wraps errors raised inside the auth flow (the token request)."""
    while isinstance(exc, RequestError) and not isinstance(exc, RequestFailed) and isinstance(
        exc.exc, GitHubException
    ):
        exc = exc.exc
    return exc


def _status(exc: BaseException | None) -> int | None:
    exc = unwrap(exc) if exc is not None else None
    return exc.response.status_code if isinstance(exc, RequestFailed) else None


def is_transient(exc: BaseException, policy: RetryPolicy) -> bool:
    """Retry network errors, 5xx, and rate limits whose wait fits under the cap."""
    exc = unwrap(exc)
    if isinstance(exc, RateLimitExceeded):
        return exc.retry_after.total_seconds() <= policy.max_rate_limit_wait
    if isinstance(exc, RequestFailed):
        status = exc.response.status_code
        return status >= 500 or status == 429
    return isinstance(exc, RequestError)  # timeouts and connection errors


def wait_seconds(exc: BaseException | None, attempt: int, policy: RetryPolicy) -> float:
    """Rate limits wait what GitHub says; everything else backs off exponentially."""
    exc = unwrap(exc) if exc is not None else None
    if isinstance(exc, RateLimitExceeded):
        return min(exc.retry_after.total_seconds(), policy.max_rate_limit_wait)
    return min(policy.backoff_initial * 2 ** max(attempt - 1, 0), policy.backoff_max)


def _error_message(exc: BaseException) -> tuple[str, list[str]]:
    exc = unwrap(exc)
    if isinstance(exc, RequestFailed):
        try:
            data = exc.response.json()
        except Exception:  # noqa: BLE001 - a non-JSON error page
            return exc.response.reason_phrase or "error", []
        if isinstance(data, dict):
            errors = [
                e if isinstance(e, str) else str(e.get("message") or e.get("code") or e)
                for e in data.get("errors") or []
            ]
            return str(data.get("message") or "error"), errors
        return "error", []
    if isinstance(exc, RequestError):
        return type(exc.exc).__name__, []
    return type(exc).__name__, []


def _first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return lines[0] if lines else ""


class GitHubClient:
    """The REST operations of one installation, each retried per `RetryPolicy`."""

    def __init__(self, gh: GitHub[Any], *, retry: RetryPolicy | None = None, sleeper: Sleeper = asyncio.sleep):
        self._gh = gh
        self._retry = retry or RetryPolicy()
        self._sleep = sleeper

    async def __aenter__(self) -> Self:
        """Hold one HTTP connection pool for a whole job (githubkit otherwise opens one per request)."""
        await self._gh.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._gh.__aexit__(*exc)  # type: ignore[arg-type]

    async def _call(
        self, operation: str, request: Callable[[], Awaitable[T]], *, retry_server_errors: bool = True
    ) -> T:
        """Run `request` with retries. Without `retry_server_errors` only rate limits are retried here:
        for a write that must not happen twice, the caller decides after checking what landed."""
        policy = self._retry

        def should_retry(exc: BaseException) -> bool:
            if not retry_server_errors and not isinstance(unwrap(exc), RateLimitExceeded):
                return False
            return is_transient(exc, policy)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return wait_seconds(exc, state.attempt_number, policy)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "GitHub %s: %s; retrying (attempt %d of %d)",
                operation, f"HTTP {_status(exc)}" if _status(exc) else type(exc).__name__,
                state.attempt_number + 1, policy.attempts,
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(should_retry),
            wait=wait,
            stop=stop_after_attempt(policy.attempts),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        async def attempt() -> T:
            return await request()

        try:
            return await retrying(attempt)
        except GitHubException as exc:
            real = unwrap(exc)
            if isinstance(real, RateLimitExceeded):
                raise GitHubRateLimited(
                    operation, real.response.status_code, real.retry_after.total_seconds()
                ) from None
            message, errors = _error_message(real)
            status = _status(real)
            if status in (403, 429) and "rate limit" in message.lower():  # a secondary limit without headers
                raise GitHubRateLimited(operation, status, DEFAULT_RATE_LIMIT_WAIT) from None
            if status in PERMANENT_STATUSES:
                raise GitHubPermanentError(operation, status, message, errors) from None
            transient = is_transient(real, policy) and not isinstance(real, RateLimitExceeded)
            raise GitHubError(operation, status, message, errors, transient=transient) from None

    # -- pull requests

    async def get_pull(self, owner: str, repo: str, number: int) -> PullRequestInfo:
        resp = await self._call("pulls/get", lambda: self._gh.rest.pulls.async_get(owner, repo, number))
        return PullRequestInfo.from_api(resp.json())

    async def get_pull_diff(self, owner: str, repo: str, number: int) -> str:
        resp = await self._call(
            "pulls/get (diff)",
            lambda: self._gh.rest.pulls.async_get(owner, repo, number, headers={"Accept": DIFF_MEDIA_TYPE}),
        )
        return resp.text

    async def _all_pages(self, operation: str, fetch: Callable[[int], Awaitable[Any]]) -> list[dict]:
        """Every item of a paginated list: `fetch(page)` asks for one page of PER_PAGE items."""
        items: list[dict] = []
        page = 1
        while True:
            batch = (await self._call(operation, lambda page=page: fetch(page))).json()
            items.extend(batch)
            if len(batch) < PER_PAGE:
                return items
            page += 1

    async def list_pull_files(self, owner: str, repo: str, number: int) -> list[PullFile]:
        items = await self._all_pages("pulls/list-files", lambda page: self._gh.rest.pulls.async_list_files(
            owner, repo, number, per_page=PER_PAGE, page=page))
        return [PullFile.model_validate(item) for item in items]

    async def list_review_comments(self, owner: str, repo: str, number: int) -> list[ReviewComment]:
        items = await self._all_pages("pulls/list-review-comments", lambda page: (
            self._gh.rest.pulls.async_list_review_comments(owner, repo, number, per_page=PER_PAGE, page=page)))
        return [
            ReviewComment(
                id=item["id"], body=item.get("body") or "", path=item.get("path") or "",
                line=item.get("line"), author=(item.get("user") or {}).get("login") or "",
            )
            for item in items
        ]

    async def list_review_bodies(self, owner: str, repo: str, number: int) -> list[str]:
        """The bodies of every review on the pull request (to see whether a review already landed)."""
        items = await self._all_pages("pulls/list-reviews", lambda page: self._gh.rest.pulls.async_list_reviews(
            owner, repo, number, per_page=PER_PAGE, page=page))
        return [item.get("body") or "" for item in items]

    async def create_review(
        self,
        owner: str,
        repo: str,
        number: int,
        *,
        commit_id: str,
        body: str,
        event: Literal["COMMENT", "REQUEST_CHANGES"],
        comments: list[dict[str, Any]],
        landed: Callable[[], Awaitable[bool]] | None = None,
    ) -> int | None:
        """Post one review, at most once. The bot never approves: any other event is refused here.

        A 5xx or a dropped connection does not say whether GitHub created the review, so before trying
        again `landed()` looks for it; when it is there, nothing is posted again and None is returned.
        """
        if event not in ("COMMENT", "REQUEST_CHANGES"):
            raise ValueError(f"refusing review event {event!r}: the bot only comments or requests changes")
        data: dict[str, Any] = {"commit_id": commit_id, "body": body, "event": event}
        if comments:
            data["comments"] = comments
        for attempt in range(1, self._retry.attempts + 1):
            try:
                resp = await self._call(
                    "pulls/create-review",
                    lambda: self._gh.rest.pulls.async_create_review(owner, repo, number, data=data),  # type: ignore[arg-type]
                    retry_server_errors=False,
                )
                return int(resp.json()["id"])
            except GitHubError as exc:
                if not exc.transient or attempt == self._retry.attempts:
                    raise
                if landed is not None and await landed():
                    log.warning("GitHub pulls/create-review: %s, but the review was created; not posting again", exc)
                    return None
                delay = wait_seconds(None, attempt, self._retry)
                log.warning("GitHub pulls/create-review: HTTP %s; retrying in %.0f s", exc.status, delay)
                await self._sleep(delay)
        raise AssertionError("unreachable")

    # -- repository contents

    async def get_file_text(self, owner: str, repo: str, path: str, ref: str) -> str | None:
        """A file's text at `ref`, or None when it does not exist there (404) or is not text."""
        try:
            resp = await self._call(
                "repos/get-content",
                lambda: self._gh.rest.repos.async_get_content(
                    owner, repo, path, ref=ref, headers={"Accept": RAW_MEDIA_TYPE}
                ),
            )
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise
        try:
            return resp.content.decode("utf-8")
        except UnicodeDecodeError:
            return None

    async def get_contents(
        self, owner: str, repo: str, path: str, ref: str
    ) -> ContentEntry | list[ContentEntry] | None:
        """`path` at `ref` as `repos/get-content` describes it: a file's entry (blob sha, size, base64
        text) or a folder's entries; None when nothing is there (404). Other failures raise GitHubError."""
        try:
            resp = await self._call(
                "repos/get-content", lambda: self._gh.rest.repos.async_get_content(owner, repo, path, ref=ref)
            )
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise
        data = resp.json()
        if isinstance(data, list):
            return [ContentEntry.model_validate(item) for item in data]
        return ContentEntry.model_validate(data)

    async def compare(self, owner: str, repo: str, base: str, head: str) -> Comparison:
        resp = await self._call(
            "repos/compare-commits",
            lambda: self._gh.rest.repos.async_compare_commits(owner, repo, f"{base}...{head}", per_page=250),
        )
        data = resp.json()
        commits = [
            (c["sha"], _first_line((c.get("commit") or {}).get("message") or ""))
            for c in data.get("commits") or []
        ]
        return Comparison(status=data["status"], commits=commits)

    async def compare_diff(self, owner: str, repo: str, base: str, head: str) -> str:
        resp = await self._call(
            "repos/compare-commits (diff)",
            lambda: self._gh.rest.repos.async_compare_commits(
                owner, repo, f"{base}...{head}", headers={"Accept": DIFF_MEDIA_TYPE}
            ),
        )
        return resp.text

    # -- check runs

    async def create_check_run(
        self, owner: str, repo: str, *, name: str, head_sha: str, external_id: str = ""
    ) -> int:
        data: dict[str, Any] = {"name": name, "head_sha": head_sha, "status": "queued"}
        if external_id:
            data["external_id"] = external_id
        resp = await self._call(
            "checks/create", lambda: self._gh.rest.checks.async_create(owner, repo, data=data)  # type: ignore[arg-type]
        )
        return int(resp.json()["id"])

    async def update_check_run(self, owner: str, repo: str, check_run_id: int, data: dict[str, Any]) -> None:
        await self._call(
            "checks/update",
            lambda: self._gh.rest.checks.async_update(owner, repo, check_run_id, data=data),  # type: ignore[arg-type]
        )

    async def list_check_runs(self, owner: str, repo: str, ref: str, *, name: str) -> list[CheckRunInfo]:
        resp = await self._call(
            "checks/list-for-ref",
            lambda: self._gh.rest.checks.async_list_for_ref(
                owner, repo, ref, check_name=name, filter_="all", per_page=PER_PAGE
            ),
        )
        runs = resp.json().get("check_runs") or []
        return [
            CheckRunInfo(
                id=r["id"], head_sha=r["head_sha"], status=r["status"], conclusion=r.get("conclusion"),
                external_id=r.get("external_id"), app_id=(r.get("app") or {}).get("id"),
            )
            for r in runs
        ]

    # -- reactions

    async def add_reaction(self, owner: str, repo: str, comment_id: int, content: str = "eyes") -> None:
        await self._call(
            "reactions/create-for-issue-comment",
            lambda: self._gh.rest.reactions.async_create_for_issue_comment(
                owner, repo, comment_id, data={"content": content}  # type: ignore[arg-type]
            ),
        )


@dataclass
class GitHubAppClients:
    """Makes a `GitHubClient` per installation; all share one token cache, so tokens are reused."""

    app_id: int
    private_key: str = field(repr=False)
    base_url: str = "https://api.github.com"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleeper: Sleeper = asyncio.sleep
    timeout: float = 30.0
    _cache: MemCacheStrategy = field(default_factory=MemCacheStrategy, repr=False)
    _tls: ssl.SSLContext | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.base_url.endswith("/"):
            self.base_url += "/"

    def for_installation(self, installation_id: int) -> GitHubClient:
        auth = AppAuthStrategy(app_id=self.app_id, private_key=self.private_key).as_installation(installation_id)
        if self._tls is None:  # loading the CA bundle costs ~0.2 s: once per process, not per request
            self._tls = ssl.create_default_context()
        gh = _GitHub(
            auth,
            base_url=self.base_url,
            ssl_verify=self._tls,
            cache_strategy=self._cache,
            http_cache=False,
            auto_retry=False,
            timeout=self.timeout,
            user_agent="calora-review-bot",
        )
        return GitHubClient(gh, retry=self.retry, sleeper=self.sleeper)

    __call__ = for_installation

