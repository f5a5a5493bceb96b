"""`calora loop` end to end: a scripted author behind real loopback HTTP, a real git repository, the real
review pipeline (analyzers; `--backend none`: no reviewer model), the store and the console page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.cli import main
from app.console import mount_console
from app.console.settings import ConsoleSettings
from app.server import create_app
from app.settings import Settings
from loop.records import LoopReader
from tests.loop.scripted_author import (
    DEFECTIVE,
    FIXED,
    TASK,
    ScriptedAuthor,
    Step,
    fenced,
    git_status,
    make_repo,
)
from tests.loopback import serve_in_thread

IMPORT_TEST = f"{sys.executable} -c 'import shop.db'"


def run_cli(capsys: pytest.CaptureFixture[str], author_url: str, repo: Path, db: str, *extra: str) -> tuple[int, dict]:
    code = main(["loop", "--task", TASK, "--repo", str(repo), "--author-url", author_url, "--author-model",
                 "scripted", "--backend", "none", "--format", "json", "--database-url", db, *extra])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


@pytest.fixture()
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'calora.sqlite'}"


def test_a_defective_patch_is_blocked_then_the_fixed_one_is_approved_recorded_and_shown(
    repo: Path, db: str, capsys: pytest.CaptureFixture[str],
) -> None:
    author = ScriptedAuthor([Step(DEFECTIVE), Step(FIXED)])
    with serve_in_thread(author.app()) as url:
        code, summary = run_cli(capsys, f"{url}/v1", repo, db, "--test-cmd", IMPORT_TEST)
    assert code == 0
    assert summary["approved"] is True and summary["stop_reason"] == "approved"
    first, second = summary["rounds"]
    assert first["status"] == "reviewed" and first["decision"] == "block" and first["tests_passed"] is True
    assert second["decision"] == "approve" and second["tests_passed"] is True
    assert second["message"] == "review approve (1 nit); tests passed"
    assert second["disputes"] == [{
        "rejection": {"target": "PERF401", "reason": "the explicit loop reads better here and the list is short."},
        "finding": "shop/db.py:11 [nit] Use a list comprehension to create a transformed list"}]

    # the author got the revision plan: the S608 blocker first, with the analyzer's output
    feedback = author.user_messages(1)[-1]
    assert feedback.startswith("## Round 1: review block (1 blocker, 1 nit); tests passed")
    assert feedback.index("### Blockers") < feedback.index("### Revision plan") < feedback.index("### Check output")
    assert "shop/db.py:7 [blocker, security] (checks:ruff/S608)" in feedback
    assert "### Nits" in feedback and "shop/db.py:11 [nit, performance] (checks:ruff/PERF401)" in feedback
    assert "Tests: `" in feedback and "passed" in feedback
    assert "you own it" in author.requests[0]["messages"][0]["content"]
    assert "REJECT <finding>: <reason>" in author.requests[0]["messages"][0]["content"]

    # the result is a commit on the scratch branch; the user's branch and working tree are untouched
    assert git_status(repo) == ""
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", summary["branch"]],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert log[0].startswith("calora loop: Add shop/db.py") and log[1] == "initial"
    main_log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", "main"], capture_output=True,
                              text=True, check=True).stdout.splitlines()
    assert main_log == ["initial"]
    assert not (repo / "shop" / "db.py").exists()
    assert "WHERE name = ?" in summary["final_patch"]

    # every round is in the store, with the patch, each answer, the synthesis, the author's reply and tokens
    from app.store import make_engine

    detail = LoopReader(make_engine(db)).get_loop(summary["loop_id"])
    assert detail is not None and detail.state == "done" and detail.approved and detail.rounds == 2
    one, two = detail.rounds_recorded
    assert "f\"SELECT id, name FROM users WHERE name = '{name}'\"" in one.patch
    assert one.review is not None and one.review.result.findings[0].raised_by == ["checks:ruff/S608"]
    assert one.author.text == DEFECTIVE and one.author.completion_tokens > 0 and one.seconds > 0
    assert one.tests is not None and one.tests.passed
    assert two.review is not None and two.review.result.decision == "approve"

    # the console shows the loop as a timeline of rounds
    settings = Settings(webhook_secret="test-secret", database_url=db)
    app = create_app(settings, run_worker=False)
    mount_console(app, settings, ConsoleSettings(console_token=None))
    with serve_in_thread(app) as console:
        listing = httpx.get(f"{console}/console/loops")
        page = httpx.get(f"{console}/console/loops/{summary['loop_id']}")
        missing = httpx.get(f"{console}/console/loops/999")
        api_list = httpx.get(f"{console}/api/loops").json()
        api_detail = httpx.get(f"{console}/api/loops/{summary['loop_id']}").json()
        api_missing = httpx.get(f"{console}/api/loops/999")
    assert listing.status_code == 200 and f'href="/console/loops/{summary["loop_id"]}"' in listing.text
    assert 'href="/console/loops"' in listing.text  # the nav link
    assert page.status_code == 200
    html = page.text
    assert html.index('id="round-1"') < html.index('id="round-2"')
    assert "Possible SQL injection vector" in html and "checks:ruff/S608" in html
    assert "f&#34;SELECT id, name FROM users WHERE name = &#39;{name}&#39;&#34;" in html  # the patch, escaped
    assert "Rejected by the author" in html and "the explicit loop reads better here" in html
    assert "Feedback sent to the author" in html
    assert "not asked" in html and "verdict-error" not in html, "--backend none asks no reviewer: not an error"
    assert missing.status_code == 404
    assert [loop["id"] for loop in api_list["loops"]] == [summary["loop_id"]]
    assert [r["status"] for r in api_detail["rounds_recorded"]] == ["reviewed", "reviewed"]
    assert api_detail["summary"]["approved"] is True and api_missing.status_code == 404


def test_an_author_that_times_out_gets_a_clear_message_each_round(
    repo: Path, db: str, capsys: pytest.CaptureFixture[str],
) -> None:
    author = ScriptedAuthor([Step(FIXED, delay_s=3.0)])
    with serve_in_thread(author.app()) as url:
        code, summary = run_cli(capsys, f"{url}/v1", repo, db, "--author-timeout", "0.5", "--max-rounds", "2")
    assert code == 1 and summary["approved"] is False and summary["stop_reason"] == "max_rounds"
    assert [r["status"] for r in summary["rounds"]] == ["author_error", "author_error"]
    assert all("did not answer within 0.5 s" in r["message"] for r in summary["rounds"])
    assert summary["committed"] is False and summary["final_patch"] == ""
    assert git_status(repo) == ""


def test_prose_and_a_patch_that_does_not_apply_go_back_to_the_author_with_the_reason(
    repo: Path, db: str, capsys: pytest.CaptureFixture[str],
) -> None:
    wrong_context = fenced("""\
        diff --git a/shop/prices.py b/shop/prices.py
        --- a/shop/prices.py
        +++ b/shop/prices.py
        @@ -3,4 +3,4 @@
         def with_tax(cents: int, rate: float = 0.25) -> int:
        -    return int(cents * (1 + rate))
        +    return round(cents * (1 + rate))
        """)
    author = ScriptedAuthor([Step("I would write a find_user function with a parameterized query."),
                             Step(wrong_context), Step(FIXED)])
    with serve_in_thread(author.app()) as url:
        code, summary = run_cli(capsys, f"{url}/v1", repo, db)
    assert code == 0
    assert [r["status"] for r in summary["rounds"]] == ["no_patch", "does_not_apply", "reviewed"]
    assert "no unified diff" in summary["rounds"][0]["message"]
    assert summary["rounds"][1]["message"].startswith("patch does not apply: error: patch failed: shop/prices.py")
    assert "## Round 1: no patch: the answer holds no unified diff (10 word(s) of prose" in author.user_messages(1)[-1]
    assert "Your answer could not be used: it holds no unified diff" in author.user_messages(1)[-1]
    told = author.user_messages(2)[-1]
    assert "`git apply --check` said" in told and "error: patch failed: shop/prices.py" in told
    assert git_status(repo) == ""


def test_a_patch_into_git_or_through_a_symlink_out_of_the_repo_is_refused_before_git_applies_it(
    repo: Path, db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "vendor").symlink_to(outside)
    subprocess.run(["git", "-C", str(repo), "add", "vendor"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm",
                    "vendor link"], check=True)
    hook = fenced("""\
        diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit
        new file mode 100755
        --- /dev/null
        +++ b/.git/hooks/pre-commit
        @@ -0,0 +1,2 @@
        +#!/bin/sh
        +touch /tmp/pwned
        """)
    through_link = fenced("""\
        diff --git a/vendor/evil.py b/vendor/evil.py
        new file mode 100644
        --- /dev/null
        +++ b/vendor/evil.py
        @@ -0,0 +1 @@
        +x = 1
        """)
    author = ScriptedAuthor([Step(hook), Step(through_link), Step(through_link.replace("x = 1", "x = 2"))])
    with serve_in_thread(author.app()) as url:
        code, summary = run_cli(capsys, f"{url}/v1", repo, db, "--max-rounds", "3")
    assert code == 1
    statuses = [(r["status"], r["message"]) for r in summary["rounds"]]
    assert statuses[0][0] == "refused" and "inside .git/" in statuses[0][1]
    link_refusal = ("patch refused: refused path: 'vendor/evil.py' goes through the symbolic link 'vendor', "
                    "which leads out of the repository")
    assert statuses[1] == ("refused", link_refusal)
    assert not list(outside.iterdir()), "nothing was written through the link"
    assert git_status(repo) == ""


def test_the_same_patch_twice_stops_the_loop(repo: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
    author = ScriptedAuthor([Step(DEFECTIVE), Step(DEFECTIVE.replace("Here is the change.", "No change needed."))])
    with serve_in_thread(author.app()) as url:
        code, summary = run_cli(capsys, f"{url}/v1", repo, db, "--max-rounds", "5")
    assert code == 1 and summary["stop_reason"] == "unchanged"
    assert [r["status"] for r in summary["rounds"]] == ["reviewed", "unchanged"]
    assert summary["committed"] is True, "the last applied patch is still on the scratch branch"
    assert git_status(repo) == ""


def test_the_same_answer_twice_stops_the_loop_even_without_a_patch(
    repo: Path, db: str, capsys: pytest.CaptureFixture[str],
) -> None:
    author = ScriptedAuthor([Step("```python\ndef word_count(text):\n    return len(text.split())\n```")])
    with serve_in_thread(author.app()) as url:
        code, summary = run_cli(capsys, f"{url}/v1", repo, db, "--max-rounds", "5")
    assert code == 1 and summary["stop_reason"] == "unchanged" and len(author.requests) == 2
    assert [r["status"] for r in summary["rounds"]] == ["no_patch", "unchanged"]
    assert "1 fenced block(s), none of them a diff" in summary["rounds"][0]["message"]
    assert summary["rounds"][1]["message"] == "the author's answer is the same as the previous round's"
    assert git_status(repo) == ""


def test_failing_or_hanging_tests_keep_an_approving_review_from_approving(
    repo: Path, db: str, capsys: pytest.CaptureFixture[str],
) -> None:
    author = ScriptedAuthor([Step(FIXED)])
    with serve_in_thread(author.app()) as url:
        code, summary = run_cli(capsys, f"{url}/v1", repo, db, "--max-rounds", "1", "--test-cmd",
                                "echo 'FAILED test_db.py::test_find'; exit 1")
        assert code == 1 and summary["rounds"][0]["decision"] == "approve"
        assert summary["rounds"][0]["tests_passed"] is False and summary["approved"] is False
        code, summary = run_cli(capsys, f"{url}/v1", repo, db, "--max-rounds", "1", "--test-cmd", "sleep 30",
                                "--test-timeout", "1")
    assert code == 1 and "tests timed out" in summary["rounds"][0]["message"]
    assert summary["rounds"][0]["seconds"] < 20
    assert git_status(repo) == ""


def test_apply_writes_the_approved_patch_only_into_a_clean_working_tree(
    repo: Path, db: str, capsys: pytest.CaptureFixture[str],
) -> None:
    (repo / "README.md").write_text("# shop\n\nlocal edit\n")
    author = ScriptedAuthor([Step(FIXED)])
    with serve_in_thread(author.app()) as url:
        code, summary = run_cli(capsys, f"{url}/v1", repo, db, "--apply")
        assert code == 1 and summary["approved"] and not summary["applied_to_working_tree"]
        assert "uncommitted changes (README.md)" in summary["apply_message"]
        assert git_status(repo) == " M README.md\n" and not (repo / "shop" / "db.py").exists()

        subprocess.run(["git", "-C", str(repo), "checkout", "-q", "--", "README.md"], check=True)
        code, summary = run_cli(capsys, f"{url}/v1", repo, db, "--apply")
    assert code == 0 and summary["applied_to_working_tree"]
    assert "WHERE name = ?" in (repo / "shop" / "db.py").read_text()
    assert git_status(repo) == "?? shop/db.py\n", "applied, not committed"
