"""LoRA supervised fine-tuning of one reviewer: config in, batches, step, log, checkpoint.

Runs on CPU (tests), one GPU, or several GPUs through `accelerate launch -m training.train ...`. Several
processes split the work two ways: one reviewer (`--reviewer`) is data parallel (each rank takes every
world-th packed batch; DDP averages gradients); `--all` shards the reviewers instead (each process trains
whole reviewers alone on its own device, `assign_reviewers`), which needs no gradient traffic and gives
each adapter exactly the single-process result. Exact resumption:
checkpoints hold the adapter, optimizer, scheduler, RNG states and the step, and the data order is a
pure function of (seed, epoch), so a resumed run replays the same batches with the same state.

Speed comes from three named choices, each explained where it is made: padding-free packing with
varlen attention (`training.packing`, `training.attention`), answer-only chunked cross-entropy
(`training.loss`), and bf16 on GPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import resource
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from training.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from training.config import TrainConfig, add_arguments, load_config
from training.packing import (
    PackedBatch,
    TokenizedExample,
    collate_packed,
    collate_padded,
    epoch_order,
    length_grouped_batches,
    pack_batches,
    tokenize_chat,
)

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """A run that cannot start or continue; the message says what to fix."""


@dataclass(frozen=True)
class Runtime:
    """What "auto" resolved to on this machine."""

    device: torch.device
    dtype: torch.dtype
    attn_implementation: str
    world_size: int  # processes sharing this reviewer's batches (1 when a process trains it alone)
    rank: int

    @property
    def is_main(self) -> bool:
        """The process that writes this reviewer's run folder."""
        return self.rank == 0


@dataclass(frozen=True)
class TrainOutcome:
    """One reviewer's training in this invocation: where its adapter goes and what the run cost."""

    reviewer: str
    adapter_dir: Path
    finished: bool  # the final adapter was written (False: stopped early by stop_at_step)
    steps: int  # optimizer steps taken in this invocation (a resumed run counts only its own)
    tokens: int  # tokens trained on in those steps, over every process sharing the reviewer
    wall_s: float  # from the call to the return: model load, steps, checkpoints, adapter

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0


# --- data -------------------------------------------------------------------------------------------

def read_chat_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise TrainingError(f"{path} does not exist; run `calora data build` first")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TrainingError(f"{path}:{n}: not JSON: {exc}") from exc
    if not records:
        raise TrainingError(f"{path} holds no examples")
    return records


def tokenize_records(
    records: list[dict[str, Any]], tokenizer: Any, max_seq_len: int, mark_decision: bool = False
) -> tuple[list[TokenizedExample], list[str]]:
    """Tokenized examples within `max_seq_len`, and the ids of those skipped as too long."""
    kept: list[TokenizedExample] = []
    skipped: list[str] = []
    for rec in records:
        ex = tokenize_chat(rec["id"], rec["messages"], tokenizer, mark_decision=mark_decision)
        if ex.length <= max_seq_len:
            kept.append(ex)
        else:
            skipped.append(ex.example_id)
    if not kept:
        raise TrainingError(f"every example is longer than max_seq_len={max_seq_len}")
    return kept, skipped


def plan_batches(examples: list[TokenizedExample], cfg: TrainConfig) -> list[list[int]]:
    """Every batch of the run, in order: a pure function of the data and the config."""
    lengths = [ex.length for ex in examples]
    batches: list[list[int]] = []
    for epoch in range(cfg.epochs):
        order = epoch_order(len(examples), cfg.seed, epoch)
        if cfg.packing:
            batches += pack_batches(lengths, order, cfg.tokens_per_batch)
        else:
            batches += length_grouped_batches(lengths, order, cfg.tokens_per_batch)
    return batches


def collate(examples: list[TokenizedExample], cfg: TrainConfig, pad_id: int) -> PackedBatch:
    return collate_packed(examples) if cfg.packing else collate_padded(examples, pad_id)


# --- setup ------------------------------------------------------------------------------------------

def wants_bf16(cfg: TrainConfig) -> bool:
    """bf16 weights and autocast on GPU (twice the matrix throughput, half the memory); fp32 on CPU."""
    on_cuda = cfg.device != "cpu" and torch.cuda.is_available()
    return cfg.precision == "bf16" or (cfg.precision == "auto" and on_cuda)


