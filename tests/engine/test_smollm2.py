"""SmolLM2-135M-Instruct (the real GGUF base) on CPU: constrained answers are always schema-valid."""

from __future__ import annotations

import time

import pytest

from reviewers.backends.base import ReviewerFailure
from reviewers.contract import (
    ContractError,
    ReviewerOutput,
    ReviewRequest,
    drop_inverted_ranges,
    parse_review,
)
from reviewers.engine.backend import EngineBackend
from reviewers.engine.engine import Engine, GenerationRequest
from reviewers.prompt import render_messages
from tests.conftest import SMOLLM2_DIR, SMOLLM2_GGUF

pytestmark = pytest.mark.slow


def _requests(real_diffs) -> list[ReviewRequest]:
    """Curated examples when the datasets folder exists, else slices of the real diffs."""
    from pathlib import Path

    datasets = Path(__file__).resolve().parents[2] / "datasets"
    if datasets.is_dir():
        from training.examples import load_examples

        examples = list(load_examples(datasets).values())[:4]
        if examples:
            return [e.request() for e in examples]
    reviewers = ["python", "sql", "typescript", "docker_ci", "testing", "react"]
    return [
        ReviewRequest(reviewer=r, task="Review this change.", diff=d.read_text(errors="replace")[:1500])
        for r, d in zip(reviewers[:4], real_diffs)
    ]


@pytest.fixture(scope="module")
def smollm2():
    engine = Engine.from_pretrained(SMOLLM2_DIR, gguf_file=SMOLLM2_GGUF, max_batch=8, max_seq_len=2048)
    yield engine
    engine.close()


def test_smollm2_constrained_answers_are_all_schema_valid(smollm2, real_diffs, capsys):
    requests = _requests(real_diffs)
    timings = {}
    for constrained in (True, False):
        start = time.perf_counter()
        results = smollm2.generate([
            GenerationRequest(prompt=render_messages(r), max_new_tokens=64, constrained=constrained)
            for r in requests
        ])
        seconds = time.perf_counter() - start
        tokens = sum(len(r.token_ids) for r in results)
        timings[constrained] = (tokens, seconds, results)
    results = timings[True][2]
    for result in results:
        assert isinstance(parse_review(drop_inverted_ranges(result.text)), ReviewerOutput), result.text
    answers = EngineBackend(smollm2, max_new_tokens=64).review(requests[:1])
    assert all(isinstance(a, (ReviewerOutput, ReviewerFailure)) for a in answers)
    with capsys.disabled():
        for constrained, (tokens, seconds, rs) in timings.items():
            valid = sum(_parses(r.text) for r in rs)
            print(f"\nSmolLM2-135M CPU constrained={constrained}: {tokens} tokens in {seconds:.1f}s = "
                  f"{tokens / seconds:.1f} tokens/s; schema-valid {valid}/{len(rs)}; "
                  f"finish {[r.finish_reason for r in rs]}")


def _parses(text: str) -> bool:
    try:
        parse_review(drop_inverted_ranges(text))
        return True
    except ContractError:
        return False
