"""Which reviewers look at which file, as a table.

Adding a reviewer is adding a row to `REVIEWERS` (plus its curated examples); nothing else branches
on reviewer names. Paths are matched as POSIX globs: a pattern without '/' matches the file name
anywhere, `**` matches any number of folders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel


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
        "typescript", ("*.ts", "*.mts", "*.cts"),
        "TypeScript: type safety (any, non-null assertions, unchecked casts), async errors and "
        "unhandled promises, API contracts, input validation.",
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


def _glob_source(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
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


@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_glob_source(pattern) + r"\Z")


@lru_cache(maxsize=128)
def _any_regex(patterns: tuple[str, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """One alternation for the name patterns and one for the path patterns of a table row.

    Why: routing a 5,000-file diff one glob at a time cost about a second; two regex calls per row do not.
    """

    def alternation(group: list[str]) -> re.Pattern[str] | None:
        return re.compile("(?:" + "|".join(_glob_source(p) for p in group) + r")\Z") if group else None

    return alternation([p for p in patterns if "/" not in p]), alternation([p for p in patterns if "/" in p])


def glob_match(path: str, pattern: str) -> bool:
    """Match a POSIX path against a glob; a pattern without '/' matches the file name."""
    target = path.rsplit("/", 1)[-1] if "/" not in pattern else path
    return _glob_regex(pattern).match(target) is not None


def matches_any(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    by_name, by_path = _any_regex(tuple(patterns))
    if by_name is not None and by_name.match(path.rsplit("/", 1)[-1]) is not None:
        return True
    return by_path is not None and by_path.match(path) is not None


def is_test_file(path: str) -> bool:
    return matches_any(path, TEST_PATTERNS)


def skip_reason(path: str) -> str | None:
    """Why a file is not reviewed at all, or None when it may be."""
    for rule in SKIP_RULES:
        if matches_any(path, rule.patterns):
            return rule.reason
    return None


def route_file(path: str, enabled: tuple[str, ...] | None = None) -> RouteDecision:
    """The reviewers for one file (optionally only among `enabled`), or the reason it is skipped."""
    path = path.lstrip("/")
    reason = skip_reason(path)
    if reason:
        return RouteDecision(path=path, skipped_reason=reason)
    test = is_test_file(path)
    chosen = []
    for spec in REVIEWERS:
        if enabled is not None and spec.name not in enabled:
            continue
        if not matches_any(path, spec.patterns):
            continue
        if test and spec.name != "testing" and not spec.takes_tests:
            continue
        chosen.append(spec.name)
    if not chosen:
        why = "no enabled reviewer covers this file" if enabled is not None else "no reviewer covers this file type"
        return RouteDecision(path=path, skipped_reason=why)
    return RouteDecision(path=path, reviewers=tuple(chosen))


def reviewer_spec(name: str) -> ReviewerSpec:
    for spec in REVIEWERS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown reviewer {name!r}; known: {', '.join(REVIEWER_NAMES)}")
