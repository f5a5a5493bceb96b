"""The first real backend: one transformers base model plus per-reviewer PEFT adapters, greedy decoding.

Simple and correct rather than fast (the multi-adapter engine in `reviewers/engine/` is the fast path):
requests are grouped by adapter, the matching adapter is switched on (or all adapters off for the base
model), and each group is generated in small left-padded batches.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from reviewers.backends.base import BackendResult, ReviewerFailure
from reviewers.contract import ContractError, ReviewRequest, parse_review
from reviewers.models import BaseModelRef
from reviewers.prompt import render_messages

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


def json_object_complete(text: str) -> bool:
    """True once `text` holds a whole top-level JSON object (after optional prose or a fence)."""
    start = text.find("{")
    if start < 0:
        return False
    try:
        json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError:
        return False
    return True


class TransformersBackend:
    """Reviews with a transformers model; an adapter per reviewer when `adapters/<reviewer>/` exists."""

    name = "transformers"

    def __init__(
        self,
        base: BaseModelRef,
        adapters_dir: Path | None = None,
        *,
        device: str = "auto",
        max_new_tokens: int = 384,
        batch_size: int = 4,
        stop_when_settled: bool = True,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.base = base
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.stop_when_settled = stop_when_settled  # False: always generate max_new_tokens (comparisons)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        if model is None:
            started = time.perf_counter()
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
            kwargs = {"gguf_file": base.gguf_file} if base.gguf_file else {}
            tokenizer = AutoTokenizer.from_pretrained(base.source, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(base.source, dtype=dtype, **kwargs)
            log.info("loaded %s in %.1f s", base.describe(), time.perf_counter() - started)
        self.tokenizer = tokenizer
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.adapters = find_adapters(adapters_dir)
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
                for i, text in zip(batch, texts, strict=True):
                    results[i] = _parse_or_fail(requests[i].reviewer, text)
        return [r for r in results if r is not None]

    def _generate(self, adapter: str | None, batch: list[ReviewRequest]) -> list[str]:

        prompts = [
            self.tokenizer.apply_chat_template(
                [m.model_dump() for m in render_messages(r)], tokenize=False, add_generation_prompt=True
            )
            for r in batch
        ]
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        prompt_len = encoded["input_ids"].shape[1]
        generate_kwargs = {
            "max_new_tokens": self.max_new_tokens, "do_sample": False, "pad_token_id": self.tokenizer.pad_token_id,
            "stopping_criteria": [_JsonEndStop(self.tokenizer, prompt_len)] if self.stop_when_settled else [],
        }
        out = generate_with_adapter(self.model, adapter, bool(self.adapters), encoded, generate_kwargs)
        return self.tokenizer.batch_decode(out[:, prompt_len:], skip_special_tokens=True)


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


def answer_settled(text: str) -> bool:
    """True once more tokens cannot change whether `text` keeps the contract.

    That is when a whole JSON object is there, or when the answer starts with prose: `parse_review`
    rejects an answer that does not start with an object or a fence, so generating on is wasted time.
    """
    stripped = text.lstrip()
    if stripped and not stripped.startswith(("{", "`")):
        return True
    return json_object_complete(text)


class _JsonEndStop:
    """Stops each row as soon as its answer is settled (see `answer_settled`)."""

    def __init__(self, tokenizer: Any, prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = []
        for row in input_ids:
            generated = row.shape[0] - self.prompt_len
            last = self.tokenizer.decode(row[-1:], skip_special_tokens=True)
            if generated > 8 and "}" not in last:  # neither the start nor a possible end of the object
                done.append(False)
                continue
            done.append(answer_settled(self.tokenizer.decode(row[self.prompt_len:], skip_special_tokens=True)))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _parse_or_fail(reviewer: str, text: str) -> BackendResult:
    try:
        return parse_review(text)
    except ContractError as exc:
        return ReviewerFailure(reviewer=reviewer, message=f"answer broke the contract: {exc}", raw=text)
