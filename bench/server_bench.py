"""What the reviewer server costs on top of the engine: the same 64 constrained reviews, three ways.

Same model, adapters and requests (8 adapters x 8 requests of the Gemma-3 1B text shape with random
weights, rendered from real diffs with a real tokenizer's chat template, 128 new tokens, constrained):

1. direct: `engine.generate(requests)` in process;
2. `/v1/review`: one HTTP batch to the reviewer server (uvicorn on loopback, in this process);
3. `/v1/chat/completions`: `OpenAIBackend` with every request in flight at once, as the worker sends them.

tokens/s = new tokens / wall time from the first submit to the last answer. Random weights never end
their JSON, so every answer runs to the budget and the grammar closes it (`accept_truncated` on).

    python bench/server_bench.py --tokenizer DIR --diffs DIR [--device cuda] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.serve_bench import SHAPES, add_peft_adapters, build_model
from reviewers.backends.openai_backend import OpenAIBackend
from reviewers.contract import ReviewerOutput, ReviewRequest, read_answer
from reviewers.engine.engine import Engine, GenerationRequest
from reviewers.prompt import render_ids, render_messages
from reviewers.serving.app import create_app
from reviewers.serving.state import ServerSettings

log = logging.getLogger("server_bench")


def requests_of(tokenizer, diffs: list[str], names: list[str], per: int, prompt_tokens: int) -> list[ReviewRequest]:
    """Requests whose rendered prompt is about `prompt_tokens` long (diff text trimmed to fit)."""
    out = []
    for i, name in enumerate(names):
        for j in range(per):
            diff = diffs[(i * per + j) % len(diffs)]
            lo, hi = 0, len(diff)
            while lo < hi:  # longest prefix of the diff that keeps the prompt within budget
                mid = (lo + hi + 1) // 2
                request = ReviewRequest(reviewer=name, diff=diff[:mid])
                if len(render_ids(tokenizer, render_messages(request))) <= prompt_tokens:
                    lo = mid
                else:
                    hi = mid - 1
            out.append(ReviewRequest(reviewer=name, diff=diff[:lo]))
    return out


def serve(app):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def generated_tokens(url: str) -> float:
    import httpx

    text = httpx.get(f"{url}/metrics").text
    return float(re.search(r"^calora_reviewer_generated_tokens_total (\S+)$", text, re.MULTILINE)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", type=Path, required=True, help="a saved HF tokenizer with a chat template")
    parser.add_argument("--diffs", type=Path, required=True, help="folder of real .diff files")
    parser.add_argument("--shape", default="gemma3-1b")
    parser.add_argument("--adapters", type=int, default=8)
    parser.add_argument("--per-adapter", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    import httpx
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    if args.shape == "tiny":  # CPU check of the script: a toy Gemma-3 with the tokenizer's vocabulary
        SHAPES["tiny"] = {**SHAPES["tiny"], "vocab_size": len(tokenizer)}
    model = build_model(args.shape, args.device, dtype)
    names = [f"reviewer{i}" for i in range(args.adapters)]
    batch = args.adapters * args.per_adapter
    engine = Engine.from_model(model, tokenizer, device=args.device, dtype=dtype, max_batch=batch,
                               max_seq_len=args.prompt_tokens + args.new_tokens + 64)
    _peft, states = add_peft_adapters(model, names, rank=16)
    for name, state in states.items():
        engine.add_adapter(name, state)
    del _peft, model
    diffs = [p.read_text(errors="replace") for p in sorted(args.diffs.glob("*.diff"))]
    requests = requests_of(tokenizer, diffs, names, args.per_adapter, args.prompt_tokens)
    generations = [GenerationRequest(prompt=render_messages(r), adapter=r.reviewer, max_new_tokens=args.new_tokens)
                   for r in requests]
    prompt_lengths = [len(render_ids(tokenizer, render_messages(r))) for r in requests]
    log.info("%d requests, prompt tokens %d..%d", len(requests), min(prompt_lengths), max(prompt_lengths))

    settings = ServerSettings(base_model=args.shape, max_queue=4 * batch, request_timeout_s=600,
                              max_new_tokens=args.new_tokens, max_batch_requests=4 * batch)
    server, thread, url = serve(create_app(engine, settings))
    client = httpx.Client(timeout=600)
    backend = OpenAIBackend(f"{url}/v1", max_tokens=args.new_tokens, concurrency=batch, accept_truncated=True,
                            timeout_s=600, max_attempts=1)

    def direct() -> tuple[int, int]:
        results = engine.generate(generations)
        valid = [read_answer(r.text, r.finish_reason, max_new_tokens=args.new_tokens, accept_truncated=True,
                             forced_close=r.forced_close) for r in results]  # as the two HTTP paths judge
        return sum(len(r.token_ids) for r in results), sum(isinstance(v, ReviewerOutput) for v in valid)

    def review_batch() -> tuple[int, int]:
        body = {"requests": [r.model_dump() for r in requests], "max_new_tokens": args.new_tokens,
                "accept_truncated": True}
        items = client.post(f"{url}/v1/review", json=body).json()["results"]
        return sum(i["completion_tokens"] for i in items), sum(i["output"] is not None for i in items)

    def chat() -> tuple[int, int]:
        before = generated_tokens(url)
        answers = backend.review(requests)
        return int(generated_tokens(url) - before), sum(isinstance(a, ReviewerOutput) for a in answers)

    results: dict = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
                     "shape": args.shape, "adapters": args.adapters, "requests": batch,
                     "prompt_tokens": [min(prompt_lengths), max(prompt_lengths)], "new_tokens": args.new_tokens,
                     "constrained": True, "runs": {}}
    direct()  # warm-up: CUDA graphs, allocator, grammar
    for name, run in (("direct_engine", direct), ("http_v1_review_batch", review_batch),
                      ("http_chat_completions_concurrent", chat)):
        timings = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            tokens, answered = run()
            seconds = time.perf_counter() - start
            timings.append({"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
                            "valid_answers": answered})
            log.info("%s: %d tokens in %.2f s = %.0f tokens/s, %d valid", name, tokens, seconds, tokens / seconds,
                     answered)
        best = max(timings, key=lambda t: t["tokens_per_s"])
        results["runs"][name] = {"best": best, "all": timings}
    base = results["runs"]["direct_engine"]["best"]["tokens_per_s"]
    for name, run in results["runs"].items():
        run["vs_direct"] = run["best"]["tokens_per_s"] / base
    server.should_exit = True
    thread.join(timeout=10)
    engine.close()
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", results["device"].lower()).strip("-")
        (args.out / f"server-{slug}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
