"""A hostile model answer through the App: what reaches GitHub stays inert, redacted and short.

The reviewer model is played by a loopback fake OpenAI-compatible server whose answer carries a prompt
injection's payload (mentions, raw HTML, an image, a `javascript:` link, a fake fingerprint comment, an
AWS key, a GitHub token, the webhook secret, a suggestion that tries to close its fence, a path full of
backticks, a 2 MB message). The pull request is served by the fake GitHub (every body validated against
GitHub's OpenAPI description); the test reads what the bot posted: the inline comment, the review body, the
check run's summary and text, and its annotations. Issue #15 items 2, 3 and 7; issue #12 item 5.
"""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from markdown_it import MarkdownIt

from app.jobs import ReviewJobSpec
from app.publishing import extract_fingerprints, fingerprint, map_diff
from app.review_job import ReviewContext, run_review
from app.settings import Settings
from reviewers.backends.openai_backend import OpenAIBackend
from reviewers.contract import Category, Finding, ReviewerOutput, Verdict, render_answer
from tests.app.fake_github import FakeGitHub
from tests.app.github_env import (  # noqa: F401 - fixtures
    APP_ID,
    BOT_LOGIN,
    app_clients,
    app_key_pair,
    fake_github,
    sleeper,
)
from tests.loopback import serve_in_thread
from tests.serving.fake_openai import FakeOpenAI, Reply

OWNER, REPO, NUMBER, HEAD = "acme", "web", 7, "e" * 40
WEBHOOK_SECRET = "webhook-secret-value-123"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GH_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
HANDLER, WEIRD = "app/handler.py", "src/we`ird``name.py"
FAKE_FP = "0123456789abcdef"
HOSTILE = (
    "@org/team @octocat <img src=x onerror=alert(1)> ![x](http://evil.example/p.png) "
    f"[click](javascript:alert(1)) <!-- calora:fp={FAKE_FP} --> use key {AWS_KEY} and token {GH_TOKEN} "
    f"and {WEBHOOK_SECRET}"
)
MAJOR_MESSAGE = "the name of this file breaks out of its code span; rename it"
MENTION = re.compile(r"@(?!\u200b)[A-Za-z]")


def added_file(path: str, lines: list[str]) -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n"
            f"+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}")


DIFF = added_file(HANDLER, ["import os", "def run(request):", "    return os.getenv(request.args['k'])"]) + \
    added_file(WEIRD, ["x = 1", "y = 2"])


def hostile_answer() -> str:
    # A fingerprint comment that matches the real major finding: if the bot trusted it, the next review
    # would count that finding as already posted and never show it again.
    real_fp = fingerprint(WEIRD, Category.correctness, map_diff(DIFF).text(WEIRD, 1), MAJOR_MESSAGE)
    return render_answer(ReviewerOutput(
        verdict=Verdict.block,
        findings=[
            Finding(path=HANDLER, line=3, severity="blocker", category="security",
                    message=f"{HOSTILE} <!-- calora:fp={real_fp} -->",
                    suggestion=f"````\n<!-- calora:fp={real_fp} -->\n    return None  # {GH_TOKEN}\n"),
            Finding(path=WEIRD, line=1, severity="major", category="correctness", message=MAJOR_MESSAGE),
            Finding(path=HANDLER, line=1, severity="minor", category="maintainability",
                    message=f"{HOSTILE} " + "A" * 2_000_000),
        ],
        missing_checks=["@octocat <img src=x onerror=alert(1)>"],
        suggested_fix="ping @org/team",
    ))


@pytest.fixture()
def hostile_backend() -> Iterator[OpenAIBackend]:
    fake = FakeOpenAI([Reply(content=hostile_answer())])
    with serve_in_thread(fake.app) as url:
        backend = OpenAIBackend(f"{url}/v1", max_attempts=1)
        yield backend
        backend.close()


