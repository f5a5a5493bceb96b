"""One review job, end to end: pull request → config → diff → pipeline → check run and review.

This is the I/O shell around the pure core: GitHub calls go through `GitHubClient`, the review through
`reviewers.pipeline.run_pipeline` (in a thread, it is synchronous), and every decision about what to
post is made by `app.publishing`. The worker (app.worker) calls `run_review` per job and, after a
job's last failed attempt, `conclude_failure`.

A run is safe to repeat: it reuses its unfinished check run, and a review never reposts a comment
whose fingerprint is already on the pull request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from app.github_client import (
    CheckRunInfo,
    GitHubAppClients,
    GitHubClient,
    GitHubError,
    PullRequestInfo,
    diff_from_files,
)
from app.jobs import ReviewJobSpec
from app.publishing import (
    Annotation,
    Coverage,
    Publication,
    annotation_batches,
    extract_fingerprints,
    filter_diff,
    map_diff,
    move_to_summary,
    plan_publication,
    truncate_text,
)
from app.repo_config import CONFIG_PATH, RepoConfig, RepoConfigError, parse_repo_config
from app.review_outputs import ReviewOutputs
from app.settings import Settings
from app.store import Store
from reviewers.backends.base import ReviewerBackend
from reviewers.routing import route_file
from reviewers.safe_text import code_fence, redact
from reviewers.slicing import SliceLimits
from reviewers.unified_diff import ParsedDiff, parse_unified_diff

if TYPE_CHECKING:
    from reviewers.pipeline import PipelineRun

log = logging.getLogger(__name__)

CHECK_NAME = "Calora review"
REVIEWED_MARK = "calora-reviewed:"
PUSH_TRIGGERS = frozenset({"opened", "reopened", "synchronize", "ready_for_review"})
MAX_TASK_CHARS = 4000


@dataclass
class ReviewContext:
    """What every review job shares: GitHub clients per installation, the reviewer backend, settings."""

    clients: Callable[[int], GitHubClient]
    backend: ReviewerBackend
    settings: Settings
    check_name: str = CHECK_NAME
    limits: SliceLimits | None = None
    max_content_files: int = 40
    content_concurrency: int = 4
    store: Store | None = None  # keeps what each run produced beside its job row (the console reads it)

    def github(self, installation_id: int) -> GitHubClient:
        return self.clients(installation_id)


class ReviewOutcome(BaseModel):
    """What one run did, for the worker's log and `calora jobs`."""

    status: Literal["reviewed", "skipped", "config_error", "stale"]
    reason: str = ""
    head_sha: str = ""
    check_run_id: int | None = None
    conclusion: str | None = None
    review_id: int | None = None
    inline_comments: int = 0
    summary_findings: int = 0
    duplicates: int = 0
    rejected_comments: int = 0
    incremental: bool = False
    covered_commits: list[str] = Field(default_factory=list)


def build_context(settings: Settings) -> ReviewContext:
    """The production context: App credentials from the settings and the configured reviewer backend."""
    app_id, private_key = settings.app_credentials()
    clients = GitHubAppClients(app_id=app_id, private_key=private_key, base_url=settings.github_api_url)
    return ReviewContext(
        clients=clients.for_installation, backend=make_reviewer_backend(settings), settings=settings,
        store=Store.from_url(settings.database_url),
    )


def make_reviewer_backend(settings: Settings) -> ReviewerBackend:
    """The reviewer backend the settings name (CALORA_BACKEND and friends; the core's factory builds it)."""
    from reviewers.backends.factory import make_backend

    return make_backend(settings.reviewer)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _secrets(ctx: ReviewContext) -> list[str]:
    found = []
    if ctx.settings.webhook_secret is not None:
        found.append(ctx.settings.webhook_secret.get_secret_value())
    if ctx.settings.reviewer.openai_api_key is not None:
        found.append(ctx.settings.reviewer.openai_api_key.get_secret_value())
    return found


