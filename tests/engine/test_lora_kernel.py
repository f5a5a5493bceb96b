"""The grouped LoRA expand: y += (h masked to each row's adapter) @ B, by torch (CPU) and by Triton (GPU)."""

from __future__ import annotations

import pytest
import torch

from reviewers.engine.lora import build_bank, rows_for
from reviewers.engine.lora_kernel import masked_expand_add_, triton


def _case(rows: int, steps: int, modules: int, adapters: int, rank: int, out: int, dtype, device):
    """A yh buffer as the fused GEMM leaves it ([N, out | modules * C]) and per-row adapter slots."""
    gen = torch.Generator().manual_seed(rows * 31 + steps)
    columns = (adapters + 1) * rank
    yh = torch.randn(rows * steps, out + modules * columns, generator=gen).to(device, dtype)
    b = (torch.randn(modules * columns, out, generator=gen) / 8).to(device, dtype)
    slot = torch.randint(0, adapters + 1, (rows,), generator=gen).to(device)
    column_slot = torch.arange(adapters + 1, device=device).repeat_interleave(rank)
    keep = (column_slot[None, :] == slot[:, None]).to(dtype)
    return yh, b, slot, keep, columns


def _by_hand(y, h, b, slot, rank: int, steps: int, columns: int) -> torch.Tensor:
    """Row by row, only the row's own adapter's columns of every module, in float32."""
    out = y.float().clone()
    for m in range(h.shape[0]):
        own = [k for k in range(h.shape[1]) if (k % columns) // rank == int(slot[m // steps])]
        out[m] += h[m, own].float() @ b[own].float()
    return out


@pytest.mark.parametrize(("rows", "steps"), [(5, 1), (3, 4)])
def test_torch_path_adds_only_each_rows_own_adapter(rows, steps):
    yh, b, slot, keep, columns = _case(rows, steps, modules=2, adapters=3, rank=4, out=24,
                                       dtype=torch.float32, device="cpu")
    y, h = yh[:, :24], yh[:, 24:]
    expected = _by_hand(y, h, b, slot, 4, steps, columns)
    result = masked_expand_add_(y, h, b, slot, keep, 4, steps)
    assert result.data_ptr() == yh.data_ptr()  # in place, into the strided view
    torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-5)


def test_the_banks_column_order_is_the_one_the_kernel_assumes():
    """The kernel computes a column's adapter as (k mod C) // r; the bank must lay columns out so."""
    from reviewers.engine.lora import LoraAdapter

    adapters = [
        LoraAdapter(name=f"a{i}", rank=r, scale=1.0,
                    weights={(0, "q_proj"): (torch.randn(r, 8), torch.randn(8, r))})
        for i, r in enumerate([2, 4, 3])
    ]
    bank = build_bank(adapters, {"q_proj": (8, 8), "k_proj": (8, 8), "v_proj": (8, 8)}, 1, torch.float32, "cpu")
    columns = (len(adapters) + 1) * bank.rank
    assert torch.equal(bank.column_slot, torch.arange(columns) // bank.rank)
    slot = torch.tensor([2, 0, 3])
    assert torch.equal(rows_for(bank, slot, torch.float32).keep.bool(),
                       (torch.arange(columns)[None, :] // bank.rank) == slot[:, None])


gpu = pytest.mark.skipif(not torch.cuda.is_available() or triton is None, reason="the Triton kernel needs a GPU")


@gpu
@pytest.mark.parametrize(
    ("rows", "steps", "modules", "out"),
    [(64, 1, 3, 1536), (64, 1, 2, 13824), (64, 1, 1, 1152), (7, 1, 1, 1152), (4, 37, 2, 13824), (32, 512, 1, 1152)],
)
def test_triton_kernel_matches_float32_reference(rows, steps, modules, out):
    yh, b, slot, keep, columns = _case(rows, steps, modules, adapters=8, rank=16, out=out,
                                       dtype=torch.bfloat16, device="cuda")
    y, h = yh[:, :out], yh[:, out:]
    h_before = h.clone()
    reference = (y.float() + (h.view(rows, steps, modules, columns) * keep[:, None, None, :]).view(
        rows * steps, -1).float() @ b.float()).to(torch.bfloat16)
    result = masked_expand_add_(y, h, b, slot, keep, 16, steps)
    assert result.data_ptr() == yh.data_ptr()
    torch.testing.assert_close(result.float(), reference.float(), rtol=1e-2, atol=1e-2)
    assert torch.equal(h, h_before)  # only y is written
