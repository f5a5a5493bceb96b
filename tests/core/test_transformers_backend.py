"""The transformers backend routes each request to its reviewer's adapter and never loses a request."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reviewers.backends.base import ReviewerFailure
from reviewers.backends.transformers_backend import TransformersBackend, find_adapters
from reviewers.contract import ReviewerOutput, ReviewRequest, answer_settled, json_object_complete
from reviewers.models import BaseModelRef
from reviewers.prompt import render_messages
from tests.conftest import SMOLLM2_DIR, SMOLLM2_GGUF

DIFF = """diff --git a/app/x.py b/app/x.py
--- a/app/x.py
+++ b/app/x.py
@@ -1,2 +1,3 @@
 import os
+print(os.environ["TOKEN"])
 x = 1
"""


def tiny_llama(vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
    )
    return LlamaForCausalLM(config).eval()


def save_random_adapter(model, folder: Path, rank: int, seed: int, targets: list[str]) -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(folder)
    peft_model.unload()  # leave the base model as it was


@pytest.fixture(scope="module")
def tokenizer(smollm2_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)


@pytest.fixture()
def adapters_dir(tmp_path: Path, tokenizer) -> Path:
    base = tiny_llama(len(tokenizer))
    save_random_adapter(base, tmp_path / "python", rank=4, seed=1, targets=["q_proj", "v_proj"])
    save_random_adapter(base, tmp_path / "sql", rank=8, seed=2, targets=["o_proj", "down_proj"])
    (tmp_path / "notes").mkdir()  # a folder without adapter_config.json is not an adapter
    return tmp_path


def reference_tokens(model, tokenizer, request: ReviewRequest, n: int) -> list[int]:
    text = tokenizer.apply_chat_template(
        [m.model_dump() for m in render_messages(request)], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


def test_find_adapters_lists_only_adapter_folders(adapters_dir: Path) -> None:
    assert sorted(find_adapters(adapters_dir)) == ["python", "sql"]
    assert find_adapters(adapters_dir / "missing") == {}


def test_each_reviewer_is_answered_by_its_own_adapter(adapters_dir: Path, tokenizer) -> None:
    from peft import PeftModel

    n = 12
    backend = TransformersBackend(
        BaseModelRef(source="in-memory"), adapters_dir, device="cpu", max_new_tokens=n,
        stop_when_settled=False, model=tiny_llama(len(tokenizer)), tokenizer=tokenizer,
    )
    requests = [ReviewRequest(reviewer=r, task="print a token", diff=DIFF) for r in ("python", "sql", "react")]
    results = backend.review(requests)
    assert len(results) == 3
    # A random model cannot keep the contract: every answer is a failure that keeps the raw text.
    assert all(isinstance(r, ReviewerFailure) for r in results)

    reference = PeftModel.from_pretrained(tiny_llama(len(tokenizer)), str(adapters_dir / "python"), adapter_name="python")
    reference.load_adapter(str(adapters_dir / "sql"), adapter_name="sql")
    expected = {}
    for name in ("python", "sql"):
        reference.set_adapter(name)
        expected[name] = reference_tokens(reference, tokenizer, requests[0].model_copy(update={"reviewer": name}), n)
    with reference.disable_adapter():
        expected["react"] = reference_tokens(reference, tokenizer, requests[2], n)
    assert expected["python"] != expected["sql"] != expected["react"]  # the adapters really differ
    for request, result in zip(requests, results, strict=True):
        got = tokenizer(result.raw, add_special_tokens=False)["input_ids"]
        want = tokenizer(tokenizer.decode(expected[request.reviewer], skip_special_tokens=True),
                         add_special_tokens=False)["input_ids"]
        assert got == want, request.reviewer


def test_json_object_complete_detects_the_end_of_the_answer() -> None:
    assert not json_object_complete('{"verdict": "approve", "findings": [')
    assert json_object_complete('```json\n{"a": {"b": "}"}}\n``` trailing')
    assert not json_object_complete("no json here")


def test_an_answer_is_settled_once_complete_or_once_it_starts_with_prose() -> None:
    assert answer_settled("Sure! Here is my review")  # the contract already fails: stop generating
    assert not answer_settled("  ")
    assert not answer_settled('```json\n{"verdict": "revise", ')
    assert answer_settled('{"verdict": "approve", "findings": [], "missing_checks": [], "suggested_fix": ""}')


@pytest.mark.slow
def test_smollm2_base_model_answers_every_request() -> None:
    backend = TransformersBackend(
        BaseModelRef(source=str(SMOLLM2_DIR), gguf_file=SMOLLM2_GGUF), None, device="cpu", max_new_tokens=48
    )
    results = backend.review([ReviewRequest(reviewer="python", task="log a token", diff=DIFF)])
    assert len(results) == 1
    result = results[0]
    # The base model usually breaks the contract; either way the backend says so instead of raising.
    assert isinstance(result, (ReviewerOutput, ReviewerFailure))
    if isinstance(result, ReviewerFailure):  # prose, broken JSON, or an answer cut at the 48-token cap
        assert result.raw.strip() and ("contract" in result.message or "ran out of max_new_tokens=48" in result.message)


def test_generation_stops_as_soon_as_the_answer_starts_with_prose(adapters_dir: Path, tokenizer) -> None:
    backend = TransformersBackend(
        BaseModelRef(source="in-memory"), adapters_dir, device="cpu", max_new_tokens=40,
        model=tiny_llama(len(tokenizer)), tokenizer=tokenizer,
    )
    [result] = backend.review([ReviewRequest(reviewer="react", task="t", diff=DIFF)])
    assert isinstance(result, ReviewerFailure)
    assert not result.raw.lstrip().startswith(("{", "`"))  # a random model starts with prose...
    assert len(tokenizer(result.raw, add_special_tokens=False)["input_ids"]) < 40  # ...and stops there
