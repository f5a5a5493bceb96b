"""One review job, end to end, in three stages: gather → decide → publish.

1. gather (I/O): the pull request, `.calora.yml`, the diff to review and the files' contents become one
   typed `ReviewInputs`, through a `PullRequestClient` bound to the job's pull request. It stops fetching
   as soon as the job will not review (closed, stale, draft, bad config, no reviewer).
2. decide (pure): `decide_skip` turns inputs into a `Skip` (the outcome, and the check run to leave) or
   None; after the pipeline (`reviewers.pipeline.run_pipeline`, in a thread, with the injected backend and
   the pull request's head and base read through `app.context_source` for context) has answered,
   `decide_publication` turns inputs and the run into a `Publication` (`app.publishing`).
3. publish (I/O): the check run and the review; text leaves redacted through two exits only.

The worker (app.worker) calls `run_review` per job and, after a job's last failed attempt,
`conclude_failure`. A run is safe to repeat: it reuses its unfinished check run, and a review never
reposts a comment whose fingerprint is already on the pull request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.context_source import GitHubContentsSource, RequestBudget
from app.github_client import (
    CheckRunInfo,
    GitHubAppClients,
    GitHubClient,
    GitHubError,
    PullRequestClient,
    PullRequestInfo,
    diff_from_files,
)
from app.jobs import ReviewJobSpec
from app.publishing import (
    CheckRunOutput,
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
from reviewers.routing import whole_file_paths
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
# 1. Gather (I/O): what the decision needs, as one typed value.


class ReviewInputs(BaseModel):
    """What the job fetched from GitHub, everything the decision reads.

    Fetching stops as soon as `decide_skip` can tell the job will not review: a closed pull request has no
    config read, a draft no diff fetched. `diff` is what the reviewers see (on an incremental review, the
    commits since the last reviewed one); `pr_diff` is the whole pull request's diff, parsed once, which
    says where comments may go.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)  # ParsedDiff is the parser's dataclass

    spec: ReviewJobSpec
    pull: PullRequestInfo
    config: RepoConfig | None = Field(default=None, description="None until read, or when it did not parse.")
    config_error: str | None = None
    pr_diff: ParsedDiff | None = None
    diff: ParsedDiff | None = None
    coverage: Coverage | None = None
    file_contents: dict[str, str] = Field(default_factory=dict, description="Whole new files, for the checks.")

    @property
    def head_sha(self) -> str:
        return self.pull.head_sha

    @property
    def reviewers(self) -> tuple[str, ...]:
        """The reviewers `.calora.yml` enables among those the job asked for (all of them by default)."""
        return self.config.enabled_reviewers(self.spec.reviewers) if self.config is not None else ()

    @property
    def task(self) -> str:
        """What the author says the change is for, as the reviewers are told it."""
        return truncate_text(f"{self.pull.title}\n\n{self.pull.body}".strip(), MAX_TASK_CHARS, "description shortened")


async def gather(pr: PullRequestClient, spec: ReviewJobSpec, ctx: ReviewContext) -> ReviewInputs:
    """Fetch what the decision needs, no more: stop at the first point where `decide_skip` decides."""
    if spec.comment_id is not None:
        try:
            await pr.add_reaction(spec.comment_id, "eyes")
        except GitHubError as exc:  # an acknowledgement only: never worth failing the review for
            log.warning("%s: could not add the 👀 reaction: %s", spec.pr_key, exc)
    inputs = ReviewInputs(spec=spec, pull=await pr.get())
    if decide_skip(inputs) is not None:
        return inputs
    config_text = await pr.file_text(CONFIG_PATH, inputs.pull.base_ref)
    try:
        inputs.config = parse_repo_config(config_text)
    except RepoConfigError as exc:
        inputs.config_error = str(exc)
    if inputs.config is None or decide_skip(inputs) is not None:
        return inputs

    pr_text, without_patch = await _pull_diff(pr)
    inputs.pr_diff = parse_unified_diff(pr_text)  # the one parse of the pull request's diff; all below take it
    diff, coverage = await _diff_to_review(pr, spec, ctx, inputs.pull, inputs.config, inputs.pr_diff)
    coverage.not_reviewed += [(path, "GitHub sent no patch for it (binary or too large)") for path in without_patch]
    inputs.diff, excluded = filter_diff(diff, inputs.config.reviews_path)
    coverage.not_reviewed += [(path, "excluded by .calora.yml") for path in excluded]
    inputs.coverage = coverage
    inputs.file_contents = await _file_contents(pr, ctx, inputs.diff, inputs.head_sha, inputs.reviewers)
    return inputs


