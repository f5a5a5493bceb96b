"""The pure core of the loop: reading the author's answer, judging a patch's paths, feedback, stopping."""

from __future__ import annotations

import pytest

from loop.patches import (
    NoPatchError,
    Rejection,
    extract_patch,
    parse_numstat,
    parse_rejections,
    patch_problems,
    path_problem,
)
from loop.prompts import HISTORY_CHARS, RepoContext, conversation, feedback_message, task_message
from loop.rounds import AuthorTurn, Dispute, RoundRecord, TestRun, match_disputes, stop_reason
from reviewers.contract import Category, Severity
from reviewers.pipeline import PipelineRun
from reviewers.slicing import SlicePlan
from reviewers.synthesis import MergedFinding, ReviewResult, Verdict, plan_revision

NEW_FILE = "diff --git a/x.py b/x.py\nnew file mode 100644\n--- /dev/null\n+++ b/x.py\n@@ -0,0 +1 @@\n+x = 1\n"


def test_the_patch_is_taken_from_a_diff_fence_with_prose_around_it() -> None:
    answer = f"Sure! Here it is:\n\n```diff\n{NEW_FILE}```\n\nREJECT a.py:3: not a bug\n"
    assert extract_patch(answer) == NEW_FILE


def test_a_bare_diff_and_a_plain_fence_are_found_too() -> None:
    assert extract_patch("Change:\n" + NEW_FILE) == NEW_FILE
    assert extract_patch(f"```\n{NEW_FILE}```") == NEW_FILE
    assert extract_patch(f"```python\nprint(1)\n```\nthen\n```patch\n{NEW_FILE}```") == NEW_FILE


def test_prose_without_a_diff_is_a_clear_error() -> None:
    with pytest.raises(NoPatchError, match="no unified diff"):
        extract_patch("I would add a function that queries the users table safely.")
    with pytest.raises(NoPatchError):
        extract_patch("--- \n")  # a markdown rule is not a diff header


def test_reject_lines_are_read_with_their_reasons() -> None:
    answer = "```diff\n" + NEW_FILE + "```\nREJECT shop/db.py:7: the hint is deliberate\n- REJECT S608: constant table\n"
    assert parse_rejections(answer) == [
        Rejection(target="shop/db.py:7", reason="the hint is deliberate"),
        Rejection(target="S608", reason="constant table"),
    ]
    assert parse_rejections("REJECT everything\nno reason here") == []
    inside = "```diff\n--- a/n.txt\n+++ b/n.txt\n@@ -1 +1 @@\n-REJECT old: line\n+kept\n```\nREJECT S608: constant\n"
    assert parse_rejections(inside, extract_patch(inside)) == [Rejection(target="S608", reason="constant")]


@pytest.mark.parametrize("path, why", [
    ("../outside.txt", "leaves the repository"),
    ("a/../../b", "leaves the repository"),
    ("/etc/passwd", "absolute"),
    ("C:/x", "absolute"),
    (".git/hooks/pre-commit", "inside .git/"),
    ("sub/.GIT/config", "inside .git/"),
    (".git./config", "inside .git/"),
    ("a\\b", "backslash"),
    ("a\nb", "control characters"),
    ("", "empty"),
])
def test_paths_outside_the_repository_or_in_git_are_refused(path: str, why: str) -> None:
    problem = path_problem(path)
    assert problem is not None and why in problem


def test_ordinary_paths_pass() -> None:
    assert path_problem("shop/db.py") is None
    assert path_problem(".github/workflows/ci.yml") is None
    assert path_problem(".gitignore") is None


