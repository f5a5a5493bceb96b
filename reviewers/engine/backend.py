"""`EngineBackend`: the in-process engine behind the `ReviewerBackend` interface the app uses."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from reviewers.backends.base import Backend, BackendResult, ReviewerFailure, as_result
from reviewers.contract import ReviewRequest, read_answer
from reviewers.engine.engine import Engine, EngineError, GenerationRequest, GenerationResult
from reviewers.models import DEFAULT_MAX_NEW_TOKENS, DEFAULT_MAX_SEQ_LEN, DEFAULT_REPEAT_NGRAM, BaseModelRef
from reviewers.prompt import render_messages

log = logging.getLogger(__name__)


def load_engine(
    base_model: str | None, adapters_dir: Path | None, *, device: str = "auto", **options: Any
) -> tuple[Engine, BaseModelRef]:
    """The base model and its checked adapters in the engine: what the engine backend and the reviewer
    server (`calora reviewers serve`) both serve. `options` go to `Engine.from_pretrained`."""
    import torch

    from reviewers.adapter_manifest import check_adapters
    from reviewers.backends.transformers_backend import find_adapters
    from reviewers.models import resolve_base_model

    ref = resolve_base_model(base_model)
    adapters = find_adapters(adapters_dir)
    check_adapters(adapters, ref)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    log.info("loading %s on %s with adapters: %s", ref.describe(), device, ", ".join(adapters) or "(none)")
    started = time.perf_counter()
    engine = Engine.from_pretrained(ref.source, gguf_file=ref.gguf_file, adapters=adapters, device=device, **options)
    log.info("engine ready in %.1f s", time.perf_counter() - started)
    return engine, ref


class EngineBackend(Backend):
    """Reviews with the engine: adapter = the reviewer's name when loaded, else the base model."""

    name = "engine"

    def __init__(
        self, engine: Engine, constrained: bool = True, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        repeat_ngram: int = DEFAULT_REPEAT_NGRAM,
    ) -> None:
        self.engine = engine
        self.constrained = constrained
        self.max_new_tokens = max_new_tokens
        self.repeat_ngram = repeat_ngram

    @classmethod
    def from_settings(cls, settings) -> EngineBackend:
        """Build from `reviewers.backends.factory.BackendSettings` (base model, adapters folder, device,
        dtype)."""
        import torch

        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, None: None}[settings.engine_dtype]
        engine, _ref = load_engine(settings.base_model, settings.adapters_dir, device=settings.device,
                                   dtype=dtype, max_seq_len=DEFAULT_MAX_SEQ_LEN)
        return cls(engine, max_new_tokens=settings.max_new_tokens)

    def has_adapter(self, reviewer: str) -> bool:
        return reviewer in self.engine.adapters

    def count_tokens(self, text: str) -> int:
        """The engine's tokenizer when it has one (it always does when built from a model folder)."""
        if self.engine.tokenizer is None:
            return super().count_tokens(text)
        return len(self.engine.tokenizer.encode(text, add_special_tokens=False))

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        loaded = set(self.engine.adapters)
        futures = [
            self.engine.submit(
                GenerationRequest(
                    prompt=render_messages(request),
                    adapter=request.reviewer if request.reviewer in loaded else None,
                    max_new_tokens=self.max_new_tokens,
                    constrained=self.constrained,
                    repeat_ngram=self.repeat_ngram,
                )
            )
            for request in requests
        ]
        results: list[BackendResult] = []
        for request, future in zip(requests, futures):
            try:
                results.append(self.judge(request, future.result()))
            except EngineError as exc:
                results.append(ReviewerFailure(reviewer=request.reviewer, message=f"engine: {exc}"))
        return results

    def judge(self, request: ReviewRequest, result: GenerationResult) -> BackendResult:
        """One generation held to the contract by `read_answer` (the engine knows if it closed the JSON)."""
        judged = read_answer(result.text, result.finish_reason, max_new_tokens=self.max_new_tokens,
                             forced_close=result.forced_close)
        return as_result(request.reviewer, judged)
