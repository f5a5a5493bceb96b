"""The training objective: next-token cross-entropy on answer tokens only, computed in chunks.

With a 262k-token vocabulary the logits are the largest tensor of a step (8 × 1024 positions × 262144
× 4 bytes = 8.6 GB in fp32, several copies with their gradients). Here the logits exist only for
answer positions, one chunk at a time, and the gradient with respect to the hidden states is
computed right away (softmax − one-hot, times the output matrix), so peak memory is one chunk of
logits instead of the whole batch.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from training.packing import IGNORE_INDEX

CHUNK_BYTES = 1 << 30  # fp32 logits per chunk: 1 GiB, i.e. 1024 positions of a 262k vocabulary


def chunk_rows(vocab_size: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    return max(16, chunk_bytes // (4 * vocab_size))


def _chunk_loss_and_grad(
    logits: torch.Tensor, targets: torch.Tensor, normalizer: torch.Tensor, softcap: float | None,
    row_weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk: Σ w·CE over its rows, and d(that / normalizer)/d logits in the logits' dtype.

    The arithmetic is in fp32 (fp64 for an fp64 model). Eager, it reuses one fp32 buffer in place; on CUDA
    `_fused_chunk` compiles it into a reduction and one pass that writes the bf16 gradient, so the fp32
    logits never reach memory. The one-hot part of the gradient (−1 at each row's target) is added last,
    to the output, so that pass is a plain element-wise one.
    """
    z = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if softcap:
        capped = torch.tanh(z / softcap)
        z = capped * softcap
    lse = torch.logsumexp(z, dim=-1)  # [c]
    picked = z.gather(1, targets[:, None]).squeeze(1)
    losses = lse - picked if row_weights is None else (lse - picked) * row_weights
    scale = (1.0 / normalizer).expand_as(lse) if row_weights is None else row_weights / normalizer  # [c]
    # d(Σ w·CE)/d logits = w·(softmax − one-hot), times tanh's derivative under a soft cap.
    target_scale = scale if not softcap else scale * (1.0 - (picked / softcap).square())  # picked is capped·cap
    grad = z.sub_(lse[:, None]).exp_()
    if softcap:
        grad.mul_(1.0 - capped.square_())
    grad = grad.mul_(scale[:, None]).to(logits.dtype)
    grad.scatter_add_(1, targets[:, None], (-target_scale[:, None]).to(logits.dtype))
    return losses.sum(), grad


@functools.cache
def _fused_chunk() -> Any:
    """`_chunk_loss_and_grad` compiled once per process (dynamic chunk length: the last chunk is shorter)."""
    return torch.compile(_chunk_loss_and_grad, dynamic=True)


