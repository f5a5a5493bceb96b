"""Tune the grouped LoRA expand kernel (reviewers/engine/lora_kernel.py) against the torch path.

For the module groups of the Gemma-3 1B shape (8 adapters, r=16: C = 144 columns per module), decode
(64 rows) and one prefill chunk (32 x 512 token rows), times each Triton configuration and the torch
path (mask, then cuBLAS addmm) as the engine runs them: 50 calls captured in one CUDA graph, replayed.

    python bench/lora_expand_tune.py          # GPU; prints a table and writes bench/results/lora-expand-<device>.json
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reviewers.engine import lora_kernel

SHAPES = {  # name: (rows, steps, modules, out)
    "decode qkv": (64, 1, 3, 1536), "decode o": (64, 1, 1, 1152), "decode gate_up": (64, 1, 2, 13824),
    "decode down": (64, 1, 1, 1152),
    "prefill qkv": (32, 512, 3, 1536), "prefill gate_up": (32, 512, 2, 13824), "prefill down": (32, 512, 1, 1152),
}
CALLS = 50


def graph_time(fn) -> float:
    """Microseconds per call of `fn`, captured CALLS times in one CUDA graph."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(CALLS):
            fn()
    graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1000 / (5 * CALLS)


def main() -> None:
    adapters, rank = 8, 16
    results = {"device": torch.cuda.get_device_name(), "shapes": {}}
    configs = [
        {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "num_warps": w, "num_stages": st}
        for bm, bn, bk, w, st in itertools.product([16, 64, 128], [32, 64, 128], [32, 64, 128], [4], [2, 3])
    ]
    for name, (rows, steps, modules, out) in SHAPES.items():
        entry = tune_shape(rows, steps, modules, out, configs, adapters, rank)
        results["shapes"][name] = entry
        best = entry["best"][0]
        print(f"{name:<18} torch {entry['torch_us']:8.1f} us  kernel default {entry['default_us']:8.1f} us  "
              f"best {best['us']:8.1f} us {best}", flush=True)
    out_dir = Path("bench/results")
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = results["device"].lower().replace("nvidia ", "").replace(" ", "-")
    path = out_dir / f"lora-expand-{slug}.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"wrote {path}")


def tune_shape(rows: int, steps: int, modules: int, out: int, configs: list[dict], adapters: int, rank: int) -> dict:
    columns = (adapters + 1) * rank
    n = rows * steps
    yh = torch.randn(n, out + modules * columns, device="cuda", dtype=torch.bfloat16)
    y, h = yh[:, :out], yh[:, out:]
    b = torch.randn(modules * columns, out, device="cuda", dtype=torch.bfloat16) / 8
    slot = torch.randint(0, adapters + 1, (rows,), device="cuda")
    keep = (torch.arange(adapters + 1, device="cuda").repeat_interleave(rank)[None, :] == slot[:, None]).to(y.dtype)

    def torch_path():
        masked = (h.view(rows, steps, modules, columns) * keep[:, None, None, :]).view(n, -1)
        y.addmm_(masked, b)

    def kernel(config=None):
        lora_kernel._launch(y, h, b, slot, columns, rank, steps, config)

    entry = {"torch_us": graph_time(torch_path), "configs": []}
    for config in configs:
        if config["BLOCK_M"] > max(16, triton_pow2(n)):
            continue
        try:
            entry["configs"].append({**config, "us": graph_time(lambda c=config: kernel(c))})
        except Exception as exc:  # noqa: BLE001 -- a config Triton cannot build (shared memory) is noted
            entry["configs"].append({**config, "error": type(exc).__name__})
    entry["best"] = sorted((c for c in entry["configs"] if "us" in c), key=lambda c: c["us"])[:5]
    entry["default_us"] = graph_time(kernel)
    return entry


def triton_pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


if __name__ == "__main__":
    main()
