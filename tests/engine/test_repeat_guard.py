"""The repetition guard: the rule itself, and the engine and transformers decoding with it alike."""

from __future__ import annotations

import pytest
import torch

from reviewers.backends.transformers_backend import repeat_guard_processor
from reviewers.engine.engine import Engine, GenerationRequest
from reviewers.repeat_guard import RepeatGuard, pick_unbanned, quote_free
from tests.engine.conftest import tiny_model

QUOTE = 0  # token 0 holds a double quote in these unit tests; every other token is prose


def _guard(n: int) -> RepeatGuard:
    return RepeatGuard(n, lambda t: t != QUOTE)


def test_the_token_that_would_repeat_a_prose_ngram_is_banned() -> None:
    guard = _guard(3)
    guard.extend([5, 6, 7, 5])
    assert guard.banned() == frozenset()  # (7, 5) has not been followed yet
    guard.push(6)
    assert guard.banned() == {7}  # 5 6 7 again would repeat the 3-gram
    guard.push(8)
    assert guard.banned() == frozenset()


def test_ngrams_holding_a_quote_token_are_json_syntax_and_may_repeat() -> None:
    guard = _guard(3)
    guard.extend([QUOTE, 6, 7, QUOTE, 6])
    assert 7 not in guard.banned()  # `"` 6 7 is structure (a key or a string's start), not prose
    guard.extend([7, 9, 6, 7])
    assert 9 in guard.banned()  # 6 7 9 is all prose and already written


def test_pick_unbanned_keeps_the_grammar_order_and_gives_up_when_all_are_banned() -> None:
    assert pick_unbanned([4, 5, 6], {4}) == 5
    assert pick_unbanned([4], {4}) is None
    assert quote_free(b" the") and not quote_free(b'":"')
    with pytest.raises(ValueError):
        RepeatGuard(1, lambda t: True)


def _repeats(tokens: list[int], n: int, prose) -> bool:
    seen = set()
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i:i + n])
        if all(prose(t) for t in gram):
            if gram in seen:
                return True
            seen.add(gram)
    return False


@pytest.fixture(scope="module")
def looping_model(tiny_tokenizer):
    return tiny_model("llama", vocab=len(tiny_tokenizer), seed=3)


def test_the_engine_decodes_without_repeating_a_prose_ngram_where_plain_greedy_loops(looping_model, tiny_tokenizer,
                                                                                     real_diffs):
    engine = Engine.from_model(looping_model, tiny_tokenizer, max_batch=4, max_seq_len=256)
    prose = engine._is_prose
    try:
        prompt = tiny_tokenizer.encode(real_diffs[0].read_text(errors="replace"))[:40]
        plain, guarded = engine.generate([
            GenerationRequest(prompt=prompt, max_new_tokens=96, constrained=False, ignore_eos=True),
            GenerationRequest(prompt=prompt, max_new_tokens=96, constrained=False, ignore_eos=True, repeat_ngram=4),
        ])
    finally:
        engine.close()
    assert _repeats(plain.token_ids, 4, prose)  # a random model loops: the guard has work to do
    assert not _repeats(guarded.token_ids, 4, prose)
    assert len(guarded.token_ids) == 96


def test_engine_and_transformers_pick_the_same_tokens_under_the_guard(looping_model, tiny_tokenizer, real_diffs):
    prompt = tiny_tokenizer.encode(real_diffs[1].read_text(errors="replace"))[:30]
    engine = Engine.from_model(looping_model, tiny_tokenizer, max_batch=4, max_seq_len=256)
    try:
        [result] = engine.generate([GenerationRequest(prompt=prompt, max_new_tokens=64, constrained=False,
                                                      ignore_eos=True, repeat_ngram=4)])
    finally:
        engine.close()
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = looping_model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=64, min_new_tokens=64,
            do_sample=False, eos_token_id=None, pad_token_id=0,
            logits_processor=[repeat_guard_processor(tiny_tokenizer, len(prompt), 4)],
        )
    assert out[0, len(prompt):].tolist() == result.token_ids


def test_pipelined_masked_steps_pick_what_step_by_step_picks_under_the_guard_and_the_grammar(
    looping_model, tiny_tokenizer, real_diffs
):
    """The pipelined path (the CUDA default) fills masks while the step runs and re-picks on the device;
    guarded rows, constrained rows and rows with both must get the step-by-step tokens, and the guard must
    have changed something (else the test proves nothing)."""
    prompts = [tiny_tokenizer.encode(d.read_text(errors="replace"))[:40] for d in real_diffs[:3]]
    requests = [
        GenerationRequest(prompt=prompts[0], max_new_tokens=80, constrained=False, ignore_eos=True, repeat_ngram=4),
        GenerationRequest(prompt=prompts[1], max_new_tokens=90, constrained=True, repeat_ngram=3),
        GenerationRequest(prompt=prompts[2], max_new_tokens=70, constrained=True),
        GenerationRequest(prompt=prompts[0], max_new_tokens=80, constrained=False, ignore_eos=True),
    ]
    answers = []
    for pipeline in (False, True):
        engine = Engine.from_model(looping_model, tiny_tokenizer, max_batch=3, max_seq_len=256, pipeline=pipeline)
        try:
            answers.append(engine.generate(requests))
        finally:
            engine.close()
    plain, pipelined = answers
    assert [(r.token_ids, r.finish_reason, r.forced_close) for r in pipelined] == [
        (r.token_ids, r.finish_reason, r.forced_close) for r in plain
    ]
    assert pipelined[0].token_ids != pipelined[3].token_ids  # the guard banned something
