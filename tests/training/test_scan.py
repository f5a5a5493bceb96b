"""`calora scan`: a repo profile from real files, and harvest candidates from real git history."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from app.cli import main as calora
from training.scan import case_style, harvest_candidates, scan_repository

REPO = Path(__file__).resolve().parents[2]


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "shop").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "web" / "src").mkdir(parents=True)
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "shop"\ndependencies = ["fastapi>=0.110", "SQLAlchemy[asyncio]>=2"]\n'
        '[project.optional-dependencies]\ndev = ["pytest>=8"]\n[tool.ruff]\nline-length = 100\n')
    (root / "web" / "package.json").write_text(json.dumps({"dependencies": {"react": "^18"},
                                                           "devDependencies": {"vitest": "^1", "typescript": "^5"}}))
    (root / "shop" / "orders.py").write_text(
        "class OrderBook:\n    def add_order(self, order):\n        self.orders.append(order)\n\n\n"
        "def find_order(orders, ref):\n    return [o for o in orders if o.ref == ref]\n")
    (root / "tests" / "test_orders.py").write_text("def test_find_order():\n    assert True\n")
    (root / "web" / "src" / "Cart.tsx").write_text(
        "export function CartTotal() {\n  const formatPrice = (n: number) => n.toFixed(2);\n  return null;\n}\n")
    (root / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    (root / "Dockerfile").write_text("FROM python:3.12-slim\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "Initial shop")
    (root / "shop" / "orders.py").write_text(
        "class OrderBook:\n    def add_order(self, order):\n        self.orders.append(order)\n\n\n"
        "def find_order(db, ref):\n    return db.execute('SELECT * FROM orders WHERE ref = ?', [ref])\n")
    git(root, "commit", "-q", "-am", "Fix SQL injection in find_order (review feedback)")
    (root / "README.md").write_text("# shop\n")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "Add a readme")
    return root


def test_profile_measures_languages_frameworks_tests_lint_ci_and_reviewers(small_repo: Path) -> None:
    profile = scan_repository(small_repo)
    assert profile.languages["Python"] == 9 and profile.languages["TypeScript"] == 4
    assert {"FastAPI", "SQLAlchemy", "pytest", "React", "Vitest", "TypeScript"} <= set(profile.frameworks)
    assert profile.tests["files"] == 1 and profile.tests["folders"] == {"tests": 1}
    assert profile.lint_configs["ruff"] == ["pyproject.toml [tool.ruff]"]
    assert set(profile.ci_files) == {".github/workflows/ci.yml", "Dockerfile"}
    py = profile.conventions["Python"]
    assert py.indent == "spaces:4" and py.functions.snake_case == 1.0 and py.classes.PascalCase == 1.0
    assert profile.conventions["TypeScript"].functions.camelCase == 0.5  # CartTotal is PascalCase
    assert profile.reviewers == {"python": 2, "docker_ci": 2, "react": 1, "testing": 1}


def test_harvest_proposes_fix_commits_with_the_defect_as_added_lines(small_repo: Path) -> None:
    (candidate,) = harvest_candidates(small_repo)
    assert candidate.subject.startswith("Fix SQL injection") and candidate.reviewer == "python"
    assert "+    return [o for o in orders if o.ref == ref]" in candidate.defect_diff
    assert "+    return db.execute(" in candidate.fix_diff


def test_scan_command_writes_profile_and_never_harvests_into_datasets(small_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    harvest = tmp_path / "harvest"
    assert calora(["scan", str(small_repo), "--out", str(out), "--harvest", "--harvest-out", str(harvest)]) == 0
    assert "python" in json.loads(out.read_text())["suggested_reviewers"]
    assert len(list((harvest / "python").glob("*.yaml"))) == 1
    assert calora(["scan", str(small_repo), "--out", str(out), "--harvest",
                   "--harvest-out", str(tmp_path / "datasets" / "x")]) == 2


def test_scanning_this_project_suggests_its_reviewers() -> None:
    profile = scan_repository(REPO)
    assert "Python" in profile.languages and "pytest" in profile.tests["frameworks"]
    assert "python" in profile.suggested_reviewers


@pytest.mark.parametrize(("name", "style"), [("load_orders", "snake_case"), ("loadOrders", "camelCase"),
                                             ("OrderBook", "PascalCase"), ("HTTPServer", "PascalCase"),
                                             ("orders", "snake_case"), ("MAX_SIZE", "other")])
def test_case_style(name: str, style: str) -> None:
    assert case_style(name) == style
