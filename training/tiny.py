"""Tiny random models and a tiny tokenizer built in memory, for tests and `bench --tiny` on CPU.

Nothing is downloaded: the tokenizer is a byte-level BPE trained in milliseconds on a few strings, with
a ChatML template like SmolLM2's, and the model is a random Llama of a few hundred thousand weights. The
Gemma pair mirrors Gemma 3 270M: Gemma's special tokens and no chat template, a Gemma-3 text model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_tokenizer(corpus: list[str] | None = None, vocab_size: int = 512) -> Any:
    """A byte-level BPE tokenizer with ChatML special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from reviewers.prompt import ANSWER_SHAPE, system_prompt

    texts = corpus or [system_prompt("python"), ANSWER_SHAPE, "diff --git a/x.py b/x.py\n+def f():\n+    return 1\n"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def tiny_llama(vocab_size: int, seed: int = 0, hidden: int = 32, layers: int = 2) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192, tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def save_tiny_base_model(folder: Path, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """Write a tiny random Llama + tokenizer as a normal Hugging Face folder (a `base_model` for tests)."""
    tokenizer = tiny_tokenizer()
    model = tiny_llama(len(tokenizer), seed=seed, hidden=hidden, layers=layers)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_gemma_tokenizer(corpus: list[str] | None = None, vocab_size: int = 512) -> Any:
    """A byte-level BPE tokenizer with Gemma's special tokens and, like Gemma 3's GGUF, no chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from reviewers.prompt import ANSWER_SHAPE, system_prompt

    texts = corpus or [system_prompt("python"), ANSWER_SHAPE, "diff --git a/x.py b/x.py\n+def f():\n+    return 1\n"]
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]  # Gemma's ids 0-3
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
    )


def tiny_gemma3(vocab_size: int, seed: int = 0, layers: int = 6) -> Any:
    """A random Gemma-3 text model shaped like Gemma 3 270M, scaled down: one KV head, head_dim wider than
    hidden / heads, five sliding-window layers of six, local and global RoPE bases, tied embeddings."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32, sliding_window=8,
        layer_types=[("full_attention" if (i + 1) % 6 == 0 else "sliding_attention") for i in range(layers)],
        max_position_embeddings=4096, tie_word_embeddings=True, bos_token_id=2, eos_token_id=1,
        pad_token_id=0,
    )
    return Gemma3ForCausalLM(config)


def save_tiny_gemma3_base_model(folder: Path, seed: int = 0, layers: int = 6) -> Path:
    """Write a tiny random Gemma-3 + Gemma-style tokenizer (no chat template) as a Hugging Face folder."""
    tokenizer = tiny_gemma_tokenizer()
    model = tiny_gemma3(len(tokenizer), seed=seed, layers=layers)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
