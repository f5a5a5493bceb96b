"""Which reviewers look at which file, as a table.

Adding a reviewer is adding a row to `REVIEWERS` (plus its curated examples); nothing else branches
on reviewer names. Paths are matched as POSIX globs: a pattern without '/' matches the file name
anywhere, `**` matches any number of folders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from reviewers.unified_diff import ParsedDiff


@dataclass(frozen=True)
class ReviewerSpec:
    """One specialist reviewer: the files it takes and what it looks for."""

    name: str
    patterns: tuple[str, ...]
    focus: str
    takes_tests: bool = False  # a test file also goes to this reviewer, not only to `testing`


TEST_PATTERNS: tuple[str, ...] = (
    "tests/**", "test/**", "**/tests/**", "**/test/**", "**/__tests__/**", "e2e/**", "**/e2e/**",
    "test_*.py", "*_test.py", "conftest.py",
    "*.test.ts", "*.test.tsx", "*.spec.ts", "*.spec.tsx", "*.test.js", "*.test.jsx", "*.spec.js",
    "*.spec.jsx", "*.test.mts", "*.spec.mts", "*_test.go", "*_spec.rb", "*Test.java", "*Tests.cs",
)

REVIEWERS: tuple[ReviewerSpec, ...] = (
    ReviewerSpec(
        "python", ("*.py", "*.pyi"),
        "Python code: correctness, error handling, security (injection, secrets, unsafe eval/pickle), "
        "resource handling, typing and clear names.",
        takes_tests=True,
    ),
    ReviewerSpec(
        "react", ("*.jsx", "*.tsx"),
        "React components: hooks rules and dependencies, state updates, effects and cleanup, keys, "
        "accessibility, XSS through dangerouslySetInnerHTML, needless re-renders.",
    ),
    ReviewerSpec(
        # Plain JavaScript (Node servers, scripts, stores, configs) has no reviewer of its own: it is
        # TypeScript without the types, and left out it would go unreviewed, analyzers included.
        "typescript", ("*.ts", "*.mts", "*.cts", "*.js", "*.mjs", "*.cjs"),
        "TypeScript and JavaScript: type safety (any, non-null assertions, unchecked casts), async errors "
        "and unhandled promises, API contracts, input validation.",
    ),
    ReviewerSpec(
        "vue", ("*.vue",),
        "Vue single-file components: reactivity (refs, computed, watchers), props and emits, v-html "
        "XSS, lifecycle cleanup, router and store usage.",
    ),
    ReviewerSpec(
        "sql", ("*.sql", "migrations/**", "**/migrations/**", "alembic/versions/**",
                "**/alembic/versions/**", "db/migrate/**", "**/db/migrate/**"),
        "SQL and migrations: locking and downtime on large tables, reversibility and rollback, "
        "indexes, constraints, data loss, injection, transaction boundaries.",
    ),
    ReviewerSpec(
        "docker_ci", ("Dockerfile", "Dockerfile.*", "*.Dockerfile", "*.dockerfile", "docker-compose*.yml",
                      "docker-compose*.yaml", "compose.yml", "compose.yaml", "compose.*.yml", "compose.*.yaml",
                      ".dockerignore",
                      ".github/workflows/*.yml", ".github/workflows/*.yaml", ".gitlab-ci.yml",
                      ".github/actions/**/action.yml", ".github/actions/**/action.yaml"),
        "Containers and CI: pinned images and actions, secrets exposure, least-privilege permissions, "
        "cache use, reproducible builds, non-root users, health checks.",
    ),
    ReviewerSpec(
        "testing", TEST_PATTERNS,
        "Tests: do they test the behaviour that changed, can they fail, flakiness (sleeps, order, "
        "time, network), fixtures, missing edge cases and missing tests for the change.",
    ),
    ReviewerSpec(
        "orchestration", ("k8s/**", "**/k8s/**", "kubernetes/**", "**/kubernetes/**", "manifests/**",
                          "**/manifests/**", "helm/**", "**/helm/**", "charts/**", "**/charts/**",
                          "Chart.yaml", "*.tf", "*.tfvars", "*.hcl", "Makefile", "makefile", "*.mk", "GNUmakefile",
                          "Procfile", "*.service", "*.timer", "*.socket", "dags/**", "**/dags/**",
                          "*_dag.py", "flows/**", "**/flows/**", "kustomization.yaml", "skaffold.yaml"),
        "Deployment and orchestration: Kubernetes/Helm (resources, probes, security context, "
        "rollout), Terraform (state, blast radius, secrets), Make/Procfile/systemd, Airflow/Prefect "
        "DAGs (idempotence, retries, schedules).",
    ),
)

REVIEWER_NAMES: tuple[str, ...] = tuple(spec.name for spec in REVIEWERS)


@dataclass(frozen=True)
class SkipRule:
    """Files no reviewer should spend tokens on, with the reason shown to the user."""

    reason: str
    patterns: tuple[str, ...]


SKIP_RULES: tuple[SkipRule, ...] = (
    SkipRule("vendored code", ("vendor/**", "**/vendor/**", "third_party/**", "**/third_party/**",
                               "node_modules/**", "**/node_modules/**")),
    SkipRule("lock file", ("*.lock", "package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml",
                           "yarn.lock", "bun.lockb", "go.sum", "Pipfile.lock", "composer.lock")),
    SkipRule("minified or source-map file", ("*.min.js", "*.min.css", "*.min.mjs", "*.map")),
    SkipRule("generated code", ("*_pb2.py", "*_pb2_grpc.py", "*.pb.go", "*.gen.go", "*.gen.ts",
                                "*.generated.*", "*_generated.*", "dist/**", "**/dist/**",
                                "**/__generated__/**", "*.snap", "routeTree.gen.ts")),
    SkipRule("binary file", ("*.png", "*.jpg", "*.jpeg", "*.gif", "*.webp", "*.ico", "*.pdf", "*.zip",
                             "*.gz", "*.tar", "*.woff", "*.woff2", "*.ttf", "*.otf", "*.eot", "*.jar",
                             "*.so", "*.dylib", "*.dll", "*.exe", "*.bin", "*.gguf", "*.safetensors",
                             "*.pt", "*.onnx", "*.mp3", "*.mp4", "*.wav")),
)


class RouteDecision(BaseModel):
    """Where one file goes: the reviewers that take it, or why none does."""

    path: str
    reviewers: tuple[str, ...] = ()
    skipped_reason: str | None = None


def _glob_source(pattern: str, within_name: bool = False) -> str:
    """A glob as regex source; `within_name`: it is matched against one path segment, so `**` stays in it."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append("[^/]*" if within_name else ".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class _RowMatcher:
    """A row of globs compiled into what Python checks fastest: most globs are a file-name suffix (`*.py`),
    a whole name (`Dockerfile`), a leading folder (`tests/**`) or a folder anywhere (`**/k8s/**`); only the
    rest become one regex. Why: routing a 5,000-file diff one glob at a time cost about a second, and
    even one alternation per row cost 20 µs a file (bench/slicing_bench.py)."""

    suffixes: tuple[str, ...]
    names: frozenset[str]
    prefixes: tuple[str, ...]
    folders: tuple[str, ...]  # "/name/" that may sit anywhere in "/" + path
    name_regex: re.Pattern[str] | None  # the other globs without '/', matched against the file name
    path_regex: re.Pattern[str] | None  # the other globs with '/', matched against the whole path

    @classmethod
    def compile(cls, patterns: tuple[str, ...]) -> _RowMatcher:
        suffixes, names, prefixes, folders, rest = [], set(), [], [], []
        for pattern in patterns:
            literal_after = pattern[1:] if pattern.startswith("*") else None
            if "/" not in pattern and literal_after is not None and not _GLOB_CHARS & set(literal_after):
                suffixes.append(literal_after)
            elif "/" not in pattern and not _GLOB_CHARS & set(pattern):
                names.add(pattern)
            elif (
                pattern.endswith("/**") and pattern.startswith("**/") and not _GLOB_CHARS & set(pattern[3:-3])
            ):
                folders.append("/" + pattern[3:-2])
            elif pattern.endswith("/**") and not _GLOB_CHARS & set(pattern[:-3]):
                prefixes.append(pattern[:-2])
            else:
                rest.append(pattern)

        def alternation(globs: list[str], within_name: bool) -> re.Pattern[str] | None:
            sources = [_glob_source(g, within_name) for g in globs]
            return re.compile("(?:" + "|".join(sources) + r")\Z") if sources else None

        name_regex = alternation([p for p in rest if "/" not in p], within_name=True)
        path_regex = alternation([p for p in rest if "/" in p], within_name=False)
        return cls(tuple(suffixes), frozenset(names), tuple(prefixes), tuple(folders), name_regex, path_regex)

    def matches(self, path: str, name: str) -> bool:
        """Whether `path` (whose last segment is `name`) matches any glob of the row."""
        if name.endswith(self.suffixes) or name in self.names or path.startswith(self.prefixes):
            return True
        if self.folders:
            slashed = "/" + path
            if any(folder in slashed for folder in self.folders):
                return True
        if self.name_regex is not None and self.name_regex.match(name) is not None:
            return True
        return self.path_regex is not None and self.path_regex.match(path) is not None


