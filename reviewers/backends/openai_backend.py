"""Reviews through any OpenAI-compatible `/v1/chat/completions` server.

Our reviewer server (`calora reviewers serve`), vLLM (`--enable-lora --lora-modules python=...`), Ollama and
llama.cpp's `llama-server` all speak this API; the adapter is chosen by the model name, which defaults to
the reviewer's name. Each request is rendered with `reviewers.prompt.render_messages` (the prompt the
adapter was trained on) and the answer is judged by `reviewers.contract.read_answer`, as on every backend.

How the schema travels (`schema_mode`, see deploy/vllm.md):
- `json_schema` (default): `response_format={"type": "json_schema", ...}`: OpenAI, vLLM >= 0.6, our server,
  llama-server, Ollama >= 0.5 (constrained decoding on all but hosted OpenAI with `strict` off).
- `vllm_structured_outputs`: the extra field `structured_outputs={"json": schema}` (vLLM >= 0.10; the only
  spelling from 0.12 on, which removed `guided_json`).
- `vllm_guided_json`: the extra field `guided_json=schema` (vLLM before 0.12).
- `json_object`: `response_format={"type": "json_object"}`, for servers with a JSON mode but no schemas.
- `none`: nothing; the evaluation uses it to measure raw contract validity.

An answer with `finish_reason` "length" ran out of tokens: a failure unless `accept_truncated` (a
constraining server closes it into valid JSON, but its last finding may be cut mid-sentence); the rule
is `read_answer`'s. Tokens are counted with the slicer's estimate: the server's tokenizer is not here.

Retries (tenacity): connection errors and 5xx with exponential backoff; 429 after the server's
`Retry-After` (capped). A 4xx other than 429 is final. Timeouts are final too (504 from the server, or
no answer within `timeout_s`) unless `retry_timeouts`: the server is still generating that answer, and
a retry would queue the same work again behind it (measured with `calora reviewers serve` on a loaded
CPU: 4 requests × 4 attempts left 17 generations queued and no answer). Whatever fails becomes a
`ReviewerFailure` for that request only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from reviewers.backends.base import Backend, BackendResult, ReviewerFailure, as_result
from reviewers.contract import ReviewRequest, read_answer, reviewer_output_schema
from reviewers.models import DEFAULT_MAX_NEW_TOKENS
from reviewers.prompt import render_messages

log = logging.getLogger(__name__)

SchemaMode = Literal["json_schema", "vllm_structured_outputs", "vllm_guided_json", "json_object", "none"]
SCHEMA_MODES: tuple[str, ...] = ("json_schema", "vllm_structured_outputs", "vllm_guided_json", "json_object", "none")
SCHEMA_NAME = "ReviewerOutput"
MODELS_CACHE_SECONDS = 60.0


class OpenAIBackendError(RuntimeError):
    """The backend is misconfigured (no base URL, unknown schema mode)."""


class RetryableStatus(Exception):
    """A 429 or 5xx answer worth trying again; `retry_after` is the server's own wait, when it gave one."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class FinalStatus(Exception):
    """A 4xx answer (other than 429) that another attempt would not change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ServedModel(BaseModel):
    """One entry of `GET /v1/models`; `parent` is set for a LoRA adapter on vLLM and on our server."""

    model_config = ConfigDict(extra="allow")

    id: str
    parent: str | None = None


# --- pure pieces --------------------------------------------------------------------------------


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: either delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def schema_fields(mode: str, schema: dict[str, Any], *, strict: bool = False) -> dict[str, Any]:
    """The body fields that ask a server for JSON following `schema`, in the spelling `mode` names."""
    if mode == "json_schema":
        return {"response_format": {
            "type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": strict},
        }}
    if mode == "vllm_structured_outputs":
        return {"structured_outputs": {"json": schema}}
    if mode == "vllm_guided_json":
        return {"guided_json": schema}
    if mode == "json_object":
        return {"response_format": {"type": "json_object"}}
    if mode == "none":
        return {}
    raise OpenAIBackendError(f"unknown schema mode {mode!r}; use one of {', '.join(SCHEMA_MODES)}")


def chat_body(
    request: ReviewRequest, model: str, *, max_tokens: int, schema_mode: str, strict: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `/v1/chat/completions` body for one review request (greedy, non-streaming)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [m.model_dump() for m in render_messages(request)],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": False,
    }
    body.update(schema_fields(schema_mode, reviewer_output_schema(), strict=strict))
    body.update(extra or {})
    return body


def answer_text(payload: Any) -> tuple[str, str | None]:
    """`choices[0].message.content` and `finish_reason` of a chat completion; ValueError when absent."""
    try:
        choice = payload["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"the response is not a chat completion (no choices[0].message.content): {exc!r}") from exc
    if content is None:
        refusal = (choice.get("message") or {}).get("refusal")
        raise ValueError(f"the model returned no content{f' (refusal: {refusal})' if refusal else ''}")
    if not isinstance(content, str):
        raise ValueError(  # noqa: TRY004 -- a malformed payload, reported like the other shape errors
            f"choices[0].message.content is a {type(content).__name__}, expected text"
        )
    return content, choice.get("finish_reason")


def error_detail(response: httpx.Response) -> str:
    """A short description of an error response: the OpenAI `error.message`, else the body's start."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data.get("detail"))
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    return json.dumps(data)[:300]


