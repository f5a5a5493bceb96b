"""Known false positives of trusted rules, recognised from the file itself (pure).

Analyzers flag patterns, not data flow, and some of their most common false alarms are decidable from
the file text alone. Each refinement either drops a diagnostic or lowers it to a nit whose message says
why, so the reviewer still sees it and can disagree:

- ruff S608 on a query string that interpolates only string constants and placeholder lists
  (`", ".join(["%s"] * len(ids))`): the values are still bound parameters, nothing user-given is pasted;
- react/no-danger and vue/no-v-html in a file that sanitizes HTML (DOMPurify, sanitize-html, xss):
  lowered to a nit, the reviewer confirms the sanitized value is the one rendered;
- squawk on the down part of a migration (`-- migrate:down`, `-- +goose Down`, `*.down.sql`): a rollback
  drops what the up part added by design;
- ruff S602 on a constant command (ruff says "seems safe"): a shell, not an injection, so minor;
- detect-secrets on AWS's published example keys (`AKIAIOSFODNN7EXAMPLE`): never a leak;
- squawk's require-concurrent-index-creation on a table the same migration creates: nobody writes to a table
  that does not exist yet, so there is no write to block (squawk's own documentation says as much);
- yamllint's syntax errors in a Go-templated file (a Helm chart's `{{- if … }}`): the file is a template that
  renders to YAML, not YAML;
- detect-secrets' keyword rule on a line whose value is no literal (`secrets: |`, `${{ secrets.X }}`, `$TOKEN`,
  `process.env.X`, `typeof password !== "string"`): the secret, if any, is elsewhere;
- detect-secrets in a file encrypted for committing (a Bitnami `SealedSecret`, a SOPS file with `ENC[...]`
  values): the "secrets" there are ciphertext only the cluster or the key holder can open;
- squawk on a migration written for MySQL (backtick identifiers, `ENGINE=`, `AUTO_INCREMENT`, a table
  `CHARSET`): squawk parses PostgreSQL only, so it reports MySQL syntax as errors and Postgres locking rules
  that do not apply.

One step moves a diagnostic to its cause instead: React's rules-of-hooks names the hook call, and when that line
is unchanged, what made it conditional is an added early return or condition above it in the same component.

Nothing here runs the code: Python is read with `ast`, everything else with regular expressions.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable
from pathlib import PurePosixPath

from reviewers.checks.fragments import ToolInput
from reviewers.checks.model import Diagnostic
from reviewers.contract import Severity

Refinement = Callable[[Diagnostic, ToolInput], Diagnostic | None]

_PLACEHOLDER = re.compile(r"^\s*(%s|\?|:\w+|\$\d+)\s*$")


def _tree(text: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _is_placeholder_list(node: ast.AST) -> bool:
    """`", ".join(["%s"] * n)`, `",".join("?" for _ in ids)`, `", ".join(["?"] * len(ids))` and the like."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            and isinstance(node.func.value, ast.Constant) and len(node.args) == 1):
        return False
    arg = node.args[0]
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mult):
        arg = arg.left if isinstance(arg.left, ast.List | ast.Tuple) else arg.right
    if isinstance(arg, ast.List | ast.Tuple):
        return bool(arg.elts) and all(isinstance(e, ast.Constant) and isinstance(e.value, str)
                                      and _PLACEHOLDER.match(e.value) for e in arg.elts)
    if isinstance(arg, ast.GeneratorExp | ast.ListComp):
        element = arg.elt
        return isinstance(element, ast.Constant) and isinstance(element.value, str) and bool(
            _PLACEHOLDER.match(element.value))
    return False


def _safe_names(tree: ast.Module) -> set[str]:
    """Names only ever assigned a string constant, a join of constants or a placeholder list."""
    safe: dict[str, bool] = {}
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.AugAssign | ast.For | ast.With | ast.NamedExpr):
            for name in ast.walk(node.target if not isinstance(node, ast.With) else node):
                if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Store):
                    safe[name.id] = False
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                ok = _constant_text(value) or _is_placeholder_list(value)
                safe[target.id] = safe.get(target.id, True) and ok
    return {name for name, ok in safe.items() if ok}


def _constant_text(node: ast.AST | None) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _constant_text(node.left) and _constant_text(node.right)
    return isinstance(node, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in node.values)


