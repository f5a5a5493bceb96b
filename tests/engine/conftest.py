"""Tiny random models, a tiny real tokenizer and PEFT adapters with non-zero LoRA weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

TARGETS_ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# (name, rank, alpha, target modules): two ranks, different targets
ADAPTER_SPECS = [
    ("python", 4, 8, ["q_proj", "v_proj"]),
    ("sql", 8, 16, TARGETS_ALL),
    ("docs", 4, 4, ["gate_proj", "down_proj", "o_proj"]),
]


def _randomise_norms(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.normal_(0.0, 0.3)
    return model.eval()


def tiny_model(arch: str, vocab: int, seed: int = 0) -> torch.nn.Module:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    common = {"vocab_size": vocab, "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4,
                  "num_key_value_heads": 2, "max_position_embeddings": 512}
    if arch == "llama":
        return _randomise_norms(LlamaForCausalLM(LlamaConfig(num_hidden_layers=2, **common)))
    config = Gemma3TextConfig(
        num_hidden_layers=3, head_dim=16, query_pre_attn_scalar=16, sliding_window=6,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"], **common,
    )
    return _randomise_norms(Gemma3ForCausalLM(config))


def save_adapters(model: torch.nn.Module, root: Path, seed: int = 1) -> dict[str, Path]:
    """Save each ADAPTER_SPECS adapter with non-zero random A and B, as PEFT writes them."""
    from peft import LoraConfig, get_peft_model

    paths = {}
    for i, (name, rank, alpha, targets) in enumerate(ADAPTER_SPECS):
        torch.manual_seed(seed + i)
        config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, init_lora_weights=False,
                            lora_dropout=0.0)
        peft_model = get_peft_model(_copy(model), config)
        with torch.no_grad():
            for pname, param in peft_model.named_parameters():
                if "lora_" in pname:
                    param.normal_(0.0, 0.2)
        paths[name] = root / name
        peft_model.save_pretrained(paths[name])
    return paths


def _copy(model):
    import copy

    return copy.deepcopy(model)


@pytest.fixture(scope="session", params=["llama", "gemma3"])
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def base_and_adapters(arch, tiny_tokenizer, tmp_path_factory):
    model = tiny_model(arch, vocab=len(tiny_tokenizer))
    paths = save_adapters(model, tmp_path_factory.mktemp(f"adapters-{arch}"))
    return model, paths


@pytest.fixture(autouse=True, scope="session")
def _one_cpu_thread():
    """One intra-op thread for this area's tests: on a small, shared CPU, OpenMP's spinning threads made
    a decode-sized matmul 25x slower (measured: 23 ms vs 0.9 ms); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