# ---------------------------------------------------------------------------------------------
# Check runs


def _ours(run: CheckRunInfo, ctx: ReviewContext) -> bool:
    """A check run of this App (another App could use the same check name)."""
    return ctx.settings.app_id is None or run.app_id in (None, ctx.settings.app_id)


async def _open_check_run(gh: GitHubClient, spec: ReviewJobSpec, ctx: ReviewContext, head_sha: str) -> int:
    """Reuse an unfinished check run of ours on this commit (an earlier attempt), else create one.

    A re-run ("Re-run" button, `spec.check_run_id`) gets a new check run, as GitHub expects: the old
    one is completed and keeps its result.
    """
    for run in await gh.list_check_runs(spec.owner, spec.repo, head_sha, name=ctx.check_name):
        if _ours(run, ctx) and run.status != "completed":
            return run.id
    return await gh.create_check_run(
        spec.owner, spec.repo, name=ctx.check_name, head_sha=head_sha, external_id=f"delivery:{spec.delivery_id}"
    )


async def _complete_check_run(
    gh: GitHubClient,
    spec: ReviewJobSpec,
    check_run_id: int,
    *,
    conclusion: str,
    title: str,
    summary: str,
    text: str = "",
    annotations: list[Annotation] | None = None,
    external_id: str | None = None,
    secrets: list[str] | tuple[str, ...] = (),
) -> None:
    """Complete with the first 50 annotations, then append the rest 50 at a time (the API's limit).

    One of the two exit points of text to GitHub (with `_post_review`): everything is redacted here.
    """
    title, summary, text = (redact(t, secrets) for t in (title, summary, text))
    output: dict[str, Any] = {"title": title, "summary": summary}
    if text:
        output["text"] = text
    batches = [
        [{**a.to_api(), "title": redact(a.title, secrets), "message": redact(a.message, secrets)} for a in batch]
        for batch in annotation_batches(annotations or [])
    ]
    if batches:
        output["annotations"] = batches[0]
    data: dict[str, Any] = {"status": "completed", "conclusion": conclusion, "completed_at": _now(), "output": output}
    if external_id:
        data["external_id"] = external_id
    await gh.update_check_run(spec.owner, spec.repo, check_run_id, data)
    for batch in batches[1:]:
        await gh.update_check_run(
            spec.owner, spec.repo, check_run_id,
            {"output": {"title": title, "summary": summary, "annotations": batch}},
        )


# ---------------------------------------------------------------------------------------------
# What to review: the whole pull request, or only what changed since the last reviewed commit.


async def _last_reviewed_sha(gh: GitHubClient, spec: ReviewJobSpec, ctx: ReviewContext) -> str | None:
    """`before_sha` when our check run on it finished a real review (its external id says so)."""
    if not spec.before_sha:
        return None
    runs = await gh.list_check_runs(spec.owner, spec.repo, spec.before_sha, name=ctx.check_name)
    for run in runs:
        if _ours(run, ctx) and run.status == "completed" and (run.external_id or "").startswith(REVIEWED_MARK):
            return spec.before_sha
    return None


async def _diff_to_review(
    gh: GitHubClient, spec: ReviewJobSpec, ctx: ReviewContext, pull: PullRequestInfo, config: RepoConfig,
    pr_diff: ParsedDiff,
) -> tuple[ParsedDiff, Coverage]:
    coverage = Coverage(head_sha=pull.head_sha)
    if spec.trigger != "synchronize" or not config.incremental:
        return pr_diff, coverage
    since = await _last_reviewed_sha(gh, spec, ctx)
    if since is None:
        return pr_diff, coverage
    try:
        comparison = await gh.compare(spec.owner, spec.repo, since, pull.head_sha)
    except GitHubError as exc:
        if exc.status == 404:  # force-pushed away: review everything
            return pr_diff, coverage
        raise
    if comparison.status != "ahead":
        return pr_diff, coverage  # a force push or a rebase: the old review does not cover a prefix
    push_diff = parse_unified_diff(await gh.compare_diff(spec.owner, spec.repo, since, pull.head_sha))
    in_pr = set(pr_diff.paths())
    # Only files of the pull request: a merge of the base branch brings others that are not the author's.
    push_diff, _outside = filter_diff(push_diff, lambda path: path in in_pr)
    return push_diff, Coverage(
        head_sha=pull.head_sha, incremental=True, since_sha=since, commits=comparison.commits
    )