async def _pull_diff(pr: PullRequestClient) -> tuple[str, list[str]]:
    """The pull request's diff; when GitHub will not render it (too large), rebuilt from the file list."""
    try:
        return await pr.diff(), []
    except GitHubError as exc:
        if exc.status not in (406, 422):
            raise
        log.info("%s: GitHub refused the whole diff (%s); using the paginated file list", pr.key, exc)
    return diff_from_files(await pr.files())


async def _last_reviewed_sha(pr: PullRequestClient, spec: ReviewJobSpec, ctx: ReviewContext) -> str | None:
    """`before_sha` when our check run on it finished a real review (its external id says so)."""
    if not spec.before_sha:
        return None
    for run in await pr.check_runs(spec.before_sha, name=ctx.check_name):
        if _ours(run, ctx) and run.status == "completed" and (run.external_id or "").startswith(REVIEWED_MARK):
            return spec.before_sha
    return None


async def _diff_to_review(
    pr: PullRequestClient, spec: ReviewJobSpec, ctx: ReviewContext, pull: PullRequestInfo, config: RepoConfig,
    pr_diff: ParsedDiff,
) -> tuple[ParsedDiff, Coverage]:
    """The whole pull request, or only what changed since the last reviewed commit (a push to it)."""
    coverage = Coverage(head_sha=pull.head_sha)
    if spec.trigger != "synchronize" or not config.incremental:
        return pr_diff, coverage
    since = await _last_reviewed_sha(pr, spec, ctx)
    if since is None:
        return pr_diff, coverage
    try:
        comparison = await pr.compare(since, pull.head_sha)
    except GitHubError as exc:
        if exc.status == 404:  # force-pushed away: review everything
            return pr_diff, coverage
        raise
    if comparison.status != "ahead":
        return pr_diff, coverage  # a force push or a rebase: the old review does not cover a prefix
    push_diff = parse_unified_diff(await pr.compare_diff(since, pull.head_sha))
    in_pr = set(pr_diff.paths())
    # Only files of the pull request: a merge of the base branch brings others that are not the author's.
    push_diff, _outside = filter_diff(push_diff, lambda path: path in in_pr)
    return push_diff, Coverage(
        head_sha=pull.head_sha, incremental=True, since_sha=since, commits=comparison.commits
    )


async def _file_contents(
    pr: PullRequestClient, ctx: ReviewContext, diff: ParsedDiff, head_sha: str, reviewers: tuple[str, ...],
) -> dict[str, str]:
    """Full new contents of the reviewed files, for the checks (at most `max_content_files`)."""
    paths = whole_file_paths(diff, reviewers)[: ctx.max_content_files]
    gate = asyncio.Semaphore(ctx.content_concurrency)

    async def one(path: str) -> tuple[str, str | None]:
        async with gate:
            return path, await pr.file_text(path, head_sha)

    found = await asyncio.gather(*(one(p) for p in paths))
    return {path: text for path, text in found if text is not None}


async def _our_fingerprints(pr: PullRequestClient, ctx: ReviewContext) -> set[str]:
    """Fingerprints of the bot's comments already on the pull request. Read after the pipeline ran, not
    with the inputs: a review of the same pull request may have posted while the model was answering."""
    bot = ctx.settings.bot_login
    existing = await pr.review_comments()
    ours = [c.body for c in existing if bot is None or c.author in (bot, bot.removesuffix("[bot]"), f"{bot}[bot]")]
    return extract_fingerprints(ours)


