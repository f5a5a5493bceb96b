"""The backend interface: `review(requests) -> outputs or errors`, one result per request, in order."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from reviewers.contract import ReviewerOutput, ReviewRequest


class ReviewerFailure(BaseModel):
    """A request the backend could not answer within the contract; `raw` keeps what the model said."""

    reviewer: str
    message: str
    raw: str = ""


BackendResult = ReviewerOutput | ReviewerFailure


@runtime_checkable
class ReviewerBackend(Protocol):
    """Anything that reviews: the transformers backend, the engine, an OpenAI-compatible server."""

    name: str

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        """Answer every request; a failure for one request never fails the others."""
        ...
