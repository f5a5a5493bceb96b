"""What the routes share: the injected generator, the serving limits, admission and metrics.

One `Serving` per app, kept on `app.state.serving` by the factory and reached by the routes through the
`ServingDep` dependency, so no route closes over the factory's locals.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from pydantic import BaseModel, Field

from reviewers.engine.engine import GenerationRequest, GenerationResult
from reviewers.models import DEFAULT_MAX_NEW_TOKENS
from reviewers.serving.errors import BadRequest, ModelNotFound, QueueFull, ServingError, TimedOut
from reviewers.serving.metrics import ServerMetrics


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


@dataclass
class Serving:
    """The loaded generator and everything the routes decide with."""

    generator: Generator
    settings: ServerSettings
    admission: Admission
    metrics: ServerMetrics

    @classmethod
    def around(cls, generator: Generator, settings: ServerSettings) -> Serving:
        admission = Admission(settings.max_queue)
        return cls(generator, settings, admission, ServerMetrics(admission, generator))

    def served_models(self) -> list[str]:
        """The base model's name, then each adapter's."""
        return [self.settings.base_model, *self.generator.adapters]

    def adapter_for(self, model: str) -> str | None:
        """The adapter a request's `model` names (None: the base model); ModelNotFound for anything else."""
        if model == self.settings.base_model:
            return None
        if model in self.generator.adapters:
            return model
        raise ModelNotFound(f"model {model!r} is not served here; served: {', '.join(self.served_models())}")

    def max_new(self, asked: int | None) -> int:
        """The answer length cap of a request: what it asked for, else the default; never over the limit."""
        value = asked or self.settings.max_new_tokens
        if value > self.settings.max_new_tokens_limit:
            raise BadRequest(f"max_tokens={value} is over this server's limit of {self.settings.max_new_tokens_limit}")
        return value

    def admit(self, n: int) -> None:
        """Take `n` slots of the queue, or refuse at once (400 for a batch larger than the queue, else 429)."""
        capacity = self.settings.max_queue
        if n > capacity:
            raise BadRequest(f"a batch of {n} requests is larger than the whole queue ({capacity}); split it")
        if not self.admission.try_acquire(n):
            raise QueueFull(
                f"the reviewer queue is full ({self.admission.in_flight} of {capacity} generations in "
                f"flight); retry after {self.settings.retry_after_s} s",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )

    def submit(self, request: GenerationRequest) -> Future:
        """Hand one admitted generation to the generator; its slot is freed when it finishes."""
        try:
            future = self.generator.submit(request)
        except Exception:
            self.admission.release()
            raise

        def finished(done: Future) -> None:
            self.admission.release()
            if not done.cancelled() and done.exception() is None:
                self.metrics.record_generation(done.result())

        future.add_done_callback(finished)
        return future

    async def result(self, future: Future, *, what: str) -> GenerationResult:
        """The generation's result within the request timeout, or the ServingError a client can act on."""
        timeout = self.settings.request_timeout_s
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


async def await_future(future: Future, timeout: float) -> Any:
    """Wait for a generator's future without ever cancelling it (the engine does not expect that).

    Raises `TimeoutError` after `timeout` seconds; the generation itself runs on.
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


def get_serving(request: Request) -> Serving:
    """The app's `Serving` (set by `reviewers.serving.app.create_app`)."""
    return request.app.state.serving


ServingDep = Annotated[Serving, Depends(get_serving)]
