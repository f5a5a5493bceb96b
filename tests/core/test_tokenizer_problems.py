"""A tokenizer that cannot read the prompt format is refused before it costs a training run (issue #14).

GPU round 3 converted Gemma's GGUF with a transformers that rebuilt no merges: one token per character,
turn markers spelled out. `eval.verdict_probe.char_level_tokenizer` rebuilds that tokenizer from a good one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.verdict_probe import char_level_tokenizer
from reviewers.models import ModelFetchError, fetch_model, model_dir, read_cached
from reviewers.prompt import ANSWER_SHAPE, TURN_START, tokenizer_problems
from tests.conftest import SMOLLM2_DIR, SMOLLM2_GGUF
from training.base_model import BaseModelError, load_tokenizer
from training.config import TrainConfig
from training.tiny import tiny_gemma_tokenizer, tiny_tokenizer


def test_subword_tokenizers_with_their_turn_markers_have_no_problems() -> None:
    assert tokenizer_problems(tiny_gemma_tokenizer()) == []
    assert tokenizer_problems(tiny_tokenizer()) == []  # ChatML template: no Gemma markers to check


def test_the_character_level_tokenizer_of_gpu_round_3_is_named_for_both_faults() -> None:
    broken = char_level_tokenizer(tiny_gemma_tokenizer())
    assert len(broken(ANSWER_SHAPE, add_special_tokens=False)["input_ids"]) == len(ANSWER_SHAPE)
    problems = tokenizer_problems(broken)
    assert any(p.startswith(f"{TURN_START} encodes to {len(TURN_START)} tokens") for p in problems)
    assert any("no working merges" in p for p in problems)


def test_training_refuses_a_base_whose_tokenizer_reads_characters(tmp_path: Path) -> None:
    char_level_tokenizer(tiny_gemma_tokenizer()).save_pretrained(tmp_path / "base")
    with pytest.raises(BaseModelError, match="no working merges"):
        load_tokenizer(TrainConfig(reviewer="python", base_model=str(tmp_path / "base")))


def test_fetch_refuses_a_conversion_that_yields_a_character_level_tokenizer_and_caches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    monkeypatch.setenv("CALORA_CACHE_DIR", str(tmp_path / "cache"))
    broken = char_level_tokenizer(tiny_gemma_tokenizer())
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: broken)
    with pytest.raises(ModelFetchError, match="splits text differently .*no working merges"):
        fetch_model("smollm2", SMOLLM2_DIR / SMOLLM2_GGUF)
    assert read_cached(model_dir("smollm2")) is None
