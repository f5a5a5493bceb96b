"""Adapter manifests: every loader refuses an adapter trained on another base model, naming both.

A tiny random Gemma-3 folder stands for the Gemma 3 checkpoint a user passes with `--base-model`; a tiny
random Llama is the other base. The adapter is a real PEFT adapter of the Gemma model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from reviewers.adapter_manifest import (
    MANIFEST_FILE,
    AdapterBaseMismatchError,
    AdapterManifest,
    check_adapter,
    read_manifest,
    write_manifest,
)
from reviewers.models import BaseModelRef, base_weights_sha256, resolve_base_model


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from training.tiny import save_tiny_base_model, save_tiny_gemma3_base_model

    root = tmp_path_factory.mktemp("bases")
    return {"gemma": save_tiny_gemma3_base_model(root / "gemma3"), "llama": save_tiny_base_model(root / "llama")}


@pytest.fixture(scope="module")
def adapters_dir(bases: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`adapters/sql/`: a LoRA adapter of the Gemma base with the manifest the trainer writes."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("adapters")
    model = AutoModelForCausalLM.from_pretrained(bases["gemma"])
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    peft_model.save_pretrained(root / "sql")
    base = resolve_base_model(str(bases["gemma"]))
    write_manifest(root / "sql", AdapterManifest(reviewer="sql", base_model=base.name,
                                                 base_sha256=base_weights_sha256(base), rank=4, lora_alpha=8,
                                                 target_modules=["q_proj", "v_proj"]))
    return root


def _says_both(exc: pytest.ExceptionInfo, bases: dict[str, Path]) -> None:
    message = str(exc.value)
    assert f"trained on base model {bases['gemma']}" in message and f"loaded is {bases['llama']}" in message


def test_transformers_backend_refuses_an_adapter_of_another_base(bases, adapters_dir) -> None:
    from reviewers.backends.transformers_backend import TransformersBackend

    with pytest.raises(AdapterBaseMismatchError) as exc:
        TransformersBackend(resolve_base_model(str(bases["llama"])), adapters_dir, device="cpu")
    _says_both(exc, bases)
    backend = TransformersBackend(resolve_base_model(str(bases["gemma"])), adapters_dir, device="cpu")
    assert set(backend.adapters) == {"sql"} and "sql" in backend.model.peft_config


def test_engine_backend_refuses_an_adapter_of_another_base_and_serves_its_own(bases, adapters_dir) -> None:
    from reviewers.backends.factory import BackendSettings
    from reviewers.engine.backend import EngineBackend

    with pytest.raises(AdapterBaseMismatchError) as exc:
        EngineBackend.from_settings(BackendSettings(backend="engine", base_model=str(bases["llama"]),
                                                    adapters_dir=adapters_dir, device="cpu"))
    _says_both(exc, bases)
    backend = EngineBackend.from_settings(BackendSettings(backend="engine", base_model=str(bases["gemma"]),
                                                          adapters_dir=adapters_dir, device="cpu"))
    try:
        assert backend.engine.adapters == ["sql"]
    finally:
        backend.engine.close()


def test_eval_loaders_refuse_an_adapter_of_another_base(bases, adapters_dir) -> None:
    from eval.engine_model import EngineReviewModel
    from eval.generation import TransformersModel

    with pytest.raises(AdapterBaseMismatchError) as exc:
        EngineReviewModel.load(str(bases["llama"]), {"sql": adapters_dir / "sql"}, device="cpu")
    _says_both(exc, bases)
    model = TransformersModel.load(str(bases["llama"]), device="cpu")
    with pytest.raises(AdapterBaseMismatchError):
        model.with_adapters({"sql": adapters_dir / "sql"})  # how `calora eval sweep` swaps checkpoints in


def test_an_adapter_without_manifest_loads_with_a_warning(bases, adapters_dir, tmp_path, caplog) -> None:
    import shutil

    folder = tmp_path / "sql"
    shutil.copytree(adapters_dir / "sql", folder)
    (folder / MANIFEST_FILE).unlink()  # as adapters made before manifests, or by hand
    with caplog.at_level(logging.WARNING, logger="reviewers.adapter_manifest"):
        assert check_adapter("sql", folder, resolve_base_model(str(bases["llama"]))) is None
    assert f"has no {MANIFEST_FILE}" in caplog.text


def test_a_base_that_cannot_be_hashed_is_not_refused_but_warned_about(adapters_dir, caplog) -> None:
    hub = BaseModelRef(source="google/gemma-3-1b-pt", name="google/gemma-3-1b-pt")
    with caplog.at_level(logging.WARNING, logger="reviewers.adapter_manifest"):
        assert check_adapter("sql", adapters_dir / "sql", hub) is not None
    assert "cannot compare base weights" in caplog.text


def test_promotion_installs_the_manifest_with_its_eval_evidence(adapters_dir, tmp_path) -> None:
    from eval.promote import install_adapter

    installed = install_adapter(adapters_dir / "sql", tmp_path / "adapters", "sql", {"metrics": {"validity": 1.0}})
    manifest = read_manifest(installed)
    assert manifest == read_manifest(adapters_dir / "sql").model_copy(update={"eval_evidence": "promotion.json"})
    assert json.loads((installed / manifest.eval_evidence).read_text())["metrics"] == {"validity": 1.0}


def test_review_command_refuses_the_mismatch_with_exit_3_and_no_traceback(bases, adapters_dir, capsys) -> None:
    from app.cli import main

    sample = Path(__file__).resolve().parents[2] / "samples" / "storefront.diff"
    code = main(["review", "--diff", str(sample), "--reviewers", "sql", "--base-model", str(bases["llama"]),
                 "--adapters", str(adapters_dir)])
    err = capsys.readouterr().err
    assert code == 3 and f"calora: adapter 'sql' ({adapters_dir / 'sql'}) was trained on base model" in err
    assert "Traceback" not in err
