"""Pick the repository text that helps a reviewer judge one slice, within a token budget (pure over a source).

Four selectors, in the order their snippets are kept when the budget is tight:

1. the function, class, component, statement, YAML key, HCL block or Docker stage that encloses each
   changed region, when the slice shows only part of it;
2. definitions of the names the added lines use (imported from another file of the repository, or defined
   elsewhere in the same file), ranked by how many changed lines use them;
3. the repository profile (`reviewers.context.profile`), a few lines;
4. one or two sibling files of the same kind (the neighbouring test, the previous migration, another
   workflow), shortest first.

Every read goes through `ContextReader`, which never reads a secrets file and reads each path once, so the
count of `RepoSource` calls is the cost of retrieval (on GitHub, API requests).
"""

from __future__ import annotations

import posixpath
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from reviewers.context.source import RepoSource, normalize_path
from reviewers.context.syntax import Definition, ImportedName, enclosing, imports, language_for, outline
from reviewers.contract import ContextSnippet
from reviewers.prompt import context_block
from reviewers.routing import is_test_file, skip_reason
from reviewers.safe_text import is_secret_path, redact
from reviewers.slicing import FileSlice, Slice, TokenCounter, approx_token_count

MAX_SNIPPET_LINES = 60
"""An enclosing definition or a sibling longer than this is shown by its head (the signature first)."""
MAX_DEFINITION_LINES = 40
MAX_NAMES_PER_FILE = 8
"""Names followed to their definitions per changed file (the most used first): bounds the reads."""
MAX_SIBLINGS = 2
MAX_SIBLING_READS = 4
MIN_SIBLING_LINES = 3
PROFILE_PATH = "repository profile"


