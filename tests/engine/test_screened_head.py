"""The int8-screened LM head picks what the full head picks: its bounds hold, and every token that can
be the greedy pick (under the grammar's mask and the repeat guard's bans) gets its exact logit."""

from __future__ import annotations

import pytest
import torch

from reviewers.engine.model import Decoder, _logits
from reviewers.engine.screened_head import SMALL_ALLOWED, ScreenedHead

VOCAB, HIDDEN = 20000, 64  # over SMALL_ALLOWED, so unconstrained rows go through the screen


def _decoder(dtype: torch.dtype, softcap: float | None = None) -> Decoder:
    torch.manual_seed(0)
    head = (torch.randn(VOCAB, HIDDEN) * torch.rand(VOCAB, 1)).to(dtype)  # rows of very different scales
    return Decoder(
        arch="gemma3", n_heads=1, n_kv_heads=1, head_dim=HIDDEN, hidden=HIDDEN, intermediate=HIDDEN, vocab=VOCAB,
        eps=1e-6, attn_scale=1.0, embed_scale=None, final_softcap=softcap, activation="gelu_tanh", embed=head,
        lm_head=head, final_norm=torch.ones(HIDDEN), rope_cos=torch.ones(1, 4, HIDDEN),
        rope_sin=torch.zeros(1, 4, HIDDEN),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bounds_hold_for_every_token(dtype):
    dec = _decoder(dtype)
    screen = ScreenedHead.of(dec)
    normed = (torch.randn(4, HIDDEN) * 3).to(dtype)
    approx = screen.approximate(normed)
    exact = _logits(dec, normed).float()
    assert ((exact - approx).abs() <= screen.bounds(normed, approx)).all()


@pytest.mark.parametrize("dtype,softcap", [(torch.float32, None), (torch.bfloat16, None), (torch.float32, 30.0)])
def test_screened_picks_equal_the_full_heads(dtype, softcap):
    """Unconstrained rows, masked rows, a row whose best tokens are banned, a row with only banned
    tokens allowed, and a small allowed set: each pick and ranked fallback is the full head's."""
    dec = _decoder(dtype, softcap)
    screen = ScreenedHead.of(dec)
    torch.manual_seed(1)
    normed = (torch.randn(5, HIDDEN) * 3).to(dtype)
    full = _logits(dec, normed).float()
    best = full.argsort(dim=-1, descending=True)
    mask = torch.rand(VOCAB) > 0.5
    only_banned = torch.zeros(VOCAB, dtype=torch.bool)
    only_banned[best[3, :2]] = True
    small = torch.zeros(VOCAB, dtype=torch.bool)
    small[torch.randperm(VOCAB)[:SMALL_ALLOWED // 2]] = True
    allowed = [None, mask, None, only_banned, small]
    banned = [(), (), best[2, :3].tolist(), best[3, :2].tolist(), ()]
    out = screen.logits(dec, normed, allowed, banned)
    for b in range(5):
        reference = full[b] if allowed[b] is None else full[b].masked_fill(~allowed[b], float("-inf"))
        assert int(out[b].argmax()) == int(reference.argmax())
        kept = out[b] > float("-inf")
        unbanned = reference.clone()
        unbanned[torch.tensor(banned[b], dtype=torch.long)] = float("-inf")
        # the repeat guard walks down the ranking to the best unbanned token: all of it must be exact
        ranked_to_fallback = (reference > float("-inf")) & (reference >= unbanned.max())
        assert kept[ranked_to_fallback].all()
        torch.testing.assert_close(out[b][kept], reference[kept], rtol=0, atol=1e-2 if dtype == torch.bfloat16 else 1e-4)
        if allowed[b] is None and not banned[b]:
            assert kept.sum() < VOCAB // 10  # the screen does screen


def test_every_allowed_token_is_kept_when_all_are_banned():
    dec = _decoder(torch.float32)
    normed = torch.randn(1, HIDDEN)
    allowed = torch.zeros(VOCAB, dtype=torch.bool)
    allowed[:SMALL_ALLOWED + 10] = True  # large enough to be screened
    out = ScreenedHead.of(dec).logits(dec, normed, [allowed], [list(range(SMALL_ALLOWED + 10))])
    assert torch.equal(out[0] > float("-inf"), allowed)
