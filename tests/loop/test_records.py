"""The loop's records in the App's store: SQLite always, PostgreSQL where CALORA_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.console.records import read_engine
from app.store import Store, make_engine
from loop.patches import Rejection
from loop.records import LOOP_ROUNDS, LOOPS, LoopReader, LoopRecorder, LoopStart
from loop.rounds import AuthorTurn, Dispute, LoopSummary, RoundRecord, TestRun, round_line
from reviewers.pipeline import run_pipeline

DIFF = ("diff --git a/x.py b/x.py\nnew file mode 100644\n--- /dev/null\n+++ b/x.py\n@@ -0,0 +1,2 @@\n"
        "+import os\n+x = 1\n")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'calora.sqlite'}"
        return
    if not os.environ.get("CALORA_TEST_POSTGRES_URL"):
        pytest.skip("CALORA_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    from tests.app.test_postgres import scratch_schema

    with scratch_schema() as url:
        yield url


def reader_engine(url: str):
    """The console's read-only engine; on PostgreSQL the store's engine, because the scratch schema travels in
    the URL's `options`, which the read-only engine's own `options` would replace."""
    return read_engine(url) if url.startswith("sqlite") else make_engine(url)


def _start() -> LoopStart:
    return LoopStart(task="add x", repo="/r", base_sha="a" * 40, branch="calora/loop-1", worktree="/tmp/w",
                     author="m at http://h/v1", reviewers="none", test_cmd="pytest -q", max_rounds=3)


def test_a_loop_and_its_rounds_read_back_as_written_beside_the_app_tables(database_url: str) -> None:
    store = Store.from_url(database_url)  # the App's own tables, in the same database
    recorder = LoopRecorder.from_url(database_url)
    loop_id = recorder.start(_start())
    assert loop_id is not None
    first = RoundRecord(number=1, status="does_not_apply", message="patch does not apply: error: x",
                        author=AuthorTurn(text="```diff\n...```", prompt_tokens=120, completion_tokens=30, seconds=2.5),
                        patch="diff --git a/x b/x\n", check_output="error: patch failed: x:1")
    review = run_pipeline(DIFF, None, task="add x")
    second = RoundRecord(number=2, status="reviewed", message="review approve", author=AuthorTurn(text="ok"),
                         rejections=[Rejection(target="F401", reason="used later")],
                         disputes=[Dispute(rejection=Rejection(target="F401", reason="used later"),
                                           finding="x.py:1 [nit] unused")],
                         applied_diff=DIFF, review=review, tests=TestRun(command="pytest -q", exit_code=0),
                         seconds=4.0)
    recorder.round(loop_id, first)
    recorder.round(loop_id, second)
    summary = LoopSummary(loop_id=loop_id, task="add x", repo="/r", base_sha="a" * 40, branch="calora/loop-1",
                          worktree="/tmp/w", stop_reason="approved", approved=True,
                          rounds=[round_line(first), round_line(second)], final_patch=DIFF, committed=True)
    recorder.finish(loop_id, summary)

    reader = LoopReader(reader_engine(database_url))
    [row] = reader.list_loops()
    assert (row.id, row.state, row.approved, row.rounds, row.stop_reason) == (loop_id, "done", True, 2, "approved")
    detail = reader.get_loop(loop_id)
    assert detail is not None and detail.summary == summary
    # JSON is what the store keeps (an analyzer's CheckFinding reads back as the Finding it extends)
    assert [r.model_dump(mode="json") for r in detail.rounds_recorded] == [
        first.model_dump(mode="json"), second.model_dump(mode="json")]
    assert reader.get_loop(loop_id + 1) is None
    with store.engine.connect() as connection:
        tokens = connection.execute(text(
            "SELECT author_tokens, reviewer_tokens, decision FROM loop_rounds ORDER BY number")).all()
    sent = sum(piece.tokens for piece in review.plan.slices)
    assert sent > 0 and [tuple(t) for t in tokens] == [(150, 0, None), (0, sent, "approve")]
    recorder.close()
    store.close()


def test_a_loop_that_crashed_is_recorded_as_failed(database_url: str) -> None:
    recorder = LoopRecorder.from_url(database_url)
    loop_id = recorder.start(_start())
    recorder.fail(loop_id, "LoopSetupError: could not reset the scratch worktree")
    [row] = LoopReader(reader_engine(database_url)).list_loops()
    assert row.state == "failed" and row.error == "LoopSetupError: could not reset the scratch worktree"
    recorder.close()


def test_recording_never_breaks_the_loop_and_a_missing_table_reads_as_no_loops(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'calora.sqlite'}"
    assert LoopReader(read_engine(url)).list_loops() == [] and LoopReader(read_engine(url)).get_loop(1) is None
    recorder = LoopRecorder.from_url(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {LOOP_ROUNDS.name}"))
        connection.execute(text(f"DROP TABLE {LOOPS.name}"))
    assert recorder.start(_start()) is None
    recorder.round(1, RoundRecord(number=1, status="author_error", message="timeout", author=AuthorTurn()))
    recorder.fail(1, "x")
    recorder.close()
