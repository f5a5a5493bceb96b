"""The code-style gate: each check on hand-written code, real ruff, the committed cases, and a model run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from eval.generation import Generation, TransformersModel
from eval.style_gate import (
    RuffLinter,
    StyleCase,
    StyleCaseError,
    StyleCheck,
    default_style_cases_dir,
    extract_code,
    grade_style,
    load_style_cases,
    run_check,
    run_style_gate,
)
from reviewers.prompt import ChatMessage

GOOD = '''Here you go:
```python
import re


def slugify(title: str) -> str:
    """Lowercase the title and join its words with hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
```
'''
BAD = '''```python
import os, re
def Slugify(Title):
    try:
        return re.sub("[^a-z0-9]+", "-", Title.lower())
    except:
        print("oops")
```'''


def no_lint(code: str, select: list[str] | None = None) -> list[str]:
    return []


def check(kind: str, code: str, **kwargs: Any) -> bool:
    return run_check(StyleCheck(kind=kind, **kwargs), extract_code(code), no_lint).passed


def test_code_is_taken_from_the_first_python_fence_or_the_whole_answer() -> None:
    assert extract_code(GOOD).startswith("import re\n") and "Here you go" not in extract_code(GOOD)
    assert extract_code("x = 1") == "x = 1\n"
    assert extract_code("```py\ny = 2\n") == "y = 2\n"  # an unclosed fence still counts


@pytest.mark.parametrize("kind, kwargs, good, bad", [
    ("parses", {}, True, True),
    ("regex_must", {"pattern": r"def slugify\("}, True, False),
    ("regex_must_not", {"pattern": r"print\("}, True, False),
    ("snake_case_names", {}, True, False),
    ("type_hints", {}, True, False),
    ("docstrings", {}, True, False),
    ("no_bare_except", {}, True, False),
])
def test_each_check_on_a_good_and_a_bad_answer(kind: str, kwargs: dict, good: bool, bad: bool) -> None:
    assert check(kind, GOOD, **kwargs) is good
    assert check(kind, BAD, **kwargs) is bad


def test_names_allow_capwords_classes_and_module_constants_but_not_camel_case_variables() -> None:
    code = "MAX_SIZE = 3\n\n\nclass RetryPolicy:\n    def delays(self) -> list[int]:\n        waitTime = 1\n        return [waitTime]\n"
    outcome = run_check(StyleCheck(kind="snake_case_names"), code, no_lint)
    assert not outcome.passed and outcome.detail == "variable waitTime"


def test_code_that_does_not_parse_fails_the_ast_checks_with_the_reason() -> None:
    outcome = run_check(StyleCheck(kind="type_hints"), "def f(:\n", no_lint)
    assert not outcome.passed and outcome.detail.startswith("does not parse")


def test_prose_without_code_does_not_parse_as_a_program() -> None:
    assert not check("parses", "Sure, I can help with that.")


def test_ruff_flags_unused_imports_and_passes_clean_code() -> None:
    lint = RuffLinter()
    assert lint(extract_code(GOOD)) == []
    problems = lint(extract_code(BAD))
    assert any("F401" in p for p in problems) and any("E722" in p for p in problems)
    assert lint("import os\n", ["E"]) == []  # select narrows the rules


def test_a_bad_regex_in_a_case_is_refused() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        StyleCheck(kind="regex_must", pattern="(")
    with pytest.raises(ValueError, match="needs a pattern"):
        StyleCheck(kind="regex_must_not")


def test_the_committed_style_cases_load_and_each_runs_ruff() -> None:
    cases = load_style_cases(default_style_cases_dir())
    assert len(cases) >= 5
    assert all(any(c.kind == "ruff_clean" for c in case.checks) for case in cases)


def test_a_style_case_file_with_a_bad_check_names_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("id: x\nprompt: p\nchecks:\n  - {kind: spelling}\n")
    with pytest.raises(StyleCaseError, match=r"x.yaml: checks.0.kind"):
        load_style_cases(tmp_path)
    with pytest.raises(StyleCaseError, match="no style cases"):
        load_style_cases(tmp_path / "empty")


class ScriptedChatModel:
    """A scripted chat model at the gate's edge: answers by the function named in the prompt (not a model)."""

    name = "scripted-chat"

    def generate(self, messages: list[ChatMessage]) -> Generation:
        return Generation(text=GOOD if "slugify" in messages[-1].content else BAD, latency_s=0.0)


def test_the_gate_reports_passed_over_total() -> None:
    checks = [StyleCheck(kind="parses"), StyleCheck(kind="type_hints"), StyleCheck(kind="ruff_clean")]
    cases = [StyleCase(id="slug", prompt="Write slugify", checks=checks),
             StyleCase(id="other", prompt="Write another", checks=checks)]
    report = run_style_gate(ScriptedChatModel(), cases)
    assert (report.passed, report.total) == (1, 2)
    assert report.summary().splitlines()[0] == "style gate (scripted-chat): 1/2 passed"
    assert "fail other (type_hints: Slugify(Title), Slugify -> ?; ruff_clean:" in report.summary()


def test_grading_keeps_the_code_and_the_raw_answer() -> None:
    case = StyleCase(id="slug", prompt="p", checks=[StyleCheck(kind="docstrings")])
    result = grade_style(case, GOOD, no_lint)
    assert result.passed and result.raw == GOOD and result.code.startswith("import re")


def test_gate_style_command_with_a_tiny_random_model_fails_every_case(
    tiny_model: TransformersModel, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(TransformersModel, "load", staticmethod(lambda *a, **k: tiny_model))
    code = main(["gate", "style", "--base-model", "tiny-in-memory", "--out", str(tmp_path / "style.json")])
    out = capsys.readouterr().out
    total = len(load_style_cases(default_style_cases_dir()))
    assert code == 1 and f"0/{total} passed" in out
    assert (tmp_path / "style.json").is_file()
