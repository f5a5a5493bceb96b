"""`calora data build` renders an example's repository context exactly as a review request shows it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from reviewers.contract import ContextSnippet
from reviewers.prompt import context_block, render_messages
from tests.training.test_dataset_build import example, write
from training.dataset_build import build_dataset
from training.examples import CuratedExample


def test_the_training_prompt_shows_context_as_serving_does(tmp_path: Path) -> None:
    snippet = {"path": "shop/models.py", "text": "class Order:\n    total_cents: int",
               "why": "defines Order, used by 2 changed lines"}
    path = write(tmp_path / "examples", "python", "with-context", example(context=[snippet]))
    build_dataset([tmp_path / "examples"], tmp_path / "out", eval_fraction=0.0)
    record = json.loads((tmp_path / "out" / "python" / "train.jsonl").read_text().splitlines()[0])
    user = next(m["content"] for m in record["messages"] if m["role"] == "user")
    assert context_block(ContextSnippet(**snippet)) in user
    assert "Context from shop/models.py (defines Order, used by 2 changed lines):" in user
    request = CuratedExample.model_validate(yaml.safe_load(path.read_text())).request()
    assert [m.model_dump() for m in render_messages(request)] == record["messages"][:2]
