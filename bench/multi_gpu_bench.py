"""Issue #19's two acceptance figures: the eight reviewers trained by 1 process vs N, and the reviewer
server's tokens/s on 1 device vs N.

Training: the real curated data (`datasets/`, built into per-reviewer JSONL by `training.dataset_build`)
is trained by `python -m training.train --all` (one process, GPU 0), then by `torch.distributed.run
--nproc_per_node N -m training.train --all` (the same as `accelerate launch --num_processes N`: the
reviewers are sharded over the processes, one GPU each). The wall time is the whole command's (process
start, model loads, every step, every adapter written); each run's `summary.json` (per process and total
tokens/s) is kept in the result. Target: N=2 takes <= 0.6 x the one-process wall.

Serving: the adapters just trained are served by the real command, `calora reviewers serve` (a child
process), once with `--devices <first>` and once with `--devices <all>`; a client sends the eval split's
prompts (each to its reviewer's adapter, constrained JSON, greedy) with enough requests in flight to fill
every engine, after a warm-up. tokens/s = completion tokens of all answers / wall. Greedy decoding makes
every run answer the same tokens (checked). Target: N=2 gives >= 1.8 x the one-device tokens/s. The N
devices are measured twice: engines in their own processes (the default) and as threads of the server
(`--engines threads`), which shows what sharing one GIL costs.

    python bench/multi_gpu_bench.py                      # the GPU box: devices 0,1; Gemma 3 270M (calora models fetch)
    python bench/multi_gpu_bench.py --devices 0,1,2,3    # more GPUs
    python bench/multi_gpu_bench.py --tiny               # CPU, tiny random Gemma-3: proves the bench runs;
                                                         # its figures are not the acceptance figures

Raw results: bench/results/multi-gpu-<device>-x<N>.json (`--tiny`: multi-gpu-cpu-tiny.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.webhook_bench import free_port, wait_healthy  # after the path: the benches share one server poll

SHARED_NOTE = ("Several engines on one GPU (--devices 0,0): it checks the CUDA paths and shows how much a single "
               "engine leaves its GPU idle; NOT the acceptance figures, which need one engine per GPU on two GPUs.")
TINY_NOTE = ("CPU run on a tiny random Gemma-3 with devices cpu,cpu (two engines/processes sharing the same "
             "cores): it proves the bench runs end to end. These are NOT the acceptance figures, which need "
             "a machine with two GPUs.")


def device_slug(tiny: bool, devices: list[str]) -> str:
    if tiny:
        return "cpu-tiny"
    import torch

    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    slug = f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}-x{len(set(devices))}"
    return slug if len(set(devices)) == len(devices) else f"{slug}-shared"


# --- data and base model ---------------------------------------------------------------------------

def build_data(out: Path) -> Path:
    """Every reviewer's train/eval JSONL from the curated examples (`calora data build`)."""
    from training.dataset_build import build_dataset

    build_dataset([REPO / "datasets"], out)
    return out


def tiny_base(folder: Path) -> str:
    from training.tiny import save_tiny_gemma3_base_model

    return str(save_tiny_gemma3_base_model(folder, layers=2))


def random_270m_base(folder: Path) -> str:
    """A random-weight Gemma-3 shaped like Gemma 3 270M (18 layers, hidden 640, vocab 262144) with the tiny
    Gemma tokenizer: the real model's compute per token, no weights to fetch (the answers are noise)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from training.tiny import tiny_gemma_tokenizer

    torch.manual_seed(0)
    layers = 18
    config = Gemma3TextConfig(
        vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256,
        sliding_window=512, max_position_embeddings=32768, tie_word_embeddings=True,
        layer_types=[("full_attention" if (i + 1) % 6 == 0 else "sliding_attention") for i in range(layers)],
        bos_token_id=2, eos_token_id=1, pad_token_id=0,
    )
    folder.mkdir(parents=True, exist_ok=True)
    Gemma3ForCausalLM(config).save_pretrained(folder)
    tiny_gemma_tokenizer().save_pretrained(folder)
    return str(folder)


# --- training ----------------------------------------------------------------------------------------

def train_once(processes: int, config: dict[str, Any], folder: Path, env: dict[str, str]) -> dict[str, Any]:
    """One `train --all` command with `processes` processes; its wall and its summary.json."""
    runs = folder / f"runs-{processes}"
    cfg_path = folder / f"train-{processes}.json"
    cfg_path.write_text(json.dumps({**config, "run_dir": str(runs)}), encoding="utf-8")
    train_cmd = ["-m", "training.train", "--all", "--config", str(cfg_path)]
    if processes == 1:
        command = [sys.executable, *train_cmd]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                   "--master_port", str(free_port()), *train_cmd]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    summary = json.loads((runs / "summary.json").read_text(encoding="utf-8"))
    return {"processes": processes, "command": " ".join(command[1:]), "wall_s": round(wall, 3),
            "summary": summary, "runs": str(runs)}


def bench_training(args: argparse.Namespace, base: str | None, data: Path, folder: Path, env: dict[str, str]) -> dict:
    config = {"reviewer": "python", "data_dir": str(data), **({"base_model": base} if base else {}), "epochs": 1,
              "max_steps": args.train_steps, "tokens_per_batch": args.tokens_per_batch,
              "checkpoint_every": 10_000, "device": "cpu" if args.tiny else "cuda", "seed": 0, "log_every": 5}
    one = train_once(1, config, folder, env)
    if args.train_processes == 1:  # a one-GPU machine: the one-process figures only
        return {"config": config, "one_process": one, "sharded": one}
    many = train_once(args.train_processes, config, folder, env)
    return {"config": config, "one_process": one, "sharded": many,
            "wall_ratio": round(many["wall_s"] / one["wall_s"], 3), "target": "wall_ratio <= 0.6"}


# --- serving -----------------------------------------------------------------------------------------

def adapters_folder(runs: Path, out: Path) -> Path:
    """`adapters/<reviewer>` (what `--adapters` reads) pointing at each run's final adapter."""
    out.mkdir(parents=True, exist_ok=True)
    for adapter in sorted(runs.glob("*/adapter")):
        link = out / adapter.parent.name
        if not link.exists():
            link.symlink_to(adapter.resolve(), target_is_directory=True)
    return out


