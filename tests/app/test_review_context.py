"""A review job gives its reviewers repository context read from GitHub at the head commit (fake GitHub on
loopback, scripted backend): what they are shown, what it costs in requests, and that it never fails a review."""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import asyncio
from pathlib import Path

from app.context_source import BLOB_CACHE
from app.jobs import ReviewJobSpec
from app.review_job import ReviewContext, run_review
from app.settings import Settings
from reviewers.pipeline import NO_REPOSITORY_NOTE
from tests.app.fake_github import FakeGitHub
from tests.app.github_env import APP_ID, BOT_LOGIN, app_clients, app_key_pair, fake_github, sleeper  # noqa: F401
from tests.app.scripted_backend import ScriptedBackend

# A needs_context scenario: the diff reads invoice.billing_label; only billing/models.py shows it follows a ForeignKey.
SCENARIO = (Path(__file__).resolve().parents[2] / "eval" / "scenarios" / "python"
            / "revise-csv-export-property-hides-foreign-key-n-plus-one")
OWNER, REPO, NUMBER = "acme", "books", 9
HEAD, BASE = "e" * 40, "b" * 40
CONVENTIONS = "# Agents\n\n## Style\n\nEvery queryset a loop reads relations from uses select_related.\n"


def pull_with_its_repository(fake: FakeGitHub) -> None:
    fake.add_pull(OWNER, REPO, NUMBER, (SCENARIO / "diff.patch").read_text(encoding="utf-8"), head_sha=HEAD,
                  base_sha=BASE, title="billing: CSV export")
    files = fake.repo(OWNER, REPO).files
    for path in (SCENARIO / "repo").rglob("*"):
        if path.is_file():
            files[(HEAD, path.relative_to(SCENARIO / "repo").as_posix())] = path.read_text(encoding="utf-8")
    files[(BASE, "AGENTS.md")] = CONVENTIONS


def review(app_clients, **settings: object) -> tuple[ScriptedBackend, dict]:
    BLOB_CACHE.clear()  # each test counts its own requests
    backend = ScriptedBackend([])
    context = ReviewContext(clients=app_clients.for_installation, backend=backend, settings=Settings(
        app_id=APP_ID, bot_login=BOT_LOGIN, webhook_secret="webhook-secret-value-123", database_url="sqlite://",
        **settings))
    spec = ReviewJobSpec(delivery_id="d-1", installation_id=7, owner=OWNER, repo=REPO, pull_number=NUMBER,
                         head_sha=HEAD, trigger="opened")
    outcome = asyncio.run(run_review(spec, context))
    assert outcome.status == "reviewed"
    return backend, outcome.model_dump()


def context_requests(fake: FakeGitHub) -> list[str]:
    """The contents requests of the context source (JSON form; the analyzers' file reads ask for raw text)."""
    return [r.path for r in fake.calls("repos/get-content") if "raw" not in r.accept]


def check_text(fake: FakeGitHub) -> str:
    (check,) = fake.check_runs.values()
    return check["output"].get("text", "")


def test_reviewers_are_shown_the_files_that_explain_the_diff_read_at_the_head(fake_github, app_clients) -> None:
    pull_with_its_repository(fake_github)
    backend, _outcome = review(app_clients)

    python = [r for r in backend.requests if r.reviewer == "python"]
    shown = {s.path: s for r in python for s in r.context}
    assert "billing/models.py" in shown and "models.ForeignKey(Account" in shown["billing/models.py"].text
    assert shown["billing/models.py"].why
    assert all("select_related" in r.conventions for r in python), "conventions come from the base branch"
    requested = context_requests(fake_github)
    assert 0 < len(requested) <= 20
    assert "/repos/acme/books/contents/billing/views.py" not in requested, "the changed file was already fetched"
    assert NO_REPOSITORY_NOTE not in check_text(fake_github)


def test_a_review_keeps_to_its_budget_and_its_check_run_says_what_went_without(fake_github, app_clients) -> None:
    pull_with_its_repository(fake_github)
    backend, _outcome = review(app_clients, context_max_requests=2)
    assert len(context_requests(fake_github)) == 2
    assert "the budget of 2 GitHub contents request(s) per review was spent" in check_text(fake_github)
    assert backend.requests


def test_context_that_cannot_be_read_never_fails_the_review(fake_github, app_clients) -> None:
    pull_with_its_repository(fake_github)
    fake_github.add_fault("GET", r"/contents/", 500, accept="application/vnd.github+json", times=1000)
    backend, outcome = review(app_clients)
    assert outcome["conclusion"] is not None and backend.requests
    assert all(not s.path.startswith("billing/models") for r in backend.requests for s in r.context)
    assert "not read: GitHub repos/get-content failed: HTTP 500" in check_text(fake_github)


def test_no_budget_means_no_context_and_the_notes_say_so(fake_github, app_clients) -> None:
    pull_with_its_repository(fake_github)
    backend, _outcome = review(app_clients, context_max_requests=0)
    assert context_requests(fake_github) == [] and all(not r.context for r in backend.requests)
    assert NO_REPOSITORY_NOTE in check_text(fake_github)