class ContextReader:
    """A `RepoSource` read once per path, never for a secrets file or a generated/vendored/lock file."""

    def __init__(self, source: RepoSource) -> None:
        self.source = source
        self.revision = getattr(source, "revision", None)
        self.reads = 0
        self.listings = 0
        self._texts: dict[str, str | None] = {}
        self._folders: dict[str, list[str]] = {}
        self._outlines: dict[str, list[Definition]] = {}
        self._imports: dict[str, list[ImportedName]] = {}

    def read(self, path: str) -> str | None:
        if path not in self._texts:
            allowed = not is_secret_path(path) and skip_reason(path) is None
            if allowed:
                self.reads += 1
            self._texts[path] = self.source.read(path) if allowed else None
        return self._texts[path]

    def list_dir(self, folder: str) -> list[str]:
        if folder not in self._folders:
            self.listings += 1
            self._folders[folder] = self.source.list_dir(folder)
        return self._folders[folder]

    def exists(self, path: str) -> bool:
        return path in self.list_dir(posixpath.dirname(path))

    def outline(self, path: str) -> list[Definition]:
        if path not in self._outlines:
            text = self.read(path)
            self._outlines[path] = outline(path, text) if text is not None else []
        return self._outlines[path]


    def imports(self, path: str) -> list[ImportedName]:
        if path not in self._imports:
            text = self.read(path)
            self._imports[path] = imports(path, text) if text is not None else []
        return self._imports[path]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A snippet and its rank (lower is kept first)."""

    rank: tuple[int, ...]
    snippet: ContextSnippet


def retrieve_context(
    piece: Slice,
    source: RepoSource | ContextReader,
    *,
    budget_tokens: int,
    count_tokens: TokenCounter = approx_token_count,
    profile: str = "",
    changed_paths: Iterable[str] = (),
) -> list[ContextSnippet]:
    """The context snippets for `piece`, best first, whose rendered blocks fit in `budget_tokens`."""
    reader = source if isinstance(source, ContextReader) else ContextReader(source)
    candidates = [
        *enclosing_candidates(piece, reader),
        *definition_candidates(piece, reader),
        *([Candidate((2,), ContextSnippet(path=PROFILE_PATH, text=profile, why="calora scan of this commit"))]
          if profile.strip() else []),
    ]
    # A sibling already quoted as a definition shows its convention there: it is not quoted again.
    shown = frozenset(changed_paths) | {f.path for f in piece.files} | {c.snippet.path for c in candidates}
    candidates += sibling_candidates(piece, reader, shown)
    return fit_to_budget(candidates, budget_tokens, count_tokens)


def fit_to_budget(candidates: list[Candidate], budget_tokens: int, count_tokens: TokenCounter) -> list[ContextSnippet]:
    """The best-ranked snippets whose blocks fit: the first one that does not fit is cut to the room left
    (by whole lines, when a few fit) and everything ranked below it is dropped."""
    kept: list[ContextSnippet] = []
    used = 0
    for candidate in sorted(candidates, key=lambda c: c.rank):
        snippet = candidate.snippet
        cost = count_tokens(context_block(snippet)) + 1  # +1: the blank line between prompt parts
        if used + cost <= budget_tokens:
            kept.append(snippet)
            used += cost
            continue
        cut = _cut_to_fit(snippet, budget_tokens - used, count_tokens)
        if cut is not None:
            kept.append(cut)
        break
    return kept


def _cut_to_fit(snippet: ContextSnippet, room: int, count_tokens: TokenCounter) -> ContextSnippet | None:
    lines = snippet.text.splitlines()
    low, high, best = 3, len(lines) - 1, None
    while low <= high:  # the most whole lines whose block still fits
        middle = (low + high) // 2
        trial = snippet.model_copy(update={"text": "\n".join(lines[:middle]) + "\n…",
                                           "why": f"{snippet.why}; cut to {middle} lines to fit"})
        if count_tokens(context_block(trial)) + 1 <= room:
            best, low = trial, middle + 1
        else:
            high = middle - 1
    return best


# --- 1. what encloses a change ---------------------------------------------------------------------

def enclosing_candidates(piece: Slice, reader: ContextReader) -> list[Candidate]:
    """The innermost definition around each added region that the slice does not show whole."""
    out: list[Candidate] = []
    for file in piece.files:
        if file.status == "deleted" or language_for(file.path) is None:
            continue
        text = reader.read(file.path)
        if text is None:
            continue
        definitions = reader.outline(file.path)
        regions: dict[int, list[tuple[int, int]]] = {}
        for start, end in file.added:
            for index in enclosing(definitions, start, end):
                if not _shown_whole(definitions[index], file):
                    regions.setdefault(index, []).append((start, end))
                    break
        for index, spans in regions.items():
            d = definitions[index]
            body, note = _head(text, d.start, d.end, MAX_SNIPPET_LINES)
            lines = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)
            why = f"{d.kind} {d.name} (lines {d.start}-{d.end}) encloses changed lines {lines}{note}"
            out.append(Candidate((0, len(out)), _snippet(file.path, body, why)))
    return out


def _shown_whole(d: Definition, file: FileSlice) -> bool:
    return any(start <= d.start and d.end <= end for start, end in file.ranges)


def _head(text: str, start: int, end: int, limit: int) -> tuple[str, str]:
    lines = text.splitlines()[start - 1:end]
    if len(lines) <= limit:
        return "\n".join(lines), ""
    return "\n".join(lines[:limit]) + "\n…", f"; first {limit} of {len(lines)} lines"


def _snippet(path: str, text: str, why: str) -> ContextSnippet:
    return ContextSnippet(path=path, text=redact(text), why=why)


# --- 2. definitions of the names the change uses -----------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
_ATTRIBUTE = re.compile(r"([A-Za-z_$][\w$]*)\.([A-Za-z_$][\w$]*)")
_JS_EXTENSIONS = ("", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".vue", ".d.ts", "/index.ts", "/index.tsx",
                  "/index.js")


def definition_candidates(piece: Slice, reader: ContextReader) -> list[Candidate]:
    """Where the names used on added lines are defined, the most used first (one snippet per definition)."""
    found: dict[tuple[str, int], tuple[int, str, Definition]] = {}
    for file in piece.files:
        if file.status == "deleted" or language_for(file.path) is None or not file.added:
            continue
        text = reader.read(file.path)
        if text is None:
            continue
        added = _added_lines(text, file)
        uses = _name_uses(added)
        imported = {i.name: i for i in reader.imports(file.path)}
        local = reader.outline(file.path)
        added_numbers = {n for start, end in file.added for n in range(start, end + 1)}
        defined_on_added = {d.name for d in local if d.start in added_numbers}
        followed = 0
        for name, count in sorted(uses.items(), key=lambda item: (-item[1], item[0])):  # ties by name: stable
            if followed >= MAX_NAMES_PER_FILE:
                break
            if name in defined_on_added or len(name) < 3:
                continue
            hits = _define(name, file, imported, local, reader, added)
            if hits:
                followed += 1
            for path, d, used in hits:
                key = (path, d.start)
                uses_here = used or count
                if key not in found or found[key][0] < uses_here:
                    found[key] = (uses_here, path, d)
    out = []
    for order, (count, path, d) in enumerate(sorted(found.values(), key=lambda v: -v[0])):
        text = reader.read(path) or ""
        body, note = _head(text, d.start, d.end, MAX_DEFINITION_LINES)
        plural = "s" if count != 1 else ""
        why = f"defines {d.name}, used by {count} changed line{plural}{note}"
        out.append(Candidate((1, -count, order), _snippet(path, body, why)))
    return out


def _added_lines(text: str, file: FileSlice) -> list[str]:
    lines = text.splitlines()
    return [lines[n - 1] for start, end in file.added for n in range(start, end + 1) if 0 < n <= len(lines)]


def _name_uses(lines: list[str]) -> Counter[str]:
    """How many of `lines` use each identifier (and each `module.attribute` pair), once per line."""
    uses: Counter[str] = Counter()
    for line in lines:
        code = line.split("#", 1)[0] if not line.lstrip().startswith("//") else ""
        uses.update(set(_IDENTIFIER.findall(code)))
        uses.update({f"{a}.{b}" for a, b in _ATTRIBUTE.findall(code)})
    return uses


def _define(
    name: str, file: FileSlice, imported: dict[str, ImportedName], local: list[Definition],
    reader: ContextReader, added: list[str],
) -> list[tuple[str, Definition, int]]:
    """(path, definition, uses) for `name` (or `module.attr`): through an import, else in the same file."""
    head, _, attribute = name.partition(".")
    if head in imported:
        entry = imported[head]
        target = _resolve(entry, file.path, reader)
        if target is None:
            return []
        wanted = attribute if entry.source_name == "*" else entry.source_name
        if not wanted or (attribute and entry.source_name != "*"):
            return []
        d = _find(reader.outline(target), wanted, entry.name)
        return [(target, d, 0)] if d is not None else []
    if attribute:
        return []
    d = _find(local, name, name)
    if d is None or _shown_whole(d, file) or any(start <= d.start <= end for start, end in file.ranges):
        return []
    return [(file.path, d, 0)]


def _find(definitions: list[Definition], wanted: str, local_name: str) -> Definition | None:
    """The definition named `wanted` (a default import by its local name, else a Vue script section)."""
    by_name = [d for d in definitions if d.name == (local_name if wanted == "default" else wanted)]
    if by_name:
        return min(by_name, key=lambda d: (not d.top_level, d.start))
    if wanted == "default":
        return next((d for d in definitions if d.kind == "section" and d.name.startswith("<script")), None)
    return None


def _resolve(entry: ImportedName, importer: str, reader: ContextReader) -> str | None:
    """The repository path an import points at, or None (a package from outside the repository)."""
    language = language_for(importer)
    if language == "python":
        return _resolve_python(entry, importer, reader)
    module = entry.module
    if module.startswith(("@/", "~/")):
        module = "src/" + module[2:]
    elif module.startswith("."):
        module = posixpath.normpath(posixpath.join(posixpath.dirname(importer), module))
    else:
        return None
    base = normalize_path(module)
    if not base:
        return None
    return next((base + ext for ext in _JS_EXTENSIONS if reader.exists(base + ext)), None)


def _resolve_python(entry: ImportedName, importer: str, reader: ContextReader) -> str | None:
    parts = [p for p in entry.module.split(".") if p]
    if entry.level:
        package = importer.split("/")[:-1]
        if entry.level > 1:
            package = package[: len(package) - (entry.level - 1)]
        prefixes = ["/".join(package)]
    elif not parts or parts[0] in sys.stdlib_module_names:
        return None  # the standard library is not in the repository: no listing spent on it
    else:
        prefixes = ["", "src"]
    for prefix in prefixes:
        stem = "/".join([*([prefix] if prefix else []), *parts])
        if entry.source_name not in ("*", "default"):  # `from pkg import module`: the module is the target
            as_module = f"{stem}/{entry.source_name}.py" if stem else f"{entry.source_name}.py"
            if reader.exists(as_module):
                return None  # a module object: its attributes are not looked up through this name
        for candidate in (f"{stem}.py", f"{stem}/__init__.py"):
            if stem and reader.exists(candidate):
                return candidate
    return None


# --- 4. siblings of the same kind --------------------------------------------------------------------

def sibling_candidates(piece: Slice, reader: ContextReader, changed: frozenset[str]) -> list[Candidate]:
    """One sibling per changed folder and kind of file, new files first, at most MAX_SIBLINGS per slice."""
    out: list[Candidate] = []
    seen: set[tuple[str, str, bool]] = set()
    for file in sorted(piece.files, key=lambda f: f.status != "added"):
        if len(out) >= MAX_SIBLINGS or file.status == "deleted":
            continue
        folder, kind = posixpath.dirname(file.path), _kind(file.path)
        if (folder, *kind) in seen:
            continue
        seen.add((folder, *kind))
        siblings = [p for p in reader.list_dir(folder) if p not in changed and _kind(p) == kind
                    and not is_secret_path(p) and skip_reason(p) is None]
        if not siblings:
            continue
        if _is_migration(file.path):
            before = [p for p in siblings if p < file.path]
            if not before:
                continue
            path, why = before[-1], f"previous migration in {folder}/"
            text = reader.read(path)
        else:
            nearest = sorted(siblings, key=lambda p: _distance(p, file.path))[:MAX_SIBLING_READS]
            # An empty `__init__.py` or a one-line stub shows no convention: at least MIN_SIBLING_LINES lines.
            texts = [(len(t), p, t) for p in nearest
                     if (t := reader.read(p)) is not None and sum(1 for r in t.splitlines() if r.strip())
                     >= MIN_SIBLING_LINES]
            if not texts:
                continue
            _size, path, text = min(texts)
            why = f"sibling {_describe(path)} in {folder or '.'}/, the shortest of {len(texts)} read"
        if text is None:
            continue
        body, note = _head(text, 1, text.count("\n") + 1, MAX_SNIPPET_LINES)
        out.append(Candidate((3, len(out)), _snippet(path, body, why + note)))
    return out


def _kind(path: str) -> tuple[str, bool]:
    name = path.rsplit("/", 1)[-1]
    suffix = "dockerfile" if language_for(path) == "dockerfile" else (name.rsplit(".", 1)[-1] if "." in name else "")
    return suffix, is_test_file(path)


def _is_migration(path: str) -> bool:
    return bool(re.search(r"(^|/)(migrations?|versions|migrate)/", path))


def _distance(candidate: str, path: str) -> tuple[int, str]:
    """Names sharing a longer prefix with the changed file come first (test_orders.py near test_order_api.py)."""
    a, b = candidate.rsplit("/", 1)[-1], path.rsplit("/", 1)[-1]
    shared = len(posixpath.commonprefix([a, b]))
    return -shared, candidate


def _describe(path: str) -> str:
    if is_test_file(path):
        return "test"
    if path.startswith(".github/workflows/"):
        return "workflow"
    if language_for(path) == "dockerfile":
        return "Dockerfile"
    return f".{path.rsplit('.', 1)[-1]} file" if "." in path.rsplit("/", 1)[-1] else "file"
