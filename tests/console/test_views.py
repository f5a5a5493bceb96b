"""The multi-agent view and the links, from a seeded review of a real diff."""

from __future__ import annotations

import pytest
from seed import ANSWERS_004, ANSWERS_010, MIGRATION_010, real_diff, review_diff

from app.console.views import code_context, github_web_url, multi_agent_view, pull_url


def test_code_context_shows_the_findings_lines_with_new_file_numbers_and_removed_lines_between() -> None:
    diff = real_diff("010")
    lines = code_context(diff, "backend/app/api/routes/items.py", 25, around=2)
    assert [(line.new_line, line.mark) for line in lines] == [
        (23, " "),
        (None, "-"),
        (24, "+"),
        (25, "+"),
        (26, "+"),
        (27, " "),
    ]
    assert [line.flagged for line in lines] == [False, False, False, True, False, False]
    assert lines[3].text.strip() == "select(Item).order_by(Item.created_at.desc()).offset(skip).limit(limit)"


def test_code_context_of_lines_the_diff_does_not_show_is_empty() -> None:
    diff = real_diff("010")
    assert code_context(diff, "backend/app/api/routes/items.py", 400) == []
    assert code_context(diff, "no/such/file.py", 1) == []
    assert code_context("not a diff at all", "x.py", 1) == []


def test_every_slice_shows_its_reviewer_its_answer_and_the_code_of_each_finding() -> None:
    run = review_diff("010", ANSWERS_010, "Add created_at")
    view = multi_agent_view(run)
    assert view.task == "Add created_at"
    assert [(s.reviewer, s.answered) for s in view.slices] == [("python", True), ("sql", True)]
    python = view.slices[0]
    assert python.output == ANSWERS_010["python"]
    assert python.answer_json is not None and '"verdict": "revise"' in python.answer_json
    migration = python.findings[0]
    assert migration.finding.path == MIGRATION_010
    assert [line.new_line for line in migration.context if line.flagged] == [22, 23]
    merged = view.findings[0]
    assert merged.raised_by == ["python", "sql"] and merged.context == migration.context
    assert [(f.finding.source, f.finding.message) for f in view.check_findings] == [
        ("checks:ruff/F401", "`sqlmodel.sql.sqltypes` imported but unused")
    ]
    assert view.check_findings[0].context, "the check finding shows its line of the added migration"
    assert view.check_findings[0].raised_by == ["checks:ruff/F401"]


def test_a_reviewer_that_failed_shows_its_error_and_the_review_is_incomplete() -> None:
    run = review_diff("004", ANSWERS_004, "Migrate to DATABASE_URL")
    view = multi_agent_view(run)
    failed = [s for s in view.slices if not s.answered]
    assert [(s.reviewer, s.error) for s in failed] == [("docker_ci", ANSWERS_004["docker_ci"])]
    assert view.unanswered == 1
    assert not view.result.complete and "docker_ci" in view.result.incomplete_reason
    assert view.result.decision == "block"


@pytest.mark.parametrize(
    ("api", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_links_point_at_the_web_host_of_the_configured_api(api: str, web: str) -> None:
    assert github_web_url(api) == web
    assert pull_url(web, "acme", "web", 7) == f"{web}/acme/web/pull/7"
