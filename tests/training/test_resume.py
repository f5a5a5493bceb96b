"""The trainer resumes exactly: a killed or stopped run continues with the same loss sequence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.config import TrainConfig
from training.train import train

REPO = Path(__file__).resolve().parents[2]


def make_config(run_dir: Path, base: Path, data: Path) -> TrainConfig:
    return TrainConfig(
        reviewer="python", data_dir=data, run_dir=run_dir, base_model=str(base), gguf_file=None,
        epochs=2, tokens_per_batch=200, checkpoint_every=2, lora_r=4, lora_alpha=8, lora_dropout=0.1,
        learning_rate=5e-3, warmup_steps=2, device="cpu", seed=3,
    )


def losses(run_dir: Path) -> list[tuple[int, float]]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [(r["step"], r["loss"]) for r in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path, chat_data: Path) -> Path:
    run = tmp_path_factory.mktemp("full")
    train(make_config(run, tiny_base, chat_data))
    return run


def test_stopped_then_resumed_run_has_identical_losses(
    uninterrupted: Path, tiny_base: Path, chat_data: Path, tmp_path: Path
) -> None:
    cfg = make_config(tmp_path, tiny_base, chat_data)
    train(cfg, stop_at_step=3)
    assert not (tmp_path / "adapter").exists(), "a stopped run must not write the final adapter"
    assert [s for s, _ in losses(tmp_path)] == [1, 2, 3]
    train(cfg)
    expected = losses(uninterrupted)
    assert len(expected) >= 6
    assert losses(tmp_path) == expected  # exact float equality, step by step


@pytest.mark.slow
def test_sigkilled_run_resumes_from_latest_checkpoint_with_identical_losses(
    uninterrupted: Path, tiny_base: Path, chat_data: Path, tmp_path: Path
) -> None:
    cfg = make_config(tmp_path, tiny_base, chat_data)
    (tmp_path / "cfg.json").write_text(cfg.model_dump_json())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.train", "--config", str(tmp_path / "cfg.json")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "checkpoints" / "step-2").is_dir():
        if proc.poll() is not None:
            pytest.fail(f"trainer exited early: {proc.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "adapter").exists(), "the run finished before it could be killed"
    train(cfg)
    assert losses(tmp_path) == losses(uninterrupted)


def test_final_adapter_loads_in_peft_and_changes_the_model(uninterrupted: Path, tiny_base: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, uninterrupted / "adapter")
    after = tuned(ids).logits
    assert not torch.allclose(before, after), "the trained adapter must change the model's output"
    config = json.loads((uninterrupted / "adapter" / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


def test_run_folder_holds_resolved_config_metrics_and_plot(uninterrupted: Path) -> None:
    resolved = json.loads((uninterrupted / "config.json").read_text())["resolved"]
    assert resolved["attn_implementation"] == "calora_varlen"
    assert resolved["device"] == "cpu" and resolved["dtype"] == "float32"
    row = json.loads((uninterrupted / "metrics.jsonl").read_text().splitlines()[0])
    assert set(row) >= {"step", "loss", "lr", "tokens_per_s", "memory_gib"}
    assert (uninterrupted / "loss.png").stat().st_size > 1000
    kept = sorted(p.name for p in (uninterrupted / "checkpoints").iterdir())
    assert len(kept) == 2 and all((uninterrupted / "checkpoints" / k / "optimizer.pt").is_file() for k in kept)


def test_final_adapter_serves_in_the_engine_like_in_peft(uninterrupted: Path, tiny_base: Path) -> None:
    engine_module = pytest.importorskip("reviewers.engine.engine")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    prompt = [5, 17, 42, 99, 7, 3]
    engine = engine_module.Engine.from_model(base, tokenizer, max_batch=2, max_seq_len=64)
    try:
        engine.add_adapter("python", uninterrupted / "adapter")
        request = engine_module.GenerationRequest(prompt=prompt, adapter="python", max_new_tokens=8,
                                                  constrained=False, ignore_eos=True)
        served = engine.generate([request])[0].token_ids
    finally:
        engine.close()
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), uninterrupted / "adapter")
    ids = torch.tensor([prompt])
    with torch.no_grad():
        for _ in range(8):
            ids = torch.cat([ids, tuned(ids).logits[:, -1:].argmax(-1)], dim=1)
    assert list(served) == ids[0, len(prompt):].tolist()


@pytest.mark.slow
def test_two_processes_share_the_plan_through_torch_distributed(tiny_base: Path, chat_data: Path, tmp_path: Path) -> None:
    """The multi-GPU path (DDP through accelerate), run as two CPU processes with the gloo backend."""
    cfg = make_config(tmp_path / "run", tiny_base, chat_data).model_copy(update={"max_steps": 3})
    (tmp_path / "cfg.json").write_text(cfg.model_dump_json())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "training.train",
         "--config", str(tmp_path / "cfg.json")],
        check=False, cwd=REPO, env=env, capture_output=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())["resolved"]
    assert resolved["world_size"] == 2
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