class _ChunkedCrossEntropy(torch.autograd.Function):
    """sum over rows of w·CE(hidden @ weightᵀ, targets) / normalizer (w = row_weights, else 1), gradients
    computed in the forward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
        normalizer: float | torch.Tensor, rows: int, softcap: float | None, row_weights: torch.Tensor | None = None,
        fused: bool = False,
    ) -> torch.Tensor:
        hidden_c = hidden.to(weight.dtype)
        grad_hidden = torch.empty_like(hidden_c) if hidden.requires_grad else None
        acc = torch.promote_types(weight.dtype, torch.float32)  # fp32 for bf16/fp16 models, fp64 stays fp64
        grad_weight = torch.zeros_like(weight, dtype=acc) if weight.requires_grad else None
        total = torch.zeros((), dtype=acc, device=hidden.device)
        # a tensor: no recompile per value; given as one, no host-to-device copy (a CUDA graph cannot record it)
        norm = (normalizer.to(acc) if isinstance(normalizer, torch.Tensor)
                else torch.tensor(normalizer, dtype=acc, device=hidden.device))
        chunk = _fused_chunk() if fused else _chunk_loss_and_grad
        for start in range(0, hidden_c.shape[0], rows):
            h = hidden_c[start : start + rows]  # [c, d]
            w = None if row_weights is None else row_weights[start : start + rows].to(acc)
            loss_sum, grad = chunk(h @ weight.T, targets[start : start + rows], norm, softcap, w)
            total += loss_sum
            if grad_hidden is not None:
                grad_hidden[start : start + rows] = grad @ weight
            if grad_weight is not None:
                grad_weight += (grad.T @ h).to(acc)
        ctx.hidden_dtype = hidden.dtype
        ctx.weight_dtype = weight.dtype
        ctx.save_for_backward(
            grad_hidden if grad_hidden is not None else torch.empty(0),
            grad_weight if grad_weight is not None else torch.empty(0),
        )
        ctx.has = (grad_hidden is not None, grad_weight is not None)
        return total / norm

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        grad_hidden, grad_weight = ctx.saved_tensors
        gh = (grad_hidden * grad_out).to(ctx.hidden_dtype) if ctx.has[0] else None
        gw = (grad_weight * grad_out).to(ctx.weight_dtype) if ctx.has[1] else None
        return gh, gw, None, None, None, None, None, None


def answer_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None = None,
    chunk_bytes: int = CHUNK_BYTES, normalizer: float | None = None, position_weights: torch.Tensor | None = None,
    fused: bool | None = None, static_rows: bool = False,
) -> torch.Tensor:
    """Mean CE over positions whose target is not -100. hidden: [..., d]; weight: [V, d]; targets: [...].

    position_weights (shaped like targets): a weighted mean instead, Σ w·CE / Σ w over the answer positions.
    fused: compile each chunk's loss and gradient into fused kernels; default: on CUDA.
    static_rows: every position is a row (the others weigh 0) and the normalizer stays on the device, so the
    computation has fixed shapes and never waits for the GPU: what a CUDA graph of the step needs. Costs the
    logits of the non-answer positions.
    """
    if static_rows:
        return _static_rows_cross_entropy(hidden, weight, targets, softcap, chunk_bytes, position_weights,
                                          hidden.is_cuda if fused is None else fused)
    flat_targets = targets.reshape(-1)
    keep = (flat_targets != IGNORE_INDEX).nonzero().squeeze(1)
    if keep.numel() == 0:
        raise ValueError("this batch has no answer tokens to learn from")
    rows_hidden = hidden.reshape(-1, hidden.shape[-1]).index_select(0, keep)  # [N_answer, d]
    rows_targets = flat_targets.index_select(0, keep)
    rows_weights = None if position_weights is None else position_weights.reshape(-1).index_select(0, keep)
    if normalizer is None:
        normalizer = keep.numel() if rows_weights is None else float(rows_weights.sum())
    return _ChunkedCrossEntropy.apply(
        rows_hidden, weight, rows_targets, float(normalizer), chunk_rows(weight.shape[0], chunk_bytes), softcap,
        rows_weights, hidden.is_cuda if fused is None else fused,
    )


def _static_rows_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None, chunk_bytes: int,
    position_weights: torch.Tensor | None, fused: bool,
) -> torch.Tensor:
    """answer_cross_entropy over all positions: ignored ones weigh 0, Σ w stays a device tensor."""
    flat_targets = targets.reshape(-1)
    answer = flat_targets != IGNORE_INDEX
    rows_weights = answer.to(torch.float32)
    if position_weights is not None:
        rows_weights = rows_weights * position_weights.reshape(-1).to(torch.float32)
    normalizer = rows_weights.sum()
    normalizer = torch.where(normalizer > 0, normalizer, torch.ones_like(normalizer))  # an all-padding batch: 0
    return _ChunkedCrossEntropy.apply(
        hidden.reshape(-1, hidden.shape[-1]), weight, flat_targets.clamp(min=0), normalizer,
        chunk_rows(weight.shape[0], chunk_bytes), softcap, rows_weights, fused,
    )


def reference_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None = None
) -> torch.Tensor:
    """The plain full-logits computation, for tests and the baseline."""
    logits = (hidden @ weight.T).to(torch.promote_types(weight.dtype, torch.float32))
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX
    )


def _base_causal_lm(model: nn.Module) -> nn.Module:
    """The transformers *ForCausalLM under a PEFT wrapper (LoRA layers are injected in place)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


class AnswerLossModel(nn.Module):
    """Decoder → hidden states → chunked answer-only CE. One module, so DDP sees one forward."""

    def __init__(self, causal_lm: nn.Module, chunk_bytes: int = CHUNK_BYTES, decision_weight: float = 1.0,
                 fused_loss: bool | None = None) -> None:
        super().__init__()
        self.lm = causal_lm
        self.chunk_bytes = chunk_bytes
        self.decision_weight = decision_weight
        self.fused_loss = fused_loss  # None: on CUDA (see answer_cross_entropy)
        self.static_rows = False  # see answer_cross_entropy; set by a CUDA-graphed step

    def forward(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor, targets: torch.Tensor,
        attention_mask: torch.Tensor | None = None, cu_seqlens: torch.Tensor | None = None,
        max_seqlen: int | None = None, decision_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        base = _base_causal_lm(self.lm)
        head = base.get_output_embeddings()
        if getattr(head, "bias", None) is not None:
            raise NotImplementedError("an output layer with a bias is not supported by the chunked loss")
        varlen: dict[str, Any] = {}
        if cu_seqlens is not None:
            # Read by the `calora_varlen` attention; SDPA instead derives the block-diagonal mask from
            # the restarting position_ids (transformers' packed-sequence detection).
            varlen = {"cu_seq_lens_q": cu_seqlens, "cu_seq_lens_k": cu_seqlens,
                      "max_length_q": max_seqlen, "max_length_k": max_seqlen}
        out = base.get_decoder()(
            input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask, use_cache=False,
            **varlen,
        )
        hidden = out[0]
        softcap = getattr(base.config.get_text_config(), "final_logit_softcapping", None)
        weights = None
        if decision_mask is not None and self.decision_weight != 1.0:
            weights = 1.0 + (self.decision_weight - 1.0) * decision_mask.to(torch.float32)
        return answer_cross_entropy(hidden, head.weight, targets, softcap=softcap, chunk_bytes=self.chunk_bytes,
                                    position_weights=weights, fused=self.fused_loss, static_rows=self.static_rows)
