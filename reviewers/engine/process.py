"""An engine in its own process: what `calora reviewers serve --devices 0,1` runs on each GPU.

Why a process: the engine's loop does host work every decode step (scheduling, the grammar mask of each
constrained row, picking tokens), and two engines as threads of one process take turns on one GIL, so
the second GPU would wait on the first one's Python. A spawned child per device has its own interpreter.

The parent keeps the `Generator` members the server uses: `submit` puts the request on the child's
queue and returns a future that a reader thread resolves when the child answers; `queue_depth` is the
child's count of requests waiting for a batch slot, as of its latest answer.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import queue
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from reviewers.engine.engine import EngineError, GenerationRequest, GenerationResult

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 1800.0  # loading a base model onto a cold GPU (and compiling) takes minutes, not hours


def _run_engine(base_model: str | None, adapters_dir: Path | None, device: str, options: dict[str, Any],
                requests: Any, answers: Any) -> None:
    """The child: load the engine, answer ("ready", adapters), then serve requests until None arrives."""
    from reviewers.engine.backend import load_engine

    try:
        engine, _ref = load_engine(base_model, adapters_dir, device=device, **options)
    except Exception as exc:  # noqa: BLE001 -- the parent raises it with the device named
        answers.put(("failed", f"{type(exc).__name__}: {exc}"))
        return
    answers.put(("ready", engine.adapters))

    def reply(key: int, done: Future) -> None:
        error = done.exception()
        answer = ("error", str(error)) if error is not None else ("ok", done.result())
        answers.put((key, *answer, engine.queue_depth()))

    while (item := requests.get()) is not None:
        key, request = item
        engine.submit(request).add_done_callback(lambda done, key=key: reply(key, done))
    engine.close()
    answers.put(("closed", None))


class EngineProcess:
    """A `Generator` (reviewers.serving.state) whose engine runs in a spawned child on `device`."""

    def __init__(self, base_model: str | None, adapters_dir: Path | None, *, device: str, **options: Any) -> None:
        context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
        self.device = device
        self._requests = context.Queue()
        self._answers = context.Queue()
        self._child = context.Process(target=_run_engine, name=f"reviewer-engine-{device}", daemon=True,
                                      args=(base_model, adapters_dir, device, options, self._requests, self._answers))
        self._child.start()
        kind, payload = self._first_answer()
        if kind != "ready":
            self._child.join(timeout=10)
            raise EngineError(f"the engine on {device} failed to load: {payload}")
        self._adapters: list[str] = list(payload)
        self._futures: dict[int, Future] = {}
        self._keys = itertools.count()
        self._waiting = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"engine-answers-{device}", daemon=True)
        self._reader.start()

    def _first_answer(self) -> tuple[str, Any]:
        try:
            return self._answers.get(timeout=READY_TIMEOUT_S)
        except queue.Empty:
            self._child.kill()
            return "failed", f"no answer within {READY_TIMEOUT_S:.0f} s"

    @property
    def adapters(self) -> list[str]:
        return list(self._adapters)

    def submit(self, request: GenerationRequest) -> Future:
        future: Future = Future()
        with self._lock:
            if not self._child.is_alive():
                future.set_exception(EngineError(f"the engine process on {self.device} is not running"))
                return future
            key = next(self._keys)
            self._futures[key] = future
        self._requests.put((key, request))
        return future

    def queue_depth(self) -> int:
        return self._waiting

    def _read(self) -> None:
        while True:
            try:
                answer = self._answers.get(timeout=1.0)
            except queue.Empty:
                if not self._child.is_alive():
                    self._fail_all(f"the engine process on {self.device} exited ({self._child.exitcode})")
                    return
                continue
            if answer[0] == "closed":
                self._fail_all("the engine was closed")
                return
            key, kind, payload, waiting = answer
            self._waiting = waiting
            with self._lock:
                future = self._futures.pop(key)
            if kind == "ok":
                future.set_result(GenerationResult.model_validate(payload))
            else:
                future.set_exception(EngineError(payload))

    def _fail_all(self, message: str) -> None:
        with self._lock:
            pending, self._futures = list(self._futures.values()), {}
        for future in pending:
            future.set_exception(EngineError(message))

    def close(self) -> None:
        if self._child.is_alive():
            self._requests.put(None)
            self._child.join(timeout=60)
        if self._child.is_alive():
            self._child.kill()
        self._reader.join(timeout=5)
