"""Compare schema-constrained decoding libraries on the ReviewerOutput schema (CPU, no model needed).

A random "model" (random logits, nudged towards one-character tokens so that walks finish) walks the
grammar of each library with the SmolLM2 tokenizer; we time the per-token mask computation and check
that every finished walk parses as `ReviewerOutput`. Results go to bench/NOTES-engine.md by hand.

    .venv/bin/python bench/constraint_compare.py --tokenizer /path/to/saved/tokenizer --walks 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from transformers import AutoTokenizer

from reviewers.contract import BrokenAnswer, read_answer, reviewer_output_schema


def walk_xgrammar(tok, walks: int, max_tokens: int, seed: int) -> dict:
    import xgrammar as xgr

    vocab = len(tok)
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=vocab)
    t0 = time.perf_counter()
    compiled = xgr.GrammarCompiler(info).compile_json_schema(
        json.dumps(reviewer_output_schema()), any_whitespace=False, separators=(",", ":"), strict_mode=True
    )
    compile_s = time.perf_counter() - t0
    return _walk(
        tok, walks, max_tokens, seed, compile_s,
        new=lambda: xgr.GrammarMatcher(compiled),
        bitmask=xgr.allocate_token_bitmask(1, vocab),
        fill=lambda m, bm: m.fill_next_token_bitmask(bm, 0),
        apply=lambda logits, bm: xgr.apply_token_bitmask_inplace(logits, bm),
        accept=lambda m, t: m.accept_token(t),
        done=lambda m: m.is_terminated(),
    )


def walk_llguidance(tok, walks: int, max_tokens: int, seed: int) -> dict:
    import llguidance
    import llguidance.hf
    import llguidance.torch as lt

    lltok = llguidance.hf.from_tokenizer(tok)
    t0 = time.perf_counter()
    grammar = llguidance.LLMatcher.grammar_from_json_schema(
        json.dumps(reviewer_output_schema()),
        defaults={"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"},
    )
    llguidance.LLMatcher(lltok, grammar)  # compiles lazily; count the first build
    compile_s = time.perf_counter() - t0
    return _walk(
        tok, walks, max_tokens, seed, compile_s,
        new=lambda: llguidance.LLMatcher(lltok, grammar),
        bitmask=lt.allocate_token_bitmask(1, lltok.vocab_size),
        fill=lambda m, bm: lt.fill_next_token_bitmask(m, bm, 0),
        apply=lambda logits, bm: lt.apply_token_bitmask_inplace(logits, bm),
        accept=lambda m, t: m.consume_token(t),
        done=lambda m: m.is_stopped(),
    )


def _walk(tok, walks, max_tokens, seed, compile_s, new, bitmask, fill, apply, accept, done) -> dict:
    gen = torch.Generator().manual_seed(seed)
    vocab = len(tok)
    short = torch.tensor([len(tok.decode([i])) == 1 for i in range(vocab)], dtype=torch.float32)
    mask_us: list[float] = []
    finished = valid = 0
    failures: list[str] = []
    for _ in range(walks):
        matcher = new()
        ids: list[int] = []
        for _step in range(max_tokens):
            t0 = time.perf_counter()
            fill(matcher, bitmask)
            logits = torch.randn(1, vocab, generator=gen) + 4.0 * short
            apply(logits, bitmask)
            mask_us.append((time.perf_counter() - t0) * 1e6)
            token = int(logits.argmax())
            if token == tok.eos_token_id:
                break
            if not accept(matcher, token):
                failures.append(f"rejected its own allowed token {token}")
                break
            ids.append(token)
            if done(matcher):
                break
        text = tok.decode(ids)
        if text.rstrip().endswith("}"):
            finished += 1
            judged = read_answer(text, "stop")  # a walk that closed its object ended it: judged as a stop
            if isinstance(judged, BrokenAnswer):
                failures.append(f"{judged.message} in {text[:200]!r}")
            else:
                valid += 1
    return {
        "compile_s": round(compile_s, 3),
        "mask_us_median": round(statistics.median(mask_us), 1),
        "mask_us_p90": round(sorted(mask_us)[int(0.9 * len(mask_us))], 1),
        "walks": walks,
        "finished": finished,
        "valid_of_finished": valid,
        "failures": failures[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--walks", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=400)
    args = parser.parse_args()
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    for name, fn in (("xgrammar", walk_xgrammar), ("llguidance", walk_llguidance)):
        try:
            print(name, json.dumps(fn(tok, args.walks, args.max_tokens, seed=0)), flush=True)
        except Exception as exc:  # noqa: BLE001 - a library that fails to run is a result too
            print(name, "FAILED:", type(exc).__name__, exc, flush=True)


if __name__ == "__main__":
    main()
