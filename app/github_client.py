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

Every JSON response is read through a pydantic model of the part the review uses (`RESPONSE_MODELS`,
checked against GitHub's OpenAPI description by the tests): a response without a field the review needs
is a `GitHubResponseError` naming the field, never a `KeyError` deep in the review. `client.pull(owner,
repo, number)` gives a `PullRequestClient`, whose methods need no repository or number.
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
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
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


class GitHubResponseError(GitHubError):
    """GitHub answered, but not with what its API description promises: `fields` names what was wrong."""

    def __init__(self, operation: str, status: int | None, fields: list[str]):
        self.fields = fields
        super().__init__(operation, status, "unexpected response: " + "; ".join(fields))


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


# -- The REST responses, as far as the review reads them (names follow GitHub's OpenAPI schemas). A field
# -- required here is required (and not nullable) there too; tests/app/test_github_responses.py checks it.


class ApiAccount(BaseModel):
    """`simple-user` (the author of a pull request, comment or review)."""

    login: str


class ApiBranchTip(BaseModel):
    """A pull request's `head` or `base`: the branch and the commit it points at."""

    sha: str
    ref: str


class ApiPullRequest(BaseModel):
    """`pull-request` (pulls/get)."""

    number: int
    title: str
    body: str | None = None
    state: str
    draft: bool = False
    head: ApiBranchTip
    base: ApiBranchTip
    user: ApiAccount | None = None


class PullFile(BaseModel):
    """`diff-entry` (pulls/list-files): one changed file of a pull request."""

    filename: str
    status: str
    previous_filename: str | None = None
    additions: int = 0
    deletions: int = 0
    patch: str | None = Field(default=None, description="The file's hunks; GitHub omits it for large or binary files.")


class ApiReviewComment(BaseModel):
    """`pull-request-review-comment` (pulls/list-review-comments)."""

    id: int
    body: str
    path: str
    line: int | None = None
    user: ApiAccount | None = None


class ApiReview(BaseModel):
    """`pull-request-review` (pulls/list-reviews, pulls/create-review)."""

    id: int
    body: str


class ApiCheckRunApp(BaseModel):
    id: int


class ApiCheckRun(BaseModel):
    """`check-run` (checks/create, checks/list-for-ref's items)."""

    id: int
    head_sha: str
    status: str
    conclusion: str | None = None
    external_id: str | None = None
    app: ApiCheckRunApp | None = None


class ApiCheckRunList(BaseModel):
    """checks/list-for-ref."""

    check_runs: list[ApiCheckRun]


class ApiCommitMessage(BaseModel):
    message: str


class ApiCommit(BaseModel):
    """`commit` (a compare's commits)."""

    sha: str
    commit: ApiCommitMessage


class ApiCommitComparison(BaseModel):
    """`commit-comparison` (repos/compare-commits)."""

    status: Literal["diverged", "ahead", "behind", "identical"]
    commits: list[ApiCommit]


M = TypeVar("M", bound=BaseModel)


def read_response(operation: str, model: type[M], data: Any, status: int | None = None) -> M:
    """`data` as `model`; anything missing or of the wrong type is a `GitHubResponseError` naming it."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise GitHubResponseError(operation, status, _field_problems(exc)) from None


def read_items(operation: str, model: type[M], data: Any, status: int | None = None) -> list[M]:
    """A JSON list of `model` items (one page of a list operation)."""
    try:
        return TypeAdapter(list[model]).validate_python(data)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise GitHubResponseError(operation, status, _field_problems(exc)) from None


def _field_problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "(body)"
        problems.append(f"missing field {where}" if error["type"] == "missing" else f"{where}: {error['msg']}")
    return problems


def _json(operation: str, response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GitHubResponseError(operation, response.status_code, ["the body is not JSON"]) from None


class PullRequestInfo(BaseModel):
    """What the review uses of a pull request."""

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
    def of(cls, pull: ApiPullRequest) -> PullRequestInfo:
        return cls(
            number=pull.number, title=pull.title, body=pull.body or "", state=pull.state, draft=pull.draft,
            head_sha=pull.head.sha, head_ref=pull.head.ref, base_sha=pull.base.sha, base_ref=pull.base.ref,
            author=pull.user.login if pull.user else "",
        )


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


# The model each JSON operation's 2xx response is read with (a list operation: one item of its pages).
RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "pulls/get": ApiPullRequest,
    "pulls/list-files": PullFile,
    "pulls/list-review-comments": ApiReviewComment,
    "pulls/list-reviews": ApiReview,
    "pulls/create-review": ApiReview,
    "checks/create": ApiCheckRun,
    "checks/list-for-ref": ApiCheckRunList,
    "repos/compare-commits": ApiCommitComparison,
    "repos/get-content": ContentEntry,  # a file, or each entry of a folder
}


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

    def pull(self, owner: str, repo: str, number: int) -> PullRequestClient:
        """The operations of one pull request (and its repository), bound to it."""
        return PullRequestClient(self, owner, repo, number)

    # -- pull requests

    async def get_pull(self, owner: str, repo: str, number: int) -> PullRequestInfo:
        resp = await self._call("pulls/get", lambda: self._gh.rest.pulls.async_get(owner, repo, number))
        return PullRequestInfo.of(read_response("pulls/get", ApiPullRequest, _json("pulls/get", resp),
                                                resp.status_code))

    async def get_pull_diff(self, owner: str, repo: str, number: int) -> str:
        resp = await self._call(
            "pulls/get (diff)",
            lambda: self._gh.rest.pulls.async_get(owner, repo, number, headers={"Accept": DIFF_MEDIA_TYPE}),
        )
        return resp.text

    async def _all_pages(self, operation: str, model: type[M], fetch: Callable[[int], Awaitable[Any]]) -> list[M]:
        """Every item of a paginated list, read as `model`: `fetch(page)` asks for one page of PER_PAGE items."""
        items: list[M] = []
        page = 1
        while True:
            resp = await self._call(operation, lambda page=page: fetch(page))
            batch = read_items(operation, model, _json(operation, resp), resp.status_code)
            items.extend(batch)
            if len(batch) < PER_PAGE:
                return items
            page += 1

    async def list_pull_files(self, owner: str, repo: str, number: int) -> list[PullFile]:
        return await self._all_pages("pulls/list-files", PullFile, lambda page: self._gh.rest.pulls.async_list_files(
            owner, repo, number, per_page=PER_PAGE, page=page))

    async def list_review_comments(self, owner: str, repo: str, number: int) -> list[ReviewComment]:
        items = await self._all_pages("pulls/list-review-comments", ApiReviewComment, lambda page: (
            self._gh.rest.pulls.async_list_review_comments(owner, repo, number, per_page=PER_PAGE, page=page)))
        return [
            ReviewComment(id=item.id, body=item.body, path=item.path, line=item.line,
                          author=item.user.login if item.user else "")
            for item in items
        ]

    async def list_review_bodies(self, owner: str, repo: str, number: int) -> list[str]:
        """The bodies of every review on the pull request (to see whether a review already landed)."""
        items = await self._all_pages("pulls/list-reviews", ApiReview, lambda page: (
            self._gh.rest.pulls.async_list_reviews(owner, repo, number, per_page=PER_PAGE, page=page)))
        return [item.body for item in items]

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
                return read_response("pulls/create-review", ApiReview, _json("pulls/create-review", resp),
                                     resp.status_code).id
            except GitHubResponseError:
                raise  # the review was created: asking again would post it twice
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
        data = _json("repos/get-content", resp)
        if isinstance(data, list):
            return read_items("repos/get-content", ContentEntry, data, resp.status_code)
        return read_response("repos/get-content", ContentEntry, data, resp.status_code)

    async def compare(self, owner: str, repo: str, base: str, head: str) -> Comparison:
        resp = await self._call(
            "repos/compare-commits",
            lambda: self._gh.rest.repos.async_compare_commits(owner, repo, f"{base}...{head}", per_page=250),
        )
        comparison = read_response("repos/compare-commits", ApiCommitComparison,
                                   _json("repos/compare-commits", resp), resp.status_code)
        return Comparison(status=comparison.status,
                          commits=[(c.sha, _first_line(c.commit.message)) for c in comparison.commits])

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
        return read_response("checks/create", ApiCheckRun, _json("checks/create", resp), resp.status_code).id

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
        listed = read_response("checks/list-for-ref", ApiCheckRunList, _json("checks/list-for-ref", resp),
                               resp.status_code)
        return [
            CheckRunInfo(id=r.id, head_sha=r.head_sha, status=r.status, conclusion=r.conclusion,
                         external_id=r.external_id, app_id=r.app.id if r.app else None)
            for r in listed.check_runs
        ]

    # -- reactions

    async def add_reaction(self, owner: str, repo: str, comment_id: int, content: str = "eyes") -> None:
        await self._call(
            "reactions/create-for-issue-comment",
            lambda: self._gh.rest.reactions.async_create_for_issue_comment(
                owner, repo, comment_id, data={"content": content}  # type: ignore[arg-type]
            ),
        )


@dataclass(frozen=True)
class PullRequestClient:
    """One pull request's REST operations (and its repository's): owner, repository and number are bound
    once, so a review cannot ask about another pull request by mistake. Every call goes through the
    `GitHubClient`'s `_call` (its retries and errors)."""

    github: GitHubClient
    owner: str
    repo: str
    number: int

    @property
    def key(self) -> str:
        return f"{self.owner}/{self.repo}#{self.number}"

    async def get(self) -> PullRequestInfo:
        return await self.github.get_pull(self.owner, self.repo, self.number)

    async def diff(self) -> str:
        return await self.github.get_pull_diff(self.owner, self.repo, self.number)

    async def files(self) -> list[PullFile]:
        return await self.github.list_pull_files(self.owner, self.repo, self.number)

    async def review_comments(self) -> list[ReviewComment]:
        return await self.github.list_review_comments(self.owner, self.repo, self.number)

    async def review_bodies(self) -> list[str]:
        return await self.github.list_review_bodies(self.owner, self.repo, self.number)

    async def create_review(
        self, *, commit_id: str, body: str, event: Literal["COMMENT", "REQUEST_CHANGES"],
        comments: list[dict[str, Any]], landed: Callable[[], Awaitable[bool]] | None = None,
    ) -> int | None:
        return await self.github.create_review(self.owner, self.repo, self.number, commit_id=commit_id, body=body,
                                               event=event, comments=comments, landed=landed)

    async def file_text(self, path: str, ref: str) -> str | None:
        return await self.github.get_file_text(self.owner, self.repo, path, ref)

    async def contents(self, path: str, ref: str) -> ContentEntry | list[ContentEntry] | None:
        return await self.github.get_contents(self.owner, self.repo, path, ref)

    async def compare(self, base: str, head: str) -> Comparison:
        return await self.github.compare(self.owner, self.repo, base, head)

    async def compare_diff(self, base: str, head: str) -> str:
        return await self.github.compare_diff(self.owner, self.repo, base, head)

    async def check_runs(self, ref: str, *, name: str) -> list[CheckRunInfo]:
        return await self.github.list_check_runs(self.owner, self.repo, ref, name=name)

    async def create_check_run(self, *, name: str, head_sha: str, external_id: str = "") -> int:
        return await self.github.create_check_run(self.owner, self.repo, name=name, head_sha=head_sha,
                                                  external_id=external_id)

    async def update_check_run(self, check_run_id: int, data: dict[str, Any]) -> None:
        await self.github.update_check_run(self.owner, self.repo, check_run_id, data)

    async def add_reaction(self, comment_id: int, content: str = "eyes") -> None:
        await self.github.add_reaction(self.owner, self.repo, comment_id, content)


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

