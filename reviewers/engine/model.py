"""A plain decoder forward for Llama-family (SmolLM2) and Gemma-3 text models, with per-row LoRA.

The weights come from a loaded transformers model (`decoder_from_hf`); the forward is ours so that a
batch can mix adapters, write a static KV cache and be captured as one CUDA graph. It reads top to
bottom: embed, for each layer (norm, attention, norm, MLP, each with its residual), final norm, logits.

Differences between the two families, all taken from the transformers modules themselves:
- Gemma-3 scales the embedding by sqrt(hidden), uses RMSNorm weights as (1 + w), normalises q and k per
  head, has four norms per layer (pre/post attention and MLP), GELU-tanh, per-layer sliding windows and
  per-layer RoPE frequencies (local vs global).
- Llama uses two norms per layer, SiLU, one RoPE and full attention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from reviewers.engine.kv_cache import KVCache
from reviewers.engine.lora import GROUPS, LoraBank, LoraRows, lora_delta


class UnsupportedModelError(ValueError):
    """A transformers model whose architecture this engine does not implement."""


@dataclass
class LayerWeights:
    """One decoder layer. Base projections are fused: q|k|v in one matrix, gate|up in another."""

    qkv: torch.Tensor  # [(H + 2 KV) * D, hidden]
    o: torch.Tensor  # [hidden, H * D]
    gate_up: torch.Tensor  # [2 * inter, hidden]
    down: torch.Tensor  # [hidden, inter]
    attn_norm: torch.Tensor  # [hidden] float32 multiplier (Gemma's 1 + w already added)
    mlp_norm: torch.Tensor  # [hidden]
    post_attn_norm: torch.Tensor | None  # Gemma only
    post_mlp_norm: torch.Tensor | None  # Gemma only
    qk_norm: torch.Tensor | None  # [H + KV, D] Gemma only: q_norm for the H query heads, k_norm for the KV heads
    window: int | None  # sliding window (keys with q - k < window are visible), None = full
    rope: int  # index into Decoder.rope_cos / rope_sin
    # per module group with LoRA: [base W; every adapter's A^T] in one matrix, so one GEMM gives the base
    # output and every adapter's shrink; the base weight above is then a view of its first rows
    with_lora: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Decoder:
    """All weights and constants of one base model, on one device, in one dtype."""

    arch: str  # "llama" | "gemma3"
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden: int
    intermediate: int
    vocab: int
    eps: float
    attn_scale: float
    embed_scale: float | None
    final_softcap: float | None
    activation: str  # "silu" | "gelu_tanh"
    embed: torch.Tensor  # [vocab, hidden]
    lm_head: torch.Tensor  # [vocab, hidden] (may be the same tensor as embed)
    final_norm: torch.Tensor  # [hidden]
    rope_cos: torch.Tensor  # [n_rope, max_seq_len, D]
    rope_sin: torch.Tensor  # [n_rope, max_seq_len, D] with the first half negated (see `rotate`)
    layers: list[LayerWeights] = field(default_factory=list)

    @property
    def qkv_sizes(self) -> tuple[int, int, int]:
        kv = self.n_kv_heads * self.head_dim
        return (self.n_heads * self.head_dim, kv, kv)

    @property
    def embed_scale_tensor(self) -> torch.Tensor:
        # transformers multiplies by the scale rounded to the weight dtype; so do we
        return torch.tensor(self.embed_scale, dtype=self.dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.dtype

    @property
    def device(self) -> torch.device:
        return self.embed.device

    @property
    def max_seq_len(self) -> int:
        return self.rope_cos.shape[1]

    def cache_lengths(self) -> list[int]:
        """KV-cache entries each layer needs: the window for a sliding layer (a ring), else max_seq_len."""
        return [min(lw.window or self.max_seq_len, self.max_seq_len) for lw in self.layers]

    def module_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each LoRA-targetable module, for stacking adapters."""
        q, kv = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        return {
            "q_proj": (self.hidden, q),
            "k_proj": (self.hidden, kv),
            "v_proj": (self.hidden, kv),
            "o_proj": (q, self.hidden),
            "gate_proj": (self.hidden, self.intermediate),
            "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }


def _norm_weight(module: torch.nn.Module, gemma: bool) -> torch.Tensor:
    weight = module.weight.detach().float()
    return weight + 1.0 if gemma else weight


def decoder_from_hf(
    model: torch.nn.Module, *, dtype: torch.dtype, device: torch.device | str, max_seq_len: int
) -> Decoder:
    """Copy the weights of a transformers Llama/Gemma-3-text causal LM into a `Decoder`."""
    config = model.config
    arch = {"llama": "llama", "gemma3_text": "gemma3"}.get(config.model_type)
    if arch is None:
        raise UnsupportedModelError(
            f"model_type {config.model_type!r} is not served; supported: llama (SmolLM2), gemma3_text"
        )
    gemma = arch == "gemma3"
    inner = model.model
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise UnsupportedModelError(f"{config.model_type} with attention/MLP biases is not served")
    if gemma and getattr(config, "attn_logit_softcapping", None) is not None:
        raise UnsupportedModelError("Gemma attention logit soft-capping is not served")

    def put(t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(device=device, dtype=dtype).contiguous()

    # Norm weights stay float32 on CPU (bit-faithful to transformers); on GPU they match the activations
    # so that the fused rms_norm kernel takes them as they are.
    norm_dtype = dtype if torch.device(device).type == "cuda" else torch.float32

    def norm(module: torch.nn.Module, offset: bool) -> torch.Tensor:
        return _norm_weight(module, offset).to(device=device, dtype=norm_dtype)

    # RoPE tables per distinct frequency set, computed in float32 like transformers, then cast.
    rotary = inner.rotary_emb
    positions = torch.arange(max_seq_len, dtype=torch.float32)
    kinds = sorted(set(config.layer_types)) if gemma else ["default"]
    cos, sin = [], []
    for kind in kinds:
        prefix = f"{kind}_" if gemma else ""
        inv_freq = getattr(rotary, f"{prefix}inv_freq").detach().float().cpu()
        scaling = float(getattr(rotary, f"{prefix}attention_scaling", 1.0))
        freqs = positions[:, None] * inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos.append(emb.cos() * scaling)
        half = emb.shape[-1] // 2
        sin.append(torch.cat((-emb[:, :half].sin(), emb[:, half:].sin()), dim=-1) * scaling)

    first_attn = inner.layers[0].self_attn
    dec = Decoder(
        arch=arch,
        n_heads=config.num_attention_heads,
        n_kv_heads=config.num_key_value_heads,
        head_dim=first_attn.head_dim,
        hidden=config.hidden_size,
        intermediate=config.intermediate_size,
        vocab=config.vocab_size,
        eps=config.rms_norm_eps,
        attn_scale=float(first_attn.scaling),
        embed_scale=float(config.hidden_size**0.5) if gemma else None,
        final_softcap=getattr(config, "final_logit_softcapping", None) if gemma else None,
        activation="gelu_tanh" if gemma else "silu",
        embed=put(inner.embed_tokens.weight),
        lm_head=put(model.lm_head.weight),
        final_norm=norm(inner.norm, gemma),
        rope_cos=torch.stack(cos).to(device=device, dtype=dtype),
        rope_sin=torch.stack(sin).to(device=device, dtype=dtype),
    )
    if model.lm_head.weight.data_ptr() == inner.embed_tokens.weight.data_ptr():
        dec.lm_head = dec.embed
    if gemma and config.hidden_activation != "gelu_pytorch_tanh":
        raise UnsupportedModelError(f"Gemma activation {config.hidden_activation!r} is not served")
    if not gemma and config.hidden_act != "silu":
        raise UnsupportedModelError(f"Llama activation {config.hidden_act!r} is not served")
    for index, layer in enumerate(inner.layers):
        attn, mlp = layer.self_attn, layer.mlp
        kind = config.layer_types[index] if gemma else "default"
        window = getattr(attn, "sliding_window", None) if kind == "sliding_attention" else None
        dec.layers.append(
            LayerWeights(
                qkv=put(torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])),
                o=put(attn.o_proj.weight),
                gate_up=put(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])),
                down=put(mlp.down_proj.weight),
                attn_norm=norm(layer.input_layernorm, gemma),
                mlp_norm=norm(layer.pre_feedforward_layernorm if gemma else layer.post_attention_layernorm, gemma),
                post_attn_norm=norm(layer.post_attention_layernorm, True) if gemma else None,
                post_mlp_norm=norm(layer.post_feedforward_layernorm, True) if gemma else None,
                qk_norm=torch.cat([
                    norm(attn.q_norm, True)[None].expand(config.num_attention_heads, -1),
                    norm(attn.k_norm, True)[None].expand(config.num_key_value_heads, -1),
                ]).contiguous() if gemma else None,
                window=window,
                rope=kinds.index(kind),
            )
        )
    return dec


