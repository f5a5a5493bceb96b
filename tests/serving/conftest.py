"""The reviewer server on loopback, serving a tiny random model through the real engine.

The tiny BPE tokenizer of tests/conftest.py (trained in memory on the real diffs), a 2-layer random
Llama, and two PEFT adapters with non-zero random weights saved the way `training/` saves them.
Each server runs under uvicorn in a thread on a free port of 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import uvicorn

ADAPTERS = {"python": (4, ["q_proj", "v_proj"]), "sql": (8, ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"])}
BASE_NAME = "tiny-llama"


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tiny_tokenizer), hidden_size=64, intermediate_size=96,
                         num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                         max_position_embeddings=4096)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def adapter_dirs(tiny_model, tmp_path_factory) -> dict[str, Path]:
    """PEFT adapters with non-zero A and B (a fresh PEFT adapter has B = 0, which would change nothing)."""
    import copy

    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("adapters")
    paths = {}
    for seed, (name, (rank, targets)) in enumerate(ADAPTERS.items(), start=1):
        torch.manual_seed(seed)
        peft_model = get_peft_model(copy.deepcopy(tiny_model), LoraConfig(
            r=rank, lora_alpha=2 * rank, target_modules=targets, init_lora_weights=False, lora_dropout=0.0,
        ))
        with torch.no_grad():
            for pname, param in peft_model.named_parameters():
                if "lora_" in pname:
                    param.normal_(0.0, 0.2)
        paths[name] = root / name
        peft_model.save_pretrained(paths[name])
    return paths


def make_engine(tiny_model, tiny_tokenizer, adapter_dirs, **options):
    from reviewers.engine.engine import Engine

    return Engine.from_model(tiny_model, tiny_tokenizer, adapters=adapter_dirs, device="cpu",
                             max_seq_len=4096, **options)


@pytest.fixture(scope="session")
def engine(tiny_model, tiny_tokenizer, adapter_dirs):
    built = make_engine(tiny_model, tiny_tokenizer, adapter_dirs, max_batch=8)
    yield built
    built.close()


@contextmanager
def serving(app) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def reviewer_server(engine) -> Iterator[str]:
    """Our reviewer server over the real engine; yields the base URL (without /v1)."""
    from reviewers.serving.app import create_app
    from reviewers.serving.state import ServerSettings

    settings = ServerSettings(base_model=BASE_NAME, max_queue=32, request_timeout_s=60, max_new_tokens=96)
    with serving(create_app(engine, settings)) as url:
        yield url
