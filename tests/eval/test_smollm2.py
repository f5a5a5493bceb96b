"""`calora eval run` with the real SmolLM2-135M-Instruct on a scenario folder (slow: loads the GGUF)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from eval.history import ScoreHistory
from eval.results import EvalRunResult
from tests.conftest import SMOLLM2_DIR, SMOLLM2_GGUF


@pytest.mark.slow
def test_eval_run_with_smollm2_measures_the_base_model_as_answering_in_prose(
    scenario_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    if not (SMOLLM2_DIR / SMOLLM2_GGUF).is_file():
        pytest.fail(f"{SMOLLM2_DIR / SMOLLM2_GGUF} is missing")
    code = main(["eval", "run", "--cases", str(scenario_dir), "--base-model", str(SMOLLM2_DIR),
                 "--max-new-tokens", "32", "--batch-size", "2", "--device", "cpu", "--out", str(tmp_path / "out"),
                 "--history", str(tmp_path / "h.sqlite")])
    assert code == 0
    run = EvalRunResult.read(tmp_path / "out" / "base.raw.json")
    assert run.info.base_model.endswith(SMOLLM2_GGUF) and run.info.dtype == "float32"
    for result in run.results:
        assert result.raw.strip() and result.completion_tokens and 1 <= result.completion_tokens <= 32
        assert result.prompt_tokens > 300  # SmolLM2's own tokenizer and chat template
        assert not result.valid and "must start with a JSON object" in (result.error or "")
    assert run.reviewers["python"].pass_count == "0/2"
    assert "| python | raw | 0/2 | 0% |" in capsys.readouterr().out
    assert ScoreHistory(tmp_path / "h.sqlite").scores()[0].metrics.validity == 0.0