@dataclass
class LoraBatch:
    """The loaded adapters and which one each row of the current batch uses."""

    bank: LoraBank
    rows: LoraRows


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim. GPU: torch's rms_norm in the activation dtype. CPU: float32 math,
    multiplied by the float32 weight, cast back (Gemma's order; Llama's within one rounding)."""
    if x.is_cuda:
        return F.rms_norm(x, (x.shape[-1],), weight, eps)
    x32 = x.float()
    out = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return (out if weight is None else out * weight).to(x.dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE with `sin` pre-signed: rotate_half(x) * sin == roll(x, D/2) * sin_signed."""
    return torch.addcmul(x * cos, torch.roll(x, x.shape[-1] // 2, dims=-1), sin)


# -- the element-wise stretches between matmuls: plain functions, compiled into one kernel each on GPU --


def add_norm(
    x: torch.Tensor, h: torch.Tensor, post: torch.Tensor | None, pre_next: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual stream update and the next block's input: x + post_norm(h), then pre_norm of that."""
    if post is not None:
        h = rms_norm(h, post, eps)
    x = x + h
    return x, rms_norm(x, pre_next, eps)


def qk_norm_rope(
    qkv: torch.Tensor, weight: torch.Tensor | None, cos: torch.Tensor, sin: torch.Tensor, eps: float, rotated: int
) -> torch.Tensor:
    """[..., H + 2 KV, D] -> the same with the first `rotated` (= H + KV) heads, q and k, normalised per
    head (Gemma) and rotated; v passes through. Returning v too (a copy) puts K and V side by side in
    one tensor, so the cache takes both in one write."""
    qk, v = qkv[..., :rotated, :], qkv[..., rotated:, :]
    if weight is not None:
        x32 = qk.float()
        qk = (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(qk.dtype)
    return torch.cat([rotate(qk, cos, sin), v], dim=-2)


def gated(gate_up: torch.Tensor, gelu: bool) -> torch.Tensor:
    """act(gate) * up from the fused gate|up projection."""
    gate, up = gate_up.chunk(2, dim=-1)
    return (F.gelu(gate, approximate="tanh") if gelu else F.silu(gate)) * up


def sdpa_decode_attention(q, k, v, visible, scale: float) -> torch.Tensor:
    """q [B, KV, G, D] against the cache k, v [B, KV, S, D]; visible [B, 1, 1, S] -> [B, KV, G, D]."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=visible, scale=scale)


def matmul_decode_attention(q, k, v, visible, scale: float) -> torch.Tensor:
    """The same as two batched matmuls and a softmax: with only G query rows per KV head, fused
    attention kernels tile 64+ queries and waste most of their work; two GEMMs just stream K and V."""
    scores = (q @ k.transpose(-1, -2)).float() * scale
    probs = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
    return probs.to(q.dtype) @ v


@dataclass
class Pointwise:
    """The element-wise functions (and decode attention) the forward calls: eager, or compiled."""

    add_norm: Callable = add_norm
    qk_norm_rope: Callable = qk_norm_rope
    gated: Callable = gated
    attention: Callable = sdpa_decode_attention

    @classmethod
    def compiled(cls) -> Pointwise:
        """For decode: static shapes (one batch shape, captured in a CUDA graph)."""
        fns = (add_norm, qk_norm_rope, gated, matmul_decode_attention)
        return cls(*(torch.compile(fn, dynamic=False) for fn in fns))

    @classmethod
    def compiled_rows(cls) -> Pointwise:
        """For prefill: every batch has its own rows x prompt length, so the kernels take any number of
        token rows; every other size stays fixed, which keeps the reductions as fast as decode's."""
        return cls(*(_over_token_rows(torch.compile(fn, dynamic=False)) for fn in (add_norm, qk_norm_rope, gated)))


def _over_token_rows(compiled: Callable) -> Callable:
    """Call `compiled` with [B, T, ...] activations flattened to [B * T, ...] (views, no copies) and that
    first dimension marked dynamic; the results come back as [B, T, ...]."""

    def call(*args):
        lead = next(a for a in args if isinstance(a, torch.Tensor) and a.dim() >= 3).shape[:2]
        flat = []
        for a in args:
            if isinstance(a, torch.Tensor) and a.dim() >= 3:
                a = a.flatten(0, 1)
                torch._dynamo.maybe_mark_dynamic(a, 0)
            flat.append(a)
        out = compiled(*flat)
        if isinstance(out, tuple):
            return tuple(t.unflatten(0, lead) for t in out)
        return out.unflatten(0, lead)

    return call


EAGER = Pointwise()


def _project(
    x: torch.Tensor, lw: LayerWeights, group: str, layer: int, lora: LoraBatch | None, sizes: tuple[int, ...]
) -> torch.Tensor:
    """x [B, T, in] @ the group's fused base weight, plus each row's LoRA term for the group's modules
    (`sizes`: each module's share of the output)."""
    weight = getattr(lw, group)
    if lora is None:
        return x @ weight.T
    if lora.rows.grouped:
        stack = lora.bank.groups.get((layer, group))
        if stack is None:
            return x @ weight.T
        batch, steps, _ = x.shape
        out_base = weight.shape[0]
        fused = lw.with_lora.get(group)
        if fused is not None:  # base output and every adapter's shrink from one GEMM
            yh = (x @ fused.T).view(batch * steps, -1)
            y, h = yh[:, :out_base], yh[:, out_base:]
        else:
            y, h = (x @ weight.T).view(batch * steps, -1), (x @ stack.a).view(batch * steps, -1)
        keep = lora.rows.keep[:, None, None, :]  # [B, 1, 1, C]: the row's own adapter's columns
        h = (h.view(batch, steps, stack.modules, -1) * keep).view(batch * steps, -1)
        # base + expand in one GEMM, written in place into y: y is a strided view of yh, which BLAS takes
        # as it is (a plain addmm would first copy it out)
        return y.addmm_(h, stack.b).view(batch, steps, -1)
    y = x @ weight.T
    deltas = []  # the gathered (BGMV) kernel, module by module; zeros where no adapter targets
    for module, size in zip(GROUPS[group], sizes):
        stack = lora.bank.stacks.get((layer, module))
        deltas.append(lora_delta(x, stack, lora.rows) if stack is not None else y.new_zeros(*y.shape[:-1], size))
    return y + torch.cat(deltas, dim=-1)


def attach_lora(dec: Decoder, bank: LoraBank) -> None:
    """Rebuild each layer's [base W; A^T] matrices for `bank` (after adapters are added or removed).

    The base weight becomes a view of the new matrix's first rows, so the base is never held twice.
    """
    for index, lw in enumerate(dec.layers):
        for group in GROUPS:
            base = getattr(lw, group)
            stack = bank.groups.get((index, group))
            if stack is None:
                if group in lw.with_lora:
                    setattr(lw, group, base.clone())
                    del lw.with_lora[group]
                continue
            fused = torch.cat([base, stack.a.T.to(base.dtype)])
            lw.with_lora[group] = fused
            setattr(lw, group, fused[: base.shape[0]])


def _embed(dec: Decoder, tokens: torch.Tensor) -> torch.Tensor:
    x = dec.embed[tokens]
    if dec.embed_scale is not None:
        x = x * dec.embed_scale_tensor
    return x


def _rope_at(dec: Decoder, positions: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """cos/sin [B, T, 1, D] for each RoPE table, looked up once per forward, shared by all layers."""
    return [(dec.rope_cos[i][positions][:, :, None], dec.rope_sin[i][positions][:, :, None])
            for i in range(dec.rope_cos.shape[0])]


def _forward(dec: Decoder, x: torch.Tensor, rope, attend, lora: LoraBatch | None, ops: Pointwise) -> torch.Tensor:
    """The layer stack. `attend(index, lw, qkv) -> [B, T, H*D]` is prefill's or decode's attention;
    `qkv` [B, T, H + 2 KV, D] has q and k normalised and rotated.

    Returns the final-normed hidden states. Each norm is fused with the residual add before it.
    """
    batch, steps, _ = x.shape
    heads, kv_heads, d = dec.n_heads, dec.n_kv_heads, dec.head_dim
    gelu = dec.activation == "gelu_tanh"
    normed = rms_norm(x, dec.layers[0].attn_norm, dec.eps)
    for index, lw in enumerate(dec.layers):
        cos, sin = rope[lw.rope]
        qkv = _project(normed, lw, "qkv", index, lora, dec.qkv_sizes)
        qkv = qkv.view(batch, steps, heads + 2 * kv_heads, d)
        qkv = ops.qk_norm_rope(qkv, lw.qk_norm, cos, sin, dec.eps, heads + kv_heads)
        h = _project(attend(index, lw, qkv), lw, "o", index, lora, (dec.hidden,))
        x, normed = ops.add_norm(x, h, lw.post_attn_norm, lw.mlp_norm, dec.eps)
        gate_up = _project(normed, lw, "gate_up", index, lora, (dec.intermediate,) * 2)
        h = _project(ops.gated(gate_up, gelu), lw, "down", index, lora, (dec.hidden,))
        pre_next = dec.layers[index + 1].attn_norm if index + 1 < len(dec.layers) else dec.final_norm
        x, normed = ops.add_norm(x, h, lw.post_mlp_norm, pre_next, dec.eps)
    return normed


def _logits(dec: Decoder, normed: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
    """The LM head on final-normed hidden states: [..., hidden] -> [..., vocab] (or [..., len(tokens)]:
    only those vocabulary rows, for `screened_head`), in the activations' dtype. A bf16 logit's float32
    value is exact, so greedy picks and grammar masks need no float32 copy (on GPU that copy is a pass
    over 64 x 262k logits every step); soft-capping is float32."""
    logits = normed @ (dec.lm_head if tokens is None else dec.lm_head[tokens]).T
    if dec.final_softcap is not None:
        logits = torch.tanh(logits.float() / dec.final_softcap) * dec.final_softcap
    return logits


def _windowed_attention(q, k, v, window: int, scale: float) -> torch.Tensor:
    """Causal attention within a sliding window, q [n, H, T, D] against k, v [n, KV, T, D] -> [n, H, T, D].

    The queries go in blocks of `window`, each against only the keys it can see (the block's own and
    the `window` - 1 before it): a masked full square would cost T x T, this costs T x 2 window. Every
    query head is given its KV head, as SDPA takes an explicit mask only that way."""
    group = q.shape[1] // k.shape[1]
    steps = q.shape[2]
    blocks = []
    for start in range(0, steps, window):
        stop, first = min(start + window, steps), max(0, start - window + 1)
        q_pos = torch.arange(start, stop, device=q.device)[:, None]
        k_pos = torch.arange(first, stop, device=q.device)[None, :]
        visible = (k_pos <= q_pos) & (q_pos - k_pos < window)
        keys = k[:, :, first:stop].repeat_interleave(group, dim=1)
        values = v[:, :, first:stop].repeat_interleave(group, dim=1)
        blocks.append(F.scaled_dot_product_attention(q[:, :, start:stop], keys, values, attn_mask=visible,
                                                     scale=scale))
    return torch.cat(blocks, dim=2)


def prefill(
    dec: Decoder,
    cache: KVCache,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    slots: torch.Tensor,
    lora: LoraBatch | None,
    ops: Pointwise = EAGER,
) -> torch.Tensor:
    """Run prompts `tokens` [n, T] (right-padded to T, real lengths `lengths`) into cache rows `slots`.

    Returns the logits of each prompt's last real token, [n, vocab]. Padding positions are written to
    the cache too but sit past the row's length, so attention never sees them.
    """
    n, steps = tokens.shape
    heads, kv_heads, d = dec.n_heads, dec.n_kv_heads, dec.head_dim
    last = (lengths - 1)[:, None]

    def attend(index: int, lw: LayerWeights, qkv: torch.Tensor) -> torch.Tensor:
        kv = qkv[:, :, heads:].view(n, steps, 2, kv_heads, d)
        length = cache.length(index)
        if steps <= length:
            cache.kv[index][:, slots, :, :steps] = kv.permute(2, 0, 3, 1, 4)  # [2, n, KV, T, D]
        else:  # a ring shorter than the prompts: entry j takes the row's latest position p = j mod length
            entry = torch.arange(length, device=tokens.device)[None, :]
            source = (last - (last - entry) % length).clamp(min=0)  # [n, length]; < 0: not written yet
            picked = kv[torch.arange(n, device=tokens.device)[:, None], source]  # [n, length, 2, KV, D]
            cache.kv[index][:, slots] = picked.permute(2, 0, 3, 1, 4)
        q = qkv[:, :, :heads].transpose(1, 2)  # [n, H, T, D]
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)  # [n, KV, T, D]
        if lw.window is None or steps <= lw.window:  # plain causal: SDPA maps the KV heads itself
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=dec.attn_scale, enable_gqa=True)
        else:
            out = _windowed_attention(q, k, v, lw.window, dec.attn_scale)
        return out.transpose(1, 2).reshape(n, steps, heads * d)

    positions = torch.arange(steps, device=tokens.device).expand(n, steps)
    normed = _forward(dec, _embed(dec, tokens), _rope_at(dec, positions), attend, lora, ops)
    return _logits(dec, normed[torch.arange(n, device=tokens.device), lengths - 1])


def _slot_runs(slots: list[int]) -> list[tuple[int, int, int]]:
    """(first, stop, slot): batch rows first..stop-1 hold the consecutive cache rows slot, slot + 1, ..."""
    runs: list[tuple[int, int, int]] = []
    for i, slot in enumerate(slots):
        if runs and runs[-1][2] + (i - runs[-1][0]) == slot:
            runs[-1] = (runs[-1][0], i + 1, runs[-1][2])
        else:
            runs.append((i, i + 1, slot))
    return runs


def decode(
    dec: Decoder,
    cache: KVCache,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    lora: LoraBatch | None,
    ops: Pointwise = EAGER,
    slots: torch.Tensor | None = None,
    kv_len: int | None = None,
    head: bool = True,
) -> torch.Tensor:
    """One decode step: token `tokens[i]` at position `positions[i]` for cache row `slots[i]` -> [n, vocab]
    (with `head=False`, the final-normed hidden states [n, hidden], for `screened_head`).

    With `slots` and `kv_len` left out, every cache row steps and attention spans the whole cache: shapes
    never change, so the step can be captured as one CUDA graph (rows that hold no request compute
    garbage nobody reads). The eager path passes the running rows and the longest length instead, so a
    CPU step costs what the running requests need.
    """
    batch = tokens.shape[0]
    group = dec.n_heads // dec.n_kv_heads
    rows = torch.arange(batch, device=tokens.device) if slots is None else slots
    # per cache length (the full length, a window's ring): where this step writes, and what it sees
    entries, masks = {}, {}
    for length in {cache.length(i) for i in range(len(dec.layers))}:
        span = min(kv_len or length, length)
        entries[length] = positions % length
        masks[length] = (torch.arange(span, device=tokens.device)[None, :] <= positions[:, None])[:, None, None, :]

    # cache rows as slices: each run of consecutive slots reads its K and V as a view; indexing them by
    # `rows` instead would copy every running row's whole K and V span, each layer, each step
    runs = [(0, batch, 0)] if slots is None else _slot_runs(slots.tolist())

    def attend(index: int, lw: LayerWeights, qkv: torch.Tensor) -> torch.Tensor:
        length = cache.length(index)
        # K and V of every row in one indexed write: [B, 2, KV, D] into the (slot, entry) pairs of a
        # [slots, entries, 2, KV, D] view (with both indices adjacent, the write touches only those rows)
        cache.kv[index].permute(1, 3, 0, 2, 4).index_put_(
            (rows, entries[length]), qkv[:, 0, dec.n_heads:].view(batch, 2, dec.n_kv_heads, dec.head_dim))
        span = masks[length].shape[-1]
        # grouped-query decode as plain attention: the G query heads of a KV head are its "queries"
        q = qkv[:, 0, : dec.n_heads].reshape(batch, dec.n_kv_heads, group, dec.head_dim)  # [B, KV, G, D]
        outs = []
        for first, stop, slot in runs:  # batch rows first..stop hold cache rows slot..
            keys = cache.k(index)[slot : slot + stop - first, :, :span]
            values = cache.v(index)[slot : slot + stop - first, :, :span]
            outs.append(ops.attention(q[first:stop], keys, values, masks[length][first:stop], dec.attn_scale))
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        return out.reshape(batch, 1, dec.n_heads * dec.head_dim)

    normed = _forward(dec, _embed(dec, tokens[:, None]), _rope_at(dec, positions[:, None]), attend, lora, ops)
    return _logits(dec, normed[:, 0]) if head else normed[:, 0]
