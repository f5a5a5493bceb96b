"""GitHub webhooks, sans-I/O: verify a delivery, parse it into a typed event, decide what to queue.

Everything here is a pure function of (headers, body, secret, policy); the HTTP server and the database
live in `app.server` and `app.store`. The decision for each event:

- `pull_request` opened / reopened / synchronize / ready_for_review on an open pull request → one review
  job that supersedes queued jobs of older head SHAs of the same pull request. Drafts are queued with
  `TriggerPolicy.queue_drafts` (the job then applies the repo's `.calora.yml`), skipped without it.
- `issue_comment` created on an open pull request whose body has a line `/review [names...]`, written by
  an allowed author association and not by a bot → one job, trigger "comment", with `comment_id`.
  The head SHA is not in that payload: the job carries `head_sha=""` and resolves the current head.
- `check_run` / `check_suite` rerequested → one job per attached pull request, trigger "rerequested".
- `installation` / `installation_repositories` → recorded. `ping` → pong. Anything else → ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.jobs import ReviewJobSpec
from reviewers.routing import REVIEWER_NAMES

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
SIGNATURE_PREFIX = "sha256="
MAX_DELIVERY_ID_CHARS = 200

PULL_REQUEST_ACTIONS: frozenset[str] = frozenset({"opened", "reopened", "synchronize", "ready_for_review"})
HANDLED_EVENTS: frozenset[str] = frozenset(
    {"pull_request", "issue_comment", "check_run", "check_suite", "installation",
     "installation_repositories", "ping"}
)


# --- errors: each maps to one HTTP status in the server -------------------------------------------------

class WebhookError(Exception):
    """A delivery the receiver refuses; `status_code` is what GitHub is answered."""

    status_code = 400


class SignatureMissingError(WebhookError):
    status_code = 401


class SignatureMismatchError(WebhookError):
    status_code = 401


class MalformedDeliveryError(WebhookError):
    status_code = 400


class UnknownReviewerError(ValueError):
    """`/review` named a reviewer that does not exist."""


# --- signature ------------------------------------------------------------------------------------------

def sign(body: bytes, secret: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` (tests and the bench sign with it)."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, signature: str | None, secret: bytes) -> None:
    """Raise unless `signature` is the HMAC-SHA256 of the raw body under `secret` (constant-time)."""
    if not secret:
        raise ValueError("the webhook secret is empty; refusing to accept unsigned deliveries")
    if not signature:
        raise SignatureMissingError(f"{SIGNATURE_HEADER} header is missing")
    if not signature.startswith(SIGNATURE_PREFIX):
        raise SignatureMismatchError(f"{SIGNATURE_HEADER} must start with {SIGNATURE_PREFIX!r}")
    if not hmac.compare_digest(signature.encode(), sign(body, secret).encode()):
        raise SignatureMismatchError(f"{SIGNATURE_HEADER} does not match the body")


# --- the delivery ---------------------------------------------------------------------------------------

class Delivery(BaseModel):
    """One verified webhook delivery: who GitHub says it is, and the decoded JSON object."""

    delivery_id: str
    event: str
    payload: dict[str, Any]

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def parse_delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    """Read the event name, delivery id and JSON object of a (verified) delivery."""
    event = (_header(headers, EVENT_HEADER) or "").strip()
    delivery_id = (_header(headers, DELIVERY_HEADER) or "").strip()
    if not event:
        raise MalformedDeliveryError(f"{EVENT_HEADER} header is missing")
    if not delivery_id:
        raise MalformedDeliveryError(f"{DELIVERY_HEADER} header is missing")
    if len(delivery_id) > MAX_DELIVERY_ID_CHARS or not delivery_id.isprintable():
        raise MalformedDeliveryError(f"{DELIVERY_HEADER} is not a delivery id (printable, at most "
                                     f"{MAX_DELIVERY_ID_CHARS} characters)")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedDeliveryError(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedDeliveryError(f"body is JSON {type(payload).__name__}, expected an object")
    return Delivery(delivery_id=delivery_id, event=event, payload=payload)


# --- typed subsets of GitHub's payloads -------------------------------------------------------------------

class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Account(_Payload):
    login: str
    type: str = "User"


class Repository(_Payload):
    name: str
    owner: Account


class InstallationRef(_Payload):
    id: int


class GitRef(_Payload):
    sha: str


class PullRequest(_Payload):
    number: int
    state: str
    draft: bool = False
    head: GitRef
    updated_at: datetime | None = None


class PullRequestEvent(_Payload):
    action: str
    pull_request: PullRequest
    repository: Repository
    installation: InstallationRef | None = None
    sender: Account
    before: str | None = None


class Issue(_Payload):
    number: int
    state: str
    pull_request: dict[str, Any] | None = None


class Comment(_Payload):
    id: int
    body: str | None = None
    user: Account
    author_association: str


class IssueCommentEvent(_Payload):
    action: str
    issue: Issue
    comment: Comment
    repository: Repository
    installation: InstallationRef | None = None
    sender: Account


class AttachedPullRequest(_Payload):
    number: int
    head: GitRef


class AppRef(_Payload):
    id: int


class CheckRun(_Payload):
    id: int
    head_sha: str
    app: AppRef | None = None
    pull_requests: list[AttachedPullRequest] = Field(default_factory=list)


class CheckRunEvent(_Payload):
    action: str
    check_run: CheckRun
    repository: Repository
    installation: InstallationRef | None = None
    sender: Account


class CheckSuite(_Payload):
    id: int
    head_sha: str
    updated_at: str | None = None
    app: AppRef | None = None
    pull_requests: list[AttachedPullRequest] = Field(default_factory=list)


class CheckSuiteEvent(_Payload):
    action: str
    check_suite: CheckSuite
    repository: Repository
    installation: InstallationRef | None = None
    sender: Account


class RepositoryName(_Payload):
    full_name: str


class Installation(_Payload):
    id: int
    account: Account
    repository_selection: str | None = None


class InstallationEvent(_Payload):
    action: str
    installation: Installation
    repositories: list[RepositoryName] | None = None


class InstallationRepositoriesEvent(_Payload):
    action: str
    installation: Installation
    repository_selection: str | None = None
    repositories_added: list[RepositoryName] = Field(default_factory=list)
    repositories_removed: list[RepositoryName] = Field(default_factory=list)


# --- decisions ----------------------------------------------------------------------------------------------

class QueueReviews(BaseModel):
    """Queue these jobs; with `supersede`, each one replaces queued jobs for older heads of its PR.

    `event_at` (the pull request's `updated_at`) orders pushes that GitHub delivered out of order: a late
    delivery of an older push supersedes nothing and is itself superseded by the newer job.
    """

    kind: Literal["queue"] = "queue"
    jobs: list[ReviewJobSpec]
    supersede: bool = False
    event_at: float | None = None


class InstallationChange(BaseModel):
    """What an installation event says about where the App is installed."""

    kind: Literal["installation"] = "installation"
    installation_id: int
    account: str
    action: str
    repository_selection: str | None = None
    repositories: list[str] | None = Field(default=None, description="The full list, when the event has it.")
    repositories_added: list[str] = Field(default_factory=list)
    repositories_removed: list[str] = Field(default_factory=list)


class Pong(BaseModel):
    kind: Literal["pong"] = "pong"
    zen: str = ""


class Ignore(BaseModel):
    kind: Literal["ignore"] = "ignore"
    reason: str


DeliveryDecision = QueueReviews | InstallationChange | Pong | Ignore


class TriggerPolicy(BaseModel):
    """Who may trigger a review and what is queued; built from `app.settings.Settings`."""

    model_config = ConfigDict(frozen=True)

    allowed_associations: frozenset[str] = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
    bot_login: str | None = None
    queue_drafts: bool = True
    app_id: int | None = None


# --- /review ----------------------------------------------------------------------------------------------

_COMMAND_LINE = re.compile(r"^[ \t]*/review(?:[ \t]+(?P<args>[^\r\n]*))?[ \t]*$", re.MULTILINE)


class ReviewCommand(BaseModel):
    """A `/review` line: `reviewers` None means every enabled reviewer."""

    reviewers: list[str] | None = None


def parse_review_command(body: str | None, known: Sequence[str] = REVIEWER_NAMES) -> ReviewCommand | None:
    """Find the first line `/review [names]`; None when the comment has no such line.

    Names are separated by spaces or commas, case-insensitive, `-` read as `_`; `all` means every reviewer.
    """
    match = _COMMAND_LINE.search((body or "").replace("\r\n", "\n").replace("\r", "\n"))
    if match is None:
        return None
    words = [word for word in re.split(r"[\s,]+", (match.group("args") or "").strip()) if word]
    names: list[str] = []
    for word in words:
        name = word.lower().replace("-", "_")
        if name == "all":
            return ReviewCommand(reviewers=None)
        if name not in known:
            raise UnknownReviewerError(f"unknown reviewer {word!r} in /review; known: {', '.join(known)}")
        if name not in names:
            names.append(name)
    return ReviewCommand(reviewers=names or None)


# --- deciding -----------------------------------------------------------------------------------------------

def decide(delivery: Delivery, policy: TriggerPolicy) -> DeliveryDecision:
    """What the receiver does with a verified delivery. Raises MalformedDeliveryError on bad shapes."""
    event, action = delivery.event, delivery.action
    if event not in HANDLED_EVENTS:
        return Ignore(reason=f"event {event!r} is not handled")
    if event == "ping":
        zen = delivery.payload.get("zen")
        return Pong(zen=zen if isinstance(zen, str) else "")
    try:
        if event == "pull_request":
            if action not in PULL_REQUEST_ACTIONS:
                return _ignored_action(event, action)
            return _decide_pull_request(delivery, PullRequestEvent.model_validate(delivery.payload), policy)
        if event == "issue_comment":
            if action != "created":
                return _ignored_action(event, action)
            return _decide_comment(delivery, IssueCommentEvent.model_validate(delivery.payload), policy)
        if event == "check_run":
            if action != "rerequested":
                return _ignored_action(event, action)
            run = CheckRunEvent.model_validate(delivery.payload)
            return _decide_rerun(delivery, run.check_run, run.check_run.id, run, policy)
        if event == "check_suite":
            if action != "rerequested":
                return _ignored_action(event, action)
            suite = CheckSuiteEvent.model_validate(delivery.payload)
            return _decide_rerun(delivery, suite.check_suite, None, suite, policy)
        if event == "installation":
            return _installation_change(InstallationEvent.model_validate(delivery.payload))
        return _installation_repositories_change(
            InstallationRepositoriesEvent.model_validate(delivery.payload))
    except ValidationError as exc:
        raise MalformedDeliveryError(
            f"{event} payload (action {action!r}) lacks what the receiver needs: "
            + "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()[:5])
        ) from None


def _ignored_action(event: str, action: str | None) -> Ignore:
    return Ignore(reason=f"{event} action {action!r} does not trigger a review")


def _no_installation(event: str) -> Ignore:
    return Ignore(reason=f"{event} delivery has no installation; the App reviews only where it is installed")


def _decide_pull_request(delivery: Delivery, event: PullRequestEvent, policy: TriggerPolicy) -> DeliveryDecision:
    pr = event.pull_request
    if event.installation is None:
        return _no_installation("pull_request")
    if pr.state != "open":
        return Ignore(reason=f"pull request #{pr.number} is {pr.state}")
    if pr.draft and not policy.queue_drafts:
        return Ignore(reason=f"pull request #{pr.number} is a draft and drafts are not queued")
    job = ReviewJobSpec(
        delivery_id=delivery.delivery_id,
        installation_id=event.installation.id,
        owner=event.repository.owner.login,
        repo=event.repository.name,
        pull_number=pr.number,
        head_sha=pr.head.sha,
        trigger=event.action,  # type: ignore[arg-type]  # one of PULL_REQUEST_ACTIONS
        requested_by=event.sender.login,
        before_sha=event.before if event.action == "synchronize" else None,
    )
    event_at = pr.updated_at.timestamp() if pr.updated_at is not None else None
    return QueueReviews(jobs=[job], supersede=True, event_at=event_at)


def is_bot(account: Account, bot_login: str | None) -> bool:
    """GitHub marks Apps' users as type Bot; the App's own login is matched with or without `[bot]`."""
    if account.type.lower() == "bot":
        return True
    if not bot_login:
        return False
    login, mine = account.login.lower(), bot_login.lower()
    return login in {mine, mine.removesuffix("[bot]"), f"{mine.removesuffix('[bot]')}[bot]"}


def _decide_comment(delivery: Delivery, event: IssueCommentEvent, policy: TriggerPolicy) -> DeliveryDecision:
    issue, comment = event.issue, event.comment
    if issue.pull_request is None:
        return Ignore(reason=f"comment on issue #{issue.number}, not on a pull request")
    try:
        command = parse_review_command(comment.body)
    except UnknownReviewerError as exc:
        return Ignore(reason=str(exc))
    if command is None:
        return Ignore(reason="comment has no /review command")
    if is_bot(comment.user, policy.bot_login) or is_bot(event.sender, policy.bot_login):
        return Ignore(reason=f"/review from bot {comment.user.login!r} is not obeyed")
    if comment.author_association.upper() not in policy.allowed_associations:
        return Ignore(reason=f"/review from {comment.user.login!r} ({comment.author_association}) is not "
                             f"obeyed; allowed: {', '.join(sorted(policy.allowed_associations))}")
    if event.installation is None:
        return _no_installation("issue_comment")
    if issue.state != "open":
        return Ignore(reason=f"pull request #{issue.number} is {issue.state}")
    job = ReviewJobSpec(
        delivery_id=delivery.delivery_id,
        installation_id=event.installation.id,
        owner=event.repository.owner.login,
        repo=event.repository.name,
        pull_number=issue.number,
        head_sha="",
        trigger="comment",
        reviewers=command.reviewers,
        requested_by=comment.user.login,
        comment_id=comment.id,
    )
    return QueueReviews(jobs=[job])


def _decide_rerun(
    delivery: Delivery,
    checks: CheckRun | CheckSuite,
    check_run_id: int | None,
    event: CheckRunEvent | CheckSuiteEvent,
    policy: TriggerPolicy,
) -> DeliveryDecision:
    name = delivery.event
    if event.installation is None:
        return _no_installation(name)
    if policy.app_id is not None and checks.app is not None and checks.app.id != policy.app_id:
        return Ignore(reason=f"{name} belongs to app {checks.app.id}, not this app ({policy.app_id})")
    if not checks.pull_requests:
        return Ignore(reason=f"{name} {checks.id} is not attached to a pull request")
    jobs = [
        ReviewJobSpec(
            delivery_id=delivery.delivery_id,
            installation_id=event.installation.id,
            owner=event.repository.owner.login,
            repo=event.repository.name,
            pull_number=pr.number,
            head_sha=checks.head_sha,
            trigger="rerequested",
            requested_by=event.sender.login,
            check_run_id=check_run_id,
            requested_at=checks.updated_at if isinstance(checks, CheckSuite) else None,
        )
        for pr in _unique_by_number(checks.pull_requests)
    ]
    return QueueReviews(jobs=jobs)


def _unique_by_number(prs: Iterable[AttachedPullRequest]) -> list[AttachedPullRequest]:
    seen: dict[int, AttachedPullRequest] = {}
    for pr in prs:
        seen.setdefault(pr.number, pr)
    return list(seen.values())


def _installation_change(event: InstallationEvent) -> InstallationChange:
    return InstallationChange(
        installation_id=event.installation.id,
        account=event.installation.account.login,
        action=event.action,
        repository_selection=event.installation.repository_selection,
        repositories=[repo.full_name for repo in event.repositories] if event.repositories is not None else None,
    )


def _installation_repositories_change(event: InstallationRepositoriesEvent) -> InstallationChange:
    return InstallationChange(
        installation_id=event.installation.id,
        account=event.installation.account.login,
        action=event.action,
        repository_selection=event.repository_selection or event.installation.repository_selection,
        repositories_added=[repo.full_name for repo in event.repositories_added],
        repositories_removed=[repo.full_name for repo in event.repositories_removed],
    )
