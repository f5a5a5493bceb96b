"""The multi-agent view and the links, from a seeded review of a real diff."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from seed import ANSWERS_004, ANSWERS_010, MIGRATION_010, real_diff, review_diff

from app.console.pages import make_environment
from app.console.views import code_context, github_web_url, multi_agent_view, pull_url
from reviewers.contract import ContextSnippet


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


GH_TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"


def test_each_reviewer_shows_the_repository_context_it_was_given_with_why_collapsed_and_inert() -> None:
    run = review_diff("010", ANSWERS_010, "Add created_at")
    model_file = ContextSnippet(
        path="backend/app/models.py", why="defines Item and User, the tables the migration alters",
        text=f"class Item(ItemBase, table=True):\n    # <script>alert(1)</script> token {GH_TOKEN}\n    id: uuid.UUID\n",
    )
    python = next(i for i, piece in enumerate(run.plan.slices) if piece.reviewer == "python")
    conventions = "Use `select_related` for relations read in a loop. <b>bold</b>"
    run.requests[python] = run.requests[python].model_copy(update={"context": [model_file],
                                                                   "conventions": conventions})

    view = multi_agent_view(run)
    assert [(s.reviewer, s.context) for s in view.slices] == [("python", [model_file]), ("sql", [])]

    review = SimpleNamespace(id=1, owner="acme", repo="web", pull_number=10, head_sha="f" * 40, state="done",
                             decision="revise", blockers=0, majors=1, minors=0, nits=0, trigger="opened",
                             attempts=1, duration_s=1.0, outcome=None, error=None, pipeline_problem=None, stage="")
    item = SimpleNamespace(links=SimpleNamespace(pull_request="https://github.com/acme/web/pull/10",
                                                 commit="https://github.com/acme/web/commit/" + "f" * 40))
    html = make_environment().get_template("review.html").render(
        review=review, item=item, view=view, live=False, request_path="/console/reviews/1")
    python_html = html[html.index('id="slice-python-'):html.index('id="slice-sql-')]
    assert "Repository context (1 snippet)" in python_html
    assert "backend/app/models.py" in python_html and "defines Item and User, the tables the migration alters" in python_html
    assert '<details class="snippet"><summary>' in python_html, "the text is collapsed under its path and reason"
    assert "class Item(ItemBase, table=True)" in python_html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in python_html
    assert GH_TOKEN not in html and "[redacted]" in python_html
    assert "Team conventions" in python_html and "&lt;b&gt;bold&lt;/b&gt;" in python_html
    assert "Repository context" not in html[html.index('id="slice-sql-'):]
