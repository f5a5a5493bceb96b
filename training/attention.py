"""Variable-length ("varlen") causal attention over packed sequences, plugged into transformers.

A packed batch is one row of concatenated sequences with `cu_seqlens` marking where each starts. This
module registers an attention implementation, `calora_varlen`, in transformers' `AttentionInterface`
that attends only inside each sequence:

- on CUDA with PyTorch's `torch.nn.attention.varlen.varlen_attn` (flash-attention kernels over the
  cu_seqlens layout: no padding, no O(T²) mask), when this torch has it;
- otherwise (CPU, older torch) one causal SDPA call per sequence, which computes the same function.

Because the implementation key is not in transformers' mask registry, the model builds no attention
mask at all for it; the kernel is told about sequence boundaries through `cu_seq_lens_q` and
`max_length_q`, the same keyword names transformers' flash-attention path uses.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from typing import Any

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

VARLEN_ATTENTION = "calora_varlen"


def _find_torch_varlen() -> tuple[Any, frozenset[str]] | None:
    """PyTorch's varlen flash attention and its keyword names, or None where this torch lacks it."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn, frozenset(inspect.signature(varlen_attn).parameters)


# Looked up once at import: a plain constant keeps torch.compile from tracing the lookup.
TORCH_VARLEN = _find_torch_varlen()


def torch_varlen_available() -> bool:
    return TORCH_VARLEN is not None and torch.cuda.is_available()


def _repeat_kv(x: torch.Tensor, groups: int, head_dim_axis: int) -> torch.Tensor:
    """[.., H_kv, ..] → [.., H_kv·groups, ..] so grouped-query heads line up with query heads."""
    return x if groups == 1 else x.repeat_interleave(groups, dim=head_dim_axis)


def varlen_causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int,
    scale: float | None, sliding_window: int | None = None,
) -> torch.Tensor:
    """Causal attention within each packed sequence. q: [T, H, D]; k, v: [T, H_kv, D] → [T, H, D]."""
    groups = q.shape[1] // k.shape[1]
    found = TORCH_VARLEN
    if found is not None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        varlen_attn, params = found
        kwargs: dict[str, Any] = {"scale": scale}
        left = sliding_window - 1 if sliding_window and sliding_window < max_seqlen else -1
        if "window_size" in params:
            kwargs["window_size"] = (left, 0)  # (left, 0) = causal, with an optional look-back limit
        elif left == -1:
            kwargs["is_causal"] = True
        else:
            found = None  # this torch's varlen_attn cannot do a sliding window: use the exact loop below
        if found is not None:
            if "enable_gqa" in params:
                kwargs["enable_gqa"] = groups > 1
            else:
                k, v = _repeat_kv(k, groups, 1), _repeat_kv(v, groups, 1)
            cu = cu_seqlens.to(device=q.device, dtype=torch.int32)
            return varlen_attn(q, k, v, cu, cu, max_seqlen, max_seqlen, **kwargs)
    return _per_sequence_sdpa(q, k, v, cu_seqlens, scale, sliding_window)


def _per_sequence_sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, scale: float | None,
    sliding_window: int | None,
) -> torch.Tensor:
    """Reference path: one causal SDPA per sequence; exact, padding-free, slower for many short ones."""
    groups = q.shape[1] // k.shape[1]
    bounds = cu_seqlens.tolist()
    outs = []
    for start, end in itertools.pairwise(bounds):
        qs = q[start:end].transpose(0, 1)  # [H, L, D]
        ks = _repeat_kv(k[start:end].transpose(0, 1), groups, 0)
        vs = _repeat_kv(v[start:end].transpose(0, 1), groups, 0)
        length = end - start
        if sliding_window and sliding_window < length:
            idx = torch.arange(length, device=q.device)
            allowed = (idx[None, :] <= idx[:, None]) & (idx[None, :] > idx[:, None] - sliding_window)
            out = F.scaled_dot_product_attention(qs, ks, vs, attn_mask=allowed, scale=scale)
        else:
            out = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scale)
        outs.append(out.transpose(0, 1))
    return torch.cat(outs, dim=0)


def varlen_attention_forward(
    module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0, **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention hook: query [1, H, T, D] → output [1, T, H, D] (what SDPA's hook returns)."""
    cu_seqlens = kwargs.get("cu_seq_lens_q")
    if cu_seqlens is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        # An ordinary (unpacked) call, e.g. generation: behave exactly like SDPA.
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    if query.shape[0] != 1:
        raise ValueError(f"{VARLEN_ATTENTION} takes one packed row; got a batch of {query.shape[0]}")
    if dropout:
        raise ValueError(f"{VARLEN_ATTENTION} does not implement attention dropout; set it to 0")
    window = kwargs.get("sliding_window", getattr(module, "sliding_window", None))
    out = varlen_causal_attention(
        query[0].transpose(0, 1), key[0].transpose(0, 1), value[0].transpose(0, 1),
        cu_seqlens, int(kwargs.get("max_length_q") or query.shape[2]), scaling, window,
    )
    return out.unsqueeze(0), None


def register_varlen_attention() -> str:
    """Make `calora_varlen` a valid `attn_implementation` for any transformers model; returns the key."""
    from transformers import AttentionInterface

    AttentionInterface.register(VARLEN_ATTENTION, varlen_attention_forward)
    return VARLEN_ATTENTION
