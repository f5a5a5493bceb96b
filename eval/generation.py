"""The model side of an eval: small protocols, and adapters from the project's backends to them.

The eval needs more than `ReviewerBackend.review` gives (the raw text of an invalid answer, token counts,
per-case latency, and plain chat generation for the style gate), so it talks to models through two
protocols:

- `ReviewModel.answer(request, decoding)` → `Answer` (raw text, parsed output or error, tokens);
- `ChatModel.generate(messages)` → `Generation` (text and tokens), for the code-style gate.

`TransformersModel` implements both over the model and tokenizer that `TransformersBackend` loads, with
the same prompt (`render_messages`), greedy decoding, stop-at-end-of-JSON rule (`JsonEndStop`) and
decoding of the rows (`decode_generated`). `BackendReviewModel` wraps any `ReviewerBackend` (engine,
OpenAI-compatible server) for the cases where only `review` exists.

Every answer is judged by `reviewers.contract.read_answer`, the rule every backend and the reviewer
server apply: an answer that ran out of tokens is invalid, an inverted range loses its `end_line`. So a
valid answer in the eval is an answer serving would deliver.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from eval.results import Decoding
from reviewers.adapter_manifest import check_adapters
from reviewers.backends.base import ReviewerBackend, ReviewerFailure
from reviewers.backends.transformers_backend import (
    JsonEndStop,
    TransformersBackend,
    decode_generated,
    generate_with_adapter,
    repeat_guard_processor,
)
from reviewers.contract import BrokenAnswer, ReviewerOutput, ReviewRequest, read_answer, render_answer
from reviewers.models import DEFAULT_MAX_NEW_TOKENS, DEFAULT_REPEAT_NGRAM, BaseModelRef
from reviewers.prompt import ChatMessage, render_messages, render_text

log = logging.getLogger(__name__)


class UnsupportedDecodingError(ValueError):
    """The model cannot decode the way the eval asked (e.g. constrained decoding without the engine)."""


class Generation(BaseModel):
    """Text generated for one prompt, with what it cost."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float
    truncated: bool = False
    forced_close: bool | None = None  # the engine's grammar closed it at the cap; None: unknown (read_answer)


class Answer(BaseModel):
    """A reviewer answer: the text, and either the parsed output or why it broke the contract."""

    text: str
    output: ReviewerOutput | None = None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float
    truncated: bool = False


@runtime_checkable
class ReviewModel(Protocol):
    """Anything that answers review requests for the eval."""

    name: str

    def answer(self, request: ReviewRequest, decoding: Decoding) -> Answer: ...


@runtime_checkable
class ChatModel(Protocol):
    """Anything that continues a chat: what the code-style gate needs."""

    name: str

    def generate(self, messages: list[ChatMessage]) -> Generation: ...


def answer_from_text(generation: Generation, max_new_tokens: int | None = None) -> Answer:
    """Judge generated text with `read_answer` (truncated = finish_reason "length"); a violation is
    recorded, not raised."""
    judged = read_answer(generation.text, "length" if generation.truncated else "stop",
                         max_new_tokens=max_new_tokens, forced_close=generation.forced_close)
    output, error = (None, judged.message) if isinstance(judged, BrokenAnswer) else (judged, None)
    return Answer(text=generation.text, output=output, error=error, prompt_tokens=generation.prompt_tokens,
                  completion_tokens=generation.completion_tokens, latency_s=generation.latency_s,
                  truncated=generation.truncated)


# --- transformers ----------------------------------------------------------------------------------

