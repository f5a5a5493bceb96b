"""Cloud fallback: a reviewer with no local adapter may be answered by a configured remote model.

Off by default. Per reviewer, `CALORA_CLOUD_REVIEWERS` may name an OpenAI-compatible endpoint and model,
e.g. `{"docker_ci": {"base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini",
"api_key_env": "OPENAI_API_KEY"}}`. `CloudFallbackBackend` wraps the local backend and sends a request to
the cloud only when both hold: that reviewer is configured, and the local backend has no adapter for it.
Everything else stays on this machine.

Sending a diff to a third party is something the pull request's author and the repository owner must be
able to see, so the backend reports it: `answer` returns, beside the answers, one `CodeEgress` per
reviewer whose slices left the machine (also when the remote call then failed: the bytes were sent).
`describe_egress` (reviewers/backends/base.py) turns that into the sentence the check run shows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reviewers.backends.base import (
    Backend,
    BackendAnswers,
    BackendResult,
    CodeEgress,
    ReviewerBackend,
    ReviewerFailure,
    endpoint_of,
)
from reviewers.backends.openai_backend import SCHEMA_MODES, OpenAIBackend
from reviewers.contract import ReviewRequest

log = logging.getLogger(__name__)


class CloudConfigError(ValueError):
    """A cloud reviewer is configured incompletely (unknown schema mode, missing API key variable)."""


class CloudReviewer(BaseModel):
    """Where one reviewer's slices may go when no local adapter exists for it."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="OpenAI-compatible base URL, e.g. https://api.openai.com/v1")
    model: str = Field(description="The remote model name.")
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable that holds the API key (never the key)."
    )
    schema_mode: str = Field(default="json_schema", description="How the schema is sent; see openai_backend.")
    timeout_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)


def remote_backend(reviewer: str, config: CloudReviewer, **options: Any) -> OpenAIBackend:
    """The OpenAI backend that speaks for one cloud reviewer."""
    if config.schema_mode not in SCHEMA_MODES:
        raise CloudConfigError(
            f"cloud reviewer {reviewer!r}: unknown schema_mode {config.schema_mode!r}; use one of {', '.join(SCHEMA_MODES)}"
        )
    api_key = None
    if config.api_key_env:
        api_key = os.environ.get(config.api_key_env)
        if not api_key:
            raise CloudConfigError(
                f"cloud reviewer {reviewer!r}: environment variable {config.api_key_env} (its API key) is not set"
            )
    return OpenAIBackend(
        config.base_url, api_key=api_key, models={reviewer: config.model}, fallback_to_base=False,
        schema_mode=config.schema_mode, timeout_s=config.timeout_s, max_attempts=config.max_attempts,
        label=f"cloud reviewer {endpoint_of(config.base_url)}", **options,
    )


class CloudFallbackBackend(Backend):
    """The local backend, plus cloud reviewers for the configured reviewers that have no local adapter."""

    def __init__(
        self,
        local: ReviewerBackend,
        cloud: Mapping[str, CloudReviewer],
        *,
        remotes: Mapping[str, ReviewerBackend] | None = None,
        has_local_adapter: Callable[[str], bool] | None = None,
    ) -> None:
        self.local = local
        self.cloud = dict(cloud)
        self.remotes = dict(remotes) if remotes is not None else {
            reviewer: remote_backend(reviewer, config) for reviewer, config in self.cloud.items()
        }
        self.has_local_adapter = has_local_adapter or local.has_adapter
        self.name = f"{local.name}+cloud"

    @classmethod
    def from_settings(cls, settings: Any, local: ReviewerBackend) -> CloudFallbackBackend:
        return cls(local, settings.cloud_reviewers)

    def count_tokens(self, text: str) -> int:
        """Slices are cut for the local model (the cloud model gets the same slices)."""
        return self.local.count_tokens(text)

    def has_adapter(self, reviewer: str) -> bool:
        return self.has_local_adapter(reviewer)

    def asks(self, reviewer: str) -> bool:
        """A cloud reviewer is always asked: configuring it is asking for it."""
        return self.goes_to_cloud(reviewer) or super().asks(reviewer)

    def goes_to_cloud(self, reviewer: str) -> bool:
        """Configured for the cloud and no local adapter: the only case in which code leaves."""
        return reviewer in self.cloud and not self.has_local_adapter(reviewer)

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        return self.answer(requests).results

    def answer(self, requests: list[ReviewRequest]) -> BackendAnswers:
        """The answers in request order, and what left the machine to produce them."""
        decided = {r.reviewer: self.goes_to_cloud(r.reviewer) for r in requests}
        local_at = [i for i, r in enumerate(requests) if not decided[r.reviewer]]
        remote_at: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            if decided[r.reviewer]:
                remote_at.setdefault(r.reviewer, []).append(i)
        results: list[BackendResult | None] = [None] * len(requests)
        egress: list[CodeEgress] = []
        for reviewer, indexes in remote_at.items():
            config = self.cloud[reviewer]
            log.warning("sending %d %s slice(s) to the cloud reviewer %s (model %s)", len(indexes), reviewer,
                        endpoint_of(config.base_url), config.model)
            egress.append(CodeEgress(reviewer=reviewer, endpoint=endpoint_of(config.base_url), model=config.model,
                                     requests=len(indexes)))
            _fill(results, indexes, requests, self.remotes[reviewer], f"cloud reviewer {reviewer}")
        if local_at:
            _fill(results, local_at, requests, self.local, f"backend {self.local.name}")
        return BackendAnswers(results=[r for r in results if r is not None], egress=egress)


def _fill(results: list, indexes: list[int], requests: list[ReviewRequest], backend: ReviewerBackend,
          what: str) -> None:
    subset = [requests[i] for i in indexes]
    try:
        answers = backend.review(subset)
        if len(answers) != len(subset):
            raise RuntimeError(f"returned {len(answers)} answers for {len(subset)} requests")
    except Exception as exc:  # one failing side must not fail the other
        log.exception("%s failed", what)
        answers = [ReviewerFailure(reviewer=r.reviewer, message=f"{what} failed: {exc}") for r in subset]
    for i, answer in zip(indexes, answers, strict=True):
        results[i] = answer
