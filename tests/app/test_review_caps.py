"""The App never reports unreviewed code as reviewed (issue #15 item 1): over a cap the check run is not a
pass and says which files were left out and why, unless `.calora.yml` allows a partial review."""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import asyncio

from app.jobs import ReviewJobSpec
from app.review_job import ReviewContext, run_review
from app.settings import Settings
from reviewers.slicing import SliceLimits
from tests.app.fake_github import FakeGitHub
from tests.app.github_env import (  # noqa: F401 - fixtures
    APP_ID,
    BOT_LOGIN,
    app_clients,
    app_key_pair,
    fake_github,
    sleeper,
)
from tests.app.scripted_backend import ScriptedBackend

OWNER, REPO, NUMBER, HEAD = "acme", "web", 9, "f" * 40
EVIL = "zz/evil.py"


def added_file(path: str, lines: list[str]) -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n"
            f"+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}")


DIFF = added_file("pkg/a.py", ["A = 1"]) + added_file("pkg/b.py", ["B = 1"]) + added_file(
    EVIL, ["import os", "from flask import request", "def run():", "    return getattr(os, request.args['f'])()"]
)


def review(app_clients, config: str | None, fake_github: FakeGitHub) -> dict:
    fake_github.add_pull(OWNER, REPO, NUMBER, DIFF, head_sha=HEAD, config=config)
    backend = ScriptedBackend([])  # approves every slice it is shown: what matters is what it is not shown
    ctx = ReviewContext(
        clients=app_clients.for_installation, backend=backend, limits=SliceLimits(max_files=1),
        settings=Settings(app_id=APP_ID, bot_login=BOT_LOGIN, webhook_secret="s3cret-value", database_url="sqlite://"),
    )
    spec = ReviewJobSpec(delivery_id="d1", installation_id=7, owner=OWNER, repo=REPO, pull_number=NUMBER,
                         head_sha=HEAD, trigger="opened")
    asyncio.run(run_review(spec, ctx))
    assert any(EVIL in r.diff for r in backend.requests), "the riskiest file gets the one slot, not pkg/a.py"
    (check,) = fake_github.check_runs.values()
    return check


def test_over_a_cap_the_check_run_is_not_a_pass_and_names_the_files(fake_github: FakeGitHub, app_clients) -> None:
    check = review(app_clients, None, fake_github)
    assert check["conclusion"] == "action_required"
    assert check["output"]["title"].startswith("Review incomplete")
    assert "pkg/a.py" in check["output"]["summary"] and "over max_files=1" in check["output"]["summary"]
    assert "`pkg/b.py`: over max_files=1" in check["output"]["text"]


def test_allow_partial_in_calora_yml_accepts_the_capped_review(fake_github: FakeGitHub, app_clients) -> None:
    check = review(app_clients, "allow_partial: true\n", fake_github)
    assert check["conclusion"] == "success"
    assert "partial review allowed" in check["output"]["text"]
