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


def test_a_prompt_over_the_window_fails_only_its_own_case_in_a_batch(
    tiny_parts: tuple[Any, Any], scenario_dir: Path,
) -> None:
    """The GPU round of 2026-12-07 lost 16 react cases to one 4,660-token prompt: the whole batch failed."""
    from reviewers.engine.engine import Engine

    model, tokenizer = tiny_parts
    cases = load_cases(scenario_dir)
    short = min(cases, key=lambda c: len(c.request.diff))
    long = max(cases, key=lambda c: len(c.request.diff))
    padded = long.request.model_copy(update={"diff": long.request.diff + "\n" + "+x = 1\n" * 400})
    engine = Engine.from_model(model, tokenizer, device="cpu", max_seq_len=1024)
    wrapped = EngineReviewModel(engine, max_new_tokens=40)
    try:
        first, over, second = wrapped.answer_many([short.request, padded, short.request], "constrained")
    finally:
        wrapped.close()
    assert over.error is not None and "exceeds max_seq_len=1024" in over.error and over.output is None
    for answer in (first, second):
        assert answer.error is None and answer.output is not None
