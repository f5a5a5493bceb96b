"""Constrained decoding: whatever the model wants, the answer parses as `ReviewerOutput` in budget."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from reviewers.backends.base import ReviewerFailure
from reviewers.contract import (
    ReviewerOutput,
    ReviewRequest,
    drop_inverted_ranges,
    parse_review,
    reviewer_output_schema,
)
from reviewers.engine.backend import EngineBackend
from reviewers.engine.closer import JsonPrefix, ObjectEnd, schema_tree
from reviewers.engine.constraint import ReviewerGrammar, Vocabulary, allocate_bitmask, apply_bitmask
from reviewers.engine.engine import Engine, GenerationRequest
from reviewers.routing import REVIEWER_NAMES
from tests.engine.conftest import save_adapters, tiny_model


@pytest.fixture(scope="module")
def grammar(tiny_tokenizer) -> ReviewerGrammar:
    return ReviewerGrammar(Vocabulary.from_tokenizer(tiny_tokenizer))


@pytest.fixture(scope="module")
def gemma_engine(tiny_tokenizer, tmp_path_factory):
    model = tiny_model("gemma3", vocab=len(tiny_tokenizer), seed=3)
    paths = save_adapters(model, tmp_path_factory.mktemp("constraint-adapters"))
    engine = Engine.from_model(model, tiny_tokenizer, adapters=paths, max_batch=8, max_seq_len=2048)
    yield engine
    engine.close()


def _random_walk(grammar: ReviewerGrammar, budget: int, seed: int, bias: float) -> list[int]:
    """Pick random allowed tokens (nudged to short ones when bias > 0) through `ConstrainedRow`."""
    gen = torch.Generator().manual_seed(seed)
    short = torch.tensor([len(b) == 1 for b in grammar.vocab.token_bytes], dtype=torch.float32)
    row = grammar.row(budget)
    bitmask = allocate_bitmask(1, grammar)
    ids: list[int] = []
    while True:
        grammar.fill([row], bitmask, [0])
        logits = torch.randn(1, grammar.vocab.size, generator=gen) + bias * short
        apply_bitmask(logits, bitmask, torch.tensor([0]))
        step = row.advance(int(logits.argmax()))
        if step.outcome == "close":
            return ids + step.ending
        ids.append(int(logits.argmax()))
        if step.outcome == "stop":
            return ids
        assert len(ids) < budget


def _text(grammar: ReviewerGrammar, ids: list[int]) -> str:
    return b"".join(grammar.vocab.token_bytes[t] for t in ids).decode("utf-8")


@pytest.mark.parametrize("seed", range(12))
def test_random_walks_through_the_grammar_always_close_within_budget_and_parse(grammar, seed):
    budget = grammar.min_tokens + 7 * seed
    ids = _random_walk(grammar, budget, seed, bias=3.0 if seed % 2 else 0.0)
    assert len(ids) <= budget
    parse_review(drop_inverted_ranges(_text(grammar, ids)))


def test_the_closing_of_any_prefix_is_accepted_by_the_grammar(grammar):
    import xgrammar as xgr

    ids = _random_walk(grammar, 400, seed=5, bias=3.0)
    text = _text(grammar, ids).encode()
    tree = schema_tree(reviewer_output_schema())
    for cut in range(0, len(text), 3):
        prefix = JsonPrefix(tree)
        prefix.feed(text[:cut])
        completed = text[:cut] + prefix.closing()
        matcher = xgr.GrammarMatcher(grammar._compiled)
        assert matcher.accept_string(completed), completed
        assert matcher.is_completed(), completed
        parse_review(drop_inverted_ranges(completed.decode("utf-8")))


@pytest.mark.parametrize("prefix, ending", [
    ("", '{"verdict":"block","findings":[],"missing_checks":[],"suggested_fix":""}'),
    ('{"verdict":"app', 'rove","findings":[],"missing_checks":[],"suggested_fix":""}'),
    ('{"verdict":"revise","findings":[{"pa', ('th":"x","line":1,"severity":"nit","category":"style",'
                                              '"message":"x"}],"missing_checks":[],"suggested_fix":""}')),
    ('{"verdict":"revise","findings":[{"path":"a.py","line":12', (',"severity":"nit","category":"style",'
     '"message":"x"}],"missing_checks":[],"suggested_fix":""}')),
    ('{"verdict":"revise","findings":[{"path":"a.py","line":2,"end_line":n', ('ull,"severity":"nit",'
     '"category":"style","message":"x"}],"missing_checks":[],"suggested_fix":""}')),
    ('{"verdict":"approve","findings":[],"missing_checks":["a \\u00', '00"],"suggested_fix":""}'),
    ('{"verdict":"approve","findings":[],"missing_checks":[],"suggested_fix":"done"}', ""),
])
def test_closing_is_the_shortest_schema_valid_ending(prefix, ending):
    follower = JsonPrefix(schema_tree(reviewer_output_schema()))
    follower.feed(prefix.encode())
    assert follower.closing().decode() == ending
    parse_review(prefix + ending)


def test_object_end_ignores_braces_inside_strings():
    end = ObjectEnd()
    assert not end.feed(b'Sure: {"a": "} not yet {", "b": [1, {"c": "\\"}"}]')
    assert end.feed(b"} trailing prose")


reviewer_requests = st.builds(
    ReviewRequest,
    reviewer=st.sampled_from([*REVIEWER_NAMES, "python", "sql", "docs", "unknown-reviewer"]),
    task=st.text(max_size=80),
    diff=st.text(min_size=1, max_size=300),
    check_output=st.text(max_size=60),
    instructions=st.text(max_size=40),
)


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.generate])
@given(requests=st.lists(reviewer_requests, min_size=1, max_size=4), extra=st.integers(0, 120))
def test_every_constrained_answer_parses_whatever_the_request(gemma_engine, requests, extra):
    """A random model writes garbage; the grammar and the budget-aware closing make it a valid answer."""
    budget = gemma_engine.grammar().min_tokens + extra
    backend = EngineBackend(gemma_engine, constrained=True, max_new_tokens=budget)
    from reviewers.prompt import render_messages

    results = gemma_engine.generate([
        GenerationRequest(prompt=render_messages(r), adapter=r.reviewer if r.reviewer in gemma_engine.adapters
                          else None, max_new_tokens=budget)
        for r in requests
    ])
    for result in results:
        assert len(result.token_ids) <= budget
        assert isinstance(parse_review(drop_inverted_ranges(result.text)), ReviewerOutput)
    for request, answer in zip(requests, backend.review(requests)):
        if isinstance(answer, ReviewerFailure):
            assert "max_new_tokens" in answer.message and answer.raw, answer
        else:
            assert isinstance(answer, ReviewerOutput)


def test_unconstrained_answers_stop_at_the_end_of_the_top_level_object(gemma_engine, tiny_tokenizer):
    """The stop rule the engine applies to each chosen token, fed a known continuation."""
    from concurrent.futures import Future

    from reviewers.engine.scheduler import Pending, Row

    request = GenerationRequest(prompt=[1], max_new_tokens=50, constrained=False)
    row = Row(Pending(request=request, prompt=[1], future=Future(), constraint=None), slot=0)
    continuation = tiny_tokenizer.encode('Here: {"a": "}", "b": [{}]} and then more prose')
    for token in continuation:
        gemma_engine._advance(row, token)
        if row.finish_reason:
            break
    assert row.finish_reason == "stop"
    assert row.pending.future.result().text.endswith('"b": [{}]}')


def test_submit_is_safe_from_many_threads(gemma_engine):
    from concurrent.futures import ThreadPoolExecutor

    def ask(i: int):
        request = GenerationRequest(prompt=[5 + i, 6, 7], max_new_tokens=3 + i % 3, constrained=False,
                                    ignore_eos=True)
        return gemma_engine.submit(request).result(timeout=120)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(ask, range(12)))
    assert [len(r.token_ids) for r in results] == [3 + i % 3 for i in range(12)]


def test_backend_reports_a_budget_cut_as_a_failure_that_keeps_the_raw_text(gemma_engine):
    request = ReviewRequest(reviewer="python", diff="--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n")
    grammar = gemma_engine.grammar()
    backend = EngineBackend(gemma_engine, max_new_tokens=grammar.min_tokens)
    [answer] = backend.review([request])
    if isinstance(answer, ReviewerFailure):
        assert "max_new_tokens" in answer.message
        parse_review(answer.raw)
    else:
        assert isinstance(answer, ReviewerOutput)


def test_inverted_ranges_are_dropped_not_rejected():
    text = ('{"verdict":"revise","findings":[{"path":"a","line":9,"end_line":3,"severity":"nit",'
            '"category":"style","message":"m"}],"missing_checks":[],"suggested_fix":""}')
    fixed = parse_review(drop_inverted_ranges(text))
    assert fixed.findings[0].end_line is None and fixed.findings[0].line == 9
