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

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from reviewers.engine.kv_cache import KVCache
from reviewers.engine.lora import TARGET_MODULES, LoraBank, LoraRows, lora_delta


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
    q_norm: torch.Tensor | None  # [D] Gemma only
    k_norm: torch.Tensor | None  # [D] Gemma only
    window: int | None  # sliding window (keys with q - k < window are visible), None = full
    rope: int  # index into Decoder.rope_cos / rope_sin


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
    rope_sin: torch.Tensor  # [n_rope, max_seq_len, D]
    layers: list[LayerWeights] = field(default_factory=list)

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.dtype

    @property
    def device(self) -> torch.device:
        return self.embed.device

    @property
    def max_seq_len(self) -> int:
        return self.rope_cos.shape[1]

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
        sin.append(emb.sin() * scaling)

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
        final_norm=_norm_weight(inner.norm, gemma).to(device),
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
                attn_norm=_norm_weight(layer.input_layernorm, gemma).to(device),
                mlp_norm=_norm_weight(
                    layer.pre_feedforward_layernorm if gemma else layer.post_attention_layernorm, gemma
                ).to(device),
                post_attn_norm=_norm_weight(layer.post_attention_layernorm, True).to(device) if gemma else None,
                post_mlp_norm=_norm_weight(layer.post_feedforward_layernorm, True).to(device) if gemma else None,
                q_norm=_norm_weight(attn.q_norm, True).to(device) if gemma else None,
                k_norm=_norm_weight(attn.k_norm, True).to(device) if gemma else None,
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


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm in float32, multiplied by a float32 weight, cast back (Gemma's order; Llama within 1 ulp)."""
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps) * weight).to(x.dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE: x [B, heads, T, D]; cos/sin [B, 1, T, D]."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def _project(
    x: torch.Tensor,
    weight: torch.Tensor,
    modules: tuple[str, ...],
    sizes: tuple[int, ...],
    layer: int,
    lora: LoraBatch | None,
) -> list[torch.Tensor]:
    """x @ fused weight, split into `modules`, each plus its LoRA term where some adapter targets it."""
    outputs = list((x @ weight.T).split(sizes, dim=-1))
    if lora is not None:
        for i, module in enumerate(modules):
            stack = lora.bank.stacks.get((layer, module))
            if stack is not None:
                outputs[i] = outputs[i] + lora_delta(x, stack, lora.rows)
    return outputs


def _qkv(dec: Decoder, lw: LayerWeights, index: int, h: torch.Tensor, positions: torch.Tensor, lora):
    """Normed hidden [B, T, hidden] -> rotated q [B, H, T, D], k and v [B, KV, T, D]."""
    batch, steps, _ = h.shape
    d = dec.head_dim
    q, k, v = _project(
        h, lw.qkv, TARGET_MODULES[:3], (dec.n_heads * d, dec.n_kv_heads * d, dec.n_kv_heads * d), index, lora
    )
    q = q.view(batch, steps, dec.n_heads, d).transpose(1, 2)
    k = k.view(batch, steps, dec.n_kv_heads, d).transpose(1, 2)
    v = v.view(batch, steps, dec.n_kv_heads, d).transpose(1, 2)
    if lw.q_norm is not None:
        q = rms_norm(q, lw.q_norm, dec.eps)
        k = rms_norm(k, lw.k_norm, dec.eps)
    cos = dec.rope_cos[lw.rope][positions][:, None]  # [B, 1, T, D]
    sin = dec.rope_sin[lw.rope][positions][:, None]
    return rotate(q, cos, sin), rotate(k, cos, sin), v


def _layer(dec: Decoder, lw: LayerWeights, index: int, x: torch.Tensor, attend, lora) -> torch.Tensor:
    """One decoder layer; `attend(h) -> [B, T, H*D]` is the prefill or decode attention."""
    h = attend(rms_norm(x, lw.attn_norm, dec.eps))
    (h,) = _project(h, lw.o, ("o_proj",), (dec.hidden,), index, lora)
    if lw.post_attn_norm is not None:
        h = rms_norm(h, lw.post_attn_norm, dec.eps)
    x = x + h
    h = rms_norm(x, lw.mlp_norm, dec.eps)
    gate, up = _project(h, lw.gate_up, ("gate_proj", "up_proj"), (dec.intermediate,) * 2, index, lora)
    act = F.silu(gate) if dec.activation == "silu" else F.gelu(gate, approximate="tanh")
    (h,) = _project(act * up, lw.down, ("down_proj",), (dec.hidden,), index, lora)
    if lw.post_mlp_norm is not None:
        h = rms_norm(h, lw.post_mlp_norm, dec.eps)
    return x + h


