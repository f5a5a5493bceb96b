"""`calora data augment`: derived examples are valid, marked, shifted correctly, and kept apart."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from training.augment import (
    AugmentError,
    augment_dataset,
    clean_twin,
    derive,
    insert_blank_lines,
    move_defect,
    parse_lines,
    rename_identifiers,
)
from training.examples import CuratedExample, added_lines, load_example

DIFF = """\
diff --git a/shop/orders.py b/shop/orders.py
--- a/shop/orders.py
+++ b/shop/orders.py
@@ -10,3 +10,6 @@
 def total(order):
     return sum(i.price for i in order.items)
 
+def search_orders(conn, query):
+    return conn.execute(f"SELECT * FROM orders WHERE ref = '{query}'")
+
@@ -30,2 +33,3 @@
 def cancel(order):
-    order.status = "x"
+    order.status = "cancelled"
+    -- not sql, just text starting with two dashes
"""


def example() -> CuratedExample:
    return CuratedExample.model_validate({
        "reviewer": "python", "task": "Add search_orders for the admin box", "diff": DIFF,
        "expected": {
            "verdict": "block",
            "findings": [
                {"path": "shop/orders.py", "line": 14, "severity": "blocker", "category": "security",
                 "message": "search_orders formats query into SQL.",
                 "suggestion": "    return conn.execute(\"SELECT * FROM orders WHERE ref = %s\", [query])"},
            ],
            "missing_checks": ["a test of search_orders with a quote"],
            "suggested_fix": "Bind query in search_orders.",
        },
        "tags": ["block", "security"],
    })


def test_diff_lines_know_their_new_numbers_even_for_dash_content() -> None:
    lines = parse_lines(DIFF)
    added = [(l.new_no, l.text) for l in lines if l.kind == "+"]
    assert added[0] == (13, "+def search_orders(conn, query):")
    assert added[-1][0] == 35 and added[-1][1].startswith("+    --")


def test_moved_defect_shifts_the_finding_and_later_hunks() -> None:
    moved = move_defect(example(), random.Random(0))
    shift = moved.expected.findings[0].line - 14
    assert 2 <= shift <= 6
    new_added = added_lines(moved.diff)["shop/orders.py"]
    assert moved.expected.findings[0].line in new_added
    assert {34 + shift, 35 + shift} <= new_added  # the second hunk moved down as well
    assert "@@ -30,2 +" + str(33 + shift) + ",3 @@" in moved.diff


def test_insert_refuses_a_line_the_diff_does_not_show() -> None:
    with pytest.raises(AugmentError, match="not shown"):
        insert_blank_lines(DIFF, "shop/orders.py", 99, 2)


def test_clean_twin_applies_the_suggestion_and_approves() -> None:
    twin = clean_twin(example())
    assert twin.expected.verdict.value == "approve" and twin.expected.findings == []
    assert "WHERE ref = %s\", [query])" in twin.diff and "'{query}'" not in twin.diff
    assert "review-before-use" in twin.tags and "block" not in twin.tags


def test_clean_twin_needs_a_single_finding_with_a_suggestion() -> None:
    ex = example()
    no_suggestion = ex.model_copy(update={"expected": ex.expected.model_copy(update={
        "findings": [ex.expected.findings[0].model_copy(update={"suggestion": None})]})})
    with pytest.raises(AugmentError, match="exactly one finding with a suggestion"):
        clean_twin(no_suggestion)


def test_rename_is_consistent_across_diff_task_and_answer() -> None:
    renamed = rename_identifiers(example(), random.Random(1))
    assert "search_orders" not in renamed.diff and "search_orders" not in renamed.task
    new_name = next(line.split("(")[0][5:] for line in renamed.diff.splitlines() if line.startswith("+def "))
    assert new_name in renamed.task and new_name in renamed.expected.findings[0].message
    assert new_name in renamed.expected.missing_checks[0] and new_name in renamed.expected.suggested_fix
    assert "+++ b/shop/orders.py" in renamed.diff  # paths untouched
    assert renamed.expected.findings[0].line == 14


def test_derive_marks_the_source_and_validates() -> None:
    new = derive(example(), "python/search", "moved", random.Random(0))
    assert new.derived_from == "python/search" and {"derived", "moved"} <= set(new.tags)


def test_augment_writes_a_separate_folder_that_round_trips(tmp_path: Path) -> None:
    src = tmp_path / "datasets" / "python"
    src.mkdir(parents=True)
    (src / "search.yaml").write_text(yaml.safe_dump(example().model_dump(mode="json", exclude_none=True)))
    out = tmp_path / "derived"
    counts = augment_dataset(tmp_path / "datasets", out)
    assert counts == {"renamed": 1, "moved": 1, "clean-twin": 1}
    for path in sorted((out / "python").iterdir()):
        loaded = load_example(path)  # validates like a hand-written example
        assert loaded.derived_from == "python/search"
    assert sorted(p.name for p in src.iterdir()) == ["search.yaml"], "the curated folder is never written"
    with pytest.raises(AugmentError, match="must differ"):
        augment_dataset(tmp_path / "datasets", tmp_path / "datasets")
