"""The score history: a real SQLite file, read back through the typed API only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from eval.cases import load_cases
from eval.history import HistoryError, PromotionRecord, ScoreHistory
from eval.results import RunInfo
from eval.runner import evaluate
from tests.eval.conftest import APPROVE_ANSWER, BLOCK_ANSWER, ScriptedReviewModel


def scripted_run(scenario_dir: Path, label: str, texts: dict[str, str], **info: object):
    return evaluate(ScriptedReviewModel(texts), load_cases(scenario_dir),
                    RunInfo(label=label, base_model="tiny", backend="scripted", cases_path=str(scenario_dir), **info),
                    progress=False)


def test_runs_and_metrics_read_back_as_typed_models(scenario_dir: Path, tmp_path: Path) -> None:
    history = ScoreHistory(tmp_path / "h.sqlite")
    good = scripted_run(scenario_dir, "adapter", {"block": BLOCK_ANSWER, "clean": APPROVE_ANSWER})
    bad = scripted_run(scenario_dir, "base", {"block": "no", "clean": "no"})
    first = history.record(good, tmp_path / "adapter.json")
    second = history.record(bad)
    runs = history.runs()
    assert [r.id for r in runs] == [first, second] and runs[0].label == "adapter"
    assert runs[0].results_path == str(tmp_path / "adapter.json") and runs[0].created_at == good.info.created_at
    (row,) = history.scores(run_id=first)
    assert row.metrics == good.reviewers["python"]  # every metric survives the round trip
    assert [r.run.label for r in history.scores(reviewer="python")] == ["adapter", "base"]
    assert [s.passed for s in history.case_scores(first)] == [True, True]
    assert history.runs(label="base")[0].id == second


def test_checkpoint_metrics_keep_the_newest_of_each_decoding_in_step_order(scenario_dir: Path, tmp_path: Path) -> None:
    history = ScoreHistory(tmp_path / "h.sqlite")
    run_dir = tmp_path / "runs" / "python"
    good = {"block": BLOCK_ANSWER, "clean": APPROVE_ANSWER}
    for label, step, texts in [("step-20", 20, {"block": "x", "clean": "x"}), ("step-10", 10, good),
                               ("step-20", 20, good)]:
        history.record(scripted_run(scenario_dir, label, texts, training_run=str(run_dir), checkpoint=label, step=step))
    points = history.checkpoint_metrics(run_dir, "python")
    assert [(p.checkpoint, p.step) for p in points] == [("step-10", 10), ("step-20", 20)]
    assert points[1].by_decoding["raw"].validity == 1.0  # the re-evaluation replaced the first one
    assert history.checkpoint_metrics(tmp_path / "other", "python") == []


def test_promotions_round_trip_with_their_evidence(tmp_path: Path) -> None:
    history = ScoreHistory(tmp_path / "h.sqlite")
    history.record_promotion(PromotionRecord(training_run="runs/python", reviewer="python", promoted=False,
                                             evidence={"failing": ["raw_validity"]}))
    (record,) = history.promotions(reviewer="python")
    assert record.id == 1 and not record.promoted and record.evidence == {"failing": ["raw_validity"]}
    assert record.training_run == str(Path("runs/python").resolve())


def test_a_file_from_before_a_new_column_is_upgraded_in_place(scenario_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    ScoreHistory(path)
    with sqlite3.connect(path) as db:  # as written before `truncation_rate` and `dtype` existed
        db.execute("ALTER TABLE reviewer_metrics DROP COLUMN truncation_rate")
        db.execute("ALTER TABLE eval_runs DROP COLUMN dtype")
    history = ScoreHistory(path)
    history.record(scripted_run(scenario_dir, "base", {"block": "x", "clean": "x"}))
    assert history.scores()[0].metrics.truncation_rate == 0.0


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_text("not a database")
    with pytest.raises(HistoryError, match="not a readable SQLite score history"):
        ScoreHistory(path)
