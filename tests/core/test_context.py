"""Repository context: each selector on a small real repository, the budget, secrets, the two sources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reviewers.context import ContextReader, DirectorySource, GitSource, retrieve_context
from reviewers.context.profile import ProfileCache
from reviewers.context.retrieval import PROFILE_PATH
from reviewers.context.source import MAX_FILE_BYTES
from reviewers.prompt import context_block
from reviewers.safe_text import REDACTED, is_secret_path
from reviewers.slicing import approx_token_count
from tests.core.context_repo import RecordingSource, head, plan_of, repo_with_change

BIG = 100_000  # a budget nothing reaches


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


def context_for(root: Path, budget: int = BIG, **kwargs: object) -> list:
    _diff, plan = plan_of(root)
    assert plan.slices, "the change should give a slice"
    return retrieve_context(plan.slices[0], head(root), budget_tokens=budget, **kwargs)


# --- 1. what encloses a change, per language --------------------------------------------------------

PY_FUNCTION = lines(
    "def place_order(cart, user):",
    '    """Turn a cart into an order."""',
    "    if not cart.items:",
    "        raise ValueError('empty cart')",
    "    total = 0",
    "    for item in cart.items:",
    "        total += item.price * item.quantity",
    "    order = {'user': user.id, 'total': total}",
    "    audit(order)",
    "    return order",
)
TSX_COMPONENT = lines(
    'import React from "react";',
    "",
    "export const OrderList = ({ orders }: { orders: Order[] }) => {",
    "  const sorted = [...orders].sort((a, b) => a.id - b.id);",
    "  const total = sorted.reduce((sum, o) => sum + o.total, 0);",
    "  const empty = sorted.length === 0;",
    "  const title = empty ? 'No orders' : 'Orders';",
    "  return (",
    "    <ul title={title}>",
    "      {sorted.map((o) => <li key={o.id}>{o.total}</li>)}",
    "    </ul>",
    "  );",
    "};",
)
VUE_COMPONENT = lines(
    "<template>",
    "  <p>{{ total() }}</p>",
    "</template>",
    "",
    '<script setup lang="ts">',
    'import { ref } from "vue";',
    "const items = ref<number[]>([]);",
    "function total(): number {",
    "  let sum = 0;",
    "  for (const item of items.value) {",
    "    sum += item;",
    "  }",
    "  const rounded = Math.round(sum);",
    "  return rounded;",
    "}",
    "</script>",
)
SQL_TABLE = lines(
    "CREATE TABLE orders (",
    "  id bigint PRIMARY KEY,",
    "  user_id bigint NOT NULL,",
    "  status text NOT NULL,",
    "  created_at timestamptz NOT NULL,",
    "  updated_at timestamptz NOT NULL,",
    "  total numeric(12, 2) NOT NULL,",
    "  currency text NOT NULL,",
    "  note text",
    ");",
)
WORKFLOW = lines(
    "on: push",
    "jobs:",
    "  test:",
    "    runs-on: ubuntu-latest",
    "    steps:",
    "      - uses: actions/checkout@v4",
    "      - uses: actions/setup-python@v5",
    "      - run: pip install -e .",
    "      - run: ruff check .",
    "      - run: pytest -q",
    "      - run: echo done",
)
TERRAFORM = lines(
    'resource "aws_s3_bucket" "logs" {',
    '  bucket = "acme-logs"',
    "  tags = {",
    '    team = "platform"',
    "  }",
    "  versioning {",
    "    enabled = true",
    "  }",
    '  acl = "private"',
    "  force_destroy = false",
    "}",
)
DOCKERFILE = lines(
    "FROM python:3.12-slim AS build",
    "WORKDIR /app",
    "COPY pyproject.toml .",
    "RUN pip install --no-cache-dir build",
    "COPY src ./src",
    "RUN python -m build",
    "RUN ls dist",
    "RUN echo built",
    "",
    "FROM python:3.12-slim",
    "COPY --from=build /app/dist /dist",
)


def _changed(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(("path", "before", "old", "new", "expected"), [
    ("shop/orders.py", PY_FUNCTION, "    audit(order)", "    audit(order, strict=True)", "function place_order"),
    ("web/OrderList.tsx", TSX_COMPONENT, "    </ul>", "    </ul> ", "component OrderList"),
    ("web/Total.vue", VUE_COMPONENT, "  return rounded;", "  return rounded * 100;", "function total"),
    ("db/schema.sql", SQL_TABLE, "  note text", "  note text NOT NULL", "statement CREATE TABLE orders ("),
    (".github/workflows/ci.yml", WORKFLOW, "      - run: echo done", "      - run: echo finished", "key jobs.test.steps"),
    ("infra/s3.tf", TERRAFORM, "  force_destroy = false", "  force_destroy = true",
     'block resource "aws_s3_bucket" "logs"'),
    ("Dockerfile", DOCKERFILE, "RUN echo built", "RUN echo ready", "stage FROM python:3.12-slim AS build"),
])
def test_the_definition_around_a_change_is_given_when_the_hunk_shows_only_part_of_it(
    tmp_path: Path, path: str, before: str, old: str, new: str, expected: str,
) -> None:
    root = repo_with_change(tmp_path / "repo", {path: before}, {path: _changed(before, old, new)})
    snippets = [s for s in context_for(root) if "encloses" in s.why]
    assert len(snippets) == 1, [s.why for s in snippets]
    snippet = snippets[0]
    assert snippet.path == path and snippet.why.startswith(expected)
    changed_line = _changed(before, old, new).splitlines().index(new.rstrip("\n")) + 1
    assert f"encloses changed lines {changed_line}" in snippet.why
    first = before.splitlines()[int(snippet.why.split("(lines ")[1].split("-")[0]) - 1]
    assert snippet.text.splitlines()[0] == first


def test_a_definition_the_hunk_shows_whole_is_not_repeated(tmp_path: Path) -> None:
    before = lines("def small(x):", "    return x + 1")
    root = repo_with_change(tmp_path / "repo", {"m.py": before}, {"m.py": lines("def small(x):", "    return x + 2")})
    assert [s for s in context_for(root) if "encloses" in s.why] == []


# --- 2. definitions of the names the added lines use -----------------------------------------------

MODELS = lines(
    "from dataclasses import dataclass",
    "",
    "",
    "@dataclass",
    "class Order:",
    '    """An order as the shop stores it."""',
    "    id: int",
    "    total_cents: int",
    "",
    "",
    "def money(cents: int) -> str:",
    '    return f"{cents / 100:.2f}"',
)
API_BEFORE = lines("from shop.models import Order, money", "", "", "def list_orders(db):", "    return []")
API_AFTER = lines(
    "from shop.models import Order, money",
    "",
    "",
    "def list_orders(db):",
    "    rows = db.fetch_all()",
    "    orders = [Order(**row) for row in rows]",
    "    orders = [o for o in orders if isinstance(o, Order)]",
    "    first: Order | None = orders[0] if orders else None",
    "    return [money(o.total_cents) for o in orders], first",
)


def test_definitions_of_imported_names_are_ranked_by_how_many_changed_lines_use_them(tmp_path: Path) -> None:
    root = repo_with_change(tmp_path / "repo", {"shop/models.py": MODELS, "shop/api.py": API_BEFORE},
                            {"shop/api.py": API_AFTER})
    defined = [s for s in context_for(root) if s.why.startswith("defines")]
    assert [s.why for s in defined[:2]] == ["defines Order, used by 3 changed lines",
                                           "defines money, used by 1 changed line"]
    assert defined[0].path == "shop/models.py" and defined[0].text.startswith("@dataclass\nclass Order:")
    assert defined[1].text.startswith("def money(")


def test_a_relative_typescript_import_is_followed_to_its_file(tmp_path: Path) -> None:
    price = lines("export function formatPrice(cents: number): string {", "  return (cents / 100).toFixed(2);", "}")
    cart_before = lines('import { formatPrice } from "../lib/price";', "", "export const label = 'cart';")
    cart_after = lines('import { formatPrice } from "../lib/price";', "",
                       "export const label = 'cart';", "export const shown = formatPrice(1250);")
    root = repo_with_change(tmp_path / "repo", {"web/lib/price.ts": price, "web/cart/Cart.ts": cart_before},
                            {"web/cart/Cart.ts": cart_after})
    defined = [s for s in context_for(root) if s.why.startswith("defines")]
    assert [(s.path, s.why) for s in defined] == [("web/lib/price.ts", "defines formatPrice, used by 1 changed line")]


def test_a_helper_defined_elsewhere_in_the_same_file_is_given(tmp_path: Path) -> None:
    before = lines("def normalise(ref):", "    return ref.strip().upper()", "", "", *[f"X{i} = {i}" for i in range(12)],
                   "", "", "def find(refs):", "    return refs")
    after = before.replace("def find(refs):\n    return refs", "def find(refs):\n    return [normalise(r) for r in refs]")
    root = repo_with_change(tmp_path / "repo", {"refs.py": before}, {"refs.py": after})
    defined = [s for s in context_for(root) if s.why.startswith("defines")]
    assert [(s.path, s.why, s.text.splitlines()[0]) for s in defined] == [
        ("refs.py", "defines normalise, used by 1 changed line", "def normalise(ref):")]


# --- 3. siblings of the same kind, 4. the profile --------------------------------------------------

def test_a_new_test_gets_the_shortest_neighbouring_test_as_its_convention(tmp_path: Path) -> None:
    short = lines("import pytest", "", "", "def test_user_is_listed(client):",
                  "    assert client.get('/users').status_code == 200")
    long = short + lines(*[f"def test_payment_{i}(client):\n    assert client.get('/p/{i}').ok" for i in range(8)])
    root = repo_with_change(
        tmp_path / "repo", {"tests/api/test_users.py": short, "tests/api/test_payments.py": long,
                            "tests/api/test_stub.py": "import pytest\n"},
        {"tests/api/test_orders.py": lines("def test_orders_are_listed(client):", "    assert client.get('/orders')")})
    siblings = [s for s in context_for(root) if s.why.startswith("sibling")]
    assert [(s.path, s.why) for s in siblings] == [
        ("tests/api/test_users.py", "sibling test in tests/api/, the shortest of 2 read")]  # the one-line stub shows nothing
    assert siblings[0].text == short.rstrip("\n")


def test_a_new_migration_gets_the_previous_migration(tmp_path: Path) -> None:
    root = repo_with_change(
        tmp_path / "repo",
        {"db/migrations/0001_init.sql": "CREATE TABLE users (id bigint);\n",
         "db/migrations/0002_orders.sql": "CREATE TABLE orders (id bigint);\n"},
        {"db/migrations/0003_note.sql": "ALTER TABLE orders ADD COLUMN note text;\n"})
    siblings = [s for s in context_for(root) if "migration" in s.why]
    assert [(s.path, s.why) for s in siblings] == [("db/migrations/0002_orders.sql", "previous migration in db/migrations/")]


def test_the_profile_is_a_few_lines_read_once_per_commit(tmp_path: Path) -> None:
    pyproject = lines("[project]", 'name = "shop"', 'dependencies = ["fastapi>=0.110", "pytest>=8"]',
                      "[tool.ruff]", "line-length = 100")
    root = repo_with_change(tmp_path / "repo", {"pyproject.toml": pyproject, "shop/app.py": "X = 1\n"},
                            {"shop/app.py": "X = 2\n"})
    cache = ProfileCache()
    first = RecordingSource(head(root))
    lines_ = cache.lines_for(first, ["shop"])
    assert "frameworks: FastAPI, pytest" in lines_ and "ruff (pyproject.toml [tool.ruff])" in lines_
    assert first.read_paths == ["pyproject.toml"]  # manifests only: no code is read for the profile
    again = RecordingSource(head(root))
    assert cache.lines_for(again, ["shop"]) == lines_ and again.read_paths == [] and again.listed == []
    _diff, plan = plan_of(root)
    snippet = retrieve_context(plan.slices[0], head(root), budget_tokens=BIG, profile=lines_)
    assert [(s.path, s.why) for s in snippet if s.path == PROFILE_PATH] == [(PROFILE_PATH, "calora scan of this commit")]


# --- the budget -----------------------------------------------------------------------------------

def test_the_budget_is_never_exceeded_and_the_lowest_ranked_snippets_go_first(tmp_path: Path) -> None:
    root = repo_with_change(
        tmp_path / "repo",
        {"shop/models.py": MODELS, "shop/api.py": API_BEFORE + PY_FUNCTION,
         "shop/other.py": "def other():\n    return 1\n"},
        {"shop/api.py": API_AFTER + _changed(PY_FUNCTION, "    audit(order)", "    audit(Order(order))")})
    _diff, plan = plan_of(root)
    piece = plan.slices[0]
    full = retrieve_context(piece, head(root), budget_tokens=BIG, profile="frameworks: FastAPI")
    assert len(full) >= 4
    ranked = [s.why for s in full]
    for budget in range(0, sum(approx_token_count(context_block(s)) + 1 for s in full) + 20, 17):
        kept = retrieve_context(piece, head(root), budget_tokens=budget, profile="frameworks: FastAPI")
        used = sum(approx_token_count(context_block(s)) + 1 for s in kept)
        assert used <= budget
        whys = [s.why for s in kept]
        # What is kept is the best-ranked prefix; only its last snippet may be cut to fit.
        if whys:
            assert whys[:-1] == ranked[:len(whys) - 1]
            assert whys[-1] == ranked[len(whys) - 1] or whys[-1].startswith(ranked[len(whys) - 1] + "; cut to ")


# --- secrets ------------------------------------------------------------------------------------------

def test_secrets_files_are_never_read_and_secret_values_are_redacted(tmp_path: Path) -> None:
    settings = lines("from app.secrets import STRIPE_KEY", "from app.tokens import GITHUB_TOKEN", "",
                     "def pay():", "    return 1")
    root = repo_with_change(
        tmp_path / "repo",
        {"app/settings.py": settings, "app/secrets.py": 'STRIPE_KEY = "sk_live_abcdefghijklmnop1234"\n',
         "app/tokens.py": 'GITHUB_TOKEN = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"\n',
         "app/.env": "DATABASE_URL=postgres://u:p@db/x\n", "app/server.pem": "-----BEGIN PRIVATE KEY-----\nabc\n",
         "app/.env.production": "SECRET=1\n"},
        {"app/settings.py": settings.replace("    return 1", "    return STRIPE_KEY, GITHUB_TOKEN")})
    _diff, plan = plan_of(root)
    source = RecordingSource(head(root))
    snippets = retrieve_context(plan.slices[0], source, budget_tokens=BIG)
    assert source.read_paths and not [p for p in source.read_paths if is_secret_path(p)]
    token = [s for s in snippets if s.path == "app/tokens.py"]
    assert len(token) == 1 and REDACTED in token[0].text and "ghp_" not in token[0].text
    assert all("sk_live" not in s.text and "BEGIN PRIVATE KEY" not in s.text for s in snippets)


# --- the sources --------------------------------------------------------------------------------------

def test_a_folder_and_a_commit_read_the_same_and_refuse_the_same(tmp_path: Path) -> None:
    root = repo_with_change(
        tmp_path / "repo", {"src/a.py": "A = 1\n", "src/pkg/b.py": "B = 2\n", "src/logo.png": "x"},
        {"src/c.py": "C = 3\n"})
    (root / "src" / "logo.png").write_bytes(b"\x89PNG\x00\x00binary")
    (root / "src" / "big.txt").write_text("x" * (MAX_FILE_BYTES + 1))
    from tests.core.context_repo import git
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "binary and big")
    (tmp_path / "outside.py").write_text("SECRET = 1\n")
    os.symlink(tmp_path / "outside.py", root / "src" / "link.py")
    folder, commit = DirectorySource(root), GitSource(root, "HEAD")
    for source in (folder, commit):
        assert source.read("src/a.py") == "A = 1\n"
        assert source.read("src/logo.png") is None and source.read("src/big.txt") is None
        assert source.read("src/missing.py") is None and source.read("../outside.py") is None
        assert source.read("src/link.py") is None
        assert source.list_dir("src/pkg") == ["src/pkg/b.py"] and source.list_dir("nope") == []
    assert commit.list_dir("src") == ["src/a.py", "src/big.txt", "src/c.py", "src/logo.png"]
    assert folder.list_dir("src") == commit.list_dir("src")
    assert GitSource(root, "HEAD~2").read("src/c.py") is None
    assert len(commit.revision) == 40


def test_each_path_is_read_once_per_review(tmp_path: Path) -> None:
    root = repo_with_change(tmp_path / "repo", {"shop/models.py": MODELS, "shop/api.py": API_BEFORE},
                            {"shop/api.py": API_AFTER})
    _diff, plan = plan_of(root)
    source = RecordingSource(head(root))
    reader = ContextReader(source)
    for _ in range(3):
        retrieve_context(plan.slices[0], reader, budget_tokens=BIG)
    assert sorted(source.read_paths) == sorted(set(source.read_paths))
