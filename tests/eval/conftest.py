"""Eval fixtures: scenario folders and eval.jsonl built from the real curated examples, tiny random models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval.generation import Answer, Generation, answer_from_text
from reviewers.contract import ReviewRequest
from training.examples import load_example

REPO = Path(__file__).resolve().parents[2]
# Real curated examples: one blocker with a ranged finding, one clean change.
BLOCK_EXAMPLE = REPO / "datasets" / "python" / "python-031-log-card-number.yaml"
CLEAN_EXAMPLE = REPO / "datasets" / "python" / "python-026-top-level-worker-except.yaml"


def write_scenario(root: Path, example_path: Path, name: str, must_not_find_paths: list[str] | None = None) -> Path:
    """A scenario case folder (diff.patch + expected.json) from a curated example."""
    example = load_example(example_path)
    folder = root / example.reviewer / name
    folder.mkdir(parents=True)
    (folder / "diff.patch").write_text(example.diff, encoding="utf-8")
    must_find = [
        {"path": f.path, "lines": [f.line, f.last_line], "category": f.category.value, "keywords": ["card"]}
        for f in example.expected.findings
    ]
    (folder / "expected.json").write_text(json.dumps({
        "reviewer": example.reviewer, "verdict": example.expected.verdict.value, "must_find": must_find,
        "must_not_find_paths": must_not_find_paths or [], "rationale": f"from {example_path.name}",
        "task": example.task,
    }), encoding="utf-8")
    return folder


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    root = tmp_path / "scenarios"
    write_scenario(root, BLOCK_EXAMPLE, "card-numbers-logged")
    write_scenario(root, CLEAN_EXAMPLE, "worker-except-clean")
    return root


@pytest.fixture(scope="session")
def tiny_parts() -> tuple[Any, Any]:
    """A tiny random Llama and ChatML tokenizer, built in memory (nothing downloaded)."""
    from training.tiny import tiny_llama, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    return tiny_llama(len(tokenizer), seed=0), tokenizer


@pytest.fixture
def tiny_model(tiny_parts: tuple[Any, Any]) -> Any:
    from eval.generation import TransformersModel

    model, tokenizer = tiny_parts
    return TransformersModel(model, tokenizer, max_new_tokens=6, device="cpu")


def save_tiny_adapter(model: Any, folder: Path, seed: int) -> Path:
    """A real PEFT LoRA adapter for the tiny model, with non-zero B so it changes the outputs."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(
        r=2, lora_alpha=4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    ))
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=3.0)
    peft_model.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_training_run(tmp_path: Path, tiny_parts: tuple[Any, Any]) -> Path:
    """A run folder in the trainer's layout (config.json, checkpoints/step-N/{adapter,state.json}, adapter/)."""
    model, _ = tiny_parts
    run = tmp_path / "runs" / "python-tiny"
    for step in (2, 4):
        ckpt = run / "checkpoints" / f"step-{step}"
        save_tiny_adapter(model, ckpt / "adapter", seed=step)
        (ckpt / "state.json").write_text(json.dumps({"step": step, "total_steps": 4}), encoding="utf-8")
    save_tiny_adapter(model, run / "adapter", seed=4)
    (run / "config.json").write_text(json.dumps({
        "reviewer": "python", "data_dir": str(tmp_path / "data"), "base_model": "tiny", "gguf_file": None,
        "resolved": {"total_steps": 4},
    }), encoding="utf-8")
    return run


BLOCK_ANSWER = json.dumps({
    "verdict": "block",
    "findings": [{"path": "payments/charge.py", "line": 54, "severity": "blocker", "category": "security",
                  "message": "Card numbers and CVCs are logged."}],
    "missing_checks": [], "suggested_fix": "Log the last four digits only.",
})
APPROVE_ANSWER = '{"verdict": "approve", "findings": [], "missing_checks": [], "suggested_fix": ""}'


class ScriptedReviewModel:
    """A scripted model at the eval's edge: fixed answer texts for the card-logging and clean cases (not a real model)."""

    name = "scripted"

    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts

    def answer(self, request: ReviewRequest, decoding: str = "raw") -> Answer:
        key = "block" if "payments/charge.py" in request.diff else "clean"
        return answer_from_text(Generation(text=self.texts[key], latency_s=0.01, completion_tokens=7))