# ---------------------------------------------------------------------------------------------
# 2. Decide (pure): skip, or what to publish.


class Skip(BaseModel):
    """The job ends without a review: its outcome, and the check run to leave (None: none at all)."""

    outcome: ReviewOutcome
    check: CheckRunOutput | None = None


def decide_skip(inputs: ReviewInputs) -> Skip | None:
    """Whether the job ends without a review, from what is gathered so far (None: go on, or gather more)."""
    spec, pull = inputs.spec, inputs.pull
    if pull.state != "open":
        return Skip(outcome=ReviewOutcome(status="skipped", reason="the pull request is closed", head_sha=pull.head_sha))
    if spec.head_sha and spec.head_sha != pull.head_sha and spec.trigger in PUSH_TRIGGERS | {"rerequested"}:
        # The push that moved the head queued its own job; reviewing an old commit would only add noise.
        return Skip(outcome=ReviewOutcome(status="stale", reason=f"head moved to {pull.head_sha}",
                                          head_sha=pull.head_sha))
    if inputs.config_error is not None:
        return Skip(
            outcome=ReviewOutcome(status="config_error", reason=inputs.config_error, head_sha=pull.head_sha,
                                  conclusion="neutral"),
            check=CheckRunOutput(
                conclusion="neutral", title=f"Invalid {CONFIG_PATH}: review skipped",
                summary=f"The `{CONFIG_PATH}` on `{pull.base_ref}` could not be used, so nothing was reviewed. "
                        f"Fix it on the base branch:\n\n{code_fence(truncate_text(inputs.config_error, 60000))}",
            ),
        )
    if inputs.config is None:
        return None  # not read yet
    if pull.draft and not inputs.config.review_drafts and spec.trigger != "comment":
        # No check run for drafts: ready_for_review or `/review` brings the review.
        return Skip(outcome=ReviewOutcome(status="skipped", reason="draft pull request", head_sha=pull.head_sha))
    if not inputs.reviewers:
        asked = f" among those asked for ({', '.join(spec.reviewers)})" if spec.reviewers else ""
        return Skip(
            outcome=ReviewOutcome(status="skipped", reason="no reviewer enabled", head_sha=pull.head_sha,
                                  conclusion="skipped"),
            check=CheckRunOutput(
                conclusion="skipped", title="No reviewer enabled",
                summary=f"`{CONFIG_PATH}` switches off every reviewer{asked}, so nothing was reviewed.",
            ),
        )
    return None


def decide_publication(inputs: ReviewInputs, run: PipelineRun, existing_fingerprints: set[str]) -> Publication:
    """What to post for the pipeline's result: inline comments, the summary, the check run (app.publishing)."""
    if inputs.config is None or inputs.pr_diff is None or inputs.coverage is None:
        raise ValueError(f"{inputs.spec.pr_key}: a publication needs gathered inputs (config, diff, coverage)")
    return plan_publication(
        run.result, config=inputs.config, diff_map=map_diff(inputs.pr_diff), coverage=inputs.coverage,
        slice_plan=run.plan, existing_fingerprints=existing_fingerprints,
    )


# ---------------------------------------------------------------------------------------------
# 3. Publish (I/O): check runs and the review. Text leaves through two exits, both redacting.


def _ours(run: CheckRunInfo, ctx: ReviewContext) -> bool:
    """A check run of this App (another App could use the same check name)."""
    return ctx.settings.app_id is None or run.app_id in (None, ctx.settings.app_id)


async def _open_check_run(pr: PullRequestClient, spec: ReviewJobSpec, ctx: ReviewContext, head_sha: str) -> int:
    """Reuse an unfinished check run of ours on this commit (an earlier attempt), else create one.

    A re-run ("Re-run" button, `spec.check_run_id`) gets a new check run, as GitHub expects: the old
    one is completed and keeps its result.
    """
    for run in await pr.check_runs(head_sha, name=ctx.check_name):
        if _ours(run, ctx) and run.status != "completed":
            return run.id
    return await pr.create_check_run(name=ctx.check_name, head_sha=head_sha,
                                     external_id=f"delivery:{spec.delivery_id}")


