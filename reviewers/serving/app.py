"""The reviewer server's app factory and `calora reviewers serve`'s entry point."""

from __future__ import annotations

from fastapi import FastAPI

from reviewers.serving.errors import install_error_handlers
from reviewers.serving.metrics import counting_middleware
from reviewers.serving.routes import chat, health, models, review
from reviewers.serving.state import Generator, ServerSettings, Serving


def create_app(generator: Generator, settings: ServerSettings) -> FastAPI:
    """The reviewer server's FastAPI app around `generator`; the routes reach it through `ServingDep`."""
    app = FastAPI(title="calora reviewer server", version="1")
    serving = Serving.around(generator, settings)
    app.state.serving = serving
    install_error_handlers(app)
    app.middleware("http")(counting_middleware(serving.metrics))
    for routes in (health.router, models.router, chat.router, review.router):
        app.include_router(routes)
    return app


def served_name(source: str, gguf_file: str | None) -> str:
    """The name the base model answers to by default: the GGUF file's stem, else the folder or hub id's last part."""
    if gguf_file:
        return gguf_file.removesuffix(".gguf")
    return source.rstrip("/").rsplit("/", 1)[-1] or source


def run_server(generator: Generator, options: ServerSettings, *, host: str, port: int) -> int:
    """Serve `generator` (loaded by the command) until interrupted, then close it."""
    import uvicorn

    try:
        uvicorn.run(create_app(generator, options), host=host, port=port, log_level="info")
    finally:
        generator.close()
    return 0
