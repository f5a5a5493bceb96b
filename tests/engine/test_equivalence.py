"""The engine computes what PEFT computes: same greedy tokens and logits for every row of a mixed batch."""

from __future__ import annotations

import pytest
import torch

from reviewers.engine.engine import Engine, GenerationRequest
from reviewers.engine.kv_cache import KVCache
from reviewers.engine.lora import (
    build_bank,
    load_peft_adapter,
    lora_delta_gathered,
    lora_delta_grouped,
    rows_for,
)
from reviewers.engine.model import LoraBatch, decode, prefill

# one row per adapter, a base-only row, and a repeated adapter; prompt lengths straddle the window (6)
ROWS = [("python", 9), (None, 14), ("sql", 5), ("docs", 11), ("sql", 17)]
NEW_TOKENS = 8


def _prompts(tokenizer, real_diffs) -> list[list[int]]:
    return [tokenizer.encode(real_diffs[i].read_text(errors="replace"))[:n] for i, (_a, n) in enumerate(ROWS)]


def _peft_model(model, paths):
    import copy

    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(copy.deepcopy(model), paths["python"], adapter_name="python")
    for name in ("sql", "docs"):
        peft_model.load_adapter(paths[name], adapter_name=name)
    return peft_model.eval()


def _peft_greedy(peft_model, prompt: list[int], adapter: str | None) -> list[int]:
    ids = torch.tensor([prompt])
    kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "max_new_tokens": NEW_TOKENS,
                  "min_new_tokens": NEW_TOKENS, "do_sample": False, "eos_token_id": None, "pad_token_id": 0}
    with torch.no_grad():
        if adapter is None:
            with peft_model.disable_adapter():
                out = peft_model.generate(**kwargs)
        else:
            peft_model.set_adapter(adapter)
            out = peft_model.generate(**kwargs)
    return out[0, len(prompt):].tolist()


def test_greedy_tokens_equal_peft_set_adapter_for_every_row_of_a_mixed_batch(
    base_and_adapters, tiny_tokenizer, real_diffs
):
    model, paths = base_and_adapters
    engine = Engine.from_model(model, tiny_tokenizer, adapters=paths, max_batch=8, max_seq_len=64)
    try:
        prompts = _prompts(tiny_tokenizer, real_diffs)
        results = engine.generate([
            GenerationRequest(prompt=p, adapter=a, max_new_tokens=NEW_TOKENS, constrained=False, ignore_eos=True)
            for p, (a, _n) in zip(prompts, ROWS)
        ])
    finally:
        engine.close()
    peft_model = _peft_model(model, paths)
    for prompt, (adapter, _n), result in zip(prompts, ROWS, results):
        assert result.token_ids == _peft_greedy(peft_model, prompt, adapter), f"row with adapter {adapter}"
        assert result.finish_reason == "length" and result.prompt_tokens == len(prompt)


