"""The engine as an eval model: a tiny random model is invalid raw and valid under the schema constraint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval.cases import load_cases
from eval.engine_model import EngineReviewModel
from eval.results import RunInfo
from eval.runner import evaluate
from reviewers.contract import parse_review


@pytest.fixture
def engine_model(tiny_parts: tuple[Any, Any]) -> Any:
    from reviewers.engine.engine import Engine

    model, tokenizer = tiny_parts
    engine = Engine.from_model(model, tokenizer, device="cpu", max_seq_len=4096)
    wrapped = EngineReviewModel(engine, max_new_tokens=40)
    yield wrapped
    wrapped.close()


def test_constrained_decoding_turns_random_answers_into_contract_json_judged_as_serving_judges_it(
    engine_model: EngineReviewModel, scenario_dir: Path,
) -> None:
    cases = load_cases(scenario_dir)
    raw = evaluate(engine_model, cases, RunInfo(label="tiny", base_model="tiny", backend="engine",
                                                cases_path="s", decoding="raw"), progress=False)
    constrained = evaluate(engine_model, cases, RunInfo(label="tiny", base_model="tiny", backend="engine",
                                                        cases_path="s", decoding="constrained"), progress=False)
    assert raw.reviewers["python"].validity == 0.0
    for result in constrained.results:
        assert result.raw.startswith('{"verdict":') and result.truncated  # closed early within 40 tokens
        assert result.completion_tokens <= 40 and result.prompt_tokens > 100
        parse_review(result.raw)  # contract JSON, closed by the grammar at the cap: serving keeps such an
        assert result.valid  # answer (read_answer), so the eval counts it valid too
    assert constrained.reviewers["python"].validity == 1.0
