"""Benchmark: how long one whole review of a 20-file mixed pull request takes, first (cold) and after (warm).

The PR is built from real diffs (../shared/github/diffs/real/) and the eval scenarios' diffs
(eval/scenarios/*/*/diff.patch): files taken round-robin over the reviewers, each file's section copied
byte for byte. Each configuration (backend x dtype x torch threads) runs in its own Python process:
`cold` is that process's first review, model load included (what one `calora review` costs), `warm`
are the reviews after it in the same process (what a running App costs). A review is
`reviewers.pipeline.run_pipeline`: route, slice (with the backend's tokenizer), analyzers, reviewers,
synthesis. The reviewers use the base model unless `--adapters DIR` holds `DIR/<reviewer>/` adapters
(none ship today: the output says which). `--reviewer-findings confirmed,all` times both ways a review
treats a local model's findings (confirmed, the default: a slice with no analyzer finding above a nit on its
files is not asked, since its answer would be withheld; all: every slice is asked and posted).

Backends: `engine` (the multi-adapter engine, eager on CPU; `--heads full,screened` times its LM head
both ways in the same run: `screened`, the CPU default, picks through an int8 screen of the head and
computes only the logits that can win, `full` computes all 262k every step), `transformers` (transformers + PEFT,
`set_adapter` per reviewer group), `peft-mixed` (transformers + PEFT, every request in one batch with
PEFT's per-row `adapter_names`; the same as `transformers` without adapters). Writes
bench/results/review-latency-<device>.json (device: cpu-<N>core, or the GPU's name).

    .venv/bin/python bench/review_latency.py                                  # CPU: engine + transformers
    .venv/bin/python bench/review_latency.py --threads 1,2 --dtypes fp32,bf16 --runs 2
    .venv/bin/python bench/review_latency.py --backend engine --heads full,screened --dtypes fp32,bf16
    python bench/review_latency.py --device cuda --backend engine --adapters adapters --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
REAL_DIFFS = REPO_ROOT.parent / "shared" / "github" / "diffs" / "real"
SCENARIOS = REPO_ROOT / "eval" / "scenarios"
TARGET_SECONDS = 60.0  # issue #18: a 20-file PR on the 2-core CPU
MAX_CHANGED_LINES = 300  # a file larger than this is not "typical" of a 20-file PR: left out of the mix

sys.path.insert(0, str(REPO_ROOT))


# ---- the pull request --------------------------------------------------------------------------------


def _sections(data: bytes, source: str) -> list[tuple[str, str, str]]:
    """(reviewer, path, section text) of each file of a diff that a reviewer takes."""
    from reviewers.routing import route_file
    from reviewers.unified_diff import read_diff

    parsed = read_diff(data)
    lines = parsed.text.split("\n")
    starts = [f.diff_line - 1 for f in parsed.files] + [len(lines)]
    out = []
    for k, file in enumerate(parsed.files):
        changed = sum(len(h.marks) for h in file.hunks)
        if file.error or file.binary or file.status == "deleted" or not changed or changed > MAX_CHANGED_LINES:
            continue
        decision = route_file(file.path)
        if not decision.reviewers:
            continue
        text = "\n".join(lines[starts[k] : starts[k + 1]]).rstrip("\n") + "\n"
        out.append((decision.reviewers[0], file.path, text))
    return out


def build_pull_request(files: int = 20, real_diffs: Path = REAL_DIFFS) -> tuple[str, list[dict[str, str]]]:
    """The diff and where each of its files came from: round-robin over reviewers, real diffs first.

    Without the real diffs the PR would silently become scenario diffs only, a different PR from the one
    other runs timed: refused instead (a GPU machine gets them with --real-diffs)."""
    from reviewers.routing import REVIEWER_NAMES

    real = sorted(real_diffs.glob("*.diff"))
    if not real:
        raise SystemExit(f"no real diffs (*.diff) in {real_diffs}: give --real-diffs DIR (../shared/github/diffs/real)")
    pools: dict[str, list[tuple[str, str, str]]] = {name: [] for name in REVIEWER_NAMES}
    sources = [(p, f"real/{p.name}") for p in real]
    sources += [(p, str(p.relative_to(REPO_ROOT))) for p in sorted(SCENARIOS.glob("*/*/diff.patch"))]
    for path, label in sources:
        for reviewer, file_path, text in _sections(path.read_bytes(), label):
            pools.setdefault(reviewer, []).append((file_path, text, label))
    chosen: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    while len(chosen) < files and any(pools.values()):
        for reviewer in list(pools):
            while pools[reviewer]:
                file_path, text, label = pools[reviewer].pop(0)
                if file_path not in seen:
                    seen.add(file_path)
                    chosen.append((file_path, text, label))
                    break
            if len(chosen) == files:
                break
    return "".join(t for _, t, _ in chosen), [{"path": p, "from": s} for p, _, s in chosen]


# ---- one configuration, in its own process --------------------------------------------------------


def default_findings_mode() -> str:
    """What `calora review` does with a local backend: its findings stand alone, or need an analyzer's."""
    from reviewers.backends.factory import BackendSettings, posts_findings_alone

    return "all" if posts_findings_alone(BackendSettings(backend="engine")) else "confirmed"