def _interpolated(node: ast.AST) -> list[ast.expr] | None:
    """The expressions pasted into a query string node, or None when it is not one we can read."""
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _constant_text(node.left):
        right = node.right
        return list(right.elts) if isinstance(right, ast.Tuple) else [right]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and _constant_text(node.func.value)):
        return [*node.args, *(k.value for k in node.keywords)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _interpolated(node.left), _interpolated(node.right)
        parts = []
        for side, sub in ((node.left, left), (node.right, right)):
            if sub is not None:
                parts.extend(sub)
            elif not _constant_text(side):
                parts.append(side)
        return parts
    return None


def s608_constants_only(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """S608 on a query that pastes only constants and placeholder lists: a nit, said why."""
    if diag.code != "S608" or not item.path.endswith((".py", ".pyi")):
        return diag
    tree = _tree(item.text)
    if tree is None:
        return diag
    safe = _safe_names(tree)
    candidates = [n for n in ast.walk(tree) if getattr(n, "lineno", None) is not None
                  and n.lineno <= diag.line <= (n.end_lineno or n.lineno)
                  and isinstance(n, ast.JoinedStr | ast.BinOp | ast.Call)]
    readable = [parts for parts in map(_interpolated, candidates) if parts is not None]
    if not readable:
        return diag
    pasted = [part for parts in readable for part in parts]
    if all((isinstance(p, ast.Name) and p.id in safe) or _is_placeholder_list(p) or _constant_text(p)
           for p in pasted):
        return diag.model_copy(update={
            "severity": Severity.nit,
            "message": diag.message + " (only constants and a placeholder list are pasted into the query; "
                                      "the values stay bound parameters)",
        })
    return diag


_SANITIZER = re.compile(r"\b(DOMPurify\s*\.\s*sanitize|sanitizeHtml|sanitize-html|xss\s*\(|filterXSS|"
                        r"sanitize\s*\()", re.IGNORECASE)


def html_sink_in_sanitizing_file(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """An HTML sink in a file that sanitizes HTML: a nit the reviewer confirms, not a finding."""
    if diag.code not in ("react(no-danger)", "react/no-danger", "vue/no-v-html"):
        return diag
    if not _SANITIZER.search(item.text):
        return diag
    return diag.model_copy(update={
        "severity": Severity.nit,
        "message": diag.message + " (this file sanitizes HTML; confirm the rendered value is the sanitized one)",
    })


_DOWN_MARKER = re.compile(r"^\s*--\s*(migrate:down|\+goose\s+down|\+migrate\s+down|down\s*$)", re.IGNORECASE)


def down_migration_lines(item: ToolInput) -> int | None:
    """The first line of a migration's down part (1 for a `*.down.sql` file), or None."""
    name = PurePosixPath(item.path).name.lower()
    if name.endswith((".down.sql", "_down.sql")) or name == "down.sql":
        return 1
    for number, line in enumerate(item.text.splitlines(), start=1):
        if _DOWN_MARKER.match(line):
            return number
    return None


def squawk_not_on_rollbacks(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """Squawk's migration rules judge the way forward; the down part undoes it by design."""
    start = down_migration_lines(item)
    if start is not None and diag.line >= start:
        return None
    return diag


def shell_true_on_a_constant(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """S602 says itself when the command is a constant ("seems safe"): a shell, not an injection."""
    if diag.code == "S602" and "seems safe" in diag.message:
        return diag.model_copy(update={"severity": Severity.minor})
    return diag


def _line(lines: list[str], number: int) -> str:
    """Line `number` (1-based) of a file's lines; empty where a tool reported one past its end."""
    return lines[number - 1] if 0 < number <= len(lines) else ""


DOCUMENTATION_KEYS = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
"""AWS's own documentation example credentials: never real, used in tests and docs everywhere."""


def documented_example_keys(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """A 'secret' that is AWS's published example key is not a leak."""
    text = _line(item.text.splitlines(), diag.line)
    if any(key in text for key in DOCUMENTATION_KEYS):
        return None
    return diag


_SECRET_VALUE = re.compile(r"""[:=]\s*(?P<value>.*?)\s*(?:#.*)?$""")
_REFERENCE = re.compile(
    r"""^(?:[|>][-+]?|["']?\$\{\{[^}]*\}\}["']?|["']?\$\{?[A-Za-z_]\w*\}?["']?|process\.env\.\w+|os\.environ\b.*|"""
    r"""os\.getenv\(.*|import\.meta\.env\.\w+)[,;]?$""")
_TYPEOF_NAME = re.compile(r"""\btypeof\s+[\w.]+\s*[!=]==?\s*["'](?:string|number|boolean|object|undefined|function|bigint|symbol)["']""")


def secret_keyword_without_a_secret(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """detect-secrets' keyword rule on a line whose value is no literal: a YAML block opener (`secrets: |`), a
    CI expression or environment reference (`${{ secrets.X }}`, `$TOKEN`, `process.env.X`), or a `typeof`
    check (`typeof password !== "string"`). The secret, if any, lives elsewhere."""
    if diag.code != "Secret Keyword":
        return diag
    text = _line(item.text.splitlines(), diag.line)
    if _TYPEOF_NAME.search(text):
        return None
    found = _SECRET_VALUE.search(text)
    if found and _REFERENCE.match(found.group("value")):
        return None
    return diag


_CREATE_INDEX_ON = re.compile(r"\bINDEX\b[^;]*?\bON\s+(?:ONLY\s+)?(\"?[\w.]+\"?)", re.IGNORECASE)


def index_on_a_table_created_here(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """CONCURRENTLY protects writes to an existing table; a table created by this migration has none."""
    if diag.code != "require-concurrent-index-creation":
        return diag
    statement = "\n".join(item.text.splitlines()[diag.line - 1:(diag.end_line or diag.line) + 3])
    found = _CREATE_INDEX_ON.search(statement)
    if found is None:
        return diag
    table = re.escape(found.group(1).strip('"'))
    if re.search(rf'\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"?{table}"?[\s(]', item.text, re.IGNORECASE):
        return None
    return diag


_TEMPLATE_ACTION = re.compile(r"(?<!\$)\{\{-?\s")


def yaml_syntax_in_a_template(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """A Go template (Helm) is not YAML until rendered: its syntax errors are the template's, not the chart's."""
    if diag.code == "syntax" and _TEMPLATE_ACTION.search(item.text):
        return None
    return diag


_ENCRYPTED_FOR_GIT = re.compile(r"^kind:\s*SealedSecret\s*$|ENC\[AES256_GCM,data:", re.MULTILINE)


def ciphertext_is_not_a_leak(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """A SealedSecret or a SOPS file is meant to be committed: its values are encrypted."""
    if _ENCRYPTED_FOR_GIT.search(item.text):
        return None
    return diag


_MYSQL_DIALECT = re.compile(r"`\w+`|\bENGINE\s*=|\bAUTO_INCREMENT\b|\bDEFAULT\s+CHARSET\b|\)\s*(?:DEFAULT\s+)?"
                            r"CHARSET\s*=|\bCHARACTER\s+SET\s+utf8", re.IGNORECASE)
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def squawk_only_on_postgres(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """Squawk knows PostgreSQL only: on a MySQL migration its syntax errors and lock rules are noise.

    Judged on the statements, not the comments: a Postgres migration may well write `status` in a comment.
    """
    if _MYSQL_DIALECT.search(_SQL_COMMENT.sub(" ", item.text)):
        return None
    return diag


_RULES_OF_HOOKS = ("react-hooks(rules-of-hooks)", "react-hooks/rules-of-hooks")
_BRANCH = re.compile(r"^\s*(?:\}\s*)?(?:if\b|else\b|return\b|throw\b|for\b|while\b|switch\b|case\b)")
_TOP_LEVEL_DEFINITION = re.compile(r"^(?:export\s+)?(?:default\s+)?(?:async\s+)?(?:function\b|const\s|let\s|class\s)")
_HOOK_CAUSE_REACH = 60
"""How many lines above an unchanged hook call an added branch may be and still be its cause."""


def hook_made_conditional_here(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """A hook call on an unchanged line is reported from the added branch above it that makes it conditional."""
    if diag.code not in _RULES_OF_HOOKS or diag.line in item.added:
        return diag
    lines = item.text.splitlines()
    for number in range(diag.line - 1, max(0, diag.line - _HOOK_CAUSE_REACH), -1):
        text = _line(lines, number)
        if number in item.added and _BRANCH.search(text):
            return diag.model_copy(update={"line": number, "end_line": diag.end_line or diag.line})
        if _TOP_LEVEL_DEFINITION.search(text):
            break
    return diag


REFINEMENTS: dict[str, tuple[Refinement, ...]] = {
    "ruff": (s608_constants_only, shell_true_on_a_constant),
    "detect-secrets": (documented_example_keys, ciphertext_is_not_a_leak, secret_keyword_without_a_secret),
    "oxlint": (html_sink_in_sanitizing_file, hook_made_conditional_here),
    "eslint": (html_sink_in_sanitizing_file, hook_made_conditional_here),
    "squawk": (squawk_only_on_postgres, squawk_not_on_rollbacks, index_on_a_table_created_here),
    "yamllint": (yaml_syntax_in_a_template,),
}


def refine(diag: Diagnostic, item: ToolInput) -> Diagnostic | None:
    """The diagnostic after the refinements of its tool: the same, lowered to a nit, or dropped."""
    for step in REFINEMENTS.get(diag.tool, ()):
        refined = step(diag, item)
        if refined is None:
            return None
        diag = refined
    return diag