def test_prefill_and_decode_logits_agree_with_peft_in_float32(base_and_adapters, tiny_tokenizer, real_diffs):
    model, paths = base_and_adapters
    engine = Engine.from_model(model, tiny_tokenizer, adapters=paths, max_batch=8, max_seq_len=64)
    engine.close()
    peft_model = _peft_model(model, paths)
    prompts = _prompts(tiny_tokenizer, real_diffs)
    names = [a for a, _n in ROWS]
    longest = max(map(len, prompts))
    tokens = torch.tensor([p + [0] * (longest - len(p)) for p in prompts])
    lengths = torch.tensor([len(p) for p in prompts])
    bank = engine._bank
    slots = torch.tensor([bank.slots[a] if a else bank.zero_slot for a in names])
    # sliding layers (window 6) keep a ring of 6 entries: the prompts (5 to 17 tokens) wrap it
    cache = KVCache.allocate(engine.decoder.cache_lengths(), len(ROWS), engine.decoder.n_kv_heads,
                             engine.decoder.head_dim, torch.float32, "cpu")
    lora = LoraBatch(bank, rows_for(bank, slots, torch.float32))
    with torch.no_grad():
        ours_prefill = prefill(engine.decoder, cache, tokens, lengths, torch.arange(len(ROWS)), lora)
        next_tokens = ours_prefill.argmax(-1)
        ours_decode = decode(engine.decoder, cache, next_tokens, lengths, lora)
        for i, (prompt, adapter) in enumerate(zip(prompts, names)):
            ids = torch.tensor([prompt + [int(next_tokens[i])]])
            ref = peft_model(input_ids=ids, adapter_names=[adapter or "__base__"]).logits[0]
            torch.testing.assert_close(ours_prefill[i], ref[-2], rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(ours_decode[i], ref[-1], rtol=1e-4, atol=1e-4)


def test_grouped_and_gathered_lora_kernels_compute_the_same_delta(base_and_adapters):
    model, paths = base_and_adapters
    adapters = [load_peft_adapter(p, n) for n, p in paths.items()]
    engine_like = Engine.from_model(model, vocab=_dummy_vocab(model.config.vocab_size), max_seq_len=32)
    engine_like.close()
    bank = build_bank(adapters, engine_like.decoder.module_shapes(), len(engine_like.decoder.layers),
                      torch.float32, "cpu")
    slot = torch.tensor([0, bank.zero_slot, 1, 2, 1])
    torch.manual_seed(0)
    for stack in bank.stacks.values():
        x = torch.randn(len(slot), 3, stack.a.shape[1])
        grouped = lora_delta_grouped(x, stack, rows_for(bank, slot, torch.float32).keep)
        gathered = lora_delta_gathered(x, stack, slot)
        torch.testing.assert_close(grouped, gathered, rtol=1e-5, atol=1e-6)
        assert grouped[1].abs().max() == 0, "the base-only row gets no LoRA term"


def _dummy_vocab(size: int):
    from reviewers.engine.constraint import Vocabulary

    return Vocabulary(token_bytes=[bytes([i % 256]) for i in range(size)], stop_ids=(0,), size=size)


def test_gathered_kernel_engine_gives_the_same_tokens(base_and_adapters, tiny_tokenizer, real_diffs):
    model, paths = base_and_adapters
    prompts = _prompts(tiny_tokenizer, real_diffs)
    outputs = []
    for kernel in ("grouped", "gathered"):
        engine = Engine.from_model(model, tiny_tokenizer, adapters=paths, max_batch=8, max_seq_len=64,
                                   lora_kernel=kernel)
        try:
            outputs.append([r.token_ids for r in engine.generate([
                GenerationRequest(prompt=p, adapter=a, max_new_tokens=4, constrained=False, ignore_eos=True)
                for p, (a, _n) in zip(prompts, ROWS)
            ])])
        finally:
            engine.close()
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("max_batch", [2])
def test_continuous_batching_gives_each_request_what_it_gets_alone(
    base_and_adapters, tiny_tokenizer, real_diffs, max_batch
):
    """More requests than slots, different lengths: rows join and leave; results do not depend on it."""
    model, paths = base_and_adapters
    prompts = _prompts(tiny_tokenizer, real_diffs)
    budgets = [3, 7, 2, 5, 4]
    requests = [
        GenerationRequest(prompt=p, adapter=a, max_new_tokens=b, constrained=False, ignore_eos=True)
        for p, (a, _n), b in zip(prompts, ROWS, budgets)
    ]
    engine = Engine.from_model(model, tiny_tokenizer, adapters=paths, max_batch=max_batch, max_seq_len=64)
    try:
        together = engine.generate(requests)
        alone = [engine.generate([r])[0] for r in requests]
    finally:
        engine.close()
    assert [len(r.token_ids) for r in together] == budgets
    assert [r.token_ids for r in together] == [r.token_ids for r in alone]


def test_matmul_decode_attention_equals_sdpa():
    from reviewers.engine.model import matmul_decode_attention, sdpa_decode_attention

    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 16), torch.randn(3, 2, 10, 16), torch.randn(3, 2, 10, 16)
    visible = torch.rand(3, 1, 1, 10) > 0.4
    visible[:, :, :, 0] = True
    torch.testing.assert_close(matmul_decode_attention(q, k, v, visible, 0.25),
                               sdpa_decode_attention(q, k, v, visible, 0.25), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_compiled_element_wise_ops_give_the_same_decode_logits(base_and_adapters, tiny_tokenizer):
    """What the GPU path compiles (model.Pointwise.compiled) computes what the eager functions do."""
    from reviewers.engine.model import Pointwise

    model, paths = base_and_adapters
    engine = Engine.from_model(model, tiny_tokenizer, adapters=paths, max_batch=4, max_seq_len=32)
    engine.close()
    bank = engine._bank
    lora = LoraBatch(bank, rows_for(bank, torch.tensor([0, bank.zero_slot, 1, 2]), torch.float32))
    tokens, positions = torch.tensor([3, 4, 5, 6]), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        eager = decode(engine.decoder, engine.cache, tokens, positions, lora)
        compiled = decode(engine.decoder, engine.cache, tokens, positions, lora, Pointwise.compiled())
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_prefill_compiled_for_any_shape_gives_the_same_logits(base_and_adapters, tiny_tokenizer):
    """Prefill's compiled functions (any number of token rows: every batch has its own prompt length)
    match eager, for two lengths through the same compiled functions, one past the sliding window."""
    from torch._dynamo.utils import counters

    from reviewers.engine.model import Pointwise

    model, paths = base_and_adapters
    engine = Engine.from_model(model, tiny_tokenizer, adapters=paths, max_batch=3, max_seq_len=32)
    engine.close()
    bank, ops = engine._bank, Pointwise.compiled_rows()
    lora = LoraBatch(bank, rows_for(bank, torch.tensor([0, bank.zero_slot, 2]), torch.float32))
    slots = torch.arange(3)
    graphs_before = counters["stats"]["unique_graphs"]
    for steps in (5, 13):
        tokens = torch.randint(3, 200, (3, steps), generator=torch.Generator().manual_seed(steps))
        lengths = torch.tensor([steps, steps - 2, steps - 1])
        with torch.no_grad():
            eager = prefill(engine.decoder, engine.cache, tokens, lengths, slots, lora)
            compiled = prefill(engine.decoder, engine.cache, tokens, lengths, slots, lora, ops)
        torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)
    # one compiled graph per function, not one per prompt length (a recompile costs seconds)
    assert counters["stats"]["unique_graphs"] - graphs_before == 3