def make_backend(
    name: str, device: str, dtype: str, adapters: Path | None, max_new_tokens: int, head: str = "screened"
) -> Any:
    import torch

    from reviewers.models import DEFAULT_MAX_SEQ_LEN, resolve_base_model

    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    if name == "engine":
        from reviewers.engine.backend import EngineBackend, load_engine

        engine, _ = load_engine(None, adapters, device=device, dtype=torch_dtype, max_seq_len=DEFAULT_MAX_SEQ_LEN,
                                screened_head=head == "screened" if device == "cpu" else None)
        return EngineBackend(engine, max_new_tokens=max_new_tokens)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reviewers.backends.transformers_backend import TransformersBackend

    base = resolve_base_model(None)
    tokenizer = AutoTokenizer.from_pretrained(base.source, **base.load_kwargs())
    model = AutoModelForCausalLM.from_pretrained(base.source, dtype=torch_dtype, **base.load_kwargs())
    cls = TransformersBackend if name == "transformers" else _peft_mixed_class()
    return cls(base, adapters, device=device, max_new_tokens=max_new_tokens, model=model, tokenizer=tokenizer)


def _peft_mixed_class() -> type:
    """TransformersBackend that sends every request in one batch, each row with its own adapter."""
    import torch

    from reviewers.backends.transformers_backend import TransformersBackend, decode_generated

    class PeftMixedBackend(TransformersBackend):
        name = "peft-mixed"

        def review(self, requests):  # type: ignore[no-untyped-def]
            results = []
            for start in range(0, len(requests), self.batch_size):
                batch = requests[start : start + self.batch_size]
                results += [self.judge(r, d) for r, d in zip(batch, self._mixed(batch), strict=True)]
            return results

        def _mixed(self, batch):  # type: ignore[no-untyped-def]
            from reviewers.prompt import render_messages, render_text

            if not self.adapters:  # no adapter loaded: PEFT is not in the model, the base answers all
                return self._generate(None, batch)
            prompts = [render_text(self.tokenizer, render_messages(r)) for r in batch]
            encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            encoded = {k: v.to(self.device) for k, v in encoded.items()}
            names = [r.reviewer if r.reviewer in self.adapters else "__base__" for r in batch]
            prompt_len = encoded["input_ids"].shape[1]
            with torch.inference_mode():
                out = self.model.generate(
                    **encoded, adapter_names=names, max_new_tokens=self.max_new_tokens, do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            return decode_generated(self.tokenizer, out[:, prompt_len:], self.max_new_tokens, json_answer=True)

    return PeftMixedBackend


def _prompt_tokens(backend: Any, requests: list[Any]) -> list[int]:
    from reviewers.prompt import render_messages, render_text

    tokenizer = backend.engine.tokenizer if hasattr(backend, "engine") else backend.tokenizer
    return [len(tokenizer(render_text(tokenizer, render_messages(r)), add_special_tokens=False)["input_ids"])
            for r in requests]


def run_configuration(args: argparse.Namespace) -> dict[str, Any]:
    """Load the backend, then review the PR `args.runs` times; the first review is the cold one."""
    started = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    from reviewers.pipeline import run_pipeline

    imported = time.perf_counter()
    diff, _ = build_pull_request(args.files, args.real_diffs)
    adapters = Path(args.adapters) if args.adapters else None
    backend = make_backend(args.backend, args.device, args.dtype, adapters, args.max_new_tokens, args.head)
    backend.findings_alone = args.reviewer_findings == "all"
    loaded = time.perf_counter()
    generated: list[int] = []
    answers: list[list[int]] = []  # the engine's token ids per slice, to compare paths' greedy tokens
    judge = backend.judge

    def counting_judge(request, result):  # type: ignore[no-untyped-def]
        generated.append(len(result.token_ids) if hasattr(result, "token_ids") else result.tokens)
        if hasattr(result, "token_ids"):
            answers.append(list(result.token_ids))
        return judge(request, result)

    backend.judge = counting_judge
    runs = []
    for _ in range(args.runs):
        generated.clear()
        answers.clear()
        engine_stats = dict(getattr(getattr(backend, "engine", None), "stats", None) or {})
        t0, cpu0 = time.perf_counter(), time.process_time()
        run = run_pipeline(diff, backend, count_tokens=backend.count_tokens)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
        model_s = sum(o.seconds for o in run.outcomes)
        prompts = _prompt_tokens(backend, run.requests)
        runs.append({
            "seconds": round(seconds, 2),
            # all threads of this process (the analyzers run in child processes, not counted); on a shared
            # machine cpu_seconds / threads is what a quiet one would take for the in-process part
            "cpu_seconds": round(cpu_seconds, 2),
            "model_seconds": round(model_s, 2),
            "other_seconds": round(seconds - model_s, 2),
            "slices": len(run.plan.slices),
            "prompt_tokens": sum(prompts),
            "prompt_tokens_max": max(prompts, default=0),
            "generated_tokens": sum(generated),
            "asked_slices": len(run.outcomes),
            "failed_slices": sum(1 for o in run.outcomes if o.error),
            "valid_slices": sum(1 for o in run.outcomes if not o.error),
            "findings": len(run.result.findings),
        })
        if engine_stats:  # the engine times its prefills (exact on CPU): the rest of its time is decoding
            now = backend.engine.stats
            runs[-1]["engine_prefill_seconds"] = round(now["prefill_s"] - engine_stats["prefill_s"], 2)
            runs[-1]["engine_decode_steps"] = now["steps"] - engine_stats["steps"]
        print(f"  run {len(runs)}: {runs[-1]}", file=sys.stderr, flush=True)
    warm = [r["seconds"] for r in runs[1:]]
    return {
        "backend": args.backend,
        "head": args.head if args.backend == "engine" else None,
        "reviewer_findings": args.reviewer_findings,
        "dtype": args.dtype,
        "threads": args.threads,
        "adapters": sorted(getattr(backend, "adapters", None) or getattr(getattr(backend, "engine", None), "adapters", [])),
        "import_seconds": round(imported - started, 2),
        "load_seconds": round(loaded - imported, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "cold_seconds": round(loaded - started + runs[0]["seconds"], 2),
        "first_review_seconds": runs[0]["seconds"],
        "warm_p50_seconds": round(statistics.median(warm), 2) if warm else None,
        "warm_p95_seconds": round(_p95(warm), 2) if warm else None,
        "runs": runs,
        "answer_tokens": answers,  # of the last run, in the order the slices were judged
    }


def _compare_answers(configurations: list[dict[str, Any]]) -> None:
    """Each screened engine configuration's greedy tokens against the full head's of the same dtype and
    threads, when both ran: slices whose answers are token for token the same, and tokens that agree
    (position by position, over the longer answer)."""
    full = {(c["dtype"], c["threads"]): c for c in configurations if c.get("head") == "full"}
    for c in configurations:
        reference = full.get((c["dtype"], c["threads"]))
        if c.get("head") != "screened" or reference is None:
            continue
        pairs = list(zip(c["answer_tokens"], reference["answer_tokens"]))
        same = sum(1 for a, b in pairs if a == b)
        agree = sum(x == y for a, b in pairs for x, y in zip(a, b))
        total = sum(max(len(a), len(b)) for a, b in pairs)
        c["versus_full_head"] = {"same_answers": same, "answers": len(pairs),
                                 "tokens_agreeing": agree, "tokens": total}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# ---- the matrix -----------------------------------------------------------------------------------------


def _device_label(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0).lower().replace("nvidia ", "").replace(" ", "-")
    return f"cpu-{len(os.sched_getaffinity(0))}core"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--backend", action="append", choices=["engine", "transformers", "peft-mixed"],
                        help="repeatable; default on CPU: engine and transformers; on cuda: all three")
    parser.add_argument("--adapters", default=None, help="folder of <reviewer>/ PEFT adapters (default: none)")
    parser.add_argument("--dtypes", default=None, help="comma-separated fp32,bf16 (default: fp32 on CPU, bf16 on cuda)")
    parser.add_argument("--threads", default=None, help="comma-separated torch thread counts (default: all cores)")
    parser.add_argument("--heads", default="screened",
                        help="engine LM head, comma-separated full,screened (default: screened, the CPU default)")
    parser.add_argument("--runs", type=int, default=3, help="reviews per configuration; the first is cold")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--real-diffs", type=Path, default=REAL_DIFFS,
                        help="folder of real PR diffs the PR starts from (default: ../shared/github/diffs/real)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: reviewers.models' default")
    parser.add_argument("--label", default=None, help="results file suffix (default: the device)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--head", default="screened", help=argparse.SUPPRESS)
    parser.add_argument("--reviewer-findings", default=None,
                        help="comma-separated confirmed,all (default: what `calora review` does with the backend: "
                             "confirmed for the local ones, where a slice with no analyzer finding above a nit "
                             "is not asked)")
    args = parser.parse_args(argv)
    if args.max_new_tokens is None:
        from reviewers.models import DEFAULT_MAX_NEW_TOKENS

        args.max_new_tokens = DEFAULT_MAX_NEW_TOKENS
    if args.worker:  # one configuration: print its JSON on the last line
        args.backend = args.backend[0]
        args.threads = int(args.threads)
        print(json.dumps(run_configuration(args)))
        return 0

    gpu = args.device.startswith("cuda")
    backends = args.backend or (["engine", "transformers", "peft-mixed"] if gpu else ["engine", "transformers"])
    dtypes = (args.dtypes or ("bf16" if gpu else "fp32")).split(",")
    threads = [int(t) for t in (args.threads or str(len(os.sched_getaffinity(0)))).split(",")]
    diff, files = build_pull_request(args.files, args.real_diffs)
    configurations = []
    modes = (args.reviewer_findings or default_findings_mode()).split(",")
    matrix = [(backend, dtype, count, head, mode) for backend in backends for dtype in dtypes for count in threads
              for head in (args.heads.split(",") if backend == "engine" and not gpu else ["screened"])
              for mode in modes]
    for backend, dtype, count, head, mode in matrix:
        print(f"{backend} {dtype} {count} thread(s), head {head}, reviewer findings {mode}:", file=sys.stderr,
              flush=True)
        command = [sys.executable, __file__, "--worker", "--device", args.device, "--backend", backend,
                   "--dtype", dtype, "--threads", str(count), "--runs", str(args.runs),
                   "--files", str(args.files), "--real-diffs", str(args.real_diffs),
                   "--max-new-tokens", str(args.max_new_tokens), "--head", head, "--reviewer-findings", mode]
        if args.adapters:
            command += ["--adapters", args.adapters]
        done = subprocess.run(command, check=False, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                              env={**os.environ, "OMP_NUM_THREADS": str(count)})
        if done.returncode != 0:  # its stderr went through to ours
            configurations.append({"backend": backend, "dtype": dtype, "threads": count, "head": head,
                                   "reviewer_findings": mode, "error": f"exit status {done.returncode}"})
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        configurations.append(result)
        print(f"  cold {result['cold_seconds']} s (load {result['load_seconds']} s), warm p50 "
              f"{result['warm_p50_seconds']} s, p95 {result['warm_p95_seconds']} s, adapters: "
              f"{result['adapters'] or 'none (base model)'}", file=sys.stderr, flush=True)
    measured = [c for c in configurations if "error" not in c]
    _compare_answers(measured)
    best = min(measured, key=lambda c: c["warm_p50_seconds"] or c["first_review_seconds"], default=None)
    report = {
        "machine": {
            "host": socket.gethostname(), "cpus": len(os.sched_getaffinity(0)), "device": _device_label(args.device),
            "python": platform.python_version(), "processor": platform.processor() or platform.machine(),
            "load_average_1min": round(os.getloadavg()[0], 2),
        },
        "pull_request": {"files": files, "bytes": len(diff.encode())},
        "max_new_tokens": args.max_new_tokens,
        "adapters": args.adapters or "none: every reviewer ran on the base model",
        "target_seconds": TARGET_SECONDS,
        "configurations": configurations,
        "fastest": {k: best[k] for k in ("backend", "dtype", "threads", "head", "reviewer_findings", "warm_p50_seconds")}
        if best else None,
    }
    if not args.no_write:
        out = RESULTS_DIR / f"review-latency-{args.label or _device_label(args.device)}.json"
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
