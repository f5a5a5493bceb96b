"""`calora data augment`: derived examples are valid, marked, shifted correctly, and kept apart."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from training.augment import (
    MAX_COMBINED_CHANGED_LINES,
    REJECTED_TWINS,
    AugmentError,
    augment_dataset,
    clean_twin,
    combine,
    derive,
    insert_blank_lines,
    move_defect,
    parse_lines,
    rename_identifiers,
)
from training.dataset_build import build_dataset, held_out_roots, stable_fraction
from training.examples import CuratedExample, added_lines, dump_example, load_example

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


def clean_example(path: str = "shop/cart.py", lines: int = 3) -> CuratedExample:
    """A clean change to another file: approve, no findings."""
    added = "".join(f"+    CART_LIMIT_{i} = {i}\n" for i in range(lines))
    diff = (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,1 +1,{lines + 1} @@\n"
            f" class Cart:\n{added}")
    return CuratedExample.model_validate({
        "reviewer": "python", "task": "Name the cart limits", "diff": diff, "check_output": "ruff: nothing",
        "expected": {"verdict": "approve", "findings": [], "missing_checks": [], "suggested_fix": ""},
        "tags": ["clean", "evidence"],
    })


def write_sources(folder: Path, examples: dict[str, CuratedExample]) -> None:
    for name, ex in examples.items():
        target = folder / ex.reviewer / f"{name}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump_example(ex))


def test_a_diff_with_blank_context_lines_is_written_as_a_readable_block() -> None:
    assert "\n \n" in DIFF  # a blank context line is one space, which PyYAML would quote the diff for
    text = dump_example(example())
    assert "diff: |" in text and "  +def search_orders(conn, query):\n" in text
    assert load_example_text(text) == example()


def test_augment_writes_a_separate_folder_that_round_trips(tmp_path: Path) -> None:
    write_sources(tmp_path / "datasets", {"search": example()})
    out = tmp_path / "derived"
    counts = augment_dataset(tmp_path / "datasets", out)
    assert counts == {"clean-twin": 1, "eval-split-skipped": 0}  # one source: nothing to combine it with
    for path in sorted((out / "python").iterdir()):
        loaded = load_example(path)  # validates like a hand-written example
        assert loaded.derived_from == "python/search"
    assert sorted(p.name for p in (tmp_path / "datasets" / "python").iterdir()) == ["search.yaml"]
    with pytest.raises(AugmentError, match="must differ"):
        augment_dataset(tmp_path / "datasets", tmp_path / "datasets")


def test_augment_never_derives_from_a_source_held_out_by_the_build_split(tmp_path: Path) -> None:
    assert held_out_roots(["python/held-out", "python/search"]) == {"python/held-out"}
    write_sources(tmp_path / "datasets", {"search": example(), "held-out": example()})
    counts = augment_dataset(tmp_path / "datasets", tmp_path / "derived")
    assert counts["eval-split-skipped"] == 1
    derived = [load_example(p) for p in (tmp_path / "derived" / "python").iterdir()]
    assert derived and {d.derived_from for d in derived} == {"python/search"}
    # the same rule decides the build's split: the held-out source is in eval.jsonl, alone
    build_dataset([tmp_path / "datasets"], tmp_path / "build", allow_unreviewed=True)
    held = (tmp_path / "build" / "python" / "eval.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in held] == ["python/held-out"]


def test_combined_pr_asks_for_the_defect_and_silence_on_the_clean_file() -> None:
    combined = combine(example(), "python/search", clean_example(), "python/cart-clean", random.Random(3))
    assert combined.derived_from == "python/search"
    assert {"derived", "combined", "combined-with:python/cart-clean", "multi-file"} <= set(combined.tags)
    assert "evidence" not in combined.tags and combined.check_output == ""  # `data evidence` writes its own
    assert "+++ b/shop/cart.py" in combined.diff and "+++ b/shop/orders.py" in combined.diff
    assert "search_orders" in combined.task or "Add search" in combined.task
    assert "cart limits" in combined.task
    assert combined.expected.verdict.value == "block"
    assert [f.path for f in combined.expected.findings] == ["shop/orders.py"]
    assert load_example_text(dump_example(combined)) == combined


def load_example_text(text: str) -> CuratedExample:
    return CuratedExample.model_validate(yaml.safe_load(text))


def test_two_defective_sources_give_both_findings_and_the_stronger_verdict() -> None:
    revise = CuratedExample.model_validate({
        "reviewer": "python", "task": "Cap the cart", "diff": clean_example().diff,
        "expected": {"verdict": "revise", "findings": [
            {"path": "shop/cart.py", "line": 2, "severity": "major", "category": "correctness",
             "message": "CART_LIMIT_0 of 0 rejects every cart."}],
            "missing_checks": ["a test of an empty cart", "a test of search_orders with a quote"],
            "suggested_fix": "Start the limits at 1."},
    })
    combined = combine(example(), "python/search", revise, "python/cap", random.Random(0))
    assert combined.expected.verdict.value == "block"
    assert sorted(f.path for f in combined.expected.findings) == ["shop/cart.py", "shop/orders.py"]
    assert combined.expected.missing_checks == ["a test of search_orders with a quote", "a test of an empty cart"]
    assert "Bind query" in combined.expected.suggested_fix and "Start the limits" in combined.expected.suggested_fix


def test_combine_refuses_the_same_file_a_long_pr_and_a_near_duplicate() -> None:
    with pytest.raises(AugmentError, match="same file"):
        combine(example(), "python/search", clean_example("shop/orders.py"), "python/other", random.Random(0))
    with pytest.raises(AugmentError, match=f"over {MAX_COMBINED_CHANGED_LINES}"):
        combine(example(), "python/search", clean_example(lines=MAX_COMBINED_CHANGED_LINES), "python/big",
                random.Random(0))
    with pytest.raises(AugmentError, match="dominates"):  # data build would drop one as a near duplicate
        combine(example(), "python/search", clean_example(lines=80), "python/big", random.Random(0))


def test_combined_examples_fill_up_and_train_with_both_sources(tmp_path: Path) -> None:
    export = CuratedExample.model_validate(json.loads(example().model_dump_json().replace(
        "orders", "exports")))  # the same defect in another file, with other lines
    sources = {"search": example(), "export": export, "cart-clean": clean_example(), "notes-clean": clean_example("shop/notes.py", lines=4),
        "held-out": clean_example("shop/held.py", lines=5)}
    write_sources(tmp_path / "datasets", sources)
    counts = augment_dataset(tmp_path / "datasets", tmp_path / "derived", fill_to=len(sources) + 2 + 3)
    assert counts["combined"] == 3 and counts["clean-twin"] == 2
    combined = [load_example(p) for p in (tmp_path / "derived" / "python").glob("*--with--*.yaml")]
    held = held_out_roots(f"python/{name}" for name in sources)
    for ex in combined:
        second = next(t.split(":", 1)[1] for t in ex.tags if t.startswith("combined-with:"))
        assert not held & {ex.derived_from, second}
        assert "python/held-out" not in (ex.derived_from, second)
    report = build_dataset([tmp_path / "datasets", tmp_path / "derived"], tmp_path / "build",
                           allow_unreviewed=True)
    assert report.reviewers["python"]["eval"] == 1 and report.duplicates_removed == []
    assert report.reviewers["python"]["train"] == len(sources) - 1 + 5


def test_a_fix_a_person_already_wrote_is_not_twinned_and_never_displaced_by_a_copy(tmp_path: Path) -> None:
    written = clean_twin(example()).model_copy(update={"tags": ["clean"]})
    write_sources(tmp_path / "datasets", {"search": example(), "search-bound": written})
    counts = augment_dataset(tmp_path / "datasets", tmp_path / "derived")
    assert "clean-twin" not in counts
    # a derived copy made anyway (its id sorts first) is the one the build drops
    copy = derive(example(), "python/search", "clean-twin", random.Random(0))
    write_sources(tmp_path / "derived", {"search--clean-twin": copy})
    report = build_dataset([tmp_path / "datasets", tmp_path / "derived"], tmp_path / "build",
                           allow_unreviewed=True)
    assert [(d["id"], d["duplicate_of"]) for d in report.duplicates_removed] == [
        ("python/search--clean-twin", "python/search-bound")]


def test_a_reviewed_twin_stays_reviewed_and_a_rejected_one_is_not_made_again(tmp_path: Path) -> None:
    write_sources(tmp_path / "datasets", {"search": example()})
    out = tmp_path / "derived"
    augment_dataset(tmp_path / "datasets", out)
    twin_path = out / "python" / "search--clean-twin.yaml"
    reviewed = twin_path.read_text().replace("- review-before-use\n", "")
    twin_path.write_text(reviewed)
    augment_dataset(tmp_path / "datasets", out)
    assert twin_path.read_text() == reviewed
    (out / REJECTED_TWINS).write_text("python/search  the fix leaves the f-string in another call\n")
    augment_dataset(tmp_path / "datasets", out)
    assert not twin_path.exists()


def test_the_held_out_split_tops_up_to_thirty_roots_in_hash_order_from_sixty_roots_on() -> None:
    roots = [f"vue/example-{i}" for i in range(150)]
    by_hash = sorted(roots, key=stable_fraction)
    held = held_out_roots(roots, 0.15)
    below = [r for r in roots if stable_fraction(r) < 0.15]
    assert len(held) == max(30, len(below)) and held == set(by_hash[:len(held)])
    assert held_out_roots(roots, 0.5) == {r for r in roots if stable_fraction(r) < 0.5}  # the fraction rules
    few = roots[:59]  # too few to hold out 30: the fraction alone
    assert held_out_roots(few, 0.15) == {r for r in few if stable_fraction(r) < 0.15}
