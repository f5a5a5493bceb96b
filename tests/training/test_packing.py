"""Padding-free packing computes exactly what padded batches compute, only on answer tokens."""

from __future__ import annotations

import pytest
import torch

from training.attention import register_varlen_attention, varlen_causal_attention
from training.loss import AnswerLossModel, answer_cross_entropy, reference_cross_entropy
from training.packing import (
    IGNORE_INDEX,
    TokenizationError,
    TokenizedExample,
    answer_only_targets,
    collate_packed,
    collate_padded,
    decision_positions,
    epoch_order,
    length_grouped_batches,
    pack_batches,
    tokenize_chat,
)
from training.tiny import tiny_llama, tiny_tokenizer


def test_targets_predict_only_answer_tokens() -> None:
    assert answer_only_targets([10, 11, 12, 13, 14], prompt_length=3) == (-100, -100, 13, 14, -100)


def test_chat_tokenization_masks_the_prompt_with_the_tokenizers_own_template() -> None:
    tok = tiny_tokenizer()
    messages = [{"role": "system", "content": "Review."}, {"role": "user", "content": "+x = 1"},
                {"role": "assistant", "content": '{"verdict": "approve"}'}]
    ex = tokenize_chat("python/a", messages, tok)
    prompt_len = len(tok(tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"])
    kept = [t for t in ex.targets if t != IGNORE_INDEX]
    assert kept == list(ex.input_ids[prompt_len:])
    assert tok.decode(kept) == '{"verdict": "approve"}<|im_end|>\n'
    with pytest.raises(TokenizationError, match="last message must be the assistant"):
        tokenize_chat("python/b", messages[:-1], tok)


@pytest.mark.parametrize("verdict", ["approve", "revise", "block"])
def test_decision_positions_are_the_targets_that_spell_the_verdict(verdict: str) -> None:
    """The weighted loss must land on the verdict's tokens: their targets decode to the verdict, in both
    collations, and nothing is marked for an answer that does not start like a canonical one."""
    tok = tiny_tokenizer()
    answer = f'{{"verdict":"{verdict}","findings":[],"missing_checks":[],"suggested_fix":""}}'
    messages = [{"role": "system", "content": "Review."}, {"role": "user", "content": "+x = 1"},
                {"role": "assistant", "content": answer}]
    ex = tokenize_chat("python/a", messages, tok, mark_decision=True)
    assert ex.decision_positions and tokenize_chat("python/a", messages, tok).decision_positions == ()
    spelled = tok.decode([ex.targets[t] for t in ex.decision_positions])
    assert verdict in spelled and len(spelled) < len(verdict) + 4  # the verdict and at most its quotes
    assert all(ex.targets[t] != IGNORE_INDEX for t in ex.decision_positions)
    other = TokenizedExample("b", ex.input_ids[:9], answer_only_targets(ex.input_ids[:9], 4))
    packed, padded = collate_packed([other, ex]), collate_padded([other, ex], pad_id=0)
    assert packed.decision_mask is not None and padded.decision_mask is not None
    assert tok.decode(packed.targets[packed.decision_mask].tolist()) == spelled
    assert tok.decode(padded.targets[padded.decision_mask].tolist()) == spelled
    assert collate_packed([other]).decision_mask is None
    assert decision_positions(ex.input_ids, 3, '{"findings":[]}', tok) == ()


def test_weighted_answer_loss_is_the_weighted_mean_and_its_gradient() -> None:
    g = torch.Generator().manual_seed(2)
    hidden = torch.randn(1, 30, 16, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(97, 16, dtype=torch.float64, generator=g, requires_grad=True)
    targets = torch.randint(0, 97, (1, 30), generator=g)
    targets[0, :8] = IGNORE_INDEX
    weights = torch.ones(1, 30, dtype=torch.float64)
    weights[0, 10] = weights[0, 11] = 20.0
    chunked = answer_cross_entropy(hidden, weight, targets, chunk_bytes=4 * 97 * 16, position_weights=weights)
    chunked.backward()
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    logits = hidden @ weight.T
    per_row = torch.nn.functional.cross_entropy(logits[0], targets[0], ignore_index=IGNORE_INDEX, reduction="none")
    keep = targets[0] != IGNORE_INDEX
    reference = (per_row * weights[0])[keep].sum() / weights[0][keep].sum()
    reference.backward()
    assert chunked.item() == pytest.approx(reference.item(), rel=1e-10)
    assert torch.allclose(grads[0], hidden.grad) and torch.allclose(grads[1], weight.grad)
    plain = answer_cross_entropy(hidden.detach(), weight.detach(), targets)
    assert chunked.item() != pytest.approx(plain.item(), rel=1e-3)  # the weights changed the loss


def test_data_order_and_packing_are_deterministic_and_within_budget() -> None:
    assert epoch_order(50, seed=1, epoch=0) == epoch_order(50, seed=1, epoch=0) != epoch_order(50, seed=1, epoch=1)
    lengths = [30, 50, 20, 70, 10, 90, 40]
    order = epoch_order(len(lengths), 0, 0)
    batches = pack_batches(lengths, order, tokens_per_batch=100)
    assert [i for b in batches for i in b] == order
    assert all(sum(lengths[i] for i in b) <= 100 for b in batches)
    grouped = length_grouped_batches(lengths, order, tokens_per_batch=100)
    assert sorted(i for b in grouped for i in b) == sorted(order)
    assert all(max(lengths[i] for i in b) * len(b) <= 100 for b in grouped)


def _examples(vocab: int) -> list[TokenizedExample]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i, n in enumerate((30, 17, 41, 5)):
        ids = torch.randint(0, vocab, (n,), generator=g).tolist()
        out.append(TokenizedExample(str(i), tuple(ids), answer_only_targets(ids, n // 2)))
    return out


@pytest.mark.parametrize("attn", ["calora_varlen", "sdpa"])
def test_packed_loss_equals_padded_loss_and_per_sequence_reference(attn: str) -> None:
    register_varlen_attention()
    model = tiny_llama(vocab_size=300, hidden=64).double()
    model.config._attn_implementation = attn
    loss_model = AnswerLossModel(model)
    examples = _examples(300)
    packed, padded = collate_packed(examples), collate_padded(examples, pad_id=0)
    assert packed.input_ids.shape == (1, 93) and padded.input_ids.shape == (4, 41)
    lp = loss_model(packed.input_ids, packed.position_ids, packed.targets, None, packed.cu_seqlens, packed.max_seqlen)
    lq = loss_model(padded.input_ids, padded.position_ids, padded.targets, padded.attention_mask)
    total, count = 0.0, 0
    for ex in examples:  # each sequence alone through plain transformers
        logits = model(torch.tensor([ex.input_ids])).logits[0]
        t = torch.tensor(ex.targets)
        keep = t != IGNORE_INDEX
        total += torch.nn.functional.cross_entropy(logits[keep], t[keep], reduction="sum").item()
        count += int(keep.sum())
    assert lp.item() == pytest.approx(total / count, rel=1e-6)
    assert lq.item() == pytest.approx(total / count, rel=1e-6)


@pytest.mark.parametrize("softcap", [None, 30.0])
def test_chunked_cross_entropy_matches_full_logits_in_value_and_gradient(softcap: float | None) -> None:
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(2, 40, 16, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(97, 16, dtype=torch.float64, generator=g, requires_grad=True)
    targets = torch.randint(0, 97, (2, 40), generator=g)
    targets[:, :9] = IGNORE_INDEX
    ours = answer_cross_entropy(hidden, weight, targets, softcap=softcap, chunk_bytes=4 * 97 * 7)  # 7-row chunks
    ref = reference_cross_entropy(hidden, weight, targets, softcap=softcap)
    g_ours = torch.autograd.grad(ours, (hidden, weight))
    g_ref = torch.autograd.grad(ref, (hidden, weight))
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_batch_without_answer_tokens_is_an_error() -> None:
    with pytest.raises(ValueError, match="no answer tokens"):
        answer_cross_entropy(torch.randn(1, 3, 4), torch.randn(5, 4), torch.full((1, 3), IGNORE_INDEX))


def test_varlen_attention_respects_sequence_bounds_and_sliding_window() -> None:
    g = torch.Generator().manual_seed(2)
    lengths = [6, 11, 3]
    q = torch.randn(20, 4, 8, dtype=torch.float64, generator=g)
    k = torch.randn(20, 2, 8, dtype=torch.float64, generator=g)
    v = torch.randn(20, 2, 8, dtype=torch.float64, generator=g)
    cu = torch.tensor([0, 6, 17, 20], dtype=torch.int32)
    out = varlen_causal_attention(q, k, v, cu, max(lengths), scale=None, sliding_window=4)
    start = 0
    for n in lengths:  # reference: explicit masked softmax per sequence
        qs, ks, vs = q[start:start + n], k[start:start + n].repeat_interleave(2, 1), v[start:start + n].repeat_interleave(2, 1)
        scores = torch.einsum("qhd,khd->hqk", qs, ks) / 8 ** 0.5
        i = torch.arange(n)
        allowed = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - 4)
        ref = torch.einsum("hqk,khd->qhd", scores.masked_fill(~allowed, float("-inf")).softmax(-1), vs)
        torch.testing.assert_close(out[start:start + n], ref)
        start += n


@pytest.mark.slow
@pytest.mark.parametrize("softcap", [None, 30.0])
def test_compiled_loss_chunk_matches_the_eager_one(softcap: float | None) -> None:
    """The compiled chunk CUDA trains with (`fused=True`) computes the eager chunk's loss and gradients."""
    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(1, 50, 16, generator=g, requires_grad=True)
    weight = torch.randn(97, 16, generator=g)
    targets = torch.randint(0, 97, (1, 50), generator=g)
    targets[0, :6] = IGNORE_INDEX
    weights = 1.0 + 19.0 * (torch.rand(1, 50, generator=g) > 0.8)
    results = []
    for fused in (False, True):
        loss = answer_cross_entropy(hidden, weight, targets, softcap=softcap, chunk_bytes=4 * 97 * 16,
                                    position_weights=weights, fused=fused)  # 16-row chunks: a short last one
        (grad,) = torch.autograd.grad(loss, hidden)
        results.append((loss, grad))
    (eager_loss, eager_grad), (fused_loss, fused_grad) = results
    assert fused_loss.item() == pytest.approx(eager_loss.item(), rel=1e-5)
    torch.testing.assert_close(fused_grad, eager_grad, rtol=1e-4, atol=1e-6)
    assert eager_grad.abs().sum() > 0
