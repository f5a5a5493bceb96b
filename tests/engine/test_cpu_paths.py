"""The CPU decode and prefill paths that avoid copies and padding compute what the plain ones compute."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reviewers.engine.engine import Engine
from reviewers.engine.kv_cache import KVCache
from reviewers.engine.lora import rows_for
from reviewers.engine.model import LoraBatch, _slot_runs, _windowed_attention, decode, prefill


def test_slot_runs_group_consecutive_cache_rows():
    assert _slot_runs([0, 1, 2, 3]) == [(0, 4, 0)]
    assert _slot_runs([0, 2, 3, 7]) == [(0, 1, 0), (1, 3, 2), (3, 4, 7)]
    assert _slot_runs([5, 4]) == [(0, 1, 5), (1, 2, 4)]
    assert _slot_runs([]) == []


def test_windowed_attention_equals_one_masked_square():
    """Blocks of queries against only the keys they see give the full masked attention, for lengths
    under, at and past a multiple of the window."""
    torch.manual_seed(0)
    window, scale = 6, 0.25
    for steps in (5, 6, 12, 17):
        q, k, v = torch.randn(2, 4, steps, 16), torch.randn(2, 2, steps, 16), torch.randn(2, 2, steps, 16)
        pos = torch.arange(steps)
        visible = (pos[None, :] <= pos[:, None]) & (pos[:, None] - pos[None, :] < window)
        expected = F.scaled_dot_product_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1),
                                                  attn_mask=visible, scale=scale)
        torch.testing.assert_close(_windowed_attention(q, k, v, window, scale), expected, rtol=1e-5, atol=1e-5)


def test_decode_over_scattered_slots_equals_each_row_alone(base_and_adapters, tiny_tokenizer, real_diffs):
    """Rows in cache slots with gaps and out of order (runs of consecutive slots read as views) get the
    logits each gets when it steps alone; one prompt wraps the sliding window's ring."""
    model, paths = base_and_adapters
    engine = Engine.from_model(model, tiny_tokenizer, adapters=paths, max_batch=6, max_seq_len=64)
    engine.close()
    dec, bank = engine.decoder, engine._bank
    prompts = [tiny_tokenizer.encode(real_diffs[i].read_text(errors="replace"))[:n] for i, n in enumerate((9, 14, 5, 11))]
    slots = [4, 0, 1, 3]  # runs: [4], [0, 1], [3]
    adapters = [bank.slots["python"], bank.zero_slot, bank.slots["sql"], bank.slots["docs"]]
    cache = KVCache.allocate(dec.cache_lengths(), 6, dec.n_kv_heads, dec.head_dim, torch.float32, "cpu")
    with torch.no_grad():
        firsts = []
        for prompt, slot, adapter in zip(prompts, slots, adapters):
            lora = LoraBatch(bank, rows_for(bank, torch.tensor([adapter]), torch.float32))
            logits = prefill(dec, cache, torch.tensor([prompt]), torch.tensor([len(prompt)]), torch.tensor([slot]), lora)
            firsts.append(int(logits.argmax(-1)))
        positions = torch.tensor([len(p) for p in prompts])
        lora = LoraBatch(bank, rows_for(bank, torch.tensor(adapters), torch.float32))
        together = decode(dec, cache, torch.tensor(firsts), positions, lora, slots=torch.tensor(slots),
                          kv_len=int(positions.max()) + 1)
        for i, (slot, adapter) in enumerate(zip(slots, adapters)):
            lora = LoraBatch(bank, rows_for(bank, torch.tensor([adapter]), torch.float32))
            alone = decode(dec, cache, torch.tensor([firsts[i]]), positions[i : i + 1], lora,
                           slots=torch.tensor([slot]), kv_len=int(positions[i]) + 1)
            torch.testing.assert_close(together[i], alone[0], rtol=1e-5, atol=1e-5)
