"""Loading the base model and tokenizer, and attaching LoRA where it belongs.

The base model is resolved by `reviewers.models.resolve_base_model`, as review, serve and eval resolve
it: a known name (the fetched, converted folder), a .gguf file, a model folder or a hub id. QLoRA loads
the base in 4-bit NF4 through bitsandbytes, on CUDA only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reviewers.models import BaseModelRef, resolve_base_model
from reviewers.prompt import tokenizer_problems
from training.config import TrainConfig
from training.towers import default_targets, resolve_targets

log = logging.getLogger(__name__)


class BaseModelError(RuntimeError):
    """The base model cannot be loaded as configured; the message says what to change."""


def base_ref(cfg: TrainConfig) -> BaseModelRef:
    """The base model `cfg` names (`gguf_file` picks one GGUF inside a `base_model` folder)."""
    if cfg.gguf_file and cfg.base_model and (Path(cfg.base_model) / cfg.gguf_file).is_file():
        return resolve_base_model(str(Path(cfg.base_model) / cfg.gguf_file))
    if cfg.gguf_file and cfg.base_model:
        name = f"{cfg.base_model}/{cfg.gguf_file}"
        return BaseModelRef(source=cfg.base_model, gguf_file=cfg.gguf_file, name=name)
    return resolve_base_model(cfg.base_model)


def load_tokenizer(cfg: TrainConfig) -> Any:
    """The tokenizer; one with no chat template is fine (`reviewers.prompt.render_text` uses Gemma turns)."""
    from transformers import AutoTokenizer

    ref = base_ref(cfg)
    kwargs = {} if cfg.tokenizer else ref.load_kwargs()
    tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer or ref.source, **kwargs)
    problems = tokenizer_problems(tokenizer)
    if problems:
        raise BaseModelError(f"the tokenizer of {cfg.tokenizer or ref.describe()} cannot be trained with: "
                             f"{'; '.join(problems)}; reconvert the base (`calora models fetch --force`)")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(cfg: TrainConfig, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """The frozen base causal LM, on `device`, in `dtype` (4-bit when `cfg.qlora`)."""
    from transformers import AutoModelForCausalLM

    ref = base_ref(cfg)
    # transformers >= 5.2x turns hub kernels on when `kernels` is installed and fetches them from the hub at
    # `.train()` on CUDA (refused there without network or trust): the trainer's kernels are its own
    kwargs: dict[str, Any] = {"dtype": dtype, "use_kernels": False, **ref.load_kwargs()}
    if cfg.attn_implementation != "auto":
        kwargs["attn_implementation"] = cfg.attn_implementation
    if cfg.qlora:
        kwargs["quantization_config"] = _qlora_config(device, dtype)
        kwargs["device_map"] = {"": device}
    try:
        model = AutoModelForCausalLM.from_pretrained(ref.source, **kwargs)
    except ImportError as exc:
        raise BaseModelError(f"loading {ref.describe()} needs a missing package: {exc}") from exc
    if not cfg.qlora:
        model.to(device)
    model.requires_grad_(False)
    model.config.use_cache = False
    return model


def _qlora_config(device: torch.device, dtype: torch.dtype) -> Any:
    if device.type != "cuda":
        raise BaseModelError(
            "QLoRA (4-bit base through bitsandbytes) runs on CUDA only; this run is on "
            f"{device.type}. Drop --qlora or train on a CUDA GPU."
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise BaseModelError("QLoRA needs bitsandbytes: pip install bitsandbytes") from exc
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True
    )


def linear_module_names(model: nn.Module) -> list[str]:
    """Every Linear (incl. 4-bit Linear) module name, except the output head, which LoRA leaves alone."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = []
    for name, module in model.named_modules():
        if module is head:
            continue
        if isinstance(module, nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt"):
            names.append(name)
    return names


def keep_lora_inputs_in_autocast_dtype(peft_model: nn.Module) -> int:
    """Stop PEFT casting each LoRA layer's input to the adapter's fp32; returns how many layers changed.

    Under bf16 autocast PEFT's cast is undone by autocast before the matmul, so the answer is bit for bit
    the same, but every adapted layer wrote and read an fp32 copy of its input (the MLP's down projection:
    4 bytes × 6,912 per token). Only for autocast runs: without it an fp32 adapter needs fp32 inputs.
    """
    changed = 0
    for module in peft_model.modules():
        if hasattr(module, "lora_A") and getattr(module, "cast_input_dtype_enabled", True):
            module.cast_input_dtype_enabled = False
            changed += 1
    return changed


def attach_lora(model: nn.Module, cfg: TrainConfig) -> tuple[nn.Module, list[str] | str, int]:
    """Wrap `model` with a fresh LoRA adapter; returns (peft model, target spec used, modules adapted)."""
    from peft import LoraConfig, get_peft_model

    names = linear_module_names(model)
    model_type = getattr(model.config, "model_type", "")
    targets = cfg.target_modules if cfg.target_modules is not None else default_targets(model_type, names)
    hit = resolve_targets(names, targets, cfg.allow_non_language_towers)
    if cfg.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    lora = LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=targets,
        bias="none", task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    if cfg.gradient_checkpointing:
        peft_model.enable_input_require_grads()
        # Recompute each layer's activations in the backward pass: less memory, about a third more compute.
        base = peft_model.get_base_model()
        if hasattr(base, "activation_checkpointing_enable"):
            base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:  # transformers before the rename
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return peft_model, targets, len(hit)
