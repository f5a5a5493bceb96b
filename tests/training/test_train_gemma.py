"""Training on a Gemma-3 base whose tokenizer has no chat template (as Gemma 3 270M's GGUF): the project's
turn format is taught, the adapter carries a manifest of its base, and only engine-servable modules are adapted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reviewers.adapter_manifest import MANIFEST_FILE, read_manifest
from reviewers.engine.lora import TARGET_MODULES
from reviewers.models import resolve_base_model, sha256_of
from reviewers.prompt import render_text
from training.config import TrainConfig
from training.packing import IGNORE_INDEX, tokenize_chat
from training.towers import TowerError, resolve_targets
from training.train import train


@pytest.fixture(scope="module")
def gemma_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.tiny import save_tiny_gemma3_base_model

    return save_tiny_gemma3_base_model(tmp_path_factory.mktemp("tiny-gemma3"))


def test_answer_targets_are_the_model_turn_after_gemma_turn_markers(gemma_base: Path, chat_data: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gemma_base)
    assert not getattr(tokenizer, "chat_template", None)
    record = json.loads((chat_data / "python" / "train.jsonl").read_text().splitlines()[0])
    example = tokenize_chat(record["id"], record["messages"], tokenizer)
    text = tokenizer.decode(example.input_ids)
    system, user, answer = (m["content"] for m in record["messages"])
    assert text == (f"<bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n"
                    f"<start_of_turn>model\n{answer}<end_of_turn>\n")
    assert text == render_text(tokenizer, record["messages"], add_generation_prompt=False)
    first = next(t for t, target in enumerate(example.targets) if target != IGNORE_INDEX)
    # the first predicted token is the answer's first, right after "<start_of_turn>model\n"
    assert tokenizer.decode(example.input_ids[: first + 1]).endswith("<start_of_turn>model\n")
    learned = tokenizer.decode([t for t in example.targets if t != IGNORE_INDEX])
    assert learned == f"{answer}<end_of_turn>\n"  # the model learns to close its turn


def test_trainer_accepts_a_tokenizer_without_chat_template_and_writes_the_manifest(
    gemma_base: Path, chat_data: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig(reviewer="python", data_dir=chat_data, run_dir=tmp_path, base_model=str(gemma_base),
                      epochs=1, max_steps=2, tokens_per_batch=400, lora_r=4, lora_alpha=8, device="cpu",
                      warmup_steps=1, checkpoint_every=1)
    adapter = train(cfg)
    manifest = read_manifest(adapter)
    assert manifest is not None
    assert manifest.base_model == str(gemma_base) == resolve_base_model(str(gemma_base)).name
    assert manifest.base_sha256 == sha256_of(gemma_base / "model.safetensors")
    assert (manifest.rank, manifest.lora_alpha, manifest.reviewer) == (4, 8, "python")
    assert manifest.target_modules == list(TARGET_MODULES)
    for step in (1, 2):  # every checkpoint a sweep may promote carries it too
        assert (tmp_path / "checkpoints" / f"step-{step}" / "adapter" / MANIFEST_FILE).is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["resolved"]["base_sha256"] == manifest.base_sha256
    from eval.workflow import read_training_run  # what `calora eval sweep` reloads the base from

    assert resolve_base_model(read_training_run(tmp_path).base_model) == resolve_base_model(str(gemma_base))


def test_a_run_on_the_default_base_records_the_base_by_name(tiny_base: Path, chat_data: Path, tmp_path: Path,
                                                            monkeypatch) -> None:
    """No --base-model: the default (here pointed at a tiny base) is what config.json and the manifest say."""
    monkeypatch.setenv("CALORA_BASE_MODEL", str(tiny_base))
    cfg = TrainConfig(reviewer="python", data_dir=chat_data, run_dir=tmp_path, epochs=1, max_steps=1,
                      tokens_per_batch=200, lora_r=4, device="cpu", warmup_steps=1)
    assert cfg.base_model is None
    adapter = train(cfg)
    assert json.loads((tmp_path / "config.json").read_text())["base_model"] == str(tiny_base)
    assert read_manifest(adapter).base_model == str(tiny_base)


def test_targets_the_engine_cannot_serve_are_refused_before_training() -> None:
    names = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.router_proj"]
    assert resolve_targets(names, ["q_proj"]) == names[:1]
    with pytest.raises(TowerError, match="router_proj, which the engine cannot serve"):
        resolve_targets(names, ["q_proj", "router_proj"])
