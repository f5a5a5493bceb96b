"""LoRA adapters as explicit tensors, and the batched apply that lets every row use its own adapter.

One adapter is, per target linear module of the decoder, an A matrix [r, in] and a B matrix [out, r]
plus a scale (PEFT's `lora_alpha / r`). To serve many adapters in one batch we stack them:

    a[slot]: [in, r_max]            A transposed, zero-padded to the largest rank
    b[slot]: [r_max, out]           B transposed, times the adapter's scale, zero-padded

Ranks differ between adapters: the padding rows/columns are zeros, so they add nothing. An adapter that
does not target a module keeps zero A and B there, so it adds nothing there either. A module that no
loaded adapter targets has no stack at all and costs nothing. The last slot is all zeros: rows with no
adapter (the base model alone) point at it.

Two ways to apply the stacks, same result:
- `lora_delta_gathered` (BGMV): gather each row's A and B by slot, two batched matmuls. The gather
  copies B·in·r elements per module, so it suits prefill (many tokens per row) and many adapters.
- `lora_delta_grouped` (SGMV-like, "shrink all, keep own"): one matmul against every adapter's A at once
  [in, n·r], a 0/1 mask keeps each row's own adapter's r columns, one matmul against every B [n·r, out].
  Reads each adapter's weights once per step instead of once per row, which is what decode needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

# The linear modules of a Llama/Gemma decoder layer that LoRA may target, in the order we apply them.
TARGET_MODULES: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

_PEFT_KEY = re.compile(
    r"(?:^|\.)layers\.(?P<layer>\d+)\.(?:self_attn|mlp)\.(?P<module>\w+?)\.lora_(?P<ab>[AB])(?:\.[\w-]+)?\.weight$"
)


class AdapterError(ValueError):
    """An adapter that cannot be loaded or served; the message says which file and why."""


@dataclass(frozen=True)
class LoraAdapter:
    """One PEFT LoRA adapter in memory: per (layer, module) A [r, in] and B [out, r], and a scale."""

    name: str
    rank: int
    scale: float
    weights: Mapping[tuple[int, str], tuple[torch.Tensor, torch.Tensor]]

    @property
    def target_modules(self) -> set[str]:
        return {module for _layer, module in self.weights}


def load_peft_adapter(path: Path | str, name: str) -> LoraAdapter:
    """Read an adapter written by PEFT's `save_pretrained` (adapter_config.json + safetensors)."""
    from safetensors.torch import load_file

    folder = Path(path)
    config_path = folder / "adapter_config.json"
    weights_path = folder / "adapter_model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise AdapterError(
            f"adapter {name!r} at {folder}: expected adapter_config.json and adapter_model.safetensors "
            "(PEFT save_pretrained output)"
        )
    config = json.loads(config_path.read_text())
    return adapter_from_state(name, config, load_file(str(weights_path)))


def adapter_from_state(name: str, config: Mapping, state: Mapping[str, torch.Tensor]) -> LoraAdapter:
    """Build a `LoraAdapter` from a PEFT config dict and its state dict; reject what we cannot serve."""
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterError(f"adapter {name!r} is {config.get('peft_type')}, only LORA is served")
    for key in ("use_dora", "lora_bias"):
        if config.get(key):
            raise AdapterError(f"adapter {name!r} sets {key}=true, which this engine does not serve")
    if config.get("bias", "none") != "none" or config.get("modules_to_save"):
        raise AdapterError(f"adapter {name!r} trains biases or whole modules; only plain LoRA is served")
    if config.get("alpha_pattern") or config.get("rank_pattern"):
        raise AdapterError(f"adapter {name!r} uses per-module rank/alpha patterns; not served")
    rank = int(config["r"])
    alpha = float(config.get("lora_alpha", rank))
    scale = alpha / rank**0.5 if config.get("use_rslora") else alpha / rank
    pairs: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        match = _PEFT_KEY.search(key)
        if match is None:
            raise AdapterError(f"adapter {name!r}: tensor {key!r} is not a LoRA A/B of a decoder layer module")
        module = match["module"]
        if module not in TARGET_MODULES:
            raise AdapterError(f"adapter {name!r} targets {module!r}; served targets are {TARGET_MODULES}")
        pairs.setdefault((int(match["layer"]), module), {})[match["ab"]] = tensor
    if not pairs:
        raise AdapterError(f"adapter {name!r} has no LoRA weights")
    weights = {}
    for where, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise AdapterError(f"adapter {name!r}: layer {where[0]} {where[1]} lacks lora_A or lora_B")
        weights[where] = (ab["A"], ab["B"])
    return LoraAdapter(name=name, rank=rank, scale=scale, weights=weights)


