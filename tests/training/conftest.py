"""Fixtures for the training tests: a tiny random base model on disk and short chat data.

The CPU cores are shared, and two BLAS threads fighting other processes make small matrix products
ten times slower than one thread, so these tests run torch on one thread.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.tiny import save_tiny_base_model

    return save_tiny_base_model(tmp_path_factory.mktemp("tiny-base"))


def short_chat(i: int) -> dict[str, object]:
    """A short prompt/answer pair (the trainer takes any chat JSONL; real data is rendered by data build)."""
    verdict = ("approve", "revise", "block")[i % 3]
    return {
        "id": f"python/ex{i:03d}",
        "messages": [
            {"role": "system", "content": "You review Python diffs."},
            {"role": "user", "content": f"Diff:\n+x_{i} = compute({i})\n" + "+pass\n" * (i % 4)},
            {"role": "assistant", "content": json.dumps({"verdict": verdict, "findings": []})},
        ],
    }


@pytest.fixture(scope="session")
def chat_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "python").mkdir()
    rows = [json.dumps(short_chat(i)) for i in range(24)]
    (root / "python" / "train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root
