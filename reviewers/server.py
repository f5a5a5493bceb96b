"""The reviewer server (`calora reviewers serve`): one base model and its LoRA reviewers over HTTP.

Endpoints:
- `POST /v1/review`: a batch of `ReviewRequest`s → one result per request (a `ReviewerOutput` or an error).
  A request whose reviewer has a loaded adapter uses it; any other reviewer gets the base model.
- `POST /v1/chat/completions`: OpenAI-compatible, non-streaming. `model` is an adapter name or the base
  model's name. `response_format` `json_schema` (with the `ReviewerOutput` schema) or `json_object` turns on
  constrained decoding: the only grammar this server has is the reviewer contract.
- `GET /v1/models` (the base model, then each adapter with `parent` = the base, as vLLM lists them),
  `GET /healthz`, `GET /metrics` (Prometheus text: queue depth, tokens/s, requests, latency).

Back-pressure: at most `max_queue` generations are in flight (queued or decoding in the generator). A
request that does not fit is refused at once with 429 and `Retry-After`, so a client backs off instead of
piling up work the GPU cannot finish in time. A generation that runs past `request_timeout_s` answers 504;
it keeps its place until the generator finishes it (the engine has no cancellation), so the queue stays
an honest measure of outstanding work.

The generator is anything with the `Generator` members (`submit(GenerationRequest) -> Future[GenerationResult]`,
`adapters`, `queue_depth`, `close`: the engine, `reviewers.engine.engine.Engine`); it is injected: `calora reviewers serve`
(reviewers/engine/commands.py) loads the engine and hands it to `run_server`, and tests run the real
engine on a tiny random model. Every answer is judged by `reviewers.contract.read_answer`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, Literal, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

from reviewers.contract import (
    BrokenAnswer,
    ReviewerOutput,
    ReviewRequest,
    read_answer,
    reviewer_output_schema,
)
from reviewers.engine.engine import GenerationRequest, GenerationResult
from reviewers.models import DEFAULT_MAX_NEW_TOKENS
from reviewers.prompt import ChatMessage, render_messages

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TOKENS_PER_SECOND_WINDOW_S = 60.0


class Generator(Protocol):
    """What the server drives: the engine, or anything with the same members."""

    @property
    def adapters(self) -> list[str]: ...

    def submit(self, request: GenerationRequest) -> Future: ...

    def queue_depth(self) -> int:
        """Requests waiting for a batch slot (not yet decoding)."""
        ...

    def close(self) -> None: ...


class ServerSettings(BaseModel):
    """Serving limits; `calora reviewers serve` fills them from its flags."""

    base_model: str = Field(description="The name the base model answers to in `model` and /v1/models.")
    max_queue: int = Field(default=64, ge=1, description="Generations in flight before 429.")
    request_timeout_s: float = Field(default=120.0, gt=0, description="Per HTTP request; then 504.")
    max_new_tokens: int = Field(default=DEFAULT_MAX_NEW_TOKENS, ge=1, description="Default answer length cap.")
    max_new_tokens_limit: int = Field(default=2048, ge=1, description="The most a client may ask for.")
    retry_after_s: int = Field(default=1, ge=1, description="Retry-After sent with 429.")
    max_batch_requests: int = Field(default=256, ge=1, description="Most requests in one /v1/review.")


# --- wire models --------------------------------------------------------------------------------


class ReviewBatch(BaseModel):
    """Body of `POST /v1/review`."""

    model_config = ConfigDict(extra="forbid")

    requests: list[ReviewRequest]
    max_new_tokens: int | None = Field(default=None, ge=1)
    constrained: bool = Field(default=True, description="Force the ReviewerOutput schema (the default).")
    accept_truncated: bool = Field(
        default=False, description="Accept an answer that ran out of max_new_tokens (closed early by the grammar)."
    )


class ReviewAnswerItem(BaseModel):
    """One result of `POST /v1/review`: `output` or `error`, never both."""

    reviewer: str
    model: str = Field(description="The adapter, or the base model's name when the reviewer has none.")
    output: ReviewerOutput | None = None
    error: str | None = None
    raw: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str | None = None


class ReviewResponse(BaseModel):
    results: list[ReviewAnswerItem]


class ChatRequestMessage(BaseModel):
    """An OpenAI chat message: text content, or a list of text parts."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]]

    def as_chat_message(self) -> ChatMessage:
        if isinstance(self.content, str):
            text = self.content
        else:
            kinds = {part.get("type") for part in self.content}
            if kinds - {"text"}:
                raise BadRequest(f"only text content parts are supported, got {sorted(map(str, kinds))}")
            text = "".join(str(part.get("text", "")) for part in self.content)
        role = "system" if self.role == "developer" else self.role
        return ChatMessage(role=role, content=text)


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's chat completion request this server honours; other fields are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatRequestMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: dict[str, Any] | None = None
    stream: bool = False
    n: int = 1


