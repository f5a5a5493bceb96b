"""Trainer options: padded fallback, gradient checkpointing, QLoRA guard, Gemma defaults, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.cli import main as calora
from training.base_model import BaseModelError
from training.config import TrainConfig
from training.train import TrainingError, train


def config(run_dir: Path, base: Path, data: Path, **changes: object) -> TrainConfig:
    values: dict[str, object] = {
        "reviewer": "python", "data_dir": data, "run_dir": run_dir, "base_model": str(base), "gguf_file": None,
        "epochs": 1, "max_steps": 2, "tokens_per_batch": 200, "lora_r": 4, "device": "cpu", "warmup_steps": 1,
    }
    values.update(changes)
    return TrainConfig.model_validate(values)


def losses(run_dir: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_fixed_shape_step_gives_the_same_losses(tiny_base: Path, chat_data: Path, tmp_path: Path) -> None:
    """--cuda-graph pads each batch to the budget and computes the loss over fixed rows; on a CPU it runs
    eagerly, and the losses must be the ordinary step's (padding changes nothing for real tokens)."""
    train(config(tmp_path / "plain", tiny_base, chat_data, max_steps=3))
    train(config(tmp_path / "fixed", tiny_base, chat_data, max_steps=3, cuda_graph=True))
    assert losses(tmp_path / "fixed") == pytest.approx(losses(tmp_path / "plain"), rel=1e-5)
    # a sequence longer than the budget is a batch of its own: the fixed shape grows to hold it
    train(config(tmp_path / "long", tiny_base, chat_data, max_steps=2, tokens_per_batch=64, cuda_graph=True))
    assert len(losses(tmp_path / "long")) == 2
    with pytest.raises(TrainingError, match="--cuda-graph needs packed batches"):
        train(config(tmp_path / "padded", tiny_base, chat_data, cuda_graph=True, packing=False))


def test_qlora_on_cpu_fails_with_an_actionable_message(tiny_base: Path, chat_data: Path, tmp_path: Path) -> None:
    with pytest.raises(BaseModelError, match="QLoRA .* runs on CUDA only; this run is on cpu. Drop --qlora"):
        train(config(tmp_path, tiny_base, chat_data, qlora=True))


def test_gradient_checkpointing_gives_the_same_losses(tiny_base: Path, chat_data: Path, tmp_path: Path) -> None:
    train(config(tmp_path / "plain", tiny_base, chat_data))
    train(config(tmp_path / "ckpt", tiny_base, chat_data, gradient_checkpointing=True))
    assert losses(tmp_path / "ckpt") == pytest.approx(losses(tmp_path / "plain"), rel=1e-5)


def test_padded_fallback_trains_with_sdpa(tiny_base: Path, chat_data: Path, tmp_path: Path) -> None:
    train(config(tmp_path, tiny_base, chat_data, packing=False))
    resolved = json.loads((tmp_path / "config.json").read_text())["resolved"]
    assert resolved["packing"] == "length-grouped padded batches" and resolved["attn_implementation"] == "sdpa"
    assert len(losses(tmp_path)) == 2 and (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_gemma_family_gets_every_projection_by_default(chat_data: Path, tmp_path: Path) -> None:
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from training.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=16))
    base = tmp_path / "gemma"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    train(config(tmp_path / "run", base, chat_data))
    adapter = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    assert all(loss > 0 for loss in losses(tmp_path / "run"))


def test_train_and_inspect_through_the_calora_command(
    tiny_base: Path, chat_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert calora(["train", "--reviewer", "python", "--data", str(chat_data), "--out", str(run),
                   "--base-model", str(tiny_base), "--gguf-file", "", "--max-steps", "1", "--device", "cpu",
                   "--tokens-per-batch", "200"]) == 0
    capsys.readouterr()
    assert calora(["adapters", "inspect", str(run / "adapter"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["lora_tensors_by_tower"] == {"language_model": 28, "vision": 0, "audio": 0, "other": 0}


def test_calora_data_build_on_the_committed_datasets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    datasets = Path(__file__).resolve().parents[2] / "datasets"
    assert calora(["data", "build", "--examples", str(datasets), "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    for name in ("python", "sql", "docker_ci"):
        assert report["reviewers"][name]["examples"] >= 40, name
        assert name in table


@pytest.mark.slow
def test_two_steps_on_the_real_smollm2_gguf(tmp_path: Path) -> None:
    """The default base (SmolLM2-135M-Instruct GGUF) loads, its chat template separates the answer, and
    LoRA steps run on the real rendered prompts."""
    from tests.conftest import SMOLLM2_DIR, SMOLLM2_GGUF
    from training.dataset_build import build_dataset

    datasets = Path(__file__).resolve().parents[2] / "datasets" / "python"
    build_dataset([datasets], tmp_path / "data")
    cfg = TrainConfig(reviewer="python", data_dir=tmp_path / "data", run_dir=tmp_path / "run",
                      base_model=str(SMOLLM2_DIR), gguf_file=SMOLLM2_GGUF, max_steps=2, tokens_per_batch=1200,
                      device="cpu", warmup_steps=1)
    adapter = train(cfg)
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())["resolved"]
    assert resolved["adapted_modules"] == 30 * 7
    assert 0 < losses(tmp_path / "run")[0] < 10
    assert (adapter / "adapter_model.safetensors").is_file()


def test_all_makes_one_config_per_reviewer_with_data(tmp_path: Path) -> None:
    import argparse

    from training.config import add_arguments
    from training.train import configs_from_args

    for name in ("sql", "python"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "train.jsonl").write_text("{}\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--all", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "runs"),
                              "--lora-r", "8", "--keep-checkpoints", "30"])
    configs = configs_from_args(args)
    assert [(c.reviewer, c.run_dir, c.lora_r, c.keep_checkpoints) for c in configs] == [
        ("python", tmp_path / "runs" / "python", 8, 30), ("sql", tmp_path / "runs" / "sql", 8, 30)]
    with pytest.raises(TrainingError, match="give --reviewer NAME or --all"):
        configs_from_args(parser.parse_args(["--data", str(tmp_path / "data")]))


def test_lora_inputs_kept_in_bf16_give_the_same_loss_and_gradients_under_autocast() -> None:
    """PEFT's fp32 cast of a LoRA layer's input is undone by autocast: turning it off changes no number."""
    from peft import LoraConfig, get_peft_model

    from training.base_model import keep_lora_inputs_in_autocast_dtype
    from training.loss import AnswerLossModel
    from training.tiny import tiny_llama

    torch.manual_seed(0)
    model = get_peft_model(tiny_llama(vocab_size=120, hidden=32).to(torch.bfloat16),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))
    for name, param in model.named_parameters():  # a non-zero B, so the adapter's path carries gradient
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    assert next(p for n, p in model.named_parameters() if "lora_A" in n).dtype == torch.float32
    loss_model = AnswerLossModel(model)
    ids = torch.randint(0, 120, (1, 24), generator=torch.Generator().manual_seed(1))
    targets = torch.cat([ids[:, 1:], torch.full((1, 1), -100)], dim=1)
    positions = torch.arange(24)[None]
    results = []
    for keep in (False, True):
        if keep:
            assert keep_lora_inputs_in_autocast_dtype(model) > 0
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_model(ids, positions, targets)
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    (loss_cast, grads_cast), (loss_kept, grads_kept) = results
    assert loss_kept == loss_cast
    assert all(torch.equal(a, b) for a, b in zip(grads_cast, grads_kept, strict=True))
    assert any(g.abs().sum() > 0 for g in grads_kept)
