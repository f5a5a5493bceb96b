"""The first real backend: one transformers base model plus per-reviewer PEFT adapters, greedy decoding.

Simple and correct rather than fast (the multi-adapter engine in `reviewers/engine/` is the fast path):
requests are grouped by adapter, the matching adapter is switched on (or all adapters off for the base
model), and each group is generated in small left-padded batches. Each answer is judged by
`reviewers.contract.read_answer`; it ran out of tokens ("length") when it hit `max_new_tokens` before an
end token and before its JSON object was whole.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reviewers.adapter_manifest import check_adapters
from reviewers.backends.base import Backend, BackendResult, ReviewerFailure, as_result
from reviewers.contract import ReviewRequest, answer_settled, json_object_complete, read_answer
from reviewers.models import DEFAULT_MAX_NEW_TOKENS, DEFAULT_REPEAT_NGRAM, BaseModelRef
from reviewers.prompt import render_messages, render_text
from reviewers.repeat_guard import RepeatGuard, quote_free

log = logging.getLogger(__name__)


def find_adapters(adapters_dir: Path | None) -> dict[str, Path]:
    """Reviewer name → adapter folder, for every `adapters/<reviewer>/adapter_config.json` present."""
    if adapters_dir is None or not adapters_dir.is_dir():
        return {}
    return {
        child.name: child
        for child in sorted(adapters_dir.iterdir())
        if (child / "adapter_config.json").is_file()
    }


class TransformersBackend(Backend):
    """Reviews with a transformers model; an adapter per reviewer when `adapters/<reviewer>/` exists."""

    name = "transformers"

    def __init__(
        self,
        base: BaseModelRef,
        adapters_dir: Path | None = None,
        *,
        device: str = "auto",
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        batch_size: int = 4,
        stop_when_settled: bool = True,
        repeat_ngram: int = DEFAULT_REPEAT_NGRAM,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.base = base
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.stop_when_settled = stop_when_settled  # False: always generate max_new_tokens (comparisons)
        self.repeat_ngram = repeat_ngram
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.adapters = find_adapters(adapters_dir)
        check_adapters(self.adapters, base)  # before the slow load: a wrong base fails at once
        if model is None:
            started = time.perf_counter()
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
            tokenizer = AutoTokenizer.from_pretrained(base.source, **base.load_kwargs())
            model = AutoModelForCausalLM.from_pretrained(base.source, dtype=dtype, **base.load_kwargs())
            log.info("loaded %s in %.1f s", base.describe(), time.perf_counter() - started)
        self.tokenizer = tokenizer
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.model = self._attach_adapters(model, self.adapters).to(self.device).eval()

    @staticmethod
    def _attach_adapters(model: Any, adapters: dict[str, Path]) -> Any:
        if not adapters:
            return model
        from peft import PeftModel

        names = list(adapters)
        peft_model = PeftModel.from_pretrained(model, str(adapters[names[0]]), adapter_name=names[0])
        for name in names[1:]:
            peft_model.load_adapter(str(adapters[name]), adapter_name=name)
        log.info("adapters loaded: %s", ", ".join(names))
        return peft_model

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def has_adapter(self, reviewer: str) -> bool:
        return reviewer in self.adapters

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        results: list[BackendResult | None] = [None] * len(requests)
        # Reviewers without an adapter all run on the base model, so they share batches.
        groups: dict[str | None, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            groups[request.reviewer if request.reviewer in self.adapters else None].append(i)
        for adapter, indexes in groups.items():
            for start in range(0, len(indexes), self.batch_size):
                batch = indexes[start:start + self.batch_size]
                try:
                    texts = self._generate(adapter, [requests[i] for i in batch])
                except Exception as exc:  # one failing batch must not fail the other reviewers
                    log.exception("generation failed for adapter %s", adapter or "(base)")
                    for i in batch:
                        results[i] = ReviewerFailure(
                            reviewer=requests[i].reviewer, message=f"generation failed: {exc}"
                        )
                    continue
                for i, decoded in zip(batch, texts, strict=True):
                    results[i] = self.judge(requests[i], decoded)
        return [r for r in results if r is not None]

    def judge(self, request: ReviewRequest, decoded: Decoded) -> BackendResult:
        """One decoded row held to the contract by `read_answer`."""
        judged = read_answer(decoded.text, decoded.finish_reason, max_new_tokens=self.max_new_tokens)
        return as_result(request.reviewer, judged)

    def _generate(self, adapter: str | None, batch: list[ReviewRequest]) -> list[Decoded]:
        prompts = [render_text(self.tokenizer, render_messages(r)) for r in batch]
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        prompt_len = encoded["input_ids"].shape[1]
        generate_kwargs = {
            "max_new_tokens": self.max_new_tokens, "do_sample": False, "pad_token_id": self.tokenizer.pad_token_id,
            "stopping_criteria": [JsonEndStop(self.tokenizer, prompt_len)] if self.stop_when_settled else [],
        }
        if self.repeat_ngram >= 2:
            generate_kwargs["logits_processor"] = [repeat_guard_processor(self.tokenizer, prompt_len, self.repeat_ngram)]
        out = generate_with_adapter(self.model, adapter, bool(self.adapters), encoded, generate_kwargs)
        return decode_generated(self.tokenizer, out[:, prompt_len:], self.max_new_tokens, json_answer=True)


def repeat_guard_processor(tokenizer: Any, prompt_len: int, n: int) -> Any:
    """A transformers logits processor applying `reviewers.repeat_guard` to every row of a left-padded
    batch (the engine applies the same rule, so both backends pick the same tokens)."""
    import torch
    from transformers import LogitsProcessor

    prose_cache: dict[int, bool] = {}

    def is_prose(token: int) -> bool:
        if token not in prose_cache:
            prose_cache[token] = quote_free((tokenizer.convert_ids_to_tokens(token) or "").encode())
        return prose_cache[token]

    class RepeatGuardProcessor(LogitsProcessor):
        def __init__(self) -> None:
            self.guards: list[RepeatGuard] = []
            self.seen = 0

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            if not self.guards:
                self.guards = [RepeatGuard(n, is_prose) for _ in range(input_ids.shape[0])]
            fresh = input_ids[:, prompt_len + self.seen:].tolist()
            self.seen = input_ids.shape[1] - prompt_len
            for row, (guard, tokens) in enumerate(zip(self.guards, fresh)):
                guard.extend(tokens)
                banned = guard.banned()
                if banned:
                    scores[row, list(banned)] = float("-inf")
            return scores

    return RepeatGuardProcessor()


def generate_with_adapter(model: Any, adapter: str | None, has_adapters: bool, encoded: dict, kwargs: dict) -> Any:
    """`model.generate` with one adapter switched on, or (adapter None) every adapter off: the base alone."""
    import torch

    with torch.inference_mode():
        if adapter is not None:
            model.set_adapter(adapter)
            return model.generate(**encoded, **kwargs)
        if has_adapters:
            with model.disable_adapter():
                return model.generate(**encoded, **kwargs)
        return model.generate(**encoded, **kwargs)


@dataclass(frozen=True)
class Decoded:
    """One generated row: its text up to the first end token, the tokens it used, and why it ended."""

    text: str
    tokens: int
    finish_reason: Literal["stop", "length"]


def decode_generated(tokenizer: Any, rows: Any, max_new_tokens: int, *, json_answer: bool) -> list[Decoded]:
    """Decode `generate`'s new tokens per row (`rows`: batch × new tokens) and say why each row ended.

    "length" when the row reached `max_new_tokens` with no end token, unless (`json_answer`) its JSON
    object was whole by then: the stop rule would have ended it there anyway.
    """
    stops = {tokenizer.pad_token_id, tokenizer.eos_token_id} - {None}
    decoded = []
    for row in rows:
        ids = row.tolist()
        end = next((i for i, t in enumerate(ids) if t in stops), None)
        used = len(ids) if end is None else end + 1
        text = tokenizer.decode(row[:used], skip_special_tokens=True)
        capped = end is None and len(ids) >= max_new_tokens and not (json_answer and json_object_complete(text))
        decoded.append(Decoded(text=text, tokens=used, finish_reason="length" if capped else "stop"))
    return decoded


class JsonEndStop:
    """Stops each row once its answer is settled, so no token is spent on what is never read.

    `stop_on_prose` (serving): also stop an answer that starts with prose (`answer_settled`: it already
    broke the contract). Off (the eval): such a row runs on to the cap, so the eval can report how often a
    model hits it and what that costs.
    """

    def __init__(self, tokenizer: Any, prompt_len: int, *, stop_on_prose: bool = True) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stop_on_prose = stop_on_prose

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        settled = answer_settled if self.stop_on_prose else json_object_complete
        done = []
        for row in input_ids:
            generated = row.shape[0] - self.prompt_len
            opening = self.stop_on_prose and generated <= 8  # where prose first shows
            last = self.tokenizer.decode(row[-1:], skip_special_tokens=True)
            if not opening and "}" not in last:  # neither the start nor a possible end of the object
                done.append(False)
                continue
            done.append(settled(self.tokenizer.decode(row[self.prompt_len:], skip_special_tokens=True)))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
