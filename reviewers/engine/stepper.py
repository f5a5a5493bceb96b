"""The decode step over every batch slot, with its inputs kept on the device.

The step feeds each slot's last token at its position, for all `max_batch` slots at once (free slots
compute garbage nobody reads), so its shapes never change and on CUDA it is captured once as a graph
(one with LoRA, one for base-only batches). It also picks each slot's greedy token and advances its own
inputs (token = pick, position + 1). So unconstrained rows can run step after step with no help from
the host: the engine launches step k + 1 before it reads the tokens of step k, and the GPU never waits
for Python's bookkeeping (see `Engine._decode`). The host writes the inputs only when rows join, after
adapters change. Rows under a grammar or a repeat guard need the host's masks: it fills them while the
step runs, and `pick_masked` re-picks on the device and feeds those picks forward in the step's place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from reviewers.engine.constraint import apply_bitmask
from reviewers.engine.kv_cache import KVCache
from reviewers.engine.lora import LoraBank
from reviewers.engine.model import EAGER, Decoder, LoraBatch, Pointwise, decode

log = logging.getLogger(__name__)


@dataclass
class Launched:
    """A step on its way: its greedy tokens land in `host` once `event` has passed."""

    host: torch.Tensor  # [max_batch] greedy token per slot (pinned host memory on CUDA)
    event: torch.cuda.Event | None

    def tokens(self) -> list[int]:
        if self.event is not None:
            self.event.synchronize()
        return self.host.tolist()


class SlotStepper:
    """Runs decode steps for every slot from device-resident inputs (see the module docstring)."""

    def __init__(
        self,
        decoder: Decoder,
        cache: KVCache,
        lora: Callable[[LoraBank, torch.Tensor], LoraBatch | None],
        *,
        ops: Pointwise = EAGER,
        cuda_graphs: bool = False,
    ) -> None:
        self.decoder, self.cache, self.ops = decoder, cache, ops
        self.cuda_graphs = cuda_graphs
        self._lora = lora
        device, batch = decoder.device, cache.max_batch
        pinned = device.type == "cuda"
        # tokens, positions, adapter slot: one tensor, so the host updates all three with one copy
        self.inputs = torch.zeros(3, batch, dtype=torch.long, device=device)
        self.picked = torch.zeros(batch, dtype=torch.long, device=device)
        self._host = [torch.zeros(batch, dtype=torch.long, pin_memory=pinned) for _ in range(2)]
        self._turn = 0
        self.graphs: dict[bool, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}

    def reset(self) -> None:
        """Forget captured graphs (they hold the old LoRA stacks and element-wise functions)."""
        self.graphs.clear()

    def write(self, tokens: list[int], positions: list[int], adapters: list[int]) -> None:
        """Set every slot's inputs from the host (one copy)."""
        staged = torch.tensor([tokens, positions, adapters], dtype=torch.long)
        if self.inputs.is_cuda:
            staged = staged.pin_memory()
        self.inputs.copy_(staged, non_blocking=True)

    def step(self, bank: LoraBank, use_lora: bool) -> torch.Tensor:
        """One step for every slot; returns the logits [max_batch, vocab] (valid until the next step)."""
        if not self.cuda_graphs:
            return self._run(bank, use_lora)
        if use_lora not in self.graphs:
            try:
                self.graphs[use_lora] = self._capture(bank, use_lora)
            except Exception:
                if self.ops is EAGER:
                    raise
                log.exception("compiled decode failed; falling back to eager element-wise ops")
                self.ops = EAGER
                self.graphs[use_lora] = self._capture(bank, use_lora)
        graph, logits = self.graphs[use_lora]
        graph.replay()
        return logits

    def launch(self, bank: LoraBank, use_lora: bool) -> Launched:
        """A step whose greedy tokens the host reads later (`Launched.tokens`), without waiting now."""
        self.step(bank, use_lora)
        return self._hand_over()

    def pick_masked(self, logits: torch.Tensor, bitmask: torch.Tensor, slots: list[int]) -> Launched:
        """Re-pick the step's tokens with `bitmask` rows masking `slots`' logits, and feed those picks
        forward as the step fed its own; the host reads them later, without waiting now."""
        device = logits.device
        apply_bitmask(logits, bitmask.to(device, non_blocking=True), torch.tensor(slots).to(device, non_blocking=True))
        self.picked.copy_(logits.argmax(dim=-1))
        self.inputs[0].copy_(self.picked)
        return self._hand_over()

    def _hand_over(self) -> Launched:
        host = self._host[self._turn]
        self._turn ^= 1  # two buffers: the next launch must not overwrite tokens not read yet
        host.copy_(self.picked, non_blocking=host.is_pinned())
        event = None
        if self.inputs.is_cuda:
            event = torch.cuda.Event()
            event.record()
        return Launched(host, event)

    def _run(self, bank: LoraBank, use_lora: bool) -> torch.Tensor:
        tokens, positions, adapters = self.inputs
        lora = self._lora(bank, adapters) if use_lora else None
        logits = decode(self.decoder, self.cache, tokens, positions, lora, self.ops)
        self.picked.copy_(logits.argmax(dim=-1))
        tokens.copy_(self.picked)
        # free slots keep stepping: hold their position inside the cache
        positions.add_(1).clamp_(max=self.decoder.max_seq_len - 1)
        return logits

    def _capture(self, bank: LoraBank, use_lora: bool) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """Capture one step as a CUDA graph (removes ~600 kernel launches' CPU cost per step).

        Warm-up runs the real step, which advances the inputs and writes K/V one position ahead:
        the inputs are put back afterwards, and the cache positions written ahead are rewritten by
        the real steps before any query can see them.
        """
        saved = self.inputs.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._run(bank, use_lora)
        torch.cuda.current_stream().wait_stream(stream)
        self.inputs.copy_(saved)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            logits = self._run(bank, use_lora)
        return graph, logits