def chat_prompts(data: Path, count: int, max_chars: int) -> list[dict[str, Any]]:
    """The eval split's prompts (system + user turns), round-robin over reviewers, each to its adapter."""
    per_reviewer = {}
    for path in sorted(data.glob("*/eval.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        prompts = [[m for m in r["messages"] if m["role"] != "assistant"] for r in rows]
        per_reviewer[path.parent.name] = [p for p in prompts if sum(len(m["content"]) for m in p) <= max_chars]
    bodies: list[dict[str, Any]] = []
    index = 0
    while len(bodies) < count and any(per_reviewer.values()):
        for reviewer, prompts in per_reviewer.items():
            if prompts and len(bodies) < count:
                bodies.append({"model": reviewer, "messages": prompts[index % len(prompts)]})
        index += 1
    return bodies


async def send_all(url: str, bodies: list[dict[str, Any]], concurrency: int, max_tokens: int) -> dict[str, Any]:
    import httpx

    limit = asyncio.Semaphore(concurrency)
    answers: list[Any] = [None] * len(bodies)

    async def ask(client: httpx.AsyncClient, i: int) -> None:
        async with limit:
            body = {**bodies[i], "max_tokens": max_tokens, "response_format": {"type": "json_object"}}
            response = await client.post(f"{url}/v1/chat/completions", json=body)
            answers[i] = (response.json()["usage"]["completion_tokens"],
                          response.json()["choices"][0]["message"]["content"]) if response.status_code == 200 \
                else (0, f"HTTP {response.status_code}: {response.text[:200]}")

    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency)) as client:
        started = time.perf_counter()
        await asyncio.gather(*(ask(client, i) for i in range(len(bodies))))
        wall = time.perf_counter() - started
    tokens = sum(a[0] for a in answers)
    return {"requests": len(bodies), "errors": sum(1 for a in answers if a[1].startswith("HTTP ")),
            "completion_tokens": tokens, "wall_s": round(wall, 3), "tokens_per_s": round(tokens / wall, 1),
            "answers": [a[1] for a in answers]}


def serve_once(args: argparse.Namespace, base: str | None, adapters: Path, devices: list[str], bodies: list[dict],
               env: dict[str, str], log: Path, engines: str = "processes") -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "app.cli", "reviewers", "serve", *(["--base-model", base] if base else []),
               "--adapters", str(adapters), "--devices", ",".join(devices), "--port", str(port), "--max-queue",
               str(max(64, 2 * args.concurrency)), "--max-batch", str(args.max_batch), "--timeout", "600",
               "--engines", engines]
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as sink:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            started = time.monotonic()
            wait_healthy(url, server, timeout=900, log=log)
            load_s = time.monotonic() - started
            # warm-up: every engine prefills and decodes (CUDA graphs captured, kernels compiled)
            asyncio.run(send_all(url, bodies[: 4 * len(devices)], 4 * len(devices), args.max_tokens))
            measured = asyncio.run(send_all(url, bodies, args.concurrency, args.max_tokens))
        finally:
            server.terminate()
            server.wait(timeout=60)
    return {"devices": devices, "command": " ".join(command[2:]), "server_start_s": round(load_s, 1), **measured}


