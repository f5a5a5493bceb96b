"""The latency bench reviews a pull request like a real one: 20 files from real diffs and the eval
scenarios, spread over the reviewers, each file's section copied unchanged (issue #18)."""

from __future__ import annotations

import importlib.util

from reviewers.routing import route_file
from reviewers.slicing import slice_diff
from reviewers.unified_diff import read_diff
from tests.conftest import REPO_ROOT


def load_bench():
    spec = importlib.util.spec_from_file_location("review_latency", REPO_ROOT / "bench" / "review_latency.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bench_pull_request_has_twenty_routed_files_over_most_reviewers(shared_dir) -> None:
    diff, files = load_bench().build_pull_request(20)
    parsed = read_diff(diff)
    assert [f.path for f in parsed.files] == [f["path"] for f in files]
    assert len(files) == 20 and len({f["path"] for f in files}) == 20
    assert all(f.error is None and route_file(f.path).reviewers for f in parsed.files)
    assert any(f["from"].startswith("real/") for f in files)
    assert any(f["from"].startswith("eval/scenarios/") for f in files)
    assert len({s.reviewer for s in slice_diff(parsed).slices}) >= 6


def test_the_bench_compares_the_screened_heads_tokens_with_the_full_heads_of_the_same_dtype() -> None:
    full = {"backend": "engine", "head": "full", "dtype": "fp32", "threads": 2, "answer_tokens": [[1, 2, 3], [4, 5]]}
    screened = {"backend": "engine", "head": "screened", "dtype": "fp32", "threads": 2,
                "answer_tokens": [[1, 2, 3], [4, 6, 7]]}
    other_dtype = {"backend": "engine", "head": "screened", "dtype": "bf16", "threads": 2, "answer_tokens": [[1]]}
    load_bench()._compare_answers([full, screened, other_dtype])
    assert screened["versus_full_head"] == {"same_answers": 1, "answers": 2, "tokens_agreeing": 4, "tokens": 6}
    assert "versus_full_head" not in other_dtype and "versus_full_head" not in full


def test_the_bench_refuses_to_build_its_pull_request_without_the_real_diffs(tmp_path) -> None:
    """On a machine without ../shared (a GPU call) the PR would silently be scenario diffs only."""
    import pytest

    with pytest.raises(SystemExit, match="no real diffs"):
        load_bench().build_pull_request(20, tmp_path)
