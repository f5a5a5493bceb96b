"""The backend interface the review core talks to, declared in full: nothing is found by probing.

A backend answers review requests (`answer`: one result per request, in order, plus whatever code left
the machine to produce them), says whether it has a reviewer's own adapter (`has_adapter`) and counts
tokens the way its model does (`count_tokens`), so that `calora review` and the App slice a diff alike.

`Backend` is the base the project's backends inherit: it turns a plain `review` into `answer` with no
egress and counts tokens with the slicer's estimate until a backend knows its tokenizer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from reviewers.contract import BrokenAnswer, ReviewerOutput, ReviewRequest
from reviewers.slicing import approx_token_count


class ReviewerFailure(BaseModel):
    """A request the backend could not answer within the contract; `raw` keeps what the model said."""

    reviewer: str
    message: str
    raw: str = ""


BackendResult = ReviewerOutput | ReviewerFailure


def as_result(reviewer: str, judged: ReviewerOutput | BrokenAnswer) -> BackendResult:
    """What `contract.read_answer` decided, as a backend result for `reviewer`."""
    if isinstance(judged, BrokenAnswer):
        return ReviewerFailure(reviewer=reviewer, message=judged.message, raw=judged.raw)
    return judged


class CodeEgress(BaseModel):
    """Slices of one reviewer that were sent off this machine, and where to."""

    reviewer: str
    endpoint: str = Field(description="scheme://host[:port] of the remote server (no path, no credentials).")
    model: str
    requests: int = Field(ge=1, description="How many slices were sent.")


def endpoint_of(base_url: str) -> str:
    """`scheme://host[:port]` of a URL: where the code went, without paths, queries or credentials."""
    parts = urlsplit(base_url)
    host = parts.hostname or base_url
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or 'https'}://{host}{port}"


def describe_egress(egress: Sequence[CodeEgress]) -> str:
    """One sentence for the check run; empty when nothing left the machine."""
    if not egress:
        return ""
    parts = [f"{e.requests} {e.reviewer} slice(s) to {e.endpoint} (model {e.model})" for e in egress]
    return (
        "Code left this machine: " + "; ".join(parts) + ". These reviewers have no local adapter and a cloud "
        "reviewer is configured for them (CALORA_CLOUD_REVIEWERS)."
    )


class BackendAnswers(BaseModel):
    """A backend's answers to a batch (in request order) and the code that left the machine for them."""

    results: list[BackendResult]
    egress: list[CodeEgress] = Field(default_factory=list)


@runtime_checkable
class ReviewerBackend(Protocol):
    """Anything that reviews: the transformers backend, the engine, an OpenAI-compatible server, the cloud."""

    name: str

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        """Answer every request; a failure for one request never fails the others."""
        ...

    def answer(self, requests: list[ReviewRequest]) -> BackendAnswers:
        """`review` plus what left the machine: what the review core calls."""
        ...

    def has_adapter(self, reviewer: str) -> bool:
        """True when this backend has the reviewer's own adapter (not just the base model)."""
        ...

    def asks(self, reviewer: str) -> bool:
        """True when the review sends this reviewer's slices to the model (see `Backend.ask_base_model`)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as this backend's model counts them (what slicing budgets)."""
        ...


class Backend(ABC):
    """The defaults a backend inherits: no egress, no adapters, the slicer's token estimate."""

    name: str = "backend"
    ask_base_model: bool = True
    """Whether a reviewer without an adapter of its own is asked anyway (the bare base model answers).
    `reviewers.backends.factory.make_backend` sets it from `CALORA_ASK_BASE_MODEL`; off for the local
    backends by default, because the untrained small base adds noise, not findings."""
    findings_alone: bool = True
    """Whether a reviewer's finding that no analyzer confirms is posted (`reviewers.synthesis`).
    `make_backend` sets it from `CALORA_REVIEWER_FINDINGS`; off for the local backends by default, because a
    small model's findings are rarely right unless they confirm an analyzer's."""

    @abstractmethod
    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        """Answer every request; a failure for one request never fails the others."""

    def answer(self, requests: list[ReviewRequest]) -> BackendAnswers:
        """Answers only: a backend that runs on this machine sends no code anywhere."""
        return BackendAnswers(results=self.review(requests))

    def has_adapter(self, reviewer: str) -> bool:
        return False

    def asks(self, reviewer: str) -> bool:
        return self.ask_base_model or self.has_adapter(reviewer)

    def count_tokens(self, text: str) -> int:
        """The slicer's estimate; backends that hold their model's tokenizer count exactly."""
        return approx_token_count(text)


class NoModelBackend(Backend):
    """What `make_backend` gives when no reviewer would be asked (no adapter installed, the bare base model
    not asked): nothing is loaded, every reviewer is "not asked", the review is the analyzers' evidence."""

    name = "none"
    ask_base_model = False

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        return [ReviewerFailure(reviewer=r.reviewer, message="no reviewer model is loaded") for r in requests]
