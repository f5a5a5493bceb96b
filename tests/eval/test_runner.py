"""`calora eval run` end to end on scenario folders: a tiny random model (invalid answers, measured as
such), a scripted model at the edge (to check grading through the whole shell), and the history it fills."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from eval.cases import load_cases
from eval.generation import (
    BackendReviewModel,
    TransformersModel,
    UnsupportedDecodingError,
)
from eval.history import ScoreHistory
from eval.results import EvalRunResult, RunInfo
from eval.runner import answer_cases, evaluate
from reviewers.backends.base import ReviewerFailure
from reviewers.contract import ReviewerOutput, ReviewRequest
from tests.eval.conftest import APPROVE_ANSWER, BLOCK_ANSWER, ScriptedReviewModel


def info(label: str = "t") -> RunInfo:
    return RunInfo(label=label, base_model="tiny", backend="transformers", cases_path="scenarios")


def test_a_tiny_random_model_is_measured_as_invalid(scenario_dir: Path, tiny_model: TransformersModel) -> None:
    cases = load_cases(scenario_dir)
    run = evaluate(tiny_model, cases, info(), progress=False)
    m = run.reviewers["python"]
    assert m.cases == 2 and m.passed == 0 and m.pass_count == "0/2"
    assert m.validity == 0.0 and m.verdict_accuracy == 0.0 and m.finding_recall == 0.0
    assert m.block_recall == 0.0 and m.false_block_rate == 0.0
    for result in run.results:
        assert not result.valid and result.error  # the contract error is kept, with the raw text
        assert result.prompt_tokens > 100 and 1 <= result.completion_tokens <= 6
        assert result.latency_s > 0


def test_batched_answers_keep_case_order(scenario_dir: Path, tiny_model: TransformersModel) -> None:
    cases = load_cases(scenario_dir)
    results = answer_cases(tiny_model, cases, progress=False, batch_size=2)
    assert [r.case_id for r in results] == [c.id for c in cases]
    assert results[0].latency_s == results[1].latency_s  # one batch


def test_the_transformers_model_refuses_constrained_decoding(scenario_dir: Path, tiny_model: TransformersModel) -> None:
    with pytest.raises(UnsupportedDecodingError, match="--backend engine"):
        answer_cases(tiny_model, load_cases(scenario_dir), decoding="constrained", progress=False)


def test_grading_through_the_runner_with_a_scripted_model(scenario_dir: Path) -> None:
    cases = load_cases(scenario_dir)
    good = evaluate(ScriptedReviewModel({"block": BLOCK_ANSWER, "clean": APPROVE_ANSWER}), cases, info(), False)
    assert good.reviewers["python"].pass_count == "2/2"
    assert good.reviewers["python"].finding_recall == 1.0
    prose = evaluate(ScriptedReviewModel({"block": "This looks risky.", "clean": APPROVE_ANSWER}), cases, info(), False)
    m = prose.reviewers["python"]
    assert m.pass_count == "1/2" and m.validity == 0.5 and m.block_recall == 0.0


class ScriptedBackend:
    """A scripted `ReviewerBackend` at the edge: a failure for the block case, an approval otherwise."""

    name = "scripted-backend"

    def review(self, requests: list[ReviewRequest]) -> list[Any]:
        return [ReviewerFailure(reviewer=r.reviewer, message="broke the contract", raw="Looks fine!")
                if "payments/charge.py" in r.diff else ReviewerOutput.model_validate_json(APPROVE_ANSWER)
                for r in requests]


def test_any_reviewer_backend_can_be_evaluated(scenario_dir: Path) -> None:
    run = evaluate(BackendReviewModel(ScriptedBackend()), load_cases(scenario_dir), info(), progress=False)
    block, clean = run.results
    assert not block.valid and block.raw == "Looks fine!" and block.error == "broke the contract"
    assert clean.valid and run.reviewers["python"].pass_count == "1/2"


def test_eval_run_command_on_a_scenario_folder_with_a_tiny_model(
    scenario_dir: Path, tmp_path: Path, tiny_model: TransformersModel, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    loaded: list[dict[str, Any]] = []

    def load(base_model: str | None, **kwargs: Any) -> TransformersModel:
        loaded.append({"base_model": base_model, **kwargs})
        return tiny_model

    monkeypatch.setattr(TransformersModel, "load", staticmethod(load))
    out, history = tmp_path / "out", tmp_path / "history.sqlite"
    code = main(["eval", "run", "--cases", str(scenario_dir), "--base-model", "tiny-in-memory",
                 "--max-new-tokens", "6", "--out", str(out), "--history", str(history)])
    assert code == 0
    assert loaded == [{"base_model": "tiny-in-memory", "device": "auto", "dtype": "auto", "max_new_tokens": 6,
                       "adapters": {}}]
    table = capsys.readouterr().out
    assert "| python | raw | 0/2 | 0% | 0% |" in table
    run = EvalRunResult.read(out / "base.raw.json")
    assert run.info.label == "base" and run.info.command.startswith("calora eval run --cases")
    assert (out / "base.md").read_text() == table.rstrip("\n") + "\n"
    (row,) = ScoreHistory(history).scores(reviewer="python")
    assert row.metrics.validity == 0.0 and row.metrics.cases == 2 and row.run.results_path == str(out / "base.raw.json")
    assert len(ScoreHistory(history).case_scores(row.run.id)) == 2


def test_eval_run_refuses_an_adapter_folder_without_a_peft_config(scenario_dir: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "run", "--cases", str(scenario_dir), "--adapter", str(tmp_path), "--no-history"])
    assert code == 2 and "no adapter_config.json" in capsys.readouterr().err


def test_eval_run_reports_a_missing_case_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "run", "--cases", str(tmp_path / "nope"), "--no-history"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
