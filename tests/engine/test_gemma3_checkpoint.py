"""A Gemma-3 checkpoint folder given as `--base-model` (tiny, random, shaped like Gemma 3 270M: one KV head,
head_dim wider than hidden/heads, five sliding layers of six, local and global RoPE bases, tied embeddings,
Gemma's tokens and no chat template): the engine reads the prompt in Gemma's turns and decodes the same
greedy tokens as transformers + PEFT, with and without an adapter. The real 270M model: `test_gemma3_270m.py`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reviewers.contract import ReviewRequest
from reviewers.engine.engine import Engine, GenerationRequest
from reviewers.models import resolve_base_model
from reviewers.prompt import render_ids, render_messages

NEW_TOKENS = 10


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(base folder, adapter folder): the adapter has non-zero random A and B on every target module."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from training.tiny import save_tiny_gemma3_base_model

    root = tmp_path_factory.mktemp("gemma3-checkpoint")
    base = save_tiny_gemma3_base_model(root / "base")
    torch.manual_seed(7)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(
        r=8, lora_alpha=16, init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, 0.2)
    peft_model.save_pretrained(root / "sql")
    return base, root / "sql"


def test_engine_greedy_tokens_equal_transformers_on_a_gemma3_checkpoint_folder(checkpoint, real_diffs) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, adapter = checkpoint
    ref = resolve_base_model(str(base))
    request = ReviewRequest(reviewer="sql", task="Add the orders query.", diff=real_diffs[0].read_text()[:600])
    messages = render_messages(request)
    engine = Engine.from_pretrained(ref.source, adapters={"sql": adapter}, max_batch=4, max_seq_len=2048)
    try:
        results = engine.generate([
            GenerationRequest(prompt=messages, adapter=name, max_new_tokens=NEW_TOKENS, constrained=False,
                              ignore_eos=True)
            for name in ("sql", None)
        ])
    finally:
        engine.close()

    tokenizer = AutoTokenizer.from_pretrained(base)
    prompt = render_ids(tokenizer, messages)
    assert tokenizer.decode(prompt[:2]) == "<bos><start_of_turn>" and len(prompt) > 64  # past the window (8)
    assert tokenizer.decode(prompt).endswith("<end_of_turn>\n<start_of_turn>model\n")
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter,
                                           adapter_name="sql").eval()
    ids = torch.tensor([prompt])
    kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "max_new_tokens": NEW_TOKENS,
              "min_new_tokens": NEW_TOKENS, "do_sample": False, "eos_token_id": None, "pad_token_id": 0}
    with torch.no_grad():
        with_adapter = peft_model.generate(**kwargs)[0, len(prompt):].tolist()
        with peft_model.disable_adapter():
            base_only = peft_model.generate(**kwargs)[0, len(prompt):].tolist()
    assert with_adapter != base_only  # the adapter changes the answer, so the comparison below means something
    assert [r.prompt_tokens for r in results] == [len(prompt)] * 2
    assert results[0].token_ids == with_adapter
    assert results[1].token_ids == base_only


def test_the_end_of_a_model_turn_stops_a_row_like_the_end_of_text(checkpoint) -> None:
    from transformers import AutoTokenizer

    from reviewers.engine.constraint import Vocabulary

    tokenizer = AutoTokenizer.from_pretrained(checkpoint[0])
    stops = Vocabulary.from_tokenizer(tokenizer).stop_ids
    assert set(stops) == {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")}
