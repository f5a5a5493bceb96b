"""A repository's profile (languages, frameworks, tests, lint configs, CI, naming), pure over paths and texts.

`calora scan` (training/scan.py) profiles a whole checkout; review context (`reviewers.context.retrieval`)
profiles what a `RepoSource` shows cheaply (the root, the workflows, the changed folders: manifests and
configs, no code) and gives reviewers a few lines of it, cached per commit.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable

from pydantic import BaseModel, Field

from reviewers.context.source import RepoSource
from reviewers.routing import is_test_file, route_file, skip_reason
from reviewers.safe_text import is_secret_path

LANGUAGES: dict[str, str] = {
    ".py": "Python", ".pyi": "Python", ".ts": "TypeScript", ".tsx": "TypeScript", ".mts": "TypeScript",
    ".js": "JavaScript", ".jsx": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript", ".vue": "Vue",
    ".sql": "SQL", ".go": "Go", ".rs": "Rust", ".java": "Java", ".kt": "Kotlin", ".rb": "Ruby", ".php": "PHP",
    ".cs": "C#", ".c": "C", ".h": "C", ".cc": "C++", ".cpp": "C++", ".hpp": "C++", ".swift": "Swift",
    ".sh": "Shell", ".bash": "Shell", ".tf": "Terraform", ".hcl": "HCL", ".yml": "YAML", ".yaml": "YAML",
    ".toml": "TOML", ".json": "JSON", ".md": "Markdown", ".html": "HTML", ".css": "CSS", ".scss": "SCSS",
}
FILENAME_LANGUAGES = {"Dockerfile": "Dockerfile", "Makefile": "Makefile", "Jenkinsfile": "Groovy"}

# Dependency name → framework label, looked up in every manifest.
FRAMEWORKS: dict[str, str] = {
    "django": "Django", "flask": "Flask", "fastapi": "FastAPI", "sqlalchemy": "SQLAlchemy", "alembic": "Alembic",
    "pydantic": "pydantic", "celery": "Celery", "pytest": "pytest", "hypothesis": "Hypothesis", "torch": "PyTorch",
    "transformers": "transformers", "pandas": "pandas", "apache-airflow": "Airflow", "prefect": "Prefect",
    "react": "React", "next": "Next.js", "vue": "Vue", "nuxt": "Nuxt", "pinia": "Pinia", "express": "Express",
    "@nestjs/core": "NestJS", "typescript": "TypeScript", "jest": "Jest", "vitest": "Vitest",
    "@playwright/test": "Playwright", "cypress": "Cypress", "prisma": "Prisma", "@angular/core": "Angular",
    "svelte": "Svelte", "vite": "Vite", "eslint": "ESLint", "prettier": "Prettier", "rails": "Rails",
    "github.com/gin-gonic/gin": "Gin", "tokio": "Tokio", "actix-web": "actix-web",
}

LINT_CONFIGS: dict[str, str] = {
    "ruff.toml": "ruff", ".ruff.toml": "ruff", ".flake8": "flake8", ".pylintrc": "pylint", "mypy.ini": "mypy",
    ".isort.cfg": "isort", ".editorconfig": "editorconfig", ".pre-commit-config.yaml": "pre-commit",
    ".prettierrc": "prettier", ".prettierrc.json": "prettier", ".prettierrc.js": "prettier",
    "prettier.config.js": "prettier", ".eslintrc": "eslint", ".eslintrc.js": "eslint", ".eslintrc.json": "eslint",
    ".eslintrc.cjs": "eslint", "eslint.config.js": "eslint", "eslint.config.mjs": "eslint", "biome.json": "biome",
    ".stylelintrc": "stylelint", ".sqlfluff": "sqlfluff", ".hadolint.yaml": "hadolint", ".yamllint": "yamllint",
    ".yamllint.yaml": "yamllint", "tsconfig.json": "tsc", ".golangci.yml": "golangci-lint", "rustfmt.toml": "rustfmt",
}
PYPROJECT_TOOLS = ("ruff", "black", "isort", "mypy", "pylint", "pyright", "pytest")
TEST_CONFIGS = {"pytest.ini": "pytest", "conftest.py": "pytest", "tox.ini": "tox", "jest.config.js": "Jest",
                "jest.config.ts": "Jest", "vitest.config.ts": "Vitest", "vitest.config.js": "Vitest",
                "playwright.config.ts": "Playwright", "cypress.config.ts": "Cypress", "karma.conf.js": "Karma"}
CI_PATTERNS = (".github/workflows/", ".gitlab-ci.yml", "Jenkinsfile", ".circleci/config.yml", "azure-pipelines.yml",
               ".buildkite/", ".drone.yml", "bitbucket-pipelines.yml")


class NamingStyle(BaseModel):
    """Share of names in each case style, measured over definitions in the code."""

    samples: int = 0
    snake_case: float = 0.0
    camelCase: float = 0.0
    PascalCase: float = 0.0
    other: float = 0.0


class LanguageConventions(BaseModel):
    """Conventions of one language measured from the files (not from config)."""

    files: int
    indent: str = Field(description="'spaces:N', 'tabs' or 'unknown' (most common leading indentation)")
    line_length_p95: int
    functions: NamingStyle
    classes: NamingStyle


class RepoProfile(BaseModel):
    """What a repository is made of, for repo-aware review context and reviewer selection."""

    root: str
    files: int
    languages: dict[str, int] = Field(description="language → lines, largest first")
    frameworks: list[str]
    manifests: list[str]
    tests: dict[str, object] = Field(description="test files, folders and frameworks")
    lint_configs: dict[str, list[str]] = Field(description="tool → config files")
    ci_files: list[str]
    conventions: dict[str, LanguageConventions]
    reviewers: dict[str, int] = Field(description="reviewer → files it would review, largest first")
    suggested_reviewers: list[str]


def language_of(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    if name in FILENAME_LANGUAGES or name.startswith("Dockerfile"):
        return FILENAME_LANGUAGES.get(name, "Dockerfile")
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    return LANGUAGES.get(suffix)


# --- manifests and frameworks -----------------------------------------------------------------------

def dependency_names(path: str, text: str) -> set[str]:
    """Dependency names declared in one manifest (lower-case)."""
    name = path.rsplit("/", 1)[-1]
    names: set[str] = set()
    try:
        if name == "package.json":
            data = json.loads(text)
            for key in ("dependencies", "devDependencies", "peerDependencies"):
                names |= set((data.get(key) or {}).keys())
        elif name == "pyproject.toml":
            data = tomllib.loads(text)
            deps = list(data.get("project", {}).get("dependencies", []))
            for group in data.get("project", {}).get("optional-dependencies", {}).values():
                deps += group
            deps += list(data.get("tool", {}).get("poetry", {}).get("dependencies", {}).keys())
            names |= {re.split(r"[\s<>=!~;\[(]", d.strip(), maxsplit=1)[0] for d in deps if d.strip()}
        elif name.startswith("requirements") and name.endswith(".txt"):
            for line in text.splitlines():
                line = line.split("#")[0].strip()
                if line and not line.startswith("-"):
                    names.add(re.split(r"[\s<>=!~;\[(]", line, maxsplit=1)[0])
        elif name == "go.mod":
            names |= set(re.findall(r"^\s*(?:require\s+)?([\w./-]+\.[\w./-]+)\s+v", text, re.MULTILINE))
        elif name == "Cargo.toml":
            names |= set(tomllib.loads(text).get("dependencies", {}).keys())
        elif name == "Gemfile":
            names |= set(re.findall(r"^\s*gem\s+['\"]([\w-]+)['\"]", text, re.MULTILINE))
    except (ValueError, tomllib.TOMLDecodeError, AttributeError):
        return set()
    return {n.lower() for n in names}


MANIFEST_NAMES = ("package.json", "pyproject.toml", "go.mod", "Cargo.toml", "Gemfile")


def is_manifest(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name in MANIFEST_NAMES or (name.startswith("requirements") and name.endswith(".txt"))


# --- naming conventions -----------------------------------------------------------------------------

_DEF_PATTERNS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "Python": (re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)", re.MULTILINE), re.compile(r"^\s*class\s+([A-Za-z_]\w*)", re.MULTILINE)),
    "TypeScript": (re.compile(r"\bfunction\s+([A-Za-z_$][\w$]*)|\b(?:const|let)\s+([A-Za-z_$][\w$]*)\s*=\s*(?:async\s*)?\(", re.MULTILINE),
                   re.compile(r"\b(?:class|interface|type)\s+([A-Za-z_$][\w$]*)", re.MULTILINE)),
    "JavaScript": (re.compile(r"\bfunction\s+([A-Za-z_$][\w$]*)|\b(?:const|let)\s+([A-Za-z_$][\w$]*)\s*=\s*(?:async\s*)?\(", re.MULTILINE),
                   re.compile(r"\bclass\s+([A-Za-z_$][\w$]*)", re.MULTILINE)),
    "Go": (re.compile(r"^func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)", re.MULTILINE), re.compile(r"^type\s+([A-Za-z_]\w*)\s+struct", re.MULTILINE)),
}


def case_style(name: str) -> str:
    core = name.strip("_")
    if not core:
        return "other"
    if re.fullmatch(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*", core):
        return "snake_case" if "_" in core or core.islower() else "other"
    if re.fullmatch(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+", core):
        return "camelCase"
    if re.fullmatch(r"(?:[A-Z][a-z0-9]+)+[A-Z]?", core) or re.fullmatch(r"[A-Z][a-zA-Z0-9]*[a-z][a-zA-Z0-9]*", core):
        return "PascalCase"
    return "other"


def naming_style(names: Iterable[str]) -> NamingStyle:
    counts = Counter(case_style(n) for n in names)
    total = sum(counts.values())
    if not total:
        return NamingStyle()
    return NamingStyle(samples=total, **{k: round(counts.get(k, 0) / total, 3)
                                         for k in ("snake_case", "camelCase", "PascalCase", "other")})


def indentation(texts: list[str]) -> str:
    widths: Counter[str] = Counter()
    for text in texts:
        for line in text.splitlines():
            if line.startswith("\t"):
                widths["tabs"] += 1
            else:
                m = re.match(r"( +)\S", line)
                if m:
                    n = len(m.group(1))
                    for unit in (4, 2):
                        if n % unit == 0:
                            widths[f"spaces:{unit}"] += 1
                            break
    if not widths:
        return "unknown"
    if widths["spaces:4"] and widths["spaces:2"] < widths["spaces:4"] * 0.5:
        return "spaces:4"
    return widths.most_common(1)[0][0]


def conventions(texts_by_language: dict[str, list[str]]) -> dict[str, LanguageConventions]:
    out = {}
    for language, (funcs, classes) in _DEF_PATTERNS.items():
        texts = texts_by_language.get(language, [])
        if not texts:
            continue
        fn_names = [g for t in texts for m in funcs.finditer(t) for g in m.groups() if g]
        cls_names = [g for t in texts for m in classes.finditer(t) for g in m.groups() if g]
        lengths = sorted(len(line) for t in texts for line in t.splitlines() if line.strip())
        p95 = lengths[int(0.95 * (len(lengths) - 1))] if lengths else 0
        out[language] = LanguageConventions(
            files=len(texts), indent=indentation(texts), line_length_p95=p95,
            functions=naming_style(fn_names), classes=naming_style(cls_names),
        )
    return out


# --- the profile ------------------------------------------------------------------------------------

def profile_files(root: str, files: list[str], read: Callable[[str], str | None]) -> RepoProfile:
    """Profile a repository from its file paths and a reader (None: not read, e.g. code left unread)."""
    lines_by_language: Counter[str] = Counter()
    texts_by_language: dict[str, list[str]] = {}
    deps: set[str] = set()
    manifests, ci_files, test_files = [], [], []
    lint: dict[str, list[str]] = {}
    test_frameworks: set[str] = set()
    reviewer_files: Counter[str] = Counter()
    for rel in files:
        name = rel.rsplit("/", 1)[-1]
        language = language_of(rel)
        text = read(rel) if (language or is_manifest(rel) or name == "setup.cfg") else None
        if language and text is not None and skip_reason(rel) is None:
            lines_by_language[language] += text.count("\n") + (0 if text.endswith("\n") or not text else 1)
            if language in _DEF_PATTERNS:
                texts_by_language.setdefault(language, []).append(text)
        if is_manifest(rel) and text is not None:
            manifests.append(rel)
            deps |= dependency_names(rel, text)
            if name == "pyproject.toml":
                tools = tomllib.loads(text).get("tool", {}) if _toml_ok(text) else {}
                for tool in PYPROJECT_TOOLS:
                    if tool in tools:
                        lint.setdefault(tool, []).append(f"{rel} [tool.{tool}]")
        if name in LINT_CONFIGS:
            lint.setdefault(LINT_CONFIGS[name], []).append(rel)
        if name == "setup.cfg" and text and "[flake8]" in text:
            lint.setdefault("flake8", []).append(f"{rel} [flake8]")
        if name in TEST_CONFIGS:
            test_frameworks.add(TEST_CONFIGS[name])
        if any(rel.startswith(p) or rel == p.rstrip("/") for p in CI_PATTERNS) or name.startswith("Dockerfile") \
                or re.fullmatch(r"(docker-)?compose[\w.-]*\.ya?ml", name):
            ci_files.append(rel)
        if is_test_file(rel):
            test_files.append(rel)
        reviewer_files.update(route_file(rel).reviewers)
    frameworks = sorted({FRAMEWORKS[d] for d in deps if d in FRAMEWORKS})
    test_frameworks |= {f for f in frameworks if f in ("pytest", "Jest", "Vitest", "Playwright", "Cypress", "Hypothesis")}
    folders = Counter(f.split("/")[0] if "/" in f else "." for f in test_files)
    return RepoProfile(
        root=root, files=len(files),
        languages=dict(lines_by_language.most_common()), frameworks=frameworks, manifests=manifests,
        tests={"files": len(test_files), "folders": dict(folders.most_common(10)),
               "frameworks": sorted(test_frameworks),
               "colocated": any("/" in f and f.split("/")[0] not in ("tests", "test", "e2e") for f in test_files)},
        lint_configs=lint, ci_files=ci_files, conventions=conventions(texts_by_language),
        reviewers=dict(reviewer_files.most_common()),
        suggested_reviewers=[r for r, n in reviewer_files.most_common() if n > 0],
    )


def _toml_ok(text: str) -> bool:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return True


# --- the profile review context shows ---------------------------------------------------------------

PROFILE_FOLDERS = ("", ".github/workflows")
"""Folders always listed for the review profile: the root (manifests, lint configs) and the workflows."""


def profile_from_source(source: RepoSource, folders: Iterable[str] = ()) -> RepoProfile:
    """A cheap profile over what `source` shows in the root, the workflows and `folders`.

    Only manifests and `setup.cfg` are read (a few reads per review); code is left unread, so languages
    are counted by files, not lines, and naming conventions are not measured.
    """
    paths: list[str] = []
    for folder in dict.fromkeys((*PROFILE_FOLDERS, *folders)):
        paths.extend(source.list_dir(folder))
    wanted = [p for p in dict.fromkeys(paths) if not is_secret_path(p)]
    profile = profile_files("", wanted, lambda rel: source.read(rel) if _profile_reads(rel) else None)
    by_files = Counter(language for rel in wanted if (language := language_of(rel)) is not None)
    return profile.model_copy(update={"languages": dict(by_files.most_common())})


def _profile_reads(path: str) -> bool:
    return is_manifest(path) or path.rsplit("/", 1)[-1] == "setup.cfg"


def describe_profile(profile: RepoProfile) -> str:
    """A few lines for a reviewer: frameworks, test setup, lint configs, CI (empty lines left out)."""
    tests = profile.tests
    lines = [
        f"frameworks: {', '.join(profile.frameworks)}" if profile.frameworks else "",
        f"tests: {', '.join(map(str, tests.get('frameworks') or []))}" if tests.get("frameworks") else "",
        "lint and format: " + "; ".join(f"{tool} ({', '.join(files)})" for tool, files in
                                       sorted(profile.lint_configs.items())) if profile.lint_configs else "",
        f"CI: {', '.join(profile.ci_files[:5])}" if profile.ci_files else "",
        f"manifests: {', '.join(profile.manifests[:5])}" if profile.manifests else "",
    ]
    return "\n".join(line for line in lines if line)


class ProfileCache:
    """Profile lines per commit: the same commit is profiled once however many reviews ask for it."""

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._lines: dict[str, str] = {}

    def lines_for(self, source: RepoSource, folders: Iterable[str] = ()) -> str:
        """`describe_profile` of `source`, cached under its `revision` when it names one."""
        key = getattr(source, "revision", None)
        if key and key in self._lines:
            return self._lines[key]
        lines = describe_profile(profile_from_source(source, folders))
        if key:
            if len(self._lines) >= self.max_entries:
                self._lines.pop(next(iter(self._lines)))
            self._lines[key] = lines
        return lines

    def clear(self) -> None:
        self._lines.clear()


PROFILES = ProfileCache()
"""The process's cache (the App's worker and `calora review` each keep one)."""