def pick_base_model(models: list[ServedModel]) -> str | None:
    """The base model in a `/v1/models` list: the parent the adapters name, else the only model."""
    parents = {m.parent for m in models if m.parent}
    if len(parents) == 1:
        return parents.pop()
    return models[0].id if len(models) == 1 else None


# --- the backend --------------------------------------------------------------------------------


class OpenAIBackend(Backend):
    """A `ReviewerBackend` over HTTP; one chat completion per request, several in flight at once."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        models: Mapping[str, str] | None = None,
        base_model: str | None = None,
        fallback_to_base: bool = True,
        schema_mode: str = "json_schema",
        strict_schema: bool = False,
        extra_body: Mapping[str, Mapping[str, Any]] | None = None,
        max_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        accept_truncated: bool = False,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        max_attempts: int = 4,
        retry_timeouts: bool = False,
        max_retry_wait_s: float = 60.0,
        concurrency: int = 8,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        label: str | None = None,
    ) -> None:
        if not base_url:
            raise OpenAIBackendError(
                "the openai backend needs a base URL: set CALORA_OPENAI_BASE_URL, e.g. http://gpu-box:8001/v1"
            )
        schema_fields(schema_mode, {})  # fail now, not on the first review, when the mode is unknown
        self.base_url = base_url.rstrip("/")
        self.models = dict(models or {})
        self.base_model = base_model
        self.fallback_to_base = fallback_to_base
        self.schema_mode = schema_mode
        self.strict_schema = strict_schema
        self.extra_body = {k: dict(v) for k, v in (extra_body or {}).items()}
        self.max_tokens = max_tokens
        self.accept_truncated = accept_truncated
        self.max_attempts = max(1, max_attempts)
        self.retry_timeouts = retry_timeouts
        self.max_retry_wait_s = max_retry_wait_s
        self.concurrency = max(1, concurrency)
        self.sleep = sleep
        self.label = label or self.base_url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._own_client = client is None
        self.client = client or httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
        )
        if client is not None and headers:
            self.client.headers.update(headers)
        self._served: tuple[float, list[ServedModel]] | None = None
        self._served_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> OpenAIBackend:
        """From `reviewers.backends.factory.BackendSettings` (the `CALORA_OPENAI_*` variables)."""
        return cls(
            settings.openai_base_url or "",
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            models=settings.openai_models,
            base_model=settings.openai_base_model,
            schema_mode=settings.openai_schema_mode,
            extra_body=settings.openai_extra_body,
            max_tokens=settings.max_new_tokens,
            timeout_s=settings.openai_timeout_s,
            max_attempts=settings.openai_max_attempts,
            concurrency=settings.openai_concurrency,
        )

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    # --- which model answers a reviewer -------------------------------------------------------

    def served_models(self, refresh: bool = False) -> list[ServedModel]:
        """`GET /v1/models`, cached for a minute; [] when the server does not list its models."""
        with self._served_lock:
            if self._served and not refresh and time.monotonic() - self._served[0] < MODELS_CACHE_SECONDS:
                return self._served[1]
            try:
                response = self.client.get(f"{self.base_url}/models")
                response.raise_for_status()
                models = [ServedModel.model_validate(m) for m in response.json().get("data", [])]
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                log.warning("could not list the models at %s: %s", self.base_url, exc)
                models = []
            self._served = (time.monotonic(), models)
            return models

    def has_adapter(self, reviewer: str) -> bool:
        """True when a model of the reviewer's own is configured or served (not the bare base model)."""
        if reviewer in self.models:
            return True
        served = self.served_models()
        base = self.base_model or pick_base_model(served)
        return any(m.id == reviewer and m.id != base for m in served)

    def model_for(self, reviewer: str) -> str:
        """The model name a reviewer's requests go to: mapped, its adapter, or the base model without one."""
        if reviewer in self.models:
            return self.models[reviewer]
        if not self.fallback_to_base:
            return reviewer
        served = self.served_models()
        if not served or any(m.id == reviewer for m in served):
            return reviewer
        base = self.base_model or pick_base_model(served)
        if base is None:
            return reviewer  # let the server say what it serves
        log.info("no adapter %r at %s; reviewing with the base model %s", reviewer, self.label, base)
        return base

    # --- reviewing ----------------------------------------------------------------------------

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        if not requests:
            return []
        if len(requests) == 1 or self.concurrency == 1:
            return [self.review_one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self.review_one, requests))

    def review_one(self, request: ReviewRequest) -> BackendResult:
        """One request to one answer; every failure becomes a `ReviewerFailure` naming the cause."""
        reviewer = request.reviewer
        try:
            model = self.model_for(reviewer)
            extra = {**self.extra_body.get("*", {}), **self.extra_body.get(reviewer, {})}
            body = chat_body(request, model, max_tokens=self.max_tokens, schema_mode=self.schema_mode,
                             strict=self.strict_schema, extra=extra)
            payload = self._post_with_retries(body)
        except FinalStatus as exc:
            if exc.status == 504:
                return ReviewerFailure(reviewer=reviewer, message=f"{self.label} timed out on the server: {exc}")
            return ReviewerFailure(reviewer=reviewer, message=f"{self.label} refused the request: {exc}")
        except RetryableStatus as exc:
            return ReviewerFailure(
                reviewer=reviewer, message=f"{self.label} kept failing after {self.max_attempts} attempt(s): {exc}"
            )
        except httpx.TimeoutException as exc:
            attempts = self.max_attempts if self.retry_timeouts or not _is_answer_timeout(exc) else 1
            return ReviewerFailure(
                reviewer=reviewer,
                message=f"{self.label} timed out after {attempts} attempt(s) ({type(exc).__name__})",
            )
        except httpx.TransportError as exc:
            return ReviewerFailure(
                reviewer=reviewer,
                message=f"{self.label} unreachable after {self.max_attempts} attempt(s): {type(exc).__name__}: {exc}",
            )
        try:
            text, finish = answer_text(payload)
        except ValueError as exc:
            return ReviewerFailure(reviewer=reviewer, message=f"{self.label}: {exc}", raw=json.dumps(payload)[:2000])
        return as_result(reviewer, read_answer(
            text, finish, max_new_tokens=self.max_tokens, accept_truncated=self.accept_truncated,
        ))

    def _post_with_retries(self, body: dict[str, Any]) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(self._worth_retrying),
            sleep=self.sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )
        return retrying(self._post_once, body)

    def _worth_retrying(self, exc: BaseException) -> bool:
        if isinstance(exc, RetryableStatus):
            return True
        if isinstance(exc, httpx.TransportError):
            return self.retry_timeouts or not _is_answer_timeout(exc)
        return False

    def _post_once(self, body: dict[str, Any]) -> Any:
        response = self.client.post(f"{self.base_url}/chat/completions", json=body)
        status = response.status_code
        if status == 504 and not self.retry_timeouts:
            raise FinalStatus(status, f"HTTP 504: {error_detail(response)}")
        if status == 429 or status >= 500:
            raise RetryableStatus(
                status, f"HTTP {status}: {error_detail(response)}",
                retry_after_seconds(response.headers.get("retry-after")),
            )
        if status >= 400:
            detail = error_detail(response)
            if status == 404:
                served = ", ".join(m.id for m in self.served_models()) or "(unknown)"
                detail += f"; model {body['model']!r} is not served here (served: {served})"
            raise FinalStatus(status, f"HTTP {status}: {detail}")
        try:
            return response.json()
        except ValueError as exc:
            raise FinalStatus(status, f"HTTP {status} with a body that is not JSON: {response.text[:200]!r}") from exc

    def _wait(self, state: RetryCallState) -> float:
        """The server's Retry-After when it sent one (capped), else exponential backoff from 0.5 s."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableStatus) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_wait_s)
        return wait_exponential(multiplier=0.5, max=self.max_retry_wait_s)(state)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s attempt %d failed (%s); retrying", self.label, state.attempt_number, exc)


def _is_answer_timeout(exc: BaseException) -> bool:
    """A timeout after the request was sent (the server may still be working on it)."""
    return isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout))
