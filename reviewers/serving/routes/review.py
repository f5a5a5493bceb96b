"""`POST /v1/review`: a batch of `ReviewRequest`s → one result per request (a `ReviewerOutput` or an error).

A request whose reviewer has a loaded adapter uses it; any other reviewer gets the base model. Every
answer is judged here by `reviewers.contract.read_answer`, the one judge every backend uses.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from reviewers.contract import BrokenAnswer, ReviewerOutput, ReviewRequest, read_answer
from reviewers.engine.engine import GenerationRequest, GenerationResult
from reviewers.prompt import render_messages
from reviewers.serving.errors import BadRequest, TimedOut
from reviewers.serving.state import ServingDep, await_future

router = APIRouter(prefix="/v1")


class ReviewBatch(BaseModel):
    """Body of `POST /v1/review`."""

    model_config = ConfigDict(extra="forbid")

    requests: list[ReviewRequest]
    max_new_tokens: int | None = Field(default=None, ge=1)
    constrained: bool = Field(default=True, description="Force the ReviewerOutput schema (the default).")
    accept_truncated: bool = Field(
        default=False, description="Accept an answer that ran out of max_new_tokens (closed early by the grammar)."
    )


class ReviewAnswerItem(BaseModel):
    """One result of `POST /v1/review`: `output` or `error`, never both."""

    reviewer: str
    model: str = Field(description="The adapter, or the base model's name when the reviewer has none.")
    output: ReviewerOutput | None = None
    error: str | None = None
    raw: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str | None = None


class ReviewResponse(BaseModel):
    results: list[ReviewAnswerItem]


def review_item(
    request: ReviewRequest, model: str, result: GenerationResult, *, max_new_tokens: int, accept_truncated: bool
) -> ReviewAnswerItem:
    """Hold a generation to the contract (`read_answer`): the parsed answer, or the error with the raw text."""
    usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": len(result.token_ids),
             "seconds": result.seconds, "finish_reason": result.finish_reason}
    judged = read_answer(result.text, result.finish_reason, max_new_tokens=max_new_tokens,
                         accept_truncated=accept_truncated, forced_close=result.forced_close)
    if isinstance(judged, BrokenAnswer):
        return ReviewAnswerItem(reviewer=request.reviewer, model=model, raw=judged.raw, error=judged.message, **usage)
    return ReviewAnswerItem(reviewer=request.reviewer, model=model, output=judged, **usage)


@router.post("/review")
async def review(body: ReviewBatch, serving: ServingDep) -> ReviewResponse:
    settings = serving.settings
    if len(body.requests) > settings.max_batch_requests:
        raise BadRequest(f"{len(body.requests)} requests in one batch; at most {settings.max_batch_requests}, split it")
    if not body.requests:
        return ReviewResponse(results=[])
    loaded = set(serving.generator.adapters)
    models = [r.reviewer if r.reviewer in loaded else settings.base_model for r in body.requests]
    max_new_tokens = serving.max_new(body.max_new_tokens)
    generations = [
        GenerationRequest(prompt=render_messages(r), adapter=r.reviewer if r.reviewer in loaded else None,
                          max_new_tokens=max_new_tokens, constrained=body.constrained)
        for r in body.requests
    ]
    serving.admit(len(generations))
    futures: list[Future] = []
    for g in generations:
        try:
            futures.append(serving.submit(g))
        except Exception as exc:  # noqa: BLE001 -- the rest of the batch still runs; this slot is freed
            failed: Future = Future()
            failed.set_exception(exc)
            futures.append(failed)
    deadline = time.monotonic() + settings.request_timeout_s
    items: list[ReviewAnswerItem] = []
    timed_out = 0
    for request, model, future in zip(body.requests, models, futures, strict=True):
        left = max(0.0, deadline - time.monotonic())
        try:
            result = await await_future(future, left) if left > 0 else _done_or_timeout(future)
        except TimeoutError:
            timed_out += 1
            items.append(ReviewAnswerItem(
                reviewer=request.reviewer, model=model,
                error=f"timed out after {settings.request_timeout_s:g} s (the server's request timeout)",
            ))
            continue
        except Exception as exc:  # noqa: BLE001 -- one failed generation is one failed item
            items.append(ReviewAnswerItem(reviewer=request.reviewer, model=model, error=f"generation failed: {exc}"))
            continue
        items.append(review_item(request, model, result, max_new_tokens=max_new_tokens,
                                 accept_truncated=body.accept_truncated))
    if timed_out == len(items):
        raise TimedOut(
            f"no review finished within the server's request timeout of {settings.request_timeout_s:g} s "
            f"({serving.admission.in_flight} generations in flight); retry later or raise --timeout"
        )
    return ReviewResponse(results=items)


def _done_or_timeout(future: Future) -> Any:
    if future.done():
        return future.result()
    raise TimeoutError