def resolve_runtime(cfg: TrainConfig, accelerator: Any, alone: bool = False) -> Runtime:
    device = accelerator.device
    if cfg.device == "cuda" and device.type != "cuda":
        raise TrainingError("device=cuda was asked for but no CUDA GPU is visible")
    bf16 = wants_bf16(cfg)
    if cfg.attn_implementation != "auto":
        attn = cfg.attn_implementation
    else:
        # Packed rows need attention that stops at sequence boundaries; `calora_varlen` does this with
        # flash kernels on CUDA and an exact per-sequence SDPA loop elsewhere. Padded batches use SDPA.
        attn = "calora_varlen" if cfg.packing else "sdpa"
    world_size, rank = (1, 0) if alone else (accelerator.num_processes, accelerator.process_index)
    return Runtime(device, torch.bfloat16 if bf16 else torch.float32, attn, world_size, rank)


def lr_lambda(total_steps: int, warmup: int, min_ratio: float) -> Any:
    """Linear warm-up, then cosine decay to `min_ratio` of the peak."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop metric rows after the checkpoint we resume from (a crash may have logged a few more)."""
    if not path.is_file():
        return
    rows = [r for r in path.read_text(encoding="utf-8").splitlines() if r.strip()]
    kept = [r for r in rows if json.loads(r)["step"] <= last_step]
    path.write_text("".join(r + "\n" for r in kept), encoding="utf-8")


# --- the run ----------------------------------------------------------------------------------------

def train(cfg: TrainConfig, stop_at_step: int | None = None) -> Path:
    """Train one adapter; returns the folder of the final adapter (PEFT format).

    `stop_at_step` ends this invocation early after checkpointing at that step, without changing
    the schedule: a time-boxed job continues later with the same config.
    """
    return train_reviewer(cfg, stop_at_step).adapter_dir


