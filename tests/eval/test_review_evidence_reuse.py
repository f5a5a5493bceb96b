"""`calora eval review --save-evidence` / `--evidence-dir`: the same grades without running the analyzers again."""

from __future__ import annotations

import json
import shutil

from app.cli import main
from tests.conftest import REPO_ROOT


def test_saved_evidence_grades_the_same_without_the_analyzers(tmp_path, monkeypatch) -> None:
    cases = tmp_path / "cases" / "python"
    for name in ("approve-placeholder-list-in-fstring", "block-command-injection-shell-true"):
        shutil.copytree(REPO_ROOT / "eval" / "scenarios" / "python" / name, cases / name)
    saved = tmp_path / "evidence"
    assert main(["eval", "review", "--cases", str(tmp_path / "cases"), "--save-evidence", str(saved),
                 "--out", str(tmp_path / "a"), "--no-charts"]) == 0
    assert len(list(saved.glob("*.json"))) == 2

    from reviewers import pipeline

    def no_analyzers(*args, **kwargs):
        raise AssertionError("the analyzers must not run when their reports are given")

    monkeypatch.setattr(pipeline, "gather_evidence", no_analyzers)
    assert main(["eval", "review", "--cases", str(tmp_path / "cases"), "--evidence-dir", str(saved),
                 "--out", str(tmp_path / "b"), "--no-charts"]) == 0
    first, second = (json.loads((tmp_path / d / "review_results.json").read_text()) for d in ("a", "b"))
    assert [s["decision"] for s in first["scenarios"]] == [s["decision"] for s in second["scenarios"]]
    assert first["overall"]["must_finds_hit"] == second["overall"]["must_finds_hit"] >= 1
