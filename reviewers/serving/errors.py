"""Errors the reviewer server answers in OpenAI's shape: {"error": {"message", "type", "code"}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class ServingError(Exception):
    """An error a client can act on; `status` and `kind` become the HTTP status and the error's type."""

    status = 500
    kind = "server_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


class BadRequest(ServingError):
    status = 400
    kind = "invalid_request_error"


class ModelNotFound(ServingError):
    status = 404
    kind = "model_not_found"


class QueueFull(ServingError):
    status = 429
    kind = "queue_full"


class TimedOut(ServingError):
    status = 504
    kind = "timeout"


def error_body(exc: ServingError) -> dict[str, Any]:
    return {"error": {"message": str(exc), "type": exc.kind, "code": exc.status}}


async def _serving_error(request: Request, exc: ServingError) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=exc.status, headers=exc.headers)


async def _invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 becomes OpenAI's 400, naming the first field that is wrong."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = f"invalid request body at {where}: {first.get('msg', 'invalid')}"
    return JSONResponse(error_body(BadRequest(message)), status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServingError, _serving_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_body)  # type: ignore[arg-type]