@dataclass
class LoraStack:
    """Every loaded adapter's A and B for one linear module of one layer (slot n is the zero slot)."""

    a: torch.Tensor  # [n + 1, in, r_max]
    b: torch.Tensor  # [n + 1, r_max, out]
    a_all: torch.Tensor  # [in, (n + 1) * r_max]   a laid side by side, for the grouped apply
    b_all: torch.Tensor  # [(n + 1) * r_max, out]  b stacked, for the grouped apply


# Modules that read the same input and whose base weights the decoder fuses into one matrix.
GROUPS: dict[str, tuple[str, ...]] = {
    "qkv": ("q_proj", "k_proj", "v_proj"),
    "o": ("o_proj",),
    "gate_up": ("gate_proj", "up_proj"),
    "down": ("down_proj",),
}


@dataclass
class GroupStack:
    """The stacks of a fused module group, so one group costs one shrink and one expand matmul.

    a: [in, M * C]  the M modules' `a_all` side by side (C = (n + 1) * r_max)
    b: [M * C, out] block-diagonal: module m's `b_all` maps its C columns to its own output slice
    """

    a: torch.Tensor
    b: torch.Tensor
    modules: int


@dataclass
class LoraBank:
    """The stacks for all (layer, module) pairs some adapter targets, and the slot of each adapter."""

    slots: dict[str, int]
    rank: int  # r_max, the padded rank
    stacks: dict[tuple[int, str], LoraStack]
    groups: dict[tuple[int, str], GroupStack]
    column_slot: torch.Tensor  # [(n + 1) * r_max]: which slot each column of `a_all` belongs to

    @property
    def zero_slot(self) -> int:
        return len(self.slots)


def build_bank(
    adapters: list[LoraAdapter],
    shapes: Mapping[str, tuple[int, int]],
    n_layers: int,
    dtype: torch.dtype,
    device: torch.device | str,
) -> LoraBank:
    """Stack `adapters` (slot = list position) into zero-padded tensors; `shapes[module] = (in, out)`."""
    rank = max((adapter.rank for adapter in adapters), default=0)
    for adapter in adapters:
        for (layer, module), (a, b) in adapter.weights.items():
            fan_in, fan_out = shapes[module]
            if layer >= n_layers or a.shape[1] != fan_in or b.shape[0] != fan_out:
                raise AdapterError(
                    f"adapter {adapter.name!r}: layer {layer} {module} has A {tuple(a.shape)} B {tuple(b.shape)};"
                    f" the base model has {n_layers} layers and {module} maps {fan_in} -> {fan_out}"
                )
    n = len(adapters)
    stacks: dict[tuple[int, str], LoraStack] = {}
    targeted = sorted({where for adapter in adapters for where in adapter.weights})
    for layer, module in targeted:
        fan_in, fan_out = shapes[module]
        a = torch.zeros(n + 1, fan_in, rank, dtype=torch.float32)
        b = torch.zeros(n + 1, rank, fan_out, dtype=torch.float32)
        for slot, adapter in enumerate(adapters):
            pair = adapter.weights.get((layer, module))
            if pair is None:
                continue
            lora_a, lora_b = pair
            r = lora_a.shape[0]
            a[slot, :, :r] = lora_a.float().T
            b[slot, :r, :] = lora_b.float().T * adapter.scale
        a = a.to(device=device, dtype=dtype)
        b = b.to(device=device, dtype=dtype)
        stacks[(layer, module)] = LoraStack(
            a=a,
            b=b,
            a_all=a.permute(1, 0, 2).reshape(fan_in, (n + 1) * rank).contiguous(),
            b_all=b.reshape((n + 1) * rank, fan_out).contiguous(),
        )
    return LoraBank(
        slots={adapter.name: i for i, adapter in enumerate(adapters)},
        rank=rank,
        stacks=stacks,
        groups=_group_stacks(stacks, shapes, n_layers, (n + 1) * rank, dtype, device),
        column_slot=torch.arange(n + 1, device=device).repeat_interleave(rank),
    )


