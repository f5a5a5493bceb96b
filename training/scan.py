"""`calora scan PATH`: a repository profile, and `--harvest`: candidate examples from git history.

The profile (languages by lines, frameworks from manifests, test layout, lint/format configs, naming
conventions measured from the code, CI files, and the reviewers its files route to) feeds repo-aware
context into review requests and says which reviewers a repo needs. Harvesting proposes commits that
look like review fixes as *candidates* in a separate folder: a person turns a good one into a curated
example; nothing is ever written into `datasets/` by this module.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

from reviewers.routing import is_test_file, route_file, skip_reason
from training.augment import dump_yaml

SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", "dist", "build", ".tox", "vendor",
                       "third_party", ".mypy_cache", ".ruff_cache", ".pytest_cache", "target", ".next", ".nuxt"})
MAX_FILES = 50_000
MAX_BYTES_PER_FILE = 1_000_000

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


# --- files ------------------------------------------------------------------------------------------

def list_files(root: Path) -> list[str]:
    """Tracked files (git) or a walk that skips dependency and build folders; POSIX relative paths."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True)
        files = [f for f in out.stdout.decode("utf-8", "replace").split("\0") if f]
        if files:
            return sorted(f for f in files if (root / f).is_file())[:MAX_FILES]
    except (subprocess.CalledProcessError, FileNotFoundError):
        pass
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts[:-1]) or not path.is_file():
            continue
        found.append(rel.as_posix())
        if len(found) >= MAX_FILES:
            break
    return found


def read_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_BYTES_PER_FILE:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:4096]:
        return None
    return data.decode("utf-8", "replace")


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

def scan_repository(root: Path) -> RepoProfile:
    """Profile the repository at `root` (pure reads; nothing is written)."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    files = list_files(root)
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
        text = read_text(root / rel) if (language or is_manifest(rel) or name == "setup.cfg") else None
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
        root=str(root), files=len(files),
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


# --- harvest ----------------------------------------------------------------------------------------

FIX_MESSAGE = re.compile(
    r"\b(fix(e[sd])?|bug|review(er)? (comment|feedback|fix)|address(ed)? (review|comments|feedback)|"
    r"security|vulnerab\w*|inject\w*|xss|csrf|leak\w*|race|deadlock|crash\w*|regression|off-by-one|"
    r"null|none check|timeout|sanitiz\w*|escape|rollback|revert)\b",
    re.IGNORECASE,
)


class HarvestCandidate(BaseModel):
    """A commit that looks like a review fix: raw material for a person to curate, not an example."""

    status: str = "candidate: review, write the expected answer, then move into datasets/<reviewer>/"
    commit: str
    subject: str
    body: str
    reviewer: str = Field(description="the reviewer most of its files route to (a guess)")
    matched: str = Field(description="what in the message looked like a fix")
    defect_diff: str = Field(description="the fix reversed: the defective code as added lines, as a PR would show it")
    fix_diff: str = Field(description="the fix as committed (a source for the expected answer's suggestion)")


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True)
    return out.stdout.decode("utf-8", "replace")


def harvest_candidates(root: Path, max_commits: int = 500, max_diff_bytes: int = 12_000) -> list[HarvestCandidate]:
    """Commits whose message looks like a fix and whose small diff routes to a reviewer."""
    log = _git(root, "log", "--no-merges", f"-n{max_commits}", "--format=%H%x1f%P%x1f%s%x1f%b%x1e")
    out = []
    for entry in log.split("\x1e"):
        fields = entry.strip("\n").split("\x1f")
        if len(fields) != 4:
            continue
        sha, parents, subject, body = fields
        match = FIX_MESSAGE.search(f"{subject}\n{body}")
        if not match or not parents.strip():
            continue
        fix = _git(root, "diff", "--unified=3", f"{sha}^", sha)
        if not fix.strip() or len(fix.encode()) > max_diff_bytes:
            continue
        paths = re.findall(r"^\+\+\+ b/(.+)$", fix, re.MULTILINE) + re.findall(r"^--- a/(.+)$", fix, re.MULTILINE)
        routed = Counter(r for p in set(paths) for r in route_file(p).reviewers)
        if not routed:
            continue
        out.append(HarvestCandidate(
            commit=sha, subject=subject, body=body.strip(), reviewer=routed.most_common(1)[0][0],
            matched=match.group(0), defect_diff=_git(root, "diff", "--unified=3", sha, f"{sha}^"), fix_diff=fix,
        ))
    return out


def write_candidates(candidates: list[HarvestCandidate], out: Path) -> list[Path]:
    """One YAML per candidate under `out/<reviewer>/<sha7>.yaml`."""
    paths = []
    for c in candidates:
        path = out / c.reviewer / f"{c.commit[:7]}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_yaml(c.model_dump()), encoding="utf-8")
        paths.append(path)
    return paths