def bench_serving(args: argparse.Namespace, base: str | None, data: Path, runs: Path, folder: Path,
                  env: dict[str, str]) -> dict:
    adapters = adapters_folder(runs, folder / "adapters")
    bodies = chat_prompts(data, args.requests, args.max_prompt_chars)
    one = serve_once(args, base, adapters, args.device_list[:1], bodies, env, folder / "serve-1.log")
    many = serve_once(args, base, adapters, args.device_list, bodies, env, folder / "serve-n.log")
    # the same engines as threads of the server's process: what one GIL costs (--engines threads)
    threads = serve_once(args, base, adapters, args.device_list, bodies, env, folder / "serve-t.log", "threads")
    answers = one.pop("answers")
    same = answers == many.pop("answers") == threads.pop("answers")
    return {"requests": len(bodies), "concurrency": args.concurrency, "max_tokens": args.max_tokens,
            "adapters": sorted(p.name for p in adapters.iterdir()), "one_device": one, "all_devices": many,
            "all_devices_as_threads": threads, "same_answers": same,
            "speedup": round(many["tokens_per_s"] / one["tokens_per_s"], 3),
            "speedup_as_threads": round(threads["tokens_per_s"] / one["tokens_per_s"], 3),
            "target": "speedup >= 1.8 (engines in processes, the default)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny random Gemma-3, devices cpu,cpu")
    parser.add_argument("--devices", help="default 0,1 (--tiny: cpu,cpu)")
    parser.add_argument("--base-model", help="default: the project's default base (--tiny: a tiny random one)")
    parser.add_argument("--random-base", action="store_true",
                        help="a random-weight Gemma-3 of the 270M shape instead (no weights to fetch)")
    parser.add_argument("--train-processes", type=int, help="default: one per device (1: one-process run only)")
    parser.add_argument("--train-steps", type=int, help="steps per reviewer (default 60; --tiny 3)")
    parser.add_argument("--tokens-per-batch", type=int, help="default 16384 (--tiny 1024)")
    parser.add_argument("--requests", type=int, help="measured requests (default 512; --tiny 24)")
    parser.add_argument("--concurrency", type=int, help="requests in flight (default 128; --tiny 8)")
    parser.add_argument("--max-tokens", type=int, help="answer cap per request (default 256; --tiny 64)")
    parser.add_argument("--max-batch", type=int, default=64, help="rows per engine (KV-cache slots)")
    parser.add_argument("--max-prompt-chars", type=int, help="skip longer prompts (default 24000; --tiny 3000)")
    parser.add_argument("--skip-training", type=Path, metavar="RUNS",
                        help="serve the adapters of this earlier `train --all` run folder instead of training")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/multi-gpu-<device>.json)")
    args = parser.parse_args(argv)
    defaults = ({"devices": "cpu,cpu", "train_steps": 3, "tokens_per_batch": 1024, "requests": 24, "concurrency": 8,
                 "max_tokens": 64, "max_prompt_chars": 3000} if args.tiny else
                {"devices": "0,1", "train_steps": 60, "tokens_per_batch": 16384, "requests": 512, "concurrency": 128,
                 "max_tokens": 256, "max_prompt_chars": 24000})
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    from reviewers.serving.pool import parse_devices

    args.device_list = parse_devices(args.devices)
    args.train_processes = args.train_processes or len(args.device_list)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    if args.tiny:
        env["OMP_NUM_THREADS"] = "1"  # two processes on shared cores: one thread each
    import torch

    result: dict[str, Any] = {"device": device_slug(args.tiny, args.device_list), "devices": args.device_list,
                              "torch": torch.__version__, "host_cpus": os.cpu_count(),
                              "host_load_average": os.getloadavg(),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if torch.cuda.is_available() and not args.tiny:
        result["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if args.tiny:
        result["note"] = TINY_NOTE
    elif len(set(args.device_list)) < len(args.device_list):
        result["note"] = SHARED_NOTE
    with tempfile.TemporaryDirectory(prefix="multi-gpu-bench-") as tmp:
        folder = Path(tmp)
        # None: train and serve take the project's default base (Gemma 3 270M after `calora models fetch`)
        base = (tiny_base(folder / "base") if args.tiny else
                random_270m_base(folder / "base") if args.random_base else args.base_model)
        data = build_data(folder / "data")
        result["base_model"] = ("tiny random Gemma-3 (training/tiny.py, 2 layers)" if args.tiny
                                else "random Gemma-3 of the 270M shape" if args.random_base
                                else base or _default_base())
        if args.skip_training:
            runs = args.skip_training
        else:
            result["training"] = bench_training(args, base, data, folder, env)
            runs = Path(result["training"]["sharded"]["runs"])
            print(json.dumps({k: result["training"].get(k) for k in ("wall_ratio", "target")}), file=sys.stderr)
        result["serving"] = bench_serving(args, base, data, runs, folder, env)
        print(json.dumps({k: result["serving"][k] for k in ("speedup", "same_answers", "target")}), file=sys.stderr)
    out = args.out or REPO / "bench" / "results" / f"multi-gpu-{result['device']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(out)
    return 0


def _default_base() -> str:
    from reviewers.models import resolve_base_model

    return resolve_base_model(None).describe()


if __name__ == "__main__":
    sys.exit(main())
