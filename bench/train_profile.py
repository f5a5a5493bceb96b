"""Where a LoRA training step's time goes on the 1B shape: the profile behind issue #18's MFU item.

`bench/train_bench.py` says how fast our step is; this says why. One run:

  ceilings   a bf16 matrix product of the decoder's largest shape and a device-to-device copy, measured
             here (the floor of a step is its FLOPs over the first and its bytes over the second);
  variants   our step (packing + chunked CE + per-layer compile) as it was ("before") and with this
             round's levers ("after": fused loss chunk, bf16 LoRA inputs, fused AdamW; "after-seqs16":
             twice the sequences a step), each timed the way train_bench.py times it;
  profile    for "before" and "after", torch.profiler over a few steps: GPU time by kind (base matmuls,
             LoRA matmuls, attention, the loss, fused element-wise, optimizer), the idle share of the GPU,
             and the top kernels.

    python bench/train_profile.py --out DIR [--variants current,seqs16,...]

Writes DIR/train-profile.json (figures), DIR/profile-kernels-<variant>.txt and profile-shapes-<variant>.txt.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from train_bench import (
    GEMMA3_1B,
    PEAK_BF16_TFLOPS,
    budget_batches,
    build_model,
    flops_per_token,
    graph_shape,
    make_batches,
)

from training.attention import VARLEN_ATTENTION, register_varlen_attention
from training.base_model import keep_lora_inputs_in_autocast_dtype
from training.graph_step import GraphedStep
from training.loss import AnswerLossModel
from training.packing import IGNORE_INDEX, TokenizedExample, collate_packed


def measure_ceilings(device: torch.device) -> dict[str, float]:
    """Dense bf16 matmul TFLOP/s at the MLP's shape and copy GB/s (read + write), medians of 20."""
    def timed(fn: Any, reps: int = 20) -> float:
        for _ in range(3):
            fn()
        times = []
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return statistics.median(times)

    a = torch.randn(8192, 1152, device=device, dtype=torch.bfloat16)
    b = torch.randn(1152, 6912, device=device, dtype=torch.bfloat16)
    t_mm = timed(lambda: a @ b)
    src = torch.randn(256 * 2**20, device=device, dtype=torch.bfloat16)  # 512 MiB
    dst = torch.empty_like(src)
    t_copy = timed(lambda: dst.copy_(src))
    return {"matmul_tflops": 2 * 8192 * 1152 * 6912 / t_mm / 1e12,
            "copy_gbps": 2 * src.numel() * 2 / t_copy / 1e9}


def kernel_kind(name: str) -> str:
    """A kernel's job, read from its name (cuBLAS/CUTLASS, flash, Triton from inductor, ATen)."""
    low = name.lower()
    if any(k in low for k in ("flash", "fmha", "attn", "attention")):
        return "attention"
    if any(k in low for k in ("gemm", "cutlass", "xmma", "nvjet", "sm90", "cublas", "matmul")):
        return "matmul"
    if low.startswith("triton") or "triton" in low:
        return "fused (triton)"
    if any(k in low for k in ("adam", "foreach", "multi_tensor")):
        return "optimizer"
    if any(k in low for k in ("logsumexp", "reduce", "softmax", "gather", "scatter", "index")):
        return "reduce/index"
    if any(k in low for k in ("elementwise", "vectorized", "copy", "fill", "cast")):
        return "element-wise (aten)"
    return "other"