def _embed(dec: Decoder, tokens: torch.Tensor) -> torch.Tensor:
    x = dec.embed[tokens]
    if dec.embed_scale is not None:
        x = x * torch.tensor(dec.embed_scale, dtype=dec.dtype)
    return x


def _logits(dec: Decoder, x: torch.Tensor) -> torch.Tensor:
    """Final norm and the LM head, in float32: [..., hidden] -> [..., vocab]."""
    logits = (rms_norm(x, dec.final_norm, dec.eps) @ dec.lm_head.T).float()
    if dec.final_softcap is not None:
        logits = torch.tanh(logits / dec.final_softcap) * dec.final_softcap
    return logits


def prefill(
    dec: Decoder,
    cache: KVCache,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    slots: torch.Tensor,
    lora: LoraBatch | None,
) -> torch.Tensor:
    """Run prompts `tokens` [n, T] (right-padded to T, real lengths `lengths`) into cache rows `slots`.

    Returns the logits of each prompt's last real token, [n, vocab]. Padding positions are written to
    the cache too but sit past the row's length, so attention never sees them.
    """
    n, steps = tokens.shape
    positions = torch.arange(steps, device=tokens.device).expand(n, steps)
    q_pos = torch.arange(steps, device=tokens.device)[:, None]
    k_pos = torch.arange(steps, device=tokens.device)[None, :]
    masks = {}
    x = _embed(dec, tokens)
    for index, lw in enumerate(dec.layers):
        if lw.window not in masks:
            visible = k_pos <= q_pos
            if lw.window is not None:
                visible = visible & (q_pos - k_pos < lw.window)
            masks[lw.window] = visible

        def attend(h: torch.Tensor, lw: LayerWeights = lw, index: int = index) -> torch.Tensor:
            q, k, v = _qkv(dec, lw, index, h, positions, lora)
            cache.k[index][slots, :, :steps] = k
            cache.v[index][slots, :, :steps] = v
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=masks[lw.window], scale=dec.attn_scale, enable_gqa=True
            )
            return out.transpose(1, 2).reshape(n, steps, dec.n_heads * dec.head_dim)

        x = _layer(dec, lw, index, x, attend, lora)
    last = x[torch.arange(n, device=x.device), lengths - 1]  # [n, hidden]
    return _logits(dec, last)


def decode(
    dec: Decoder, cache: KVCache, tokens: torch.Tensor, positions: torch.Tensor, lora: LoraBatch | None
) -> torch.Tensor:
    """One decode step for every cache row: token `tokens[b]` at position `positions[b]` -> [B, vocab].

    Shapes never change (B = cache rows, keys = max_seq_len), so this function can be captured as one
    CUDA graph; rows that hold no request compute garbage that nobody reads.
    """
    batch = tokens.shape[0]
    rows = torch.arange(batch, device=tokens.device)
    key_pos = torch.arange(cache.max_seq_len, device=tokens.device)[None, :]
    age = positions[:, None] - key_pos  # [B, S] how far back each key is; < 0 = not written yet
    biases = {}
    group = dec.n_heads // dec.n_kv_heads
    x = _embed(dec, tokens[:, None])  # [B, 1, hidden]
    for index, lw in enumerate(dec.layers):
        if lw.window not in biases:
            visible = age >= 0
            if lw.window is not None:
                visible = visible & (age < lw.window)
            zero = torch.zeros((), dtype=torch.float32, device=tokens.device)
            biases[lw.window] = torch.where(visible, zero, float("-inf"))[:, None, None, :]  # [B, 1, 1, S]

        def attend(h: torch.Tensor, lw: LayerWeights = lw, index: int = index) -> torch.Tensor:
            q, k, v = _qkv(dec, lw, index, h, positions[:, None], lora)
            cache.k[index][rows, :, positions] = k[:, :, 0]
            cache.v[index][rows, :, positions] = v[:, :, 0]
            q = q.view(batch, dec.n_kv_heads, group, dec.head_dim)  # [B, KV, G, D]
            scores = (q @ cache.k[index].transpose(-1, -2)).float() * dec.attn_scale  # [B, KV, G, S]
            probs = torch.softmax(scores + biases[lw.window], dim=-1).to(dec.dtype)
            out = probs @ cache.v[index]  # [B, KV, G, D]
            return out.reshape(batch, 1, dec.n_heads * dec.head_dim)

        x = _layer(dec, lw, index, x, attend, lora)
    return _logits(dec, x[:, 0])
