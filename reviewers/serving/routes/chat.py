"""`POST /v1/chat/completions`: OpenAI-compatible, non-streaming, greedy.

`model` is an adapter name or the base model's name. `response_format` `json_schema` (with the
`ReviewerOutput` schema) or `json_object` turns on constrained decoding: the only grammar this server has
is the reviewer contract. The text is returned as generated; the client judges it (`read_answer`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from reviewers.contract import reviewer_output_schema
from reviewers.engine.engine import GenerationRequest, GenerationResult
from reviewers.prompt import ChatMessage
from reviewers.serving.errors import BadRequest
from reviewers.serving.state import ServingDep

router = APIRouter(prefix="/v1")


class ChatRequestMessage(BaseModel):
    """An OpenAI chat message: text content, or a list of text parts."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]]

    def as_chat_message(self) -> ChatMessage:
        if isinstance(self.content, str):
            text = self.content
        else:
            kinds = {part.get("type") for part in self.content}
            if kinds - {"text"}:
                raise BadRequest(f"only text content parts are supported, got {sorted(map(str, kinds))}")
            text = "".join(str(part.get("text", "")) for part in self.content)
        role = "system" if self.role == "developer" else self.role
        return ChatMessage(role=role, content=text)


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's chat completion request this server honours; other fields are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatRequestMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: dict[str, Any] | None = None
    stream: bool = False
    n: int = 1


def wants_constraint(response_format: dict[str, Any] | None) -> bool:
    """Whether a `response_format` asks for the reviewer grammar; BadRequest for what we cannot honour."""
    if not response_format:
        return False
    kind = response_format.get("type")
    if kind in (None, "text"):
        return False
    if kind == "json_object":
        return True
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None or schema == reviewer_output_schema():
            return True
        raise BadRequest(
            "this server constrains decoding to the ReviewerOutput schema only (the reviewer contract); "
            "send that schema (`calora contract schema --only ReviewerOutput`) or no response_format"
        )
    raise BadRequest(f"response_format type {kind!r} is not supported; use json_schema, json_object or text")


def completion_body(model: str, result: GenerationResult) -> dict[str, Any]:
    """An OpenAI `chat.completion` object for one generation."""
    completion = len(result.token_ids)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": result.text},
            "finish_reason": result.finish_reason,
        }],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": result.prompt_tokens + completion,
        },
    }


@router.post("/chat/completions")
async def chat(body: ChatCompletionRequest, serving: ServingDep) -> JSONResponse:
    if body.stream:
        raise BadRequest("streaming is not supported by this server; send stream=false")
    if body.n != 1:
        raise BadRequest("n must be 1 (decoding is greedy)")
    adapter = serving.adapter_for(body.model)
    request = GenerationRequest(
        prompt=[m.as_chat_message() for m in body.messages],
        adapter=adapter,
        max_new_tokens=serving.max_new(body.max_completion_tokens or body.max_tokens),
        constrained=wants_constraint(body.response_format),
    )
    serving.admit(1)
    future = serving.submit(request)
    result = await serving.result(future, what=f"the {body.model} completion")
    return JSONResponse(completion_body(body.model, result))
