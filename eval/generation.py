"""The model side of an eval: small protocols, and adapters from the project's backends to them.

The eval needs more than `ReviewerBackend.review` gives (the raw text of an invalid answer, token counts,
per-case latency, and plain chat generation for the style gate), so it talks to models through two
protocols:

- `ReviewModel.answer(request, decoding)` → `Answer` (raw text, parsed output or error, tokens);
- `ChatModel.generate(messages)` → `Generation` (text and tokens), for the code-style gate.

`TransformersModel` implements both over the model and tokenizer that `TransformersBackend` loads, with
the same prompt (`render_messages`), greedy decoding and stop-at-end-of-JSON rule. `BackendReviewModel`
wraps any `ReviewerBackend` (engine, OpenAI-compatible server) for the cases where only `review` exists.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from eval.results import Decoding
from reviewers.backends.base import ReviewerBackend, ReviewerFailure
from reviewers.backends.transformers_backend import (
    TransformersBackend,
    generate_with_adapter,
    json_object_complete,
)
from reviewers.contract import ContractError, ReviewerOutput, ReviewRequest, parse_review, render_answer
from reviewers.prompt import ChatMessage, render_messages

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


def answer_from_text(generation: Generation) -> Answer:
    """Parse generated text strictly against the contract; a violation is recorded, not raised."""
    try:
        output, error = parse_review(generation.text), None
    except ContractError as exc:
        output, error = None, str(exc)
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

    def __init__(self, model: Any, tokenizer: Any, *, max_new_tokens: int = 384, device: str = "cpu",
                 adapters: dict[str, Path] | None = None, chat_adapter: str | None = None) -> None:
        self.tokenizer = tokenizer
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.base_model = model
        self.adapters = dict(adapters or {})
        self.chat_adapter = chat_adapter
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
        backend = TransformersBackend(resolve_base_model(base_model), None, device=load_on)
        model = backend.model
        if dtype in ("float32", "bfloat16", "float16"):
            model = model.to(getattr(torch, dtype))
        return cls(model, backend.tokenizer, device=target, **kwargs)

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
                                 device=self.device, adapters=adapters, chat_adapter=self.chat_adapter)

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
        return [answer_from_text(g) for g in generations]

    def generate(self, messages: list[ChatMessage]) -> Generation:
        return self._generate([messages], self.adapter_for(self.chat_adapter), stop_at_json=False)[0]

    def _generate(self, conversations: list[list[ChatMessage]], adapter: str | None,
                  stop_at_json: bool) -> list[Generation]:

        started = time.perf_counter()
        self.tokenizer.padding_side = "left"
        prompts = [self.tokenizer.apply_chat_template([m.model_dump() for m in messages], tokenize=False,
                                                      add_generation_prompt=True) for messages in conversations]
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        prompt_len = encoded["input_ids"].shape[1]
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": False,
                                  "pad_token_id": self.tokenizer.pad_token_id}
        if stop_at_json:
            kwargs["stopping_criteria"] = [JsonEndStop(self.tokenizer, prompt_len)]
        out = generate_with_adapter(self.model, adapter, bool(self.adapters), encoded, kwargs)
        latency = time.perf_counter() - started
        prompt_tokens = encoded["attention_mask"].sum(dim=1).tolist()
        stops = {self.tokenizer.pad_token_id, self.tokenizer.eos_token_id} - {None}
        generations = []
        for row, n_prompt in zip(out[:, prompt_len:], prompt_tokens, strict=True):
            ids = row.tolist()
            used = next((i + 1 for i, t in enumerate(ids) if t in stops), len(ids))
            generations.append(Generation(
                text=self.tokenizer.decode(row[:used], skip_special_tokens=True), prompt_tokens=int(n_prompt),
                completion_tokens=used, latency_s=latency, truncated=used >= self.max_new_tokens and used == len(ids),
            ))
        return generations


def _attach(model: Any, adapters: dict[str, Path]) -> Any:
    for folder in adapters.values():
        if not (Path(folder) / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{folder}: no adapter_config.json; expected a PEFT adapter folder")
    return TransformersBackend._attach_adapters(model, {name: Path(p) for name, p in adapters.items()})


class JsonEndStop:
    """Stop once the answer holds a whole JSON object: what follows it is never graded.

    Unlike the serving backend, a row that starts with prose runs on to the cap: the eval reports how
    often a model hits it ("hit token cap") and what that costs in latency.
    """

    def __init__(self, tokenizer: Any, prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = []
        for row in input_ids:
            if "}" not in self.tokenizer.decode(row[-1:], skip_special_tokens=True):
                done.append(False)
                continue
            done.append(json_object_complete(self.tokenizer.decode(row[self.prompt_len:], skip_special_tokens=True)))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


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

    def __init__(self, base_url: str, model: str, api_key: str | None = None, max_new_tokens: int = 384,
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
