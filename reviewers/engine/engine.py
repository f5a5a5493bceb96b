"""The public engine: one base model, many LoRA reviewers, continuous batching, JSON by construction.

    engine = Engine.from_pretrained("path/or/hub-id", adapters={"python": Path("adapters/python")},
                                    device="cuda")
    [result] = engine.generate([GenerationRequest(prompt=messages, adapter="python")])
    future = engine.submit(request)          # thread-safe; what a server calls

One worker thread runs the loop: admit waiting requests into free slots (prefill, eager), then one decode
step for every slot (on CUDA a captured graph), pick each row's token (grammar mask, greedy), retire rows
that finished. Requests join and leave between steps; each row uses its own adapter or none.

Pipelining (on by default on CUDA): while no running row is constrained, the step picks the greedy
tokens itself and feeds them to the next step on the device, so the loop launches step k + 1 before it
reads step k's tokens; a row that finished at step k is known one step late and its extra step is
thrown away. Constrained rows need the host between steps (the grammar mask), so with any of them
running each step is read before the next one starts.

Screened head (on by default on CPU): the eager decode step reads an int8 copy of the LM head to find
the few tokens that can be each row's greedy pick, then computes only those logits exactly
(`reviewers.engine.screened_head`): the picks are the full head's, at a fraction of its memory traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from reviewers.engine.constraint import (
    ReviewerGrammar,
    Vocabulary,
    allocate_bitmask,
    allowed_tokens,
    apply_bitmask,
    ban_tokens,
)
from reviewers.engine.kv_cache import KVCache
from reviewers.engine.lora import (
    AdapterError,
    LoraAdapter,
    LoraBank,
    adapter_from_state,
    build_bank,
    load_peft_adapter,
    rows_for,
)
from reviewers.engine.model import (
    EAGER,
    Decoder,
    LoraBatch,
    Pointwise,
    attach_lora,
    decode,
    decoder_from_hf,
    prefill,
)
from reviewers.engine.scheduler import Pending, Row, Scheduler
from reviewers.engine.screened_head import ScreenedHead
from reviewers.engine.stepper import Launched, SlotStepper
from reviewers.models import DEFAULT_MAX_NEW_TOKENS
from reviewers.prompt import ChatMessage, render_ids
from reviewers.repeat_guard import RepeatGuard, pick_unbanned, quote_free

log = logging.getLogger(__name__)


class GenerationRequest(BaseModel):
    """One generation: a prompt (token ids, or chat messages rendered by `reviewers.prompt.render_text`)."""

    model_config = ConfigDict(extra="forbid")

    prompt: list[int] | list[ChatMessage]
    adapter: str | None = Field(default=None, description="Loaded adapter name; None = the base model.")
    max_new_tokens: int = Field(default=DEFAULT_MAX_NEW_TOKENS, ge=1)
    constrained: bool = Field(default=True, description="Force the ReviewerOutput JSON schema.")
    ignore_eos: bool = Field(default=False, description="Generate exactly max_new_tokens (benchmarks).")
    repeat_ngram: int = Field(
        default=0, ge=0,
        description="Forbid repeating an all-prose n-gram of this size (reviewers.repeat_guard); 0: off.",
    )


class GenerationResult(BaseModel):
    """What a request produced. `forced_close`: the budget ran out and the JSON was closed early."""

    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: Literal["stop", "length"]
    seconds: float
    forced_close: bool = False


class EngineError(RuntimeError):
    """A request the engine cannot run (too long, unknown adapter...); the message says why."""


class Engine:
    """Base model + adapters + KV cache + scheduler. See the module docstring for the loop."""

    def __init__(
        self,
        decoder: Decoder,
        vocab: Vocabulary,
        tokenizer=None,
        *,
        max_batch: int = 32,
        prefill_tokens: int = 16384,
        lora_kernel: Literal["grouped", "gathered"] = "grouped",
        cuda_graphs: bool = True,
        compile: bool = True,
        pipeline: bool | None = None,
        screened_head: bool | None = None,
    ) -> None:
        self.decoder = decoder
        self.vocab = vocab
        self._prose: list[bool] | None = None  # per token: prose for the repeat guard (built on first use)
        self.tokenizer = tokenizer
        self.max_seq_len = decoder.max_seq_len
        self.prefill_tokens = prefill_tokens
        self.lora_kernel = lora_kernel
        graphs = cuda_graphs and decoder.device.type == "cuda"
        # on GPU the element-wise stretches of decode are compiled into fused kernels (see model.Pointwise)
        self._ops = Pointwise.compiled() if compile and decoder.device.type == "cuda" else EAGER
        self._prefill_ops = Pointwise.compiled_rows() if compile and decoder.device.type == "cuda" else EAGER
        self.cache = KVCache.allocate(
            decoder.cache_lengths(), max_batch, decoder.n_kv_heads, decoder.head_dim, decoder.dtype, decoder.device,
        )
        self._adapters: dict[str, LoraAdapter] = {}
        self._bank: LoraBank = build_bank([], decoder.module_shapes(), len(decoder.layers), decoder.dtype,
                                          decoder.device)
        self._grammar: ReviewerGrammar | None = None
        self._scheduler = Scheduler(max_batch)
        # pipelined decode: every slot steps from device-resident inputs; default where graphs run
        self.pipeline = graphs if pipeline is None else pipeline
        self._stepper = SlotStepper(decoder, self.cache, self._lora, ops=self._ops, cuda_graphs=graphs)
        # the eager (CPU) decode step picks through an int8 screen of the LM head; default on CPU
        screen = decoder.device.type == "cpu" if screened_head is None else screened_head
        self._screen = ScreenedHead.of(decoder) if screen and not self.pipeline else None
        self._in_flight: tuple[list[Row], Launched] | None = None
        self._mask_buffers: list[torch.Tensor] | None = None  # host bitmasks of masked steps (`_fill_masks`)
        self._stale = True  # the device inputs no longer match the rows: the host rewrites them
        self._lock = threading.Condition()
        # held for a whole step, and while adapters change the weights; always taken before _lock
        self._model_lock = threading.Lock()
        self._changes_waiting = 0  # adapter changes waiting for the model lock: the loop lets them in first
        self._worker: threading.Thread | None = None
        self._closed = False
        self.stats = {"steps": 0, "prefills": 0, "generated_tokens": 0, "prefill_s": 0.0}
        self.profile = False  # when True, time prefills exactly (synchronising the device)

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_model(
        cls,
        model: torch.nn.Module,
        tokenizer=None,
        *,
        vocab: Vocabulary | None = None,
        adapters: Mapping[str, Path | str | tuple[Mapping, Mapping]] = {},
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        max_batch: int = 32,
        max_seq_len: int = 4096,
        **options,
    ) -> Engine:
        """Wrap a loaded transformers causal LM (its weights are copied; the model can be dropped)."""
        dtype = dtype or (torch.bfloat16 if device == "cuda" else torch.float32)
        decoder = decoder_from_hf(model, dtype=dtype, device=device, max_seq_len=max_seq_len)
        if vocab is None:
            if tokenizer is None:
                raise EngineError("Engine.from_model needs a tokenizer or a Vocabulary")
            vocab = Vocabulary.from_tokenizer(tokenizer, size=decoder.vocab)
        engine = cls(decoder, vocab, tokenizer, max_batch=max_batch, **options)
        for name, source in adapters.items():
            engine.add_adapter(name, source)
        return engine

    @classmethod
    def from_pretrained(
        cls,
        base: str | Path,
        *,
        gguf_file: str | None = None,
        adapters: Mapping[str, Path | str] = {},
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        max_batch: int = 32,
        max_seq_len: int = 4096,
        **options,
    ) -> Engine:
        """Load a base model from a folder, a hub id (local cache) or a GGUF file in that folder."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        extra = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(str(base), **extra)
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32, **extra)
        return cls.from_model(
            model, tokenizer, adapters=adapters, device=device, dtype=dtype, max_batch=max_batch,
            max_seq_len=max_seq_len, **options,
        )

    # -- adapters --------------------------------------------------------------------------------

    @property
    def adapters(self) -> list[str]:
        return list(self._adapters)

    def add_adapter(self, name: str, source: Path | str | LoraAdapter | tuple[Mapping, Mapping]) -> None:
        """Load (or replace) adapter `name` from a PEFT folder, a `LoraAdapter` or (config, state)."""
        if isinstance(source, LoraAdapter):
            adapter = source
        elif isinstance(source, tuple):
            adapter = adapter_from_state(name, *source)
        else:
            adapter = load_peft_adapter(source, name)
        with self._changing():
            self._check_unused(name, "replace")
            self._rebuild({**self._adapters, name: adapter})

    def remove_adapter(self, name: str) -> None:
        with self._changing():
            if name not in self._adapters:
                raise AdapterError(f"adapter {name!r} is not loaded; loaded: {self.adapters}")
            self._check_unused(name, "remove")
            self._rebuild({k: v for k, v in self._adapters.items() if k != name})

    @contextmanager
    def _changing(self):
        """Hold both locks for an adapter change. A busy loop takes the model lock again right after each
        step, and a plain lock is not fair, so the loop waits between steps while a change is waiting."""
        with self._lock:
            self._changes_waiting += 1
        try:
            with self._model_lock, self._lock:
                yield
        finally:
            with self._lock:
                self._changes_waiting -= 1
                self._lock.notify_all()

    def _check_unused(self, name: str, verb: str) -> None:
        if any(row.pending.request.adapter == name for row in self._scheduler.running()) or any(
            p.request.adapter == name for p in self._scheduler.waiting
        ):
            raise AdapterError(f"cannot {verb} adapter {name!r}: requests using it are queued or running")

    def _rebuild(self, adapters: dict[str, LoraAdapter]) -> None:
        dec = self.decoder
        self._bank = build_bank(list(adapters.values()), dec.module_shapes(), len(dec.layers), dec.dtype, dec.device)
        attach_lora(dec, self._bank)
        self._adapters = adapters
        self._stepper.reset()  # captured graphs hold the old stacks
        self._stale = True  # adapter slots may have moved

    # -- requests --------------------------------------------------------------------------------

    def grammar(self) -> ReviewerGrammar:
        if self._grammar is None:
            self._grammar = ReviewerGrammar(self.vocab)
        return self._grammar

    def submit(self, request: GenerationRequest) -> Future:
        """Queue `request`; the future resolves to a `GenerationResult` or raises `EngineError`."""
        future: Future = Future()
        try:
            pending = self._prepare(request, future)
        except (EngineError, AdapterError, ValueError) as exc:
            future.set_exception(exc)
            return future
        with self._lock:
            if self._closed:
                future.set_exception(EngineError("the engine is closed"))
                return future
            self._scheduler.submit(pending)
            if self._worker is None:
                self._worker = threading.Thread(target=self._loop, name="reviewer-engine", daemon=True)
                self._worker.start()
            self._lock.notify()
        return future

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Run all `requests` (batched together) and return their results in order."""
        futures = [self.submit(r) for r in requests]
        return [f.result() for f in futures]

    def queue_depth(self) -> int:
        with self._lock:
            return len(self._scheduler.waiting)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        if self._worker is not None:
            self._worker.join(timeout=30)

    def _prepare(self, request: GenerationRequest, future: Future) -> Pending:
        if request.adapter is not None and request.adapter not in self._adapters:
            raise EngineError(f"unknown adapter {request.adapter!r}; loaded: {self.adapters}")
        prompt = self._tokenize(request.prompt)
        if not prompt:
            raise EngineError("the prompt is empty")
        if len(prompt) + request.max_new_tokens > self.max_seq_len:
            raise EngineError(
                f"prompt of {len(prompt)} tokens + max_new_tokens={request.max_new_tokens} exceeds "
                f"max_seq_len={self.max_seq_len}; shorten the slice or raise max_seq_len"
            )
        constraint = self.grammar().row(request.max_new_tokens) if request.constrained else None
        guard = RepeatGuard(request.repeat_ngram, self._is_prose) if request.repeat_ngram >= 2 else None
        return Pending(request=request, prompt=prompt, future=future, constraint=constraint, repeat_guard=guard)

    def _is_prose(self, token: int) -> bool:
        if self._prose is None:
            self._prose = [quote_free(data) for data in self.vocab.token_bytes]
        return token < len(self._prose) and self._prose[token]

    def _tokenize(self, prompt: list[int] | list[ChatMessage]) -> list[int]:
        if not prompt or isinstance(prompt[0], int):
            ids = list(prompt)
            if ids and (min(ids) < 0 or max(ids) >= self.decoder.vocab):
                raise EngineError(f"prompt token ids must lie in [0, {self.decoder.vocab})")
            return ids
        if self.tokenizer is None:
            raise EngineError("chat-message prompts need an engine built with a tokenizer")
        return render_ids(self.tokenizer, prompt)

    # -- the loop --------------------------------------------------------------------------------

    def _loop(self) -> None:
        if self.decoder.device.type == "cuda":
            # the current device is per thread: graph capture and new streams must use this engine's GPU
            torch.cuda.set_device(self.decoder.device)
        while True:
            with self._lock:
                while (self._scheduler.idle() or self._changes_waiting) and not self._closed:
                    self._lock.wait()
                if self._closed:
                    for pending in self._scheduler.drain():
                        pending.future.set_exception(EngineError("the engine was closed"))
                    return
                admitted = self._scheduler.admit(self.prefill_tokens)
                burst = bool(admitted) and len(admitted) == len(self._scheduler.running())
            try:
                with self._model_lock, torch.inference_mode():
                    self._step(admitted, self._bank, burst)
            except Exception as exc:  # fail what is in flight, keep serving later requests
                log.exception("engine step failed")
                self._in_flight, self._stale = None, True
                with self._lock:
                    for pending in self._scheduler.drain():
                        if not pending.future.done():
                            pending.future.set_exception(EngineError(f"engine step failed: {exc!r}"))

    def _step(self, admitted: list[Row], bank: LoraBank, burst: bool = False) -> None:
        """Prefill what was admitted, then one decode step. `burst`: nothing else was running, so the
        other free slots are filled too (a prefill chunk at a time) and the burst decodes together."""
        prefilled = []  # every chunk is launched before the first is read, so the device never waits
        while admitted:
            prefilled.append((admitted, self._prefill(admitted, bank)))
            self._stale = True  # new rows: their first inputs come from the host
            if not burst:
                break
            with self._lock:
                admitted = self._scheduler.admit(self.prefill_tokens)
        for rows, logits in prefilled:
            self._choose(rows, logits, list(range(len(rows))))
        running = self._running()
        if running:
            self._decode(running, bank)
        else:
            self._settle()

    def _running(self) -> list[Row]:
        return [row for row in self._scheduler.running() if row.finish_reason is None and row.generated]

    def _lora(self, bank: LoraBank, slots: torch.Tensor) -> LoraBatch | None:
        if not bank.stacks:
            return None
        return LoraBatch(bank, rows_for(bank, slots, self.decoder.dtype, grouped=self.lora_kernel == "grouped"))

    def _adapter_slots(self, rows: list[Row | None], bank: LoraBank) -> list[int]:
        return [
            bank.slots[row.pending.request.adapter]
            if row is not None and row.pending.request.adapter is not None
            else bank.zero_slot
            for row in rows
        ]

    def _prefill(self, rows: list[Row], bank: LoraBank) -> torch.Tensor:
        """Launch the prefill of `rows`; returns each row's last-token logits (not read yet)."""
        device = self.decoder.device
        # a CPU computes every padded position as if it were real, and attention grows with the square
        # of the longest prompt: there each prompt is prefilled alone (a GPU runs the padding in parallel)
        if device.type == "cpu" and len(rows) > 1:
            return torch.cat([self._prefill([row], bank) for row in rows])
        longest = max(len(row.pending.prompt) for row in rows)
        tokens = torch.tensor([row.pending.prompt + [0] * (longest - len(row.pending.prompt)) for row in rows])
        lengths = torch.tensor([len(row.pending.prompt) for row in rows])
        slots = torch.tensor([row.slot for row in rows])
        adapter_slots = torch.tensor(self._adapter_slots(rows, bank), device=device)
        if self.profile and device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        logits = prefill(
            self.decoder, self.cache, tokens.to(device), lengths.to(device), slots.to(device),
            self._lora(bank, adapter_slots), self._prefill_ops,
        )
        if self.profile and device.type == "cuda":
            torch.cuda.synchronize()
        self.stats["prefills"] += 1
        self.stats["prefill_s"] += time.perf_counter() - started
        return logits

    def _decode(self, rows: list[Row], bank: LoraBank) -> None:
        use_lora = bool(bank.stacks) and any(row.pending.request.adapter is not None for row in rows)
        if not self.pipeline:  # only the running rows, attention only as far as the longest of them
            self.stats["steps"] += 1
            device = self.decoder.device
            positions = torch.tensor([row.position for row in rows])
            adapter_slots = torch.tensor(self._adapter_slots(rows, bank), device=device)
            out = decode(
                self.decoder, self.cache, torch.tensor([row.generated[-1] for row in rows], device=device),
                positions.to(device), self._lora(bank, adapter_slots) if use_lora else None, self._ops,
                slots=torch.tensor([row.slot for row in rows], device=device), kv_len=int(positions.max()) + 1,
                head=self._screen is None,
            )
            if self._screen is None:
                return self._choose(rows, out, list(range(len(rows))))
            return self._choose(rows, self._screened_logits(rows, out), list(range(len(rows))), masked=True)
        if self._stale:  # the host must see every row as it is now
            self._settle()
            rows = self._running()
            if not rows:
                return
            self._write_inputs(bank)
            self._stale = False
        self.stats["steps"] += 1
        if any(row.pending.constraint is not None or row.pending.repeat_guard is not None for row in rows):
            return self._masked_step(rows, bank, use_lora)
        launched = self._stepper.launch(bank, use_lora)
        previous, self._in_flight = self._in_flight, (rows, launched)
        if previous is not None:
            self._collect(*previous)

    def _masked_step(self, rows: list[Row], bank: LoraBank, use_lora: bool) -> None:
        """A step whose picks obey each row's grammar and repeat guard, with the host's share off the
        device's path: the forward pass is launched first; while it runs, the host reads the previous
        step's tokens, advances the rows (grammar, guard, stop rules) and fills their masks; the device
        then re-picks under the masks and feeds the picks forward itself."""
        logits = self._stepper.step(bank, use_lora)
        self._settle()
        live = [row for row in rows if row.finish_reason is None]
        if not live:  # every row ended on the previous step's tokens: nobody reads this one
            return
        launched = self._stepper.pick_masked(logits, self._fill_masks(live), [row.slot for row in live])
        self._in_flight = (live, launched)

    def _write_inputs(self, bank: LoraBank) -> None:
        """Every slot's token, position and adapter from the rows (free slots: zeros, no adapter)."""
        batch = self.cache.max_batch
        tokens, positions, adapters = [0] * batch, [0] * batch, [bank.zero_slot] * batch
        rows = self._running()
        for row, adapter in zip(rows, self._adapter_slots(rows, bank)):
            tokens[row.slot], positions[row.slot], adapters[row.slot] = row.generated[-1], row.position, adapter
        self._stepper.write(tokens, positions, adapters)

    def _collect(self, rows: list[Row], launched: Launched) -> None:
        """Advance the rows of a launched step by its tokens (rows that finished meanwhile are skipped)."""
        tokens = launched.tokens()
        for row in rows:
            if row.finish_reason is None:
                self._advance(row, tokens[row.slot])

    def _settle(self) -> None:
        """Read the step in flight, if any."""
        if self._in_flight is not None:
            previous, self._in_flight = self._in_flight, None
            self._collect(*previous)

    def _grammar_bitmask(self, rows: list[Row]) -> torch.Tensor:
        """The grammar's allowed tokens for each of `rows` (all constrained), one bitmask row each."""
        bitmask = allocate_bitmask(len(rows), self.grammar())
        self.grammar().fill([row.pending.constraint for row in rows], bitmask, range(len(rows)))
        return bitmask

    def _fill_masks(self, rows: list[Row]) -> torch.Tensor:
        """Each row's allowed next tokens: its grammar's, less what its repeat guard bans (every token for a
        row with neither). Two host buffers take turns: the device may still be copying the other one."""
        if self._mask_buffers is None:
            pinned = self.decoder.device.type == "cuda"
            shape = (self.cache.max_batch, self.grammar().words)
            self._mask_buffers = [torch.empty(shape, dtype=torch.int32, pin_memory=pinned) for _ in range(2)]
        bitmask = self._mask_buffers[self.stats["steps"] % 2][: len(rows)]
        constrained = [k for k, row in enumerate(rows) if row.pending.constraint is not None]
        if len(constrained) < len(rows):
            bitmask[[k for k, row in enumerate(rows) if row.pending.constraint is None]] = -1
        self.grammar().fill([rows[k].pending.constraint for k in constrained], bitmask, constrained)
        for k, row in enumerate(rows):
            if row.pending.repeat_guard is not None:
                ban_tokens(bitmask[k], row.pending.repeat_guard.banned())
        return bitmask

    def _screened_logits(self, rows: list[Row], normed: torch.Tensor) -> torch.Tensor:
        """The screened head's logits for `rows` (grammar-masked already: -inf where no pick can be)."""
        allowed: list[torch.Tensor | None] = [None] * len(rows)
        constrained = [k for k, row in enumerate(rows) if row.pending.constraint is not None]
        if constrained:
            bitmask = self._grammar_bitmask([rows[k] for k in constrained])
            for k, row_allowed in zip(constrained, allowed_tokens(bitmask, self.decoder.vocab)):
                allowed[k] = row_allowed
        banned = [row.pending.repeat_guard.banned() if row.pending.repeat_guard is not None else ()
                  for row in rows]
        return self._screen.logits(self.decoder, normed, allowed, banned)

    def _choose(self, rows: list[Row], logits: torch.Tensor, index: list[int], masked: bool = False) -> None:
        """Greedy pick per row (masked by the grammar for constrained rows, unless `masked` says the
        logits are already), then advance each row."""
        constrained = [(i, row) for i, row in zip(index, rows) if row.pending.constraint is not None]
        if constrained and not masked:
            bitmask = self._grammar_bitmask([row for _i, row in constrained])
            which = torch.tensor([i for i, _ in constrained], device=logits.device)
            apply_bitmask(logits, bitmask.to(logits.device, non_blocking=True), which)
        picked = logits[torch.tensor(index, device=logits.device)].argmax(dim=-1).tolist()
        for k, (row, token) in enumerate(zip(rows, picked)):
            guard = row.pending.repeat_guard
            if guard is not None:
                banned = guard.banned()
                if token in banned:
                    token = self._unbanned(logits[index[k]], banned, token)
            self._advance(row, token)

    @staticmethod
    def _unbanned(row_logits: torch.Tensor, banned: frozenset[int] | set[int], fallback: int) -> int:
        """The best token the grammar allows that the repeat guard does not ban (else `fallback`)."""
        top = torch.topk(row_logits, k=min(len(banned) + 1, row_logits.shape[-1]))
        allowed = [t for v, t in zip(top.values.tolist(), top.indices.tolist()) if v != float("-inf")]
        choice = pick_unbanned(allowed, banned)
        return fallback if choice is None else choice

    def _advance(self, row: Row, token: int) -> None:
        request = row.pending.request
        constraint = row.pending.constraint
        if constraint is not None:
            step = constraint.advance(token)
            if step.outcome == "close":
                row.generated.extend(step.ending)
                row.forced_close = True
                return self._finish(row, "length")
            row.generated.append(token)
            if row.pending.repeat_guard is not None:
                row.pending.repeat_guard.push(token)
            if step.outcome == "stop":
                return self._finish(row, "stop")
        else:
            if not request.ignore_eos and token in self.vocab.stop_ids:
                return self._finish(row, "stop")
            row.generated.append(token)
            if row.pending.repeat_guard is not None:
                row.pending.repeat_guard.push(token)
            if not request.ignore_eos and row.object_end.feed(self.vocab.token_bytes[token]):
                return self._finish(row, "stop")
        if len(row.generated) >= request.max_new_tokens:
            self._finish(row, "length")

    def _finish(self, row: Row, reason: str) -> None:
        row.finish_reason = reason
        pending = row.pending
        text = b"".join(self.vocab.token_bytes[t] for t in row.generated).decode("utf-8", errors="replace")
        self.stats["generated_tokens"] += len(row.generated)
        result = GenerationResult(
            text=text,
            token_ids=list(row.generated),
            prompt_tokens=len(pending.prompt),
            finish_reason=reason,
            seconds=time.perf_counter() - pending.submitted,
            forced_close=row.forced_close,
        )
        with self._lock:
            self._scheduler.release(row)
        pending.future.set_result(result)