def test_a_patch_that_writes_into_git_a_symlink_or_a_binary_or_is_too_large_is_refused() -> None:
    into_git = NEW_FILE.replace("x.py", ".git/hooks/post-checkout")
    assert any("inside .git/" in p for p in patch_problems(into_git))
    symlink = ("diff --git a/link b/link\nnew file mode 120000\n--- /dev/null\n+++ b/link\n@@ -0,0 +1 @@\n"
               "+/etc\n\\ No newline at end of file\n")
    assert any("symbolic link" in p for p in patch_problems(symlink))
    binary = "diff --git a/x.bin b/x.bin\nnew file mode 100644\nGIT binary patch\nliteral 3\nKcmV+\n\nliteral 0\n"
    assert any("binary" in p for p in patch_problems(binary))
    big = NEW_FILE + "".join(f"+line {i}\n" for i in range(20_000))
    assert "over the cap" in patch_problems(big, max_bytes=10_000)[0]
    renamed = "diff --git a/x.py b/y.py\nsimilarity index 100%\nrename from x.py\nrename to ../y.py\n"
    assert any("leaves the repository" in p for p in patch_problems(renamed))
    outside = "--- a/x.py\n+++ b/../../home/user/.bashrc\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    assert any("leaves the repository" in p for p in patch_problems(outside))
    absolute = NEW_FILE.replace("b/x.py", "/etc/cron.d/job")
    assert any("absolute" in p or "leaves" in p for p in patch_problems(absolute))
    sql_comment = "--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1 @@\n--- /tmp/old note\n select 1;\n"
    assert patch_problems(sql_comment) == [], "a removed '-- /tmp' line is not a header"
    assert patch_problems(NEW_FILE) == []


def test_git_numstat_paths_are_read_with_renames() -> None:
    assert parse_numstat(b"1\t0\tx.py\x002\t1\t\x00old.py\x00new.py\x00") == ["x.py", "old.py", "new.py"]


def _finding(path: str, line: int, severity: str, message: str, by: str) -> MergedFinding:
    return MergedFinding(path=path, line=line, severity=Severity(severity), category=Category.security,
                         message=message, raised_by=[by])


def _reviewed(number: int, findings: list[MergedFinding], tests: TestRun | None = None) -> RoundRecord:
    result = ReviewResult(verdict=Verdict.block if findings else Verdict.approve, findings=findings,
                          revision_plan=plan_revision(findings, []))
    review = PipelineRun(plan=SlicePlan(slices=[], not_reviewed=[]), result=result)
    return RoundRecord(number=number, status="reviewed", message="reviewed", author=AuthorTurn(text="x"),
                       review=review, tests=tests, applied_diff=NEW_FILE)


def test_feedback_lists_blockers_first_then_check_output_and_failing_tests() -> None:
    minor = _finding("x.py", 9, "minor", "name is vague", "python")
    blocker = _finding("x.py", 5, "blocker", "Possible SQL injection vector", "checks:ruff/S608")
    failing = TestRun(command="pytest -q", exit_code=1, output="FAILED test_x.py::test_find - AssertionError")
    text = feedback_message(_reviewed(1, [blocker, minor], failing))
    assert text.index("### Blockers") < text.index("### Other findings") < text.index("### Check output")
    assert "x.py:5 [blocker, security] (checks:ruff/S608) Possible SQL injection" in text
    assert "`pytest -q` exited 1" in text and "FAILED test_x.py::test_find" in text
    assert text.rstrip().endswith("(REJECT lines for points you decline).")


def test_feedback_for_a_patch_that_does_not_apply_quotes_git() -> None:
    record = RoundRecord(number=2, status="does_not_apply", message="patch does not apply",
                         author=AuthorTurn(text="x"), check_output="error: patch failed: shop/prices.py:3")
    assert "error: patch failed: shop/prices.py:3" in feedback_message(record)


def test_the_loop_stops_when_approved_unchanged_or_out_of_rounds() -> None:
    assert stop_reason(_reviewed(1, []), 3) == "approved"
    blocked = _reviewed(1, [_finding("x.py", 5, "blocker", "injection", "checks:ruff/S608")])
    assert stop_reason(blocked, 3) is None
    assert stop_reason(blocked.model_copy(update={"number": 3}), 3) == "max_rounds"
    failing = _reviewed(1, [], TestRun(command="t", exit_code=1))
    assert stop_reason(failing, 3) is None, "an approving review with failing tests is not approved"
    same = RoundRecord(number=2, status="unchanged", message="same", author=AuthorTurn())
    assert stop_reason(same, 3) == "unchanged"


