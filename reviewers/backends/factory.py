"""Choosing and building the reviewer backend from settings (environment variables `CALORA_*`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr

from reviewers.backends import DEFAULT_BACKEND, BackendName
from reviewers.backends.base import NoModelBackend, ReviewerBackend
from reviewers.backends.cloud import CloudReviewer
from reviewers.models import DEFAULT_MAX_NEW_TOKENS, ModelSettings, resolve_base_model


class BackendSettings(ModelSettings):
    """Which backend answers review requests.

    - `engine` (default): the in-process multi-adapter engine (`reviewers/engine/`), base model from
      `CALORA_BASE_MODEL` or the fetched default (`reviewers.models.DEFAULT_BASE_MODEL`), adapters from
      `CALORA_ADAPTERS_DIR/<reviewer>/`. The default because it is the faster CPU path (a 20-file PR's 11.7k
      prompt tokens prefilled in about 20 s on 2 cores in fp32, the CPU default, against about 60 s for
      transformers) and the only one whose answers from the bare base model hold the contract, its decoding
      being JSON-constrained: the model's part of the review in about 60 s, where transformers answered no
      slice validly (bench/review_latency.py, bench/NOTES-engine.md, issue #18).
    - `transformers`: in-process transformers + PEFT, same model settings (any causal LM transformers loads).
    - `openai`: an OpenAI-compatible server (our reviewer server, vLLM, llama.cpp, Ollama) at
      `CALORA_OPENAI_BASE_URL`; the adapter name is the model name.

    Read like every settings class (`reviewers.settings.CaloraSettings`): the environment, then `.env`;
    `base_model` and `cache_dir` are `reviewers.models.ModelSettings`'.
    """

    backend: BackendName = DEFAULT_BACKEND
    adapters_dir: Path = Path("adapters")
    device: str = "auto"
    engine_dtype: Literal["float32", "bfloat16"] | None = Field(
        default=None,
        description="CALORA_ENGINE_DTYPE: the engine's weights and activations; default float32 on CPU, "
        "bfloat16 on GPU. bfloat16 on a CPU with AMX reviews the 20-file bench PR in about two thirds of "
        "float32's time, but its greedy answers are not float32's (bench/review_latency.py --dtypes).",
    )
    max_new_tokens: int = Field(default=DEFAULT_MAX_NEW_TOKENS, ge=16)
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = Field(default=None, description="Never logged or shown.")
    openai_models: dict[str, str] = Field(
        default_factory=dict, description="Reviewer → model name (JSON); default: the reviewer's own name."
    )
    openai_base_model: str | None = Field(
        default=None, description="Model for reviewers the server has no adapter for; default: found in /v1/models."
    )
    openai_schema_mode: Literal["json_schema", "vllm_structured_outputs", "vllm_guided_json", "json_object", "none"] = (
        "json_schema"
    )
    openai_extra_body: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Extra body fields per reviewer (JSON; key '*' for all)."
    )
    openai_timeout_s: float = Field(default=120.0, gt=0)
    openai_max_attempts: int = Field(default=4, ge=1)
    openai_concurrency: int = Field(default=8, ge=1)
    ask_base_model: bool | None = Field(
        default=None,
        description="CALORA_ASK_BASE_MODEL: also ask reviewers that have no adapter of their own (the bare base "
        "model answers). Default: no for the local backends (engine, transformers) — on the 80 scenarios of "
        "eval/scenarios the untrained Gemma 3 270M added 10 noisy findings and 2 false blocks to the analyzers' "
        "evidence for one more real finding — and yes for `openai`, whose model is the user's choice.",
    )
    reviewer_findings: Literal["confirmed", "all"] | None = Field(
        default=None,
        description="CALORA_REVIEWER_FINDINGS: `confirmed` posts a reviewer's finding only where an analyzer's "
        "finding confirms it (and a reviewer may not raise an analyzer's nit); `all` posts every finding. "
        "Default: `confirmed` for the local backends (engine, transformers) — held out, round 5's Gemma 3 270M "
        "adapters were right in 14 of 63 findings they raised alone, in 57 of 88 that confirmed an "
        "analyzer and in 2 of 6 that raised an analyzer's nit (the Gemma 3 270M report's round5/held_precision.py) — and `all` for `openai`, whose model is the user's choice.",
    )
    cloud_reviewers: dict[str, CloudReviewer] = Field(
        default_factory=dict,
        description="Off by default. Reviewer → remote OpenAI-compatible endpoint, used only when that reviewer "
        "has no local adapter; the check run says when code left the machine (reviewers/backends/cloud.py).",
    )


def _users_own_model(settings: BackendSettings) -> bool:
    """A remote (`openai`) model is one the user chose and trusts; the local small models earn trust by measure."""
    return settings.backend == "openai"


def asks_base_model(settings: BackendSettings) -> bool:
    """`CALORA_ASK_BASE_MODEL` when set, else: only the user's own model is asked without an adapter."""
    return settings.ask_base_model if settings.ask_base_model is not None else _users_own_model(settings)


def posts_findings_alone(settings: BackendSettings) -> bool:
    """`CALORA_REVIEWER_FINDINGS` when set, else: only the user's own model's findings stand alone."""
    if settings.reviewer_findings is not None:
        return settings.reviewer_findings == "all"
    return _users_own_model(settings)


def asks_any_model(settings: BackendSettings) -> bool:
    """Whether a review with these settings asks a model at all; if not, none needs loading."""
    if asks_base_model(settings) or settings.cloud_reviewers:
        return True
    from reviewers.backends.transformers_backend import find_adapters

    return bool(find_adapters(settings.adapters_dir))


def make_backend(settings: BackendSettings) -> ReviewerBackend:
    """Build the configured backend; raises a clear error when its settings are incomplete. When no
    reviewer would be asked (`asks_any_model`), no model is loaded: a `NoModelBackend`."""
    if not asks_any_model(settings):
        return NoModelBackend()
    backend = _build_backend(settings)
    backend.ask_base_model = asks_base_model(settings)  # type: ignore[attr-defined]
    backend.findings_alone = posts_findings_alone(settings)  # type: ignore[attr-defined]
    return backend


def _build_backend(settings: BackendSettings) -> ReviewerBackend:
    if settings.cloud_reviewers:
        from reviewers.backends.cloud import CloudFallbackBackend

        local = make_backend(settings.model_copy(update={"cloud_reviewers": {}}))
        return CloudFallbackBackend.from_settings(settings, local)
    if settings.backend == "transformers":
        from reviewers.backends.transformers_backend import TransformersBackend

        return TransformersBackend(
            resolve_base_model(settings.base_model), settings.adapters_dir,
            device=settings.device, max_new_tokens=settings.max_new_tokens,
        )
    if settings.backend == "engine":
        from reviewers.engine.backend import EngineBackend

        return EngineBackend.from_settings(settings)
    from reviewers.backends.openai_backend import OpenAIBackend

    return OpenAIBackend.from_settings(settings)