# --- errors -------------------------------------------------------------------------------------


class ServingError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "code"}}."""

    status = 500
    kind = "server_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


class BadRequest(ServingError):
    status = 400
    kind = "invalid_request_error"


class ModelNotFound(ServingError):
    status = 404
    kind = "model_not_found"


class QueueFull(ServingError):
    status = 429
    kind = "queue_full"


class TimedOut(ServingError):
    status = 504
    kind = "timeout"


def error_body(exc: ServingError) -> dict[str, Any]:
    return {"error": {"message": str(exc), "type": exc.kind, "code": exc.status}}


# --- pure pieces --------------------------------------------------------------------------------


def wants_constraint(response_format: dict[str, Any] | None) -> bool:
    """Whether a `response_format` asks for the reviewer grammar; BadRequest for what we cannot honour."""
    if not response_format:
        return False
    kind = response_format.get("type")
    if kind in (None, "text"):
        return False
    if kind == "json_object":
        return True
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None or schema == reviewer_output_schema():
            return True
        raise BadRequest(
            "this server constrains decoding to the ReviewerOutput schema only (the reviewer contract); "
            "send that schema (`calora contract schema --only ReviewerOutput`) or no response_format"
        )
    raise BadRequest(f"response_format type {kind!r} is not supported; use json_schema, json_object or text")


def completion_body(model: str, result: GenerationResult) -> dict[str, Any]:
    """An OpenAI `chat.completion` object for one generation."""
    completion = len(result.token_ids)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": result.text},
            "finish_reason": result.finish_reason,
        }],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": result.prompt_tokens + completion,
        },
    }


def review_item(
    request: ReviewRequest, model: str, result: GenerationResult, *, max_new_tokens: int, accept_truncated: bool
) -> ReviewAnswerItem:
    """Hold a generation to the contract (`read_answer`): the parsed answer, or the error with the raw text."""
    usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": len(result.token_ids),
             "seconds": result.seconds, "finish_reason": result.finish_reason}
    judged = read_answer(result.text, result.finish_reason, max_new_tokens=max_new_tokens,
                         accept_truncated=accept_truncated, forced_close=result.forced_close)
    if isinstance(judged, BrokenAnswer):
        return ReviewAnswerItem(reviewer=request.reviewer, model=model, raw=judged.raw, error=judged.message, **usage)
    return ReviewAnswerItem(reviewer=request.reviewer, model=model, output=judged, **usage)


# --- admission and metrics ----------------------------------------------------------------------


class Admission:
    """A bounded count of generations in flight; a slot is freed when its generation finishes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def try_acquire(self, n: int = 1) -> bool:
        with self._lock:
            if self._in_flight + n > self.capacity:
                return False
            self._in_flight += n
            return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1