async def _complete_check_run(
    pr: PullRequestClient,
    check_run_id: int,
    check: CheckRunOutput,
    *,
    external_id: str | None = None,
    secrets: list[str] | tuple[str, ...] = (),
) -> None:
    """Complete with the first 50 annotations, then append the rest 50 at a time (the API's limit).

    One of the two exit points of text to GitHub (with `_post_review`): everything is redacted here.
    """
    title, summary, text = (redact(t, secrets) for t in (check.title, check.summary, check.text))
    output: dict[str, Any] = {"title": title, "summary": summary}
    if text:
        output["text"] = text
    batches = [
        [{**a.to_api(), "title": redact(a.title, secrets), "message": redact(a.message, secrets)} for a in batch]
        for batch in annotation_batches(check.annotations)
    ]
    if batches:
        output["annotations"] = batches[0]
    data: dict[str, Any] = {
        "status": "completed", "conclusion": check.conclusion, "completed_at": _now(), "output": output,
    }
    if external_id:
        data["external_id"] = external_id
    await pr.update_check_run(check_run_id, data)
    for batch in batches[1:]:
        await pr.update_check_run(check_run_id, {"output": {"title": title, "summary": summary, "annotations": batch}})


async def _post_review(
    pr: PullRequestClient, head_sha: str, publication: Publication, secrets: list[str] | tuple[str, ...] = (),
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
            return any(pub.review_marker in body for body in await pr.review_bodies())

        return await pr.create_review(
            commit_id=head_sha, body=redact(pub.review_body(), secrets), event=pub.event,
            comments=[{**c.to_api(), "body": redact(c.body, secrets)} for c in pub.comments], landed=landed,
        )

    try:
        return await attempt(publication), publication, 0
    except GitHubError as exc:
        if exc.status != 422 or not publication.comments or _mentions_commit(exc):
            raise
        first_error = exc
    detail = "; ".join(first_error.errors) or str(first_error)
    log.warning("%s: GitHub refused the review (%s); looking for the comment it refused", pr.key, detail)
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


async def publish_skip(pr: PullRequestClient, spec: ReviewJobSpec, ctx: ReviewContext, skip: Skip) -> ReviewOutcome:
    """Leave the check run the skip asks for (if any) and return its outcome."""
    if skip.check is None:
        return skip.outcome
    check_run_id = await _open_check_run(pr, spec, ctx, skip.outcome.head_sha)
    await _complete_check_run(pr, check_run_id, skip.check)
    return skip.outcome.model_copy(update={"check_run_id": check_run_id})


async def publish(
    pr: PullRequestClient, inputs: ReviewInputs, check_run_id: int, publication: Publication, ctx: ReviewContext,
) -> ReviewOutcome:
    """Post the review (surviving a refused comment), then complete the check run with what was posted."""
    secrets = _secrets(ctx)
    review_id, publication, rejected = await _post_review(pr, inputs.head_sha, publication, secrets)
    check = publication.check
    await _complete_check_run(pr, check_run_id, check, external_id=f"{REVIEWED_MARK}{inputs.head_sha}",
                              secrets=secrets)
    coverage = inputs.coverage or Coverage(head_sha=inputs.head_sha)
    return ReviewOutcome(
        status="reviewed", head_sha=inputs.head_sha, check_run_id=check_run_id, conclusion=check.conclusion,
        review_id=review_id, inline_comments=len(publication.comments),
        summary_findings=len(publication.summary_items), duplicates=publication.duplicates,
        rejected_comments=rejected, incremental=coverage.incremental,
        covered_commits=[sha for sha, _title in coverage.commits] or [inputs.head_sha],
    )


# ---------------------------------------------------------------------------------------------
# The job


async def run_review(spec: ReviewJobSpec, ctx: ReviewContext) -> ReviewOutcome:
    """Review one pull request at its head commit and publish the result (idempotent per commit)."""
    store = ctx.store
    if store is not None:
        await asyncio.to_thread(store.record_stage, spec, "started")
    ran: list[PipelineRun] = []
    async with ctx.github(spec.installation_id) as gh:
        outcome = await _review(gh.pull(spec.owner, spec.repo, spec.pull_number), spec, ctx, ran)
    if store is not None:
        await asyncio.to_thread(store.record_outputs, spec, ReviewOutputs.of(ran[-1] if ran else None, outcome))
    return outcome


async def _review(pr: PullRequestClient, spec: ReviewJobSpec, ctx: ReviewContext, ran: list[PipelineRun]) -> ReviewOutcome:
    inputs = await gather(pr, spec, ctx)
    skip = decide_skip(inputs)
    if skip is not None:
        return await publish_skip(pr, spec, ctx, skip)
    assert inputs.diff is not None and inputs.config is not None and inputs.coverage is not None  # gathered

    check_run_id = await _open_check_run(pr, spec, ctx, inputs.head_sha)
    await pr.update_check_run(check_run_id, {"status": "in_progress", "started_at": _now()})

    from reviewers.pipeline import run_pipeline

    log.info("%s@%s: reviewing %s with %s", spec.pr_key, inputs.head_sha[:7],
             "changes since " + inputs.coverage.since_sha[:7] if inputs.coverage.since_sha else "the whole diff",
             ", ".join(inputs.reviewers))
    store = ctx.store
    head, base, budget = _repository_sources(pr, inputs, ctx)
    pipeline_run = await asyncio.to_thread(
        run_pipeline, inputs.diff, ctx.backend, task=inputs.task, reviewers=list(inputs.reviewers),
        limits=ctx.limits, file_contents=inputs.file_contents, instructions_for=inputs.config.instructions_for,
        allow_partial=inputs.config.allow_partial,
        count_tokens=ctx.backend.count_tokens,  # the backend's own counter, as `calora review` slices
        progress=(lambda message: store.record_stage(spec, message)) if store is not None else None,
        context_source=head, base_source=base,
    )
    pipeline_run.result.notes.extend(budget.notes)  # context that went without: the budget, or GitHub failed
    ran.append(pipeline_run)

    publication = decide_publication(inputs, pipeline_run, await _our_fingerprints(pr, ctx))
    return await publish(pr, inputs, check_run_id, publication, ctx)


def _repository_sources(
    pr: PullRequestClient, inputs: ReviewInputs, ctx: ReviewContext,
) -> tuple[GitHubContentsSource | None, GitHubContentsSource | None, RequestBudget]:
    """The pull request's head (the reviewers' context) and base (the team's conventions) as the pipeline
    reads them, sharing one request budget; none when the budget is 0 (CALORA_CONTEXT_MAX_REQUESTS)."""
    budget = RequestBudget(ctx.settings.context_max_requests)
    if not budget.limit:
        return None, None, budget
    loop = asyncio.get_running_loop()
    head = GitHubContentsSource(pr, inputs.head_sha, loop, budget, known=inputs.file_contents)
    return head, GitHubContentsSource(pr, inputs.pull.base_sha, loop, budget), budget


async def conclude_failure(spec: ReviewJobSpec, ctx: ReviewContext, reason: str) -> None:
    """After the last failed attempt: finish the check run (neutral) with a reason a maintainer can use."""
    async with ctx.github(spec.installation_id) as gh:
        await _conclude_failure(gh.pull(spec.owner, spec.repo, spec.pull_number), spec, ctx, reason)


async def _conclude_failure(pr: PullRequestClient, spec: ReviewJobSpec, ctx: ReviewContext, reason: str) -> None:
    head_sha = spec.head_sha or (await pr.get()).head_sha
    check_run_id = await _open_check_run(pr, spec, ctx, head_sha)
    await _complete_check_run(
        pr, check_run_id,
        CheckRunOutput(
            conclusion="neutral", title="Review could not be completed",
            summary=(
                "The review of this commit failed after every retry, so nothing was posted. Push a commit, "
                "comment `/review` or press Re-run to try again.\n\n" + code_fence(truncate_text(reason, 60000))
            ),
        ),
        secrets=_secrets(ctx),
    )