def train_reviewer(cfg: TrainConfig, stop_at_step: int | None = None, alone: bool = False) -> TrainOutcome:
    """`train`, with what the run cost. `alone`: this process trains the reviewer by itself even when
    several were launched (reviewer sharding): no DDP wrapper, no collective, its own device."""
    from accelerate import Accelerator

    from reviewers.adapter_manifest import AdapterManifest, write_manifest
    from reviewers.models import base_weights_sha256
    from training.attention import register_varlen_attention
    from training.base_model import (
        attach_lora,
        base_ref,
        keep_lora_inputs_in_autocast_dtype,
        load_base_model,
        load_tokenizer,
    )
    from training.loss import AnswerLossModel

    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    accelerator = Accelerator(cpu=cfg.device == "cpu", mixed_precision="bf16" if wants_bf16(cfg) else "no")
    rt = resolve_runtime(cfg, accelerator, alone)
    register_varlen_attention()
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoints_dir = run_dir / "checkpoints"
    metrics_path = run_dir / "metrics.jsonl"

    tokenizer = load_tokenizer(cfg)
    records = read_chat_records(cfg.data_dir / cfg.reviewer / "train.jsonl")
    examples, skipped = tokenize_records(records, tokenizer, cfg.max_seq_len,
                                         mark_decision=cfg.decision_weight != 1.0)
    if skipped:
        log.warning("skipped %d examples over max_seq_len=%d: %s", len(skipped), cfg.max_seq_len, skipped[:5])
    batches = plan_batches(examples, cfg)
    total_steps = len(batches) // rt.world_size
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    if total_steps == 0:
        raise TrainingError(f"{len(batches)} batches cannot feed {rt.world_size} processes one step")

    model = load_base_model(cfg.model_copy(update={"attn_implementation": rt.attn_implementation}),
                            rt.device, rt.dtype)
    peft_model, targets, adapted = attach_lora(model, cfg)
    base = base_ref(cfg)
    # what every loader checks before it puts this adapter on a base model (reviewers/adapter_manifest.py)
    manifest = AdapterManifest(reviewer=cfg.reviewer, base_model=base.name,
                               base_sha256=base_weights_sha256(base), rank=cfg.lora_r,
                               lora_alpha=cfg.lora_alpha, target_modules=targets)
    if wants_bf16(cfg):
        keep_lora_inputs_in_autocast_dtype(peft_model)
    loss_model = AnswerLossModel(peft_model, decision_weight=cfg.decision_weight)
    if cfg.compile:
        # Fuses norms, rotary and activations inside each decoder layer; the layers share one graph.
        for layer in peft_model.get_base_model().get_decoder().layers:
            layer.compile(dynamic=True)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    graphed = rt.device.type == "cuda" and cfg.cuda_graph
    if cfg.cuda_graph and (not cfg.packing or (rt.world_size > 1 and not alone)):
        raise TrainingError("--cuda-graph needs packed batches and one process (no DDP); drop --no-packing "
                            "or train reviewers one per process")
    # fused: one kernel for every adapter tensor's update on CUDA (the foreach path launches several);
    # capturable, with the learning rate on the GPU, when a CUDA graph records the update
    optimizer = torch.optim.AdamW(trainable, weight_decay=cfg.weight_decay, fused=rt.device.type == "cuda",
                                  lr=torch.tensor(cfg.learning_rate, device=rt.device) if graphed else cfg.learning_rate,
                                  capturable=graphed)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total_steps, cfg.warmup_steps, cfg.min_lr_ratio)
    )
    fixed_step = None
    if cfg.cuda_graph:
        from training.graph_step import GraphedStep, StaticShape, sequence_slots

        # room for the fullest planned batch (a sequence over the budget is a batch of its own) plus the
        # padding segments that fill it up to the budget
        fullest = max(sum(examples[i].length for i in b) for b in batches)
        shape = StaticShape(tokens=max(cfg.tokens_per_batch, fullest), max_seqlen=cfg.max_seq_len,
                            max_sequences=sequence_slots(max(map(len, batches)), cfg.tokens_per_batch, cfg.max_seq_len),
                            decision_mask=cfg.decision_weight != 1.0)
        fixed_step = GraphedStep(loss_model, optimizer, shape, rt.device, rt.dtype, use_graph=graphed,
                                 before_update=lambda: torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm))
    if alone:
        # evaluation_mode only skips the DDP wrapper: autocast and device placement are as in `prepare`
        loss_model = accelerator.prepare_model(loss_model, evaluation_mode=True)
        optimizer = accelerator.prepare_optimizer(optimizer)
    else:
        loss_model, optimizer = accelerator.prepare(loss_model, optimizer)

    # base_model as resolved (the default's name, or the .gguf path), so eval and the console reload that base
    resolved = {**cfg.model_copy(update={"base_model": base.name, "gguf_file": None}).dump(), "resolved": {
        "device": str(rt.device), "dtype": str(rt.dtype).removeprefix("torch."), "world_size": rt.world_size,
        "attn_implementation": rt.attn_implementation, "target_modules": targets, "adapted_modules": adapted,
        "base_model": base.name, "base_sha256": manifest.base_sha256,
        "trainable_parameters": sum(p.numel() for p in trainable), "examples": len(examples),
        "skipped_over_max_seq_len": skipped, "total_steps": total_steps,
        "packing": "padding-free (cu_seqlens)" if cfg.packing else "length-grouped padded batches",
    }}
    if rt.is_main:
        (run_dir / "config.json").write_text(json.dumps(resolved, indent=2), encoding="utf-8")

    start_step, tokens_seen = 0, 0
    latest = latest_checkpoint(checkpoints_dir) if cfg.resume else None
    if latest is not None:
        state = load_checkpoint(latest, peft_model, optimizer, scheduler)
        start_step, tokens_seen = state["step"], state["tokens_seen"]
        if state.get("total_steps") != total_steps:
            raise TrainingError(f"{latest} belongs to a plan of {state.get('total_steps')} steps, this one has "
                                f"{total_steps}; use a fresh run_dir or the same config")
        log.info("resuming from %s (step %d)", latest, start_step)
        if graphed:  # a recorded update reads the learning rate from the GPU: a float would be frozen in it
            for group in optimizer.param_groups:
                group["lr"] = torch.as_tensor(group["lr"], dtype=torch.float32, device=rt.device)
    if rt.is_main:
        truncate_metrics(metrics_path, start_step)
    tokens_at_start = tokens_seen

    pad_id = tokenizer.pad_token_id
    end_step = min(total_steps, stop_at_step) if stop_at_step else total_steps
    bar = tqdm(total=total_steps, initial=start_step, desc=f"train {cfg.reviewer}", file=sys.stderr,
               disable=not rt.is_main, dynamic_ncols=True)
    loss_model.train()
    for step in range(start_step, end_step):
        batch = collate([examples[i] for i in batches[step * rt.world_size + rt.rank]], cfg, pad_id)
        if fixed_step is None:  # the fixed step pads the batch on the host and moves it once
            batch = batch.to(rt.device)
        t0 = time.perf_counter()
        lr = float(scheduler.get_last_lr()[0])
        if fixed_step is not None:  # forward, backward, clipping and the update, as one recorded graph
            loss = fixed_step(batch)
        else:
            with accelerator.autocast():
                loss = loss_model(batch.input_ids, batch.position_ids, batch.targets, batch.attention_mask,
                                  batch.cu_seqlens, batch.max_seqlen, batch.decision_mask)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(trainable, cfg.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        step_loss = _over_ranks(accelerator, rt, loss.detach(), "mean").item()  # .item() also waits for the GPU
        counts = _over_ranks(accelerator, rt, torch.tensor([batch.tokens, batch.answer_tokens], device=rt.device),
                             "sum")
        step_tokens, step_answer_tokens = (int(c) for c in counts.tolist())
        elapsed = time.perf_counter() - t0
        tokens_seen += step_tokens
        done = step + 1
        if rt.is_main and (done % cfg.log_every == 0 or done == end_step):
            row = {"step": done, "loss": step_loss, "lr": lr, "tokens": step_tokens,
                   "answer_tokens": step_answer_tokens, "tokens_per_s": step_tokens / elapsed,
                   "memory_gib": round(peak_memory_gib(rt.device), 3), "tokens_seen": tokens_seen}
            with metrics_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{step_tokens / elapsed:.0f}")
        bar.update(1)
        if rt.is_main and (done % cfg.checkpoint_every == 0 or done == end_step):
            saved = save_checkpoint(checkpoints_dir, done, accelerator.unwrap_model(loss_model).lm, optimizer,
                                    scheduler, {"tokens_seen": tokens_seen, "total_steps": total_steps},
                                    cfg.keep_checkpoints)
            write_manifest(saved / "adapter", manifest)
        _wait_for_ranks(accelerator, rt)
    bar.close()

    adapter_dir = run_dir / "adapter"
    if end_step == total_steps and rt.is_main:
        accelerator.unwrap_model(loss_model).lm.save_pretrained(adapter_dir)
        write_manifest(adapter_dir, manifest)
        _plot(metrics_path, run_dir / "loss.png", cfg.reviewer)
    _wait_for_ranks(accelerator, rt)
    return TrainOutcome(cfg.reviewer, adapter_dir, end_step == total_steps, max(0, end_step - start_step),
                        tokens_seen - tokens_at_start, time.perf_counter() - started)


def _over_ranks(accelerator: Any, rt: Runtime, value: torch.Tensor, reduction: str) -> torch.Tensor:
    """`value` reduced over the processes sharing this reviewer; a process training alone keeps its own
    (a collective there would wait for processes busy with other reviewers)."""
    return accelerator.reduce(value, reduction) if rt.world_size > 1 else value


def _wait_for_ranks(accelerator: Any, rt: Runtime) -> None:
    if rt.world_size > 1:
        accelerator.wait_for_everyone()


def _plot(metrics_path: Path, png: Path, title: str) -> None:
    try:
        from training.report import plot_loss
    except ImportError as exc:  # matplotlib is a dev extra
        log.info("no loss plot (%s)", exc)
        return
    plot_loss(metrics_path, png, title)


# --- command line (also the entry point for `accelerate launch -m training.train`) ------------------

_NOT_CONFIG = {"config", "all", "stop_at_step", "handler", "command", "verbose", "data_command", "adapters_command"}


def configs_from_args(args: argparse.Namespace) -> list[TrainConfig]:
    """One config per reviewer to train, from --config plus flag overrides."""
    overrides = {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG and v is not None}
    if overrides.get("gguf_file") == "":
        overrides["gguf_file"] = None
    base: dict[str, Any] = {}
    if args.config:
        base = load_config(args.config).model_dump(exclude_unset=True)
    base.update(overrides)
    if args.all:
        data_dir = Path(base.get("data_dir", "build/data"))
        reviewers = sorted(p.parent.name for p in data_dir.glob("*/train.jsonl"))
        if not reviewers:
            raise TrainingError(f"no <reviewer>/train.jsonl under {data_dir}; run `calora data build` first")
        root = Path(base.get("run_dir", "runs/train"))
        return [TrainConfig.model_validate({**base, "reviewer": r, "run_dir": root / r}) for r in reviewers]
    if "reviewer" not in base:
        raise TrainingError("give --reviewer NAME or --all")
    return [TrainConfig.model_validate(base)]


def assign_reviewers(costs: Mapping[str, int], processes: int) -> list[list[str]]:
    """Reviewers per process, balanced by cost: the costliest first, each to the least loaded process
    (ties: the lower process). Every process computes the same answer from the same data."""
    shards: list[list[str]] = [[] for _ in range(processes)]
    loads = [0] * processes
    for reviewer in sorted(costs, key=lambda r: (-costs[r], r)):
        target = min(range(processes), key=lambda p: (loads[p], p))
        shards[target].append(reviewer)
        loads[target] += costs[reviewer]
    return shards


def training_cost(cfg: TrainConfig) -> int:
    """What a reviewer's training costs, for balancing: its data's bytes times its epochs (tokens follow
    bytes closely, and reading sizes keeps tokenizing out of the plan)."""
    return (cfg.data_dir / cfg.reviewer / "train.jsonl").stat().st_size * cfg.epochs


def train_all(configs: list[TrainConfig], stop_at_step: int | None = None) -> Path:
    """Train every reviewer; with several processes each trains its share alone (`assign_reviewers`).

    Each process writes `<runs>/processes/process-<i>.json` (its reviewers, tokens, wall); the first then
    writes `<runs>/summary.json` with those and the total (the wall of the slowest, tokens of all).
    Returns the summary's path.
    """
    from accelerate import PartialState

    state = PartialState(cpu=configs[0].device == "cpu")
    processes, index = state.num_processes, state.process_index
    shards = assign_reviewers({cfg.reviewer: training_cost(cfg) for cfg in configs}, processes)
    mine = [cfg for cfg in configs if cfg.reviewer in shards[index]]
    if not mine:
        log.warning("process %d of %d has no reviewer to train (%d reviewers)", index, processes, len(configs))
    runs_root = configs[0].run_dir.parent
    state.wait_for_everyone()
    started = time.perf_counter()
    outcomes = [train_reviewer(cfg, stop_at_step, alone=processes > 1) for cfg in mine]
    wall = time.perf_counter() - started
    share = process_figures(index, str(state.device), outcomes, wall)
    (runs_root / "processes").mkdir(parents=True, exist_ok=True)
    (runs_root / "processes" / f"process-{index}.json").write_text(json.dumps(share, indent=2), encoding="utf-8")
    state.wait_for_everyone()
    summary_path = runs_root / "summary.json"
    if state.is_main_process:
        shares = [json.loads((runs_root / "processes" / f"process-{i}.json").read_text(encoding="utf-8"))
                  for i in range(processes)]
        summary = run_summary(shares, time.perf_counter() - started)
        summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    state.wait_for_everyone()
    return summary_path


def process_figures(index: int, device: str, outcomes: list[TrainOutcome], wall_s: float) -> dict[str, Any]:
    tokens = sum(o.tokens for o in outcomes)
    return {
        "process": index, "device": device, "wall_s": round(wall_s, 3), "tokens": tokens,
        "tokens_per_s": round(tokens / wall_s, 1) if wall_s > 0 else 0.0,
        "reviewers": [{**{k: v for k, v in asdict(o).items() if k != "adapter_dir"},
                       "adapter_dir": str(o.adapter_dir), "wall_s": round(o.wall_s, 3),
                       "tokens_per_s": round(o.tokens_per_s, 1)} for o in outcomes],
    }


def run_summary(shares: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """The whole run from each process's share: the total's wall is the run's (the slowest process)."""
    tokens = sum(s["tokens"] for s in shares)
    return {
        "processes": len(shares),
        "plan": "reviewers sharded over processes" if len(shares) > 1 else "one process",
        "total": {"wall_s": round(wall_s, 3), "tokens": tokens,
                  "tokens_per_s": round(tokens / wall_s, 1) if wall_s > 0 else 0.0,
                  "reviewers": sorted(r["reviewer"] for s in shares for r in s["reviewers"])},
        "per_process": shares,
    }


def run_from_args(args: argparse.Namespace) -> int:
    configs = configs_from_args(args)
    if args.all:
        summary = train_all(configs, stop_at_step=args.stop_at_step)
        print(summary)
        return 0
    for cfg in configs:
        adapter = train(cfg, stop_at_step=args.stop_at_step)
        print(adapter)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