def profile_steps(step: Any, batches: list[Any], out: Path, tag: str) -> dict[str, Any]:
    """GPU time by kind over the given steps, plus matmul time split by shape (LoRA's have a 16)."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
        t0 = time.perf_counter()
        for seqs in batches:
            step(seqs)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    kinds: dict[str, float] = defaultdict(float)
    kernels: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    busy = 0.0
    for evt in prof.events():
        if getattr(evt, "device_type", None) != torch.autograd.DeviceType.CUDA:
            continue
        if evt.name.startswith(("## ", "Optimizer.")):  # ranges the profiler draws around kernels, not kernels
            continue
        us = evt.time_range.elapsed_us()
        busy += us
        kinds[kernel_kind(evt.name)] += us
        kernels[evt.name][0] += us
        kernels[evt.name][1] += 1
    n = len(batches)
    top = sorted(kernels.items(), key=lambda kv: -kv[1][0])[:60]
    lines = [f"{'ms/step':>9} {'calls/step':>10}  kernel"]
    lines += [f"{v[0] / 1e3 / n:9.3f} {v[1] / n:10.1f}  {k[:160]}" for k, v in top]
    (out / f"profile-kernels-{tag}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sort_key = "self_device_time_total"
    try:
        shapes = prof.key_averages(group_by_input_shape=True).table(sort_by=sort_key, row_limit=80)
    except Exception:  # noqa: BLE001  (older torch names the column cuda)
        shapes = prof.key_averages(group_by_input_shape=True).table(sort_by="self_cuda_time_total", row_limit=80)
    (out / f"profile-shapes-{tag}.txt").write_text(shapes, encoding="utf-8")
    return {
        "steps": n, "wall_ms_per_step": wall * 1e3 / n, "gpu_busy_ms_per_step": busy / 1e3 / n,
        "gpu_busy_share": busy / 1e6 / wall,
        "by_kind_ms_per_step": {k: v / 1e3 / n for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
        "kernels_per_step": sum(v[1] for v in kernels.values()) / n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", default="before,after,after-seqs16")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--profile", default="before,after", help="variants to profile")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda")
    dtype = torch.bfloat16
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), 989.0)
    register_varlen_attention()
    report: dict[str, Any] = {"device": name, "torch": torch.__version__, "peak_bf16_tflops": peak,
                              "ceilings": measure_ceilings(device), "variants": []}
    print(f"{name}: ceilings {report['ceilings']}", flush=True)

    model = build_model(GEMMA3_1B, device, dtype)
    model.get_base_model().config._attn_implementation = VARLEN_ATTENTION
    loss_model = AnswerLossModel(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    state: dict[str, Any] = {"compiled": None}

    def compile_layers(how: str) -> None:
        """Per-layer torch.compile: inductor's Python wrapper, its C++ wrapper, or CUDA graphs."""
        if state["compiled"] == how:
            return
        import torch._inductor.config as inductor_config

        torch._dynamo.reset()
        inductor_config.cpp_wrapper = how == "cpp"
        mode = {"graphs": "reduce-overhead", "graphs-static": "reduce-overhead",
                "autotune": "max-autotune-no-cudagraphs"}.get(how)
        for layer in model.get_base_model().model.layers:
            layer.compile(dynamic=how not in ("graphs-static", "autotune"), mode=mode)
        state["compiled"] = how

    def step(seqs: list[Any]) -> torch.Tensor:
        if state.get("graphed") is not None:  # the whole step recorded as one CUDA graph
            return state["graphed"](collate_packed(seqs))
        total = sum(s.length for s in seqs)
        if state["pad_to"]:  # static shapes for CUDA graphs: a padding segment up to a multiple of pad_to
            n = -total % state["pad_to"]
            if n:
                seqs = [*seqs, TokenizedExample("pad", (0,) * n, (IGNORE_INDEX,) * n)]
        elif state["static"]:  # one shape for every step: 8 padding segments filling the row to 8,192
            rest = 8 * 1024 - total
            sizes = [rest // 8] * 7 + [rest - 7 * (rest // 8)]
            seqs = [*seqs, *(TokenizedExample("pad", (0,) * k, (IGNORE_INDEX,) * k) for k in sizes)]
        batch = collate_packed(seqs).to(device)
        max_seqlen = 1024 if state["pad_to"] or state["static"] else batch.max_seqlen
        with torch.autocast("cuda", dtype=dtype):
            loss = loss_model(batch.input_ids, batch.position_ids, batch.targets, None, batch.cu_seqlens,
                              max_seqlen)
        loss.backward()
        state["optimizer"].step()
        state["optimizer"].zero_grad(set_to_none=True)
        return loss

    def run_variant(variant: str) -> None:
        # "before": issue #18's session-5 step; "after": this round's levers; "cpp": + inductor's C++
        # wrapper; "graphs": + CUDA graphs over batches padded to a multiple of 1,024 tokens;
        # "graphs-static": + CUDA graphs, every batch padded to 8,192 tokens (one shape, no dynamic sizes)
        # "graph-step": the whole step (forward, backward, AdamW) recorded as one CUDA graph, 8 sequences
        # padded to 8,192 tokens; "graph-step-packed": the same with steps packed to 8,192 tokens;
        # "graph-step-packed-autotune": + inductor's max-autotune (Triton matmuls with fused epilogues) on
        # static shapes
        after = variant != "before"
        seqs_per_step = 16 if variant.endswith("seqs16") else 8
        compile_layers(variant if variant in ("cpp", "graphs", "graphs-static") else
                       "autotune" if variant.endswith("autotune") else "python")
        state["pad_to"] = 1024 if variant == "graphs" else 0
        state["static"] = variant == "graphs-static"
        loss_model.fused_loss = after
        loss_model.static_rows = False
        if after:  # one way: the variants after it keep it
            keep_lora_inputs_in_autocast_dtype(model)
        graph_step = variant.startswith("graph-step")
        state["optimizer"] = torch.optim.AdamW(trainable, lr=1e-4, fused=after, capturable=graph_step)
        warmup = 12 if variant.startswith("graph") else 6
        batches = make_batches(args.steps + warmup, seqs_per_step, 256, 1024, GEMMA3_1B["vocab_size"], seed=1234)
        state["graphed"] = None
        if graph_step:
            state["graphed"] = GraphedStep(loss_model, state["optimizer"], graph_shape(8192, 256, 1024), device,
                                           dtype)
            if variant.startswith("graph-step-packed"):
                batches = budget_batches(make_batches(2 * (args.steps + warmup), 8, 256, 1024,
                                                      GEMMA3_1B["vocab_size"], seed=1234), 8192)
                batches = batches[: args.steps + warmup]
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t_compile = time.perf_counter()
        for seqs in batches[:warmup]:  # warm-up, compile and graph recording included
            float(step(seqs).detach())
        warm_s = time.perf_counter() - t_compile
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for seqs in batches[warmup:]:
            last = step(seqs)
        float(last.detach())
        wall = time.perf_counter() - t0
        tokens = sum(s.length for b in batches[warmup:] for s in b)
        res = {"variant": variant, "sequences_per_step": seqs_per_step, "useful_tokens_per_s": tokens / wall,
               "step_ms": wall * 1e3 / args.steps, "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
               "warmup_s": warm_s}
        res["mfu"] = res["useful_tokens_per_s"] * flops_per_token(GEMMA3_1B, 640) / (peak * 1e12)
        res["floor_ms_at_measured_matmul"] = (tokens / args.steps) * flops_per_token(GEMMA3_1B, 640) / (
            report["ceilings"]["matmul_tflops"] * 1e12) * 1e3
        if variant in args.profile.split(","):
            res["profile"] = profile_steps(step, batches[warmup:warmup + 3], args.out, variant)
        report["variants"].append(res)
        print(f"  {variant:<14} {res['useful_tokens_per_s']:>9.0f} tok/s  {res['step_ms']:7.1f} ms/step  "
              f"MFU {res['mfu']:.3f}  {res['peak_memory_gib']:.1f} GiB  warm-up {warm_s:.0f} s", flush=True)
        if "profile" in res:
            print("  " + json.dumps(res["profile"]), flush=True)

    for variant in args.variants.split(","):
        try:
            run_variant(variant)
        except Exception as exc:  # noqa: BLE001  (a lever that fails is recorded, not fatal)
            traceback.print_exc()
            report["variants"].append({"variant": variant, "error": f"{type(exc).__name__}: {exc}"[:2000]})
        (args.out / "train-profile.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
