"""Issue #12's acceptance lines, checked mechanically: a default or a list the whole product shares is
written in one module (the others import it), and the diff parser of the tests is not the product's."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT

PRODUCT_FOLDERS = ("app", "reviewers", "training", "eval", "loop", "bench", "deploy")


def product_modules() -> dict[str, str]:
    """Every non-test Python module of the repository, by its path relative to the root."""
    return {
        str(path.relative_to(REPO_ROOT)): path.read_text(encoding="utf-8", errors="replace")
        for folder in PRODUCT_FOLDERS
        for path in sorted((REPO_ROOT / folder).rglob("*.py"))
    }


@pytest.mark.parametrize(("what", "pattern", "home"), [
    ("the default answer length cap", r"\b384\b", "reviewers/models.py"),
    ("the default base model id", r"gemma3-270m|google/gemma-3-270m", "reviewers/models.py"),
    ("the LoRA target module list", r"[\"']q_proj[\"']\s*,", "reviewers/engine/lora.py"),
])
def test_a_shared_default_is_written_in_one_module(what: str, pattern: str, home: str) -> None:
    found = sorted(path for path, text in product_modules().items() if re.search(pattern, text))
    assert found == [home], f"{what} is written in {found}; import it from {home} instead"


def test_unidiff_is_imported_by_the_tests_only() -> None:
    importers = sorted(path for path, text in product_modules().items()
                       if re.search(r"^\s*(import unidiff|from unidiff\b)", text, re.MULTILINE))
    assert importers == []


def test_calora_variables_are_read_through_the_settings_tree_only() -> None:
    """`os.environ["CALORA_…"]` or `os.getenv("CALORA_…")` would skip `.env`; a CaloraSettings class reads both."""
    direct = re.compile(r"""(environ\s*(\.get\s*\(|\[)|getenv\s*\()\s*f?["']CALORA_""")
    readers = sorted(path for path, text in product_modules().items() if direct.search(text))
    assert readers == []
