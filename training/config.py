"""Training run configuration: one pydantic model, resolved once and written into the run folder.

Resolved means every "auto" has been replaced by what the run actually used (device, dtype,
attention, target modules), so a run folder says exactly how its adapter was made.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from reviewers.models import BASE_MODEL_HELP


class TrainConfig(BaseModel):
    """Everything a LoRA SFT run depends on. Unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid")

    reviewer: str = Field(description="Reviewer to train; reads <data_dir>/<reviewer>/train.jsonl.")
    data_dir: Path = Field(default=Path("build/data"), description="Output of `calora data build`.")
    run_dir: Path = Field(default=Path("runs/train"), description="Run folder (config, metrics, adapter).")

    base_model: str | None = Field(
        default=None, description="What `--base-model` takes everywhere (reviewers.models.resolve_base_model):"
        " a known name, a .gguf file, a model folder or a hub id; None: CALORA_BASE_MODEL, else the default.",
    )
    gguf_file: str | None = Field(default=None, description="GGUF file in base_model (found if it is the only one).")
    tokenizer: str | None = Field(default=None, description="Tokenizer folder/id; default: the base model's.")

    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | str | None = Field(
        default=None, description="None: the family default (all attention + MLP projections of the language model)."
    )
    allow_non_language_towers: bool = Field(
        default=False, description="Permit LoRA targets inside a vision or audio tower of a multimodal model."
    )

    learning_rate: float = Field(default=2e-4, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=10, ge=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    max_grad_norm: float = Field(default=1.0, gt=0)
    decision_weight: float = Field(
        default=1.0, gt=0,
        description="Loss weight of the tokens that spell the verdict, relative to other answer tokens (1: plain mean).",
    )
    epochs: int = Field(default=3, ge=1)
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps (of the plan).")
    tokens_per_batch: int = Field(default=16384, ge=64, description="Packed tokens per optimizer step.")
    max_seq_len: int = Field(default=4096, ge=16, description="Longer examples are skipped and reported.")
    packing: bool = Field(default=True, description="False: length-grouped padded batches instead.")
    seed: int = 0

    checkpoint_every: int = Field(default=50, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)
    resume: bool = Field(default=True, description="Continue from the latest checkpoint in run_dir if any.")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    qlora: bool = Field(default=False, description="Load the base in 4-bit (bitsandbytes; CUDA only).")
    gradient_checkpointing: bool = False
    attn_implementation: Literal["auto", "sdpa", "eager", "calora_varlen"] = "auto"
    compile: bool = Field(default=False, description="torch.compile the decoder layers (CUDA).")
    cuda_graph: bool = Field(
        default=False, description="Pad every packed batch to tokens_per_batch and replay the whole step as one"
        " CUDA graph (packing, one process; on a CPU the same fixed-shape step runs eagerly).",
    )
    log_every: int = Field(default=1, ge=1)

    def dump(self) -> dict[str, object]:
        return json.loads(self.model_dump_json())


def load_config(path: Path, overrides: dict[str, object] | None = None) -> TrainConfig:
    """Read a YAML/JSON config file and apply command-line overrides (those not None)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise TypeError(f"{path}: expected a mapping of config keys")
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return TrainConfig.model_validate(data)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML/JSON TrainConfig; flags below override it")
    parser.add_argument("--reviewer", help="reviewer to train")
    parser.add_argument("--all", action="store_true", help="train every reviewer with data in --data")
    parser.add_argument("--data", dest="data_dir", type=Path, help="output folder of `calora data build`")
    parser.add_argument("--out", dest="run_dir", type=Path, help="run folder (per reviewer with --all)")
    parser.add_argument("--base-model", dest="base_model", help=BASE_MODEL_HELP)
    parser.add_argument("--gguf-file", dest="gguf_file", help="GGUF file in the base model folder ('' for none)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-steps", dest="max_steps", type=int)
    parser.add_argument("--stop-at-step", dest="stop_at_step", type=int,
                        help="checkpoint and exit after this step (the schedule is unchanged; resume later)")
    parser.add_argument("--lr", dest="learning_rate", type=float)
    parser.add_argument("--decision-weight", dest="decision_weight", type=float,
                        help="loss weight of the verdict's tokens against other answer tokens (default 1)")
    parser.add_argument("--lora-r", dest="lora_r", type=int)
    parser.add_argument("--lora-alpha", dest="lora_alpha", type=int)
    parser.add_argument("--tokens-per-batch", dest="tokens_per_batch", type=int)
    parser.add_argument("--checkpoint-every", dest="checkpoint_every", type=int)
    parser.add_argument("--keep-checkpoints", dest="keep_checkpoints", type=int,
                        help="checkpoints kept (default 2); raise it to grade earlier epochs as candidates")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--qlora", action="store_const", const=True)
    parser.add_argument("--gradient-checkpointing", dest="gradient_checkpointing", action="store_const", const=True)
    parser.add_argument("--no-packing", dest="packing", action="store_const", const=False)
    parser.add_argument("--compile", action="store_const", const=True)
    parser.add_argument("--cuda-graph", dest="cuda_graph", action="store_const", const=True,
                        help="fixed-shape steps replayed as one CUDA graph (with --compile: the fastest GPU step)")
    parser.add_argument("--allow-non-language-towers", dest="allow_non_language_towers",
                        action="store_const", const=True)
    parser.add_argument("--seed", type=int)
