"""The decide stage of a review job is pure: plain inputs in (what `gather` would have fetched), a `Skip`
or a `Publication` out, with no GitHub client, no database and no network anywhere in reach."""

from __future__ import annotations

import inspect
import socket
from pathlib import Path

import pytest

from app.github_client import PullRequestInfo
from app.jobs import ReviewJobSpec
from app.publishing import Coverage
from app.repo_config import RepoConfig, parse_repo_config
from app.review_job import ReviewInputs, Skip, decide_publication, decide_skip
from reviewers.pipeline import PipelineRun, run_pipeline
from reviewers.unified_diff import parse_unified_diff
from tests.app.github_env import read_diff
from tests.app.scripted_backend import DB_URL_FINDING, ScriptedBackend

HEAD, OTHER = "e" * 40, "f" * 40


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test (the decision may not do I/O)."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the decide stage opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def diff_text(shared_dir: Path) -> str:
    return read_diff(shared_dir, "004-")  # one python change: backend/app/core/db.py


@pytest.fixture(scope="module")
def run004(diff_text: str) -> PipelineRun:
    """The pipeline's answer on diff 004 from the scripted reviewer (test data made before the decision)."""
    return run_pipeline(diff_text, ScriptedBackend([DB_URL_FINDING]), task="Use DATABASE_URL", analyzers=())


def spec(trigger: str = "opened", head_sha: str = HEAD, reviewers: list[str] | None = None) -> ReviewJobSpec:
    return ReviewJobSpec(delivery_id="d-1", installation_id=1, owner="acme", repo="web", pull_number=4,
                         head_sha=head_sha, trigger=trigger, reviewers=reviewers or [])


def pull(state: str = "open", draft: bool = False) -> PullRequestInfo:
    return PullRequestInfo(number=4, title="Use DATABASE_URL", state=state, draft=draft, head_sha=HEAD,
                           base_sha="b" * 40, base_ref="main")


def gathered(diff_text: str, config: RepoConfig | None = None, **pull_state: object) -> ReviewInputs:
    diff = parse_unified_diff(diff_text)
    return ReviewInputs(spec=spec(), pull=pull(**pull_state), config=config or RepoConfig(), pr_diff=diff,
                        diff=diff, coverage=Coverage(head_sha=HEAD))


def test_the_decide_functions_are_plain_functions() -> None:
    for decide in (decide_skip, decide_publication):
        assert not inspect.iscoroutinefunction(decide)
        assert "pr" not in inspect.signature(decide).parameters  # nothing to call GitHub with


@pytest.mark.parametrize(
    ("inputs", "status", "check"),
    [
        (ReviewInputs(spec=spec(), pull=pull(state="closed")), "skipped", None),
        (ReviewInputs(spec=spec(head_sha=OTHER), pull=pull()), "stale", None),  # a newer push has its own job
        (ReviewInputs(spec=spec(), pull=pull(), config_error=".calora.yml is not valid YAML"), "config_error",
         "neutral"),
        (ReviewInputs(spec=spec(), pull=pull(draft=True), config=RepoConfig()), "skipped", None),
        (ReviewInputs(spec=spec(reviewers=["sql"]), pull=pull(),
                      config=parse_repo_config("reviewers:\n  sql: false\n")), "skipped", "skipped"),
    ],
    ids=["closed", "stale", "bad-config", "draft", "no-reviewer"],
)
def test_a_job_that_will_not_review_is_decided_from_plain_inputs(
    no_network: None, inputs: ReviewInputs, status: str, check: str | None
) -> None:
    skip = decide_skip(inputs)
    assert isinstance(skip, Skip) and skip.outcome.status == status and skip.outcome.head_sha == HEAD
    assert (skip.check.conclusion if skip.check else None) == check


def test_inputs_without_a_config_yet_are_not_decided_and_a_comment_reviews_a_draft(no_network: None) -> None:
    assert decide_skip(ReviewInputs(spec=spec(), pull=pull())) is None  # gather reads the config next
    comment = ReviewInputs(spec=spec(trigger="comment", head_sha=""), pull=pull(draft=True), config=RepoConfig())
    assert decide_skip(comment) is None


def test_the_publication_is_decided_from_the_inputs_and_the_pipelines_answer(
    no_network: None, diff_text: str, run004: PipelineRun
) -> None:
    inputs = gathered(diff_text)
    assert decide_skip(inputs) is None
    publication = decide_publication(inputs, run004, existing_fingerprints=set())
    assert [(c.path, c.line) for c in publication.comments] == [("backend/app/core/db.py", 7)]
    assert publication.check.conclusion == "neutral" and publication.posts_review

    again = decide_publication(inputs, run004, existing_fingerprints={publication.comments[0].fingerprint})
    assert (again.comments, again.duplicates) == ([], 1)  # already on the pull request: not posted twice


def test_a_publication_needs_gathered_inputs(run004: PipelineRun) -> None:
    with pytest.raises(ValueError, match="needs gathered inputs"):
        decide_publication(ReviewInputs(spec=spec(), pull=pull()), run004, set())
