"""Continuous batching bookkeeping: a waiting queue and a table of batch slots (no tensors here).

Requests wait in arrival order; whenever slots are free, waiting requests are admitted (up to a prefill
token budget per step, so one huge admission does not stall running rows for long); a row leaves its
slot the moment it finishes, and the next waiting request can take it on the following step.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from reviewers.engine.closer import ObjectEnd


@dataclass
class Pending:
    """A request accepted by `submit`, with its prompt already tokenised."""

    request: Any  # GenerationRequest
    prompt: list[int]
    future: Future
    constraint: Any | None  # ConstrainedRow
    repeat_guard: Any | None = None  # reviewers.repeat_guard.RepeatGuard
    submitted: float = field(default_factory=time.perf_counter)


@dataclass
class Row:
    """A request that holds a batch slot (and so a KV-cache row)."""

    pending: Pending
    slot: int
    generated: list[int] = field(default_factory=list)
    object_end: ObjectEnd = field(default_factory=ObjectEnd)
    finish_reason: str | None = None
    forced_close: bool = False

    @property
    def position(self) -> int:
        """Position of the last generated token, the one the next decode step feeds."""
        return len(self.pending.prompt) + len(self.generated) - 1


class Scheduler:
    """Which request holds which slot, and who waits."""

    def __init__(self, max_batch: int) -> None:
        self.waiting: deque[Pending] = deque()
        self.slots: list[Row | None] = [None] * max_batch

    def submit(self, pending: Pending) -> None:
        self.waiting.append(pending)

    def admit(self, prefill_tokens: int) -> list[Row]:
        """Move waiting requests into free slots, at least one, then while the prompt budget lasts."""
        admitted: list[Row] = []
        budget = prefill_tokens
        for slot, row in enumerate(self.slots):
            if not self.waiting:
                break
            if row is not None:
                continue
            if admitted and len(self.waiting[0].prompt) > budget:
                break
            pending = self.waiting.popleft()
            budget -= len(pending.prompt)
            self.slots[slot] = Row(pending, slot)
            admitted.append(self.slots[slot])
        return admitted

    def running(self) -> list[Row]:
        return [row for row in self.slots if row is not None]

    def release(self, row: Row) -> None:
        self.slots[row.slot] = None

    def idle(self) -> bool:
        return not self.waiting and all(row is None for row in self.slots)

    def drain(self) -> list[Pending]:
        """Everything queued or running, removed (for failing them all after an engine error)."""
        items = [row.pending for row in self.running()] + list(self.waiting)
        self.waiting.clear()
        self.slots = [None] * len(self.slots)
        return items
