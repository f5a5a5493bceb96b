"""Several engines behind one server: one per device (data parallel), each request to the least loaded.

The server keeps its one admission (`state.Admission`, `--max-queue`) in front of the pool, so 429 and
the queue gauges mean what they mean with one engine; the pool only decides which engine decodes an
admitted request. Load is the engine's generations in flight (queued or decoding), counted here from
submit to the future's end, so a slow device gets fewer new requests without the pool timing anything.
Every engine serves the same base model and adapters, so a request's answer does not depend on where it
ran (greedy decoding).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

from reviewers.engine.engine import GenerationRequest
from reviewers.serving.state import Generator


class PoolError(ValueError):
    """Engines that cannot serve as one (different adapters), or a device list that names none."""


def parse_devices(text: str) -> list[str]:
    """`--devices`: "0,1" (CUDA indices), "cuda:0,cuda:1" or "cpu,cpu" (tests) → torch device names."""
    devices = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.isdigit():
            devices.append(f"cuda:{part}")
        elif part == "cpu" or part == "cuda" or (part.startswith("cuda:") and part[5:].isdigit()):
            devices.append(part)
        else:
            raise PoolError(f"--devices: {part!r} is not a device; give CUDA indices (0,1), cuda:N or cpu")
    if not devices:
        raise PoolError("--devices names no device; give e.g. 0,1")
    return devices


def least_loaded(loads: Sequence[int]) -> int:
    """The engine to take the next request: the fewest in flight, the first of equals."""
    return min(range(len(loads)), key=lambda i: (loads[i], i))


class EnginePool:
    """A `Generator` over several generators (one engine per device); see the module docstring."""

    def __init__(self, generators: Sequence[Generator]) -> None:
        if not generators:
            raise PoolError("an engine pool needs at least one engine")
        first = sorted(generators[0].adapters)
        for index, generator in enumerate(generators[1:], start=1):
            if sorted(generator.adapters) != first:
                raise PoolError(f"engine {index} serves adapters {sorted(generator.adapters)}, engine 0 {first}: "
                                "every engine of a pool must serve the same ones")
        self.generators = list(generators)
        self._in_flight = [0] * len(generators)
        self.routed = [0] * len(generators)  # requests each engine was given, since the start
        self._lock = threading.Lock()

    @property
    def adapters(self) -> list[str]:
        return self.generators[0].adapters

    def loads(self) -> list[int]:
        """Generations in flight per engine."""
        with self._lock:
            return list(self._in_flight)

    def submit(self, request: GenerationRequest) -> Future:
        with self._lock:
            index = least_loaded(self._in_flight)
            self._in_flight[index] += 1
            self.routed[index] += 1
        try:
            future = self.generators[index].submit(request)
        except Exception:
            self._finished(index)
            raise
        future.add_done_callback(lambda _done: self._finished(index))
        return future

    def _finished(self, index: int) -> None:
        with self._lock:
            self._in_flight[index] -= 1

    def queue_depth(self) -> int:
        return sum(generator.queue_depth() for generator in self.generators)

    def close(self) -> None:
        for generator in self.generators:
            generator.close()