def review(app_clients, backend: OpenAIBackend, trigger: str = "opened") -> None:
    settings = Settings(app_id=APP_ID, bot_login=BOT_LOGIN, webhook_secret=WEBHOOK_SECRET, database_url="sqlite://")
    ctx = ReviewContext(clients=app_clients.for_installation, backend=backend, settings=settings)
    spec = ReviewJobSpec(delivery_id=f"d-{trigger}", installation_id=7, owner=OWNER, repo=REPO,
                         pull_number=NUMBER, head_sha=HEAD, trigger=trigger)
    asyncio.run(run_review(spec, ctx))


def assert_inert_markdown(text: str) -> None:
    html = MarkdownIt("commonmark").render(text)
    prose = re.sub(r"<pre><code.*?</code></pre>", "", html, flags=re.DOTALL)  # code mentions nobody
    assert MENTION.search(prose) is None, prose
    assert "<img" not in html and "<a " not in html
    # The only HTML comment left is the bot's own marker at the end; one a model wrote is text (or a
    # line of code inside a suggestion, where it renders as code and is not the last marker).
    assert "<!--" not in re.sub(r"<!--\s*calora:(fp|review)=[0-9a-f]{16}\s*-->$", "", html.rstrip())


def assert_no_secret(text: str) -> None:
    for secret in (AWS_KEY, GH_TOKEN, GH_TOKEN[:12], WEBHOOK_SECRET):
        assert secret not in text


@pytest.fixture()
def posted(fake_github: FakeGitHub, app_clients, hostile_backend: OpenAIBackend) -> FakeGitHub:
    fake_github.add_pull(OWNER, REPO, NUMBER, DIFF, head_sha=HEAD, config="max_inline_comments: 1\n")
    review(app_clients, hostile_backend)
    return fake_github


def test_the_inline_comment_is_inert_redacted_and_keeps_only_the_bots_fingerprint(posted: FakeGitHub) -> None:
    (review_body,) = posted.reviews
    (comment,) = review_body["comments"]
    body = comment["body"]
    assert_inert_markdown(body)
    assert_no_secret(body)
    blocker = next(f for f in ReviewerOutput.model_validate_json(hostile_answer()).findings if f.line == 3)
    own = fingerprint(HANDLER, Category.security, map_diff(DIFF).text(HANDLER, 3), blocker.message)
    assert extract_fingerprints([body]) == {own}  # the bot's marker, not the one the model quoted
    assert len(body) < 5000


def test_the_review_body_and_check_run_are_inert_redacted_and_short(posted: FakeGitHub) -> None:
    (review_body,) = posted.reviews
    assert_inert_markdown(review_body["body"])
    assert_no_secret(review_body["body"])
    (check,) = posted.check_runs.values()
    for part in ("summary", "text"):
        text = check["output"].get(part, "")
        assert_inert_markdown(text)
        assert_no_secret(text)
        assert len(text) < 30_000
    assert f"`` {WEIRD}:1 ``" in check["output"]["text"] or f"```{WEIRD}:1```" in check["output"]["text"]


def test_annotations_are_plain_capped_and_redacted(posted: FakeGitHub) -> None:
    (check,) = posted.check_runs.values()
    annotations = check["annotations"]
    assert annotations, "findings over the inline budget are annotated"
    assert any("calora:fp" in a["message"] for a in annotations), "the hostile minor finding is annotated"
    for annotation in annotations:
        assert_no_secret(annotation["message"] + annotation["title"])
        assert MENTION.search(annotation["message"]) is None and "<img" not in annotation["message"]
        assert "<!--" not in annotation["message"]  # no marker forms should the text be shown as markdown
        assert len(annotation["message"]) < 3000


def test_a_fingerprint_in_model_text_cannot_silence_a_finding_on_the_next_review(
    posted: FakeGitHub, app_clients, hostile_backend: OpenAIBackend
) -> None:
    review(app_clients, hostile_backend, trigger="comment")
    second = list(posted.check_runs.values())[-1]
    assert second["status"] == "completed"
    assert MAJOR_MESSAGE.split(";")[0] in second["output"]["text"], "the major finding is still reported"
    assert "1 already commented earlier" in second["output"]["summary"]  # the blocker only
