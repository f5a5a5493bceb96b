"""What a file defines and imports, read with a real parser (pure: path and text in).

Python is read with its own `ast`; TypeScript, TSX, JavaScript, the scripts of Vue components, SQL, YAML,
HCL and Dockerfiles with tree-sitter grammars. `outline` lists definitions (functions, classes, methods,
components, SQL statements, YAML keys, HCL blocks, Docker stages) with their line spans, so retrieval can
find what encloses a changed line and where a used name is defined; `imports` lists what a file imports
by name, so retrieval can follow a name to the file that defines it.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import tree_sitter

ENCLOSING_KINDS = frozenset({"function", "method", "class", "component", "interface", "type", "enum",
                             "statement", "key", "block", "stage", "section"})
"""Kinds that can enclose a change (a constant is looked up by name, never shown as an enclosure)."""


@dataclass(frozen=True, slots=True)
class Definition:
    """One named thing a file defines, lines 1-based and inclusive; `parent` is the enclosing definition."""

    name: str
    kind: str
    start: int
    end: int
    parent: int | None = None
    top_level: bool = True


@dataclass(frozen=True, slots=True)
class ImportedName:
    """`name` as used in the file, bound to `source_name` of module `module` (`*` for a whole module)."""

    name: str
    module: str
    source_name: str
    level: int = 0  # Python's leading dots of a relative import; 0 for JS/TS (relative paths start with .)


@dataclass(slots=True)
class _Outline:
    items: list[Definition] = field(default_factory=list)

    def add(self, name: str, kind: str, start: int, end: int, parent: int | None) -> int:
        self.items.append(Definition(name, kind, start, end, parent, parent is None))
        return len(self.items) - 1


def language_for(path: str) -> str | None:
    """The parser a path is read with, or None when none applies."""
    name = path.rsplit("/", 1)[-1]
    lower = name.lower()
    if lower.startswith(("dockerfile", "containerfile")) or lower.endswith(".dockerfile"):
        return "dockerfile"
    suffix = lower.rsplit(".", 1)[-1] if "." in lower else ""
    return {"py": "python", "pyi": "python", "ts": "typescript", "mts": "typescript", "cts": "typescript",
            "tsx": "tsx", "js": "javascript", "jsx": "javascript", "mjs": "javascript", "cjs": "javascript",
            "vue": "vue", "sql": "sql", "yml": "yaml", "yaml": "yaml", "tf": "hcl", "hcl": "hcl",
            "tfvars": "hcl"}.get(suffix)


@cache
def _parser(language: str) -> tree_sitter.Parser:
    if language in ("typescript", "tsx"):
        import tree_sitter_typescript as grammar
        capsule = grammar.language_tsx() if language == "tsx" else grammar.language_typescript()
    else:
        grammar = __import__(f"tree_sitter_{language}")
        capsule = grammar.language()
    with warnings.catch_warnings():  # tree-sitter-dockerfile still hands over an int, which works but warns
        warnings.simplefilter("ignore", DeprecationWarning)
        return tree_sitter.Parser(tree_sitter.Language(capsule))


def has_syntax_errors(language: str, text: str) -> bool:
    """Whether tree-sitter reads `text` as `language` only with error or missing nodes."""
    return _parser(language).parse(text.encode("utf-8")).root_node.has_error


def outline(path: str, text: str) -> list[Definition]:
    """Every definition of `text` (read as `path`'s language), outer ones before the ones they enclose."""
    language = language_for(path)
    if language is None:
        return []
    out = _Outline()
    if language == "python":
        _python_outline(text, out)
    elif language == "vue":
        _vue_outline(text, out)
    else:
        root = _parser(language).parse(text.encode("utf-8")).root_node
        _WALKERS[language](root, out, None)
    return out.items


def imports(path: str, text: str) -> list[ImportedName]:
    """The names `text` imports, each with the module (Python dotted, or a JS/TS specifier) it comes from."""
    language = language_for(path)
    if language == "python":
        return _python_imports(text)
    if language in ("typescript", "tsx", "javascript"):
        return _script_imports(_parser(language).parse(text.encode("utf-8")).root_node)
    if language == "vue":
        return [name for block, _offset, script_language in _vue_scripts(text)
                for name in _script_imports(_parser(script_language).parse(block.encode("utf-8")).root_node)]
    return []


def enclosing(definitions: list[Definition], start: int, end: int) -> list[int]:
    """Indexes of the definitions that contain lines start..end, innermost first."""
    inside = [i for i, d in enumerate(definitions)
              if d.kind in ENCLOSING_KINDS and d.start <= start and end <= d.end]
    return sorted(inside, key=lambda i: definitions[i].end - definitions[i].start)


# --- Python ---------------------------------------------------------------------------------------

@lru_cache(maxsize=32)
def _python_tree(text: str) -> ast.Module | None:
    """One parse per text for both `outline` and `imports` (retrieval asks both of each changed file)."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _python_outline(text: str, out: _Outline) -> None:
    tree = _python_tree(text)
    if tree is None:
        return

    def visit(body: list[ast.stmt], parent: int | None, in_class: bool) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                is_class = isinstance(node, ast.ClassDef)
                kind = "class" if is_class else ("method" if in_class else "function")
                index = out.add(node.name, kind, start, node.end_lineno or node.lineno, parent)
                visit(node.body, index, is_class)
            elif parent is None and isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        out.add(target.id, "constant", node.lineno, node.end_lineno or node.lineno, None)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):  # definitions under `if TYPE_CHECKING:` etc.
                visit([n for part in ("body", "orelse", "finalbody") for n in getattr(node, part, [])],
                      parent, in_class)

    visit(tree.body, None, False)


def _python_imports(text: str) -> list[ImportedName]:
    tree = _python_tree(text)
    if tree is None:
        return []
    found: list[ImportedName] = []
    for node in _module_statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(ImportedName(alias.asname or alias.name.split(".")[0],
                                          alias.name if alias.asname else alias.name.split(".")[0], "*"))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    found.append(ImportedName(alias.asname or alias.name, node.module or "", alias.name,
                                              node.level))
    return found


def _module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, also under `if`/`try`/`with` (where guarded imports live), not in functions."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            yield from _module_statements(
                [n for part in ("body", "orelse", "finalbody") for n in getattr(node, part, [])]
                + [n for handler in getattr(node, "handlers", []) for n in handler.body])


# --- TypeScript / JavaScript ----------------------------------------------------------------------

_TS_DECLARATIONS = {"function_declaration": "function", "generator_function_declaration": "function",
                    "class_declaration": "class", "abstract_class_declaration": "class",
                    "method_definition": "method", "interface_declaration": "interface",
                    "type_alias_declaration": "type", "enum_declaration": "enum"}
_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}


def _text(node: Any) -> str:
    return node.text.decode("utf-8", errors="replace") if node is not None and node.text is not None else ""


def _lines(node: Any, offset: int = 0) -> tuple[int, int]:
    return node.start_point[0] + 1 + offset, node.end_point[0] + 1 + offset


def _script_walk(node: Any, out: _Outline, parent: int | None, offset: int = 0) -> None:
    for child in node.named_children:
        span_node = node if node.type == "export_statement" else child
        kind = _TS_DECLARATIONS.get(child.type)
        if kind is not None:
            start, end = _lines(span_node, offset)
            index = out.add(_text(child.child_by_field_name("name")), kind, start, end, parent)
            _script_walk(child, out, index, offset)
            continue
        if child.type in ("lexical_declaration", "variable_declaration") and node.type in (
                "program", "export_statement"):
            for declarator in child.named_children:
                if declarator.type != "variable_declarator":
                    continue
                name = _text(declarator.child_by_field_name("name"))
                value = declarator.child_by_field_name("value")
                is_function = value is not None and value.type in _FUNCTION_VALUES
                kind = ("component" if name[:1].isupper() else "function") if is_function else "constant"
                start, end = _lines(span_node, offset)
                index = out.add(name, kind, start, end, parent)
                if value is not None:
                    _script_walk(value, out, index, offset)
            continue
        # Only a node over several lines can hold a definition worth finding (keeps the walk short).
        if child.end_point[0] > child.start_point[0] or child.type == "export_statement":
            _script_walk(child, out, parent, offset)


def _script_imports(root: Any) -> list[ImportedName]:
    found: list[ImportedName] = []
    for statement in root.named_children:
        if statement.type != "import_statement":
            continue
        module = _text(statement.child_by_field_name("source")).strip("'\"`")
        for clause in statement.named_children:
            if clause.type != "import_clause":
                continue
            for part in clause.named_children:
                if part.type == "identifier":
                    found.append(ImportedName(_text(part), module, "default"))
                elif part.type == "namespace_import":
                    found.extend(ImportedName(_text(n), module, "*") for n in part.named_children
                                 if n.type == "identifier")
                elif part.type == "named_imports":
                    for spec in part.named_children:
                        name = _text(spec.child_by_field_name("name"))
                        alias = _text(spec.child_by_field_name("alias")) or name
                        found.append(ImportedName(alias, module, name))
    return found


# --- Vue single-file components -------------------------------------------------------------------

_VUE_BLOCK = re.compile(r"^<(script|template|style)\b([^>]*)>\s*$(.*?)^</\1>", re.MULTILINE | re.DOTALL)


def _vue_blocks(text: str) -> Iterator[tuple[re.Match[str], int, int]]:
    for match in _VUE_BLOCK.finditer(text):
        start = text.count("\n", 0, match.start()) + 1
        yield match, start, text.count("\n", 0, match.end()) + 1


def _vue_scripts(text: str) -> Iterator[tuple[str, int, str]]:
    """(script body, line offset of its first line minus one, grammar) of each <script> block."""
    for match, start, _end in _vue_blocks(text):
        if match.group(1) == "script":
            script_language = "typescript" if re.search(r"lang=[\"']tsx?[\"']", match.group(2)) else "javascript"
            body_start = text.count("\n", 0, match.start(3))
            yield text[match.start(3):match.end(3)], body_start, script_language


def _vue_outline(text: str, out: _Outline) -> None:
    for match, start, end in _vue_blocks(text):
        index = out.add(f"<{match.group(1)}{match.group(2)}>", "section", start, end, None)
        if match.group(1) == "script":
            script_language = "typescript" if re.search(r"lang=[\"']tsx?[\"']", match.group(2)) else "javascript"
            body_start = text.count("\n", 0, match.start(3))
            root = _parser(script_language).parse(match.group(3).encode("utf-8")).root_node
            _script_walk(root, out, index, body_start)


# --- SQL, YAML, HCL, Dockerfile -------------------------------------------------------------------

def _first_line(node: Any, limit: int = 80) -> str:
    return _text(node).split("\n", 1)[0].strip()[:limit]


def _sql_walk(node: Any, out: _Outline, parent: int | None) -> None:
    for child in node.named_children:
        if child.type == "statement":
            out.add(_first_line(child), "statement", *_lines(child), parent)


def _yaml_walk(node: Any, out: _Outline, parent: int | None, prefix: str = "") -> None:
    for child in node.named_children:
        if child.end_point[0] == child.start_point[0]:
            continue  # a one-line pair is shown whole by any hunk that touches it
        if child.type == "block_mapping_pair":
            name = f"{prefix}{_text(child.child_by_field_name('key'))}"
            index = out.add(name, "key", *_lines(child), parent)
            _yaml_walk(child, out, index, name + ".")
        else:
            _yaml_walk(child, out, parent, prefix)


def _hcl_walk(node: Any, out: _Outline, parent: int | None) -> None:
    for child in node.named_children:
        if child.type == "block":
            name = " ".join(_text(part) for part in child.named_children
                            if part.type in ("identifier", "string_lit"))
            index = out.add(name, "block", *_lines(child), parent)
            _hcl_walk(child, out, index)
        elif child.type in ("body", "config_file"):
            _hcl_walk(child, out, parent)


def _dockerfile_walk(node: Any, out: _Outline, parent: int | None) -> None:
    """Each build stage runs from its FROM to the line before the next FROM (or the end)."""
    froms = [child for child in node.named_children if child.type == "from_instruction"]
    last_line = node.end_point[0] + (0 if node.end_point[1] == 0 else 1)
    for i, stage in enumerate(froms):
        end = froms[i + 1].start_point[0] if i + 1 < len(froms) else max(last_line, stage.end_point[0] + 1)
        out.add(_first_line(stage), "stage", stage.start_point[0] + 1, end, parent)


_WALKERS = {"typescript": _script_walk, "tsx": _script_walk, "javascript": _script_walk, "sql": _sql_walk,
            "yaml": _yaml_walk, "hcl": _hcl_walk, "dockerfile": _dockerfile_walk}