class TokenRate:
    """Generated tokens per second over the last `window` seconds (a deque of completions)."""

    def __init__(self, window: float = TOKENS_PER_SECOND_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.window = window
        self.clock = clock
        self.started = clock()
        self._events: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def add(self, tokens: int) -> None:
        with self._lock:
            self._events.append((self.clock(), tokens))

    def rate(self) -> float:
        now = self.clock()
        with self._lock:
            while self._events and self._events[0][0] < now - self.window:
                self._events.popleft()
            total = sum(n for _, n in self._events)
        span = min(self.window, max(now - self.started, 1e-9))
        return total / span


class ServerMetrics:
    """Prometheus metrics of one server (its own registry, so several servers in one process never clash)."""

    def __init__(self, admission: Admission, generator: Generator) -> None:
        self.registry = CollectorRegistry()
        self.rate = TokenRate()
        self.requests = Counter(
            "calora_reviewer_requests", "HTTP requests by endpoint and outcome "
            "(ok, error, bad_request, not_found, queue_full, timeout).", ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "calora_reviewer_request_seconds", "Wall time of answered requests by endpoint.", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.generated = Counter("calora_reviewer_generated_tokens", "Tokens generated.", registry=self.registry)
        self.prompt = Counter("calora_reviewer_prompt_tokens", "Prompt tokens processed.", registry=self.registry)
        self.registry.register(_LiveGauges(admission, generator, self.rate))

    def record_generation(self, result: GenerationResult) -> None:
        self.generated.inc(len(result.token_ids))
        self.prompt.inc(result.prompt_tokens)
        self.rate.add(len(result.token_ids))


class _LiveGauges(Collector):
    """Values read at scrape time: queue depth, capacity, waiting in the engine, tokens/s."""

    def __init__(self, admission: Admission, generator: Generator, rate: TokenRate) -> None:
        self.admission = admission
        self.generator = generator
        self.rate = rate

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("calora_reviewer_queue_depth", "Generations in flight (queued or decoding).",
                                value=self.admission.in_flight)
        yield GaugeMetricFamily("calora_reviewer_queue_capacity", "Generations in flight before 429.",
                                value=self.admission.capacity)
        yield GaugeMetricFamily("calora_reviewer_engine_waiting", "Requests waiting for a batch slot.",
                                value=self.generator.queue_depth())
        yield GaugeMetricFamily(
            "calora_reviewer_tokens_per_second",
            f"Generated tokens per second over the last {TOKENS_PER_SECOND_WINDOW_S:.0f} s.", value=self.rate.rate(),
        )
        yield GaugeMetricFamily("calora_reviewer_adapters", "Adapters loaded.", value=len(self.generator.adapters))


# --- the app ------------------------------------------------------------------------------------


async def await_future(future: Future, timeout: float) -> Any:
    """Wait for a generator's future without ever cancelling it (the engine does not expect that).

    Raises `asyncio.TimeoutError` after `timeout` seconds; the generation itself runs on.
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future = loop.create_future()

    def copy(done: Future) -> None:
        if waiter.done():
            return
        if done.cancelled():
            waiter.cancel()
        elif done.exception() is not None:
            waiter.set_exception(done.exception())
        else:
            waiter.set_result(done.result())

    def on_done(done: Future) -> None:
        try:
            loop.call_soon_threadsafe(copy, done)
        except RuntimeError:  # the event loop is gone (server shutting down)
            pass

    future.add_done_callback(on_done)
    return await asyncio.wait_for(waiter, timeout)


def create_app(generator: Generator, settings: ServerSettings) -> FastAPI:
    """The reviewer server's FastAPI app around `generator`."""
    app = FastAPI(title="calora reviewer server", version="1")
    admission = Admission(settings.max_queue)
    metrics = ServerMetrics(admission, generator)
    app.state.settings = settings
    app.state.generator = generator
    app.state.admission = admission
    app.state.metrics = metrics

    @app.exception_handler(ServingError)
    async def _serving_error(request: Request, exc: ServingError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"invalid request body at {where}: {first.get('msg', 'invalid')}"
        return JSONResponse(error_body(BadRequest(message)), status_code=400)

    def submit(request: GenerationRequest) -> Future:
        """Hand one admitted generation to the generator; its slot is freed when it finishes."""
        try:
            future = generator.submit(request)
        except Exception:
            admission.release()
            raise

        def finished(done: Future) -> None:
            admission.release()
            if not done.cancelled() and done.exception() is None:
                metrics.record_generation(done.result())

        future.add_done_callback(finished)
        return future

    def admit(n: int) -> None:
        if n > settings.max_queue:
            raise BadRequest(
                f"a batch of {n} requests is larger than the whole queue ({settings.max_queue}); split it"
            )
        if not admission.try_acquire(n):
            raise QueueFull(
                f"the reviewer queue is full ({admission.in_flight} of {settings.max_queue} generations in "
                f"flight); retry after {settings.retry_after_s} s",
                headers={"Retry-After": str(settings.retry_after_s)},
            )

    def adapter_for(model: str) -> str | None:
        if model == settings.base_model:
            return None
        if model in generator.adapters:
            return model
        raise ModelNotFound(
            f"model {model!r} is not served here; served: {', '.join([settings.base_model, *generator.adapters])}"
        )

    def max_new(asked: int | None) -> int:
        value = asked or settings.max_new_tokens
        if value > settings.max_new_tokens_limit:
            raise BadRequest(f"max_tokens={value} is over this server's limit of {settings.max_new_tokens_limit}")
        return value

    @app.middleware("http")
    async def _count(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        endpoint = _endpoint(request)
        if endpoint in ("chat", "review"):
            outcome = _OUTCOMES.get(response.status_code, "error" if response.status_code >= 400 else "ok")
            metrics.requests.labels(endpoint, outcome).inc()
            if response.status_code < 400:
                metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "base_model": settings.base_model,
            "adapters": list(generator.adapters),
            "queue_depth": admission.in_flight,
            "queue_capacity": settings.max_queue,
        }

    @app.get("/metrics")
    async def metrics_text() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        created = int(time.time())
        data = [{"id": settings.base_model, "object": "model", "created": created, "owned_by": "calora",
                 "root": settings.base_model, "parent": None}]
        data += [{"id": name, "object": "model", "created": created, "owned_by": "calora",
                  "root": name, "parent": settings.base_model} for name in generator.adapters]
        return {"object": "list", "data": data}

    @app.get("/v1/schema")
    async def schema() -> dict[str, Any]:
        """The ReviewerOutput schema, the one `response_format` may name."""
        return reviewer_output_schema()

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest) -> JSONResponse:
        if body.stream:
            raise BadRequest("streaming is not supported by this server; send stream=false")
        if body.n != 1:
            raise BadRequest("n must be 1 (decoding is greedy)")
        adapter = adapter_for(body.model)
        request = GenerationRequest(
            prompt=[m.as_chat_message() for m in body.messages],
            adapter=adapter,
            max_new_tokens=max_new(body.max_completion_tokens or body.max_tokens),
            constrained=wants_constraint(body.response_format),
        )
        admit(1)
        future = submit(request)
        result = await _result(future, settings.request_timeout_s, what=f"the {body.model} completion")
        return JSONResponse(completion_body(body.model, result))

    @app.post("/v1/review")
    async def review(body: ReviewBatch) -> ReviewResponse:
        if len(body.requests) > settings.max_batch_requests:
            raise BadRequest(
                f"{len(body.requests)} requests in one batch; at most {settings.max_batch_requests}, split it"
            )
        if not body.requests:
            return ReviewResponse(results=[])
        loaded = set(generator.adapters)
        models = [r.reviewer if r.reviewer in loaded else settings.base_model for r in body.requests]
        generations = [
            GenerationRequest(
                prompt=render_messages(r), adapter=r.reviewer if r.reviewer in loaded else None,
                max_new_tokens=max_new(body.max_new_tokens), constrained=body.constrained,
            )
            for r in body.requests
        ]
        admit(len(generations))
        futures: list[Future] = []
        for g in generations:
            try:
                futures.append(submit(g))
            except Exception as exc:  # noqa: BLE001 -- the rest of the batch still runs; this slot is freed
                failed: Future = Future()
                failed.set_exception(exc)
                futures.append(failed)
        deadline = time.monotonic() + settings.request_timeout_s
        items: list[ReviewAnswerItem] = []
        timed_out = 0
        for request, model, future in zip(body.requests, models, futures, strict=True):
            left = max(0.0, deadline - time.monotonic())
            try:
                result = await await_future(future, left) if left > 0 else _done_or_timeout(future)
            except TimeoutError:
                timed_out += 1
                items.append(ReviewAnswerItem(
                    reviewer=request.reviewer, model=model,
                    error=f"timed out after {settings.request_timeout_s:g} s (the server's request timeout)",
                ))
                continue
            except Exception as exc:  # noqa: BLE001 -- one failed generation is one failed item
                items.append(ReviewAnswerItem(reviewer=request.reviewer, model=model, error=f"generation failed: {exc}"))
                continue
            items.append(review_item(request, model, result, max_new_tokens=generations[0].max_new_tokens,
                                     accept_truncated=body.accept_truncated))
        if timed_out == len(items):
            raise TimedOut(
                f"no review finished within the server's request timeout of {settings.request_timeout_s:g} s "
                f"({admission.in_flight} generations in flight); retry later or raise --timeout"
            )
        return ReviewResponse(results=items)

    return app


_OUTCOMES = {200: "ok", 400: "bad_request", 404: "not_found", 429: "queue_full", 504: "timeout"}


def _endpoint(request: Request) -> str:
    path = request.url.path
    return {"/v1/chat/completions": "chat", "/v1/review": "review"}.get(path, "other")


def _done_or_timeout(future: Future) -> Any:
    if future.done():
        return future.result()
    raise TimeoutError


async def _result(future: Future, timeout: float, *, what: str) -> GenerationResult:
    """The generation's result, or the ServingError a client can act on."""
    if future.done() and future.exception() is not None:
        raise BadRequest(str(future.exception()))  # refused at submit: unknown adapter, prompt too long
    try:
        return await await_future(future, timeout)
    except TimeoutError:
        raise TimedOut(
            f"{what} did not finish within the server's request timeout of {timeout:g} s; "
            "the server is busy or max_tokens is large: retry later, lower max_tokens or raise --timeout"
        ) from None
    except Exception as exc:
        raise ServingError(f"generation failed: {exc}") from exc


# --- `calora reviewers serve` -------------------------------------------------------------------


def served_name(source: str, gguf_file: str | None) -> str:
    """The name the base model answers to by default: the GGUF file's stem, else the folder or hub id's last part."""
    if gguf_file:
        return gguf_file.removesuffix(".gguf")
    return source.rstrip("/").rsplit("/", 1)[-1] or source


def run_server(generator: Generator, options: ServerSettings, *, host: str, port: int) -> int:
    """Serve `generator` (loaded by the command) until interrupted, then close it."""
    import uvicorn

    try:
        uvicorn.run(create_app(generator, options), host=host, port=port, log_level="info")
    finally:
        generator.close()
    return 0
