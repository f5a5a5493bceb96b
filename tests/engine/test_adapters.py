"""Adapters load and unload at run time; what cannot be served is refused with a clear error."""

from __future__ import annotations

import json
import shutil

import pytest

from reviewers.engine.engine import Engine, EngineError, GenerationRequest
from reviewers.engine.lora import AdapterError, load_peft_adapter


def _ask(engine, adapter):
    request = GenerationRequest(prompt=[5, 6, 7, 8], adapter=adapter, max_new_tokens=6, constrained=False,
                                ignore_eos=True)
    return engine.generate([request])[0].token_ids


def test_adapters_load_and_unload_without_reloading_the_base(base_and_adapters, tiny_tokenizer):
    model, paths = base_and_adapters
    engine = Engine.from_model(model, tiny_tokenizer, max_batch=4, max_seq_len=32)
    try:
        base = _ask(engine, None)
        engine.add_adapter("sql", paths["sql"])
        assert engine.adapters == ["sql"]
        with_sql = _ask(engine, "sql")
        engine.add_adapter("python", paths["python"])
        assert _ask(engine, "sql") == with_sql, "adding an adapter does not change another's output"
        engine.remove_adapter("sql")
        assert engine.adapters == ["python"]
        assert _ask(engine, None) == base
        with pytest.raises(EngineError, match="unknown adapter 'sql'"):
            _ask(engine, "sql")
        with pytest.raises(AdapterError, match="not loaded"):
            engine.remove_adapter("sql")
    finally:
        engine.close()


def test_adapter_state_can_be_given_in_memory(base_and_adapters, tiny_tokenizer):
    from safetensors.torch import load_file

    model, paths = base_and_adapters
    config = json.loads((paths["docs"] / "adapter_config.json").read_text())
    state = load_file(str(paths["docs"] / "adapter_model.safetensors"))
    engine = Engine.from_model(model, tiny_tokenizer, adapters={"docs": paths["docs"]}, max_batch=2, max_seq_len=32)
    try:
        from_disk = _ask(engine, "docs")
        engine.add_adapter("docs", (config, state))
        assert _ask(engine, "docs") == from_disk
    finally:
        engine.close()


def test_unservable_adapters_are_refused_with_the_reason(base_and_adapters, tmp_path):
    _model, paths = base_and_adapters
    with pytest.raises(AdapterError, match="adapter_config.json"):
        load_peft_adapter(tmp_path, "empty")
    dora = tmp_path / "dora"
    shutil.copytree(paths["python"], dora)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(AdapterError, match="use_dora"):
        load_peft_adapter(dora, "dora")


def test_an_adapter_for_another_base_is_refused(base_and_adapters, tiny_tokenizer):
    import torch

    model, _paths = base_and_adapters
    engine = Engine.from_model(model, tiny_tokenizer, max_batch=2, max_seq_len=32)
    engine.close()
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    foreign = {f"{prefix}.lora_A.weight": torch.randn(4, 999), f"{prefix}.lora_B.weight": torch.randn(64, 4)}
    with pytest.raises(AdapterError, match="the base model has"):
        engine.add_adapter("foreign", ({"r": 4, "lora_alpha": 8}, foreign))
    with pytest.raises(AdapterError, match="targets 'embed_tokens'"):
        engine.add_adapter("embed", ({"r": 4}, {
            "base_model.model.model.layers.0.self_attn.embed_tokens.lora_A.weight": torch.randn(4, 64),
            "base_model.model.model.layers.0.self_attn.embed_tokens.lora_B.weight": torch.randn(64, 4),
        }))


def test_requests_that_cannot_run_fail_with_a_clear_message(base_and_adapters, tiny_tokenizer):
    model, _paths = base_and_adapters
    engine = Engine.from_model(model, tiny_tokenizer, max_batch=2, max_seq_len=32)
    try:
        too_long = engine.submit(GenerationRequest(prompt=list(range(30)), max_new_tokens=8, constrained=False))
        with pytest.raises(EngineError, match="exceeds max_seq_len=32"):
            too_long.result()
        too_short = engine.submit(GenerationRequest(prompt=[1, 2], max_new_tokens=3))
        with pytest.raises(ValueError, match="too small for a constrained answer"):
            too_short.result()
        # the engine keeps serving after refusals
        assert len(_ask(engine, None)) == 6
    finally:
        engine.close()


def test_check_adapters_command_reports_what_it_would_serve(base_and_adapters, tmp_path, capsys):
    from app.cli import main

    _model, paths = base_and_adapters
    assert main(["reviewers", "check-adapters", str(paths["sql"]), str(paths["python"])]) == 0
    out = capsys.readouterr().out
    assert "rank 8" in out and "rank 4, scale 2, targets q_proj,v_proj" in out
    assert "no calora-manifest.json: its base model cannot be checked" in out
    import shutil

    from reviewers.adapter_manifest import AdapterManifest, write_manifest

    shutil.copytree(paths["sql"], tmp_path / "sql")
    write_manifest(tmp_path / "sql", AdapterManifest(reviewer="sql", base_model="gemma3-270m", base_sha256="ab" * 32,
                                                     rank=8, lora_alpha=16, target_modules=["q_proj"]))
    assert main(["reviewers", "check-adapters", str(tmp_path / "sql")]) == 0
    assert "trained on gemma3-270m (sha256 abababababab)" in capsys.readouterr().out
    assert main(["reviewers", "check-adapters", str(tmp_path / "missing")]) == 1
    assert "NOT SERVABLE" in capsys.readouterr().out