def _group_stacks(stacks, shapes, n_layers, columns, dtype, device) -> dict[tuple[int, str], GroupStack]:
    """Per layer and module group, one A and one block-diagonal B (zeros where no adapter targets)."""
    groups = {}
    for layer in range(n_layers):
        for group, modules in GROUPS.items():
            if not any((layer, m) in stacks for m in modules):
                continue
            fan_in = shapes[modules[0]][0]
            outs = [shapes[m][1] for m in modules]
            a = torch.zeros(fan_in, len(modules) * columns, dtype=dtype, device=device)
            b = torch.zeros(len(modules) * columns, sum(outs), dtype=dtype, device=device)
            start = 0
            for m, (module, out) in enumerate(zip(modules, outs)):
                stack = stacks.get((layer, module))
                if stack is not None:
                    a[:, m * columns:(m + 1) * columns] = stack.a_all
                    b[m * columns:(m + 1) * columns, start:start + out] = stack.b_all
                start += out
            groups[(layer, group)] = GroupStack(a=a, b=b, modules=len(modules))
    return groups


@dataclass
class LoraRows:
    """Which adapter each row of a batch uses, in both forms the two apply functions need."""

    slot: torch.Tensor  # [B] slot index per row; the zero slot for base-only rows
    keep: torch.Tensor  # [B, (n + 1) * r_max] 1 where the column belongs to the row's adapter, else 0
    grouped: bool = True


def rows_for(bank: LoraBank, slot: torch.Tensor, dtype: torch.dtype, grouped: bool = True) -> LoraRows:
    """The per-row selectors for slots `slot` [B] (pure tensor ops: safe inside a CUDA graph)."""
    keep = (bank.column_slot[None, :] == slot[:, None]).to(dtype)
    return LoraRows(slot=slot, keep=keep, grouped=grouped)


def lora_delta_gathered(x: torch.Tensor, stack: LoraStack, slot: torch.Tensor) -> torch.Tensor:
    """x [B, T, in] -> [B, T, out]: each row's own A and B gathered by slot, then two bmm (BGMV)."""
    a = stack.a[slot]  # [B, in, r]
    b = stack.b[slot]  # [B, r, out]
    return torch.bmm(torch.bmm(x, a), b)


def lora_delta_grouped(x: torch.Tensor, stack: LoraStack, keep: torch.Tensor) -> torch.Tensor:
    """x [B, T, in] -> [B, T, out]: shrink through every adapter, keep the row's own r columns, expand."""
    h = x @ stack.a_all  # [B, T, (n + 1) * r]
    h = h * keep[:, None, :]  # zero the other adapters' columns
    return h @ stack.b_all  # [B, T, out]


def lora_delta(x: torch.Tensor, stack: LoraStack, rows: LoraRows) -> torch.Tensor:
    """The LoRA term for `x` [B, T, in] under `rows`' adapters."""
    if rows.grouped:
        return lora_delta_grouped(x, stack, rows.keep)
    return lora_delta_gathered(x, stack, rows.slot)
