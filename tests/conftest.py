"""Fixtures every test area may use: where the shared data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
SMOLLM2_DIR = SHARED / "models" / "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared is missing (looked in {SHARED}); the tests need its real data")
    return SHARED


@pytest.fixture(scope="session")
def real_diffs(shared_dir: Path) -> list[Path]:
    return sorted((shared_dir / "github" / "diffs" / "real").glob("*.diff"))


@pytest.fixture(scope="session")
def unidiff_samples(shared_dir: Path) -> list[Path]:
    return sorted((shared_dir / "github" / "diffs" / "unidiff-samples").glob("*.diff"))


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2's real tokenizer (with its chat template), saved once as a plain folder for fast loads."""
    from transformers import AutoTokenizer

    if not (SMOLLM2_DIR / SMOLLM2_GGUF).is_file():
        pytest.fail(f"{SMOLLM2_DIR / SMOLLM2_GGUF} is missing")
    out = tmp_path_factory.mktemp("smollm2-tokenizer")
    AutoTokenizer.from_pretrained(SMOLLM2_DIR, gguf_file=SMOLLM2_GGUF).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(real_diffs):
    """A byte-level BPE tokenizer trained in memory on the real diffs, with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    texts = [p.read_text(errors="replace") for p in real_diffs[:20]]
    tok.train_from_iterator(texts, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>"
    )
    wrapped.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return wrapped
