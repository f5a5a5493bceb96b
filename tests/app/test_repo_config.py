"""`.calora.yml`: defaults, every setting, and errors a maintainer can act on."""

from __future__ import annotations

import pytest

from app.repo_config import RepoConfig, RepoConfigError, parse_repo_config
from reviewers.contract import Category, Severity
from reviewers.routing import REVIEWER_NAMES

FULL = """
reviewers:
  sql: false
  docker_ci: true
include: ["backend/**", "*.sql"]
exclude: ["backend/vendor/**"]
max_inline_comments: 10
min_inline_severity: major
inline_style: true
request_changes_on_blockers: true
review_drafts: true
incremental: false
instructions:
  - path: "**/alembic/versions/**"
    instructions: Migrations must be reversible.
  - path: "*.py"
    instructions: We target Python 3.11.
"""


@pytest.mark.parametrize("text", [None, "", "   \n", "# only a comment\n"])
def test_missing_or_empty_file_means_quiet_defaults(text):
    config = parse_repo_config(text)
    assert config == RepoConfig()
    assert config.max_inline_comments == 25 and config.min_inline_severity is Severity.minor
    assert not config.request_changes_on_blockers and not config.review_drafts and config.incremental
    assert config.enabled_reviewers() == REVIEWER_NAMES


def test_every_setting_is_read():
    config = parse_repo_config(FULL)
    assert "sql" not in config.enabled_reviewers() and "docker_ci" in config.enabled_reviewers()
    assert config.enabled_reviewers(["sql", "python"]) == ("python",)
    assert config.reviews_path("backend/app/models.py") and config.reviews_path("db/schema.sql")
    assert not config.reviews_path("frontend/src/App.tsx")
    assert not config.reviews_path("backend/vendor/lib.py")
    assert config.max_inline_comments == 10 and config.request_changes_on_blockers and config.review_drafts
    assert not config.incremental
    assert config.goes_inline(Severity.major, Category.style)
    assert not config.goes_inline(Severity.minor, Category.correctness)
    assert config.instructions_for("backend/app/alembic/versions/x.py") == (
        "Migrations must be reversible.\nWe target Python 3.11."
    )
    assert config.instructions_for("README.md") == ""


def test_drafts_is_accepted_as_a_short_name():
    assert parse_repo_config("drafts: true\n").review_drafts


def test_style_never_goes_inline_by_default():
    config = RepoConfig()
    assert not config.goes_inline(Severity.blocker, Category.style)
    assert config.goes_inline(Severity.minor, Category.correctness)
    assert not config.goes_inline(Severity.nit, Category.correctness)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reviewers: {cobol: true}\n", "unknown reviewer(s) cobol"),
        ("max_inline_comments: -3\n", "max_inline_comments: Input should be greater than or equal to 0"),
        ("min_inline_severity: critical\n", "min_inline_severity"),
        ("review_all_the_things: true\n", "review_all_the_things: Extra inputs are not permitted"),
        ("instructions: [{path: '*.py'}]\n", "instructions.0.instructions: Field required"),
        ("- just\n- a list\n", "must be a mapping of settings, not a list"),
        ("reviewers: [python\n", "not valid YAML at line"),
    ],
)
def test_invalid_files_raise_an_error_that_says_what_and_where(text, expected):
    with pytest.raises(RepoConfigError) as err:
        parse_repo_config(text)
    assert expected in str(err.value)
    assert str(err.value).startswith(".calora.yml")
