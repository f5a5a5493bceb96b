"""The LM head for greedy picks on a CPU: int8 rows screen the vocabulary, exact rows decide.

A CPU decode step of Gemma 3 270M spends most of its time reading the LM head (262,144 x 640 weights,
671 MB in float32) from memory for one or a few rows. Greedy decoding needs only the best token, so:

1. approximate every logit from an int8 copy of the head (one scale per vocabulary row): a quarter of
   the float32 bytes, half of bfloat16's;
2. bound each approximation's error (`ScreenedHead.bounds`): the int8 rounding, the bfloat16 input
   and output of the int8 kernel, its float32 sums, the exact path's own rounding;
3. keep the allowed tokens whose upper bound reaches the best lower bound among the allowed tokens the
   repeat guard does not ban, and compute exactly those logits (as `model._logits` computes them).

Every token that can rank at or above the best unbanned allowed token is kept, so the grammar mask,
the greedy argmax and the repeat guard's fallback pick what they pick from the full logits; every other
logit is -inf. The exact logits are dot products over the kept rows only: they equal the full head's up
to the order of float32 sums, so a tie decided in the last bit may go the other way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from reviewers.engine.model import Decoder, _logits

# rows whose allowed set is at most this many tokens skip the screen: their exact logits cost less
SMALL_ALLOWED = 4096


@dataclass
class ScreenedHead:
    """An int8 copy of a decoder's LM head and what bounds its error."""

    quantized: torch.Tensor  # [vocab, hidden] int8
    scales: torch.Tensor  # [vocab] bfloat16: row v's weights are about scales[v] * quantized[v]
    rounding: torch.Tensor  # [vocab] float32: max_j |W[v, j] - scales[v] * quantized[v, j]|
    magnitude: torch.Tensor  # [vocab] float32: max_j |scales[v] * quantized[v, j]|

    @classmethod
    def of(cls, dec: Decoder, chunk: int = 16384) -> ScreenedHead:
        """Quantize `dec.lm_head` (a chunk of rows at a time: a few float32 copies of the whole head
        would add gigabytes to the peak)."""
        parts = []
        for start in range(0, dec.lm_head.shape[0], chunk):
            weight = dec.lm_head[start : start + chunk].float()
            scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).to(torch.bfloat16)
            step = scales.float()[:, None]
            quantized = torch.round(weight / step).clamp(-127, 127)
            parts.append((quantized.to(torch.int8), scales, (weight - quantized * step).abs().amax(dim=1),
                          quantized.abs().amax(dim=1) * step[:, 0]))
        quantized, scales, rounding, magnitude = (torch.cat(column) for column in zip(*parts))
        return cls(quantized=quantized, scales=scales, rounding=rounding, magnitude=magnitude)

    def approximate(self, normed: torch.Tensor) -> torch.Tensor:
        """[B, hidden] -> [B, vocab] float32 approximate logits (before any soft-capping)."""
        return torch._weight_int8pack_mm(normed.to(torch.bfloat16), self.quantized, self.scales).float()

    def bounds(self, normed: torch.Tensor, approx: torch.Tensor) -> torch.Tensor:
        """[B, vocab]: |exact logit - approx| is at most this, for the exact logits of `model._logits`.

        Per row v and input x (x_b: x in bfloat16, W~ = scales * quantized): x.W - x_b.W~ is
        x.(W - W~) + (x - x_b).W~, at most rounding[v] |x|_1 + magnitude[v] |x - x_b|_1; the kernel's
        float32 sum adds at most 640 eps32 of magnitude[v] |x_b|_1 (taken as 1e-4); its bfloat16 output
        and the exact path's own output rounding are each within 2^-8 of the value (taken as 2^-6 of
        |approx| together, with 1e-3 on top for values near zero)."""
        x = normed.float()
        x_b = normed.to(torch.bfloat16).float()
        l1, l1_b, l1_diff = (t.abs().sum(dim=-1, keepdim=True) for t in (x, x_b, x - x_b))
        return (self.rounding * l1 + self.magnitude * (l1_diff + 1e-4 * l1_b)) + approx.abs() * 2**-6 + 1e-3

    def logits(
        self, dec: Decoder, normed: torch.Tensor, allowed: Sequence[torch.Tensor | None],
        banned: Sequence[Sequence[int]],
    ) -> torch.Tensor:
        """[B, hidden] -> [B, vocab]: exact logits at the tokens that can be row b's pick among
        `allowed[b]` ([vocab] bool, None: all) given `banned[b]`, -inf elsewhere."""
        batch, vocab = normed.shape[0], dec.lm_head.shape[0]
        out = torch.full((batch, vocab), float("-inf"), dtype=torch.float32)
        small = [a is not None and int(a.sum()) <= SMALL_ALLOWED for a in allowed]
        screened = [b for b in range(batch) if not small[b]]
        if screened:
            rows = normed[screened]
            approx = self.approximate(rows)
            bound = self.bounds(rows, approx)
        for b in range(batch):
            if small[b]:
                keep = allowed[b]
            else:
                k = screened.index(b)
                low, high = approx[k] - bound[k], approx[k] + bound[k]
                if allowed[b] is not None:
                    low = low.masked_fill(~allowed[b], float("-inf"))
                if banned[b]:
                    low[torch.tensor(sorted(banned[b]))] = float("-inf")
                keep = high >= low.max()  # with every allowed token banned: all allowed tokens
                if allowed[b] is not None:
                    keep &= allowed[b]
            tokens = keep.nonzero()[:, 0]
            out[b, tokens] = _exact(dec, normed[b], tokens)
        return out


def _exact(dec: Decoder, normed_row: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """`model._logits` for one row at `tokens` only, as float32."""
    return _logits(dec, normed_row[None], tokens)[0].float()
