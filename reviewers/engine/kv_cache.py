"""The static KV cache: one preallocated row per batch slot, so decode never allocates.

Row `s` of every layer's K and V belongs to whichever request holds slot `s`. A request writes its prompt
at positions 0..T-1 during prefill, then one position per decode step. Nothing is ever cleared: a
position beyond a row's current length is masked out by attention, so a freed slot is reused as is.
Static shapes are what lets a whole decode step be captured once as a CUDA graph.

K and V of a layer live in one tensor [2, max_batch, n_kv_heads, max_seq_len, head_dim], so a decode step
writes both with one indexed copy (`kv[:, rows, :, positions] = new [B, 2, KV, D]`), while `k(layer)` and
`v(layer)` are still contiguous for attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class KVCache:
    """K and V per layer: kv[layer] is [2, max_batch, n_kv_heads, max_seq_len, head_dim]."""

    kv: list[torch.Tensor]

    @classmethod
    def allocate(
        cls,
        n_layers: int,
        max_batch: int,
        n_kv_heads: int,
        max_seq_len: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> KVCache:
        shape = (2, max_batch, n_kv_heads, max_seq_len, head_dim)
        return cls(kv=[torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)])

    def k(self, layer: int) -> torch.Tensor:
        return self.kv[layer][0]

    def v(self, layer: int) -> torch.Tensor:
        return self.kv[layer][1]

    @property
    def max_batch(self) -> int:
        return self.kv[0].shape[1]

    @property
    def max_seq_len(self) -> int:
        return self.kv[0].shape[3]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.kv)