@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_glob_source(pattern) + r"\Z")


@lru_cache(maxsize=128)
def _row_matcher(patterns: tuple[str, ...]) -> _RowMatcher:
    return _RowMatcher.compile(patterns)


def glob_match(path: str, pattern: str) -> bool:
    """Match a POSIX path against a glob; a pattern without '/' matches the file name."""
    target = path.rsplit("/", 1)[-1] if "/" not in pattern else path
    return _glob_regex(pattern).match(target) is not None


def matches_any(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    return _row_matcher(tuple(patterns)).matches(path, path.rsplit("/", 1)[-1])


class _RowIndex:
    """Several rows' globs indexed by what a path offers: its extension, its file name, its folders.

    `matching` gives the rows whose `_RowMatcher.matches` holds, as bits, with a few dict lookups for the
    whole table instead of a call per row. Why: asking the 14 rows of the tables one by one took ~10 µs a
    file, a tenth of slicing a 5,000-file diff (bench/slicing_bench.py). A suffix can only match a name
    with the same last extension, and a folder only a path holding its first segment as a folder.
    """

    def __init__(self, rows: tuple[_RowMatcher, ...]) -> None:
        by_extension: dict[str, dict[int, list[str]]] = {}
        self.undotted: list[tuple[int, tuple[str, ...]]] = []  # suffixes without a '.': tried on every name
        self.by_name: dict[str, int] = {}
        self.prefixes: list[tuple[str, int]] = []
        self.by_folder: dict[str, list[tuple[str, int]]] = {}  # first segment -> ("/seg/.../", bit)
        with_regex: dict[tuple[re.Pattern[str] | None, ...], tuple[_RowMatcher, int]] = {}  # by the regexes
        for k, row in enumerate(rows):
            bit = 1 << k
            for suffix in row.suffixes:
                if "." in suffix:
                    by_extension.setdefault(suffix[suffix.rfind(".") :], {}).setdefault(bit, []).append(suffix)
                else:
                    self.undotted.append((bit, (suffix,)))
            for name in row.names:
                self.by_name[name] = self.by_name.get(name, 0) | bit
            self.prefixes.extend((prefix, bit) for prefix in row.prefixes)
            for folder in row.folders:
                self.by_folder.setdefault(folder.split("/")[1], []).append((folder, bit))
            if row.name_regex is not None or row.path_regex is not None:
                regexes = (row.name_regex, row.path_regex)  # rows with the same ones are tried once
                first, bits = with_regex.get(regexes, (row, 0))
                with_regex[regexes] = (first, bits | bit)
        self.by_extension = {
            extension: [(bit, tuple(suffixes)) for bit, suffixes in per_row.items()]
            for extension, per_row in by_extension.items()
        }
        self.any_prefix = tuple(prefix for prefix, _ in self.prefixes)
        self.with_regex = list(with_regex.values())  # (row, the bits of every row with its regexes)

    def matching(self, path: str, name: str) -> int:
        """Bit k set when row k matches `path` (whose last segment is `name`)."""
        found = self.by_name.get(name, 0)
        dot = name.rfind(".")
        for bit, suffixes in self.by_extension.get(name[dot:], ()) if dot >= 0 else ():
            if name.endswith(suffixes):
                found |= bit
        for bit, suffixes in self.undotted:
            if name.endswith(suffixes):
                found |= bit
        if path.startswith(self.any_prefix):
            for prefix, bit in self.prefixes:
                if path.startswith(prefix):
                    found |= bit
        if "/" in path:
            slashed = "/" + path
            for segment in path.split("/")[:-1]:
                for folder, bit in self.by_folder.get(segment, ()):
                    if folder in slashed:
                        found |= bit
        for row, bits in self.with_regex:
            if (found & bits) != bits and (
                (row.name_regex is not None and row.name_regex.match(name) is not None)
                or (row.path_regex is not None and row.path_regex.match(path) is not None)
            ):
                found |= bits
        return found


# The tables compiled once, at import.
_REVIEWER_ROWS: tuple[tuple[ReviewerSpec, _RowMatcher], ...] = tuple(
    (spec, _RowMatcher.compile(spec.patterns)) for spec in REVIEWERS
)
_TEST_ROW = _RowMatcher.compile(TEST_PATTERNS)
_SKIP_ROWS: tuple[tuple[SkipRule, _RowMatcher], ...] = tuple(
    (rule, _RowMatcher.compile(rule.patterns)) for rule in SKIP_RULES
)
# route_file's index: bit 0 the test patterns, then the skip rules, then the reviewers, in table order.
_ROUTE_INDEX = _RowIndex((_TEST_ROW, *(row for _, row in _SKIP_ROWS), *(row for _, row in _REVIEWER_ROWS)))
_SKIP_BITS = tuple((rule, 1 << (1 + k)) for k, (rule, _) in enumerate(_SKIP_ROWS))
_SKIP_MASK = sum(bit for _, bit in _SKIP_BITS)
_REVIEWER_BITS = tuple((spec, 1 << (1 + len(_SKIP_ROWS) + k)) for k, (spec, _) in enumerate(_REVIEWER_ROWS))


def is_test_file(path: str) -> bool:
    return _TEST_ROW.matches(path, path.rsplit("/", 1)[-1])


def skip_reason(path: str) -> str | None:
    """Why a file is not reviewed at all, or None when it may be (the first rule that matches)."""
    name = path.rsplit("/", 1)[-1]
    for rule, row in _SKIP_ROWS:
        if row.matches(path, name):
            return rule.reason
    return None


def route_file(path: str, enabled: tuple[str, ...] | None = None) -> RouteDecision:
    """The reviewers for one file (optionally only among `enabled`), or the reason it is skipped."""
    path = path.lstrip("/")
    found = _ROUTE_INDEX.matching(path, path.rsplit("/", 1)[-1])
    if found & _SKIP_MASK:
        reason = next(rule.reason for rule, bit in _SKIP_BITS if found & bit)
        return RouteDecision(path=path, skipped_reason=reason)
    test = bool(found & 1)
    chosen = []
    for spec, bit in _REVIEWER_BITS:
        if not found & bit:
            continue
        if enabled is not None and spec.name not in enabled:
            continue
        if test and spec.name != "testing" and not spec.takes_tests:
            continue
        chosen.append(spec.name)
    if not chosen:
        why = (
            "no enabled reviewer covers this file"
            if enabled is not None
            else "no reviewer covers this file type"
        )
        return RouteDecision(path=path, skipped_reason=why)
    return RouteDecision(path=path, reviewers=tuple(chosen))


def whole_file_paths(diff: ParsedDiff, enabled: tuple[str, ...] | None = None) -> list[str]:
    """The changed files whose whole new text the analyzers get (the App fetches them; an eval scenario's
    snapshot holds them): not deleted, and routed to a reviewer, in the diff's order."""
    removed = set(diff.removed_paths())
    return [p for p in diff.paths() if p not in removed and route_file(p, enabled).reviewers]


def reviewer_spec(name: str) -> ReviewerSpec:
    for spec in REVIEWERS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown reviewer {name!r}; known: {', '.join(REVIEWER_NAMES)}")