async def _pull_diff(gh: GitHubClient, spec: ReviewJobSpec) -> tuple[str, list[str]]:
    """The pull request's diff; when GitHub will not render it (too large), rebuilt from the file list."""
    try:
        return await gh.get_pull_diff(spec.owner, spec.repo, spec.pull_number), []
    except GitHubError as exc:
        if exc.status not in (406, 422):
            raise
        log.info("%s: GitHub refused the whole diff (%s); using the paginated file list", spec.pr_key, exc)
    files = await gh.list_pull_files(spec.owner, spec.repo, spec.pull_number)
    return diff_from_files(files)


async def _file_contents(
    gh: GitHubClient, spec: ReviewJobSpec, ctx: ReviewContext, diff: ParsedDiff, head_sha: str,
    reviewers: tuple[str, ...],
) -> dict[str, str]:
    """Full new contents of the reviewed files, for the checks (at most `max_content_files`)."""
    removed = set(diff.removed_paths())
    paths = [p for p in diff.paths() if p not in removed and route_file(p, reviewers).reviewers]
    paths = paths[: ctx.max_content_files]
    gate = asyncio.Semaphore(ctx.content_concurrency)

    async def one(path: str) -> tuple[str, str | None]:
        async with gate:
            return path, await gh.get_file_text(spec.owner, spec.repo, path, head_sha)

    found = await asyncio.gather(*(one(p) for p in paths))
    return {path: text for path, text in found if text is not None}


# ---------------------------------------------------------------------------------------------
# Posting the review, surviving a 422 on one comment.


async def _post_review(
    gh: GitHubClient, spec: ReviewJobSpec, head_sha: str, publication: Publication,
    secrets: list[str] | tuple[str, ...] = (),
) -> tuple[int | None, Publication, int]:
    """Post the review; when GitHub refuses a comment (422), move that comment to the summary and retry.

    One of the two exit points of text to GitHub (with `_complete_check_run`): bodies are redacted here.

    GitHub's 422 does not say which comment it refused, so after a refusal the review is tried without
    one comment at a time, least important first (a refused review posts nothing, so trying is safe).
    If no single comment explains it, every inline comment goes to the summary.
    """
    if not publication.posts_review:
        return None, publication, 0

    async def attempt(pub: Publication) -> int | None:
        async def landed() -> bool:
            bodies = await gh.list_review_bodies(spec.owner, spec.repo, spec.pull_number)
            return any(pub.review_marker in body for body in bodies)

        return await gh.create_review(
            spec.owner, spec.repo, spec.pull_number, commit_id=head_sha, body=redact(pub.review_body(), secrets),
            event=pub.event, comments=[{**c.to_api(), "body": redact(c.body, secrets)} for c in pub.comments],
            landed=landed,
        )

    try:
        return await attempt(publication), publication, 0
    except GitHubError as exc:
        if exc.status != 422 or not publication.comments or _mentions_commit(exc):
            raise
        first_error = exc
    detail = "; ".join(first_error.errors) or str(first_error)
    log.warning("%s: GitHub refused the review (%s); looking for the comment it refused", spec.pr_key, detail)
    for comment in reversed(publication.comments):
        candidate = move_to_summary(publication, {comment.fingerprint}, detail)
        if not candidate.posts_review:
            break
        try:
            return await attempt(candidate), candidate, 1
        except GitHubError as exc:
            if exc.status != 422:
                raise
    everything = move_to_summary(publication, {c.fingerprint for c in publication.comments}, detail)
    if not everything.posts_review:
        return None, everything, len(publication.comments)
    return await attempt(everything), everything, len(publication.comments)


