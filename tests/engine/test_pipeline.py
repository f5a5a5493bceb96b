"""Pipelined decode (the default on CUDA): step k + 1 is launched before step k's tokens are read, and
the step feeds its own picks forward. Whatever joins, leaves, stops or switches the pipeline off, every
request gets exactly the tokens it gets when each step is read before the next (the CPU default)."""

from __future__ import annotations

import pytest

from reviewers.engine.engine import Engine, GenerationRequest
from tests.engine.test_equivalence import ROWS, _prompts


def _both(model, tokenizer, paths, requests, **options) -> tuple[list, list]:
    out = []
    for pipeline in (False, True):
        engine = Engine.from_model(model, tokenizer, adapters=paths, pipeline=pipeline, **options)
        try:
            out.append(engine.generate(requests))
        finally:
            engine.close()
    return out[0], out[1]


def test_pipelined_rows_join_and_leave_with_the_same_tokens(base_and_adapters, tiny_tokenizer, real_diffs):
    """Five mixed-adapter requests through two slots: rows leave one step late and new ones join."""
    model, paths = base_and_adapters
    budgets = [3, 7, 1, 5, 4]
    requests = [
        GenerationRequest(prompt=p, adapter=a, max_new_tokens=b, constrained=False, ignore_eos=True)
        for p, (a, _n), b in zip(_prompts(tiny_tokenizer, real_diffs), ROWS, budgets)
    ]
    plain, pipelined = _both(model, tiny_tokenizer, paths, requests, max_batch=2, max_seq_len=64)
    assert [len(r.token_ids) for r in pipelined] == budgets
    assert [r.token_ids for r in pipelined] == [r.token_ids for r in plain]


@pytest.mark.parametrize("arch", ["gemma3"], indirect=True)
def test_stop_rules_and_constrained_rows_give_the_same_answers(base_and_adapters, tiny_tokenizer, real_diffs):
    """Unconstrained rows that stop at EOS or at the end of a JSON object, mixed with constrained rows
    (which switch pipelining off while they run): same text and finish reason as step by step."""
    model, paths = base_and_adapters
    prompts = _prompts(tiny_tokenizer, real_diffs)
    requests = [
        GenerationRequest(prompt=p, adapter=a, max_new_tokens=90 if i % 2 else 12, constrained=bool(i % 2))
        for i, (p, (a, _n)) in enumerate(zip(prompts, ROWS))
    ]
    plain, pipelined = _both(model, tiny_tokenizer, paths, requests, max_batch=3, max_seq_len=256)
    assert [(r.text, r.finish_reason, r.forced_close) for r in pipelined] == [
        (r.text, r.finish_reason, r.forced_close) for r in plain
    ]


def test_adapter_slots_that_move_under_a_running_row_are_rewritten(base_and_adapters, tiny_tokenizer, real_diffs):
    """Removing an adapter renumbers the others' slots while a row using one of them is mid-answer;
    the device-side inputs must follow, or the rest of its answer uses another adapter."""
    import time

    model, paths = base_and_adapters
    prompt = _prompts(tiny_tokenizer, real_diffs)[4]
    request = GenerationRequest(prompt=prompt, adapter="docs", max_new_tokens=60, constrained=False, ignore_eos=True)
    [reference] = _both(model, tiny_tokenizer, paths, [request], max_batch=2, max_seq_len=128)[0]

    engine = Engine.from_model(model, tiny_tokenizer, adapters=paths, pipeline=True, max_batch=2, max_seq_len=128)
    try:
        future = engine.submit(request)
        while not any(row.generated and len(row.generated) >= 3 for row in engine._scheduler.running()):
            time.sleep(0.001)
        engine.remove_adapter("python")  # docs moves from slot 2 to slot 1
        assert not future.done(), "the row finished before the adapter was removed: the test proved nothing"
        result = future.result(timeout=60)
    finally:
        engine.close()
    assert result.token_ids == reference.token_ids
