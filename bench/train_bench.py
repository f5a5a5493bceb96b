"""LoRA SFT throughput: our trainer's step vs plain transformers + PEFT with padded batches.

One run measures, on the same random batches and the same random-weight model:

  baseline          HF Gemma3ForCausalLM + PEFT LoRA, right-padded [8, max_len] batches with an
                    attention mask, SDPA, `model(..., labels=...)` (full fp32 logits): how the HF
                    defaults train;
  + packing         padding-free rows with cu_seqlens and varlen attention (no pad tokens computed);
  + chunked CE      our `AnswerLossModel`: logits only for target positions, 1 GiB chunks, gradient
                    computed in the forward: never the full [tokens, 262144] fp32 logits;
  + compile         torch.compile of each decoder layer (fuses RMSNorm, rotary, GELU, LoRA adds);
  + fused loss      each loss chunk's softmax and gradient compiled into fused kernels: the fp32 logits
                    never reach memory;
  + bf16 LoRA input PEFT's cast of every adapted layer's input to the adapter's fp32 turned off (autocast
                    casts it back before the matmul, so the numbers are the same);
  + fused AdamW     one optimizer kernel for every adapter tensor.

Shape: Gemma-3 1B text (hidden 1152, intermediate 6912, 26 layers, 4 heads, 1 KV head, head_dim 256,
vocab 262144; other Gemma3TextConfig fields at their defaults), LoRA r=16 on every linear layer of
the decoder, bf16 weights with autocast, AdamW. Batches of 8 sequences, lengths uniform in [256, 1024].
Useful tokens = non-pad tokens. MFU counts the matmul FLOPs a frozen-base LoRA step must do
(forward 2·P, activation gradients 2·P; no weight gradients for the frozen base) plus attention,
per useful token, over the GPU's dense bf16 peak.

    python bench/train_bench.py                 # GPU; writes bench/results/train-<device>.json
    python bench/train_bench.py --tiny          # a tiny shape on CPU, for debugging
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import random
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.attention import VARLEN_ATTENTION, register_varlen_attention, torch_varlen_available
from training.base_model import keep_lora_inputs_in_autocast_dtype
from training.graph_step import GraphedStep, StaticShape, sequence_slots
from training.loss import AnswerLossModel
from training.packing import IGNORE_INDEX, TokenizedExample, collate_packed, collate_padded, pack_batches

GEMMA3_1B = {"hidden_size": 1152, "intermediate_size": 6912, "num_hidden_layers": 26, "num_attention_heads": 4,
             "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 262144}
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 1000}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def make_batches(steps: int, batch: int, lo: int, hi: int, vocab: int, seed: int) -> list[list[TokenizedExample]]:
    """Random token sequences; every position but the last has a target (like an all-answer SFT row)."""
    rng = random.Random(seed)
    out = []
    for s in range(steps):
        seqs = []
        for i in range(batch):
            n = rng.randint(lo, hi)
            ids = tuple(rng.randrange(vocab) for _ in range(n))
            seqs.append(TokenizedExample(f"{s}-{i}", ids, (*ids[1:], IGNORE_INDEX)))
        out.append(seqs)
    return out


def build_model(shape: dict[str, int], device: torch.device, dtype: torch.dtype) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(**shape)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = Gemma3ForCausalLM(config).to(dtype)
    model.requires_grad_(False)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def flops_per_token(shape: dict[str, int], mean_len: float) -> float:
    """Matmul FLOPs of one frozen-base LoRA training token (forward + activation gradients)."""
    d, f, L = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    q = shape["num_attention_heads"] * shape["head_dim"]
    kv = shape["num_key_value_heads"] * shape["head_dim"]
    per_layer = d * q + 2 * d * kv + q * d + 3 * d * f
    params = L * per_layer + shape["vocab_size"] * d  # + output projection
    attention_fwd = L * 4 * q * mean_len / 2  # QKᵀ and PV over the causal half of the sequence
    return 4 * params + 3 * attention_fwd


def baseline_step(model: Any, seqs: list[TokenizedExample], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    batch = collate_padded(seqs, pad_id=0).to(device)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, IGNORE_INDEX)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels, use_cache=False)
    return out.loss


def packed_full_logits_step(model: Any, seqs: list[TokenizedExample], device: torch.device,
                            dtype: torch.dtype) -> torch.Tensor:
    batch = collate_packed(seqs).to(device)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        out = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False,
                    cu_seq_lens_q=batch.cu_seqlens, cu_seq_lens_k=batch.cu_seqlens,
                    max_length_q=batch.max_seqlen, max_length_k=batch.max_seqlen)
        logits = out.logits.float()
    return torch.nn.functional.cross_entropy(logits[0], batch.targets[0], ignore_index=IGNORE_INDEX)


def ours_step(loss_model: AnswerLossModel, seqs: list[TokenizedExample], device: torch.device,
              dtype: torch.dtype) -> torch.Tensor:
    batch = collate_packed(seqs).to(device)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        return loss_model(batch.input_ids, batch.position_ids, batch.targets, None, batch.cu_seqlens,
                          batch.max_seqlen)


@dataclass(frozen=True)
class GraphSetup:
    """What a CUDA-graphed variant needs besides the model: the loss module, the one shape, the dtype."""

    loss_model: AnswerLossModel
    shape: StaticShape
    dtype: torch.dtype


def graph_shape(tokens: int, lo: int, hi: int) -> StaticShape:
    """The fixed shape of a graphed step over sequences of lo..hi tokens: as many sequences as fit, plus the
    padding segments (at most hi tokens each) that fill the step."""
    return StaticShape(tokens, sequence_slots(tokens // lo, tokens, hi), max_seqlen=hi)


def budget_batches(batches: list[list[TokenizedExample]], tokens: int) -> list[list[TokenizedExample]]:
    """The same sequences in the same order, packed into steps of at most `tokens` (the trainer's packing)."""
    flat = [s for b in batches for s in b]
    groups = pack_batches([s.length for s in flat], range(len(flat)), tokens)
    return [[flat[i] for i in g] for g in groups]


def run_variant(name: str, step_fn: Any, model: Any, batches: list[list[TokenizedExample]], warmup: int,
                device: torch.device, fused_adamw: bool = False, graph: GraphSetup | None = None) -> dict[str, Any]:
    """Times `step_fn(seqs) -> loss` + backward + AdamW; with `graph`, a GraphedStep does the whole step."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=fused_adamw or graph is not None,
                                  capturable=graph is not None)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if graph is not None:
        graphed = GraphedStep(graph.loss_model, optimizer, graph.shape, device, graph.dtype)
    losses, times, useful = [], [], []
    for i, seqs in enumerate(batches):
        t0 = time.perf_counter()
        if graph is not None:
            loss = graphed(collate_packed(seqs))
        else:
            loss = step_fn(seqs)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())  # synchronizes
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
            useful.append(sum(s.length for s in seqs))
    result: dict[str, Any] = {
        "name": name, "first_loss": losses[0], "losses": [round(x, 5) for x in losses], "timed_steps": len(times),
        "step_s_mean": sum(times) / len(times),
        "useful_tokens_per_s": sum(useful) / sum(times),
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        result["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    print(f"  {name:<34} {result['useful_tokens_per_s']:>10.0f} useful tok/s  "
          f"{result.get('peak_memory_gib', float('nan')):6.1f} GiB  first loss {losses[0]:.4f}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny shape on CPU (debugging)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--graph-tokens", type=int, default=8192, help="the token budget of the packed graph step")
    parser.add_argument("--only", default=None, help="comma-separated variant numbers to run (0 = baseline)")
    args = parser.parse_args(argv)

    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    shape = TINY if args.tiny else GEMMA3_1B
    lo, hi = (16, 64) if args.tiny else (256, 1024)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    steps = args.steps or (2 if args.tiny else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)
    register_varlen_attention()
    # twice what a variant uses: the token-budget variant repacks the same stream into fewer, fuller steps
    batches = make_batches(2 * (steps + warmup + 5), 8, lo, hi, shape["vocab_size"], seed=1234)
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or "cpu")
    print(f"device: {device_name}; torch {torch.__version__}; varlen flash kernel: {torch_varlen_available()}",
          flush=True)

    model = build_model(shape, device, dtype)
    loss_model = AnswerLossModel(model)

    def ours(seqs: list[TokenizedExample]) -> torch.Tensor:
        return ours_step(loss_model, seqs, device, dtype)

    variants: list[tuple[str, list[str], Any]] = [
        ("baseline (HF padded + PEFT)", [], lambda s: baseline_step(model, s, device, dtype)),
        ("packing", ["packing"], lambda s: packed_full_logits_step(model, s, device, dtype)),
        ("packing + chunked CE (ours)", ["packing", "chunked_ce"], ours),
    ]
    if not args.no_compile and device.type == "cuda":  # on CPU the varlen path is a Python loop: no use
        compiled = ["packing", "chunked_ce", "compile"]
        variants += [(name, levers, ours) for name, levers in (  # the same step; the levers set it up
            ("packing + chunked CE + compile", compiled),
            ("+ fused loss chunk", [*compiled, "fused_loss"]),
            ("+ bf16 LoRA inputs", [*compiled, "fused_loss", "bf16_lora_inputs"]),
            ("+ fused AdamW (ours)", [*compiled, "fused_loss", "bf16_lora_inputs", "fused_adamw"]),
            ("+ CUDA graph of the step (8 seqs padded to 8,192)", [*compiled, "fused_loss", "bf16_lora_inputs",
                                                                   "fused_adamw", "cuda_graph"]),
            (f"+ steps packed to {args.graph_tokens:,} tokens", [*compiled, "fused_loss", "bf16_lora_inputs",
                                                                "fused_adamw", "cuda_graph", "token_budget"]),
        )]
    if args.only:  # the baseline always runs: every ratio is against it
        keep = {0, *(int(k) for k in args.only.split(","))}
        variants = [v for i, v in enumerate(variants) if i in keep]
    initial = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}
    results = []
    compiled_layers = False
    for name, levers, fn in variants:
        model.load_state_dict(initial, strict=False)  # every variant starts from the same adapter
        impl = "sdpa" if not levers else VARLEN_ATTENTION
        model.get_base_model().config._attn_implementation = impl
        if "compile" in levers and not compiled_layers:
            for layer in model.get_base_model().model.layers:
                layer.compile(dynamic=True)
            compiled_layers = True
        loss_model.fused_loss = "fused_loss" in levers
        if "bf16_lora_inputs" in levers:  # one way: the variants after it keep it
            keep_lora_inputs_in_autocast_dtype(model)
        extra_warmup = 3 if "compile" in levers else 0
        graph = None
        use = batches[: warmup + extra_warmup + steps]
        if "cuda_graph" in levers:  # three eager steps, the recording, then replays
            extra_warmup = 5
            tokens = args.graph_tokens if "token_budget" in levers else 8 * hi
            source = budget_batches(batches, tokens) if "token_budget" in levers else batches
            use = source[: warmup + extra_warmup + steps]
            graph = GraphSetup(loss_model, graph_shape(tokens, lo, hi), dtype)
        try:
            res = run_variant(name, fn, model, use, warmup + extra_warmup, device, "fused_adamw" in levers,
                              graph)
        except Exception as exc:  # noqa: BLE001  (a lever that fails is recorded, not fatal)
            traceback.print_exc()
            res = {"name": name, "error": f"{type(exc).__name__}: {exc}"[:500]}
        res["levers"] = levers
        res["attn_implementation"] = impl
        results.append(res)
        write_report(args, device_name, shape, lo, hi, steps, warmup, dtype, results)

    return 0


def write_report(args: argparse.Namespace, device_name: str, shape: dict[str, int], lo: int, hi: int, steps: int,
                 warmup: int, dtype: torch.dtype, results: list[dict[str, Any]]) -> None:
    """Derived figures and the JSON file; rewritten after every variant so a cut-off run keeps its numbers."""
    base = results[0]
    mean_len = (lo + hi) / 2
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device_name), None)
    for res in results:
        if "useful_tokens_per_s" not in res or "useful_tokens_per_s" not in base:
            continue
        res["speedup_vs_baseline"] = res["useful_tokens_per_s"] / base["useful_tokens_per_s"]
        if "peak_memory_gib" in res and "peak_memory_gib" in base:
            res["peak_memory_ratio"] = res["peak_memory_gib"] / base["peak_memory_gib"]
        if peak:
            res["mfu"] = res["useful_tokens_per_s"] * flops_per_token(shape, mean_len) / (peak * 1e12)
    fits = [r for r in results[1:] if "speedup_vs_baseline" in r and r.get("peak_memory_ratio", 1.0) <= 1.0]
    best = max(fits, key=lambda r: r["speedup_vs_baseline"], default=None)
    gains = []
    for prev, cur in itertools.pairwise(results):
        if "useful_tokens_per_s" in prev and "useful_tokens_per_s" in cur:
            gains.append({"lever": cur["levers"][-1], "gain": cur["useful_tokens_per_s"] / prev["useful_tokens_per_s"],
                          "memory_gib_before": prev.get("peak_memory_gib"), "memory_gib_after": cur.get("peak_memory_gib")})
    report = {
        "device": device_name, "torch": torch.__version__, "shape": shape if args.tiny else {"name": "gemma-3-1b-text", **shape},
        "lora": {"r": 16, "alpha": 32, "targets": "all-linear (decoder)"},
        "batch": {"sequences": 8, "length_uniform": [lo, hi], "timed_steps": steps, "warmup_steps": warmup},
        "dtype": str(dtype).removeprefix("torch."), "peak_bf16_tflops": peak,
        "baseline": base, "ours": best,
        "speedup_vs_baseline": best["speedup_vs_baseline"] if best else None,
        "peak_memory_ratio": best.get("peak_memory_ratio") if best else None,
        "lever_gains": gains, "variants": results,
        "anchor": "H100: baseline 11.7k useful tokens/s at 51 GiB without gradient checkpointing (issue 5)",
    }
    slug = re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-") or "cpu"
    out = args.out or REPO / "bench" / "results" / f"train-{'tiny-' if args.tiny else ''}{slug}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"  -> speedup_vs_baseline: {report['speedup_vs_baseline']}; peak_memory_ratio: "
          f"{report['peak_memory_ratio']}; wrote {out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
