"""A hostile model answer through `calora review` (issue #15 items 2, 3 and 7; issue #12 item 5).

A prompt injection in a diff can make a reviewer model answer anything. Here a loopback fake
OpenAI-compatible server plays that model (`CALORA_BACKEND=openai`): its answer carries mentions, raw HTML,
a markdown image, a `javascript:` link, a fake fingerprint comment, an AWS key and a GitHub token, a
suggestion that tries to close its fence, a finding on a path full of backticks, and a 2 MB message. What
`calora review` prints must keep all of that inert, redacted and short, and a closed pipe (`| head`) must
neither print a traceback nor change the verdict's exit code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from app.cli import main
from reviewers.contract import Finding, ReviewerOutput, Verdict, render_answer
from tests.conftest import REPO_ROOT
from tests.loopback import serve_in_thread
from tests.serving.fake_openai import FakeOpenAI, Reply

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GH_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
FAKE_FP = "0123456789abcdef"
HOSTILE = (
    "@org/team @octocat <img src=x onerror=alert(1)> ![x](http://evil.example/p.png) "
    f"[click](javascript:alert(1)) <!-- calora:fp={FAKE_FP} --> use key {AWS_KEY} and token {GH_TOKEN}"
)
WEIRD = "src/we`ird``name.py"
HANDLER = "app/handler.py"


def added_file(path: str, lines: list[str]) -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n{body}")


DIFF = added_file(HANDLER, ["import os", "def run(request):", "    return os.getenv(request.args['k'])"]) + \
    added_file(WEIRD, ["x = 1", "y = 2"])

ANSWER = render_answer(ReviewerOutput(
    verdict=Verdict.block,
    findings=[
        Finding(path=HANDLER, line=3, severity="blocker", category="security", message=HOSTILE,
                suggestion=f"````\n<!-- calora:fp={FAKE_FP} -->\n@octocat {GH_TOKEN}\n"),
        Finding(path=WEIRD, line=1, severity="major", category="correctness",
                message="the name of this file breaks out of its code span"),
        Finding(path=HANDLER, line=1, severity="minor", category="maintainability",
                message="too long " + "A" * 2_000_000),
    ],
    missing_checks=["@octocat <img src=x onerror=alert(1)>"],
    suggested_fix="ping @org/team",
))

MENTION = re.compile(r"@(?!\u200b)[A-Za-z]")


@pytest.fixture()
def hostile_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    fake = FakeOpenAI([Reply(content=ANSWER)])
    with serve_in_thread(fake.app) as url:
        monkeypatch.setenv("CALORA_BACKEND", "openai")
        monkeypatch.setenv("CALORA_OPENAI_BASE_URL", f"{url}/v1")
        monkeypatch.setenv("CALORA_OPENAI_MAX_ATTEMPTS", "1")
        yield url


@pytest.fixture()
def diff_file(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.diff"
    path.write_text(DIFF)
    return path


def review(diff_file: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["review", "--diff", str(diff_file), "--reviewers", "python", "--backend", "openai", *extra])
    return code, capsys.readouterr().out


def assert_no_secret(text: str) -> None:
    assert AWS_KEY not in text and GH_TOKEN not in text and GH_TOKEN[:12] not in text


def test_terminal_markdown_keeps_hostile_text_inert(hostile_model: str, diff_file: Path, capsys) -> None:
    code, out = review(diff_file, capsys)
    assert code == 2, out  # the blocker still blocks: neutralising text does not change the verdict
    html = MarkdownIt("commonmark").render(out)
    prose = re.sub(r"<pre><code.*?</code></pre>", "", html, flags=re.DOTALL)  # code mentions nobody
    assert MENTION.search(prose) is None
    assert "<img" not in html and "<a " not in html  # "[click](javascript:…)" is shown as text, not a link
    assert "<!--" not in html  # the fake fingerprint is text everywhere, in the suggestion a code line


def test_terminal_output_redacts_keys_and_tokens(hostile_model: str, diff_file: Path, capsys) -> None:
    _code, out = review(diff_file, capsys)
    assert_no_secret(out)
    assert "[redacted]" in out


def test_a_backtick_path_stays_in_one_code_span(hostile_model: str, diff_file: Path, capsys) -> None:
    _code, out = review(diff_file, capsys)
    html = MarkdownIt("commonmark").render(out)
    assert f"<code>{WEIRD}:1</code>" in html


def test_a_2_mb_message_is_capped(hostile_model: str, diff_file: Path, capsys) -> None:
    _code, out = review(diff_file, capsys)
    assert len(out) < 30_000 and "… (truncated)" in out


def test_json_output_is_raw_but_redacted_and_capped(hostile_model: str, diff_file: Path, capsys) -> None:
    code, out = review(diff_file, capsys, "--format", "json")
    assert code == 2
    result = json.loads(out)
    assert_no_secret(out)
    blocker = result["findings"][0]
    assert blocker["path"] == HANDLER and blocker["message"].startswith("@org/team @octocat <img")  # raw, by design
    assert len(out) < 30_000


def test_a_closed_pipe_keeps_the_verdicts_exit_code_and_prints_no_traceback(hostile_model: str,
                                                                             diff_file: Path) -> None:
    env = {**os.environ, "CALORA_BACKEND": "openai", "CALORA_OPENAI_BASE_URL": f"{hostile_model}/v1",
           "CALORA_OPENAI_MAX_ATTEMPTS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "review", "--diff", str(diff_file), "--reviewers", "python"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader went away before the review was printed, as `| head` does
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err.decode()
    assert b"Traceback" not in err and b"BrokenPipeError" not in err


def test_a_closed_pipe_on_a_dry_run_is_quiet(diff_file: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "review", "--diff", str(diff_file), "--dry-run"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    proc.stdout.close()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in err, err.decode()
