"""The reviewer server's Prometheus metrics: requests and latency per endpoint, tokens, live gauges."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from reviewers.engine.engine import GenerationResult

if TYPE_CHECKING:
    from reviewers.serving.state import Admission, Generator

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TOKENS_PER_SECOND_WINDOW_S = 60.0
# The endpoints whose requests are counted, and the outcome each status code is counted as.
COUNTED_ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/review": "review"}
OUTCOMES = {200: "ok", 400: "bad_request", 404: "not_found", 429: "queue_full", 504: "timeout"}


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

    def record_request(self, path: str, status: int, seconds: float) -> None:
        """Count one answered request of a counted endpoint; only successes enter the latency histogram."""
        endpoint = COUNTED_ENDPOINTS.get(path)
        if endpoint is None:
            return
        self.requests.labels(endpoint, OUTCOMES.get(status, "error" if status >= 400 else "ok")).inc()
        if status < 400:
            self.latency.labels(endpoint).observe(seconds)


def counting_middleware(
    metrics: ServerMetrics,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """An HTTP middleware that times every request and hands it to `metrics.record_request`."""

    async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        metrics.record_request(request.url.path, response.status_code, time.perf_counter() - started)
        return response

    return count


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
