"""A training step recorded once as a CUDA graph and replayed: forward, backward and the optimizer update.

The LoRA step on a small model is launch-bound: thousands of small kernels a step, each launched from
Python through autograd and PEFT, leave the GPU idle most of the time (bench/NOTES-training.md). A CUDA
graph replays every kernel of the step with one launch. It needs a step with fixed shapes that never
waits for the GPU, so here:

- every packed batch is padded to one token budget (padding segments, target -100) and its cu_seqlens to
  a fixed number of slots (empty trailing sequences);
- the loss is computed over every position with the non-answer ones weighted 0 (`static_rows`);
- the optimizer is capturable (its step counter and learning rate live on the GPU).

The first `eager_steps` calls run eagerly (they compile and warm up the kernels, and they are real steps);
the next one records the graph, and every later one copies its batch into the recorded inputs and replays.
On a CPU, or with `use_graph=False`, every call runs eagerly with the same padding and loss, which is how the
tests check that this step computes what the ordinary one does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from training.loss import AnswerLossModel
from training.packing import IGNORE_INDEX, PackedBatch


@dataclass(frozen=True)
class StaticShape:
    """The one shape every batch is padded to."""

    tokens: int  # tokens a step: the packing budget
    max_sequences: int  # cu_seqlens slots, padding segments included
    max_seqlen: int  # the longest sequence (and padding segment) a batch may hold
    decision_mask: bool = False  # every batch carries one (all False where a batch marks no verdict)


def sequence_slots(most_sequences: int, tokens: int, max_seqlen: int) -> int:
    """cu_seqlens slots for a step of `tokens` holding at most `most_sequences` real sequences: those, the
    padding segments of at most `max_seqlen` tokens that may fill the rest, and one spare."""
    return most_sequences + -(-tokens // max_seqlen) + 1


class StaticShapeError(ValueError):
    """A batch does not fit the recorded shape."""


def pad_to_static(batch: PackedBatch, shape: StaticShape) -> PackedBatch:
    """The packed batch padded to `shape`: padding segments of at most max_seqlen tokens (target -100),
    then empty sequences up to max_sequences. The model computes the same thing for every real token."""
    if batch.cu_seqlens is None:
        raise StaticShapeError("a static step needs a packed batch (one row with cu_seqlens)")
    if batch.max_seqlen > shape.max_seqlen:
        raise StaticShapeError(f"a sequence of {batch.max_seqlen} tokens is longer than max_seqlen {shape.max_seqlen}")
    used = batch.input_ids.shape[1]
    free = shape.tokens - used
    if free < 0:
        raise StaticShapeError(f"a batch of {used} tokens is over the step's {shape.tokens}")
    pads = [shape.max_seqlen] * (free // shape.max_seqlen) + ([free % shape.max_seqlen] if free % shape.max_seqlen else [])
    cu = batch.cu_seqlens.tolist()
    for n in pads:
        cu.append(cu[-1] + n)
    if len(cu) - 1 > shape.max_sequences:
        raise StaticShapeError(f"{len(cu) - 1} sequences (padding included) are over max_sequences "
                               f"{shape.max_sequences}")
    cu += [shape.tokens] * (shape.max_sequences + 1 - len(cu))
    positions = [torch.arange(n, dtype=batch.position_ids.dtype, device=batch.position_ids.device) for n in pads]

    def extend(t: torch.Tensor, fill: int) -> torch.Tensor:
        return torch.cat([t, torch.full((1, free), fill, dtype=t.dtype, device=t.device)], dim=1)

    if batch.decision_mask is not None and not shape.decision_mask:
        raise StaticShapeError("this batch marks verdict tokens and the step's shape has no decision mask")
    decision = None
    if shape.decision_mask:
        marked = batch.decision_mask
        if marked is None:
            marked = torch.zeros((1, used), dtype=torch.bool, device=batch.input_ids.device)
        decision = extend(marked, 0)
    return PackedBatch(
        input_ids=extend(batch.input_ids, 0),
        position_ids=torch.cat([batch.position_ids, *(p[None] for p in positions)], dim=1),
        targets=extend(batch.targets, IGNORE_INDEX),
        attention_mask=None,
        cu_seqlens=torch.tensor(cu, dtype=torch.int32, device=batch.cu_seqlens.device),
        max_seqlen=shape.max_seqlen,
        tokens=batch.tokens,
        answer_tokens=batch.answer_tokens,
        decision_mask=decision,
    )


class GraphedStep:
    """`step(batch)` = forward + backward + optimizer.step() + zero_grad, with fixed shapes; graphed on CUDA.

    Returns the step's loss as a tensor (a copy: the recorded one is overwritten by the next replay).
    """

    def __init__(self, loss_model: AnswerLossModel, optimizer: torch.optim.Optimizer, shape: StaticShape,
                 device: torch.device, dtype: torch.dtype, eager_steps: int = 3, use_graph: bool | None = None,
                 before_update: Callable[[], None] | None = None) -> None:
        self.loss_model = loss_model
        self.optimizer = optimizer
        self.shape = shape
        self.device = device
        self.dtype = dtype
        self.eager_steps = eager_steps
        self.use_graph = device.type == "cuda" if use_graph is None else use_graph
        self.before_update = before_update  # e.g. gradient clipping; recorded into the graph with the rest
        self.calls = 0
        self.graph: Any = None
        self.inputs: PackedBatch | None = None
        self.loss: torch.Tensor | None = None
        loss_model.static_rows = True
        if self.use_graph:
            for group in optimizer.param_groups:
                if not group.get("capturable", False):
                    raise ValueError("a CUDA-graphed step needs an optimizer built with capturable=True")

    def _forward_backward(self, batch: PackedBatch) -> torch.Tensor:
        # autocast's weight cache would keep tensors made outside the graph: off (CUDA graphs' documented rule)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32,
                            cache_enabled=False):
            loss = self.loss_model(batch.input_ids, batch.position_ids, batch.targets, None, batch.cu_seqlens,
                                   batch.max_seqlen, batch.decision_mask)
        loss.backward()
        if self.before_update is not None:
            self.before_update()
        self.optimizer.step()
        return loss

    def _eager(self, static: PackedBatch) -> torch.Tensor:
        loss = self._forward_backward(static)
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def __call__(self, batch: PackedBatch) -> torch.Tensor:
        static = pad_to_static(batch, self.shape).to(self.device)
        self.calls += 1
        if not self.use_graph:
            return self._eager(static)
        if self.calls <= self.eager_steps:  # warm-up on a side stream, as graph capture asks
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                loss = self._eager(static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return loss.clone()  # a copy made on this stream, which owns it
        if self.graph is None:
            self._record(static)
        else:
            assert self.inputs is not None
            for name in ("input_ids", "position_ids", "targets", "cu_seqlens", "decision_mask"):
                target, source = getattr(self.inputs, name), getattr(static, name)
                if target is not None:  # pad_to_static gives every batch the same tensors
                    target.copy_(source, non_blocking=True)
        self.graph.replay()
        assert self.loss is not None
        return self.loss.detach().clone()

    def _record(self, static: PackedBatch) -> None:
        """Record the step's kernels once; the recorded input tensors are refilled before each replay."""
        self.inputs = static
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates the gradients inside the graph's pool
        torch.cuda.synchronize(self.device)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss = self._forward_backward(static)