def test_a_rejection_is_shown_next_to_the_finding_it_names() -> None:
    findings = [_finding("shop/db.py", 7, "blocker", "SQL injection", "checks:ruff/S608"),
                _finding("shop/api.py", 3, "minor", "vague name", "python")]
    disputes = match_disputes([Rejection(target="shop/db.py:7", reason="constant"),
                               Rejection(target="S608", reason="constant table"),
                               Rejection(target="shop/api.py", reason="house style"),
                               Rejection(target="the tests", reason="later")], findings)
    assert [d.finding.split(" ")[0] if d.finding else None for d in disputes] == [
        "shop/db.py:7", "shop/db.py:7", "shop/api.py:3", None]


def test_the_conversation_keeps_the_task_and_drops_the_oldest_rounds_when_long() -> None:
    context = RepoContext(files=["a.py"], contents={"a.py": "x = 1\n"})
    long = "y" * (HISTORY_CHARS // 2)
    messages = conversation("do it", context, [(long, "f1"), (long, "f2"), ("short", "f3")])
    assert [m.role for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "## Task\ndo it" in messages[1].content and "### a.py" in messages[1].content
    assert messages[-1].content == "f3" and messages[3].content == "f2"
    assert "a.py" in task_message("t", context)


def test_the_format_example_in_the_authors_prompt_is_a_diff_git_applies(tmp_path) -> None:
    import subprocess

    from loop.prompts import AUTHOR_SYSTEM_PROMPT

    (tmp_path / "util").mkdir()
    (tmp_path / "util" / "maths.py").write_text(
        "def clamp(x: int, lo: int, hi: int) -> int:\n    return max(lo, min(x, hi))\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    example = extract_patch(AUTHOR_SYSTEM_PROMPT)
    check = subprocess.run(["git", "-C", str(tmp_path), "apply", "--check", "-"], input=example.encode(),
                           capture_output=True, check=False)
    assert check.returncode == 0, check.stderr
    assert patch_problems(example) == []


def test_the_terminal_summary_names_each_round_and_where_the_result_is_with_model_text_inert() -> None:
    from loop.commands import render_summary
    from loop.rounds import LoopSummary, RoundLine

    hostile = "@admins <img src=x onerror=alert(1)>"
    summary = LoopSummary(
        loop_id=4, task="t", repo="/r", base_sha="a" * 40, branch="calora/loop-x", worktree="/tmp/w/worktree",
        stop_reason="max_rounds", approved=False, committed=True,
        rounds=[RoundLine(number=1, status="no_patch", decision=None, tests_passed=None, message="no patch"),
                RoundLine(number=2, status="reviewed", decision="block", tests_passed=True, message="review block",
                          disputes=[Dispute(rejection=Rejection(target="S608", reason=hostile), finding=None)])],
    )
    text = render_summary(summary)
    assert text.startswith("## calora loop: not approved (max_rounds) after 2 round(s)")
    assert "1. [no_patch] no patch" in text and "2. [reviewed] review block" in text
    assert "Branch `calora/loop-x` (worktree /tmp/w/worktree) holds the final patch" in text
    assert "git worktree remove /tmp/w/worktree && git branch -D calora/loop-x" in text
    assert "/console/loops/4" in text
    assert "<img" not in text and "@admins" not in text


def test_the_test_command_never_sees_calora_secrets_and_is_killed_at_its_time_limit(
    tmp_path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loop.worktree import run_tests

    monkeypatch.setenv("CALORA_AUTHOR_API_KEY", "sk-author-secret")
    monkeypatch.setenv("CALORA_WEBHOOK_SECRET", "hook-secret")
    monkeypatch.setenv("CALORA_BACKEND", "none")
    shown = run_tests('echo "key=${CALORA_AUTHOR_API_KEY:-absent} hook=${CALORA_WEBHOOK_SECRET:-absent} '
                      'backend=$CALORA_BACKEND"; exit 3', tmp_path, timeout_s=30)
    assert shown.output.strip() == "key=absent hook=absent backend=none"
    assert shown.exit_code == 3 and not shown.passed
    hung = run_tests("sleep 30 & sleep 30", tmp_path, timeout_s=0.5)
    assert hung.timed_out and hung.exit_code is None and hung.seconds < 10
    assert "killed after 0.5 s" in hung.output