class TransformersModel:
    """Greedy generation with a transformers causal LM, optionally through LoRA adapters.

    `adapters` maps a reviewer name to an adapter folder; the reserved name `*` applies one adapter to
    every reviewer (`calora eval run --adapter DIR`). Reviewers without an adapter use the base model.
    """

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                 device: str = "cpu",
                 adapters: dict[str, Path] | None = None, chat_adapter: str | None = None,
                 base: BaseModelRef | None = None, repeat_ngram: int = DEFAULT_REPEAT_NGRAM) -> None:
        self.tokenizer = tokenizer
        self.repeat_ngram = repeat_ngram
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.base_model = model
        self.adapters = dict(adapters or {})
        self.chat_adapter = chat_adapter
        self.base = base  # known when loaded here: adapter manifests are checked against it
        if base is not None:
            check_adapters(self.adapters, base)
        self.model = _attach(model, self.adapters).to(device).eval()

    @classmethod
    def load(cls, base_model: str | None, *, device: str = "auto", dtype: str = "auto",
             **kwargs: Any) -> TransformersModel:
        """Load the base model the way `TransformersBackend` does (GGUF, folder or hub id).

        `dtype` "auto" keeps the backend's choice (bf16 on CUDA, fp32 on CPU); "float32" on CUDA loads in
        fp32 on the CPU first, so GPU answers match what the same command gives on a CPU.
        """
        import torch

        from reviewers.backends.transformers_backend import TransformersBackend
        from reviewers.models import resolve_base_model

        target = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        load_on = "cpu" if dtype == "float32" else target
        ref = resolve_base_model(base_model)
        backend = TransformersBackend(ref, None, device=load_on)
        model = backend.model
        if dtype in ("float32", "bfloat16", "float16"):
            model = model.to(getattr(torch, dtype))
        return cls(model, backend.tokenizer, device=target, base=ref, **kwargs)

    @property
    def dtype(self) -> str:
        return str(next(self.base_model.parameters()).dtype).removeprefix("torch.")

    @classmethod
    def from_backend(cls, backend: Any, **kwargs: Any) -> TransformersModel:
        """Reuse a `TransformersBackend`'s loaded model and tokenizer (no reload)."""
        model = backend.model.get_base_model() if hasattr(backend.model, "get_base_model") else backend.model
        kwargs.setdefault("max_new_tokens", backend.max_new_tokens)
        return cls(model, backend.tokenizer, device=backend.device, **kwargs)

    def with_adapters(self, adapters: dict[str, Path]) -> TransformersModel:
        """The same base weights with other adapters (the current ones are unloaded first)."""
        self.close()
        return TransformersModel(self.base_model, self.tokenizer, max_new_tokens=self.max_new_tokens,
                                 device=self.device, adapters=adapters, chat_adapter=self.chat_adapter, base=self.base)

    def close(self) -> None:
        """Take the LoRA layers out of the base model so it can carry other adapters."""
        if self.adapters and hasattr(self.model, "unload"):
            self.base_model = self.model.unload()
        self.adapters = {}
        self.model = self.base_model

    def adapter_for(self, reviewer: str | None) -> str | None:
        if reviewer is not None and reviewer in self.adapters:
            return reviewer
        return "*" if "*" in self.adapters else None

    def answer(self, request: ReviewRequest, decoding: Decoding = "raw") -> Answer:
        return self.answer_many([request], decoding)[0]

    def answer_many(self, requests: list[ReviewRequest], decoding: Decoding = "raw") -> list[Answer]:
        """Answer requests of one reviewer as one left-padded batch (the batch's wall time is each latency)."""
        if decoding != "raw":
            raise UnsupportedDecodingError(
                "the transformers backend decodes without a schema constraint; use --backend engine "
                "for constrained decoding"
            )
        adapters = {self.adapter_for(r.reviewer) for r in requests}
        if len(adapters) > 1:
            raise ValueError("a batch must use one adapter; group requests by reviewer")
        generations = self._generate([render_messages(r) for r in requests], adapters.pop(), stop_at_json=True)
        return [answer_from_text(g, self.max_new_tokens) for g in generations]

    def generate(self, messages: list[ChatMessage]) -> Generation:
        return self._generate([messages], self.adapter_for(self.chat_adapter), stop_at_json=False)[0]

    def _generate(self, conversations: list[list[ChatMessage]], adapter: str | None,
                  stop_at_json: bool) -> list[Generation]:

        started = time.perf_counter()
        self.tokenizer.padding_side = "left"
        prompts = [render_text(self.tokenizer, messages) for messages in conversations]
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        prompt_len = encoded["input_ids"].shape[1]
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": False,
                                  "pad_token_id": self.tokenizer.pad_token_id}
        if stop_at_json:
            # Unlike serving, a row that starts with prose runs on to the cap: the eval reports how often.
            kwargs["stopping_criteria"] = [JsonEndStop(self.tokenizer, prompt_len, stop_on_prose=False)]
            if self.repeat_ngram >= 2:  # answers decode as serving decodes them
                kwargs["logits_processor"] = [repeat_guard_processor(self.tokenizer, prompt_len, self.repeat_ngram)]
        out = generate_with_adapter(self.model, adapter, bool(self.adapters), encoded, kwargs)
        latency = time.perf_counter() - started
        prompt_tokens = encoded["attention_mask"].sum(dim=1).tolist()
        rows = decode_generated(self.tokenizer, out[:, prompt_len:], self.max_new_tokens, json_answer=stop_at_json)
        return [
            Generation(text=row.text, prompt_tokens=int(n_prompt), completion_tokens=row.tokens, latency_s=latency,
                       truncated=row.finish_reason == "length")
            for row, n_prompt in zip(rows, prompt_tokens, strict=True)
        ]


