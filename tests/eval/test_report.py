"""The report: markdown + HTML + PNG charts, from results files or the history; and the committed headline
report is exactly what its results files give."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from eval.cases import load_cases
from eval.generation import Generation, answer_from_text
from eval.history import ScoreHistory
from eval.metrics import summarize_all
from eval.report import ReportRun, _markdown_table, load_runs_for_report, summary_rows, write_report
from eval.results import EvalRunResult, RunInfo
from eval.runner import evaluate
from tests.eval.conftest import APPROVE_ANSWER, BLOCK_ANSWER, REPO, ScriptedReviewModel

HEADLINE = REPO / "eval" / "reports" / "smollm2"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def runs_of_a_sweep(scenario_dir: Path) -> list[ReportRun]:
    cases = load_cases(scenario_dir)
    good, bad = {"block": BLOCK_ANSWER, "clean": APPROVE_ANSWER}, {"block": "prose", "clean": APPROVE_ANSWER}
    runs = []
    for label, step, texts in [("base", 0, {"block": "prose", "clean": "prose"}), ("step-10", 10, bad),
                               ("step-20", 20, good)]:
        info = RunInfo(label=label, base_model="tiny", backend="scripted", cases_path="s", step=step, training_run="r")
        result = evaluate(ScriptedReviewModel(texts), cases, info, progress=False)
        runs.append(ReportRun(info=result.info, reviewers=result.reviewers, scores=result.scores))
    return runs


def test_the_report_has_tables_charts_and_the_commands(scenario_dir: Path, tmp_path: Path) -> None:
    paths = write_report(runs_of_a_sweep(scenario_dir), tmp_path / "report", title="Sweep", commands="calora eval sweep r")
    names = sorted(p.name for p in paths)
    assert names == ["base_vs_adapter.png", "index.html", "report.md", "reviewer_metric_grid.png",
                     "score_vs_checkpoint.png"]
    for png in (p for p in paths if p.suffix == ".png"):
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| python | base | raw | 0/2 | 0% | 0% | 0% | 0% | 0% | 0% | 0% |" in md
    assert "| python | step-20 | raw | 2/2 | 100% | 100% | 100% | 0% | 100% | 0% | 0% |" in md
    assert "| python/card-numbers-logged | block | fail: invalid 0/1 found | fail: invalid 0/1 found | PASS: block 1/1 found |" in md
    assert "calora eval sweep r" in md and "![score_vs_checkpoint](score_vs_checkpoint.png)" in md
    html = (tmp_path / "report" / "index.html").read_text()
    assert '<img src="score_vs_checkpoint.png"' in html and "<td>2/2</td>" in html


def test_eval_report_command_reads_the_history(scenario_dir: Path, tmp_path: Path) -> None:
    history = ScoreHistory(tmp_path / "h.sqlite")
    for run in runs_of_a_sweep(scenario_dir):
        history.record(EvalRunResult(info=run.info, results=[], scores=run.scores, reviewers=run.reviewers))
    assert main(["eval", "report", "--history", str(tmp_path / "h.sqlite"), "--out", str(tmp_path / "out")]) == 0
    assert "| python | step-20 | raw | 2/2 |" in (tmp_path / "out" / "report.md").read_text()


def test_an_empty_history_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "report", "--history", str(tmp_path / "h.sqlite"), "--out", str(tmp_path / "o")]) == 2
    assert "nothing to report" in capsys.readouterr().err


# --- the committed headline report -----------------------------------------------------------------

HEADLINE_RESULTS = ["transformers.base.raw.json", "transformers.adapter.raw.json",
                    "engine.base.constrained.json", "engine.adapter.constrained.json"]


def test_the_committed_headline_table_is_what_its_results_files_give() -> None:
    runs = load_runs_for_report([HEADLINE / "results" / name for name in HEADLINE_RESULTS], None)
    table = _markdown_table(summary_rows(runs))
    assert table in (HEADLINE / "report.md").read_text()
    commands = (HEADLINE / "commands.sh").read_text()
    for flag in ("--max-new-tokens 384", "--batch-size 4", "--dtype float32", "--adapters runs/smollm2",
                 "--backend engine --decoding both", "calora eval report"):
        assert flag in commands


@pytest.mark.parametrize("name", sorted(p.name for p in (HEADLINE / "results").glob("*.json")))
def test_the_committed_answers_grade_to_the_committed_scores(name: str) -> None:
    """Re-parse every stored answer and re-summarize: the metrics come from the texts, nothing else."""
    run = EvalRunResult.read(HEADLINE / "results" / name)
    for result, score in zip(run.results, run.scores, strict=True):
        # (constrained answers are stored after the serving path's inverted-range repair)
        reparsed = answer_from_text(Generation(text=result.raw, latency_s=result.latency_s))
        assert (reparsed.output is not None) == result.valid == score.valid
        assert reparsed.output == result.output
    assert summarize_all(run.scores, run.info.decoding) == run.reviewers
