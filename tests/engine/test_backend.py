"""`EngineBackend` behind the app's backend factory: settings in, reviews out."""

from __future__ import annotations

from reviewers.backends.base import ReviewerBackend, ReviewerFailure
from reviewers.backends.factory import BackendSettings, make_backend
from reviewers.contract import ReviewerOutput, ReviewRequest


def test_the_factory_builds_an_engine_backend_from_a_model_folder_and_adapters(
    base_and_adapters, tiny_tokenizer, tmp_path, real_diffs
):
    model, paths = base_and_adapters
    model.save_pretrained(tmp_path / "base")
    tiny_tokenizer.save_pretrained(tmp_path / "base")
    adapters_dir = tmp_path / "adapters"
    adapters_dir.mkdir()
    (adapters_dir / "python").symlink_to(paths["python"], target_is_directory=True)
    settings = BackendSettings(backend="engine", base_model=str(tmp_path / "base"), adapters_dir=adapters_dir,
                               device="cpu", max_new_tokens=120)
    backend = make_backend(settings)
    try:
        assert isinstance(backend, ReviewerBackend)
        assert backend.engine.adapters == ["python"]
        diff = real_diffs[0].read_text(errors="replace")[:600]
        requests = [ReviewRequest(reviewer="python", diff=diff), ReviewRequest(reviewer="sql", diff=diff)]
        answers = backend.review(requests)
        assert len(answers) == 2
        for answer in answers:
            # a random model never finishes on its own: the constrained answer is closed at the budget
            # and reported as a failure that keeps the (valid) raw JSON
            assert isinstance(answer, ReviewerOutput) or (
                isinstance(answer, ReviewerFailure) and "max_new_tokens=120" in answer.message and answer.raw
            )
    finally:
        backend.engine.close()


def test_calora_engine_dtype_picks_the_engines_dtype(base_and_adapters, tiny_tokenizer, tmp_path, monkeypatch):
    import torch

    model, _paths = base_and_adapters
    model.save_pretrained(tmp_path / "base")
    tiny_tokenizer.save_pretrained(tmp_path / "base")
    monkeypatch.setenv("CALORA_ENGINE_DTYPE", "bfloat16")
    settings = BackendSettings(backend="engine", base_model=str(tmp_path / "base"), adapters_dir=tmp_path / "none",
                               device="cpu", ask_base_model=True)  # no adapter: only then is a model loaded
    backend = make_backend(settings)
    backend.engine.close()
    assert settings.engine_dtype == "bfloat16" and backend.engine.decoder.dtype == torch.bfloat16
    monkeypatch.delenv("CALORA_ENGINE_DTYPE")
    default = make_backend(settings.model_copy(update={"engine_dtype": None}))
    default.engine.close()
    assert default.engine.decoder.dtype == torch.float32  # the CPU default


def test_a_request_the_engine_refuses_becomes_a_failure_not_an_exception(base_and_adapters, tiny_tokenizer):
    from reviewers.engine.backend import EngineBackend
    from reviewers.engine.engine import Engine

    model, _paths = base_and_adapters
    engine = Engine.from_model(model, tiny_tokenizer, max_batch=2, max_seq_len=64)
    try:
        [answer] = EngineBackend(engine, max_new_tokens=60).review(
            [ReviewRequest(reviewer="python", diff="+x\n" * 200)]
        )
        assert isinstance(answer, ReviewerFailure) and "max_seq_len=64" in answer.message
    finally:
        engine.close()
