"""SmolLM2-135M-Instruct (the shared GGUF base) on CPU: schema validity and tokens/s, constrained or not.

Runs the curated eval cases (`calora data build` output, default: python, sql and docker_ci, the reviewers
of the headline eval) through the engine twice, with constrained decoding on and off, and reports for each
the share of answers that parse as `ReviewerOutput` and the tokens/s (new tokens / wall time, prefill
included). Writes bench/results/smollm2-cpu.json.

    python bench/smollm2_cpu.py --cases build/data --reviewers python sql docker_ci --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.cases import load_cases
from reviewers.contract import ReviewerOutput, read_answer
from reviewers.engine.engine import Engine, GenerationRequest
from reviewers.prompt import render_messages

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models" / "smollm2-135m-instruct"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def run(engine: Engine, cases, constrained: bool, max_new_tokens: int) -> dict:
    start = time.perf_counter()
    results = engine.generate([
        GenerationRequest(prompt=render_messages(c.request), max_new_tokens=max_new_tokens, constrained=constrained)
        for c in cases
    ])
    seconds = time.perf_counter() - start
    # valid: what the product keeps, judged by the one judge every backend uses (`read_answer`)
    valid = sum(isinstance(read_answer(r.text, r.finish_reason, max_new_tokens=max_new_tokens,
                                       forced_close=r.forced_close), ReviewerOutput) for r in results)
    tokens = sum(len(r.token_ids) for r in results)
    return {"cases": len(cases), "schema_valid": valid, "valid_share": valid / len(cases), "new_tokens": tokens,
            "seconds": seconds, "tokens_per_s": tokens / seconds,
            "closed_at_budget": sum(r.forced_close for r in results),
            "prompt_tokens": sum(r.prompt_tokens for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=Path, default=Path("build/data"))
    parser.add_argument("--reviewers", nargs="*", default=["python", "sql", "docker_ci"])
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=Path("bench/results/smollm2-cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cases = load_cases(args.cases, args.reviewers)
    engine = Engine.from_pretrained(SHARED, gguf_file=GGUF, max_batch=args.max_batch, max_seq_len=4096)
    try:
        report = {"device": f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                            f"{args.threads} torch threads)",
                  "model": str(SHARED / GGUF), "reviewers": args.reviewers, "max_new_tokens": args.max_new_tokens,
                  "max_batch": args.max_batch}
        for constrained in (True, False):
            key = "constrained" if constrained else "unconstrained"
            report[key] = run(engine, cases, constrained, args.max_new_tokens)
            print(f"{key:<14} {report[key]['schema_valid']}/{report[key]['cases']} schema-valid, "
                  f"{report[key]['tokens_per_s']:.1f} tokens/s ({report[key]['new_tokens']} tokens in "
                  f"{report[key]['seconds']:.0f} s)", flush=True)
    finally:
        engine.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
