"""One GPU kernel for the grouped LoRA expand: keep each row's own adapter's columns and add h @ B.

The grouped apply (see lora.py) computes every adapter's shrink `h` for every row, then needs

    y += (h * keep) @ B        keep[m, k] = 1 where column k belongs to row m's adapter

In decode that is two tiny kernels per module group (the mask, then the GEMM), each mostly launch and
latency: about 0.3 ms of a 2.9 ms step for 26 layers x 4 groups. This Triton kernel does both at once:
it masks the h tile as it loads it (a column's adapter is `(k mod C) // r`, compared with the row's
slot) and adds the product into y in place, accumulating in float32 like cuBLAS's addmm.

GPU only (bf16/fp16). `masked_expand_add_` falls back to the torch formula on CPU or when Triton is
missing, and the engine's CPU tests run that path; the kernel is checked against it on a GPU by
tests/engine/test_lora_kernel.py and, end to end against PEFT, by bench/serve_bench.py.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU installs: the torch path below serves
    triton = None


def masked_expand_add_(
    y: torch.Tensor, h: torch.Tensor, b: torch.Tensor, slot: torch.Tensor, keep: torch.Tensor,
    rank: int, steps: int,
) -> torch.Tensor:
    """y [N, out] += (h [N, K] masked to each row's adapter) @ b [K, out], in place; returns y.

    Token row m belongs to batch row m // steps, whose adapter is `slot[m // steps]`; `keep`
    [B, C] is the same selection as a 0/1 matrix (C = columns of one module: (adapters + 1) * rank),
    for the torch path. y and h may be strided views (rows apart by any stride, columns contiguous).
    """
    if _kernel_serves(y, h, b):
        _launch(y, h, b, slot, keep.shape[1], rank, steps)
        return y
    rows, k = h.shape
    masked = (h.view(rows // steps, steps, k // keep.shape[1], keep.shape[1]) * keep[:, None, None, :]).view(rows, k)
    return y.addmm_(masked, b)


def _kernel_serves(y: torch.Tensor, h: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        triton is not None
        and y.is_cuda
        and y.dtype in (torch.bfloat16, torch.float16)
        and y.stride(1) == 1 and h.stride(1) == 1 and b.is_contiguous()
    )


def _launch(y, h, b, slot, columns: int, rank: int, steps: int, config: dict | None = None) -> None:
    rows, k = h.shape
    out = y.shape[1]
    config = config or _config(rows, out)
    block_m, block_n = config["BLOCK_M"], config["BLOCK_N"]
    grid = (triton.cdiv(rows, block_m), triton.cdiv(out, block_n))
    _expand_add[grid](
        y, h, b, slot, rows, out, k, columns, rank, steps, y.stride(0), h.stride(0), b.stride(0), **config,
    )


def _config(rows: int, out: int) -> dict:
    block_m = 64 if rows >= 64 else max(16, triton.next_power_of_2(rows))
    return {"BLOCK_M": block_m, "BLOCK_N": 64 if rows <= 64 else 128, "BLOCK_K": 32, "num_warps": 4,
            "num_stages": 3}


if triton is not None:

    @triton.jit
    def _expand_add(
        y_ptr, h_ptr, b_ptr, slot_ptr, rows, out, k, columns, rank, steps, stride_y, stride_h, stride_b,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):
        rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        in_m, in_n = rm < rows, rn < out
        slot = tl.load(slot_ptr + rm // steps, mask=in_m, other=-1)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, k, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            in_k = rk < k
            own = ((rk % columns) // rank)[None, :] == slot[:, None]
            h = tl.load(h_ptr + rm[:, None] * stride_h + rk[None, :],
                        mask=in_m[:, None] & in_k[None, :] & own, other=0.0)
            w = tl.load(b_ptr + rk[:, None] * stride_b + rn[None, :], mask=in_k[:, None] & in_n[None, :], other=0.0)
            acc += tl.dot(h, w)
        where = y_ptr + rm[:, None] * stride_y + rn[None, :]
        mask = in_m[:, None] & in_n[None, :]
        y = tl.load(where, mask=mask, other=0.0)
        tl.store(where, (y.to(tl.float32) + acc).to(y_ptr.dtype.element_ty), mask=mask)
