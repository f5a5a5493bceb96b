"""`calora review` never approves code it did not review (issue #15 item 1).

Files over a cap are picked riskiest first (code, then tests, config, docs; the larger change first; the
path only breaks ties), and whatever a cap leaves out makes the review incomplete (exit 3) unless the user
raised the cap or passed `--allow-partial`. An empty diff is an input error, not an approval.

The reviewers are served by a loopback fake OpenAI-compatible server that approves everything (no model
is tested here: what is tested is what `calora review` does with the files it could not review).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from reviewers.contract import ReviewerOutput, Verdict, render_answer
from reviewers.slicing import SliceLimits, review_priority, slice_diff
from tests.loopback import serve_in_thread
from tests.serving.fake_openai import FakeOpenAI, Reply

APPROVE = render_answer(ReviewerOutput(verdict=Verdict.approve, findings=[], missing_checks=[], suggested_fix=""))
EVIL = "zz/evil.py"
# Runs whatever the request names; written so that no static analyzer flags it: only a reviewer would.
EVIL_LINES = ["import os", "from flask import request", "", "def run():",
              "    return getattr(os, request.args['fn'])(request.args['arg'])"]


def added_file(path: str, lines: list[str]) -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n{body}")


def over_cap_diff() -> str:
    """Four small modules, a README, a test, and the dangerous file last in every order but risk."""
    files = [added_file(f"pkg/mod_{c}.py", [f"VALUE_{c.upper()} = 1"]) for c in "abcd"]
    files.append(added_file("README.md", [f"line {n} of the docs" for n in range(40)]))
    files.append(added_file("tests/test_mod.py", ["def test_x():", "    assert True", "", "", ""]))
    files.append(added_file(EVIL, EVIL_LINES))
    return "".join(files)


@pytest.fixture()
def approving_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI([Reply(content=APPROVE)])
    with serve_in_thread(fake.app) as url:
        monkeypatch.setenv("CALORA_BACKEND", "openai")
        monkeypatch.setenv("CALORA_OPENAI_BASE_URL", f"{url}/v1")
        monkeypatch.setenv("CALORA_OPENAI_MAX_ATTEMPTS", "1")
        yield fake


def reviewed_paths(fake: FakeOpenAI) -> str:
    return "\n".join(str(body["messages"]) for body in fake.bodies)


@pytest.fixture()
def diff_file(tmp_path: Path) -> Path:
    path = tmp_path / "change.diff"
    path.write_text(over_cap_diff())
    return path


def test_files_over_max_files_make_the_review_incomplete_and_the_riskiest_are_reviewed(
    approving_server: FakeOpenAI, diff_file: Path, capsys
) -> None:
    code = main(["review", "--diff", str(diff_file), "--max-files", "2"])
    out, err = capsys.readouterr()
    assert code == 3, out + err
    assert "Incomplete" in out and "over max_files=2" in out
    assert EVIL in reviewed_paths(approving_server)  # the largest code change, though last by name
    assert "README.md" not in reviewed_paths(approving_server)
    assert "not reviewed" in err and "exit code 3" in err


def test_allow_partial_accepts_a_capped_review_and_says_so(
    approving_server: FakeOpenAI, diff_file: Path, capsys
) -> None:
    code = main(["review", "--diff", str(diff_file), "--max-files", "2", "--allow-partial"])
    out = capsys.readouterr().out
    assert code == 0
    assert "partial review allowed" in out and "over max_files=2" in out


def test_raising_the_cap_reviews_everything(approving_server: FakeOpenAI, diff_file: Path, capsys) -> None:
    assert main(["review", "--diff", str(diff_file), "--max-files", "50"]) == 0
    assert "Approve" in capsys.readouterr().out


def test_the_slice_cap_gives_its_slices_to_the_riskiest_files(
    approving_server: FakeOpenAI, diff_file: Path, capsys
) -> None:
    code = main(["review", "--diff", str(diff_file), "--budget", "64", "--max-slices-per-reviewer", "1",
                 "--reviewers", "python"])
    out = capsys.readouterr().out
    assert code == 3 and "over max_slices_per_reviewer=1" in out
    assert EVIL in reviewed_paths(approving_server)


def test_the_byte_cap_keeps_code_before_docs(approving_server: FakeOpenAI, diff_file: Path, capsys) -> None:
    size = len(added_file(EVIL, EVIL_LINES).encode())
    code = main(["review", "--diff", str(diff_file), "--max-diff-bytes", str(size + 10)])
    out = capsys.readouterr().out
    assert code == 3 and "over max_diff_bytes" in out
    assert EVIL in reviewed_paths(approving_server)


def test_a_lock_file_skipped_by_rule_leaves_the_review_complete(
    approving_server: FakeOpenAI, tmp_path: Path, capsys
) -> None:
    diff = tmp_path / "d.diff"
    diff.write_text(added_file("app.py", ["x = 1"]) + added_file("poetry.lock", ["[[package]]"]))
    assert main(["review", "--diff", str(diff)]) == 0
    assert "lock file" in capsys.readouterr().out


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_an_empty_diff_is_an_error_not_an_approval(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    empty = tmp_path / "empty.diff"
    empty.write_text("\n")
    if how == "stdin":
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    code = main(["review", "--diff", "-" if how == "stdin" else str(empty)])
    err = capsys.readouterr().err
    assert code == 3 and "empty" in err and "nothing to review" in err


# --- the order itself (pure) ---------------------------------------------------------------------


def test_priority_puts_code_before_tests_config_and_docs() -> None:
    assert [review_priority(p) for p in ("src/a.py", "tests/test_a.py", "config.yml", "README.md")] == [0, 1, 2, 3]


def test_max_files_keeps_the_riskiest_files_not_the_first_names() -> None:
    plan = slice_diff(over_cap_diff(), SliceLimits(max_files=1))
    assert {f.path for s in plan.slices for f in s.files} == {EVIL}
    left = {n.path: n.kind for n in plan.not_reviewed}
    assert left["pkg/mod_a.py"] == left["tests/test_mod.py"] == "over_cap"
    assert left["README.md"] == "skipped"  # no reviewer takes docs: a rule the user sees, not a cap


def test_the_dry_run_plan_says_which_files_a_cap_left_out(diff_file: Path, capsys) -> None:
    assert main(["review", "--diff", str(diff_file), "--dry-run", "--format", "json", "--max-files", "1"]) == 0
    plan = json.loads(capsys.readouterr().out)
    kinds = {n["path"]: n["kind"] for n in plan["not_reviewed"]}
    assert kinds == {"pkg/mod_a.py": "over_cap", "pkg/mod_b.py": "over_cap", "pkg/mod_c.py": "over_cap",
                     "pkg/mod_d.py": "over_cap", "README.md": "skipped", "tests/test_mod.py": "over_cap"}
