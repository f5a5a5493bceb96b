"""The code-style gate for the patch author model (the seed's "main gate 8/8").

A style case is a prompt plus checks on the code the model answers with (`eval/style_cases/*.yaml`):

```yaml
id: chunked-generator
prompt: Write a Python function `chunked(items, size)` ...
checks:
  - {kind: parses}
  - {kind: regex_must, pattern: 'def chunked\\('}
  - {kind: regex_must_not, pattern: 'print\\('}
  - {kind: ruff_clean}                 # `ruff check` (E, F, W, B, I by default, or `select: [...]`)
  - {kind: snake_case_names}           # functions, arguments and variables snake_case; classes CapWords
  - {kind: type_hints}                 # every argument (but self/cls) and every return annotated
  - {kind: docstrings}                 # every public function and class has one
  - {kind: no_bare_except}
```

The code checked is the first ```python (or plain ```) fence of the answer, else the whole answer. A case
passes when every check passes; the gate reports passed/total. Checks are pure except `ruff_clean`, whose
linter is injected (`RuffLinter` runs the ruff binary the project depends on).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eval.generation import ChatModel
from reviewers.prompt import ChatMessage

STYLE_SYSTEM_PROMPT = (
    "You are the patch author of a code-review team. Write clean, idiomatic, typed Python 3.11: snake_case "
    "names, type hints on every function, a docstring on public functions, no print debugging, no bare "
    "except. Answer with one ```python code block and nothing else."
)

CheckKind = Literal["parses", "regex_must", "regex_must_not", "ruff_clean", "snake_case_names", "type_hints",
                    "docstrings", "no_bare_except"]


class StyleCaseError(ValueError):
    """A style case file that cannot be used; the message names the file and field."""


class StyleCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: CheckKind
    pattern: str | None = Field(default=None, description="Regular expression for regex_must / regex_must_not.")
    select: list[str] | None = Field(default=None, description="Ruff rule codes for ruff_clean (default rules).")

    @model_validator(mode="after")
    def _pattern_where_needed(self) -> StyleCheck:
        if self.kind.startswith("regex_"):
            if not self.pattern:
                raise ValueError(f"{self.kind} needs a pattern")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a regular expression: {exc}") from exc
        return self

    def describe(self) -> str:
        return f"{self.kind}({self.pattern})" if self.pattern else self.kind


class StyleCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    prompt: str = Field(min_length=1)
    system: str = STYLE_SYSTEM_PROMPT
    checks: list[StyleCheck] = Field(min_length=1)

    def messages(self) -> list[ChatMessage]:
        return [ChatMessage(role="system", content=self.system), ChatMessage(role="user", content=self.prompt)]


class CheckOutcome(BaseModel):
    check: str
    passed: bool
    detail: str = ""


class StyleCaseResult(BaseModel):
    case_id: str
    passed: bool
    checks: list[CheckOutcome]
    code: str
    raw: str
    latency_s: float | None = None


class StyleReport(BaseModel):
    """The gate's result: passed/total and every case's checks."""

    model: str
    passed: int
    total: int
    results: list[StyleCaseResult]

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def summary(self) -> str:
        lines = [f"style gate ({self.model}): {self.passed}/{self.total} passed"]
        for r in self.results:
            failed = [f"{c.check}: {c.detail}" if c.detail else c.check for c in r.checks if not c.passed]
            lines.append(f"  {'PASS' if r.passed else 'fail'} {r.case_id}" + (f" ({'; '.join(failed)})" if failed else ""))
        return "\n".join(lines)


# --- loading ---------------------------------------------------------------------------------------

def default_style_cases_dir() -> Path:
    return Path(__file__).resolve().parent / "style_cases"


def load_style_cases(folder: Path) -> list[StyleCase]:
    files = sorted(p for p in folder.glob("*.y*ml") if p.is_file()) if folder.is_dir() else []
    if not files:
        raise StyleCaseError(f"{folder}: no style cases (*.yaml)")
    cases = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            cases.append(StyleCase.model_validate(data))
        except yaml.YAMLError as exc:
            raise StyleCaseError(f"{path}: not valid YAML: {exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            raise StyleCaseError(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise StyleCaseError(f"{folder}: duplicate style case ids")
    return cases


# --- checks (pure, but for the injected linter) ----------------------------------------------------

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\r?\n(.*?)(?:```|\Z)", re.DOTALL)
_SNAKE = re.compile(r"^_{0,2}[a-z][a-z0-9_]*_{0,2}$")
_CONSTANT = re.compile(r"^_?[A-Z][A-Z0-9_]*$")
_CAPWORDS = re.compile(r"^_?[A-Z][A-Za-z0-9]*$")

Linter = Callable[[str, list[str] | None], list[str]]


def extract_code(text: str) -> str:
    """The first ```python (or plain) fence's body; the whole text when there is no fence."""
    match = _FENCE.search(text)
    return (match.group(1) if match else text).strip("\n") + "\n"


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def bad_names(tree: ast.AST) -> list[str]:
    """Names that break the convention: functions/arguments/variables snake_case, classes CapWords.

    Module-level ALL_CAPS constants are allowed.
    """
    bad = []
    module_level = {id(n) for n in getattr(tree, "body", [])}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and not _CAPWORDS.match(node.name):
            bad.append(f"class {node.name}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not _SNAKE.match(node.name):
                bad.append(f"function {node.name}")
            args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            args += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
            bad += [f"argument {a.arg}" for a in args if not _SNAKE.match(a.arg)]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and not _SNAKE.match(name.id):
                        if id(node) in module_level and _CONSTANT.match(name.id):
                            continue
                        bad.append(f"variable {name.id}")
    return bad


def missing_hints(tree: ast.AST) -> list[str]:
    missing = []
    for fn in _functions(tree):
        args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        args += [a for a in (fn.args.vararg, fn.args.kwarg) if a is not None]
        for i, arg in enumerate(args):
            if arg.annotation is None and not (i == 0 and arg.arg in ("self", "cls")):
                missing.append(f"{fn.name}({arg.arg})")
        if fn.returns is None and fn.name != "__init__":
            missing.append(f"{fn.name} -> ?")
    return missing


def missing_docstrings(tree: ast.AST) -> list[str]:
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    return [n.name for n in nodes if not n.name.startswith("_") and ast.get_docstring(n) is None]


def run_check(check: StyleCheck, code: str, linter: Linter) -> CheckOutcome:
    """One check on the extracted code."""
    name = check.describe()
    if check.kind == "regex_must":
        found = re.search(check.pattern or "", code, re.MULTILINE) is not None
        return CheckOutcome(check=name, passed=found, detail="" if found else "not found")
    if check.kind == "regex_must_not":
        match = re.search(check.pattern or "", code, re.MULTILINE)
        return CheckOutcome(check=name, passed=match is None, detail=f"found {match.group(0)!r}" if match else "")
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return CheckOutcome(check=name, passed=False, detail=f"does not parse: {exc.msg} (line {exc.lineno})")
    if check.kind == "parses":
        has_code = any(not isinstance(n, ast.Expr) for n in tree.body)
        return CheckOutcome(check=name, passed=has_code, detail="" if has_code else "no statements")
    if check.kind == "ruff_clean":
        problems = linter(code, check.select)
        return CheckOutcome(check=name, passed=not problems, detail="; ".join(problems[:3]))
    found = {
        "snake_case_names": bad_names,
        "type_hints": missing_hints,
        "docstrings": missing_docstrings,
        "no_bare_except": lambda t: [f"line {n.lineno}" for n in ast.walk(t)
                                     if isinstance(n, ast.ExceptHandler) and n.type is None],
    }[check.kind](tree)
    return CheckOutcome(check=name, passed=not found, detail=", ".join(found[:5]))


def grade_style(case: StyleCase, answer: str, linter: Linter, latency_s: float | None = None) -> StyleCaseResult:
    code = extract_code(answer)
    outcomes = [run_check(c, code, linter) for c in case.checks]
    return StyleCaseResult(case_id=case.id, passed=all(o.passed for o in outcomes), checks=outcomes, code=code,
                           raw=answer, latency_s=latency_s)


DEFAULT_RUFF_SELECT = ["E", "F", "W", "B", "I"]  # pycodestyle, pyflakes, bugbear, import order


class RuffLinter:
    """`ruff check` on a code string (stdin), through the ruff the project depends on; no config files."""

    def __call__(self, code: str, select: list[str] | None = None) -> list[str]:
        cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--line-length", "100",
               "--select", ",".join(select or DEFAULT_RUFF_SELECT), "--output-format", "concise",
               "--stdin-filename", "answer.py", "-"]
        done = subprocess.run(cmd, input=code, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"ruff failed ({done.returncode}): {done.stderr.strip()[:500]}")
        return [line.removeprefix("answer.py:") for line in done.stdout.splitlines()
                if line.startswith("answer.py:")]


def run_style_gate(model: ChatModel, cases: list[StyleCase], linter: Linter | None = None) -> StyleReport:
    """Ask the model every case and grade its code; passed/total."""
    linter = linter or RuffLinter()
    results = []
    for case in cases:
        generation = model.generate(case.messages())
        results.append(grade_style(case, generation.text, linter, generation.latency_s))
    return StyleReport(model=model.name, passed=sum(r.passed for r in results), total=len(results), results=results)