def _attach(model: Any, adapters: dict[str, Path]) -> Any:
    for folder in adapters.values():
        if not (Path(folder) / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{folder}: no adapter_config.json; expected a PEFT adapter folder")
    return TransformersBackend._attach_adapters(model, {name: Path(p) for name, p in adapters.items()})


# --- any ReviewerBackend ---------------------------------------------------------------------------

class BackendReviewModel:
    """Any `ReviewerBackend`, one request at a time so that latency is per case; no token counts."""

    def __init__(self, backend: ReviewerBackend, constrained: bool | None = None) -> None:
        self.backend = backend
        self.name = backend.name
        self.constrained = constrained

    def answer(self, request: ReviewRequest, decoding: Decoding = "raw") -> Answer:
        if self.constrained is not None and (decoding == "constrained") != self.constrained:
            raise UnsupportedDecodingError(
                f"the {self.name} backend was built for {'constrained' if self.constrained else 'raw'} decoding"
            )
        if self.constrained is None and decoding == "constrained":
            raise UnsupportedDecodingError(f"the {self.name} backend has no constrained decoding switch")
        started = time.perf_counter()
        (result,) = self.backend.review([request])
        latency = time.perf_counter() - started
        if isinstance(result, ReviewerFailure):
            return Answer(text=result.raw, error=result.message, latency_s=latency)
        return Answer(text=render_answer(result), output=result, latency_s=latency)


# --- OpenAI-compatible chat endpoint --------------------------------------------------------------

class OpenAIChatModel:
    """A chat model behind an OpenAI-compatible `/v1/chat/completions` (our server, vLLM, llama.cpp)."""

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                 timeout_s: float = 300.0, client: Any = None) -> None:
        import httpx

        self.url = base_url.rstrip("/") + ("/chat/completions" if base_url.rstrip("/").endswith("/v1")
                                           else "/v1/chat/completions")
        self.model = model
        self.max_new_tokens = max_new_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(timeout=timeout_s, headers=headers)

    def generate(self, messages: list[ChatMessage]) -> Generation:
        started = time.perf_counter()
        response = self.client.post(self.url, json={
            "model": self.model, "messages": [m.model_dump() for m in messages],
            "max_tokens": self.max_new_tokens, "temperature": 0,
        })
        response.raise_for_status()
        body = response.json()
        usage = body.get("usage") or {}
        return Generation(text=body["choices"][0]["message"]["content"] or "",
                          prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
                          latency_s=time.perf_counter() - started)