def _mentions_commit(exc: GitHubError) -> bool:
    return any("commit" in e.lower() for e in exc.errors)


# ---------------------------------------------------------------------------------------------
# The job


async def run_review(spec: ReviewJobSpec, ctx: ReviewContext) -> ReviewOutcome:
    """Review one pull request at its head commit and publish the result (idempotent per commit)."""
    store = ctx.store
    if store is not None:
        await asyncio.to_thread(store.record_stage, spec, "started")
    ran: list[PipelineRun] = []
    async with ctx.github(spec.installation_id) as gh:
        outcome = await _review(gh, spec, ctx, ran)
    if store is not None:
        await asyncio.to_thread(store.record_outputs, spec, ReviewOutputs.of(ran[-1] if ran else None, outcome))
    return outcome


async def _review(
    gh: GitHubClient, spec: ReviewJobSpec, ctx: ReviewContext, ran: list[PipelineRun] | None = None
) -> ReviewOutcome:
    if spec.comment_id is not None:
        try:
            await gh.add_reaction(spec.owner, spec.repo, spec.comment_id, "eyes")
        except GitHubError as exc:  # an acknowledgement only: never worth failing the review for
            log.warning("%s: could not add the 👀 reaction: %s", spec.pr_key, exc)
    pull = await gh.get_pull(spec.owner, spec.repo, spec.pull_number)
    head_sha = pull.head_sha
    if pull.state != "open":
        return ReviewOutcome(status="skipped", reason="the pull request is closed", head_sha=head_sha)
    if spec.head_sha and spec.head_sha != head_sha and spec.trigger in PUSH_TRIGGERS | {"rerequested"}:
        # The push that moved the head queued its own job; reviewing an old commit would only add noise.
        return ReviewOutcome(status="stale", reason=f"head moved to {head_sha}", head_sha=head_sha)

    config_text = await gh.get_file_text(spec.owner, spec.repo, CONFIG_PATH, pull.base_ref)
    try:
        config = parse_repo_config(config_text)
    except RepoConfigError as exc:
        check_run_id = await _open_check_run(gh, spec, ctx, head_sha)
        await _complete_check_run(
            gh, spec, check_run_id, conclusion="neutral", title=f"Invalid {CONFIG_PATH}: review skipped",
            summary=f"The `{CONFIG_PATH}` on `{pull.base_ref}` could not be used, so nothing was reviewed. "
                    f"Fix it on the base branch:\n\n{code_fence(truncate_text(str(exc), 60000))}",
        )
        return ReviewOutcome(status="config_error", reason=str(exc), head_sha=head_sha,
                             check_run_id=check_run_id, conclusion="neutral")

    if pull.draft and not config.review_drafts and spec.trigger != "comment":
        # No check run for drafts: ready_for_review or `/review` brings the review.
        return ReviewOutcome(status="skipped", reason="draft pull request", head_sha=head_sha)

    check_run_id = await _open_check_run(gh, spec, ctx, head_sha)
    await gh.update_check_run(spec.owner, spec.repo, check_run_id, {"status": "in_progress", "started_at": _now()})

    pr_text, without_patch = await _pull_diff(gh, spec)
    pr_diff = parse_unified_diff(pr_text)  # the one parse of the pull request's diff; all below take it
    diff, coverage = await _diff_to_review(gh, spec, ctx, pull, config, pr_diff)
    coverage.not_reviewed += [(path, "GitHub sent no patch for it (binary or too large)") for path in without_patch]
    diff, excluded = filter_diff(diff, config.reviews_path)
    coverage.not_reviewed += [(path, "excluded by .calora.yml") for path in excluded]
    reviewers = config.enabled_reviewers(spec.reviewers)
    if not reviewers:
        asked = f" among those asked for ({', '.join(spec.reviewers)})" if spec.reviewers else ""
        await _complete_check_run(
            gh, spec, check_run_id, conclusion="skipped", title="No reviewer enabled",
            summary=f"`{CONFIG_PATH}` switches off every reviewer{asked}, so nothing was reviewed.",
        )
        return ReviewOutcome(status="skipped", reason="no reviewer enabled", head_sha=head_sha,
                             check_run_id=check_run_id, conclusion="skipped")
    contents = await _file_contents(gh, spec, ctx, diff, head_sha, reviewers)
    task = truncate_text(f"{pull.title}\n\n{pull.body}".strip(), MAX_TASK_CHARS, "description shortened")

    from reviewers.pipeline import run_pipeline

    log.info("%s@%s: reviewing %s with %s", spec.pr_key, head_sha[:7],
             "changes since " + coverage.since_sha[:7] if coverage.since_sha else "the whole diff",
             ", ".join(reviewers) or "no reviewer")
    pipeline_run = await asyncio.to_thread(
        run_pipeline, diff, ctx.backend, task=task, reviewers=list(reviewers), limits=ctx.limits,
        file_contents=contents, instructions_for=config.instructions_for, allow_partial=config.allow_partial,
        count_tokens=ctx.backend.count_tokens,  # the backend's own counter, as `calora review` slices
        progress=(lambda message: ctx.store.record_stage(spec, message)) if ctx.store is not None else None,
    )
    if ran is not None:
        ran.append(pipeline_run)

    existing = await gh.list_review_comments(spec.owner, spec.repo, spec.pull_number)
    bot = ctx.settings.bot_login
    ours = [c.body for c in existing if bot is None or c.author in (bot, bot.removesuffix("[bot]"), f"{bot}[bot]")]
    publication = plan_publication(
        pipeline_run.result, config=config, diff_map=map_diff(pr_diff), coverage=coverage,
        slice_plan=pipeline_run.plan, existing_fingerprints=extract_fingerprints(ours),
    )
    secrets = _secrets(ctx)
    review_id, publication, rejected = await _post_review(gh, spec, head_sha, publication, secrets)

    check = publication.check
    await _complete_check_run(
        gh, spec, check_run_id, conclusion=check.conclusion, title=check.title,
        summary=check.summary, text=check.text, annotations=check.annotations,
        external_id=f"{REVIEWED_MARK}{head_sha}", secrets=secrets,
    )
    return ReviewOutcome(
        status="reviewed", head_sha=head_sha, check_run_id=check_run_id, conclusion=check.conclusion,
        review_id=review_id, inline_comments=len(publication.comments),
        summary_findings=len(publication.summary_items), duplicates=publication.duplicates,
        rejected_comments=rejected, incremental=coverage.incremental,
        covered_commits=[sha for sha, _title in coverage.commits] or [head_sha],
    )


async def conclude_failure(spec: ReviewJobSpec, ctx: ReviewContext, reason: str) -> None:
    """After the last failed attempt: finish the check run (neutral) with a reason a maintainer can use."""
    async with ctx.github(spec.installation_id) as gh:
        await _conclude_failure(gh, spec, ctx, reason)


async def _conclude_failure(gh: GitHubClient, spec: ReviewJobSpec, ctx: ReviewContext, reason: str) -> None:
    head_sha = spec.head_sha or (await gh.get_pull(spec.owner, spec.repo, spec.pull_number)).head_sha
    check_run_id = await _open_check_run(gh, spec, ctx, head_sha)
    await _complete_check_run(
        gh, spec, check_run_id, conclusion="neutral", title="Review could not be completed",
        summary=(
            "The review of this commit failed after every retry, so nothing was posted. Push a commit, "
            "comment `/review` or press Re-run to try again.\n\n" + code_fence(truncate_text(reason, 60000))
        ),
        secrets=_secrets(ctx),
    )
