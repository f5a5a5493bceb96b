"""The author model's client: any OpenAI-compatible `/v1/chat/completions` (vLLM, llama.cpp, Ollama, a
cloud API, or `calora reviewers serve` with a base model).

Kept apart from the reviewer backends: the author writes free text (a patch), not the reviewer contract,
so no schema is sent and nothing is judged here. One request per round, no retries of a timeout (the
server may still be generating; the next round asks again), and every failure becomes an `AuthorTurn`
whose `error` says what happened.
"""

from __future__ import annotations

import time
from typing import Protocol

import httpx

from loop.rounds import AuthorTurn
from reviewers.backends.openai_backend import answer_text, error_detail
from reviewers.prompt import ChatMessage
from reviewers.slicing import approx_token_count

DEFAULT_MAX_TOKENS = 2048
MAX_ANSWER_CHARS = 200_000


class AuthorPort(Protocol):
    """What the loop needs from an author: one answer to a conversation."""

    label: str

    def ask(self, messages: list[ChatMessage]) -> AuthorTurn: ...


class OpenAIAuthor:
    """An author behind an OpenAI-compatible endpoint (`--author-url`, `--author-model`)."""

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 300.0,
        max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = 0.0, client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout_s = timeout_s
        self.label = f"{model} at {self.base_url}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._own_client = client is None
        self.client = client or httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s, connect=10.0))

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def ask(self, messages: list[ChatMessage]) -> AuthorTurn:
        body = {
            "model": self.model, "messages": [m.model_dump() for m in messages], "max_tokens": self.max_tokens,
            "temperature": self.temperature, "stream": False,
        }
        started = time.perf_counter()
        prompt_estimate = sum(approx_token_count(m.content) for m in messages)

        def failed(message: str) -> AuthorTurn:
            return AuthorTurn(error=message, prompt_tokens=prompt_estimate, seconds=time.perf_counter() - started)

        try:
            response = self.client.post(f"{self.base_url}/chat/completions", json=body)
        except httpx.TimeoutException as exc:
            return failed(f"the author ({self.label}) did not answer within {self.timeout_s:g} s "
                          f"({type(exc).__name__}); raise --author-timeout or use a faster server")
        except httpx.TransportError as exc:
            return failed(f"the author ({self.label}) is unreachable: {type(exc).__name__}: {exc}")
        if response.status_code >= 400:
            return failed(f"the author ({self.label}) answered HTTP {response.status_code}: {error_detail(response)}")
        try:
            payload = response.json()
            text, finish = answer_text(payload)
        except ValueError as exc:
            return failed(f"the author ({self.label}) sent no chat completion: {exc}")
        usage = payload.get("usage") if isinstance(payload, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        return AuthorTurn(
            text=text[:MAX_ANSWER_CHARS],
            prompt_tokens=_int(usage.get("prompt_tokens"), prompt_estimate),
            completion_tokens=_int(usage.get("completion_tokens"), approx_token_count(text)),
            seconds=time.perf_counter() - started,
            finish_reason=finish,
        )


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and value >= 0 else default
