"""`calora review` and `calora contract schema`, as a user runs them (`calora models`: tests/core/test_models.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from reviewers.backends.base import Backend, ReviewerFailure
from reviewers.contract import Finding, ReviewerOutput, ReviewRequest
from tests.conftest import REPO_ROOT, SMOLLM2_DIR, SMOLLM2_GGUF

SAMPLE = REPO_ROOT / "samples" / "storefront.diff"


class ScriptedBackend(Backend):
    """A stand-in at the model edge: answers each reviewer with a fixed verdict (not a model test)."""

    name = "scripted"

    def __init__(self, answers: dict[str, ReviewerOutput | str]) -> None:
        self.answers = answers

    def review(self, requests: list[ReviewRequest]):
        out = []
        for r in requests:
            answer = self.answers.get(r.reviewer, "")
            out.append(answer if isinstance(answer, ReviewerOutput)
                       else ReviewerFailure(reviewer=r.reviewer, message="scripted failure", raw=answer))
        return out


def approve() -> ReviewerOutput:
    return ReviewerOutput(verdict="approve", findings=[], missing_checks=[], suggested_fix="")


def block_on(path: str, line: int) -> ReviewerOutput:
    finding = Finding(path=path, line=line, severity="blocker", category="security", message="SQL injection")
    return ReviewerOutput(verdict="block", findings=[finding], missing_checks=[], suggested_fix="bind it")


def test_dry_run_json_lists_every_slice_and_what_was_not_reviewed(real_diffs, capsys) -> None:
    diff = next(p for p in real_diffs if p.name.startswith("005-"))  # workflows, python, a lock file
    assert main(["review", "--dry-run", "--format", "json", "--diff", str(diff)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["slices"], "a real diff with Python and workflows has slices"
    for piece in plan["slices"]:
        assert piece["reviewer"] and piece["tokens"] > 0
        assert all(f["path"] and f["lines"] for f in piece["files"])
    reasons = {n["path"]: n["reason"] for n in plan["not_reviewed"]}
    assert any("lock" in reason for reason in reasons.values()), reasons


def test_dry_run_markdown_shows_the_plan(capsys) -> None:
    assert main(["review", "--dry-run", "--diff", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "| python | 0 | app/orders.py" in out and "| sql |" in out and "| docker_ci |" in out


def test_unknown_reviewer_and_missing_file_exit_3(capsys) -> None:
    assert main(["review", "--dry-run", "--diff", str(SAMPLE), "--reviewers", "cobol"]) == 3
    assert "unknown reviewer" in capsys.readouterr().err
    assert main(["review", "--dry-run", "--diff", "/no/such.diff"]) == 3
    assert "does not exist" in capsys.readouterr().err


def test_garbage_diff_is_a_clear_error_with_exit_3(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.diff"
    bad.write_bytes(b"@@ -1,2 +1,2 @@\n this is not a diff header\n")
    code = main(["review", "--dry-run", "--diff", str(bad)])
    err = capsys.readouterr().err
    assert code in (0, 3)
    if code == 3:
        assert err.strip()


@pytest.mark.parametrize(
    ("answers", "expected_code"),
    [
        ({"python": approve(), "sql": approve(), "docker_ci": approve()}, 0),
        ({"python": block_on("app/orders.py", 15), "sql": approve(), "docker_ci": approve()}, 2),
        ({"python": "prose, not JSON", "sql": "nope", "docker_ci": "no"}, 3),
    ],
)
def test_exit_code_follows_the_verdict(monkeypatch, capsys, answers, expected_code) -> None:
    from reviewers import commands

    monkeypatch.setattr(commands, "_make_backend", lambda args, progress: ScriptedBackend(answers))
    # The analyzers' own findings on the sample block it whatever the reviewers say (tests/core/
    # test_evidence_review.py); here only the reviewers' answers decide.
    assert main(["review", "--diff", str(SAMPLE), "--format", "json", "--no-analyzers"]) == expected_code
    result = json.loads(capsys.readouterr().out)
    if expected_code == 2:
        assert result["findings"][0]["path"] == "app/orders.py"
        assert result["findings"][0]["raised_by"] == ["python"]


def test_review_from_stdin(monkeypatch, capsys) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SAMPLE.read_bytes())))
    assert main(["review", "--dry-run", "--diff", "-", "--reviewers", "sql"]) == 0
    out = capsys.readouterr().out
    assert "| sql |" in out and "| python |" not in out


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_range_gives_the_checks_full_files(tmp_path: Path, monkeypatch) -> None:
    from reviewers.commands import read_git_range

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    (repo / "svc.py").write_text("def f():\n    return 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one")
    (repo / "svc.py").write_text("import os\n\n\ndef f():\n    return 1\n")
    (repo / "NOTES.txt").write_text("no reviewer reads this\n")  # fetched by nobody, as in the App
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "two")
    monkeypatch.chdir(repo)
    diff, contents = read_git_range("HEAD~1..HEAD")
    assert b"+import os" in diff and b"+no reviewer reads this" in diff
    assert contents == {"svc.py": "import os\n\n\ndef f():\n    return 1\n"}

    from reviewers.pipeline import run_pipeline

    run = run_pipeline(diff, None, file_contents=contents)
    assert any(f.rule == "F401" and f.line == 1 for f in run.check_findings), run.check_findings
    assert "evidence ruff: whole file: svc.py" in run.result.notes


def test_contract_schema_command_prints_the_generated_schema(capsys) -> None:
    assert main(["contract", "schema", "--only", "ReviewerOutput"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["required"] == ["verdict", "findings", "missing_checks", "suggested_fix"]
    assert schema == ReviewerOutput.model_json_schema()


@pytest.mark.slow
def test_review_command_end_to_end_with_the_real_model(tmp_path: Path) -> None:
    env = {**os.environ, "CALORA_BASE_MODEL": str(SMOLLM2_DIR / SMOLLM2_GGUF), "CALORA_ADAPTERS_DIR": str(tmp_path),
           "CALORA_ASK_BASE_MODEL": "true"}  # no adapter here: ask the base model, so the model runs
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "review", "--diff", str(SAMPLE), "--reviewers", "sql",
         "--max-new-tokens", "48"],
        check=False, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600,
    )
    assert done.returncode in (0, 1, 2, 3), done.stderr
    assert "loading the engine backend" in done.stderr  # the default backend (reviewers/backends/factory.py)
    assert done.stdout.startswith("## "), done.stdout  # a rendered review, complete or flagged incomplete


def test_the_default_review_loads_no_model_when_no_adapter_is_installed(tmp_path: Path) -> None:
    """No adapter and the bare base model not asked: the evidence alone, without fetching or loading a model."""
    env = {**os.environ, "CALORA_ADAPTERS_DIR": str(tmp_path), "CALORA_CACHE_DIR": str(tmp_path / "empty-cache")}
    env.pop("CALORA_ASK_BASE_MODEL", None)
    done = subprocess.run([sys.executable, "-m", "app.cli", "review", "--diff", str(SAMPLE)], check=False,
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 2, done.stderr  # block: ruff's S608 on the f-string query
    assert "no model is loaded" in done.stderr and "loading the" not in done.stderr
    assert "checks:ruff/S608" in done.stdout and "docker_ci, python, sql: not asked" in done.stdout
