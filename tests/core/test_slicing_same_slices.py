"""Slicing's speed work changed no slice: every plan below matches the one the code made before it.

`data/slices_before_speedup.json` holds a fingerprint of each plan (per slice: reviewer, index, token
count, flags, paths, hunk headers (real diffs, default budget) and a digest of the whole slice; the not-reviewed list and the notes),
written once by `python tests/core/test_slicing_same_slices.py --write` from the code at commit 4448cba,
before the parser, router and slicer were made faster (issue #18). The inputs are the bench's synthetic
diff (300 files) and the real pull-request diffs in ../shared/github/diffs/real/, under the default
budget and under a small one with every cap biting, counted by the estimate and by a word counter (what
a tokenizer does differently from the estimate must not change which text is counted). Regenerate only
when a change to slicing is meant to change its output, and say so in that commit.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from reviewers.slicing import SliceLimits, SlicePlan, TokenCounter, approx_token_count, slice_diff
from tests.conftest import REPO_ROOT, SHARED

EXPECTED = Path(__file__).resolve().parent / "data" / "slices_before_speedup.json"
REAL_DIFFS = SHARED / "github" / "diffs" / "real"

WIDE = SliceLimits(
    budget_tokens=3000, max_files=5000, max_slices_per_reviewer=100_000, max_diff_bytes=40_000_000
)
TIGHT = SliceLimits(
    budget_tokens=160, overlap_lines=2, max_files=200, max_slices_per_reviewer=12, max_diff_bytes=900_000
)


def count_words(text: str) -> int:
    """A counter unlike the estimate (words, not characters), standing in for a tokenizer."""
    return len(text.split()) + 1


COUNTERS: dict[str, TokenCounter] = {"estimate": approx_token_count, "words": count_words}


def synthetic_diff() -> bytes:
    """The bench's seeded mixed-language diff, at 300 files (about 1.2 MB)."""
    spec = importlib.util.spec_from_file_location("slicing_bench", REPO_ROOT / "bench" / "slicing_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.build_diff(files=300, megabytes=1.2)


@cache
def inputs() -> tuple[tuple[str, bytes], ...]:
    real = [(path.stem[:40], path.read_bytes()) for path in sorted(REAL_DIFFS.glob("*.diff"))]
    return (("synthetic-300", synthetic_diff()), *real)


def cases() -> Iterator[tuple[str, bytes, SliceLimits, str]]:
    """(name, diff, limits, counter name) of every plan the fixture holds."""
    for name, data in inputs():
        for limits_name, limits in (("wide", WIDE), ("tight", TIGHT)):
            for counter in COUNTERS:
                yield f"{name}/{limits_name}/{counter}", data, limits, counter


def fingerprint(plan: SlicePlan, headers: bool = True) -> dict[str, Any]:
    """What a reader would compare: the slices' shape (and hunk headers), plus a digest of everything."""

    def digest(data: object) -> str:
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    return {
        "slices": [
            [
                s.reviewer,
                s.index,
                s.tokens,
                s.split_hunk,
                s.over_budget,
                [f.path for f in s.files],
                [line for line in s.diff.split("\n") if line.startswith("@@ ")] if headers else [],
                digest(s.model_dump()),
            ]
            for s in plan.slices
        ],
        "not_reviewed": digest([n.model_dump() for n in plan.not_reviewed]),
        "not_reviewed_count": len(plan.not_reviewed),
        "notes": plan.notes,
    }


def _shows_headers(case: str) -> bool:
    """Hunk headers are written out for the real diffs under the default budget; elsewhere the digest holds
    them (keeps the fixture small)."""
    return not case.startswith("synthetic") and "/wide/" in case


def compute_all() -> dict[str, Any]:
    return {
        name: fingerprint(slice_diff(data, limits, COUNTERS[counter]), headers=_shows_headers(name))
        for name, data, limits, counter in cases()
    }


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return json.loads(EXPECTED.read_text())


@pytest.mark.parametrize("case", [name for name, *_ in cases()])
def test_slices_are_those_made_before_the_speedup(case: str, expected: dict[str, Any]) -> None:
    _, data, limits, counter = next(c for c in cases() if c[0] == case)
    plan = slice_diff(data, limits, COUNTERS[counter])
    assert fingerprint(plan, headers=_shows_headers(case)) == expected[case]


def test_the_fixture_covers_splits_caps_and_every_real_diff(expected: dict[str, Any]) -> None:
    assert len(expected) == 4 * (1 + len(list(REAL_DIFFS.glob("*.diff"))))
    tight = expected["synthetic-300/tight/estimate"]
    assert any(s[3] for s in tight["slices"])  # split hunks
    assert any("max_slices_per_reviewer" in n for n in tight["notes"])
    assert any("max_diff_bytes" in n for n in tight["notes"])


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    EXPECTED.write_text(json.dumps(compute_all(), separators=(",", ":")) + "\n")
    print(f"wrote {EXPECTED}")
