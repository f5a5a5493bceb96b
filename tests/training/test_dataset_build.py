"""`calora data build`: validation errors name file and field; dedup, split and leakage behave."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reviewers.contract import ReviewerOutput, ReviewRequest
from reviewers.prompt import render_training_messages
from reviewers.unified_diff import parse_unified_diff
from training.dataset_build import DatasetError, build_dataset, hunk_keys, stable_fraction

DIFF = """\
diff --git a/shop/orders.py b/shop/orders.py
--- a/shop/orders.py
+++ b/shop/orders.py
@@ -10,3 +10,6 @@
 def total(order):
     return sum(i.price for i in order.items)
 
+def search(conn, q):
+    return conn.execute(f"SELECT * FROM orders WHERE ref = '{q}'")
+
"""


def example(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "reviewer": "python",
        "task": "Add order search",
        "diff": DIFF,
        "expected": {
            "verdict": "block",
            "findings": [{"path": "shop/orders.py", "line": 14, "severity": "blocker", "category": "security",
                          "message": "SQL injection: bind q as a parameter."}],
            "missing_checks": ["a test with a quote in q"],
            "suggested_fix": "Use a bound parameter.",
        },
    }
    data.update(changes)
    return data


def write(root: Path, reviewer: str, name: str, data: dict[str, Any]) -> Path:
    path = root / reviewer / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def build_errors(root: Path, tmp_path: Path) -> list[str]:
    with pytest.raises(DatasetError) as info:
        build_dataset([root], tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing may be written while examples fail validation"
    return info.value.errors


def with_finding(**finding: Any) -> dict[str, Any]:
    data = example()
    data["expected"]["findings"][0].update(finding)
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (example(diff="this is not a diff\n"), "diff: holds no file changes"),
        (example(diff="--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n-a\n"), "diff: does not parse as a unified diff"),
        (with_finding(line=9), "expected.findings.0.line: line 9 is not inside one hunk of the diff"),
        (with_finding(line=14, end_line=16), "expected.findings.0.line: lines 14-16 are not inside one hunk"),
        (with_finding(path="shop/order.py"), "expected.findings.0.path: 'shop/order.py' is not a file of the diff"),
        (with_finding(severity="critical"), "expected.findings.0.severity: Input should be"),
        (example(verdict="block"), "verdict: Extra inputs are not permitted"),
        (example(reviewer="golang"), "reviewer: unknown reviewer 'golang'"),
        (with_finding(severity="major"), "expected.verdict: block without any blocker finding"),
    ],
    ids=["not-a-diff", "broken-hunk", "before-the-hunk", "range-past-the-hunk", "wrong-path", "bad-enum",
         "unknown-field", "unknown-reviewer", "block-without-blocker"],
)
def test_each_validation_error_names_file_and_field(tmp_path: Path, data: dict[str, Any], expected: str) -> None:
    root = tmp_path / "datasets"
    folder = data["reviewer"] if data.get("reviewer") in ("python", "golang") else "python"
    path = write(root, folder, "bad-one", data)
    errors = build_errors(root, tmp_path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}: ")
    assert expected in errors[0]


def test_every_bad_file_is_reported_not_only_the_first(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    write(root, "python", "good", example())
    write(root, "python", "bad-a", with_finding(line=20))
    write(root, "python", "bad-b", example(diff="nope\n"))
    errors = build_errors(root, tmp_path)
    assert [e.split(":")[0] for e in errors] == [str(root / "python" / "bad-a.yaml"), str(root / "python" / "bad-b.yaml")]


def test_example_in_another_reviewers_folder_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    write(root, "sql", "misfiled", example())
    (error,) = build_errors(root, tmp_path)
    assert "reviewer: 'python' but the file is in the folder of 'sql'" in error


def test_unknown_derived_from_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    write(root, "python", "twin", example(derived_from="python/nowhere"))
    (error,) = build_errors(root, tmp_path)
    assert "derived_from: 'python/nowhere' is not an example id" in error


def numbered(i: int, verdict: str = "approve") -> dict[str, Any]:
    diff = (f"diff --git a/pkg/mod{i}.py b/pkg/mod{i}.py\n--- a/pkg/mod{i}.py\n+++ b/pkg/mod{i}.py\n"
            f"@@ -1,1 +1,3 @@\n import os\n+VALUE_{i} = {i}\n+NAME_{i} = 'n{i}'\n")
    return {"reviewer": "python", "task": f"constants {i}", "diff": diff,
            "expected": {"verdict": verdict, "findings": [], "missing_checks": [], "suggested_fix": ""}}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_build_writes_chat_records_rendered_like_inference(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    for i in range(40):
        write(root, "python", f"ex-{i:02d}", numbered(i))
    report = build_dataset([root], tmp_path / "out", eval_fraction=0.25)
    stats = report.reviewers["python"]
    assert stats["train"] + stats["eval"] == 40 and 0 < stats["eval"] < 40
    rows = read_jsonl(tmp_path / "out" / "python" / "train.jsonl")
    row = rows[0]
    expected = render_training_messages(ReviewRequest.model_validate(row["request"]),
                                        ReviewerOutput.model_validate(row["expected"]))
    assert row["messages"] == [m.model_dump() for m in expected]
    assert all(stable_fraction(r["id"]) >= 0.25 for r in rows)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["reviewers"]["python"]["train"] == stats["train"]
    assert stats["train_balance"]["verdicts"] == {"approve": stats["train"]}
    assert stats["train_balance"]["tokens"]["max"] > 0


def test_split_is_deterministic_and_derived_twins_follow_their_source(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    for i in range(30):
        write(root, "python", f"ex-{i:02d}", numbered(i))
        twin = numbered(100 + i, verdict="approve")
        twin["derived_from"] = f"python/ex-{i:02d}"
        write(root, "python", f"ex-{i:02d}-twin", twin)
    build_dataset([root], tmp_path / "a", eval_fraction=0.3)
    build_dataset([root], tmp_path / "b", eval_fraction=0.3)
    for part in ("train", "eval"):
        assert (tmp_path / "a" / "python" / f"{part}.jsonl").read_bytes() == (
            tmp_path / "b" / "python" / f"{part}.jsonl").read_bytes()
    eval_ids = {r["id"] for r in read_jsonl(tmp_path / "a" / "python" / "eval.jsonl")}
    assert eval_ids
    for eid in eval_ids:
        source = eid.removesuffix("-twin")
        assert source in eval_ids and f"{source}-twin" in eval_ids


def test_exact_and_near_duplicates_are_removed_but_a_clean_twin_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    write(root, "python", "a-original", example())
    write(root, "python", "b-copy", example(task="same diff again"))
    near = example(diff=DIFF.replace("def total(order):", "def total(order):  "))
    write(root, "python", "c-whitespace", near)
    clean = example(diff=DIFF.replace("f\"SELECT * FROM orders WHERE ref = '{q}'\")",
                                      "\"SELECT * FROM orders WHERE ref = %s\", [q])"))
    clean["expected"] = {"verdict": "approve", "findings": [], "missing_checks": [], "suggested_fix": ""}
    write(root, "python", "d-clean-twin", clean)
    report = build_dataset([root], tmp_path / "out")
    removed = {d["id"]: d for d in report.duplicates_removed}
    assert set(removed) == {"python/b-copy", "python/c-whitespace"}
    assert removed["python/b-copy"]["duplicate_of"] == "python/a-original"
    assert report.reviewers["python"]["examples"] == 2


def test_eval_example_sharing_a_hunk_with_train_moves_to_train(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    for i in range(40):
        data = numbered(i)
        # Every example also carries the same second hunk (in another file), as copied code would.
        data["diff"] += ("diff --git a/pkg/shared.py b/pkg/shared.py\n--- a/pkg/shared.py\n+++ b/pkg/shared.py\n"
                         "@@ -1,1 +1,2 @@\n import sys\n+FLAG = True\n")
        data["expected"]["verdict"] = ("approve", "revise")[i % 2]
        if i % 2:
            data["expected"]["findings"] = [{"path": f"pkg/mod{i}.py", "line": 2, "severity": "minor",
                                             "category": "style", "message": "name it better"}]
        write(root, "python", f"ex-{i:02d}", data)
    report = build_dataset([root], tmp_path / "out", eval_fraction=0.3)
    stats = report.reviewers["python"]
    assert stats["eval"] == 0 and stats["train"] == 40
    assert len(stats["moved_to_train_for_leakage"]) > 0


def test_hunk_keys_ignore_paths_and_whitespace() -> None:
    a = "--- a/x.py\n+++ b/x.py\n@@ -1,1 +1,2 @@\n a\n+b  =  1\n"
    b = "--- a/y.py\n+++ b/y.py\n@@ -5,1 +5,2 @@\n z\n+b = 1\n"
    assert hunk_keys(parse_unified_diff(a)) == hunk_keys(parse_unified_diff(b))


def test_committed_datasets_build(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "datasets"
    if not root.is_dir():
        pytest.skip("no datasets/ committed yet")
    report = build_dataset([root], tmp_path / "out")
    assert report.reviewers, "datasets/ holds no examples"
    for name, stats in report.reviewers.items():
        assert stats["train"] > 0 and stats["eval"] > 0, name


def test_unreviewed_clean_twins_are_left_out_unless_allowed(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    for i in range(6):
        write(root, "python", f"ex-{i}", numbered(i))
    twin = numbered(50)
    twin.update(derived_from="python/ex-0", tags=["clean", "review-before-use", "derived"])
    write(root, "python", "ex-0--clean-twin", twin)
    report = build_dataset([root], tmp_path / "a")
    assert report.skipped_unreviewed == ["python/ex-0--clean-twin"]
    assert report.reviewers["python"]["examples"] == 6
    assert build_dataset([root], tmp_path / "b", allow_unreviewed=True).reviewers["python"]["examples"] == 7
