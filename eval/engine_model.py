"""The multi-adapter engine as an eval `ReviewModel`: raw and schema-constrained decoding, tokens, latency.

Every answer is judged by `reviewers.contract.read_answer`, as `EngineBackend` judges it, so validity
measures what the serving path delivers: the one repair (`drop_inverted_ranges`: a grammar cannot relate
two fields) applies to raw and constrained answers alike, and an answer that hit `max_new_tokens` is
marked `truncated`: valid only when the engine's grammar closed it (`forced_close`), as serving judges it.
Answers are decoded with the repetition guard serving uses (`DEFAULT_REPEAT_NGRAM`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.generation import Answer, Generation, answer_from_text
from eval.results import Decoding
from reviewers.contract import ReviewRequest
from reviewers.models import DEFAULT_MAX_NEW_TOKENS, DEFAULT_MAX_SEQ_LEN, DEFAULT_REPEAT_NGRAM
from reviewers.prompt import render_messages

WILDCARD = "*"


class EngineReviewModel:
    """`reviewers.engine.Engine` behind the eval's `ReviewModel` (adapter per reviewer, or `*` for all)."""

    name = "engine"

    def __init__(self, engine: Any, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, device: str = "cpu",
                 dtype: str = "", repeat_ngram: int = DEFAULT_REPEAT_NGRAM) -> None:
        self.engine = engine
        self.max_new_tokens = max_new_tokens
        self.repeat_ngram = repeat_ngram
        self.device = device
        self.dtype = dtype

    @classmethod
    def load(cls, base_model: str | None, adapters: dict[str, Path], *,
             max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
             device: str = "auto", dtype: str = "auto", max_seq_len: int = DEFAULT_MAX_SEQ_LEN) -> EngineReviewModel:
        import torch

        from reviewers.adapter_manifest import check_adapters
        from reviewers.engine.engine import Engine
        from reviewers.models import resolve_base_model

        ref = resolve_base_model(base_model)
        check_adapters(adapters, ref)
        target = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        torch_dtype = None if dtype == "auto" else getattr(torch, dtype)
        engine = Engine.from_pretrained(ref.source, gguf_file=ref.gguf_file, adapters={k: Path(v) for k, v in adapters.items()},
                                        device=target, dtype=torch_dtype, max_seq_len=max_seq_len)
        return cls(engine, max_new_tokens=max_new_tokens, device=target,
                   dtype=str(engine.decoder.dtype).removeprefix("torch."))

    def adapter_for(self, reviewer: str) -> str | None:
        loaded = set(self.engine.adapters)
        if reviewer in loaded:
            return reviewer
        return WILDCARD if WILDCARD in loaded else None

    def answer(self, request: ReviewRequest, decoding: Decoding = "raw") -> Answer:
        return self.answer_many([request], decoding)[0]

    def answer_many(self, requests: list[ReviewRequest], decoding: Decoding = "raw") -> list[Answer]:
        """Submit every request at once (the engine batches them continuously); answers in order."""
        from reviewers.engine.engine import EngineError, GenerationRequest

        constrained = decoding == "constrained"
        futures = [
            self.engine.submit(GenerationRequest(
                prompt=render_messages(r), adapter=self.adapter_for(r.reviewer),
                max_new_tokens=self.max_new_tokens, constrained=constrained, repeat_ngram=self.repeat_ngram,
            ))
            for r in requests
        ]
        answers = []
        for future in futures:
            try:
                result = future.result()
            except EngineError as exc:  # this case alone: one over-long prompt must not fail its batch
                answers.append(Answer(text="", error=f"generation failed: {exc}", latency_s=0.0))
                continue
            answers.append(answer_from_text(Generation(
                text=result.text, prompt_tokens=result.prompt_tokens, completion_tokens=len(result.token_ids),
                latency_s=result.seconds, truncated=result.finish_reason == "length",
                forced_close=result.forced_close,
            ), self.max_new_tokens))
        return answers

    def close(self) -> None:
        self.engine.close()
