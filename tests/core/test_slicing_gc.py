"""Slicing leaves the process-wide garbage collector alone: the App slices in a worker thread while the
receiver's event loop runs in another, and a collector switched off there is off for both."""

from __future__ import annotations

import gc

from reviewers.slicing import SliceLimits, approx_token_count, slice_diff
from tests.conftest import REPO_ROOT

SAMPLE = (REPO_ROOT / "samples" / "storefront.diff").read_bytes()


def test_the_collector_stays_on_while_a_diff_is_sliced() -> None:
    seen: list[bool] = []

    def count_tokens(text: str) -> int:  # called throughout slicing: it sees the collector's state there
        seen.append(gc.isenabled())
        return approx_token_count(text)

    assert gc.isenabled()
    plan = slice_diff(SAMPLE, SliceLimits(budget_tokens=64), count_tokens)
    assert plan.slices and seen and all(seen)
    assert gc.isenabled()
