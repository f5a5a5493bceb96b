"""LoRA lands only in the language model of a multimodal Gemma; `adapters inspect` counts by tower.

Uses a tiny Gemma3ForConditionalGeneration (SigLIP vision tower + Gemma 3 text stack) built in memory:
its vision tower reuses the names q_proj/k_proj/v_proj, the trap this guards against.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.adapters_inspect import format_inspection, inspect_adapter
from training.base_model import linear_module_names
from training.towers import TowerError, default_targets, resolve_targets, tower_of


@pytest.fixture
def multimodal_gemma():
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    torch.manual_seed(0)
    text = Gemma3TextConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=1, head_dim=16)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                image_size=28, patch_size=14)
    return Gemma3ForConditionalGeneration(Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4))


def test_plain_projection_names_reach_the_vision_tower_and_are_refused(multimodal_gemma) -> None:
    names = linear_module_names(multimodal_gemma)
    with pytest.raises(TowerError, match=r"outside the language model \(vision: 3;.*--allow-non-language-towers"):
        resolve_targets(names, ["q_proj", "k_proj", "v_proj", "o_proj"])
    allowed = resolve_targets(names, ["q_proj"], allow_non_language_towers=True)
    assert {tower_of(n) for n in allowed} == {"language_model", "vision"}


def test_default_targets_of_a_multimodal_gemma_stay_in_the_language_model(
    multimodal_gemma, tmp_path: Path
) -> None:
    from peft import LoraConfig, get_peft_model

    names = linear_module_names(multimodal_gemma)
    targets = default_targets(multimodal_gemma.config.model_type, names)
    hit = resolve_targets(names, targets)
    assert len(hit) == 2 * 7 and all(tower_of(n) == "language_model" for n in hit)
    model = get_peft_model(multimodal_gemma, LoraConfig(r=4, target_modules=targets))
    model.save_pretrained(tmp_path)
    report = inspect_adapter(tmp_path)
    assert report.lora_tensors_by_tower == {"language_model": 28, "vision": 0, "audio": 0, "other": 0}
    assert report.modules_by_tower["language_model"] == 14
    assert "language_model     28 tensors" in format_inspection(report)


def test_inspect_counts_an_adapter_that_reached_the_vision_tower(multimodal_gemma, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(multimodal_gemma, LoraConfig(r=2, target_modules=["q_proj"]))
    model.save_pretrained(tmp_path)
    counts = inspect_adapter(tmp_path).lora_tensors_by_tower
    assert counts["vision"] == 1 * 2 and counts["language_model"] == 2 * 2  # A and B per module, 1 vs 2 layers


def test_tower_names_of_gemma_3n_style_and_text_only_models() -> None:
    assert tower_of("model.audio_tower.conformer.0.attention.attn.q_proj") == "audio"
    assert tower_of("model.vision_tower.timm_model.blocks.0.attn.qkv") == "vision"
    assert tower_of("model.language_model.layers.3.mlp.down_proj") == "language_model"
    assert tower_of("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") == "language_model"
    assert tower_of("model.multi_modal_projector.mm_input_projection") == "other"


def test_text_only_default_is_the_projection_list() -> None:
    names = [f"model.layers.0.self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "o_proj")]
    assert default_targets("llama", names) == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                               "down_proj"]


def test_inspect_rejects_a_folder_that_is_not_an_adapter(tmp_path: Path) -> None:
    from training.adapters_inspect import AdapterInspectionError

    (tmp_path / "adapter_config.json").write_text(json.dumps({}))
    with pytest.raises(AdapterInspectionError, match="adapter_model.safetensors"):
        inspect_adapter(tmp_path)
