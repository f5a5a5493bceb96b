"""The static KV cache: one preallocated row per batch slot, so decode never allocates.

Row `s` of every layer's K and V belongs to whichever request holds slot `s`. A request writes its prompt
during prefill, then one position per decode step. Nothing is ever cleared: an entry the request has not
written yet is masked out by attention, so a freed slot is reused as is. Static shapes are what lets a
whole decode step be captured once as a CUDA graph.

A layer that attends to a sliding window (Gemma-3: 5 layers of 6, window 512) keeps only the last
`window` positions, as a ring: position p lives at entry p mod window. Its attention then reads `window`
entries rather than `max_seq_len`, and its memory is that much smaller. With entries 0..L-1 and the
query at position p, entry j is visible exactly when j <= p: before the ring wraps, entries past p are
not written yet; after, every entry holds one of the last L positions, all inside the window.

K and V of a layer live in one tensor [2, max_batch, n_kv_heads, length, head_dim], so a decode step
writes both with one indexed copy (`kv[:, rows, :, entries] = new [B, 2, KV, D]`), while `k(layer)` and
`v(layer)` are still contiguous for attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class KVCache:
    """K and V per layer: kv[layer] is [2, max_batch, n_kv_heads, length(layer), head_dim]."""

    kv: list[torch.Tensor]

    @classmethod
    def allocate(
        cls,
        lengths: list[int],
        max_batch: int,
        n_kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> KVCache:
        """One layer per entry of `lengths`: max_seq_len for full attention, the window for a ring."""
        return cls(kv=[
            torch.zeros((2, max_batch, n_kv_heads, length, head_dim), dtype=dtype, device=device)
            for length in lengths
        ])

    def k(self, layer: int) -> torch.Tensor:
        return self.kv[layer][0]

    def v(self, layer: int) -> torch.Tensor:
        return self.kv[layer][1]

    def length(self, layer: int) -> int:
        return self.kv[layer].shape[3]

    @property
    def max_batch(self) -> int:
        return self.kv[0].shape[1]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.kv)
