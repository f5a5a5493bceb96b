"""A scripted fake OpenAI-compatible server for fault injection (no model behind it).

Each POST /v1/chat/completions takes the next scripted `Reply` (status, headers, content or raw body,
delay); when the script runs out, the last reply repeats. Every request body and header is recorded.
It tests the HTTP client side only: answers a model would give come from the real engine elsewhere.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from reviewers.contract import Finding, ReviewerOutput, Verdict, render_answer

SCRIPTED_ANSWER = render_answer(ReviewerOutput(
    verdict=Verdict.revise,
    findings=[Finding(path="app.py", line=3, severity="major", category="correctness",
                      message="scripted finding from the fake server")],
    missing_checks=[], suggested_fix="scripted",
))


@dataclass
class Reply:
    status: int = 200
    content: str | None = SCRIPTED_ANSWER
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # a whole JSON body instead of a chat completion around `content`
    delay_s: float = 0.0
    finish_reason: str = "stop"


class FakeOpenAI:
    def __init__(self, script: list[Reply] | None = None, models: list[dict] | None = None) -> None:
        self.script = list(script or [Reply()])
        self.models = models
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self._chat)
        self.app.get("/v1/models")(self._models)

    def _next(self) -> Reply:
        with self._lock:
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        reply = self._next()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.body is not None:
            return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
        if reply.status != 200:
            return JSONResponse({"error": {"message": f"scripted {reply.status}", "type": "scripted"}},
                                status_code=reply.status, headers=reply.headers)
        return JSONResponse({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                         "finish_reason": reply.finish_reason}],
        }, headers=reply.headers)

    async def _models(self) -> Response:
        if self.models is None:
            return JSONResponse({"error": {"message": "not here"}}, status_code=404)
        return JSONResponse({"object": "list", "data": self.models})
