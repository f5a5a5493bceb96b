"""Routing: which reviewers take which file, and why a file is skipped (issue 2, item 3)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewers.routing import (
    _REVIEWER_ROWS,
    _ROUTE_INDEX,
    _SKIP_ROWS,
    _TEST_ROW,
    REVIEWER_NAMES,
    REVIEWERS,
    SKIP_RULES,
    TEST_PATTERNS,
    glob_match,
    is_test_file,
    matches_any,
    reviewer_spec,
    route_file,
    skip_reason,
)

ROUTES = [
    # python: *.py that are not tests; a pytest file goes to python and testing
    ("app/models.py", ("python",)),
    ("scripts/release.pyi", ("python",)),
    ("tests/test_api.py", ("python", "testing")),
    ("backend/app/tests/api/routes/test_items.py", ("python", "testing")),
    ("pkg/test_utils.py", ("python", "testing")),
    ("pkg/models_test.py", ("python", "testing")),
    ("conftest.py", ("python", "testing")),
    # react and typescript; their test files go to testing only
    ("frontend/src/components/Sidebar.tsx", ("react",)),
    ("src/App.jsx", ("react",)),
    ("frontend/src/client/core/request.ts", ("typescript",)),
    ("src/server.mts", ("typescript",)),
    ("server/index.js", ("typescript",)),  # plain JavaScript: TypeScript's reviewer, not nobody's
    ("src/stores/quote.mjs", ("typescript",)),
    ("scripts/backfill.cjs", ("typescript",)),
    ("src/api.test.js", ("testing",)),
    ("src/api.test.ts", ("testing",)),
    ("src/Button.test.tsx", ("testing",)),
    ("src/Button.spec.tsx", ("testing",)),
    ("src/api.spec.ts", ("testing",)),
    ("frontend/tests/login.spec.ts", ("testing",)),
    ("src/__tests__/App.test.jsx", ("testing",)),
    # vue
    ("src/components/TheFooter.vue", ("vue",)),
    # sql: *.sql and migration folders (a Python migration goes to both)
    ("sql/vector.sql", ("sql",)),
    ("db/migrations/0042_add_index.sql", ("sql",)),
    ("app/migrations/0001_initial.py", ("python", "sql")),
    ("backend/app/alembic/versions/1a31ce608336_add_cascade_delete.py", ("python", "sql")),
    ("db/migrate/20240101_create_users.rb", ("sql",)),
    # docker_ci: Dockerfile*, compose files, workflows, GitLab CI
    ("Dockerfile", ("docker_ci",)),
    ("backend/Dockerfile", ("docker_ci",)),
    ("Dockerfile.dev", ("docker_ci",)),
    ("docker/api.Dockerfile", ("docker_ci",)),
    ("docker-compose.yml", ("docker_ci",)),
    ("deploy/docker-compose.prod.yaml", ("docker_ci",)),
    ("compose.yml", ("docker_ci",)),
    ("compose.override.yml", ("docker_ci",)),
    ("compose.traefik.yaml", ("docker_ci",)),
    (".github/workflows/test-backend.yml", ("docker_ci",)),
    (".github/workflows/release.yaml", ("docker_ci",)),
    (".gitlab-ci.yml", ("docker_ci",)),
    # testing: tests folders and test files of other languages
    ("tests/fixtures/users.json", ("testing",)),
    ("internal/store/store_test.go", ("testing",)),
    ("spec/models/user_spec.rb", ("testing",)),
    ("test/sql/cast.sql", ("testing",)),
    # orchestration: Kubernetes, Helm, Terraform, Make, Procfile, systemd, Airflow/Prefect
    ("k8s/deployment.yaml", ("orchestration",)),
    ("deploy/kubernetes/service.yml", ("orchestration",)),
    ("charts/web/templates/deployment.yaml", ("orchestration",)),
    ("charts/web/values.yaml", ("orchestration",)),
    ("Chart.yaml", ("orchestration",)),
    ("infra/main.tf", ("orchestration",)),
    ("infra/prod.tfvars", ("orchestration",)),
    ("Makefile", ("orchestration",)),
    ("tools/makefile", ("orchestration",)),
    ("Procfile", ("orchestration",)),
    ("deploy/systemd/calora.service", ("orchestration",)),
    ("deploy/systemd/cleanup.timer", ("orchestration",)),
    ("airflow/dags/etl.py", ("python", "orchestration")),
    ("pipelines/nightly_dag.py", ("python", "orchestration")),
    ("flows/train.py", ("python", "orchestration")),
    ("k8s/overlays/prod/kustomization.yaml", ("orchestration",)),
]

SKIPS = [
    ("frontend/package-lock.json", "lock file"),
    ("yarn.lock", "lock file"),
    ("uv.lock", "lock file"),
    ("pnpm-lock.yaml", "lock file"),
    ("go.sum", "lock file"),
    ("static/app.min.js", "minified or source-map file"),
    ("static/app.js.map", "minified or source-map file"),
    ("vendor/github.com/pkg/errors/errors.go", "vendored code"),
    ("web/node_modules/react/index.js", "vendored code"),
    ("third_party/lib/x.py", "vendored code"),
    ("api/user_pb2.py", "generated code"),
    ("frontend/src/routeTree.gen.ts", "generated code"),
    ("frontend/src/client/schemas.gen.ts", "generated code"),
    ("dist/bundle.js", "generated code"),
    ("tests/__snapshots__/App.test.tsx.snap", "generated code"),
    ("img/mailpit.png", "binary file"),
    ("fonts/Inter.woff2", "binary file"),
    ("models/adapter.safetensors", "binary file"),
    ("README.md", "no reviewer covers this file type"),
    ("frontend/package.json", "no reviewer covers this file type"),
    (".env", "no reviewer covers this file type"),
]


@pytest.mark.parametrize(("path", "reviewers"), ROUTES)
def test_files_go_to_the_reviewers_of_the_table(path, reviewers):
    decision = route_file(path)
    assert decision.reviewers == reviewers
    assert decision.skipped_reason is None


@pytest.mark.parametrize(("path", "reason"), SKIPS)
def test_skipped_files_say_why(path, reason):
    decision = route_file(path)
    assert decision.reviewers == ()
    assert decision.skipped_reason == reason


def test_skip_rules_win_over_reviewer_patterns():
    assert route_file("vendor/lib/tests/test_x.py").skipped_reason == "vendored code"
    assert route_file("dist/index.ts").skipped_reason == "generated code"


def test_enabled_restricts_reviewers_and_says_so_when_none_is_left():
    assert route_file("tests/test_api.py", enabled=("testing",)).reviewers == ("testing",)
    assert route_file("tests/test_api.py", enabled=("python", "sql")).reviewers == ("python",)
    decision = route_file("app/models.py", enabled=("react",))
    assert decision.reviewers == () and decision.skipped_reason == "no enabled reviewer covers this file"


def test_a_leading_slash_is_ignored():
    assert route_file("/app/models.py").reviewers == ("python",)
    assert route_file("/app/models.py").path == "app/models.py"


def test_reviewers_are_the_eight_of_the_issue_in_table_order():
    assert REVIEWER_NAMES == (
        "python",
        "react",
        "typescript",
        "vue",
        "sql",
        "docker_ci",
        "testing",
        "orchestration",
    )
    assert all(spec.focus for spec in REVIEWERS)


def test_reviewer_spec_finds_a_row_and_names_the_known_ones_otherwise():
    assert reviewer_spec("sql").name == "sql"
    with pytest.raises(KeyError, match="known: python, react"):
        reviewer_spec("cobol")


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("a/b/c.py", "*.py", True),  # no '/': the file name, at any depth
        ("a/b/c.py", "a/*.py", False),  # '*' does not cross '/'
        ("a/c.py", "a/*.py", True),
        ("x/migrations/0001.py", "**/migrations/**", True),
        ("migrations/0001.py", "**/migrations/**", True),  # '**/' may match no folder
        ("a/b/c/d.yaml", "k8s/**", False),
        ("k8s/a/b.yaml", "k8s/**", True),
        ("Dockerfile.dev", "Dockerfile.*", True),
        ("file.py", "file.p?", True),
        ("a.b", "a+b", False),  # pattern text is literal apart from * ** ?
    ],
)
def test_glob_match_semantics(path, pattern, expected):
    assert glob_match(path, pattern) is expected


def test_is_test_file_and_skip_reason_agree_with_route_file():
    assert is_test_file("src/api.test.ts") and not is_test_file("src/api.ts")
    assert skip_reason("yarn.lock") == "lock file" and skip_reason("app.py") is None


def test_every_routed_file_of_the_real_diffs_gets_a_reviewer_or_a_reason(real_diffs):
    names = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)
    seen = 0
    for path in real_diffs:
        for _, new in names.findall(path.read_text(encoding="utf-8", errors="replace")):
            decision = route_file(new)
            assert bool(decision.reviewers) != bool(decision.skipped_reason), new
            seen += 1
    assert seen > 200
    assert route_file("frontend/tests/utils/mailpit.ts").reviewers == ("testing",)
    assert route_file("backend/app/email-templates/src/new_account.mjml").skipped_reason


ALL_PATTERNS = sorted(
    {p for spec in REVIEWERS for p in spec.patterns} | {p for r in SKIP_RULES for p in r.patterns}
)
path_parts = st.sampled_from(
    [
        "src",
        "tests",
        "test",
        "k8s",
        "charts",
        "migrations",
        "dags",
        "vendor",
        "dist",
        ".github",
        "workflows",
        "a",
        "__tests__",
        "alembic",
        "versions",
        "db",
        "migrate",
        "e2e",
    ]
)
file_names = st.sampled_from(
    [
        "x.py",
        "test_x.py",
        "x_test.py",
        "x.test.ts",
        "x.tsx",
        "Dockerfile",
        "Dockerfile.dev",
        "compose.yml",
        "Makefile",
        "x.tf",
        "x.lock",
        "x.min.js",
        "x.png",
        "conftest.py",
        "x.vue",
        "x.sql",
        "x_dag.py",
        "Chart.yaml",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(path_parts, max_size=4), file_names)
def test_matching_a_row_at_once_equals_matching_each_glob(folders, name):
    """matches_any uses one combined regex per row; it must agree with the pattern-by-pattern rule."""
    path = "/".join([*folders, name])
    for spec in REVIEWERS:
        assert matches_any(path, spec.patterns) == any(glob_match(path, p) for p in spec.patterns)
    for rule in SKIP_RULES:
        assert matches_any(path, rule.patterns) == any(glob_match(path, p) for p in rule.patterns)
    assert matches_any(path, ALL_PATTERNS) == any(glob_match(path, p) for p in ALL_PATTERNS)


@settings(max_examples=300, deadline=None)
@given(st.lists(path_parts, max_size=4), file_names)
def test_the_compiled_tables_route_as_their_globs_say(folders, name):
    """route_file checks suffixes, names and folders before any regex (speed, issue #18): the first skip
    rule whose globs match, and the test patterns, still decide exactly as glob by glob."""
    path = "/".join([*folders, name])
    first_rule = next((r.reason for r in SKIP_RULES if any(glob_match(path, p) for p in r.patterns)), None)
    assert skip_reason(path) == first_rule
    assert is_test_file(path) == any(glob_match(path, p) for p in TEST_PATTERNS)


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("a/yb", "a**b"),
        ("ab", "a**b"),
        ("x/Dockerfile.dev", "Dockerfile.*"),
        ("k8s", "**/k8s/**"),
        ("deploy/k8s/x.yaml", "**/k8s/**"),
        ("k8s/x.yaml", "**/k8s/**"),
        ("my-k8s/x", "**/k8s/**"),
        ("vendor/x.js", "vendor/**"),
        ("vendors/x.js", "vendor/**"),
        (".py", "*.py"),
        ("a/b/.py", "*.py"),
    ],
)
def test_a_row_matches_like_its_glob_in_edge_cases(path, pattern):
    assert matches_any(path, [pattern]) == glob_match(path, pattern)


@settings(max_examples=300, deadline=None)
@given(st.lists(path_parts | st.sampled_from(["a.b", "x.py", "my-k8s"]), max_size=4), file_names)
def test_the_route_index_finds_the_rows_that_each_match(folders, name):
    """route_file asks `_RowIndex` (extension, name and folder lookups) instead of each row in turn (speed,
    issue #18): it must find exactly the rows whose own `matches` holds."""
    path = "/".join([*folders, name])
    rows = (_TEST_ROW, *(row for _, row in _SKIP_ROWS), *(row for _, row in _REVIEWER_ROWS))
    expected = sum(1 << k for k, row in enumerate(rows) if row.matches(path, name))
    assert _ROUTE_INDEX.matching(path, name) == expected
